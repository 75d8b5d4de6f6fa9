//! Hostile and careless use of a cache directory (DESIGN.md §8), against the library:
//! planted symbolic links at the cache and lock names, FIFOs, sockets and directories
//! at the cache path, another process's lock held (also by a stopped process), a
//! relative cache directory after chdir(), metadata too large for the format, and a
//! cache file owned by another user in a shared directory (a child dropped to uid
//! 65534: the suite runs as root, and root ignores mode bits).
//! Every case must touch nothing outside the cache directory and never hang.

mod support;
use support::http_server;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use harmonics_dataset::cache::{
    set_lock_timeout, CacheAppender, CacheLock, CacheReader, CacheWriter, Metadata,
};
use harmonics_dataset::{
    CacheOutcome, DiskCacheProducer, Error, HttpOptions, HttpProducer, Producer, Result, Tensor,
    TensorRef,
};
use support::reliability::*;

const CHILD: &str = "child_hostile";
const GEN: u32 = 9;

/// Runs `f` on a thread and waits for it at most a generous minute: a call that
/// blocks (on a FIFO, say) fails the test instead of hanging the suite.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} still blocked after 60 s"))
}

fn producer_at(path: &Path, n: usize) -> Result<DiskCacheProducer> {
    DiskCacheProducer::open_at(Box::new(Slow::new(n, GEN)), path.to_path_buf(), None)
}

fn records_of(path: &Path) -> Vec<Tensor> {
    read_cache(path).expect("cache exists").expect("readable").1
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Child roles, run by `run_child`/`spawn_role`; prints one `RESULT` line.
#[test]
fn child_hostile() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let line = match role.as_str() {
        "holder" => {
            let _lock = CacheLock::exclusive(&env_path("CACHE")).unwrap();
            println!("HELD {}", std::process::id());
            // The parent kills us; never wait unboundedly.
            std::thread::sleep(Duration::from_secs(300));
            return;
        }
        "waiter" => describe(producer_at(&env_path("CACHE"), 3)),
        "setter" => {
            // The Rust setter, overriding a generous HARMONICS_LOCK_TIMEOUT.
            set_lock_timeout(Some(Duration::from_millis(400)));
            describe(producer_at(&env_path("CACHE"), 3))
        }
        "nobody" => {
            unsafe {
                assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
                assert_eq!(libc::setgid(65534), 0);
                assert_eq!(libc::setuid(65534), 0);
            }
            describe(producer_at(&env_path("CACHE"), env_num("N")))
        }
        "chdir" => chdir_then_refresh(),
        other => panic!("unknown role {other}"),
    };
    println!("RESULT: {line}");
}

fn describe(r: Result<DiskCacheProducer>) -> String {
    match r {
        Ok(mut p) => {
            let good = (0..p.len()).all(|i| p.next().unwrap() == record(i, GEN));
            format!("ok {:?} {} {good}", p.outcome(), p.len())
        }
        Err(Error::LockTimeout { pid, waited, .. }) => {
            format!(
                "timeout pid={} waited_ms={}",
                pid.unwrap_or(0),
                waited.as_millis()
            )
        }
        Err(e @ Error::Io { .. }) => format!("io {e}"),
        Err(e) => format!("other {e}"),
    }
}

fn child_command(role: &str, envs: &[(&str, String)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", CHILD, "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    for (k, v) in envs {
        c.env(k, v);
    }
    c
}

/// Runs a role to completion: (its RESULT line, its stderr).
fn run_child(role: &str, envs: &[(&str, String)]) -> (String, String) {
    let out = child_command(role, envs).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let result = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT: ").map(|(_, r)| r.to_string()))
        .unwrap_or_else(|| panic!("child {role} printed no result: {stdout}\n{stderr}"));
    (result, stderr)
}

/// A source whose size the test changes between refreshes.
struct Growing {
    n: Arc<AtomicUsize>,
    at: usize,
    current: Tensor,
}

impl Producer for Growing {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let n = self.n.load(Ordering::SeqCst);
        self.current = record(self.at % n, GEN);
        self.at = (self.at + 1) % n;
        Ok(self.current.as_ref())
    }
    fn size(&mut self) -> Result<usize> {
        Ok(self.n.load(Ordering::SeqCst))
    }
    fn source(&self) -> String {
        "growing".into()
    }
}

/// Child: opens `g.cache` under a relative HARMONICS_CACHE_DIR in $FIRST, changes
/// directory to $SECOND, grows the source and refreshes.
fn chdir_then_refresh() -> String {
    std::env::set_current_dir(env_path("FIRST")).unwrap();
    let n = Arc::new(AtomicUsize::new(4));
    let base = Growing {
        n: n.clone(),
        at: 0,
        current: record(0, GEN),
    };
    let mut p = DiskCacheProducer::open_with_token(Box::new(base), "g.cache", None).unwrap();
    std::env::set_current_dir(env_path("SECOND")).unwrap();
    n.store(7, Ordering::SeqCst);
    let outcome = p.refresh().unwrap().clone();
    format!("{outcome:?} {} {}", p.len(), p.path().display())
}

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
    for err in [
        CacheAppender::open(&link).unwrap_err(),
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

/// A child killed and reaped however the test ends (SIGKILL ends a stopped one too).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn lock_waiter_names_the_stopped_holder_and_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("busy.cache");
    let mut holder = Reaped(
        child_command("holder", &[("CACHE", cache.display().to_string())])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let holder = &mut holder.0;
    // The harness prints its own lines first.
    let pid: u32 = BufReader::new(holder.stdout.take().unwrap())
        .lines()
        .map_while(|l| l.ok())
        .find_map(|l| {
            l.split_once("HELD ")
                .map(|(_, p)| p.trim().parse().unwrap())
        })
        .expect("the holder took the lock");
    assert_eq!(pid, holder.id());
    // The holder cannot run at all: only the pid in the lock file says who it is.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };

    let envs = [
        ("CACHE", cache.display().to_string()),
        ("HARMONICS_LOCK_TIMEOUT", "3".to_string()),
        ("HARMONICS_LOCK_NOTICE", "0.2".to_string()),
    ];
    let (result, stderr) = run_child("waiter", &envs);
    assert!(
        result.starts_with(&format!("timeout pid={pid} ")),
        "{result}"
    );
    let waited: u64 = result.rsplit("waited_ms=").next().unwrap().parse().unwrap();
    assert!(waited >= 3000, "gave up early: {waited} ms");
    assert!(
        stderr.contains("waiting for the lock of")
            && stderr.contains(&cache.display().to_string())
            && stderr.contains(&format!("held by pid {pid}")),
        "{stderr}"
    );
    // The process-wide setter from Rust wins over the environment.
    let envs = [
        ("CACHE", cache.display().to_string()),
        ("HARMONICS_LOCK_TIMEOUT", "600".to_string()),
    ];
    let (result, _) = run_child("setter", &envs);
    assert!(
        result.starts_with(&format!("timeout pid={pid} ")),
        "{result}"
    );
    assert!(!cache.exists());

    let _ = holder.kill();
    let _ = holder.wait();
    // The holder is gone: the next opener gets the lock at once and populates.
    let (result, _) = run_child("waiter", &[("CACHE", cache.display().to_string())]);
    assert_eq!(result, "ok Created 3 true");
}

#[test]
fn lock_wait_ends_when_the_stop_flag_is_set() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("s.cache");
    // Held through another descriptor: flock excludes it as it would another process.
    let _held = CacheLock::exclusive(&cache).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let c = cache.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(CacheLock::exclusive_unless_stopped(&c, Some(&s)).map(|l| l.is_some()));
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "the waiter did not wait for the held lock"
    );
    stop.store(true, Ordering::Relaxed);
    let got = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("stop flag not honoured");
    assert!(!got.unwrap(), "stopped waits return no lock");
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
    let mut w = CacheWriter::create(&path, meta).unwrap();
    w.push(record(0, GEN).as_ref()).unwrap();
    w.finish().unwrap();
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
