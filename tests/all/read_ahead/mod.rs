//! The order-aware read path (issue 23): a cache told the order of the reads to come
//! (`read_ahead`, which `SampledProducer`, `ShuffleProducer`, `ShardProducer` and the C
//! call do for it) serves exactly the records asked for, in every order, at the ends of
//! the file and across the read-ahead's windows, warm and cold; a record damaged on disk
//! is refused although read-ahead brought it in; a consumer dropped mid-epoch leaves no
//! thread and no descriptor; private memory stays flat over a shuffled epoch of a 2 GB
//! cache; a `cp` over the mapped file mid-epoch is survived; the batch call equals the
//! same records one at a time.
//!
//! The tests that count threads, descriptors or the process's memory run in a child
//! process (this binary re-executed on one test), where no other test runs beside them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use harmonics_dataset::cache::{CacheLock, CacheReader, CacheWriter, Metadata};
use harmonics_dataset::{
    BatchProducer, DiskCacheProducer, Error, Producer, SampledProducer, Sampler, SamplerOptions,
    ShardProducer, ShuffleProducer, Tensor, TensorRef, VecProducer,
};

mod cold;
mod lifecycle;

/// Elements of record `i`: sizes vary (64 to 1,023 floats), so frame lengths do too,
/// and the read-ahead's estimate of the next frame's length is often wrong.
fn width(i: u64) -> usize {
    64 + (i as usize * 37) % 960
}

/// Record `i` of version `v`: every element says which record and version it is.
fn record(i: u64, v: u32) -> Tensor {
    let vals: Vec<f32> = (0..width(i))
        .map(|j| (i * 4096 + j as u64) as f32 + v as f32 * 0.25)
        .collect();
    Tensor::from_f32(&vals)
}

fn records(n: u64, v: u32) -> Vec<Tensor> {
    (0..n).map(|i| record(i, v)).collect()
}

/// Writes a current-format cache of `n` records of version `v` at `path`, synced (so
/// its pages are clean and can be dropped from the page cache).
fn write(path: &Path, n: u64, v: u32) {
    let lock = CacheLock::exclusive(path).unwrap();
    let mut w = CacheWriter::create(path, Metadata::new("", "read-ahead test"), &lock).unwrap();
    for i in 0..n {
        w.push(record(i, v).as_ref()).unwrap();
    }
    w.finish().unwrap();
    lock.remove_lock_file();
    File::open(path).unwrap().sync_all().unwrap();
}

/// A scratch directory with a cache of `n` records (version 0).
fn scratch(n: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.cache");
    write(&path, n, 0);
    (dir, path)
}

/// Drops the file's clean pages from the page cache (those not mapped anywhere).
fn drop_cached(path: &Path) {
    let f = File::open(path).unwrap();
    // SAFETY: advice on a descriptor we own.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise(DONTNEED)");
}

/// A disk cache of `path` whose source must never be read (the cache is reused).
fn open_cache(path: &Path, n: u64) -> DiskCacheProducer {
    DiskCacheProducer::open_at(
        Box::new(VecProducer::new(records(n, 0)).with_source("read-ahead test")),
        path.to_path_buf(),
        None,
    )
    .unwrap()
}

fn opts(seed: u64, block: u64, rank: u64, world: u64) -> SamplerOptions {
    SamplerOptions {
        seed,
        block_records: block,
        rank,
        world_size: world,
        ..SamplerOptions::default()
    }
}

#[track_caller]
fn assert_record(got: TensorRef<'_>, i: u64, v: u32, what: &str) {
    let want = record(i, v);
    assert!(
        got.dtype == want.dtype
            && got.shape == want.shape.as_slice()
            && got.data == want.data.as_slice(),
        "{what}: record {i} is not record {i} of version {v}"
    );
}

/// Which record (and version) a record of `record` is, from its first element.
fn identify(t: TensorRef<'_>) -> (u64, u32) {
    let first = f32::from_le_bytes(t.data[..4].try_into().unwrap());
    let i = (first / 4096.0).floor() as u64;
    let v = ((first - (i * 4096) as f32) / 0.25).round() as u32;
    (i, v)
}

#[test]
fn sampled_epochs_are_exact_in_every_order() {
    // 2,500 records: not a multiple of any window (32, 64, 1024), nor of the blocks.
    let n = 2_500;
    let (_dir, path) = scratch(n);
    for (what, o) in [
        ("global", opts(7, 0, 0, 1)),
        ("global, rank 1 of 3", opts(7, 0, 1, 3)),
        ("blocks of 64", opts(8, 64, 0, 1)),
        ("blocks of 7, rank 2 of 4", opts(9, 7, 2, 4)),
        ("blocks of 1", opts(10, 1, 0, 1)),
    ] {
        let mut p = SampledProducer::new(open_cache(&path, n), o).unwrap();
        let mut order = Sampler::new(n, o).unwrap();
        let mut seen = vec![0u32; n as usize];
        // Two epochs and a half: the plan crosses epochs.
        let steps = p.size().unwrap() * 5 / 2;
        let mut t = Tensor::from_f32(&[]);
        for k in 0..steps {
            let i = order.next_index();
            if k % 2 == 0 {
                p.next_into(&mut t).unwrap();
                assert_record(t.as_ref(), i, 0, what);
            } else {
                assert_record(p.next_view().unwrap(), i, 0, what);
            }
            if k < p.size().unwrap() {
                seen[i as usize] += 1;
            }
        }
        if o.world_size == 1 {
            assert!(
                seen.iter().all(|&c| c == 1),
                "{what}: an epoch is every record once"
            );
            // The ends of the file were read (through the plan).
            assert!(seen[0] == 1 && seen[n as usize - 1] == 1);
        }
    }
}

#[test]
fn the_reader_serves_the_plan_and_any_other_index_exactly() {
    let n = 1_000;
    let (_dir, path) = scratch(n);
    let mut r = CacheReader::open(&path).unwrap();
    let o = opts(3, 0, 0, 1);
    r.read_ahead(Box::new(Sampler::new(n, o).unwrap()));
    let mut order = Sampler::new(n, o).unwrap();
    let mut t = Tensor::from_f32(&[]);
    for k in 0..3 * n {
        let i = order.next_index();
        match k % 3 {
            0 => assert_record(r.view_at(i).unwrap(), i, 0, "view_at in the plan"),
            1 => {
                r.at_into(i, &mut t).unwrap();
                assert_record(t.as_ref(), i, 0, "at_into in the plan");
            }
            _ => {
                // Out of the plan: another index first, then the planned one.
                let other = (i * 7 + 1) % n;
                assert_record(r.view_at(other).unwrap(), other, 0, "an index off the plan");
                assert_record(r.view_at(i).unwrap(), i, 0, "the plan after a detour");
            }
        }
    }
    let s = r.read_ahead_stats();
    assert!(s.planned_reads >= 3 * n, "{s:?}");
    assert!(s.unplanned_reads >= n - 1, "{s:?}");
    // The first and last records, the ends of the mapping, in and out of a plan.
    r.read_ahead(Box::new([n - 1, 0, n - 1].into_iter()));
    for i in [n - 1, 0, n - 1, 0] {
        assert_record(r.view_at(i).unwrap(), i, 0, "the ends");
    }
    // An order naming indices past the end: they fail when read, as without a plan.
    r.read_ahead(Box::new([5, n + 3, 6].into_iter()));
    assert_record(r.view_at(5).unwrap(), 5, 0, "before a bad index");
    assert!(matches!(
        r.view_at(n + 3),
        Err(Error::IndexOutOfRange { index, .. }) if index == n + 3
    ));
    assert_record(r.view_at(6).unwrap(), 6, 0, "after a bad index");
}

#[test]
fn the_wrappers_over_a_cache_read_ahead_exactly() {
    let n = 600;
    let (_dir, path) = scratch(n);
    // ShuffleProducer: every record once per epoch, two epochs.
    let mut p = ShuffleProducer::new(open_cache(&path, n), Some(5)).unwrap();
    for _ in 0..2 {
        let mut seen = vec![false; n as usize];
        for _ in 0..n {
            let t = p.next_view().unwrap();
            let (i, v) = identify(t);
            assert_record(t, i, v, "shuffle");
            assert!(
                !std::mem::replace(&mut seen[i as usize], true),
                "record {i} twice"
            );
        }
    }
    // ShardProducer: its slice, cycling, and after a skip.
    let mut p = ShardProducer::new(open_cache(&path, n), 2, 3).unwrap();
    let (start, count) = (400u64, 200u64);
    for k in 0..450 {
        assert_record(p.next_view().unwrap(), start + k % count, 0, "shard");
    }
    p.skip(77).unwrap();
    assert_record(
        p.next_view().unwrap(),
        start + (450 + 77) % count,
        0,
        "shard after skip",
    );
}

#[test]
fn a_sampled_producer_that_skips_or_restores_stays_exact() {
    let n = 900;
    let (_dir, path) = scratch(n);
    let o = opts(11, 16, 0, 1);
    let mut p = SampledProducer::new(open_cache(&path, n), o).unwrap();
    let mut order = Sampler::new(n, o).unwrap();
    for _ in 0..100 {
        assert_record(p.next_view().unwrap(), order.next_index(), 0, "before");
    }
    p.skip(250).unwrap();
    for _ in 0..250 {
        order.next_index();
    }
    let state = p.state();
    for _ in 0..100 {
        assert_record(p.next_view().unwrap(), order.next_index(), 0, "after skip");
    }
    p.restore(&state).unwrap();
    order.restore(&state).unwrap();
    p.set_epoch(3);
    order.set_epoch(3);
    for _ in 0..n {
        assert_record(p.next_view().unwrap(), order.next_index(), 0, "epoch 3");
    }
}

#[test]
fn a_batch_equals_the_same_records_one_at_a_time() {
    // Same-shaped records (a batch stacks them).
    let n = 1_000u64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("same.cache");
    let same: Vec<Tensor> = (0..n)
        .map(|i| Tensor::from_f32(&(0..100).map(|j| (i * 100 + j) as f32).collect::<Vec<_>>()))
        .collect();
    {
        let lock = CacheLock::exclusive(&path).unwrap();
        let mut w = CacheWriter::create(&path, Metadata::new("", "same"), &lock).unwrap();
        for t in &same {
            w.push(t.as_ref()).unwrap();
        }
        w.finish().unwrap();
        lock.remove_lock_file();
    }
    let cache = || {
        DiskCacheProducer::open_at(Box::new(VecProducer::new(same.clone())), path.clone(), None)
            .unwrap()
    };
    for o in [opts(1, 0, 0, 1), opts(2, 32, 1, 2)] {
        let mut one = SampledProducer::new(cache(), o).unwrap();
        let mut batched =
            BatchProducer::new(SampledProducer::new(cache(), o).unwrap(), 256).unwrap();
        let mut direct = SampledProducer::new(cache(), o).unwrap();
        let mut b = Tensor::from_f32(&[]);
        // Past the end of an epoch: batches straddle epochs.
        for _ in 0..6 {
            let batch = batched.next_view().unwrap().to_owned();
            direct.next_batch(256, &mut b).unwrap();
            assert_eq!(batch.shape, vec![256, 100]);
            assert_eq!(b, batch, "next_batch = BatchProducer's batch");
            let mut want = Vec::new();
            for _ in 0..256 {
                want.extend_from_slice(&one.next().unwrap().data);
            }
            assert_eq!(batch.data, want, "a batch is the next 256 records, stacked");
        }
    }
    // Sequentially too, and cycling past the end.
    let mut seq = cache();
    let mut b = Tensor::from_f32(&[]);
    seq.next_batch(999, &mut b).unwrap();
    seq.next_batch(3, &mut b).unwrap();
    assert_eq!(b.shape, vec![3, 100]);
    let want: Vec<u8> = [999u64, 0, 1]
        .iter()
        .flat_map(|&i| same[i as usize].data.clone())
        .collect();
    assert_eq!(b.data, want);
    assert!(matches!(
        seq.next_batch(0, &mut b),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_batch_of_records_of_different_shapes_is_refused() {
    let (_dir, path) = scratch(10);
    let mut p = open_cache(&path, 10);
    let mut b = Tensor::from_f32(&[]);
    match p.next_batch(4, &mut b) {
        Err(Error::ShapeMismatch { index, .. }) => assert_eq!(index, 1),
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
}

#[test]
fn a_damaged_record_is_refused_although_read_ahead_brought_it_in() {
    let n = 3_000;
    let (_dir, path) = scratch(n);
    let victim = 1_234;
    damage(&path, victim);
    for cold in [false, true] {
        if cold {
            drop_cached(&path);
        }
        let mut r = CacheReader::open(&path).unwrap();
        let o = opts(21, if cold { 64 } else { 0 }, 0, 1);
        r.read_ahead(Box::new(Sampler::new(n, o).unwrap()));
        let mut order = Sampler::new(n, o).unwrap();
        let mut t = Tensor::from_f32(&[]);
        let mut refused = 0;
        for k in 0..n {
            let i = order.next_index();
            let got = if k % 2 == 0 {
                r.at_into(i, &mut t).map(|()| t.clone())
            } else {
                r.view_at(i).map(|v| v.to_owned())
            };
            match got {
                Ok(got) => {
                    assert_ne!(i, victim, "cold={cold}: the damaged record was served");
                    assert_record(got.as_ref(), i, 0, "around the damage");
                }
                Err(Error::Corrupt { detail, .. }) => {
                    assert_eq!(i, victim, "cold={cold}: record {i} refused: {detail}");
                    refused += 1;
                }
                Err(e) => panic!("cold={cold}: {e}"),
            }
        }
        assert_eq!(refused, 1, "cold={cold}");
    }
}

/// Flips one byte in the data of record `i` of version 0, in place.
fn damage(path: &Path, i: u64) {
    let bytes = std::fs::read(path).unwrap();
    let needle = &record(i, 0).data[..16];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the record's bytes are in the file");
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[bytes[at + 40] ^ 0x10], (at + 40) as u64)
        .unwrap();
    f.sync_all().unwrap();
}

/// Runs test `name` of this suite alone in a child process (the tests that count the
/// process's threads, descriptors or memory); true in the child, where the test runs.
fn in_child(name: &str) -> bool {
    if std::env::var_os("HARMONICS_READ_AHEAD_CHILD").is_some() {
        return true;
    }
    let full = crate::support::test_name(module_path!(), name);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([full.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env("HARMONICS_READ_AHEAD_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name}: {}\n{stdout}\n{stderr}",
        out.status
    );
    eprint!("{stderr}");
    false
}
