//! `info` and `verify`: metadata, and every record checked, naming the damaged file.

use super::*;

#[test]
fn info_prints_metadata_and_fails_on_missing_damaged_or_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    populated(tmp.path());
    let out = run_ok(tmp.path(), &["info", "a.cache"]);
    for want in [
        "format:           current (version 2)",
        "records:          5",
        "token:            v1",
        "source:           vec:test",
        "uncommitted tail: 0 bytes",
    ] {
        assert!(out.contains(want), "{want:?} missing from\n{out}");
    }
    let o = run(tmp.path(), &["info", "--json", "sub/c.cache"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (v["records"].as_u64(), v["source"].as_str()),
        (Some(3), Some("writer:test"))
    );

    let o = run(tmp.path(), &["info", "missing.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no cache"), "{}", stderr(&o));
    let o = run(tmp.path(), &["info", "../escape"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'..' is not allowed"), "{}", stderr(&o));
    let o = run(tmp.path(), &["info", "bad.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("format:           damaged"));
    assert!(stderr(&o).contains("damaged magic"), "{}", stderr(&o));
    no_backtrace(&o);
    let o = run(tmp.path(), &["info"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
}

#[test]
fn verify_checks_every_record_and_names_the_damaged_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_cache(&dir.join("a.cache"), 50, "");
    write_legacy(&dir.join("old.cache"), 4);
    let out = run_ok(dir, &["verify"]);
    assert!(
        out.contains(&format!(
            "OK       {}: 50 records",
            dir.join("a.cache").display()
        )),
        "{out}"
    );
    assert!(out.contains("every CRC checked"));
    assert!(
        out.contains("legacy format (no CRCs): every record walked"),
        "{out}"
    );

    // One flipped byte in the last record's data: only a CRC over every record finds it.
    flip_byte(&dir.join("a.cache"), 2);
    // The header is intact, but info checks the records too: damaged, exit 1.
    let o = run(dir, &["info", "a.cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("format:           damaged") && stdout(&o).contains("record 49"),
        "{}",
        stdout(&o)
    );
    let o = run(dir, &["verify", "a.cache"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "DAMAGED  {}: record 49",
            dir.join("a.cache").display()
        )) && out.contains("CRC mismatch"),
        "{out}"
    );
    let o = run(dir, &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("OK       ") && stderr(&o).contains("1 of 2 cache(s) damaged"));
    no_backtrace(&o);

    // A legacy file cut inside a record header is served up to its last whole record.
    let mut b = std::fs::read(dir.join("old.cache")).unwrap();
    b.truncate(b.len() - 70);
    std::fs::write(dir.join("old.cache"), &b).unwrap();
    let o = run(dir, &["verify", "old.cache"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("3 records"), "{}", stdout(&o));
    assert!(stdout(&o).contains("bytes after the last complete record are ignored"));
    // A legacy file whose first record is garbage is damaged.
    std::fs::write(dir.join("junk.cache"), b"not a tensor at all").unwrap();
    let o = run(dir, &["verify", "junk.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("DAMAGED"));
    assert_eq!(run(dir, &["verify", "nope.cache"]).status.code(), Some(1));
}
