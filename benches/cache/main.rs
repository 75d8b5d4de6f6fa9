//! `cargo bench --bench cache [-- --dir D --scale S --rounds R --cpp BIN --figures 1,2,…]`
//!
//! Every figure is a ratio against a baseline measured in the same run: baseline and
//! subject alternate for `--rounds` rounds (default 5), and the table gives the median
//! per-round ratio with its min–max, plus records/s and MB/s. Nothing is asserted:
//! the `target` column says whether the figure met issue 6's target.
//!
//! Peak RSS is measured in child processes (this binary re-executed with `--role`),
//! read from wait4's rusage of that child.
//!
//! `--csv-warm [50,500]` runs only issue 11's warm-CSV figure (csv_warm.rs).
//!
//! `scripts/bench.sh` builds the C++ pass, starts nginx and runs this at full size.

mod csv_warm;
mod http;
mod random;
mod work;

use std::path::{Path, PathBuf};
use std::time::Instant;

use work::*;

type R<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One line of the final table.
struct Row {
    fig: &'static str,
    subject: String,
    baseline: String,
    /// Per-round (seconds, CPU seconds) (or (KiB, NaN) for memory rows).
    base: Vec<Sample>,
    subj: Vec<Sample>,
    unit: &'static str,
    records: u64,
    bytes: u64,
    base_bytes: u64,
    /// Target: ratio ≤ this (or, for absolute rows, subject ≤ this in `unit`).
    target: Target,
}

enum Target {
    Ratio(f64),
    /// The subject's median must stay below this, in the row's unit.
    Below(f64, &'static str),
    /// Ratio within [1-x, 1+x] ("same within noise"); informative.
    Near(f64),
    /// No target: context for another row.
    Info,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// (measured value, CPU seconds of this process and its children, NaN when n/a).
type Sample = (f64, f64);

impl Row {
    fn ratios(&self) -> Vec<f64> {
        self.subj
            .iter()
            .zip(&self.base)
            .map(|(s, b)| s.0 / b.0)
            .collect()
    }
    fn cpu_ratios(&self) -> Vec<f64> {
        self.subj
            .iter()
            .zip(&self.base)
            .map(|(s, b)| s.1 / b.1)
            .filter(|r| r.is_finite())
            .collect()
    }
    fn base_values(&self) -> Vec<f64> {
        self.base.iter().map(|s| s.0).collect()
    }
    fn subj_values(&self) -> Vec<f64> {
        self.subj.iter().map(|s| s.0).collect()
    }
    fn met(&self) -> bool {
        let r = median(&self.ratios());
        match self.target {
            Target::Ratio(x) => r <= x,
            Target::Below(x, _) => median(&self.subj_values()) < x,
            Target::Near(x) => (r - 1.0).abs() <= x,
            Target::Info => true,
        }
    }
    fn print(&self) {
        let r = self.ratios();
        let (lo, hi) = r
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let (bm, sm) = (median(&self.base_values()), median(&self.subj_values()));
        let cpu = self.cpu_ratios();
        let cpu = if cpu.is_empty() {
            "-".to_string()
        } else {
            format!("{:.3}", median(&cpu))
        };
        let fmt = |v: f64| match self.unit {
            "s" if v < 0.1 => format!("{:.3} ms", v * 1e3),
            "s" => format!("{v:.3} s"),
            "KiB" => format!("{:.1} MiB", v / 1024.0),
            u => format!("{v:.3} {u}"),
        };
        let rate = if self.unit == "s" && sm > 0.0 && self.records > 0 {
            format!(
                "{:.0} rec/s, {:.0} MB/s (base {:.0} MB/s)",
                self.records as f64 / sm,
                self.bytes as f64 / 1e6 / sm,
                self.base_bytes as f64 / 1e6 / bm
            )
        } else {
            String::new()
        };
        let target = match self.target {
            Target::Ratio(x) => format!("ratio <= {x}"),
            Target::Below(x, what) => format!("{what} < {}", fmt(x)),
            Target::Near(x) => format!("ratio 1 +- {x}"),
            Target::Info => "(context)".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {:.3} ({:.3}-{:.3}) | {} | {} | {} | {} |",
            self.fig,
            self.baseline,
            fmt(bm),
            self.subject,
            fmt(sm),
            median(&r),
            lo,
            hi,
            cpu,
            rate,
            target,
            match (&self.target, self.met()) {
                (Target::Info, _) => "-",
                (_, true) => "met",
                (_, false) => "MISSED",
            }
        );
    }
}

fn print_table(rows: &[Row], header: &str) {
    println!("\n{header}");
    println!("| fig | baseline | baseline median | subject | subject median | ratio median (min-max) | CPU-time ratio | subject throughput | target | |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        r.print();
    }
}

/// Wall seconds and CPU seconds (user + system, of this process and of the children
/// it waited for) spent in `f`. CPU time is printed beside the wall ratio because
/// this machine is shared: a run-queue wait stretches wall time but not CPU time.
fn timed(f: impl FnOnce() -> R<()>) -> R<Sample> {
    let (c0, t) = (cpu_seconds(), Instant::now());
    f()?;
    Ok((t.elapsed().as_secs_f64(), cpu_seconds() - c0))
}

fn cpu_seconds() -> f64 {
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: rusage is plain data, filled by the kernel.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        for tv in [ru.ru_utime, ru.ru_stime] {
            total += tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
        }
    }
    total
}

/// Alternates baseline and subject for `rounds` rounds; each closure returns the
/// measured value of its run.
fn interleave(
    rounds: usize,
    mut base: impl FnMut() -> R<Sample>,
    mut subj: impl FnMut() -> R<Sample>,
) -> R<(Vec<Sample>, Vec<Sample>)> {
    let (mut b, mut s) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        b.push(base()?);
        s.push(subj()?);
    }
    Ok((b, s))
}

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
        figures: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
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
            say(&format!("records={} hwm_kib={}", p.len(), vm_hwm_kib()));
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
    let argv: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
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
            let (b, s) = interleave(
                a.rounds,
                || timed(|| Ok(dd_fsync(&ddf, bytes)?)),
                || timed(|| populate(&pop, n_a, A_ELEMS).map(drop).map_err(Into::into)),
            )?;
            let _ = std::fs::remove_file(&pop);
            rows.push(Row {
                fig: "7",
                subject: format!("populate A ({n_a} rec) from memory"),
                baseline: format!("dd bs=1M count={} conv=fsync", bytes.div_ceil(1 << 20)),
                base: b,
                subj: s,
                unit: "s",
                records: n_a as u64,
                bytes,
                base_bytes: bytes.div_ceil(1 << 20) << 20,
                target: Target::Ratio(2.0),
            });
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
            cat(&path)?; // warm the page cache
            view_pass(&path, n, 1)?;
            let (b, s) = interleave(
                a.rounds,
                || timed(|| Ok(cat(&path)?)),
                || {
                    timed(|| {
                        let (_, bytes) = view_pass(&path, n, 1)?;
                        assert_eq!(bytes, data_bytes);
                        Ok(())
                    })
                },
            )?;
            rows.push(Row {
                fig: "1",
                subject: format!("{name}: view pass (DiskCacheProducer::next_view)"),
                baseline: format!("cat {name} > /dev/null"),
                base: b,
                subj: s,
                unit: "s",
                records: n as u64,
                bytes: data_bytes,
                base_bytes: file_bytes,
                target: Target::Ratio(1.3),
            });
            if let Some(cpp) = &a.cpp {
                let (b, s) = interleave(
                    a.rounds,
                    || timed(|| Ok(cat(&path)?)),
                    || timed(|| cpp_pass(cpp, &path, n).map(drop).map_err(Into::into)),
                )?;
                rows.push(Row {
                    fig: "1",
                    subject: format!(
                        "{name}: C++ HTensor pass (harmonics::DiskCacheProducer::next)"
                    ),
                    baseline: format!("cat {name} > /dev/null"),
                    base: b,
                    subj: s,
                    unit: "s",
                    records: n as u64,
                    bytes: data_bytes,
                    base_bytes: file_bytes,
                    // Issue 12: 1.3 on A. B's 1 MiB records are copied into a fresh
                    // owned HTensor each: issue 6's 2.0 stands there.
                    target: Target::Ratio(if name == "A" { 1.3 } else { 2.0 }),
                });
                let (b, s) = interleave(
                    a.rounds,
                    || timed(|| Ok(cat(&path)?)),
                    || timed(|| cpp_view_pass(cpp, &path, n).map(drop).map_err(Into::into)),
                )?;
                rows.push(Row {
                    fig: "1",
                    subject: format!(
                        "{name}: C++ view pass (harmonics::DiskCacheProducer::next_view)"
                    ),
                    baseline: format!("cat {name} > /dev/null"),
                    base: b,
                    subj: s,
                    unit: "s",
                    records: n as u64,
                    bytes: data_bytes,
                    base_bytes: file_bytes,
                    target: Target::Ratio(1.3),
                });
            } else {
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
        let (b, s) = interleave(
            a.rounds.max(9),
            || timed(|| open_warm(&small, n_small).map(drop).map_err(Into::into)),
            || timed(|| open_warm(&big, n_big).map(drop).map_err(Into::into)),
        )?;
        rows.push(Row {
            fig: "2",
            subject: format!("open warm cache of {n_big} records"),
            baseline: format!("open warm cache of {n_small} records"),
            base: b,
            subj: s,
            unit: "s",
            records: 0,
            bytes: 0,
            base_bytes: 0,
            target: Target::Below(0.010, "subject"),
        });
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
        let (snap_big, snap_small) = (Snapshot::take(&path_a)?, Snapshot::take(&small)?);
        let k = 1000;
        let (b, s) = interleave(
            a.rounds,
            || {
                let t = timed(|| {
                    append(&small, n_small, k, A_ELEMS)
                        .map(drop)
                        .map_err(Into::into)
                });
                snap_small.restore()?;
                t
            },
            || {
                let t = timed(|| {
                    append(&path_a, n_a, k, A_ELEMS)
                        .map(drop)
                        .map_err(Into::into)
                });
                snap_big.restore()?;
                t
            },
        )?;
        let _ = std::fs::remove_file(&small);
        rows.push(Row {
            fig: "6",
            subject: format!("append {k} rec to {n_a}-rec cache"),
            baseline: format!("append {k} rec to {n_small}-rec cache"),
            base: b,
            subj: s,
            unit: "s",
            records: k as u64,
            bytes: (k * A_ELEMS * 4) as u64,
            base_bytes: (k * A_ELEMS * 4) as u64,
            target: Target::Near(0.25),
        });
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
                let mut argv = vec!["--role".to_string()];
                argv.extend(args.iter().map(|s| s.to_string()));
                let (out, ru_maxrss) = child_peak_rss(&exe, &argv)?;
                maxrss.set(maxrss.get().max(ru_maxrss));
                let kib = field(&out, "hwm_kib=").ok_or(format!("child said {out:?}"))?;
                Ok((kib as f64, f64::NAN))
            };
            let ns = n.to_string();
            let (b, s) = interleave(
                a.rounds,
                || child(&["open", &p, &ns]),
                || child(&["pass", &p, &ns, "2"]),
            )?;
            eprintln!("bench:   (wait4 ru_maxrss of the children, which includes this parent's pre-exec peak: {} MiB; parent VmHWM {} MiB)", maxrss.get() >> 10, vm_hwm_kib() >> 10);
            rows.push(Row {
                fig: "3",
                subject: format!("peak RSS, 2 epochs over {} MiB cache ({n} rec)", size >> 20),
                baseline: "peak RSS, open only".into(),
                base: b,
                subj: s,
                unit: "KiB",
                records: n as u64,
                bytes: size,
                base_bytes: size,
                target: Target::Below(64.0 * 1024.0, "subject"),
            });
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

    if !a.keep {
        let _ = std::fs::remove_file(&path_a);
        let _ = std::fs::remove_file(&path_b);
    }
    rows.sort_by_key(|r| r.fig);
    print_table(
        &rows,
        &format!(
            "harmonics-dataset cache benchmark: scale {}, {} interleaved rounds per figure (median, min-max of per-round ratios)",
            a.scale, a.rounds
        ),
    );
    Ok(())
}

/// The number after `key` in a child's `key=value` report.
fn field(out: &str, key: &str) -> Option<u64> {
    out.split(key)
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn http_figures(a: &Args, dir: &Path, rows: &mut Vec<Row>) -> R<()> {
    let Some(base_url) = &a.http_base else {
        eprintln!(
            "bench: figures 4, 5 need --http <nginx base URL> (scripts/bench.sh starts nginx)"
        );
        return Ok(());
    };
    let exe = std::env::current_exe()?;
    let n = scaled(1_000, a.scale);
    let body = dir.join("b.wire");
    let body_bytes = http::write_body(&body, n, B_ELEMS)?;
    let url = format!("{}/b.wire", base_url.trim_end_matches('/'));
    let cache = dir.join("http.cache");
    let data_bytes = (n * B_ELEMS * 4) as u64;
    eprintln!("bench: HTTP body {url}: {n} x float32[{B_ELEMS}], {body_bytes} bytes");
    let curl = |out: &str| -> R<()> {
        let st = std::process::Command::new("curl")
            .args(["-s", "-f", "-o", out, &url])
            .status()?;
        if !st.success() {
            return Err(format!("curl {url} failed: {st}").into());
        }
        Ok(())
    };
    curl("/dev/null")?; // warm the server's page cache

    if a.figures.contains(&4) {
        eprintln!("bench: figure 4 (cold HttpProducer fetch into the cache vs curl)");
        let rss = std::cell::RefCell::new(Vec::new());
        let c = cache.display().to_string();
        let fetch = || -> R<Sample> {
            timed(|| {
                let (out, _) = child_peak_rss(
                    &exe,
                    &["--role".into(), "fetch".into(), url.clone(), c.clone()],
                )?;
                if field(&out, "records=") != Some(n as u64) {
                    return Err(format!("fetch child: {out}").into());
                }
                rss.borrow_mut()
                    .push((field(&out, "hwm_kib=").unwrap_or(0) as f64, f64::NAN));
                Ok(())
            })
        };
        let (b, s) = interleave(a.rounds, || timed(|| curl("/dev/null")), fetch)?;
        rows.push(Row {
            fig: "4",
            subject: format!("cold HttpProducer fetch into cache ({n} rec, fsync'ed)"),
            baseline: "curl -s -o /dev/null URL".into(),
            base: b,
            subj: s,
            unit: "s",
            records: n as u64,
            bytes: body_bytes,
            base_bytes: body_bytes,
            target: Target::Ratio(1.25),
        });
        // Context: the same bytes written durably by curl (the cache is fsync'ed).
        let file = dir.join("curl.out");
        let f = file.display().to_string();
        let (b, s) = interleave(
            a.rounds,
            || {
                let t = timed(|| {
                    curl(&f)?;
                    std::fs::File::open(&file)?.sync_all()?;
                    Ok(())
                });
                let _ = std::fs::remove_file(&file);
                t
            },
            fetch,
        )?;
        rows.push(Row {
            fig: "4",
            subject: "cold HttpProducer fetch (same)".into(),
            baseline: "curl -s -o FILE URL + fsync(FILE)".into(),
            base: b,
            subj: s,
            unit: "s",
            records: n as u64,
            bytes: body_bytes,
            base_bytes: body_bytes,
            target: Target::Info,
        });
        let rss = rss.into_inner();
        rows.push(Row {
            fig: "4",
            subject: "peak RSS of the fetching process".into(),
            baseline: "body size".into(),
            base: vec![(body_bytes as f64 / 1024.0, f64::NAN); rss.len()],
            subj: rss,
            unit: "KiB",
            records: n as u64,
            bytes: body_bytes,
            base_bytes: body_bytes,
            target: Target::Below(64.0 * 1024.0, "subject"),
        });
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
        rows.push(Row {
            fig: "5",
            subject: "AsyncHttpProducer: time to first record".into(),
            baseline: format!("same run: time to all {n} records"),
            base: all,
            subj: first,
            unit: "s",
            records: 1,
            bytes: data_bytes / n as u64,
            base_bytes: data_bytes,
            target: Target::Ratio(0.02),
        });
    }
    let _ = std::fs::remove_file(&cache);
    let _ = std::fs::remove_file(&body);
    Ok(())
}
