//! Hostile and careless use of a cache directory (DESIGN.md §8), against the library:
//! planted symbolic links at the cache and lock names, FIFOs, sockets and directories
//! at the cache path, another process's lock held (also by a stopped process), a
//! relative cache directory after chdir(), metadata too large for the format, and a
//! cache file owned by another user in a shared directory (a child dropped to uid
//! 65534: the suite runs as root, and root ignores mode bits).
//! Every case must touch nothing outside the cache directory and never hang.

use crate::support;
use support::http_server;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

mod files;
mod links;
mod locks;

/// The child test, as `--exact` names it in this binary.
fn child_test() -> String {
    support::test_name(module_path!(), "child_hostile")
}
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
        "locker" => locks::locker_role(),
        "remover" => locks::remover_role(),
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
    support::reliability::child_command(&child_test(), role, envs)
}

/// Runs a role to completion: (its RESULT line, its stderr).
fn run_child(role: &str, envs: &[(&str, String)]) -> (String, String) {
    child_result(&child_test(), role, envs)
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
