//! Another process's lock, held by a stopped process: the waiter names the holder and
//! times out, or ends when the stop flag is set.

use super::*;

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

/// Counters shared by the processes of `removing_lock_files_under_waiters_never_gives_two_holders`:
/// a file mapped `MAP_SHARED` by each of them.
struct SharedCounters(&'static [AtomicU64; 8]);

/// Slots of `SharedCounters`.
const HOLDERS: usize = 0;
const OVERLAPS: usize = 1;
const ACQUIRED: usize = 2;
const LOCKERS_DONE: usize = 3;
const LOCK_FILES_REMOVED: usize = 4;

impl SharedCounters {
    /// Maps `path` (created, zeroed, if missing); the mapping lives as long as the process.
    fn map(path: &Path) -> SharedCounters {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        f.set_len(4096).unwrap();
        // SAFETY: a shared read-write mapping of a 4096-byte file we opened; it is never
        // unmapped, and only touched through atomics.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: page-aligned, 4096 bytes, shared between processes through atomics only.
        SharedCounters(unsafe { &*(p as *const [AtomicU64; 8]) })
    }

    fn get(&self, slot: usize) -> u64 {
        self.0[slot].load(Ordering::SeqCst)
    }
}

/// Lock acquisitions per locker process.
const LOCKER_ROUNDS: u64 = 150;
const LOCKERS: u64 = 4;
/// Upper bound of the remover's rounds (it stops when the lockers are done).
const REMOVER_ROUNDS: u64 = 1_000_000;

/// Child: takes and releases the lock of $CACHE $ROUNDS times, counting how many
/// processes believe they hold it at once.
pub(crate) fn locker_role() -> String {
    let c = SharedCounters::map(&env_path("COUNTERS"));
    let cache = env_path("CACHE");
    for round in 0..LOCKER_ROUNDS {
        let lock = CacheLock::exclusive(&cache).unwrap();
        if c.0[HOLDERS].fetch_add(1, Ordering::SeqCst) != 0 {
            c.0[OVERLAPS].fetch_add(1, Ordering::SeqCst);
        }
        c.0[ACQUIRED].fetch_add(1, Ordering::SeqCst);
        // Hold it a little: long enough for others to queue up on the file.
        std::thread::sleep(Duration::from_micros(200 + 100 * (round % 4)));
        c.0[HOLDERS].fetch_sub(1, Ordering::SeqCst);
        drop(lock);
        // And leave it free a little: the remover takes it then.
        std::thread::sleep(Duration::from_micros(300 * (round % 5)));
    }
    c.0[LOCKERS_DONE].fetch_add(1, Ordering::SeqCst);
    "done".into()
}

/// Child: removes the lock file of $CACHE, alternately with `clear` of its directory
/// and `rm` of the lock file (what `cache_cli clear` / `cache_cli rm` do), until the
/// lockers are done.
pub(crate) fn remover_role() -> String {
    use harmonics_dataset::cache::maintenance::{clear, remove, Clear, Removal};
    let c = SharedCounters::map(&env_path("COUNTERS"));
    let cache = env_path("CACHE");
    let dir = cache.parent().unwrap().to_path_buf();
    let lock = harmonics_dataset::cache::lock_path(&cache);
    let mut rounds = 0;
    while c.get(LOCKERS_DONE) < LOCKERS && rounds < REMOVER_ROUNDS {
        let removed = if rounds % 2 == 0 {
            match clear(&dir, false).unwrap() {
                Clear::Done(d) => d.removed > 0,
                other => panic!("{other:?}"),
            }
        } else {
            // The lock file may be missing or taken: both are fine.
            matches!(remove(&lock), Ok(Removal::Removed))
        };
        if removed {
            c.0[LOCK_FILES_REMOVED].fetch_add(1, Ordering::SeqCst);
        }
        rounds += 1;
        std::thread::yield_now();
    }
    format!("rounds {rounds}")
}

/// `cache_cli clear` and `cache_cli rm` remove lock files while other processes wait on
/// them: a waiter then holds the flock of a file no name leads to, while a newcomer
/// locks a new file at the name. Four processes take and release one cache's lock over
/// and over while a fifth removes its lock file; a counter in shared memory says how
/// many believe they hold the lock at once. It must never be two.
#[test]
fn removing_lock_files_under_waiters_never_gives_two_holders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    std::fs::create_dir_all(&dir).unwrap();
    // A file of the user's keeps `clear` from removing the directory itself.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let cache = dir.join("shared.cache");
    let counters = tmp.path().join("counters");
    let c = SharedCounters::map(&counters);
    let envs = vec![
        ("CACHE", cache.display().to_string()),
        ("COUNTERS", counters.display().to_string()),
    ];
    let children: Vec<_> = (0..=LOCKERS)
        .map(|i| {
            let envs = envs.clone();
            let role = if i == LOCKERS { "remover" } else { "locker" };
            std::thread::spawn(move || run_child(role, &envs).0)
        })
        .collect();
    let results: Vec<String> = children.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!(
        "{} acquisitions, {} lock files removed under them, {} overlaps ({results:?})",
        c.get(ACQUIRED),
        c.get(LOCK_FILES_REMOVED),
        c.get(OVERLAPS)
    );
    assert_eq!(c.get(ACQUIRED), LOCKERS * LOCKER_ROUNDS, "{results:?}");
    assert!(
        c.get(LOCK_FILES_REMOVED) > 0,
        "the lock file was never removed: the race was not exercised"
    );
    assert_eq!(c.get(OVERLAPS), 0, "two processes held the lock at once");
    assert_eq!(c.get(HOLDERS), 0);
    assert!(dir.join("notes.txt").exists());
}
