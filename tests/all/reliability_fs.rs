//! Disk full, read-only directories, permission denied — with real limits in child
//! processes (the suite runs as root, so chmod alone would not bite):
//! - disk full: RLIMIT_FSIZE with SIGXFSZ ignored makes writes past the limit fail
//!   with EFBIG, exactly as a full disk fails them mid-file;
//! - permissions: the child drops to uid/gid 65534 (nobody) before touching a
//!   root-owned cache directory.
//!
//! Every failure must be a clear `Error::Io` naming the path, the existing cache must
//! stay intact and servable, and no temp file may be left behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support;
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Error, Tensor};
use support::reliability::*;

/// The child test, as `--exact` names it in this binary.
fn child_test() -> String {
    support::test_name(module_path!(), "child_fs")
}
const GEN: u32 = 5;

/// Child: applies the limit or drops privileges, opens the cache at $CACHE with a
/// source of $N records and token $TOKEN, and prints one `RESULT` line.
#[test]
fn child_fs() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    unsafe {
        match role.as_str() {
            "fsize" => {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = env_num("LIMIT") as libc::rlim_t;
                let r = libc::rlimit {
                    rlim_cur: lim,
                    rlim_max: lim,
                };
                assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &r), 0);
            }
            "nobody" => {
                assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
                assert_eq!(libc::setgid(65534), 0);
                assert_eq!(libc::setuid(65534), 0);
                assert_eq!(libc::geteuid(), 65534);
            }
            other => panic!("unknown role {other}"),
        }
    }
    let base = Slow::new(env_num("N"), GEN);
    let tok = std::env::var("TOKEN").unwrap_or_default();
    let line = match DiskCacheProducer::open_at(Box::new(base), env_path("CACHE"), token(&tok)) {
        Ok(mut p) => {
            let good = (0..p.len()).all(|i| p.next().unwrap() == record(i, GEN));
            format!("ok {:?} {} {good}", p.outcome(), p.len())
        }
        Err(e @ Error::Io { .. }) => format!("io {e}"),
        Err(e) => format!("other {e}"),
    };
    println!("RESULT: {line}");
}

fn run_child(role: &str, cache: &Path, n: usize, tok: &str, limit: u64) -> String {
    let envs = [
        ("CACHE", cache.display().to_string()),
        ("N", n.to_string()),
        ("TOKEN", tok.to_string()),
        ("LIMIT", limit.to_string()),
    ];
    child_result(&child_test(), role, &envs).0
}

/// The cache at `path`, read with no source: (token, records).
fn contents(path: &Path) -> (String, Vec<Tensor>) {
    read_cache(path)
        .expect("cache exists")
        .expect("cache readable")
}

fn make_cache(path: &Path, n: usize, tok: &str) -> u64 {
    DiskCacheProducer::open_at(Box::new(Slow::new(n, GEN)), path.to_path_buf(), token(tok))
        .unwrap();
    file_len(path)
}

/// The "nobody" child over `path` (its source of `n` records) fails with "Permission
/// denied", naming `named`.
fn assert_permission_denied_naming(path: &Path, n: usize, named: &Path) {
    let r = run_child("nobody", path, n, "", 0);
    assert!(
        r.starts_with("io ") && r.contains("Permission denied"),
        "{r}"
    );
    assert!(r.contains(&named.display().to_string()), "{r}");
}

#[test]
fn disk_full_fails_clearly_and_leaves_the_existing_cache_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cases = 0;

    // First population that does not fit: clear error, no cache, no temp file.
    let cache = d.join("first.cache");
    let r = run_child("fsize", &cache, 400, "", 2048);
    assert!(r.starts_with("io "), "{r}");
    assert!(
        r.contains("File too large") && r.contains(&d.display().to_string()),
        "{r}"
    );
    assert!(!cache.exists());
    assert!(temps_in(d).is_empty(), "{:?}", temps_in(d));
    cases += 1;

    // Append that does not fit: the committed records stay, and are served.
    let cache = d.join("grow.cache");
    let size = make_cache(&cache, 20, "");
    let r = run_child("fsize", &cache, 400, "", size + 300);
    assert!(r.starts_with("io ") && r.contains("File too large"), "{r}");
    assert!(r.contains(&cache.display().to_string()), "{r}");
    assert_eq!(contents(&cache), (String::new(), dataset(20, GEN)));
    let p = DiskCacheProducer::open_at(Box::new(Slow::new(20, GEN)), cache.clone(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    drop(p);
    // With room again, the append completes (the torn tail is cut first).
    let p = DiskCacheProducer::open_at(Box::new(Slow::new(400, GEN)), cache.clone(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Appended { from: 20, to: 400 });
    assert_eq!(contents(&cache).1, dataset(400, GEN));
    cases += 1;

    // Token rebuild that does not fit: the old cache is kept whole, no temp file.
    let cache = d.join("tok.cache");
    make_cache(&cache, 30, "t1");
    let r = run_child("fsize", &cache, 400, "t2", 4096);
    assert!(r.starts_with("io ") && r.contains("File too large"), "{r}");
    assert_eq!(contents(&cache), ("t1".to_string(), dataset(30, GEN)));
    assert!(temps_in(d).is_empty(), "{:?}", temps_in(d));
    cases += 1;
    println!("disk full (EFBIG via RLIMIT_FSIZE): {cases} cases, each a clear I/O error naming the path, old cache intact");
}

#[test]
fn read_only_directory_and_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("ro");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let complete = d.join("complete.cache");
    make_cache(&complete, 12, "");
    let growing = d.join("growing.cache");
    make_cache(&growing, 12, "");
    let nolock = d.join("nolock.cache");
    make_cache(&nolock, 12, "");
    std::fs::remove_file(d.join(".nolock.cache.lock")).unwrap();
    let secret = d.join("secret.cache");
    make_cache(&secret, 12, "");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The directory is root's and not writable by the child.
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let mut cases = 0;

    // A complete cache in a read-only place is served as it is.
    let r = run_child("nobody", &complete, 12, "", 0);
    assert_eq!(r, "ok Reused 12 true");
    cases += 1;

    // Also when there is no lock file and none can be created.
    let r = run_child("nobody", &nolock, 12, "", 0);
    assert_eq!(r, "ok Reused 12 true");
    cases += 1;

    // No cache and no right to create one: a clear error naming the directory.
    assert_permission_denied_naming(&d.join("new.cache"), 12, &d);
    cases += 1;

    // The source grew but the file is not writable: clear error, cache intact.
    assert_permission_denied_naming(&growing, 15, &growing);
    assert_eq!(contents(&growing).1, dataset(12, GEN));
    cases += 1;

    // A cache file the user may not read: clear error naming it.
    assert_permission_denied_naming(&secret, 12, &secret);
    assert_eq!(contents(&secret).1, dataset(12, GEN));
    cases += 1;

    let after: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "files appeared or vanished");
    println!("permissions (uid 65534): {cases} cases as expected, nothing created or removed");
}
