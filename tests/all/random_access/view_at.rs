//! `view_at(i)` equals the i-th sequential record, refuses an index past the end, and
//! detects a flipped byte in record i.

use super::*;

#[test]
fn view_at_equals_the_sequential_record_for_every_index_of_10000() {
    let want = dataset(10_000, 3);
    let (dir, path) = scratch_cache("ten.cache", &want);
    let mut r = CacheReader::open(&path).unwrap();
    assert!(r.has_index() && r.version() == 2);
    assert_eq!(read_all(&mut r), want);
    // Every index, in a shuffled order and then in order, interleaved with sequential reads
    // whose cursor random access must not move.
    r.rewind();
    for (k, i) in shuffled(10_000, 1).into_iter().enumerate() {
        assert!(
            r.view_at(i).unwrap().to_owned() == want[i as usize],
            "view_at({i})"
        );
        if k % 1000 == 0 {
            let pos = r.position() as usize;
            assert!(r.next_view().unwrap().to_owned() == want[pos]);
        }
    }
    for i in 0..10_000u64 {
        assert!(r.view_at(i).unwrap().to_owned() == want[i as usize]);
    }
    r.verify(|_, _| {}).unwrap();

    // Through the producers: a DiskCacheProducer over the same records.
    let cached = dir.path().join("producer.cache");
    let mut p = DiskCacheProducer::open_at(
        Box::new(VecProducer::new(want.clone())),
        cached.clone(),
        None,
    )
    .unwrap();
    assert!(Producer::has_random_access(&p));
    let first = p.next().unwrap();
    for i in shuffled(10_000, 2) {
        assert!(Producer::view_at(&mut p, i).unwrap().to_owned() == want[i as usize]);
    }
    assert_eq!(first, want[0]);
    assert_eq!(
        p.next().unwrap(),
        want[1],
        "view_at moved the sequential cursor"
    );
    // The default of a producer without random access.
    let mut v: Box<dyn Producer> = Box::new(VecProducer::new(want[..3].to_vec()));
    if !v.has_random_access() {
        assert!(matches!(v.view_at(0), Err(Error::NoRandomAccess(_))));
    }
}

#[test]
fn view_at_past_the_end_is_an_error_naming_index_and_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.cache");
    write_cache(&path, Metadata::new("", "test"), &dataset(5, 0));
    let mut r = CacheReader::open(&path).unwrap();
    for bad in [5u64, 6, u64::MAX] {
        match r.view_at(bad) {
            Err(e @ Error::IndexOutOfRange { index, len: 5, .. }) if index == bad => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&bad.to_string()) && msg.contains("5 records"),
                    "{msg}"
                );
                assert!(msg.contains("short.cache"), "{msg}");
            }
            other => panic!("view_at({bad}): {:?}", other.map(|t| t.to_owned())),
        }
    }
    let mut p = DiskCacheProducer::open_at(
        Box::new(VecProducer::new(dataset(5, 0))),
        path.clone(),
        None,
    )
    .unwrap();
    assert!(matches!(
        p.view_at(5),
        Err(Error::IndexOutOfRange {
            index: 5,
            len: 5,
            ..
        })
    ));
    // An empty cache: every index is out of range.
    let empty = dir.path().join("empty.cache");
    write_cache(&empty, Metadata::new("", "test"), &[]);
    let mut r = CacheReader::open(&empty).unwrap();
    assert!(matches!(
        r.view_at(0),
        Err(Error::IndexOutOfRange {
            index: 0,
            len: 0,
            ..
        })
    ));
}

#[test]
fn a_flipped_byte_in_record_i_is_detected_by_view_at_i() {
    let want = dataset(300, 1);
    let (dir, path) = scratch_cache("flip.cache", &want);
    let good = std::fs::read(&path).unwrap();
    for i in [0u64, 1, 137, 299] {
        let at = frame_offset(&good, i);
        let next = if i + 1 < 300 {
            frame_offset(&good, i + 1)
        } else {
            Header::decode(&good).unwrap().commit.index_at as usize
        };
        // Every byte of the record's frame that is read: header, wire header, data.
        let pad = good[at + 8] as usize;
        let read: Vec<usize> = (at..next)
            .filter(|&b| !(at + 9..at + 9 + pad).contains(&b))
            .collect();
        for &b in read.iter().step_by(3).chain(read.last()) {
            let mut d = good.clone();
            d[b] ^= 0x10;
            std::fs::write(&path, &d).unwrap();
            let mut r = CacheReader::open(&path).unwrap();
            match r.view_at(i) {
                Err(e) => {
                    assert!(e.is_corruption(), "{e}");
                    assert!(e.to_string().contains(&format!("record {i}")), "{e}");
                }
                Ok(t) => panic!("flip at byte {b} of record {i} served: {:?}", t.to_owned()),
            }
            // The other records are untouched and still served.
            let j = (i + 1) % 300;
            assert!(r.view_at(j).unwrap().to_owned() == want[j as usize]);
        }
    }
    // A flipped byte in an index entry is detected too (never another record served).
    let h = Header::decode(&good).unwrap();
    let entries =
        h.commit.index_at as usize + 9 + (good[h.commit.index_at as usize + 8] & 0x7f) as usize;
    for i in [0usize, 42, 299] {
        for byte in 0..8 {
            let mut d = good.clone();
            d[entries + 8 * i + byte] ^= 0x01;
            std::fs::write(&path, &d).unwrap();
            let mut r = CacheReader::open(&path).unwrap();
            let err = r.view_at(i as u64).map(|t| t.to_owned()).unwrap_err();
            assert!(err.is_corruption(), "{err}");
            assert!(r.verify(|_, _| {}).is_err(), "verify checks the index");
        }
    }

    // A producer with its source at hand rebuilds and then serves record i.
    let cached = dir.path().join("p.cache");
    drop(
        DiskCacheProducer::open_at(
            Box::new(VecProducer::new(want.clone())),
            cached.clone(),
            None,
        )
        .unwrap(),
    );
    let mut d = std::fs::read(&cached).unwrap();
    let at = frame_offset(&d, 137);
    let last = d.len().min(at + 30);
    d[last - 1] ^= 0x08;
    std::fs::write(&cached, &d).unwrap();
    let mut p = DiskCacheProducer::open_at(
        Box::new(VecProducer::new(want.clone())),
        cached.clone(),
        None,
    )
    .unwrap();
    assert_eq!(
        p.outcome(),
        &CacheOutcome::Reused,
        "damage is found on access, not open"
    );
    assert!(p.view_at(137).unwrap().to_owned() == want[137]);
    assert!(matches!(p.outcome(), CacheOutcome::Rebuilt(_)));
}
