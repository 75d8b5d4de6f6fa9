//! What sits at the cache path, and where: FIFOs, sockets, directories and devices are
//! refused at once; a relative cache directory is resolved at open; metadata too large
//! for the format is refused; another user's cache is rebuilt by rename.

use super::*;

#[test]
fn fifo_socket_directory_and_device_at_the_cache_path_are_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let fifo = dir.join("fifo.cache");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let sock = dir.join("sock.cache");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let sub = dir.join("dir.cache");
    std::fs::create_dir(&sub).unwrap();
    let mut cases = vec![(fifo, "a FIFO"), (sock, "a socket"), (sub, "a directory")];
    // A character device (as /dev/null), where this container lets root make one.
    let dev = dir.join("dev.cache");
    let c = std::ffi::CString::new(dev.to_str().unwrap()).unwrap();
    if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0 {
        cases.push((dev, "a character device"));
    }
    for (path, kind) in cases {
        let p = path.clone();
        let err = bounded("DiskCacheProducer::open_at", move || {
            producer_at(&p, 3).map(|_| ())
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::NotRegularFile { .. }) && err.to_string().contains(kind),
            "{kind}: {err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        let p = path.clone();
        let err = bounded("CacheReader::open", move || {
            CacheReader::open(&p).map(|_| ())
        })
        .unwrap_err();
        assert!(err.to_string().contains(kind), "{err}");
        // The HTTP producer's cache path: refused before any request is made.
        let p = path.clone();
        let err = bounded("HttpProducer", move || {
            let opts = HttpOptions::cached_at(true, p.to_str().unwrap());
            HttpProducer::from_url("http://127.0.0.1:9/never-asked", opts).map(|_| ())
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::NotRegularFile { .. }) && err.to_string().contains(kind),
            "{kind}: {err}"
        );
        // The lock was not kept: another opener is not blocked behind the refusal.
        assert!(CacheLock::try_exclusive(&path).unwrap().is_some());
    }
}

#[test]
fn relative_cache_dir_is_resolved_once_at_open_not_after_chdir() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let second = tmp.path().join("second");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let envs = [
        ("FIRST", first.display().to_string()),
        ("SECOND", second.display().to_string()),
        ("HARMONICS_CACHE_DIR", "rel/hc".to_string()),
    ];
    let (result, _) = run_child("chdir", &envs);
    let expected = first.join("rel/hc/g.cache");
    assert_eq!(
        result,
        format!("Appended {{ from: 4, to: 7 }} 7 {}", expected.display())
    );
    assert_eq!(records_of(&expected), dataset(7, GEN));
    assert!(
        !second.join("rel").exists(),
        "a second cache appeared after chdir"
    );
}

#[test]
fn metadata_too_large_for_the_format_is_refused_when_written() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big-token.cache");
    let big = "t".repeat(2 << 20);
    let tok = big.clone();
    let err = DiskCacheProducer::open_at(
        Box::new(Slow::new(3, GEN)),
        path.clone(),
        Some(Box::new(move || Ok(tok.clone()))),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("token is 2097152 bytes") && msg.contains("limit of 1048576 bytes"),
        "{msg}"
    );
    assert!(msg.contains("big-token.cache"), "{msg}");
    assert!(!path.exists());
    assert!(temps_in(tmp.path()).is_empty());
    // Just under the limit is written and read back.
    let meta = Metadata::new(&"t".repeat((1 << 20) - 4096), "s");
    let lock = CacheLock::exclusive(&path).unwrap();
    let mut w = CacheWriter::create(&path, meta, &lock).unwrap();
    w.push(record(0, GEN).as_ref()).unwrap();
    w.finish().unwrap();
    drop(lock);
    assert_eq!(CacheReader::open(&path).unwrap().len(), 1);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn another_users_cache_is_rebuilt_by_rename_or_the_error_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    // A shared directory (world-writable, not sticky): root's cache, not writable by
    // others, is replaced by a rebuild when the source grew.
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let cache = shared.join("train.cache");
    producer_at(&cache, 10).unwrap();
    chmod(&cache, 0o644);
    chmod(&shared, 0o777);
    let envs = [("CACHE", cache.display().to_string()), ("N", "15".into())];
    let (result, stderr) = run_child("nobody", &envs);
    assert!(
        result.starts_with("ok Rebuilt(") && result.ends_with(" 15 true"),
        "{result}"
    );
    assert!(result.contains("belongs to uid 0"), "{result}");
    assert!(stderr.contains("rebuilding it by rename"), "{stderr}");
    assert_eq!(std::fs::metadata(&cache).unwrap().uid(), 65534);
    assert_eq!(records_of(&cache), dataset(15, GEN));

    // Sticky (as /tmp): another user's file cannot be replaced either. The error says
    // whose file it is, what was tried, and the cache is intact.
    let sticky = tmp.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    let cache: PathBuf = sticky.join("train.cache");
    producer_at(&cache, 10).unwrap();
    chmod(&cache, 0o644);
    chmod(&sticky, 0o1777);
    let envs = [("CACHE", cache.display().to_string()), ("N", "15".into())];
    let (result, _) = run_child("nobody", &envs);
    assert!(result.starts_with("io "), "{result}");
    for want in [
        "belongs to uid 0",
        "uid 65534",
        "replacing it by a rebuild failed",
        "cannot rename cache into place",
        &cache.display().to_string(),
    ] {
        assert!(result.contains(want), "{want:?} missing: {result}");
    }
    assert_eq!(records_of(&cache), dataset(10, GEN));
    assert!(temps_in(&sticky).is_empty(), "{:?}", temps_in(&sticky));
}
