//! Dropping an AsyncHttpProducer returns at once while its thread is blocked (on
//! another process's cache lock, a server that never answers, a stalled body), and
//! the thread publishes nothing later.

use super::*;

/// Drops `p` in another thread; true when the drop returned within a generous
/// guard (which only keeps a failing test from hanging).
fn drop_returns(p: AsyncHttpProducer) -> bool {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        drop(p);
        let _ = tx.send(started.elapsed());
    });
    match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(took) => {
            println!("drop took {took:?}");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn dropping_while_another_process_holds_the_cache_lock_returns_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    let server = TestServer::serving(wire_body(&records(5, 4)));
    // Another open file description of the lock file: flock conflicts with it as it
    // would with another process.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(lock_path(&cache))
        .unwrap();
    // SAFETY: a valid descriptor.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let p = AsyncHttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap();
    // Give the thread time to reach the lock (not a limit: it blocks there anyway).
    std::thread::sleep(Duration::from_millis(200));
    let returned = drop_returns(p);
    let still_locked = {
        let again = std::fs::File::open(lock_path(&cache)).unwrap();
        // SAFETY: a valid descriptor.
        unsafe { libc::flock(again.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
    };
    drop(lock);
    assert!(returned, "drop waited for the cache lock held elsewhere");
    assert!(still_locked, "the lock was still held when drop returned");
    // The detached thread, once it gets the lock, must not download or publish.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.request_count(), 0, "a request after the drop");
    assert!(!cache.exists(), "a cache was published after the drop");
}

#[test]
fn dropping_while_the_server_never_answers_returns_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/d", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    // Accepts and holds the connection without a byte of answer.
    std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let _ = tx.send(());
        std::thread::sleep(Duration::from_secs(60));
        drop(s);
    });
    let dir = tempfile::tempdir().unwrap();
    let p = AsyncHttpProducer::from_url(&url, opts(&dir.path().join("c.cache"))).unwrap();
    rx.recv_timeout(Duration::from_secs(15))
        .expect("the producer connected");
    assert!(
        drop_returns(p),
        "drop waited for a server that never answers"
    );
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn dropping_mid_download_returns_at_once_and_the_thread_publishes_nothing_later() {
    // The server sends a few records, then stalls until it is stopped. The default
    // read timeout (30 s) keeps the thread blocked in its read long after the drop.
    let recs = records(50, 64);
    let body = wire_body(&recs);
    let server = http_server::stalling(body, 4000);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    let mut p = AsyncHttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap();
    // Every complete record sent: the thread is then blocked reading the rest.
    let sent = 4000 / wire_body(&recs[..1]).len();
    for want in &recs[..sent] {
        assert_eq!(&p.next().unwrap(), want, "following the download");
    }
    let temps = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".c.cache.") && !n.ends_with(".lock"))
            .count()
    };
    assert_eq!(temps(), 1, "the download's temp file");
    assert!(drop_returns(p), "drop waited for the stalled read");
    // Unblock the detached thread: its read ends, and it must remove its temp file
    // without publishing anything.
    server.stop();
    let mut waited = 0;
    while temps() > 0 && waited < 1500 {
        std::thread::sleep(Duration::from_millis(10));
        waited += 1;
    }
    assert_eq!(temps(), 0, "the temp file outlived the thread");
    assert!(
        !cache.exists(),
        "a cut download was published after the drop"
    );
}
