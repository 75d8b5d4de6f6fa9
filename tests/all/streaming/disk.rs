//! The disk limit, watched from outside: an independent thread sums `st_blocks` of the
//! node's stream cache directory every 2 ms while two rank processes read two epochs
//! of a dataset five times the limit, one of them killed with SIGKILL mid-fetch and
//! started again. It never sees more than the limit, and the ranks' own
//! `disk_high_water` agrees.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn the_node_cache_never_exceeds_its_limit_through_two_epochs_and_a_kill() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let node = s.tmp.path().join("node");
    let dir = node.join("disk.stream");
    let limit: u64 = 800 << 10;
    assert!(s.bytes > 5 * limit);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, seen, samples, dir) = (stop.clone(), seen.clone(), samples.clone(), dir.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                seen.fetch_max(du(&dir), Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let rank = |r: u64| Rank {
        url: url.clone(),
        rank: r,
        world: 2,
        rpn: 2,
        cache_dir: node.clone(),
        name: "disk.stream".into(),
        limit,
        epochs: 2,
        state_file: None,
        pace_us: 50,
    };
    let steady = rank(0).spawn();
    let mut victim = rank(1).spawn();
    // Killed once the cache holds blocks (so fetches are under way), at a varying point.
    while du(&dir) < 200 << 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(
        20 + u64::from(std::process::id() % 50),
    ));
    victim.kill().unwrap();
    victim.wait().unwrap();
    let again = report(rank(1).spawn());
    let steady = report(steady);
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let max = seen.load(Ordering::Relaxed);
    eprintln!(
        "limit {limit}: the watcher's highest reading {max} in {} samples; the ranks' high \
         water {} and {}",
        samples.load(Ordering::Relaxed),
        steady.stats["disk_high_water"],
        again.stats["disk_high_water"]
    );
    assert!(
        max <= limit,
        "the directory held {max} bytes, over the limit {limit}"
    );
    assert!(max > limit / 2, "the test did not fill the cache ({max})");
    for r in [&steady, &again] {
        let hw = r.stats["disk_high_water"] as u64;
        assert!(hw <= limit && hw > limit / 2, "{hw}");
        assert_eq!(r.epochs.len(), 2);
    }
    // No temp file of the killed fetcher is left (reclaimed) once the ranks are done.
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.len() <= 1, "{left:?}");
}
