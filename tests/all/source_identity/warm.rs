//! A warm cache skips its source: a big CSV is not parsed, a stamp outside the racy
//! window is not even read, a racy or touched stamp is verified by content and then
//! recorded, and a cache without identity is adopted once.

use super::*;

#[test]
fn warm_50_mb_csv_is_not_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("train.csv"), dir.path().join("train.cache"));
    let (rows, width) = (400_000, 16);
    write_csv(&csv, 0..rows, width, 0.25, false);
    let bytes = std::fs::metadata(&csv).unwrap().len();
    assert!(bytes >= 50_000_000, "{bytes} bytes");
    let (cold, stats) = open_csv(&csv, &cache);
    assert_eq!(cold.outcome(), &CacheOutcome::Created);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 1);
    drop(cold);

    let (mut warm, stats) = open_csv(&csv, &cache);
    assert_eq!(warm.outcome(), &CacheOutcome::Reused);
    assert_eq!(
        stats.parses.load(Ordering::Relaxed),
        0,
        "the CSV was parsed"
    );
    assert_eq!(stats.rows.load(Ordering::Relaxed), 0);
    assert_eq!(warm.len(), rows);
    assert_eq!(warm.next().unwrap().to_f32(), row(0, width, 0.25));
    let id = warm.metadata().identity.clone().unwrap();
    assert_eq!(id.kind, SourceKind::Csv);
    assert_eq!(
        id.id,
        std::fs::canonicalize(&csv).unwrap().to_str().unwrap()
    );
}

#[test]
fn warm_csv_recorded_after_the_racy_window_is_not_even_read() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("old.csv"), dir.path().join("old.cache"));
    write_csv(&csv, 0..50, 3, 0.0, false);
    // The stamp must be taken out of the racy window of the file's last change.
    std::thread::sleep(Duration::from_millis(2100));
    let (cold, _) = open_csv(&csv, &cache);
    assert_eq!(cold.outcome(), &CacheOutcome::Created);
    drop(cold);
    let (warm, stats) = open_csv(&csv, &cache);
    assert_eq!(warm.outcome(), &CacheOutcome::Reused);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
    assert_eq!(
        stats.bytes_hashed.load(Ordering::Relaxed),
        0,
        "the CSV was read"
    );
}

#[test]
fn a_racy_or_touched_stamp_verified_by_content_is_recorded_so_later_opens_read_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("r.csv"), dir.path().join("r.cache"));
    write_csv(&csv, 0..30, 3, 0.0, false);
    drop(open_csv(&csv, &cache)); // stamped right after the write: racily clean
    let racy = |p: &DiskCacheProducer| {
        p.metadata()
            .identity
            .clone()
            .unwrap()
            .stamp
            .unwrap()
            .is_racy()
    };
    let (p, stats) = open_csv(&csv, &cache);
    assert!(
        racy(&p),
        "still within the window: verified, not re-recorded"
    );
    assert!(stats.bytes_hashed.load(Ordering::Relaxed) > 0);
    drop(p);
    std::thread::sleep(Duration::from_millis(2100));
    let (p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert!(
        stats.bytes_hashed.load(Ordering::Relaxed) > 0,
        "verified by content"
    );
    assert!(!racy(&p), "the verified stamp was recorded");
    drop(p);
    let (mut p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(stats.bytes_hashed.load(Ordering::Relaxed), 0);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
    assert_eq!(all(&mut p).len(), 30);
    drop(p);
    // A touch (mtime moved back an hour, same bytes): reused, verified by content (its
    // ctime is new, so that stamp is racy and is not recorded yet).
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&csv, old);
    let (p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert!(stats.bytes_hashed.load(Ordering::Relaxed) > 0);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
}

#[test]
fn a_cache_without_identity_is_adopted_once_then_reused_without_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("t.csv"), dir.path().join("t.cache"));
    write_csv(&csv, 0..5, 2, 0.0, false);
    // A cache as the previous version wrote it: source description, no identity.
    let source = format!("csv:{}", csv.display());
    let lock = CacheLock::exclusive(&cache).unwrap();
    let mut w = CacheWriter::create(&cache, Metadata::new("", &source), &lock).unwrap();
    for i in 0..5 {
        w.push(Tensor::from_f32(&row(i, 2, 0.0)).as_ref()).unwrap();
    }
    w.finish().unwrap();
    drop(lock);
    assert!(CacheReader::open(&cache)
        .unwrap()
        .metadata()
        .identity
        .is_none());

    let (p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(
        stats.parses.load(Ordering::Relaxed),
        1,
        "trusted once by the size rule"
    );
    assert!(p.metadata().identity.is_some(), "the identity is recorded");
    drop(p);
    let (mut p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
    assert_eq!(
        all(&mut p),
        (0..5).map(|i| row(i, 2, 0.0)).collect::<Vec<_>>()
    );

    // An old cache whose description names another source is rebuilt.
    let lock = CacheLock::exclusive(&cache).unwrap();
    let mut w = CacheWriter::create(&cache, Metadata::new("", "csv:other.csv"), &lock).unwrap();
    w.push(Tensor::from_f32(&[7.0]).as_ref()).unwrap();
    w.finish().unwrap();
    drop(lock);
    let (mut p, _) = open_csv(&csv, &cache);
    let why = rebuilt_reason(&p);
    assert!(why.contains("other.csv") && why.contains("t.csv"), "{why}");
    assert_eq!(all(&mut p).len(), 5);
}
