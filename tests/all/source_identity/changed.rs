//! A changed or different CSV is never served: another file, an edit in place (also
//! with its mtime restored), and appended rows (parsed alone, a bad cell named).

use super::*;

#[test]
fn another_csv_under_the_same_cache_name_is_rebuilt_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    let cache = dir.path().join("shared.cache");
    write_csv(&a, 0..10, 2, 0.0, false);
    write_csv(&b, 0..10, 2, 0.5, false);
    drop(open_csv(&a, &cache));
    let (mut p, _) = open_csv(&b, &cache);
    let why = rebuilt_reason(&p);
    assert!(
        why.contains("another file") && why.contains("a.csv") && why.contains("b.csv"),
        "{why}"
    );
    assert_eq!(
        all(&mut p),
        (0..10).map(|i| row(i, 2, 0.5)).collect::<Vec<_>>()
    );
}

#[test]
fn the_same_csv_edited_in_place_with_the_same_size_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("e.csv"), dir.path().join("e.cache"));
    std::fs::write(&csv, "1,2\n3,4\n").unwrap();
    drop(open_csv(&csv, &cache));
    std::fs::write(&csv, "1,2\n3,5\n").unwrap();
    assert_eq!(
        rebuilt_records(&csv, &cache, "edited"),
        [vec![1.0, 2.0], vec![3.0, 5.0]]
    );
}

#[test]
fn an_edit_whose_mtime_was_restored_by_utimes_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("u.csv"), dir.path().join("u.cache"));
    std::fs::write(&csv, "1,2\n3,4\n").unwrap();
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&csv, old);
    drop(open_csv(&csv, &cache));
    let before = std::fs::metadata(&csv).unwrap();
    std::fs::write(&csv, "9,2\n3,4\n").unwrap();
    set_mtime(&csv, old);
    let after = std::fs::metadata(&csv).unwrap();
    assert_eq!(
        (before.len(), before.modified().unwrap()),
        (after.len(), after.modified().unwrap())
    );
    assert_eq!(
        rebuilt_records(&csv, &cache, "edited"),
        [vec![9.0, 2.0], vec![3.0, 4.0]]
    );
}

#[test]
fn rows_appended_to_a_csv_are_appended_parsing_only_the_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("g.csv"), dir.path().join("g.cache"));
    write_csv(&csv, 0..200, 4, 0.0, false);
    let (p, _) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Created);
    drop(p);
    write_csv(&csv, 200..260, 4, 0.0, true);
    let (mut p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Appended { from: 200, to: 260 });
    assert_eq!(
        stats.rows.load(Ordering::Relaxed),
        60,
        "only the new rows are parsed"
    );
    assert_eq!(
        all(&mut p),
        (0..260).map(|i| row(i, 4, 0.0)).collect::<Vec<_>>()
    );
    drop(p);
    // The header now records the grown file: the next open reuses it.
    let (p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
}

#[test]
fn a_bad_cell_in_appended_rows_names_its_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("bad.csv"), dir.path().join("bad.cache"));
    write_csv(&csv, 0..20, 2, 0.0, false);
    drop(open_csv(&csv, &cache));
    let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
    f.write_all(b"1,2\n3,oops\n").unwrap();
    let p = CsvProducer::open(&csv, false).unwrap();
    let err = DiskCacheProducer::open_at(Box::new(p), cache.clone(), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("bad.csv: row 22, column 2: \"oops\" is not a number"),
        "{err}"
    );
    // The cache was left as it was.
    assert_eq!(CacheReader::open(&cache).unwrap().len(), 20);
}
