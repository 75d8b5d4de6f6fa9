//! Defect 1: another version of the same layout copied over a cache that readers have
//! open (`cp v7.cache train.cache`: the same inode, truncated and rewritten). Random
//! access read the new bytes with `pread` and never asked whether the file was still
//! the one opened; its frames line up, so every check passed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use harmonics_dataset::cache::CacheReader;
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Producer};

use super::*;

const N: usize = 64;

#[test]
fn a_reader_refuses_every_record_of_a_version_copied_over_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.cache");
    cache_of(Versioned::new(6, N).fingerprint("train"), &path);
    let other = same_layout_version(&path, 7, N, LEN);
    let mut r = CacheReader::open(&path).unwrap();
    assert_record(&r.view_at(3).unwrap().to_owned(), 6, 3, "before the copy");
    cp(&other, &path);
    for i in 0..N {
        match r.view_at(i as u64) {
            Ok(t) => assert_record(&t.to_owned(), 6, i, "view_at after the copy"),
            Err(e) => assert!(e.is_corruption(), "view_at({i}): {e}"),
        }
        match r.next_view() {
            Ok(t) => assert_record(&t.to_owned(), 6, i, "next_view after the copy"),
            Err(e) => assert!(e.is_corruption(), "next_view: {e}"),
        }
    }
}

/// Four threads read one producer at random and in order; then they pause while the
/// main thread copies version 7 over the file (as `cp` would between two reads), and
/// read again; then version 8 is copied over the file while they read. Every record
/// read must be version 6's, the source's. `read(k, rng)` returns the record read and
/// the index it must be (None: the sequential cursor's, any index), or an error.
/// Returns (reads, errors).
fn four_threads_across_copies(
    path: &Path,
    n: usize,
    read: impl Fn(usize, &mut Lcg) -> std::result::Result<(Tensor, Option<usize>), String> + Sync,
) -> (usize, usize) {
    const EACH: usize = 200;
    let reads = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let paused = AtomicUsize::new(0);
    let resumed = AtomicBool::new(false);
    let copied = AtomicBool::new(false);
    // Threads still reading: one that failed an assertion stops the wait below.
    let alive = AtomicUsize::new(4);
    struct Leaving<'a>(&'a AtomicUsize);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        for thread in 0..4 {
            let (reads, errors, read) = (&reads, &errors, &read);
            let (paused, resumed, copied, alive) = (&paused, &resumed, &copied, &alive);
            s.spawn(move || {
                let _leaving = Leaving(alive);
                let mut rng = Lcg(thread as u64 + 1);
                let mut one = |k: usize| {
                    match read(k, &mut rng) {
                        Ok((t, Some(i))) => assert_record(&t, 6, i, "a read"),
                        Ok((t, None)) => {
                            let (_, i) = who(&t);
                            assert!(i < n, "index {i}");
                            assert_record(&t, 6, i, "a sequential read")
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                };
                for k in 0..EACH {
                    one(k);
                }
                paused.fetch_add(1, Ordering::AcqRel);
                while !resumed.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                for k in 0..EACH {
                    one(k);
                }
                // Version 8 arrives while reading.
                let mut k = 0;
                while !copied.load(Ordering::Acquire) || k < EACH {
                    one(k);
                    k += 1;
                }
            });
        }
        while paused.load(Ordering::Acquire) < alive.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        cp(&same_layout_version(path, 7, n, LEN), path);
        resumed.store(true, Ordering::Release);
        while reads.load(Ordering::Relaxed) < 4 * (2 * EACH + 20)
            && alive.load(Ordering::Relaxed) == 4
        {
            std::thread::yield_now();
        }
        cp(&same_layout_version(path, 8, n, LEN), path);
        copied.store(true, Ordering::Release);
    });
    (reads.into_inner(), errors.into_inner())
}

#[test]
fn at_and_next_of_the_c_api_from_4_threads_never_serve_versions_copied_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.cache");
    cache_of(Versioned::new(6, N).fingerprint("train"), &path);
    let p = DiskCacheProducer::open_at(
        Box::new(Versioned::new(6, N).fingerprint("train")),
        path.clone(),
        None,
    )
    .unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    let h = handle(p);
    let (reads, errors) = four_threads_across_copies(&path, N, |k, rng| {
        let i = rng.below(N);
        // (Views are borrowed until the next call from any thread: not for sharing.)
        let got = match k % 5 {
            0 => h.at(i).map(|t| (t, Some(i))),
            1 => h.at_copy_to(i).map(|t| (t, Some(i))),
            2 => h.next_copy().map(|t| (t, None)),
            3 => h.next_copy_to().map(|t| (t, None)),
            _ => h.next().map(|t| (t, None)),
        };
        got.map_err(|s| format!("status {s}"))
    });
    eprintln!("{reads} reads, {errors} errors");
    for i in 0..N {
        assert_record(&h.at(i).unwrap(), 6, i, "at() once the copies are over");
        assert_record(&h.view_at(i).unwrap(), 6, i, "view_at() (one thread)");
    }
}

#[test]
fn view_at_and_next_from_4_threads_never_serve_versions_copied_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.cache");
    cache_of(Versioned::new(6, N).fingerprint("train"), &path);
    let p = Mutex::new(
        DiskCacheProducer::open_at(
            Box::new(Versioned::new(6, N).fingerprint("train")),
            path.clone(),
            None,
        )
        .unwrap(),
    );
    let (reads, errors) = four_threads_across_copies(&path, N, |k, rng| {
        let i = rng.below(N);
        let mut p = p.lock().unwrap();
        let got = match k % 3 {
            0 => Producer::view_at(&mut *p, i as u64).map(|t| (t.to_owned(), Some(i))),
            1 => p.next().map(|t| (t, None)),
            _ => p.next_view().map(|t| (t.to_owned(), None)),
        };
        got.map_err(|e| e.to_string())
    });
    eprintln!("{reads} reads, {errors} errors");
    let mut p = p.into_inner().unwrap();
    assert!(
        matches!(p.outcome(), CacheOutcome::Rebuilt(_)),
        "the copy was not noticed: {:?}",
        p.outcome()
    );
    for i in 0..N {
        let t = Producer::view_at(&mut p, i as u64).unwrap().to_owned();
        assert_record(&t, 6, i, "view_at once the copy is over");
    }
}
