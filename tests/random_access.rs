//! Random access over cache files (issue 14): `view_at(i)` equals the i-th sequential
//! record, is CRC-checked on every access, refuses an index past the end, and stays
//! right after appends, after a crash mid-append, over version-1 files (read as they
//! are and upgraded) and over legacy headerless files.

use std::path::Path;
use std::time::Duration;

use harmonics_dataset::cache::{
    upgrade, CacheAppender, CacheReader, CacheWriter, Commit, Header, Metadata, VERSION_1,
};
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Error, Producer, Tensor, VecProducer};
mod support;
use support::reliability::*;

fn write_cache(path: &Path, records: &[Tensor]) {
    let mut w = CacheWriter::create(path, Metadata::new("", "test")).unwrap();
    for t in records {
        w.push(t.as_ref()).unwrap();
    }
    w.finish().unwrap();
}

fn sequential(r: &mut CacheReader) -> Vec<Tensor> {
    r.rewind();
    (0..r.len())
        .map(|_| r.next_view().unwrap().to_owned())
        .collect()
}

/// A fixed shuffled order of 0..n (an LCG-driven Fisher-Yates).
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, ((s >> 33) % (i as u64 + 1)) as usize);
    }
    v
}

fn assert_random_access(r: &mut CacheReader, want: &[Tensor], what: &str) {
    assert_eq!(r.len(), want.len() as u64, "{what}");
    for i in shuffled(want.len() as u64, 7) {
        let got = r
            .view_at(i)
            .unwrap_or_else(|e| panic!("{what}: view_at({i}): {e}"));
        assert!(
            got.to_owned() == want[i as usize],
            "{what}: view_at({i}) differs"
        );
    }
}

/// The file offset of record `i`'s frame, read from the on-disk index (through the
/// documented layout: the commit's index_at, the index frame, entry i's low 48 bits).
fn frame_offset(file: &[u8], i: u64) -> usize {
    let h = Header::decode(file, Path::new("x")).unwrap();
    let at = h.commit.index_at as usize;
    assert!(at > 0, "the file has an index");
    let pad = (file[at + 8] & 0x7f) as usize;
    let e = at + 9 + pad + 8 * i as usize;
    (u64::from_le_bytes(file[e..e + 8].try_into().unwrap()) & ((1 << 48) - 1)) as usize
}

#[test]
fn view_at_equals_the_sequential_record_for_every_index_of_10000() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ten.cache");
    let want = dataset(10_000, 3);
    write_cache(&path, &want);
    let mut r = CacheReader::open(&path).unwrap();
    assert!(r.has_index() && r.version() == 2);
    assert_eq!(sequential(&mut r), want);
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
    write_cache(&path, &dataset(5, 0));
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
    write_cache(&empty, &[]);
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flip.cache");
    let want = dataset(300, 1);
    write_cache(&path, &want);
    let good = std::fs::read(&path).unwrap();
    for i in [0u64, 1, 137, 299] {
        let at = frame_offset(&good, i);
        let next = if i + 1 < 300 {
            frame_offset(&good, i + 1)
        } else {
            Header::decode(&good, Path::new("x"))
                .unwrap()
                .commit
                .index_at as usize
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
    let h = Header::decode(&good, Path::new("x")).unwrap();
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

#[test]
fn random_access_covers_appended_records_and_appends_cost_what_they_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.cache");
    let want = dataset(2_000, 5);
    write_cache(&path, &want[..10]);
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
        let mut a = CacheAppender::open(&path).unwrap();
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
        sequential(&mut r),
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
    let mut a = CacheAppender::open(&path).unwrap();
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
        write_cache(&path, &all[..old]);
        if run % 2 == 1 {
            // Leave spare index capacity, so the child's entries go in place.
            let mut a = CacheAppender::open(&path).unwrap();
            a.push(all[old].as_ref()).unwrap();
            a.commit().unwrap();
        }
        let committed = old + run % 2;
        let mut child = spawn_child(
            "child_random_access_appender",
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
        let mut a = CacheAppender::open(&path).unwrap();
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

/// A version-1 file as the previous release wrote it: 32-byte slots, metadata at 88, no
/// index.
fn write_v1(path: &Path, records: &[Tensor]) {
    let meta = Metadata::new("tok", "v1 source");
    let start = Header::encode_version(&meta, Commit::default(), VERSION_1).len() as u64;
    let mut body = Vec::new();
    for t in records {
        let wire = t.to_wire().unwrap();
        let frame_at = start + body.len() as u64;
        let hl = wire.len() - t.data.len();
        let pad = (8 - (frame_at as usize + 9 + hl) % 8) % 8;
        body.extend_from_slice(&(wire.len() as u32).to_le_bytes());
        body.extend_from_slice(&crc32fast::hash(&wire).to_le_bytes());
        body.push(pad as u8);
        body.extend(std::iter::repeat(0u8).take(pad));
        body.extend_from_slice(&wire);
    }
    let commit = Commit {
        seq: 1,
        records: records.len() as u64,
        data_len: body.len() as u64,
        index_at: 0,
    };
    let mut file = Header::encode_version(&meta, commit, VERSION_1);
    file.extend_from_slice(&body);
    std::fs::write(path, file).unwrap();
}

fn write_legacy(path: &Path, records: &[Tensor]) {
    let mut file = Vec::new();
    for t in records {
        file.extend_from_slice(&t.to_wire().unwrap());
    }
    std::fs::write(path, file).unwrap();
}

#[test]
fn version_1_files_read_append_and_upgrade_with_random_access() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.cache");
    let want = dataset(500, 2);
    write_v1(&path, &want[..400]);
    // Read as it is: an in-memory index is built on first use.
    let mut r = CacheReader::open(&path).unwrap();
    assert_eq!((r.version(), r.has_index()), (1, false));
    assert_eq!(sequential(&mut r), want[..400]);
    assert_random_access(&mut r, &want[..400], "version 1");
    assert!(matches!(r.view_at(400), Err(Error::IndexOutOfRange { .. })));
    // Appended to in its own layout.
    let mut a = CacheAppender::open(&path).unwrap();
    for t in &want[400..450] {
        a.push(t.as_ref()).unwrap();
    }
    a.commit().unwrap();
    let mut r = CacheReader::open(&path).unwrap();
    assert_eq!(r.version(), 1);
    assert_random_access(&mut r, &want[..450], "version 1 appended");
    // A flipped record byte is still caught by view_at on an in-memory index.
    let mut d = std::fs::read(&path).unwrap();
    let n = d.len();
    d[n - 2] ^= 0x20;
    let flipped = dir.path().join("flipped-v1.cache");
    std::fs::write(&flipped, &d).unwrap();
    let mut rf = CacheReader::open(&flipped).unwrap();
    assert!(rf.view_at(449).unwrap_err().is_corruption());

    // Upgraded by rename: version 2 with the index at the head (after the header).
    assert!(upgrade(&path).unwrap());
    let mut r2 = CacheReader::open(&path).unwrap();
    assert_eq!((r2.version(), r2.has_index()), (2, true));
    assert_eq!(r2.metadata().token, "tok");
    assert_eq!(r2.metadata().source, "v1 source");
    let file = std::fs::read(&path).unwrap();
    let h = Header::decode(&file, Path::new("x")).unwrap();
    assert_eq!(h.commit.index_at, h.data_start, "index placed first");
    assert_random_access(&mut r2, &want[..450], "upgraded version 1");
    assert_eq!(sequential(&mut r2), want[..450]);
    r2.verify(|_, _| {}).unwrap();
    // The reader opened before the upgrade keeps serving the old inode.
    assert_random_access(&mut r, &want[..450], "pre-upgrade reader");
    assert!(!upgrade(&path).unwrap(), "already current");
    // And an upgraded file grows with random access as any other.
    let mut a = CacheAppender::open(&path).unwrap();
    for t in &want[450..] {
        a.push(t.as_ref()).unwrap();
    }
    a.commit().unwrap();
    let mut r3 = CacheReader::open(&path).unwrap();
    assert_random_access(&mut r3, &want, "upgraded then appended");
    assert_eq!(sequential(&mut r3), want);
}

#[test]
fn legacy_files_have_random_access_read_only_too_and_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.cache");
    let want = dataset(700, 4);
    write_legacy(&path, &want);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    let mut r = CacheReader::open(&path).unwrap();
    assert_eq!((r.version(), r.has_index()), (0, false));
    assert_random_access(&mut r, &want, "read-only legacy");
    assert!(matches!(r.view_at(700), Err(Error::IndexOutOfRange { .. })));
    // Upgrading replaces the name (the directory is writable), not the old inode.
    assert!(upgrade(&path).unwrap());
    let mut r2 = CacheReader::open(&path).unwrap();
    assert!(r2.has_index());
    assert_random_access(&mut r2, &want, "upgraded legacy");
}

/// A published file whose index comes first (as `upgrade` and a publish step place it)
/// and one whose index comes last (as a first population writes it) both decode
/// through the stream reader the HTTP path uses, with damage to the index detected.
#[test]
fn published_files_stream_with_the_index_first_or_last() {
    use harmonics_dataset::cache::{read_stream_header, FrameStream};
    let dir = tempfile::tempdir().unwrap();
    let want = dataset(120, 6);
    let last = dir.path().join("last.cache");
    write_cache(&last, &want);
    let first = dir.path().join("first.cache");
    write_legacy(&first, &want);
    upgrade(&first).unwrap();
    let v1 = dir.path().join("v1.cache");
    write_v1(&v1, &want);
    let decode = |bytes: &[u8]| -> Result<Vec<Tensor>, String> {
        let mut input = bytes;
        let h = read_stream_header(&mut input)?;
        let mut frames = FrameStream::new(&h);
        let mut wire = Vec::new();
        let mut out = Vec::new();
        while frames.next_record(&mut input, &mut wire)?.is_some() {
            out.push(harmonics_dataset::tensor::decode_wire(&wire).unwrap().0);
        }
        Ok(out)
    };
    for p in [&last, &first, &v1] {
        let bytes = std::fs::read(p).unwrap();
        assert_eq!(decode(&bytes).unwrap(), want, "{}", p.display());
        if p != &v1 {
            let h = Header::decode(&bytes, Path::new("x")).unwrap();
            let at = h.commit.index_at as usize;
            let entries = at + 9 + (bytes[at + 8] & 0x7f) as usize;
            let mut d = bytes.clone();
            d[entries + 8 * 77 + 2] ^= 0x04;
            let e = decode(&d).unwrap_err();
            assert!(e.contains("index"), "{e}");
        }
    }
}

/// With the index, `seek` (and so `skip` and a resume) lands on the record without
/// walking: a seek far past a damaged record does not trip on it.
#[test]
fn seek_uses_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seek.cache");
    let want = dataset(1000, 8);
    write_cache(&path, &want);
    let mut d = std::fs::read(&path).unwrap();
    let at = frame_offset(&d, 10);
    d[at + 20] ^= 0x01; // damage record 10
    std::fs::write(&path, &d).unwrap();
    let mut r = CacheReader::open(&path).unwrap();
    r.seek(900).unwrap();
    assert_eq!(r.position(), 900);
    assert!(r.next_view().unwrap().to_owned() == want[900]);
    r.seek(1999).unwrap(); // modulo the count, as before
    assert!(r.next_view().unwrap().to_owned() == want[999]);
    assert!(
        r.next_view().unwrap().to_owned() == want[0],
        "cycles after the last"
    );
    // A file without an index (version 1) still seeks by walking, checking as it goes.
    let v1 = dir.path().join("seek-v1.cache");
    write_v1(&v1, &want);
    let mut r = CacheReader::open(&v1).unwrap();
    r.seek(500).unwrap();
    assert!(r.next_view().unwrap().to_owned() == want[500]);
}

/// `view_at` hands out tensor data at a multiple of 8 in memory, as the sequential
/// zero-copy path does, whatever the frame's position in the file: float64 views are
/// aligned.
#[test]
fn view_at_data_is_8_aligned() {
    use harmonics_dataset::DType;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aligned.cache");
    let recs: Vec<Tensor> = (0..200usize)
        .map(|i| {
            let shape: Vec<usize> = (0..1 + i % 4).map(|d| 1 + (i + d) % 3).collect();
            let n: usize = shape.iter().product::<usize>() + i % 5;
            let data = (0..n)
                .flat_map(|j| ((i * 10 + j) as f64).to_le_bytes())
                .collect();
            Tensor::new(DType::Float64, shape, data)
        })
        .collect();
    write_cache(&path, &recs);
    let mut r = CacheReader::open(&path).unwrap();
    for i in shuffled(200, 3) {
        let t = r.view_at(i).unwrap();
        assert_eq!(t.data.as_ptr() as usize % 8, 0, "record {i} misaligned");
        assert!(t.to_owned() == recs[i as usize]);
    }
}

/// Pages of `f` in `[from, to)` that are in the page cache.
fn resident_pages(f: &std::fs::File, from: usize, to: usize) -> usize {
    use std::os::unix::io::AsRawFd;
    let page = 4096;
    let (from, to) = (from / page * page, to.div_ceil(page) * page);
    let len = to - from;
    let mut vec = vec![0u8; len / page];
    // SAFETY: a read-only shared mapping of our own file, unmapped below; mincore writes
    // one byte per page into `vec`, which holds that many.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            from as libc::off_t,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::mincore(p, len, vec.as_mut_ptr()), 0);
        libc::munmap(p, len);
    }
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

#[test]
fn a_cold_random_read_asks_for_its_aligned_cluster_in_one_request() {
    use std::os::unix::io::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cold.cache");
    let records: Vec<Tensor> = (0..2000)
        .map(|i| Tensor::from_f32(&vec![i as f32; 784]))
        .collect();
    write_cache(&path, &records);
    let f = std::fs::File::open(&path).unwrap();
    f.sync_all().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let at = frame_offset(&bytes, 1000);
    let cluster = 128 << 10;
    let (lo, hi) = (at / cluster * cluster, (at / cluster + 1) * cluster);
    drop(bytes);
    // The cluster request is asynchronous advice, and a busy device (the other tests
    // of this binary write and fsync in parallel) may let it lag or drop it: a few
    // fresh attempts, each from a cold page cache. Without clustering no attempt ever
    // sees more than the record's own 1-2 pages.
    let mut resident = 0;
    for _attempt in 0..5 {
        let mut r = CacheReader::open(&path).unwrap();
        // SAFETY: advice on our own descriptor.
        assert_eq!(
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) },
            0
        );
        if resident_pages(&f, lo, hi) > 0 {
            eprintln!("skipped: this file system keeps the pages (tmpfs?)");
            return;
        }
        let v = r.view_at(1000).unwrap().to_owned();
        assert!(v == records[1000]);
        // The record covers 1-2 pages; the cluster around it is 32 (some may still be
        // in flight). Without clustering, only the record's.
        for _ in 0..200 {
            resident = resident_pages(&f, lo, hi);
            if resident >= 16 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("{resident} of 32 pages around record 1000 resident");
}
