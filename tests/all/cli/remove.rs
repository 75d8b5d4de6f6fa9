//! `rm` and `clear`: caches in use are skipped, and nothing but a cache directory is
//! removed.

use super::*;

#[test]
fn rm_removes_one_cache_and_skips_one_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    populated(tmp.path());
    let dir = tmp.path();
    let o = run(dir, &["rm", "sub/c.cache"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("removed {}\n", dir.join("sub/c.cache").display())
    );
    assert!(!dir.join("sub/c.cache").exists());
    // The legacy cache goes with its token side file.
    assert_eq!(run(dir, &["rm", "old.cache"]).status.code(), Some(0));
    assert!(!dir.join("old.cache.token").exists());
    let o = run(dir, &["rm", "sub/c.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no cache"));
    // Another process (this test) holds the lock: the cache is not deleted under it.
    let lock = CacheLock::exclusive(&dir.join("a.cache")).unwrap();
    let o = run(dir, &["rm", "a.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("in use by another process"),
        "{}",
        stderr(&o)
    );
    assert!(dir.join("a.cache").exists());
    drop(lock);
    assert_eq!(run(dir, &["rm", "a.cache"]).status.code(), Some(0));
    assert!(!dir.join("a.cache").exists());
    assert_eq!(run(dir, &["rm", "../x"]).status.code(), Some(1));
}

#[test]
fn clear_removes_the_directory_but_keeps_caches_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hc");
    populated(&dir);
    // A first population in progress: a held lock and a temp file, no cache file yet.
    let busy = CacheLock::exclusive(&dir.join("fresh.cache")).unwrap();
    std::fs::write(dir.join(".fresh.cache.Zz9Yx8.tmp"), b"in progress").unwrap();
    let o = run(&dir, &["clear"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("fresh.cache is in use"),
        "{}",
        stderr(&o)
    );
    assert!(dir.join(".fresh.cache.Zz9Yx8.tmp").exists());
    assert!(dir.join(".fresh.cache.lock").exists());
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "everything else removed: {left:?}");
    drop(busy);

    // Another test thread spawning a process at the moment the lock was held gives
    // that child a copy of the lock's descriptor until its exec: the lock outlives
    // `drop` by that long. A bounded retry on "in use" only, never on anything else.
    let mut o = run(&dir, &["clear"]);
    for _ in 0..100 {
        if o.status.code() != Some(1) || !stderr(&o).contains("is in use") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        o = run(&dir, &["clear"]);
    }
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("removed {}\n", dir.display()));
    assert!(!dir.exists());
    let o = run(&dir, &["clear"]);
    assert_eq!(o.status.code(), Some(0), "a missing directory is fine");
}

#[test]
fn clear_refuses_to_remove_more_than_a_cache_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("users/me");
    std::fs::create_dir_all(home.join("keep")).unwrap();
    let inner = tmp.path().join("work/inner");
    std::fs::create_dir_all(&inner).unwrap();
    let home_s = home.to_str().unwrap().to_string();
    for (cwd, value) in [
        (&inner, "/".to_string()),
        (&inner, "/tmp".to_string()),
        (&inner, "/usr/".to_string()),
        (&inner, home_s.clone()),
        (&inner, format!("{home_s}/keep/..")),
        (&inner, ".".to_string()),
        (&inner, "..".to_string()),
    ] {
        let o = Command::new(BIN)
            .arg("clear")
            .current_dir(cwd)
            .env("HOME", &home)
            .env("HARMONICS_CACHE_DIR", &value)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{value:?} not refused");
        assert!(stderr(&o).contains("refusing to remove"), "{}", stderr(&o));
    }
    assert!(home.join("keep").exists() && inner.exists());
}
