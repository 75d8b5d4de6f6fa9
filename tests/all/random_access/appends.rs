//! Appends: random access covers appended records, appends cost what they append, and
//! a crash mid-append leaves the old index and commit in force.

use super::*;

#[test]
fn random_access_covers_appended_records_and_appends_cost_what_they_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.cache");
    let want = dataset(2_000, 5);
    write_cache(&path, Metadata::new("", "test"), &want[..10]);
    let data_bytes = |n: usize| -> u64 {
        want[..n]
            .iter()
            .map(|t| (t.as_ref().wire_len() + 9 + 7) as u64)
            .sum::<u64>()
    };
    let mut n = 10;
    let mut reader_at_10 = CacheReader::open(&path).unwrap();
    let mut step = 1;
    while n < want.len() {
        let to = (n + step).min(want.len());
        let lock = CacheLock::exclusive(&path).unwrap();
        let mut a = CacheAppender::open(&path, &lock).unwrap();
        for t in &want[n..to] {
            a.push(t.as_ref()).unwrap();
        }
        a.commit().unwrap();
        n = to;
        step = step % 37 + 1;
        let mut r = CacheReader::open(&path).unwrap();
        assert!(r.has_index());
        // The records just appended, the first, and a few in between.
        for i in [
            0,
            n as u64 / 2,
            n as u64 - 1,
            (n - (to - n + step).min(n)) as u64,
        ] {
            assert!(
                r.view_at(i).unwrap().to_owned() == want[i as usize],
                "n={n} i={i}"
            );
        }
        assert!(matches!(
            r.view_at(n as u64),
            Err(Error::IndexOutOfRange { .. })
        ));
    }
    let mut r = CacheReader::open(&path).unwrap();
    assert_random_access(&mut r, &want, "after 100+ appends");
    assert_eq!(
        read_all(&mut r),
        want,
        "sequential reads skip the index frames"
    );
    r.verify(|_, _| {}).unwrap();
    // An index rewritten on every append would have left O(appends × N) bytes behind;
    // growth by doubling leaves at most a few times the final index.
    let len = std::fs::metadata(&path).unwrap().len();
    let overhead = len - r.data_start() - data_bytes(want.len());
    assert!(
        overhead <= 4 * 8 * want.len() as u64 + 4096,
        "{overhead} bytes of index for {} records",
        want.len()
    );
    // A reader opened before the appends still serves its own commit.
    assert_random_access(&mut reader_at_10, &want[..10], "old snapshot");
}

/// The child role: appends $N records to $CACHE and commits, after marking $MARKER.
#[test]
fn child_random_access_appender() {
    if std::env::var(ROLE).is_err() {
        return;
    }
    let path = env_path("CACHE");
    let from = env_num("FROM");
    let n = env_num("N");
    let lock = CacheLock::exclusive(&path).unwrap();
    let mut a = CacheAppender::open(&path, &lock).unwrap();
    for t in &big_dataset(n)[from..] {
        a.push(t.as_ref()).unwrap();
    }
    std::fs::write(env_path("MARKER"), b"x").unwrap();
    a.commit().unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

fn big_record(i: usize) -> Tensor {
    let v: Vec<f32> = (0..(64 + i % 300)).map(|j| (i * 1000 + j) as f32).collect();
    Tensor::from_f32(&v)
}

fn big_dataset(n: usize) -> Vec<Tensor> {
    (0..n).map(big_record).collect()
}

#[test]
fn a_crash_mid_append_leaves_the_old_index_and_commit_in_force() {
    let (old, new) = (3_000usize, 9_000usize);
    let all = big_dataset(new);
    let mut tally = (0usize, 0usize);
    for (run, extra_us) in [0u64, 200, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 40_000]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.cache");
        let marker = dir.path().join("marker");
        write_cache(&path, Metadata::new("", "test"), &all[..old]);
        if run % 2 == 1 {
            // Leave spare index capacity, so the child's entries go in place.
            let lock = CacheLock::exclusive(&path).unwrap();
            let mut a = CacheAppender::open(&path, &lock).unwrap();
            a.push(all[old].as_ref()).unwrap();
            a.commit().unwrap();
        }
        let committed = old + run % 2;
        let mut child = spawn_child(
            &support::test_name(module_path!(), "child_random_access_appender"),
            "appender",
            &[
                ("CACHE", path.display().to_string()),
                ("MARKER", marker.display().to_string()),
                ("FROM", committed.to_string()),
                ("N", new.to_string()),
            ],
        );
        assert!(wait_for_marker(&marker, 1, &mut child));
        std::thread::sleep(Duration::from_micros(extra_us));
        sigkill(&mut child);
        let mut r = CacheReader::open(&path).unwrap();
        let n = r.len() as usize;
        assert!(
            n == committed || n == new,
            "run {run}: {n} records committed"
        );
        if n == committed {
            tally.0 += 1;
        } else {
            tally.1 += 1;
        }
        assert_random_access(&mut r, &all[..n], &format!("run {run} after the kill"));
        assert!(matches!(
            r.view_at(n as u64),
            Err(Error::IndexOutOfRange { .. })
        ));
        // The next appender cuts the torn tail and indexes what it appends.
        let lock = CacheLock::exclusive(&path).unwrap();
        let mut a = CacheAppender::open(&path, &lock).unwrap();
        for t in &all[n..] {
            a.push(t.as_ref()).unwrap();
        }
        a.commit().unwrap();
        let mut r = CacheReader::open(&path).unwrap();
        assert_eq!(r.uncommitted_tail(), 0);
        for i in shuffled(new as u64, run as u64).into_iter().step_by(7) {
            assert!(r.view_at(i).unwrap().to_owned() == all[i as usize]);
        }
        r.verify(|_, _| {}).unwrap();
    }
    println!(
        "kills that left the old commit: {}, the new one: {}",
        tally.0, tally.1
    );
    assert!(
        tally.0 > 0,
        "no kill landed between the data and the commit"
    );
}
