//! Many nodes (issue 16, DESIGN §10): one cache published to a real S3 protocol
//! server (s3s-fs, verifying SigV4), four "nodes" (separate processes with separate
//! cache directories), two ranks each of a world of 8, each fetching only its ranks'
//! records with `PartialHttpProducer`. A counting proxy per node in front of the
//! server counts the bytes each node was sent.
//!
//! The children are this test binary run again (`node_child`, ignored unless asked
//! for), with the AWS settings in their own environment.
//!
//! One file per concept: `s3_nodes`, `over_http`, `one_node` (the ranks of one node
//! sharing a partial cache); the node child and the helpers are here.

use crate::support;

mod one_node;
mod over_http;
mod s3_nodes;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harmonics_dataset::cache::{write_compact, CacheLock, CacheWriter, Metadata};
use harmonics_dataset::{
    Error, HttpOptions, PartialHttpProducer, Producer, Sampler, SamplerOptions, Tensor,
};
use support::fault_proxy::{FaultProxy, Faults};
use support::nginx;
use support::s3::{S3Server, ACCESS_KEY, SECRET_KEY};

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
    let lock = CacheLock::exclusive(&src).unwrap();
    let mut w = CacheWriter::create(&src, Metadata::new("t", "multinode"), &lock).unwrap();
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
    // Its S3 settings are the environment: these, not this process's.
    support::s3::without_aws_env(&mut Command::new(std::env::current_exe().unwrap()))
        .args([
            "--exact",
            &support::test_name(module_path!(), "node_child"),
            "--nocapture",
            "--include-ignored",
        ])
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
