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
