//! End-to-end behaviour of DiskCacheProducer against real files.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use harmonics_dataset::cache::{CacheReader, Format};
use harmonics_dataset::write_tensor;
use harmonics_dataset::{
    CacheOutcome, DiskCacheProducer, Error, Producer, Result, Tensor, TensorRef, TokenFn,
};

/// A producer that counts how many records were taken from it.
struct Counting {
    records: Vec<Tensor>,
    cursor: usize,
    reads: Arc<AtomicUsize>,
}

impl Counting {
    fn new(n: usize, seed: f32) -> (Counting, Arc<AtomicUsize>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let records = (0..n).map(|i| record(i, seed)).collect();
        (
            Counting {
                records,
                cursor: 0,
                reads: reads.clone(),
            },
            reads,
        )
    }
}

fn record(i: usize, seed: f32) -> Tensor {
    Tensor::from_f32(&[seed + i as f32, i as f32 * 0.5, -(i as f32)])
}

impl Producer for Counting {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let i = self.cursor;
        self.cursor = (i + 1) % self.records.len();
        Ok(self.records[i].as_ref())
    }
    fn size(&mut self) -> Result<usize> {
        Ok(self.records.len())
    }
    fn source(&self) -> String {
        "counting".into()
    }
}

/// The first `n` records of `Counting::new(n, seed)`.
fn records(n: usize, seed: f32) -> Vec<Tensor> {
    (0..n).map(|i| record(i, seed)).collect()
}

/// A disk cache at `path` over `Counting::new(n, seed)`, and the source's read counter.
fn open_counting(
    path: &std::path::Path,
    n: usize,
    seed: f32,
    token: Option<TokenFn>,
) -> (DiskCacheProducer, Arc<AtomicUsize>) {
    let (base, reads) = Counting::new(n, seed);
    let p = DiskCacheProducer::open_at(Box::new(base), path.to_path_buf(), token).unwrap();
    (p, reads)
}

/// Where the last record of a cache file ends: a first population writes the offset
/// index right after it (at the commit's `index_at`).
fn records_end(file: &[u8]) -> usize {
    let h = harmonics_dataset::cache::Header::decode(file).unwrap();
    match h.commit.index_at as usize {
        0 => file.len(),
        at => at,
    }
}

fn all(p: &mut DiskCacheProducer) -> Vec<Tensor> {
    (0..p.len()).map(|_| p.next().unwrap()).collect()
}

fn token(value: &str) -> Option<TokenFn> {
    let v = value.to_string();
    Some(Box::new(move || Ok(v.clone())))
}

#[test]
fn first_run_populates_and_second_run_reads_nothing_from_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.cache");
    let (mut p, reads) = open_counting(&path, 4, 1.0, None);
    assert_eq!(p.outcome(), &CacheOutcome::Created);
    assert_eq!(all(&mut p), records(4, 1.0));
    assert_eq!(
        p.next().unwrap(),
        record(0, 1.0),
        "cycles to the first record"
    );
    assert_eq!(reads.load(Ordering::SeqCst), 4);

    let (mut p, reads) = open_counting(&path, 4, 1.0, None);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(all(&mut p).len(), 4);
    assert_eq!(reads.load(Ordering::SeqCst), 0);
}

#[test]
fn growth_from_3_to_5_appends_exactly_records_3_and_4() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.cache");
    drop(open_counting(&path, 3, 0.0, None));
    let before = std::fs::read(&path).unwrap();

    let (mut p, _) = open_counting(&path, 5, 0.0, None);
    assert_eq!(p.outcome(), &CacheOutcome::Appended { from: 3, to: 5 });
    assert_eq!(all(&mut p), records(5, 0.0));

    let after = std::fs::read(&path).unwrap();
    assert!(after.len() > before.len(), "the file grew");
    // Only the header's commit slot changed in the old bytes; the records were not rewritten.
    let r = CacheReader::open(&path).unwrap();
    assert_eq!(r.len(), 5);
    let first_record_at = r.data_start() as usize;
    assert_eq!(
        &after[first_record_at..before.len()],
        &before[first_record_at..]
    );
}

#[test]
fn same_token_reuses_and_changed_token_repopulates_from_the_new_base() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tok.cache");
    drop(open_counting(&path, 3, 10.0, token("1")));

    let (mut p, reads) = open_counting(&path, 3, 99.0, token("1"));
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(
        p.next().unwrap(),
        record(0, 10.0),
        "old data, source untouched"
    );
    assert_eq!(reads.load(Ordering::SeqCst), 0);

    let (mut p, reads) = open_counting(&path, 3, 99.0, token("2"));
    assert!(matches!(p.outcome(), CacheOutcome::Rebuilt(r) if r.contains("token")));
    assert_eq!(all(&mut p), records(3, 99.0));
    assert_eq!(reads.load(Ordering::SeqCst), 3);
    assert_eq!(CacheReader::open(&path).unwrap().metadata().token, "2");
}

#[test]
fn a_flipped_data_byte_is_never_served_and_the_cache_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.cache");
    drop(open_counting(&path, 6, 0.0, None));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = records_end(&bytes);
    bytes[n - 3] ^= 0x10; // inside the last record's data
    std::fs::write(&path, &bytes).unwrap();

    let (mut p, reads) = open_counting(&path, 6, 0.0, None);
    assert_eq!(
        p.outcome(),
        &CacheOutcome::Reused,
        "damage is found lazily, on read"
    );
    assert_eq!(all(&mut p), records(6, 0.0));
    assert!(matches!(p.outcome(), CacheOutcome::Rebuilt(r) if r.contains("CRC")));
    assert_eq!(reads.load(Ordering::SeqCst), 6);
    let mut r = CacheReader::open(&path).unwrap();
    assert_eq!(r.verify(|_, _| {}).unwrap(), 6, "the rebuilt file is clean");
}

#[test]
fn a_truncated_cache_is_rebuilt_and_never_serves_a_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.cache");
    drop(open_counting(&path, 5, 0.0, None));
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);
    assert!(matches!(
        CacheReader::open(&path),
        Err(Error::Corrupt { .. })
    ));
    let (mut p, _) = open_counting(&path, 5, 0.0, None);
    assert!(matches!(p.outcome(), CacheOutcome::Rebuilt(_)));
    assert_eq!(all(&mut p), records(5, 0.0));
}

#[test]
fn legacy_headerless_files_are_read_and_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.cache");
    let mut bytes = Vec::new();
    for i in 0..3 {
        write_tensor(&mut bytes, record(i, 5.0).as_ref()).unwrap();
    }
    bytes.extend_from_slice(&[0, 1, 0]); // a torn fourth record
    std::fs::write(&path, &bytes).unwrap();

    let mut r = CacheReader::open(&path).unwrap();
    assert_eq!((r.format(), r.len()), (Format::Legacy, 3));
    assert_eq!(r.next_view().unwrap().to_owned(), record(0, 5.0));

    let (mut p, _) = open_counting(&path, 4, 5.0, None);
    assert_eq!(p.outcome(), &CacheOutcome::Appended { from: 3, to: 4 });
    assert_eq!(all(&mut p), records(4, 5.0));
    assert_eq!(CacheReader::open(&path).unwrap().format(), Format::Current);
}

#[test]
fn bad_names_are_refused_with_a_clear_error() {
    for name in ["../x", "", "a\0b"] {
        let (base, _) = Counting::new(1, 0.0);
        let err = DiskCacheProducer::open_with_token(Box::new(base), name, None).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{name:?}: {err}");
    }
}

#[test]
fn no_source_and_a_damaged_cache_is_a_clear_error_naming_the_file() {
    struct Broken;
    impl Producer for Broken {
        fn next_view(&mut self) -> Result<TensorRef<'_>> {
            Err(Error::Foreign("server unreachable".into()))
        }
        fn size(&mut self) -> Result<usize> {
            Ok(2)
        }
        fn source(&self) -> String {
            "broken".into()
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nosrc.cache");
    drop(open_counting(&path, 2, 0.0, None));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = records_end(&bytes);
    bytes[n - 1] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let mut p = DiskCacheProducer::open_at(Box::new(Broken), path.clone(), None).unwrap();
    p.next().unwrap();
    let err = p.next().unwrap_err().to_string();
    assert!(
        err.contains("nosrc.cache") && err.contains("server unreachable"),
        "{err}"
    );
}

#[test]
fn legacy_token_side_file_is_honoured_then_folded_into_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.cache");
    let mut bytes = Vec::new();
    for i in 0..2 {
        write_tensor(&mut bytes, record(i, 1.0).as_ref()).unwrap();
    }
    std::fs::write(&path, &bytes).unwrap();
    std::fs::write(dir.path().join("old.cache.token"), "7").unwrap();

    // Same token as the old runtime stored: the records are kept (upgraded in place).
    let (mut p, reads) = open_counting(&path, 2, 50.0, token("7"));
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(p.next().unwrap(), record(0, 1.0));
    assert_eq!(reads.load(Ordering::SeqCst), 0);
    assert_eq!(CacheReader::open(&path).unwrap().metadata().token, "7");
    assert!(!dir.path().join("old.cache.token").exists());

    // A different token than the legacy one: discarded.
    std::fs::write(&path, &bytes).unwrap();
    std::fs::write(dir.path().join("old.cache.token"), "7").unwrap();
    let (mut p, _) = open_counting(&path, 2, 50.0, token("8"));
    assert!(matches!(p.outcome(), CacheOutcome::Rebuilt(_)));
    assert_eq!(p.next().unwrap(), record(0, 50.0));
}
