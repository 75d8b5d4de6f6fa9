//! Streaming a dataset larger than the disk (issue 22, DESIGN §11): a published cache
//! served by a real nginx (and s3s-fs) on 127.0.0.1, read by `StreamingProducer`s in
//! several processes per node (this test binary run again: `rank_child`), each node a
//! cache directory of its own.
//!
//! One file per concept: `order` (exact records, disjoint ranks, epochs), `disk` (the
//! limit watched from outside, kill -9), `fetching` (share, fetch once, Belady against
//! LRU, warm restart), `failures` (limit below the minimum, object replaced, resume
//! after kill -9), `s3` (the same exactness over s3://).

use crate::support;

mod disk;
mod failures;
mod fetching;
mod order;
mod s3;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use harmonics_dataset::cache::{CacheWriter, Metadata};
use harmonics_dataset::{
    HttpOptions, Producer, SamplerOptions, StreamOptions, StreamState, StreamingProducer, Tensor,
};
use support::nginx::Nginx;

/// Records of the test dataset: 1 KiB of data each.
const RECORDS: usize = 4000;
/// Block size of most tests: about 31 records.
const BLOCK: u64 = 32 << 10;

/// Record `i` of version `gen`: 256 floats, the first its index, the second `gen`.
fn record(i: usize, gen: u32) -> Tensor {
    let mut v = vec![0.5f32; 256];
    v[0] = i as f32;
    v[1] = gen as f32;
    v[255] = (i % 97) as f32;
    Tensor::from_f32(&v)
}

/// The index of a record of version `gen`, checked whole.
fn check(t: &Tensor, gen: u32) -> u64 {
    let v = t.to_f32();
    let i = v[0] as usize;
    assert_eq!(*t, record(i, gen), "record {i} is not version {gen}'s");
    i as u64
}

/// Writes the dataset of version `gen` as a published cache (index at the head) and
/// returns its bytes.
fn published(tmp: &Path, gen: u32) -> Vec<u8> {
    let src = tmp.join(format!("src{gen}/train.cache"));
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    let lock = harmonics_dataset::cache::CacheLock::exclusive(&src).unwrap();
    let mut w = CacheWriter::create(&src, Metadata::new("t", "stream"), &lock).unwrap();
    for i in 0..RECORDS {
        w.push(record(i, gen).as_ref()).unwrap();
    }
    w.finish().unwrap();
    drop(lock);
    let staged = tmp.join(format!("staged{gen}/train.cache"));
    harmonics_dataset::cache::write_compact(&src, &staged).unwrap();
    std::fs::read(&staged).unwrap()
}

/// nginx serving version 1 of the dataset at `/identity/train.cache`.
struct Served {
    server: Nginx,
    bytes: u64,
    tmp: tempfile::TempDir,
}

fn serve() -> Served {
    let server = Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let body = published(tmp.path(), 1);
    server.publish("train.cache", &body);
    Served {
        bytes: body.len() as u64,
        server,
        tmp,
    }
}

/// Bytes of the published file's header and index (what every opener fetches once).
fn head_bytes(bytes: u64) -> u64 {
    // The frames: RECORDS records of 9 + 1037 wire bytes, 8-aligned.
    bytes - RECORDS as u64 * frame_len()
}

fn frame_len() -> u64 {
    let wire = record(0, 1).to_wire().unwrap().len() as u64;
    (9 + wire).div_ceil(8) * 8
}

fn options(limit: u64, rpn: u64, name: &str) -> StreamOptions {
    StreamOptions {
        cache_limit: limit,
        block_bytes: BLOCK,
        ranks_per_node: rpn,
        cache_name: name.to_string(),
        http: HttpOptions {
            connections: 2,
            ..HttpOptions::default()
        },
        ..StreamOptions::default()
    }
}

fn order(rank: u64, world: u64) -> SamplerOptions {
    SamplerOptions {
        seed: 11,
        rank,
        world_size: world,
        ..SamplerOptions::default()
    }
}

/// Allocated bytes of `dir` and its entries, as `du` counts (the independent watcher's
/// measure).
fn du(dir: &Path) -> u64 {
    let mut n = std::fs::symlink_metadata(dir)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0);
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                n += m.blocks() * 512;
            }
        }
    }
    n
}

/// A rank process: `rank_child` with these settings.
#[derive(Clone, Debug)]
struct Rank {
    url: String,
    rank: u64,
    world: u64,
    rpn: u64,
    cache_dir: PathBuf,
    name: String,
    limit: u64,
    epochs: u64,
    /// Save the state after every record here (and resume from it if it exists).
    state_file: Option<PathBuf>,
    /// Sleep this many µs per record (slows a rank down).
    pace_us: u64,
}

impl Rank {
    fn command(&self) -> Command {
        let mut c = Command::new(std::env::current_exe().unwrap());
        let child = support::test_name(module_path!(), "rank_child");
        c.args(["--exact", &child, "--nocapture", "--include-ignored"])
            .env("HARMONICS_CACHE_DIR", &self.cache_dir)
            .env("HD_URL", &self.url)
            .env("HD_RANK", self.rank.to_string())
            .env("HD_WORLD", self.world.to_string())
            .env("HD_RPN", self.rpn.to_string())
            .env("HD_NAME", &self.name)
            .env("HD_LIMIT", self.limit.to_string())
            .env("HD_EPOCHS", self.epochs.to_string())
            .env("HD_PACE", self.pace_us.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(s) = &self.state_file {
            c.env("HD_STATE", s);
        }
        c
    }

    fn spawn(&self) -> Child {
        self.command().spawn().unwrap()
    }
}

/// What a rank child printed: its records per epoch and its stats.
#[derive(Debug, Default)]
struct Report {
    epochs: Vec<Vec<u64>>,
    stats: HashMap<String, f64>,
}

fn report(child: Child) -> Report {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rank failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = Report::default();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("EPOCH ") {
            let v: Vec<u64> = rest
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap())
                .collect();
            r.epochs.push(v);
        } else if let Some(rest) = line.strip_prefix("STATS ") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=').unwrap();
                r.stats.insert(k.to_string(), v.parse().unwrap());
            }
        }
    }
    r
}

fn stats_of(s: &harmonics_dataset::StreamStats) -> String {
    format!(
        "bytes_fetched={} blocks_fetched={} blocks_evicted={} disk_bytes={} disk_high_water={} \
         wait_seconds={}",
        s.bytes_fetched,
        s.blocks_fetched,
        s.blocks_evicted,
        s.disk_bytes,
        s.disk_high_water,
        s.wait_seconds
    )
}

fn encode_state(s: &StreamState) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {} {} {}",
        s.seed,
        s.epoch,
        s.step,
        s.num_records,
        s.world_size,
        s.ranks_per_node,
        s.rank,
        s.block_bytes,
        s.shuffle as u8,
        s.drop_last as u8,
        s.redeal as u8
    )
}

fn decode_state(t: &str) -> StreamState {
    let v: Vec<u64> = t.split_whitespace().map(|x| x.parse().unwrap()).collect();
    StreamState {
        seed: v[0],
        epoch: v[1],
        step: v[2],
        num_records: v[3],
        world_size: v[4],
        ranks_per_node: v[5],
        rank: v[6],
        block_bytes: v[7],
        shuffle: v[8] != 0,
        drop_last: v[9] != 0,
        redeal: v[10] != 0,
    }
}

/// One rank: reads `HD_EPOCHS` epochs (from a saved state when `HD_STATE` names an
/// existing file), checks every record, prints `EPOCH e i i i…` per epoch and `STATS`.
/// With `HD_STATE`, after each record the state is saved (write + rename) with the
/// record read appended to `HD_STATE.log`.
#[test]
#[ignore = "a child process of the streaming tests"]
fn rank_child() {
    let var = |k: &str| std::env::var(k).unwrap();
    let num = |k: &str| var(k).parse::<u64>().unwrap();
    let mut p = StreamingProducer::new(
        &var("HD_URL"),
        order(num("HD_RANK"), num("HD_WORLD")),
        options(num("HD_LIMIT"), num("HD_RPN"), &var("HD_NAME")),
    )
    .unwrap();
    let pace = std::time::Duration::from_micros(num("HD_PACE"));
    let state_file = std::env::var("HD_STATE").ok().map(PathBuf::from);
    if let Some(f) = &state_file {
        if let Ok(t) = std::fs::read_to_string(f) {
            // The state and the number of records logged when it was saved: records
            // logged after it (read, then killed before the save) are read again.
            let (state, lines) = t.rsplit_once(' ').unwrap();
            p.restore(&decode_state(state)).unwrap();
            let log = f.with_extension("log");
            let kept: Vec<String> = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .take(lines.parse().unwrap())
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&log, kept.concat()).unwrap();
        }
    }
    let mut logged = state_file
        .as_ref()
        .map(|f| {
            std::fs::read_to_string(f.with_extension("log"))
                .unwrap_or_default()
                .lines()
                .count()
        })
        .unwrap_or(0);
    let size = p.rank_size();
    // The Producer's size is the records per rank per epoch (DESIGN §11), not the dataset's.
    assert_eq!(Producer::size(&mut p).unwrap() as u64, size);
    assert!(size < p.num_records() || num("HD_WORLD") == 1);
    let end_epoch = num("HD_EPOCHS");
    let mut log = state_file.as_ref().map(|f| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f.with_extension("log"))
            .unwrap()
    });
    while p.epoch() < end_epoch {
        let e = p.epoch();
        let whole = p.state().step == 0;
        let mut got = Vec::new();
        while p.epoch() == e {
            let t = p.next().unwrap();
            let i = check(&t, 1);
            got.push(i);
            if let (Some(f), Some(l)) = (&state_file, log.as_mut()) {
                use std::io::Write;
                writeln!(l, "{e} {i}").unwrap();
                logged += 1;
                let tmp = f.with_extension("tmp");
                std::fs::write(&tmp, format!("{} {logged}", encode_state(&p.state()))).unwrap();
                std::fs::rename(&tmp, f).unwrap();
            }
            if !pace.is_zero() {
                std::thread::sleep(pace);
            }
        }
        assert!(got.len() as u64 <= size);
        if whole {
            assert_eq!(got.len() as u64, size, "an epoch is size() records");
        }
        let line: Vec<String> = got.iter().map(|i| i.to_string()).collect();
        println!("EPOCH {e} {}", line.join(" "));
    }
    println!("STATS {}", stats_of(&p.stats()));
}
