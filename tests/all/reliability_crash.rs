//! Crash safety under real SIGKILLs: a child process populates, appends to, or rebuilds
//! (token change) a cache through a slow producer that marks each record it hands out;
//! the parent kills it at a known point. After every kill the cache read with no source
//! is one complete committed state (old or new, never torn, duplicated or mixed), the
//! next open yields exactly the full correct dataset, and no temp file survives it.

use std::path::Path;
use std::time::Duration;

use crate::support;
use harmonics_dataset::cache::{CacheLock, CacheWriter, Metadata};
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Tensor};
use support::reliability::*;

/// The child test, as `--exact` names it in this binary.
fn child_test() -> String {
    support::test_name(module_path!(), "child_cache_writer")
}

/// The child role: opens the cache at $CACHE with a slow source of $N records of
/// generation $GEN and token $TOKEN, marking each record in $MARKER.
#[test]
fn child_cache_writer() {
    if std::env::var(ROLE).is_err() {
        return;
    }
    let base = Slow::new(env_num("N"), env_num("GEN") as u32)
        .with_marker(&env_path("MARKER"), Duration::from_millis(3));
    let tok = std::env::var("TOKEN").unwrap();
    DiskCacheProducer::open_at(Box::new(base), env_path("CACHE"), token(&tok)).unwrap();
}

/// A committed state a cache may be in: token, generation, record count.
#[derive(Clone, Copy, Debug, PartialEq)]
struct State {
    token: &'static str,
    gen: u32,
    n: usize,
}

fn matches(state: State, token: &str, records: &[Tensor]) -> bool {
    state.token == token && records == dataset(state.n, state.gen).as_slice()
}

#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    finished_before_kill: usize,
    old_state_after_kill: usize,
    new_state_after_kill: usize,
    no_cache_after_kill: usize,
    temps_left_by_kill: usize,
}

/// One scenario: `before` is the committed state prepared before the child runs
/// (None: no cache), `after` what the child writes. Kills at each `points` entry:
/// `(k, extra)` = after the k-th record marker, plus `extra` more time.
fn scenario(name: &str, before: Option<State>, after: State, points: &[(u64, u64)]) -> Tally {
    let mut t = Tally::default();
    for (run, &(k, extra_us)) in points.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("data.cache");
        let marker = dir.path().join("marker");
        if let Some(b) = before {
            DiskCacheProducer::open_at(
                Box::new(Slow::new(b.n, b.gen)),
                cache.clone(),
                token(b.token),
            )
            .unwrap();
        }
        let mut child = spawn_child(
            &child_test(),
            "writer",
            &[
                ("CACHE", cache.display().to_string()),
                ("MARKER", marker.display().to_string()),
                ("N", after.n.to_string()),
                ("GEN", after.gen.to_string()),
                ("TOKEN", after.token.to_string()),
            ],
        );
        wait_for_marker(&marker, k, &mut child);
        std::thread::sleep(Duration::from_micros(extra_us));
        if sigkill(&mut child) {
            t.kills += 1;
        } else {
            t.finished_before_kill += 1;
        }
        if !temps_in(dir.path()).is_empty() {
            t.temps_left_by_kill += 1;
        }

        // 1. With no source: exactly one complete committed state.
        match read_cache(&cache) {
            None => {
                assert!(before.is_none(), "{name} run {run}: the old cache vanished");
                t.no_cache_after_kill += 1;
            }
            Some(Err(e)) => panic!("{name} run {run} (k={k}): cache unreadable after kill: {e}"),
            Some(Ok((tok, recs))) => {
                // Random access agrees: the index in force covers exactly the commit.
                let mut r = harmonics_dataset::cache::CacheReader::open(&cache).unwrap();
                for i in (0..recs.len()).rev() {
                    let t = r.view_at(i as u64).unwrap_or_else(|e| {
                        panic!("{name} run {run} (k={k}): view_at({i}) after kill: {e}")
                    });
                    assert!(
                        t.to_owned() == recs[i],
                        "{name} run {run}: view_at({i}) differs"
                    );
                }
                assert!(r.view_at(recs.len() as u64).is_err());
                if matches(after, &tok, &recs) {
                    t.new_state_after_kill += 1;
                } else if before.is_some_and(|b| matches(b, &tok, &recs)) {
                    t.old_state_after_kill += 1;
                } else {
                    panic!(
                        "{name} run {run} (k={k}): torn/mixed state: token {tok:?}, {} records",
                        recs.len()
                    );
                }
            }
        }

        // 2. The next open (a fast source of the new data) serves exactly it.
        let mut p = DiskCacheProducer::open_at(
            Box::new(Slow::new(after.n, after.gen)),
            cache.clone(),
            token(after.token),
        )
        .unwrap();
        let outcome = p.outcome().clone();
        let got: Vec<Tensor> = (0..p.len()).map(|_| p.next().unwrap()).collect();
        assert_eq!(
            got,
            dataset(after.n, after.gen),
            "{name} run {run} (k={k}): wrong data after recovery ({outcome:?})"
        );
        assert_eq!(p.metadata().token, after.token);
        drop(p);
        assert_eq!(
            temps_in(dir.path()),
            Vec::<String>::new(),
            "{name} run {run}: temp files survive the next open ({outcome:?})"
        );
        // 3. And a third open reuses it without touching the source.
        let p = DiskCacheProducer::open_at(
            Box::new(Slow::new(after.n, after.gen)),
            cache.clone(),
            token(after.token),
        )
        .unwrap();
        assert_eq!(p.outcome(), &CacheOutcome::Reused, "{name} run {run}");
    }
    println!("{name}: {t:?}");
    t
}

/// Kill points: after each record marker, then several moments after the last one
/// (while the index is written, the file is synced, committed or renamed).
fn points(n: u64) -> Vec<(u64, u64)> {
    let mut p: Vec<(u64, u64)> = (0..n).map(|k| (k, 0)).collect();
    for extra in [
        2_500, 3_000, 3_200, 3_500, 3_800, 4_000, 4_500, 5_000, 6_000, 7_000,
        // Late points land after the commit even on a loaded machine, where the final
        // fsync alone can outlast every point above.
        20_000, 100_000, 400_000,
    ] {
        p.push((n, extra));
    }
    p
}

#[test]
fn sigkill_during_first_population_append_and_token_rebuild() {
    let pop = scenario(
        "first population",
        None,
        State {
            token: "",
            gen: 1,
            n: 12,
        },
        &points(12),
    );
    let app = scenario(
        "append 8 -> 16",
        Some(State {
            token: "",
            gen: 1,
            n: 8,
        }),
        State {
            token: "",
            gen: 1,
            n: 16,
        },
        &points(8),
    );
    let reb = scenario(
        "token rebuild t1 -> t2",
        Some(State {
            token: "t1",
            gen: 1,
            n: 9,
        }),
        State {
            token: "t2",
            gen: 2,
            n: 11,
        },
        &points(11),
    );
    let kills = pop.kills + app.kills + reb.kills;
    println!(
        "SIGKILLs: {kills} (first population {}, append {}, token rebuild {}); \
         temp files left by a kill and removed by the next open: {}",
        pop.kills,
        app.kills,
        reb.kills,
        pop.temps_left_by_kill + reb.temps_left_by_kill
    );
    assert!(kills >= 30, "only {kills} kills landed");
    // Each scenario must have killed both before and after its commit point, or it did
    // not test the moments that matter.
    assert!(pop.no_cache_after_kill > 0 && pop.new_state_after_kill + pop.finished_before_kill > 0);
    assert!(app.old_state_after_kill > 0);
    assert!(reb.old_state_after_kill > 0);
    assert!(
        pop.temps_left_by_kill > 0,
        "no kill left a temp file: the cleanup was not exercised"
    );
}

/// The sweep of dead writers' temp files must never take a live writer's file.
#[test]
fn a_live_writers_temp_file_is_not_swept_by_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("x.cache");
    let lock = CacheLock::exclusive(&cache).unwrap();
    let mut a = CacheWriter::create(&cache, Metadata::new("", "a"), &lock).unwrap();
    a.push(record(0, 1).as_ref()).unwrap();
    // A second writer of the same cache (as a process that ignores the lock would be:
    // here it shares ours).
    let mut b = CacheWriter::create(&cache, Metadata::new("", "b"), &lock).unwrap();
    assert!(
        a.temp_path().exists(),
        "live writer's temp file was removed"
    );
    b.push(record(0, 2).as_ref()).unwrap();
    a.finish().unwrap();
    b.finish().unwrap();
    let (_, recs) = read_cache(&cache).unwrap().unwrap();
    assert_eq!(recs, vec![record(0, 2)]);
    assert!(temps_in(dir.path()).is_empty());
}

/// A temp file whose writer died (here: a child killed right after creating it) is
/// removed by the next writer of that cache.
#[test]
fn a_dead_writers_temp_file_is_removed_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("y.cache");
    let marker = dir.path().join("marker");
    let mut child = spawn_child(
        &child_test(),
        "writer",
        &[
            ("CACHE", cache.display().to_string()),
            ("MARKER", marker.display().to_string()),
            ("N", "50".into()),
            ("GEN", "1".into()),
            ("TOKEN", String::new()),
        ],
    );
    assert!(wait_for_marker(&marker, 2, &mut child));
    assert!(sigkill(&mut child));
    let left = temps_in(dir.path());
    assert_eq!(
        left.len(),
        1,
        "expected the killed writer's temp file: {left:?}"
    );
    assert!(!Path::new(&cache).exists());
    let lock = CacheLock::exclusive(&cache).unwrap();
    let w = CacheWriter::create(&cache, Metadata::new("", "next"), &lock).unwrap();
    let now = temps_in(dir.path());
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, left, "the dead writer's temp file is still there");
    w.finish().unwrap();
    assert!(temps_in(dir.path()).is_empty());
}
