//! `cargo bench --bench cache [-- --dir D --scale S --rounds R --cpp BIN --figures 1,2,…]`
//!
//! Every figure is a ratio against a baseline measured in the same run: baseline and
//! subject alternate for `--rounds` rounds (default 5), and the table gives the median
//! per-round ratio with its min–max, the CPU-time ratio (this process and its
//! children), plus records/s and MB/s. Nothing is asserted: the `target` column says
//! whether the figure met its issue's target (6 for figures 1–7, 14 for 8–10, 23 for
//! 11 and the A row of figure 1's C++ `next()`).
//!
//! Figure 11 (shuffled.rs) and figure 1's C++ rows run `benches/cpp/warm_pass.cpp`
//! (`--cpp BIN`); every such run's records, order and checksum are checked, so a
//! broken path cannot look fast. Figures 8–10 are in random.rs.
//!
//! Peak RSS is measured in child processes (this binary re-executed with `--role`):
//! each reports its own VmHWM, and figure 9's its private memory (RssAnon, sampled).
//!
//! `--csv-warm [50,500]` runs only issue 11's warm-CSV figure (csv_warm.rs).
//!
//! Figures 4 and 5 fetch from nginx on 127.0.0.1 serving `--dir`: started here when
//! nginx is installed, or an existing server of that directory given by `--http URL`.
//!
//! `scripts/bench.sh` builds the C++ pass (`benches/cpp/warm_pass.cpp`) and runs this
//! at full size.

#[path = "../common/mod.rs"]
mod common;
mod csv_warm;
mod http;
mod random;
mod shuffled;
mod table;
mod work;

use std::path::{Path, PathBuf};

use common::*;
use table::{print_table, Row, Target};
use work::*;

struct Args {
    dir: PathBuf,
    scale: f64,
    rounds: usize,
    cpp: Option<PathBuf>,
    figures: Vec<u32>,
    http_base: Option<String>,
    keep: bool,
}

fn parse_args(argv: &[String]) -> R<Args> {
    let mut a = Args {
        dir: std::env::temp_dir().join("harmonics-bench"),
        scale: 1.0,
        rounds: 5,
        cpp: None,
        figures: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        http_base: None,
        keep: false,
    };
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--dir" => a.dir = PathBuf::from(val()?),
            "--scale" => a.scale = val()?.parse()?,
            "--rounds" => a.rounds = val()?.parse()?,
            "--cpp" => a.cpp = Some(PathBuf::from(val()?)),
            "--http" => a.http_base = Some(val()?),
            "--figures" => {
                a.figures = val()?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--keep" => a.keep = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.rounds < 1 {
        return Err("--rounds must be at least 1".into());
    }
    Ok(a)
}

/// `--csv-warm [SIZES_MB] [--dir D] [--rounds R]` (issue 11's figure, see csv_warm.rs).
fn csv_warm_args(argv: &[String]) -> R<()> {
    let mut sizes = vec![50, 500];
    let mut dir = std::env::temp_dir().join("harmonics-bench");
    let mut rounds = 5;
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        match k.as_str() {
            "--dir" => dir = PathBuf::from(it.next().ok_or("--dir needs a value")?),
            "--rounds" => rounds = it.next().ok_or("--rounds needs a value")?.parse()?,
            list => {
                sizes = list
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
        }
    }
    csv_warm::run(&sizes, &dir, rounds.max(1))
}

/// Child roles (this binary re-executed): report through stdout.
fn role(argv: &[String]) -> R<()> {
    match argv.first().map(String::as_str) {
        Some("open") => {
            let p = open_warm(Path::new(&argv[1]), argv[2].parse()?)?;
            say(&format!(
                "records={} rss_anon_kib={} hwm_kib={}",
                p.len(),
                rss_anon_kib(),
                vm_hwm_kib()
            ));
        }
        Some("fetch") => say(&http::fetch_role(&argv[1], Path::new(&argv[2]))?),
        Some("shuffle") => say(&random::shuffle_role(&argv[1], &argv[2])?),
        Some("pass") => {
            let (sum, bytes) = view_pass(Path::new(&argv[1]), argv[2].parse()?, argv[3].parse()?)?;
            say(&format!(
                "bytes={bytes} checksum={sum} hwm_kib={}",
                vm_hwm_kib()
            ));
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}

const A_ELEMS: usize = 784;
const B_ELEMS: usize = 262_144;
const SMALL_ELEMS: usize = 8;

fn scaled(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(2)
}

fn main() {
    let argv = bench_args();
    let r = if argv.first().map(String::as_str) == Some("--role") {
        role(&argv[1..])
    } else if argv.first().map(String::as_str) == Some("--csv-warm") {
        csv_warm_args(&argv[1..])
    } else {
        parse_args(&argv).and_then(run)
    };
    if let Err(e) = r {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run(a: Args) -> R<()> {
    std::fs::create_dir_all(&a.dir)?;
    let dir = a.dir.canonicalize()?;
    let exe = std::env::current_exe()?;
    let want = |f: u32| a.figures.contains(&f);
    let n_a = scaled(200_000, a.scale);
    let n_b = scaled(1_000, a.scale);
    eprintln!(
        "bench: dir {} scale {} rounds {} (A = {n_a} x float32[{A_ELEMS}], B = {n_b} x float32[{B_ELEMS}])",
        dir.display(),
        a.scale,
        a.rounds
    );
    let mut rows = Vec::new();
    let path_a = dir.join("a.cache");
    let path_b = dir.join("b.cache");

    // 7. populating A from memory vs dd of the same bytes with fsync.
    if want(7) || want(1) || want(6) {
        let bytes = populate(&path_a, n_a, A_ELEMS)?;
        if want(7) {
            eprintln!("bench: figure 7 (populate A vs dd conv=fsync)");
            let pop = dir.join("pop.cache");
            let ddf = dir.join("dd.out");
            let runs = interleave(
                a.rounds,
                || timed(|| Ok(dd_fsync(&ddf, bytes)?)),
                || timed(|| populate(&pop, n_a, A_ELEMS).map(drop).map_err(Into::into)),
            )?;
            let _ = std::fs::remove_file(&pop);
            let mib = bytes.div_ceil(1 << 20);
            rows.push(
                Row::new(
                    "7",
                    format!("populate A ({n_a} rec) from memory"),
                    format!("dd bs=1M count={mib} conv=fsync"),
                    runs,
                    Target::Ratio(2.0),
                )
                .rate(n_a as u64, bytes, mib << 20),
            );
        }
    }

    // 1. warm passes vs cat.
    if want(1) {
        let mut passes = vec![("A", path_a.clone(), n_a, (n_a * A_ELEMS * 4) as u64)];
        populate(&path_b, n_b, B_ELEMS)?;
        passes.push(("B", path_b.clone(), n_b, (n_b * B_ELEMS * 4) as u64));
        for (name, path, n, data_bytes) in passes {
            eprintln!("bench: figure 1 ({name}: warm passes vs cat)");
            let file_bytes = std::fs::metadata(&path)?.len();
            let rec_bytes = data_bytes / n as u64;
            cat(&path)?; // warm the page cache
            view_pass(&path, n, 1)?;
            type Pass<'a> = Box<dyn FnMut() -> R<()> + 'a>;
            let mut subjects: Vec<(String, Target, Pass)> = vec![(
                format!("{name}: view pass (DiskCacheProducer::next_view)"),
                Target::Ratio(1.3),
                Box::new(|| {
                    let (_, bytes) = view_pass(&path, n, 1)?;
                    assert_eq!(bytes, data_bytes);
                    Ok(())
                }),
            )];
            if let Some(cpp) = &a.cpp {
                subjects.push((
                    format!("{name}: C++ HTensor pass (harmonics::DiskCacheProducer::next)"),
                    // Issue 23: 1.1 on A (issue 12's was 1.3). B's 1 MiB records are
                    // copied into a fresh owned HTensor each: issue 6's 2.0 stands there.
                    Target::Ratio(if name == "A" { 1.1 } else { 2.0 }),
                    Box::new(|| {
                        let pass = CppPass::new(CppMode::Next);
                        Ok(pass.verify(&pass.run(cpp, &path, n)?, n, rec_bytes, None)?)
                    }),
                ));
                subjects.push((
                    format!("{name}: C++ view pass (harmonics::DiskCacheProducer::next_view)"),
                    Target::Ratio(1.3),
                    Box::new(|| {
                        let pass = CppPass::new(CppMode::View);
                        Ok(pass.verify(&pass.run(cpp, &path, n)?, n, rec_bytes, None)?)
                    }),
                ));
            }
            for (subject, target, mut pass) in subjects {
                let runs = interleave(a.rounds, || timed(|| Ok(cat(&path)?)), || timed(&mut pass))?;
                rows.push(
                    Row::new(
                        "1",
                        subject,
                        format!("cat {name} > /dev/null"),
                        runs,
                        target,
                    )
                    .rate(n as u64, data_bytes, file_bytes),
                );
            }
            if a.cpp.is_none() {
                eprintln!("bench: no --cpp binary: C++ HTensor pass skipped");
            }
        }
    }

    // 2. warm open of 1,000,000 vs 100,000 small records.
    if want(2) {
        eprintln!("bench: figure 2 (warm open, large vs small record count)");
        let n_big = scaled(1_000_000, a.scale);
        let n_small = scaled(100_000, a.scale);
        let big = dir.join("small-1m.cache");
        let small = dir.join("small-100k.cache");
        populate(&big, n_big, SMALL_ELEMS)?;
        populate(&small, n_small, SMALL_ELEMS)?;
        open_warm(&big, n_big)?;
        open_warm(&small, n_small)?;
        let runs = interleave(
            a.rounds.max(9),
            || timed(|| open_warm(&small, n_small).map(drop).map_err(Into::into)),
            || timed(|| open_warm(&big, n_big).map(drop).map_err(Into::into)),
        )?;
        rows.push(Row::new(
            "2",
            format!("open warm cache of {n_big} records"),
            format!("open warm cache of {n_small} records"),
            runs,
            Target::Below(0.010, "subject"),
        ));
        if !a.keep {
            let _ = std::fs::remove_file(&big);
            let _ = std::fs::remove_file(&small);
        }
    }

    // 6. appending 1,000 records to 200,000- vs 20,000-record caches.
    if want(6) {
        eprintln!("bench: figure 6 (append 1000 records: big vs small cache)");
        let n_small = scaled(20_000, a.scale);
        let small = dir.join("append-small.cache");
        populate(&small, n_small, A_ELEMS)?;
        let k = 1000;
        // Each run appends to `path` holding `n` records, then undoes the append.
        let append_undo = |path: &Path, n: usize, snap: &Snapshot| {
            let t = timed(|| append(path, n, k, A_ELEMS).map(drop).map_err(Into::into));
            snap.restore()?;
            t
        };
        let (snap_big, snap_small) = (Snapshot::take(&path_a)?, Snapshot::take(&small)?);
        let runs = interleave(
            a.rounds,
            || append_undo(&small, n_small, &snap_small),
            || append_undo(&path_a, n_a, &snap_big),
        )?;
        let _ = std::fs::remove_file(&small);
        let bytes = (k * A_ELEMS * 4) as u64;
        rows.push(
            Row::new(
                "6",
                format!("append {k} rec to {n_a}-rec cache"),
                format!("append {k} rec to {n_small}-rec cache"),
                runs,
                Target::Near(0.25),
            )
            .rate(k as u64, bytes, bytes),
        );
    }

    // 3. peak RSS iterating B-shaped caches of 1 GB and 2 GB, in child processes.
    if want(3) {
        for (gb, n) in [(1, n_b), (2, 2 * n_b)] {
            eprintln!("bench: figure 3 (peak RSS iterating {gb} GB x {})", a.scale);
            let path = dir.join(format!("rss-{gb}.cache"));
            if gb == 1 && path_b.exists() {
                std::fs::rename(&path_b, &path)?;
            } else {
                populate(&path, n, B_ELEMS)?;
            }
            let size = std::fs::metadata(&path)?.len();
            let p = path.display().to_string();
            cat(&path)?;
            let maxrss = std::cell::Cell::new(0u64);
            let child = |args: &[&str]| -> R<Sample> {
                let (sample, ru_maxrss) = role_rss(&exe, args)?;
                maxrss.set(maxrss.get().max(ru_maxrss));
                Ok(sample)
            };
            let ns = n.to_string();
            let runs = interleave(
                a.rounds,
                || child(&["open", &p, &ns]),
                || child(&["pass", &p, &ns, "2"]),
            )?;
            eprintln!("bench:   (wait4 ru_maxrss of the children, which includes this parent's pre-exec peak: {} MiB; parent VmHWM {} MiB)", maxrss.get() >> 10, vm_hwm_kib() >> 10);
            rows.push(
                Row::new(
                    "3",
                    format!("peak RSS, 2 epochs over {} MiB cache ({n} rec)", size >> 20),
                    "peak RSS, open only",
                    runs,
                    Target::Below(64.0 * 1024.0, "subject"),
                )
                .memory(),
            );
            if !a.keep {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    if want(4) || want(5) {
        http_figures(&a, &dir, &mut rows)?;
    }

    // 8, 9, 10: random access (view_at) warm, peak RSS, cold.
    random::figures(
        &want, a.rounds, a.scale, a.keep, &dir, &exe, &path_a, n_a, &mut rows,
    )?;

    // 11: shuffled epochs through the C++ API against sequential passes.
    if want(11) {
        match &a.cpp {
            Some(cpp) => shuffled::figures(a.rounds, cpp, &path_a, n_a, &mut rows)?,
            None => eprintln!("bench: figure 11 needs the C++ pass (--cpp BIN): skipped"),
        }
    }

    if !a.keep {
        let _ = std::fs::remove_file(&path_a);
        let _ = std::fs::remove_file(&path_b);
    }
    rows.sort_by_key(|r| table::figure_key(r.fig));
    print_table(
        &rows,
        &format!(
            "harmonics-dataset cache benchmark: scale {}, {} interleaved rounds per figure (median, min-max of per-round ratios)",
            a.scale, a.rounds
        ),
    );
    Ok(())
}

/// Runs this binary as a child `--role ARGS…`: (its stdout, wait4's ru_maxrss).
fn run_role(exe: &Path, args: &[&str]) -> R<(String, u64)> {
    let mut argv = vec!["--role".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    child_peak_rss(exe, &argv)
}

/// A child role's own peak RSS (its `hwm_kib=`) as a memory sample, and wait4's
/// ru_maxrss of it.
fn role_rss(exe: &Path, args: &[&str]) -> R<(Sample, u64)> {
    let (out, ru_maxrss) = run_role(exe, args)?;
    let kib = field(&out, "hwm_kib=").ok_or(format!("child said {out:?}"))?;
    Ok(((kib as f64, f64::NAN), ru_maxrss))
}

fn http_figures(a: &Args, dir: &Path, rows: &mut Vec<Row>) -> R<()> {
    // nginx serving `dir` (where the body is written): started here unless given.
    let server = match (&a.http_base, Nginx::binary()) {
        (None, Some(_)) => Some(Nginx::serve_for_benchmarks(dir)?),
        _ => None,
    };
    let base_url = match (&a.http_base, &server) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(s)) => {
            eprintln!(
                "bench: nginx on 127.0.0.1:{} serving {}",
                s.port(),
                dir.display()
            );
            s.url("")
        }
        (None, None) => {
            eprintln!("bench: figures 4, 5 need nginx (or --http <base URL of a server of --dir>)");
            return Ok(());
        }
    };
    let exe = std::env::current_exe()?;
    let n = scaled(1_000, a.scale);
    let body = dir.join("b.wire");
    let body_bytes = http::write_body(&body, n, B_ELEMS)?;
    let url = format!("{base_url}/b.wire");
    let cache = dir.join("http.cache");
    let data_bytes = (n * B_ELEMS * 4) as u64;
    eprintln!("bench: HTTP body {url}: {n} x float32[{B_ELEMS}], {body_bytes} bytes");
    let curl_to = |out: &str| curl(&url, out).map(drop);
    curl_to("/dev/null")?; // warm the server's page cache

    if a.figures.contains(&4) {
        eprintln!("bench: figure 4 (cold HttpProducer fetch into the cache vs curl)");
        let rss = std::cell::RefCell::new(Vec::new());
        let c = cache.display().to_string();
        let fetch = || -> R<Sample> {
            timed(|| {
                let (out, _) = run_role(&exe, &["fetch", &url, &c])?;
                if field(&out, "records=") != Some(n as u64) {
                    return Err(format!("fetch child: {out}").into());
                }
                rss.borrow_mut()
                    .push((field(&out, "hwm_kib=").unwrap_or(0) as f64, f64::NAN));
                Ok(())
            })
        };
        let runs = interleave(a.rounds, || timed(|| curl_to("/dev/null")), fetch)?;
        rows.push(
            Row::new(
                "4",
                format!("cold HttpProducer fetch into cache ({n} rec, fsync'ed)"),
                "curl -s -o /dev/null URL",
                runs,
                Target::Ratio(1.25),
            )
            .rate(n as u64, body_bytes, body_bytes),
        );
        // Context: the same bytes written durably by curl (the cache is fsync'ed).
        let file = dir.join("curl.out");
        let f = file.display().to_string();
        let runs = interleave(
            a.rounds,
            || {
                let t = timed(|| {
                    curl_to(&f)?;
                    std::fs::File::open(&file)?.sync_all()?;
                    Ok(())
                });
                let _ = std::fs::remove_file(&file);
                t
            },
            fetch,
        )?;
        rows.push(
            Row::new(
                "4",
                "cold HttpProducer fetch (same)",
                "curl -s -o FILE URL + fsync(FILE)",
                runs,
                Target::Info,
            )
            .rate(n as u64, body_bytes, body_bytes),
        );
        let rss = rss.into_inner();
        let body_kib = vec![(body_bytes as f64 / 1024.0, f64::NAN); rss.len()];
        rows.push(
            Row::new(
                "4",
                "peak RSS of the fetching process",
                "body size",
                (body_kib, rss),
                Target::Below(64.0 * 1024.0, "subject"),
            )
            .memory(),
        );
    }

    if a.figures.contains(&5) {
        eprintln!("bench: figure 5 (AsyncHttpProducer: first record vs whole download)");
        let mut all = Vec::new();
        let mut first = Vec::new();
        for _ in 0..a.rounds {
            let (f, t) = http::async_first_and_all(&url, &cache, n)?;
            first.push((f, f64::NAN));
            all.push((t, f64::NAN));
        }
        rows.push(
            Row::new(
                "5",
                "AsyncHttpProducer: time to first record",
                format!("same run: time to all {n} records"),
                (all, first),
                Target::Ratio(0.02),
            )
            .rate(1, data_bytes / n as u64, data_bytes),
        );
    }
    let _ = std::fs::remove_file(&cache);
    let _ = std::fs::remove_file(&body);
    Ok(())
}
