//! Many nodes (issue 16, DESIGN §10): one cache published to a real S3 protocol
//! server (s3s-fs, verifying SigV4), four "nodes" (separate processes with separate
//! cache directories), two ranks each of a world of 8, each fetching only its ranks'
//! records with `PartialHttpProducer`. A counting proxy per node in front of the
//! server counts the bytes each node was sent.
//!
//! The children are this test binary run again (`node_child`, ignored unless asked
//! for), with the AWS settings in their own environment.

mod support;
use support::fault_proxy;
use support::nginx;
use support::s3;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fault_proxy::{FaultProxy, Faults};
use harmonics_dataset::cache::{write_compact, CacheWriter, Metadata};
use harmonics_dataset::http::{HttpOptions, PartialHttpProducer};
use harmonics_dataset::{Error, Producer, Sampler, SamplerOptions, Tensor};
use s3::{S3Server, ACCESS_KEY, SECRET_KEY};

const RECORDS: usize = 2000;
const WORLD: u64 = 8;
const EPOCH: u64 = 3;
const URL: &str = "s3://nodes/train.cache";

fn record(i: usize) -> Tensor {
    // 1 KiB of data per record; its first value is its global index.
    let mut v = vec![0.25f32; 256];
    v[0] = i as f32;
    Tensor::from_f32(&v)
}

fn sampler_options() -> SamplerOptions {
    SamplerOptions {
        seed: 42,
        shuffle: true,
        world_size: WORLD,
        ..SamplerOptions::default()
    }
}

/// Publishes RECORDS records as `s3://nodes/train.cache` on `server`; returns the
/// object's size.
fn publish(server: &S3Server, tmp: &Path) -> u64 {
    let src = tmp.join("src/train.cache");
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    let mut w = CacheWriter::create(&src, Metadata::new("t", "multinode")).unwrap();
    for i in 0..RECORDS {
        w.push(record(i).as_ref()).unwrap();
    }
    w.finish().unwrap();
    server.create_bucket("nodes");
    let staged = tmp.join("staged/train.cache");
    let f = write_compact(&src, &staged).unwrap();
    server.put("nodes", "train.cache", &std::fs::read(&staged).unwrap());
    f.bytes
}

fn spawn_node(proxy: &FaultProxy, node: u64, cache: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "node_child", "--nocapture", "--include-ignored"])
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", proxy.port()),
        )
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("HD_NODE", node.to_string())
        .env("HD_CACHE", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// One node: fetches ranks 2n and 2n+1, checks every record it holds is the right
/// one, and prints `HELD <global indices…>`.
#[test]
#[ignore = "a child process of the multi-node tests"]
fn node_child() {
    let node: u64 = std::env::var("HD_NODE").unwrap().parse().unwrap();
    let cache = std::env::var("HD_CACHE").unwrap();
    let ranks = [2 * node, 2 * node + 1];
    let mut p = PartialHttpProducer::new(
        URL,
        sampler_options(),
        &ranks,
        EPOCH,
        HttpOptions::cached_at(true, &cache),
    )
    .unwrap();
    let held: Vec<u64> = p.held().to_vec();
    for &g in &held {
        assert_eq!(
            p.get(g).unwrap().to_owned(),
            record(g as usize),
            "record {g}"
        );
    }
    let line: Vec<String> = held.iter().map(|g| g.to_string()).collect();
    println!("HELD {}", line.join(" "));
}

fn rank_indices(rank: u64) -> Vec<u64> {
    let mut s = Sampler::new(
        RECORDS as u64,
        SamplerOptions {
            rank,
            ..sampler_options()
        },
    )
    .unwrap();
    s.set_epoch(EPOCH);
    (0..s.size()).map(|k| s.index(k).unwrap()).collect()
}

#[test]
fn four_nodes_fetch_their_quarter_of_one_published_cache() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let object = publish(&server, tmp.path());
    let proxies: Vec<FaultProxy> = (0..4)
        .map(|_| FaultProxy::start(server.port(), Faults::none()))
        .collect();
    let caches: Vec<PathBuf> = (0..4)
        .map(|n| tmp.path().join(format!("node{n}/cache/train.partial")))
        .collect();
    let children: Vec<Child> = (0..4)
        .map(|n| spawn_node(&proxies[n], n as u64, &caches[n]))
        .collect();
    let mut held_by_node = Vec::new();
    for (n, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "node {n}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("HELD "))
            .expect("HELD line");
        let held: BTreeSet<u64> = line.split(' ').map(|g| g.parse().unwrap()).collect();
        held_by_node.push(held);
    }

    // Every rank's slice of the same global order: disjoint, and together all records.
    let mut union = BTreeSet::new();
    for (n, held) in held_by_node.iter().enumerate() {
        let want: BTreeSet<u64> = rank_indices(2 * n as u64)
            .into_iter()
            .chain(rank_indices(2 * n as u64 + 1))
            .collect();
        assert_eq!(*held, want, "node {n} holds exactly its ranks' records");
        for g in held {
            assert!(union.insert(*g), "record {g} held by two nodes");
        }
    }
    assert_eq!(union.len(), RECORDS);

    // Each node was sent about its quarter plus the header and index, not the object.
    for (n, p) in proxies.iter().enumerate() {
        let sent = p.body_bytes();
        let ratio = sent as f64 / object as f64;
        eprintln!(
            "node {n}: {sent} of {object} bytes ({:.1}%), {} requests",
            ratio * 100.0,
            p.requests()
        );
        assert!(ratio <= 0.30, "node {n} was sent {sent} of {object} bytes");
        assert!(
            ratio >= 0.25,
            "node {n} was sent {sent} bytes: less than its records"
        );
    }

    // Reopened offline (the server gone): served from the partial cache, and a record
    // not held is a clear error naming it and the ranks held.
    drop(proxies);
    drop(server);
    let mut p = PartialHttpProducer::new(
        URL,
        sampler_options(),
        &[0, 1],
        EPOCH,
        HttpOptions::cached_at(true, caches[0].to_str().unwrap()),
    )
    .unwrap();
    assert_eq!(p.stats().requests, 0);
    assert_eq!(p.size().unwrap(), held_by_node[0].len());
    let g = *held_by_node[0].iter().next().unwrap();
    assert_eq!(p.view_at(g).unwrap().to_owned(), record(g as usize));
    let missing = *held_by_node[1].iter().next().unwrap();
    match p.view_at(missing) {
        Err(e @ Error::NotHeld { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&format!("record {missing}")), "{m}");
            assert!(
                m.contains("ranks [0, 1]") && m.contains("world size 8"),
                "{m}"
            );
        }
        other => panic!("expected NotHeld, got {other:?}"),
    }
}

#[test]
fn a_node_killed_mid_fetch_leaves_no_partial_cache() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    publish(&server, tmp.path());
    // The 20th exchange is held back, so the child is killed with records fetched
    // and the partial cache not complete.
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            delay_response: vec![(20, Duration::from_secs(60))],
            ..Faults::none()
        },
    );
    let cache = tmp.path().join("node/cache/train.partial");
    let mut child = spawn_node(&proxy, 0, &cache);
    let guard = Instant::now();
    while proxy.requests() < 21 {
        assert!(
            guard.elapsed() < Duration::from_secs(60),
            "the child never got that far"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !cache.exists(),
        "nothing is visible at the partial cache's name"
    );
    // A later fetch (the proxy no longer delaying) completes normally.
    proxy.set_faults(Faults::none());
    let o = spawn_node(&proxy, 0, &cache).wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(cache.exists());
}

/// A cache of RECORDS records at `dir/name` (index after the records).
fn source_cache(dir: &Path, name: &str) -> PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(dir).unwrap();
    let mut w = CacheWriter::create(&src, Metadata::new("t", "multinode")).unwrap();
    for i in 0..RECORDS {
        w.push(record(i).as_ref()).unwrap();
    }
    w.finish().unwrap();
    src
}

#[test]
fn partial_fetch_over_plain_http_from_a_directory_published_for_nginx() {
    let server = nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = source_cache(&tmp.path().join("cache"), "train.cache");
    // `cache_cli publish NAME DIR` into the directory nginx serves; read through its
    // gzip-off location (nginx serves no byte ranges of a gzipped response).
    let s = harmonics_dataset::publish(
        src.to_str().unwrap(),
        server.www().to_str().unwrap(),
        &HttpOptions::default(),
    )
    .unwrap();
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let url = format!("http://127.0.0.1:{}/identity/train.cache", proxy.port());
    let local = tmp.path().join("node/part.cache");
    let mut p = PartialHttpProducer::new(
        &url,
        sampler_options(),
        &[5],
        EPOCH,
        HttpOptions::cached_at(true, local.to_str().unwrap()),
    )
    .unwrap();
    let want = rank_indices(5);
    let mut sorted = want.clone();
    sorted.sort_unstable();
    assert_eq!(p.held(), sorted);
    // In rank 5's order, by global index: exactly the sampler's records.
    for &g in &want {
        assert_eq!(p.view_at(g).unwrap().to_owned(), record(g as usize));
    }
    // Sequentially: the held records in ascending global order, cycling.
    for &g in sorted.iter().chain(sorted.iter().take(3)) {
        assert_eq!(p.next().unwrap(), record(g as usize));
    }
    let not_held = (0..RECORDS as u64)
        .find(|g| sorted.binary_search(g).is_err())
        .unwrap();
    let e = p.view_at(not_held).unwrap_err();
    assert!(matches!(e, Error::NotHeld { .. }), "{e}");
    assert!(e.to_string().contains("ranks [5] of world size 8"), "{e}");
    assert!(p.view_at(RECORDS as u64 + 7).is_err());

    // Every range came back as a 206 pinned to the ETag: If-Match on all but the first.
    let ex = proxy.exchanges();
    assert!(ex.iter().all(|e| e.request_header("range").is_some()));
    assert!(ex
        .iter()
        .skip(1)
        .all(|e| e.request_header("if-match").is_some()));
    // The benchmark figure of issue 16: a node serving 1/8 of the ranks is sent at
    // most 15% of the object (a byte count, not a time).
    let ratio = proxy.body_bytes() as f64 / s.bytes as f64;
    eprintln!(
        "partial fetch, 1 rank of 8: {} of {} bytes = {:.1}% of the object, {} requests",
        proxy.body_bytes(),
        s.bytes,
        ratio * 100.0,
        proxy.requests()
    );
    assert!(ratio <= 0.15, "{ratio}");
}

#[test]
fn a_cache_that_is_not_published_is_refused_with_a_clear_error_and_no_file() {
    let server = nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    // Served as it is (index after the records), not through `publish`.
    let src = source_cache(&tmp.path().join("cache"), "raw.cache");
    server.publish("raw.cache", &std::fs::read(&src).unwrap());
    let local = tmp.path().join("node/part.cache");
    let e = PartialHttpProducer::new(
        &server.url("/identity/raw.cache"),
        sampler_options(),
        &[0],
        0,
        HttpOptions::cached_at(true, local.to_str().unwrap()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cache_cli publish"), "{e}");
    assert!(e.to_string().contains("raw.cache"), "{e}");
    assert!(!local.exists());
    // Ranks outside the world and a missing cache path are refused up front.
    let bad = PartialHttpProducer::new(
        &server.url("/identity/raw.cache"),
        sampler_options(),
        &[8],
        0,
        HttpOptions::cached_at(true, local.to_str().unwrap()),
    )
    .unwrap_err();
    assert!(bad.to_string().contains("world size 8"), "{bad}");
    let none = PartialHttpProducer::new(
        &server.url("/identity/raw.cache"),
        sampler_options(),
        &[0],
        0,
        HttpOptions::default(),
    )
    .unwrap_err();
    assert!(none.to_string().contains("cache_path"), "{none}");
}

#[test]
fn an_object_replaced_mid_fetch_is_an_error_never_a_splice() {
    let server = nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = source_cache(&tmp.path().join("cache"), "train.cache");
    harmonics_dataset::publish(
        src.to_str().unwrap(),
        server.www().to_str().unwrap(),
        &HttpOptions::default(),
    )
    .unwrap();
    // Exchanges 0-2 are the header and the index; the answer to the 5th is held
    // back while the file is replaced, so the later ranges meet another version.
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            delay_response: vec![(4, Duration::from_secs(2))],
            ..Faults::none()
        },
    );
    let url = format!("http://127.0.0.1:{}/identity/train.cache", proxy.port());
    let local = tmp.path().join("node/part.cache");
    let fetch = {
        let (url, local) = (url.clone(), local.clone());
        std::thread::spawn(move || {
            PartialHttpProducer::new(
                &url,
                sampler_options(),
                &[3],
                EPOCH,
                HttpOptions {
                    connections: 1,
                    ..HttpOptions::cached_at(true, local.to_str().unwrap())
                },
            )
        })
    };
    let guard = Instant::now();
    while proxy.requests() < 5 {
        assert!(
            guard.elapsed() < Duration::from_secs(60),
            "the fetch never got that far"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut other = std::fs::read(server.www().join("train.cache")).unwrap();
    let n = other.len();
    other[n - 1] ^= 1;
    // nginx's ETag is "mtime-size": the new version gets another mtime.
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    server.publish_with_mtime("train.cache", &other, later);
    let e = fetch.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("changed"), "{e}");
    assert!(!local.exists(), "no partial cache from two versions");
}
