//! Older formats: version-1 and legacy headerless files read, append and upgrade with
//! random access; published files stream with the index first or last.

use super::*;

#[test]
fn version_1_files_read_append_and_upgrade_with_random_access() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.cache");
    let want = dataset(500, 2);
    std::fs::write(
        &path,
        version_1_file(&Metadata::new("tok", "v1 source"), &want[..400]),
    )
    .unwrap();
    // Read as it is: an in-memory index is built on first use.
    let mut r = CacheReader::open(&path).unwrap();
    assert_eq!((r.version(), r.has_index()), (1, false));
    assert_eq!(read_all(&mut r), want[..400]);
    assert_random_access(&mut r, &want[..400], "version 1");
    assert!(matches!(r.view_at(400), Err(Error::IndexOutOfRange { .. })));
    // Appended to in its own layout.
    let lock = CacheLock::exclusive(&path).unwrap();
    let mut a = CacheAppender::open(&path, &lock).unwrap();
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
    assert!(upgrade(&path, &lock).unwrap());
    let mut r2 = CacheReader::open(&path).unwrap();
    assert_eq!((r2.version(), r2.has_index()), (2, true));
    assert_eq!(r2.metadata().token, "tok");
    assert_eq!(r2.metadata().source, "v1 source");
    let file = std::fs::read(&path).unwrap();
    let h = Header::decode(&file).unwrap();
    assert_eq!(h.commit.index_at, h.data_start, "index placed first");
    assert_random_access(&mut r2, &want[..450], "upgraded version 1");
    assert_eq!(read_all(&mut r2), want[..450]);
    r2.verify(|_, _| {}).unwrap();
    // The reader opened before the upgrade keeps serving the old inode.
    assert_random_access(&mut r, &want[..450], "pre-upgrade reader");
    assert!(!upgrade(&path, &lock).unwrap(), "already current");
    // And an upgraded file grows with random access as any other.
    let mut a = CacheAppender::open(&path, &lock).unwrap();
    for t in &want[450..] {
        a.push(t.as_ref()).unwrap();
    }
    a.commit().unwrap();
    let mut r3 = CacheReader::open(&path).unwrap();
    assert_random_access(&mut r3, &want, "upgraded then appended");
    assert_eq!(read_all(&mut r3), want);
}

#[test]
fn legacy_files_have_random_access_read_only_too_and_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.cache");
    let want = dataset(700, 4);
    std::fs::write(&path, wire_body(&want)).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    let mut r = CacheReader::open(&path).unwrap();
    assert_eq!((r.version(), r.has_index()), (0, false));
    assert_random_access(&mut r, &want, "read-only legacy");
    assert!(matches!(r.view_at(700), Err(Error::IndexOutOfRange { .. })));
    // Upgrading replaces the name (the directory is writable), not the old inode.
    let lock = CacheLock::exclusive(&path).unwrap();
    assert!(upgrade(&path, &lock).unwrap());
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
    write_cache(&last, Metadata::new("", "test"), &want);
    let first = dir.path().join("first.cache");
    std::fs::write(&first, wire_body(&want)).unwrap();
    let lock = CacheLock::exclusive(&first).unwrap();
    upgrade(&first, &lock).unwrap();
    let v1 = dir.path().join("v1.cache");
    std::fs::write(
        &v1,
        version_1_file(&Metadata::new("tok", "v1 source"), &want),
    )
    .unwrap();
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
            let h = Header::decode(&bytes).unwrap();
            let at = h.commit.index_at as usize;
            let entries = at + 9 + (bytes[at + 8] & 0x7f) as usize;
            let mut d = bytes.clone();
            d[entries + 8 * 77 + 2] ^= 0x04;
            let e = decode(&d).unwrap_err();
            assert!(e.contains("index"), "{e}");
        }
    }
}
