//! Stream caches (DESIGN §11) in `cache_cli`: `list` shows one with its disk use and
//! limit (`--json`: `"kind": "stream"`, `"disk_bytes"`, `"cache_limit"`); `rm` and
//! `clear` remove it under a live reader, which goes on serving exact records (and
//! makes it again, a stream cache again); `prune` leaves it alone.

use super::*;
use harmonics_dataset::{HttpOptions, Producer, SamplerOptions, StreamOptions, StreamingProducer};

/// A published cache of `n` records served by nginx; its URL.
fn served(server: &support::nginx::Nginx, tmp: &Path, n: usize) -> String {
    let src = tmp.join("src/train.cache");
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    write_cache(&src, n);
    let staged = tmp.join("staged/train.cache");
    harmonics_dataset::cache::write_compact(&src, &staged).unwrap();
    server.publish("train.cache", &std::fs::read(&staged).unwrap());
    server.url("/identity/train.cache")
}

fn stream(url: &str, dir: &Path, limit: u64) -> StreamingProducer {
    StreamingProducer::new(
        url,
        SamplerOptions {
            seed: 5,
            ..SamplerOptions::default()
        },
        StreamOptions {
            cache_limit: limit,
            block_bytes: 4096,
            cache_name: dir.join("train.stream").to_str().unwrap().to_string(),
            http: HttpOptions {
                connections: 1,
                ..HttpOptions::default()
            },
            ..StreamOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn list_shows_a_stream_cache_with_its_disk_use_and_limit_and_rm_keeps_a_reader_exact() {
    let server = support::nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = served(&server, tmp.path(), 2000);
    let dir = tmp.path().join("cache");
    write_cache(&dir.join("plain.cache"), 3);
    let mut p = stream(&url, &dir, 1 << 20);
    let want = records(2000, 7.0);
    let check = |p: &mut StreamingProducer, k: u64| {
        let i = p.index(p.epoch(), k) as usize;
        assert_eq!(p.next().unwrap(), want[i], "record {i}");
    };
    for k in 0..300 {
        check(&mut p, k);
    }
    let v: Value = serde_json::from_str(&run_ok(&dir, &["list", "--json"])).unwrap();
    let s = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "train.stream")
        .unwrap_or_else(|| panic!("no stream entry in {v}"));
    assert_eq!(s["kind"], "stream");
    assert_eq!(s["cache_limit"], 1 << 20);
    let disk = s["disk_bytes"].as_u64().unwrap();
    assert!(disk > 0 && disk <= 1 << 20, "{disk}");
    let plain = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "plain.cache")
        .unwrap();
    assert_eq!(plain["kind"], "cache");
    // Piped: one path per line, the stream cache among them.
    assert!(run_ok(&dir, &["list"])
        .lines()
        .any(|l| l.ends_with("train.stream")));
    // rm under the live reader: it goes on, exact (blocks fetched again as needed).
    let blocks = || -> Vec<(String, u64)> {
        std::fs::read_dir(dir.join("train.stream"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".blk"))
                    .map(|e| {
                        let ino = std::os::unix::fs::MetadataExt::ino(&e.metadata().unwrap());
                        (e.file_name().to_string_lossy().into_owned(), ino)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = blocks();
    assert!(!before.is_empty());
    run_ok(&dir, &["rm", "train.stream"]);
    // Every block file it held is gone (the prefetch may have fetched some again,
    // into new files).
    let after = blocks();
    assert!(before.iter().all(|b| !after.contains(b)), "{after:?}");
    for k in 300..1000 {
        check(&mut p, k);
    }
    // The directory the reader made again is a stream cache again: listed as one entry,
    // not as its block files.
    let v: Value = serde_json::from_str(&run_ok(&dir, &["list", "--json"])).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"train.stream"), "{names:?}");
    assert!(
        names.iter().all(|n| !n.starts_with("train.stream/")),
        "{names:?}"
    );
    // prune beside the live reader leaves the stream cache alone (it keeps its own
    // limit) and removes the plain cache; the reader goes on, exact.
    run_ok(&dir, &["prune", "--max-size", "0"]);
    assert!(dir.join("train.stream").join("stream.info").exists());
    assert!(!dir.join("plain.cache").exists());
    for k in 1000..1300 {
        check(&mut p, k);
    }
    // clear, likewise; the plain cache goes too, nothing else is left but what the
    // reader made again.
    run(&dir, &["clear"]);
    for k in 1300..p.rank_size() {
        check(&mut p, k);
    }
}

/// `rm` again and again while the reader and its prefetch fetch blocks: a block whose
/// temp file was removed under its fetcher is fetched again, the directory and its
/// `stream.info` are made again, and the reader never fails nor serves a wrong record.
#[test]
fn rm_again_and_again_under_a_fetching_reader_never_fails_it() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let server = support::nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = served(&server, tmp.path(), 2000);
    let dir = tmp.path().join("cache");
    let want = records(2000, 7.0);
    let stop = Arc::new(AtomicBool::new(false));
    let removals = Arc::new(AtomicUsize::new(0));
    let remover = {
        let (dir, stop, removals) = (dir.clone(), stop.clone(), removals.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Fails only when the directory is gone at that moment.
                if run(&dir, &["rm", "train.stream"]).status.success() {
                    removals.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut p = stream(&url, &dir, 1 << 20);
    // Two epochs at least, and on until the cache was removed 5 times under it.
    let mut e = 0;
    while e < 2 || (removals.load(Ordering::Relaxed) < 5 && e < 100) {
        for k in 0..p.rank_size() {
            let i = p.index(e, k) as usize;
            let t = p
                .next()
                .unwrap_or_else(|err| panic!("epoch {e} step {k}: {err}"));
            assert_eq!(t, want[i], "record {i}");
        }
        e += 1;
    }
    stop.store(true, Ordering::Relaxed);
    remover.join().unwrap();
    let removals = removals.load(Ordering::Relaxed);
    eprintln!("{removals} removals under the reader in {e} epochs");
    assert!(removals >= 5, "{removals}");
}
