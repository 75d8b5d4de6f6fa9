//! `StreamingProducer` (issue 22, DESIGN §11) against its baselines, every ratio
//! measured in the same run. Nothing is asserted.
//!
//! ```text
//! cargo bench --bench streaming -- [SIZE_MIB] [RATE_MB_S] [CONNECTIONS] [ROUNDS] [DIMS] [PARTS]
//! cargo bench --bench streaming -- 256 16 4 2 784 cold,warm,fractions   # the defaults
//! ```
//!
//! A dataset of SIZE_MIB of float32[DIMS] records is written as a local cache and
//! published (index at the head) into a directory nginx serves on 127.0.0.1. One rank
//! of a world of one reads it (its share is the whole dataset):
//! - **Cold epoch, throttled**: through `tests/support/fault_proxy/throttle.rs` at
//!   RATE_MB_S per connection, the time from opening the stream to the last record of
//!   the epoch (every record viewed and touched), against a plain parallel download
//!   of the same file (`HttpProducer`, CONNECTIONS ranged connections) through the same
//!   proxy; the stream with no limit and with a limit of a quarter of the dataset.
//!   Target: rate ratio >= 0.9.
//! - **Warm epoch, the share fitting**: epochs after the first of a stream whose cache
//!   holds the whole share, against epochs of a `SampledProducer` (global shuffle) over
//!   the local cache of the same records, wall and CPU time (the CPU ratio is the
//!   steadier one on a shared machine). Target: <= 1.3x.
//! - **Epoch-2 fetch fraction** with a limit of f = 0.25, 0.5, 0.75 of the share:
//!   blocks fetched in the second epoch over the share's blocks, against an LRU cache
//!   of as many blocks over the same reading order (a simulation). Target: about 1 - f.
//! - **Private memory**: the highest RssAnon sampled (every 2 ms, from
//!   `/proc/<pid>/status`) of every stream child above. Target: < 64 MiB.
//!
//! Each measurement runs in a child process (this binary again); ROUNDS rounds
//! alternate baseline and subject, medians printed. Data lives under
//! `$HTTP_BENCH_DIR/streaming` (default `target/http-bench/streaming`), kept between
//! runs; the stream caches are removed after each child.

#[path = "../cache/work.rs"]
mod cache_work;
#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/support/fault_proxy/mod.rs"]
mod fault_proxy;
#[path = "work.rs"]
mod work;

use std::path::{Path, PathBuf};

use common::{bench_args, child_peak_rss_anon, field, field_as, median};

fn main() {
    let args = bench_args();
    if args.first().map(String::as_str) == Some("child") {
        if let Err(e) = child(&args[1..]) {
            eprintln!("streaming bench child {:?}: {e}", &args[1..]);
            std::process::exit(1);
        }
        return;
    }
    let arg = |i: usize, d: u64| args.get(i).map(|s| s.parse().unwrap()).unwrap_or(d);
    let size_mib = arg(0, 256);
    let rate_mb = arg(1, 16);
    let connections = arg(2, 4) as u32;
    let rounds = arg(3, 2).max(1) as usize;
    let dims = arg(4, 784) as usize;
    let parts = args.get(5).cloned().unwrap_or("cold,warm,fractions".into());

    let base = common::http_bench_dir().unwrap().join("streaming");
    let www = base.join("www");
    let rec = (13 + 4 * dims) as u64;
    let records = ((size_mib << 20) / rec) as usize;
    let d = work::dataset(&base, &www, records, dims).unwrap();
    let server = common::Nginx::serve_for_benchmarks(&www).unwrap();
    let name = d
        .published
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let direct = server.url(&format!("/{name}"));
    println!(
        "dataset: {} records of float32[{dims}], published file {:.1} MB; {} cores, load {}",
        d.records,
        d.bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let _ = common::curl(&direct, "/dev/null"); // the served file in the page cache
    let exe = std::env::current_exe().unwrap();
    let ctx = Ctx {
        exe,
        base,
        d,
        connections,
        peak_anon: std::cell::Cell::new(0),
    };

    if rate_mb > 0 && parts.contains("cold") {
        cold(&ctx, &server, rate_mb, rounds);
    }
    if parts.contains("warm") {
        warm(&ctx, &direct, rounds);
    }
    if parts.contains("fractions") {
        for _ in 0..if parts.contains("cold") { 1 } else { rounds } {
            fractions(&ctx, &direct);
        }
    }
    println!(
        "\nprivate memory: the highest RssAnon of any stream child above {:.1} MiB (target < 64 MiB) \
         on a {:.0} MB dataset",
        ctx.peak_anon.get() as f64 / 1024.0,
        ctx.d.bytes as f64 / 1e6
    );
}

struct Ctx {
    exe: PathBuf,
    base: PathBuf,
    d: work::Dataset,
    connections: u32,
    /// The highest RssAnon (KiB) of any stream child so far.
    peak_anon: std::cell::Cell<u64>,
}

impl Ctx {
    /// Runs a child role; returns (its report, its sampled peak RssAnon in KiB).
    fn run(&self, role: &[String]) -> (String, u64) {
        let mut args = vec!["child".to_string()];
        args.extend_from_slice(role);
        let (out, anon) = child_peak_rss_anon(&self.exe, &args).unwrap();
        if role[0] != "download" && role[0] != "sampled" {
            self.peak_anon.set(self.peak_anon.get().max(anon));
        }
        (out, anon)
    }

    /// A stream child (`role` `url` `limit` `epochs`) over a fresh cache directory,
    /// removed afterwards.
    fn stream(&self, url: &str, limit: u64, epochs: usize) -> (String, u64) {
        let dir = self.base.join("node.stream");
        let _ = std::fs::remove_dir_all(&dir);
        let r = self.run(&[
            "stream".into(),
            url.into(),
            dir.display().to_string(),
            limit.to_string(),
            self.connections.to_string(),
            epochs.to_string(),
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }
}

fn cold(ctx: &Ctx, server: &common::Nginx, rate_mb: u64, rounds: usize) {
    let proxy = fault_proxy::ThrottleProxy::start(server.port(), rate_mb * 1_000_000);
    let url = proxy.url(&format!(
        "/{}",
        ctx.d.published.file_name().unwrap().to_str().unwrap()
    ));
    let k = ctx.connections;
    println!(
        "\ncold epoch through a proxy throttling each connection to {rate_mb} MB/s, {k} \
         connections, {rounds} rounds (medians)"
    );
    let quarter = ctx.d.bytes / 4;
    let modes = [
        "plain parallel download (HttpProducer)".to_string(),
        "stream, no limit".to_string(),
        format!("stream, limit {:.0} MB (1/4)", quarter as f64 / 1e6),
    ];
    let mut secs = vec![Vec::new(); 3];
    let mut sent = [0u64; 3];
    let mut conns = [0usize; 3];
    let mut anon = [0u64; 3];
    let mut wait = vec![Vec::new(); 3];
    for _ in 0..rounds {
        for (i, secs) in secs.iter_mut().enumerate() {
            let (b0, c0) = (proxy.bytes(), proxy.connections());
            let (out, a) = match i {
                0 => {
                    let path = ctx.base.join("download.cache");
                    let r = ctx.run(&[
                        "download".into(),
                        url.clone(),
                        path.display().to_string(),
                        k.to_string(),
                    ]);
                    let _ = std::fs::remove_file(&path);
                    r
                }
                1 => ctx.stream(&url, 0, 1),
                _ => ctx.stream(&url, quarter, 1),
            };
            secs.push(field_as::<f64>(&out, " e0_secs=").unwrap());
            if i > 0 {
                wait[i].push(field_as::<f64>(&out, " wait_secs=").unwrap());
            }
            sent[i] = proxy.bytes() - b0;
            conns[i] = proxy.connections() - c0;
            anon[i] = anon[i].max(a);
        }
    }
    println!(
        "{:<40} {:>8} {:>9} {:>12} {:>6} {:>10} {:>10}",
        "what", "time", "MB/s", "bytes sent", "conns", "RssAnon", "waited"
    );
    let mb = ctx.d.bytes as f64 / 1e6;
    for i in 0..3 {
        let t = median(&secs[i]);
        println!(
            "{:<40} {t:>7.2}s {:>9.1} {:>12} {:>6} {:>7.1}MiB {:>10}",
            modes[i],
            mb / t,
            sent[i],
            conns[i],
            anon[i] as f64 / 1024.0,
            if i == 0 {
                "-".to_string()
            } else {
                format!("{:.2}s", median(&wait[i]))
            }
        );
    }
    let base = median(&secs[0]);
    println!(
        "rate ratio stream / plain download: no limit {:.2}, limit 1/4 {:.2} (target >= 0.9)",
        base / median(&secs[1]),
        base / median(&secs[2])
    );
}

fn warm(ctx: &Ctx, url: &str, rounds: usize) {
    let epochs = 3;
    println!(
        "\nwarm epochs (the share fits, no fetch): epochs 1..{} of a stream against a \
         SampledProducer over the local cache, {rounds} rounds (medians)",
        epochs - 1
    );
    let (mut stream, mut sampled) = (Vec::new(), Vec::new());
    let (mut stream_cpu, mut sampled_cpu) = (Vec::new(), Vec::new());
    let mut fetched_warm = 0;
    let mut bytes = 0;
    for _ in 0..rounds {
        let (out, _) = ctx.run(&[
            "sampled".into(),
            ctx.d.local.display().to_string(),
            ctx.d.records.to_string(),
            epochs.to_string(),
        ]);
        for e in 1..epochs {
            sampled.push(field_as::<f64>(&out, &format!(" e{e}_secs=")).unwrap());
            sampled_cpu.push(field_as::<f64>(&out, &format!(" e{e}_cpu=")).unwrap());
        }
        let (out, _) = ctx.stream(url, 0, epochs);
        for e in 1..epochs {
            stream.push(field_as::<f64>(&out, &format!(" e{e}_secs=")).unwrap());
            stream_cpu.push(field_as::<f64>(&out, &format!(" e{e}_cpu=")).unwrap());
            fetched_warm += field(&out, &format!(" e{e}_blocks=")).unwrap();
        }
        bytes = field(&out, " e1_bytes=").unwrap();
    }
    let (s, b) = (median(&stream), median(&sampled));
    let (sc, bc) = (median(&stream_cpu), median(&sampled_cpu));
    println!(
        "{:<40} {:>8} {:>9} {:>9}\n{:<40} {b:>7.3}s {:>9.0} {bc:>8.3}s\n{:<40} {s:>7.3}s {:>9.0} \
         {sc:>8.3}s",
        "what",
        "epoch",
        "MB/s",
        "CPU",
        "SampledProducer over the local cache",
        bytes as f64 / 1e6 / b,
        "stream, warm",
        bytes as f64 / 1e6 / s
    );
    println!(
        "ratio stream / SampledProducer: {:.2}x wall, {:.2}x CPU (target <= 1.3); blocks \
         fetched in the warm epochs: {fetched_warm}",
        s / b,
        sc / bc
    );
}

fn fractions(ctx: &Ctx, url: &str) {
    println!(
        "\nsecond-epoch fetches with a limit holding a fraction f of the share (against LRU \
         holding as many blocks over the same order, a simulation)"
    );
    println!(
        "{:<6} {:>12} {:>7} {:>15} {:>15} {:>15} {:>10} {:>10}",
        "f",
        "limit",
        "blocks",
        "stream epoch 2",
        "LRU epoch 2",
        "MIN epoch 2",
        "high water",
        "RssAnon"
    );
    for f in [0.25, 0.5, 0.75] {
        let dir = ctx.base.join("node.stream");
        let _ = std::fs::remove_dir_all(&dir);
        let (out, anon) = ctx.run(&[
            "fraction".into(),
            url.into(),
            dir.display().to_string(),
            f.to_string(),
            ctx.connections.to_string(),
            ctx.d.bytes.to_string(),
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        let g = |k: &str| field(&out, &format!(" {k}=")).unwrap();
        let blocks = g("blocks") as f64;
        println!(
            "{:<6.3} {:>12} {:>7} {:>8} ({:.2}) {:>8} ({:.2}) {:>8} ({:.2}) {:>10} {:>7.1}MiB",
            field_as::<f64>(&out, " f=").unwrap(),
            g("limit"),
            g("blocks"),
            g("stream_second"),
            g("stream_second") as f64 / blocks,
            g("lru_second"),
            g("lru_second") as f64 / blocks,
            g("belady_second"),
            g("belady_second") as f64 / blocks,
            g("high_water"),
            anon as f64 / 1024.0
        );
    }
    println!(
        "(fractions of the share's blocks; target: the stream about 1 - f; MIN: the fewest any \
         policy fetches with as many blocks and no prefetch)"
    );
}

/// The child roles; each prints one line of ` key=value` fields.
fn child(a: &[String]) -> common::R<()> {
    let p = |i: usize| Path::new(&a[i]);
    let n = |i: usize| a[i].parse::<u64>().unwrap();
    let mut line = String::new();
    match a[0].as_str() {
        "download" => {
            let (secs, records) = work::download(&a[1], p(2), n(3) as u32)?;
            line += &format!(" e0_secs={secs} records={records}");
        }
        "stream" => {
            let (epochs, st) = work::stream_epochs(&a[1], p(2), n(3), n(4) as u32, n(5) as usize)?;
            for (e, x) in epochs.iter().enumerate() {
                line += &format!(
                    " e{e}_secs={} e{e}_cpu={} e{e}_blocks={} e{e}_bytes={} e{e}_sum={}",
                    x.secs, x.cpu, x.blocks_fetched, x.bytes, x.checksum
                );
            }
            line += &format!(
                " fetched={} high_water={} wait_secs={}",
                st.bytes_fetched, st.disk_high_water, st.wait_seconds
            );
        }
        "sampled" => {
            for (e, x) in work::sampled_epochs(p(1), n(2) as usize, n(3) as usize)?
                .iter()
                .enumerate()
            {
                line += &format!(
                    " e{e}_secs={} e{e}_cpu={} e{e}_sum={}",
                    x.secs, x.cpu, x.checksum
                );
            }
        }
        "fraction" => {
            let f = work::fetch_fraction(&a[1], p(2), n(5), a[3].parse()?, n(4) as u32)?;
            line += &format!(
                " f={} limit={} blocks={} stream_second={} lru_second={} belady_second={} \
                 lru_capacity={} high_water={}",
                f.f,
                f.limit,
                f.blocks,
                f.stream_second,
                f.lru_second,
                f.belady_second,
                f.lru_capacity,
                f.disk_high_water
            );
        }
        r => return Err(format!("unknown role {r}").into()),
    }
    common::say(&line);
    Ok(())
}
