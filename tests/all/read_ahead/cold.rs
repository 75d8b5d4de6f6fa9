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
            // records ahead were asked for in ranges, or their clusters left to huge
            // folio faults.
            assert!(s.went_cold >= 1, "{what}: {s:?}");
            assert!(
                s.ranges_requested + s.clusters_faulted >= 1,
                "{what}: {s:?}"
            );
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
    assert_eq!(s.clusters_faulted, 0, "nothing to read: {s:?}");
}

/// Where transparent huge pages serve `MADV_HUGEPAGE` mappings, a cold file the page
/// cache can hold is not asked for with `MADV_WILLNEED` (which fills the page cache
/// with 4 KiB folios, slow to map then and in every later epoch): each 2 MiB cluster is
/// left to the fault of its first record, which reads it as one huge folio. Records
/// stay exact, and a byte flipped on disk is still refused on this path.
#[test]
fn a_cold_file_that_fits_is_read_in_huge_clusters_by_faults() {
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !(thp.contains("[always]") || thp.contains("[madvise]")) {
        eprintln!("skipped: transparent huge pages are not enabled here ({thp:?})");
        return;
    }
    let n = 12_000;
    let (_dir, path) = scratch(n);
    // One record damaged on disk: found by its CRC however it was read.
    let bad = 7_777;
    damage(&path, bad);
    let clusters = std::fs::metadata(&path).unwrap().len().div_ceil(2 << 20);
    for (what, block) in [("global", 0), ("blocks of 64", 64)] {
        drop_cached(&path);
        let mut r = CacheReader::open(&path).unwrap();
        let mut order = Sampler::new(n, opts(51, block, 0, 1)).unwrap();
        r.read_ahead(Box::new(order.clone()));
        let mut t = Tensor::from_f32(&[]);
        let mut refused = 0;
        for _ in 0..order.size() {
            let i = order.next_index();
            match r.at_into(i, &mut t) {
                Ok(()) => assert_record(t.as_ref(), i, 0, what),
                Err(Error::Corrupt { detail, .. }) => {
                    assert_eq!(
                        i, bad,
                        "{what}: only the damaged record is refused: {detail}"
                    );
                    refused += 1;
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
        assert_eq!(refused, 1, "{what}: the damaged record was refused");
        let s = r.read_ahead_stats();
        eprintln!("{what}: {s:?}");
        assert!(s.went_cold >= 1, "{what}: {s:?}");
        assert!(
            s.clusters_faulted >= 1,
            "{what}: clusters left to faults: {s:?}"
        );
        // Each cluster is counted once: a fault is how it is read, not a sign that
        // what was counted was evicted.
        assert!(
            s.clusters_faulted <= clusters,
            "{what}: {clusters} clusters in the file: {s:?}"
        );
        assert_eq!(
            s.ranges_requested, 0,
            "{what}: nothing asked with WILLNEED: {s:?}"
        );
    }
}
