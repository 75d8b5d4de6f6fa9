//! A damaged head is damage, never a legacy file (issue 20, defect 3): a cache whose
//! first 8, 16 or 64 bytes were zeroed, or a headerless legacy body holding zero-byte
//! records (nine zero bytes: a float32 scalar without its 4 bytes), is reported as
//! damaged by the reader and by `cache_cli verify`, and `DiskCacheProducer` rebuilds
//! it from the source (outcome `Rebuilt`), never adopting the garbage as records
//! (`Appended`/`Reused`). A record's byte count must match its shape: writing one that
//! does not is refused, so our writers never leave bytes our readers refuse.

use crate::support;

use std::path::Path;
use std::process::Output;

use harmonics_dataset::cache::{CacheReader, Format, Metadata};
use harmonics_dataset::tensor::write_tensor;
use harmonics_dataset::{
    CacheOutcome, DType, DiskCacheProducer, Error, Producer, Tensor, VecProducer,
};
use support::cache_files::{read_all, version_1_file};

const BIN: &str = env!("CARGO_BIN_EXE_cache_cli");

fn records(n: usize, seed: f32) -> Vec<Tensor> {
    (0..n)
        .map(|i| Tensor::from_f32(&[seed + i as f32, -(i as f32), 0.5]))
        .collect()
}

/// `cache_cli verify NAME` with the cache directory `dir`.
fn verify(dir: &Path, name: &str) -> Output {
    std::process::Command::new(BIN)
        .args(["verify", name])
        .env("HARMONICS_CACHE_DIR", dir)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Opens a disk cache over `n` records (seed 1.0) without a token at `path`.
fn open(path: &Path, n: usize) -> DiskCacheProducer {
    let source = VecProducer::new(records(n, 1.0)).with_source("vec:legacy-damage");
    DiskCacheProducer::open_at(Box::new(source), path.to_path_buf(), None).unwrap()
}

/// Every record of `p` for one epoch.
fn epoch(p: &mut DiskCacheProducer) -> Vec<Tensor> {
    (0..p.len()).map(|_| p.next().unwrap()).collect()
}

/// The file at `path` is damage: the reader, `verify` and then a `DiskCacheProducer`
/// over the source (rebuilt, exact records, `verify` then OK) all say so.
fn assert_damage_rebuilt(dir: &Path, name: &str, n: usize, what: &str) {
    let path = dir.join(name);
    match CacheReader::open(&path) {
        Err(e @ Error::Corrupt { .. }) => {
            let m = e.to_string();
            assert!(m.contains("damaged"), "{what}: {m}");
        }
        Err(e) => panic!("{what}: not reported as damage: {e}"),
        Ok(r) => panic!(
            "{what}: opened as a {:?} cache of {} records",
            r.format(),
            r.len()
        ),
    }
    let o = verify(dir, name);
    assert_eq!(o.status.code(), Some(1), "{what}: {}", stdout(&o));
    assert!(stdout(&o).contains("DAMAGED"), "{what}: {}", stdout(&o));

    let mut p = open(&path, n);
    match p.outcome() {
        CacheOutcome::Rebuilt(reason) => assert!(reason.contains("damaged"), "{what}: {reason}"),
        other => panic!("{what}: the damaged file was kept: {other:?}"),
    }
    assert_eq!(epoch(&mut p), records(n, 1.0), "{what}");
    let o = verify(dir, name);
    assert_eq!(o.status.code(), Some(0), "{what}: {}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("{n} records")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_cache_with_its_head_zeroed_is_damage_rebuilt_from_the_source() {
    let dir = tempfile::tempdir().unwrap();
    for zeroed in [8, 16, 64] {
        // The current format, as DiskCacheProducer writes it.
        let path = dir.path().join("c.cache");
        drop(open(&path, 6));
        let mut b = std::fs::read(&path).unwrap();
        b[..zeroed].fill(0);
        std::fs::write(&path, &b).unwrap();
        assert_damage_rebuilt(dir.path(), "c.cache", 6, &format!("v2, {zeroed} zeroed"));

        // Version 1, as the previous release wrote it.
        let path = dir.path().join("v1.cache");
        let mut b = version_1_file(&Metadata::new("", "vec:legacy-damage"), &records(6, 1.0));
        b[..zeroed].fill(0);
        std::fs::write(&path, &b).unwrap();
        assert_damage_rebuilt(dir.path(), "v1.cache", 6, &format!("v1, {zeroed} zeroed"));
    }
}

/// A headerless body: `records`, with `garbage` inserted before record `at`.
fn legacy_body(records: &[Tensor], at: usize, garbage: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, t) in records.iter().enumerate() {
        if i == at {
            b.extend_from_slice(garbage);
        }
        write_tensor(&mut b, t.as_ref()).unwrap();
    }
    if at >= records.len() {
        b.extend_from_slice(garbage);
    }
    b
}

#[test]
fn zero_byte_records_in_a_legacy_body_are_damage_not_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.cache");
    let old = records(3, 1.0);
    // One zero-byte record between records 1 and 2; three at the end (the source has
    // 5 records: the old walk counted 4 and 6, and adoption appended to them).
    for (at, zeros) in [(2, 9), (3, 27), (0, 9)] {
        std::fs::write(&path, legacy_body(&old, at, &vec![0u8; zeros])).unwrap();
        let what = format!("{zeros} zero bytes before record {at}");
        let err = CacheReader::open(&path).unwrap_err().to_string();
        let why = if at > 0 {
            format!("legacy record {at} at offset")
        } else {
            "starts with nine zero bytes".into()
        };
        assert!(err.contains(&why), "{what}: {err}");
        assert!(
            at == 0 || err.contains("float32[] has 0 data bytes, its shape needs 4"),
            "{what}: {err}"
        );
        assert_damage_rebuilt(dir.path(), "old.cache", 5, &what);
    }
}

#[test]
fn an_intact_legacy_body_with_a_torn_tail_is_still_adopted() {
    // What the original runtime left after an interrupted append: a whole header of
    // the next record whose data was cut, or part of a header.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.cache");
    let old = records(3, 1.0);
    let next = records(4, 1.0)[3].to_wire().unwrap();
    for cut in [3, 17, next.len() - 1] {
        let mut b = legacy_body(&old, 3, &[]);
        b.extend_from_slice(&next[..cut]);
        std::fs::write(&path, &b).unwrap();
        let mut r = CacheReader::open(&path).unwrap();
        assert_eq!((r.format(), r.len()), (Format::Legacy, 3), "cut at {cut}");
        assert_eq!(r.uncommitted_tail(), cut as u64);
        assert_eq!(read_all(&mut r), old);
        let mut p = open(&path, 5);
        assert_eq!(p.outcome(), &CacheOutcome::Appended { from: 3, to: 5 });
        assert_eq!(epoch(&mut p), records(5, 1.0));
    }
}

#[test]
fn a_source_record_whose_bytes_do_not_match_its_shape_is_refused_when_cached() {
    // A float32 scalar without its bytes (what a default C++ HTensor is): cached, it
    // would be a record every reader refuses, hence a rebuild at every open.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.cache");
    let mut recs = records(3, 1.0);
    recs.insert(1, Tensor::new(DType::Float32, vec![], vec![]));
    let source = VecProducer::new(recs).with_source("vec:bad");
    let err = DiskCacheProducer::open_at(Box::new(source), path.clone(), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("float32[] has 0 data bytes, its shape needs 4"),
        "{err}"
    );
    assert!(!path.exists(), "a cache was published");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.retain(|n| !n.ends_with(".lock"));
    assert!(names.is_empty(), "left behind: {names:?}");
    // The same source with the record's 4 bytes is cached and read back exactly.
    let mut recs = records(3, 1.0);
    recs.insert(
        1,
        Tensor::new(DType::Float32, vec![], 2.5f32.to_le_bytes().to_vec()),
    );
    let mut p = DiskCacheProducer::open_at(
        Box::new(VecProducer::new(recs.clone()).with_source("vec:bad")),
        path,
        None,
    )
    .unwrap();
    assert_eq!(Producer::size(&mut p).unwrap(), 4);
    assert_eq!(epoch(&mut p), recs);
}

#[test]
fn a_legacy_file_cut_in_place_inside_a_page_serves_no_zeroed_record() {
    // A legacy record has no CRC, and a cut inside a page zeroes the rest of that page
    // with no SIGBUS: only the file's length tells (the soak found one such record,
    // read by a bare reader while a `truncate` cut the file).
    let recs = records(60, 0.0);
    let body: Vec<u8> = recs.iter().flat_map(|t| t.to_wire().unwrap()).collect();
    let wire_len = body.len() / recs.len(); // the records are alike
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.cache");
    std::fs::write(&path, &body).unwrap();
    let mut seq = CacheReader::open(&path).unwrap();
    let mut ra = CacheReader::open(&path).unwrap();
    assert_eq!(seq.format(), Format::Legacy);
    let mut t = Tensor::new(DType::UInt8, Vec::new(), Vec::new());
    for (i, want) in recs.iter().enumerate().take(10) {
        seq.next_into(&mut t).unwrap();
        assert!(&t == want, "record {i} before the cut");
        assert!(&ra.view_at(i as u64).unwrap().to_owned() == want);
    }
    // Cut record 40 in the middle, keeping its page (and the page before) in the file.
    let cut = 40 * wire_len + wire_len / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    for (i, want) in recs.iter().enumerate().skip(10) {
        let sequential = seq.next_into(&mut t).map(|()| t.clone());
        let random = ra.at_into(i as u64, &mut t).map(|()| t.clone());
        for (how, got) in [("next_into", sequential), ("at_into", random)] {
            match got {
                Ok(got) => assert!(&got == want, "{how}: record {i} served altered"),
                Err(Error::Corrupt { .. }) => {}
                Err(e) => panic!("{how}: record {i}: {e}"),
            }
        }
        if i >= 40 {
            // Its bytes are gone: refused, never served as zeros.
            assert!(ra.view_at(i as u64).is_err(), "view_at({i}) after the cut");
        }
    }
}
