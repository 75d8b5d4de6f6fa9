//! Planted symbolic links at the cache and lock names: replaced by a rebuild or
//! refused, never written through (also by an HTTP download).

use super::*;

#[test]
fn symlink_at_the_cache_name_is_replaced_by_a_rebuild_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();

    // The link points at a valid, smaller cache: an append through it would extend
    // (and first cut) the file outside.
    let victim = outside.join("victim.cache");
    producer_at(&victim, 5).unwrap();
    let before = std::fs::read(&victim).unwrap();
    let link = dir.join("x.cache");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let p = producer_at(&link, 8).unwrap();
    assert!(
        matches!(p.outcome(), CacheOutcome::Rebuilt(why) if why.contains("symbolic link")),
        "{:?}",
        p.outcome()
    );
    drop(p);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        before,
        "the file outside changed"
    );
    assert!(!is_symlink(&link), "the link was not replaced");
    assert_eq!(records_of(&link), dataset(8, GEN));

    // The same through a link to any other file: the target keeps its bytes.
    let notes = outside.join("notes.txt");
    std::fs::write(&notes, b"do not touch").unwrap();
    let link = dir.join("y.cache");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    producer_at(&link, 3).unwrap();
    assert_eq!(std::fs::read(&notes).unwrap(), b"do not touch");
    assert!(!is_symlink(&link));

    // The appender and the reader on their own refuse a link with a clear error.
    let link = dir.join("z.cache");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let lock = CacheLock::exclusive(&link).unwrap();
    for err in [
        CacheAppender::open(&link, &lock).unwrap_err(),
        CacheReader::open(&link).unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::NotRegularFile { .. })
                && err.to_string().contains("symbolic link"),
            "{err}"
        );
        assert!(err.to_string().contains("z.cache"), "{err}");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), before);
}

#[test]
fn symlink_at_the_lock_name_is_refused_and_creates_nothing_where_it_points() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    std::fs::create_dir_all(&dir).unwrap();
    let target = tmp.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, dir.join(".l.cache.lock")).unwrap();
    let err = producer_at(&dir.join("l.cache"), 3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotRegularFile {
                role: "lock file",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(".l.cache.lock"), "{err}");
    assert!(CacheLock::try_exclusive(&dir.join("l.cache")).is_err());
    assert!(
        !target.exists(),
        "a file was created through the planted link"
    );
    assert!(!dir.join("l.cache").exists());

    // A link to an existing file is refused too, and the file is left as it was.
    let existing = tmp.path().join("existing");
    std::fs::write(&existing, b"keep").unwrap();
    std::os::unix::fs::symlink(&existing, dir.join(".m.cache.lock")).unwrap();
    assert!(CacheLock::exclusive(&dir.join("m.cache")).is_err());
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep");
}

#[test]
fn http_download_replaces_a_symlink_at_its_cache_path_never_writing_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim.cache");
    producer_at(&victim, 4).unwrap();
    let before = std::fs::read(&victim).unwrap();
    let link = tmp.path().join("cache/http.cache");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let served = http_server::records(6, 3);
    let server = http_server::TestServer::serving(http_server::wire_body(&served));
    let mut opts = HttpOptions::cached_at(true, link.to_str().unwrap());
    opts.retries = 0;
    let mut p = HttpProducer::from_url(&server.url("/d"), opts).unwrap();
    assert_eq!(
        p.size().unwrap(),
        6,
        "served the link's target instead of downloading"
    );
    assert_eq!(server.request_count(), 1);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        before,
        "the file outside changed"
    );
    assert!(!is_symlink(&link));
    assert_eq!(CacheReader::open(&link).unwrap().len(), 6);
}
