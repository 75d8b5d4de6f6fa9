//! Concurrency between real processes (this test binary re-executed as children):
//! - 8 processes open the same cold cache at once (released together by a file
//!   barrier): the source is read exactly once in total (every record read appends a
//!   byte to one shared O_APPEND log), exactly one process creates the cache, and all
//!   8 see identical, correct data;
//! - one process appends while 3 others keep opening and reading the cache without a
//!   lock: every reader sees a committed count (non-decreasing) and only exact records;
//! - a writer SIGKILLed while it holds the lock: the kernel releases the lock, the
//!   process that was waiting for it populates the cache and gets correct data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support;
use harmonics_dataset::cache::CacheReader;
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Tensor};
use support::reliability::*;

/// The child test, as `--exact` names it in this binary.
fn child_test() -> String {
    support::test_name(module_path!(), "child_process")
}
const GEN: u32 = 3;

fn wire_of(records: &[Tensor]) -> Vec<u8> {
    records.iter().flat_map(|t| t.to_wire().unwrap()).collect()
}

fn wait_file(path: &Path) {
    while !path.exists() {
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let cache = env_path("CACHE");
    let dir = cache.parent().unwrap().to_path_buf();
    let id = std::env::var("ID").unwrap_or_default();
    match role.as_str() {
        // Waits at the barrier, opens the cache (slow source, shared read log), writes
        // the outcome and every record's wire bytes.
        "opener" => {
            std::fs::write(dir.join(format!("ready.{id}")), b"").unwrap();
            wait_file(&dir.join("go"));
            let mut base = Slow::new(env_num("N"), GEN)
                .with_marker(&env_path("LOG"), Duration::from_millis(2));
            if let Ok(k) = std::env::var("STALL_AT") {
                base = base.stall_at(k.parse().unwrap());
            }
            let mut p = DiskCacheProducer::open_at(Box::new(base), cache, None).unwrap();
            let recs: Vec<Tensor> = (0..p.len()).map(|_| p.next().unwrap()).collect();
            let outcome = match p.outcome() {
                CacheOutcome::Created => "created",
                CacheOutcome::Reused => "reused",
                _ => "other",
            };
            std::fs::write(dir.join(format!("outcome.{id}")), outcome).unwrap();
            std::fs::write(dir.join(format!("out.{id}")), wire_of(&recs)).unwrap();
        }
        // Grows the cache one record at a time from N to END, then writes `stop`.
        "appender" => {
            for n in env_num("N") + 1..=env_num("END") {
                let base =
                    Slow::new(n, GEN).with_marker(&env_path("LOG"), Duration::from_micros(300));
                let p = DiskCacheProducer::open_at(Box::new(base), cache.clone(), None).unwrap();
                assert_eq!(p.len(), n);
            }
            std::fs::write(dir.join("stop"), b"").unwrap();
        }
        // Opens and reads the whole cache without a lock until `stop` appears; checks
        // each record; writes the counts it saw, one per line.
        "reader" => {
            let stop = dir.join("stop");
            let mut seen = Vec::new();
            loop {
                let last_round = stop.exists();
                let mut r = CacheReader::open(&cache).unwrap();
                let n = r.len() as usize;
                for i in 0..n {
                    let t = r.next_view().unwrap().to_owned();
                    assert_eq!(t, record(i, GEN), "reader {id}: record {i} of {n}");
                }
                seen.push(n.to_string());
                if last_round {
                    break;
                }
            }
            std::fs::write(dir.join(format!("seen.{id}")), seen.join("\n")).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

fn env(cache: &Path, log: &Path, n: usize, id: usize) -> Vec<(&'static str, String)> {
    vec![
        ("CACHE", cache.display().to_string()),
        ("LOG", log.display().to_string()),
        ("N", n.to_string()),
        ("ID", id.to_string()),
    ]
}

#[test]
fn eight_processes_open_a_cold_cache_and_the_source_is_read_once() {
    const N: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("shared.cache");
    let log = dir.path().join("reads.log");
    let mut kids: Vec<_> = (0..8)
        .map(|id| spawn_child(&child_test(), "opener", &env(&cache, &log, N, id)))
        .collect();
    for id in 0..8 {
        wait_file(&dir.path().join(format!("ready.{id}")));
    }
    std::fs::write(dir.path().join("go"), b"").unwrap();
    for k in &mut kids {
        assert!(k.wait().unwrap().success(), "a child failed");
    }
    let reads = file_len(&log);
    let outs: Vec<Vec<u8>> = (0..8)
        .map(|id| std::fs::read(dir.path().join(format!("out.{id}"))).unwrap())
        .collect();
    let outcomes: Vec<String> = (0..8)
        .map(|id| std::fs::read_to_string(dir.path().join(format!("outcome.{id}"))).unwrap())
        .collect();
    let created = outcomes.iter().filter(|o| *o == "created").count();
    println!("8 cold opens: source records read {reads} (dataset {N}); outcomes {outcomes:?}");
    assert_eq!(reads, N as u64, "the source was read more than once");
    assert_eq!(created, 1);
    assert_eq!(outcomes.iter().filter(|o| *o == "reused").count(), 7);
    let want = wire_of(&dataset(N, GEN));
    for (id, o) in outs.iter().enumerate() {
        assert!(o == &want, "process {id} saw different data");
    }
}

#[test]
fn readers_never_see_uncommitted_records_while_another_process_appends() {
    const N0: usize = 10;
    const END: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("growing.cache");
    let log = dir.path().join("reads.log");
    DiskCacheProducer::open_at(Box::new(Slow::new(N0, GEN)), cache.clone(), None).unwrap();
    let mut readers: Vec<_> = (0..3)
        .map(|id| spawn_child(&child_test(), "reader", &env(&cache, &log, N0, id)))
        .collect();
    let mut e = env(&cache, &log, N0, 9);
    e.push(("END", END.to_string()));
    let mut appender = spawn_child(&child_test(), "appender", &e);
    assert!(appender.wait().unwrap().success(), "appender failed");
    for r in &mut readers {
        assert!(
            r.wait().unwrap().success(),
            "a reader saw a bad record (see its assertion)"
        );
    }
    assert_eq!(
        file_len(&log),
        (END - N0) as u64,
        "only the new records were read"
    );
    let mut opens = 0;
    let mut distinct = std::collections::BTreeSet::new();
    for id in 0..3 {
        let seen: Vec<usize> = std::fs::read_to_string(dir.path().join(format!("seen.{id}")))
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "reader {id} went back: {seen:?}"
        );
        assert!(seen.iter().all(|&n| (N0..=END).contains(&n)));
        assert_eq!(*seen.last().unwrap(), END);
        opens += seen.len();
        distinct.extend(seen);
    }
    println!(
        "appending {N0} -> {END} one commit at a time under 3 lock-free readers: {opens} opens+full reads, {} distinct committed counts seen",
        distinct.len()
    );
    assert!(
        distinct.len() >= 3,
        "readers did not overlap with the appends: {distinct:?}"
    );
}

#[test]
fn a_writer_killed_while_holding_the_lock_releases_it_and_the_waiter_recovers() {
    const N: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("locked.cache");
    let log: PathBuf = dir.path().join("writer.log");
    let mut e = env(&cache, &log, N, 0);
    e.push(("STALL_AT", "5".into())); // holds the lock until killed
    let mut writer = spawn_child(&child_test(), "opener", &e);
    std::fs::write(dir.path().join("go"), b"").unwrap();
    assert!(
        wait_for_marker(&log, 5, &mut writer),
        "writer did not start populating"
    );
    // A second process now blocks on the lock the writer holds.
    let log2 = dir.path().join("waiter.log");
    let mut waiter = spawn_child(&child_test(), "opener", &env(&cache, &log2, N, 1));
    wait_file(&dir.path().join("ready.1"));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        file_len(&log2),
        0,
        "the waiter read the source while the lock was held"
    );
    assert!(sigkill(&mut writer), "writer finished before the kill");
    assert!(
        waiter.wait().unwrap().success(),
        "the waiter did not recover"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("outcome.1")).unwrap(),
        "created"
    );
    assert_eq!(
        std::fs::read(dir.path().join("out.1")).unwrap(),
        wire_of(&dataset(N, GEN))
    );
    assert_eq!(file_len(&log2), N as u64);
    assert!(
        temps_in(dir.path()).is_empty(),
        "{:?}",
        temps_in(dir.path())
    );
    assert_eq!(file_len(&log), 5);
    println!(
        "writer killed after 5 of {N} records while holding the lock; waiter populated all {N}"
    );
}
