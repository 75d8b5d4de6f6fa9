//! Cold reads: the file dropped from the page cache before the epoch. The reader sees
//! the disk waited for (major faults), goes cold and asks for the records ahead as a
//! queue of merged ranges; records stay exact, in global and block order.

use super::*;

#[test]
fn cold_epochs_read_ahead_as_a_queue_and_stay_exact() {
    // About 26 MB: more than one window of read-ahead and many fault read-arounds.
    let n = 12_000;
    let (_dir, path) = scratch(n);
    for (what, o) in [
        ("global", opts(31, 0, 0, 1)),
        ("blocks of 64", opts(32, 64, 0, 1)),
        ("blocks of 64, rank 1 of 2", opts(33, 64, 1, 2)),
    ] {
        drop_cached(&path);
        let mut r = CacheReader::open(&path).unwrap();
        let mut order = Sampler::new(n, o).unwrap();
        r.read_ahead(Box::new(order.clone()));
        let mut t = Tensor::from_f32(&[]);
        for _ in 0..order.size() {
            let i = order.next_index();
            r.at_into(i, &mut t).unwrap();
            assert_record(t.as_ref(), i, 0, what);
        }
        let s = r.read_ahead_stats();
        eprintln!("{what}: {s:?}");
        assert_eq!(s.planned_reads, order.size(), "{what}");
        if o.block_records == 0 {
            // Scattered records over a cold file: the disk was waited for, and the
            // records ahead were asked for in ranges.
            assert!(s.went_cold >= 1, "{what}: {s:?}");
            assert!(s.ranges_requested >= 1, "{what}: {s:?}");
        }
    }
}

#[test]
fn a_warm_epoch_stays_warm() {
    let n = 4_000;
    let (_dir, path) = scratch(n);
    // Read once: every page in the page cache.
    let _ = std::fs::read(&path).unwrap();
    let mut r = CacheReader::open(&path).unwrap();
    let o = opts(40, 0, 0, 1);
    let mut order = Sampler::new(n, o).unwrap();
    r.read_ahead(Box::new(order.clone()));
    for _ in 0..n {
        let i = order.next_index();
        assert_record(r.view_at(i).unwrap(), i, 0, "warm");
    }
    let s = r.read_ahead_stats();
    assert_eq!(s.ranges_requested, 0, "nothing to ask the disk for: {s:?}");
}
