//! Stream caches (DESIGN §11) in `cache_cli`: `list` shows one with its disk use and
//! limit (`--json`: `"kind": "stream"`, `"disk_bytes"`, `"cache_limit"`), and `rm` and
//! `clear` remove it under a live reader, which goes on serving exact records.

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
    run_ok(&dir, &["rm", "train.stream"]);
    assert!(!dir.join("train.stream").join("stream.info").exists());
    for k in 300..1000 {
        check(&mut p, k);
    }
    // clear, likewise; the plain cache goes too, nothing else is left but what the
    // reader made again.
    run(&dir, &["clear"]);
    for k in 1000..p.rank_size() {
        check(&mut p, k);
    }
}
