//! `prune` evicts the least recently used caches first; opening a cache marks it used.

use super::*;

fn set_times(path: &Path, atime: SystemTime, mtime: SystemTime) {
    let ts = |t: SystemTime| {
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        }
    };
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let times = [ts(atime), ts(mtime)];
    // SAFETY: a valid C path and a two-element timespec array.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

fn times(path: &Path) -> (SystemTime, SystemTime) {
    let m = std::fs::metadata(path).unwrap();
    (m.accessed().unwrap(), m.modified().unwrap())
}

#[test]
fn prune_evicts_least_recently_used_first_until_under_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ago = |s: u64| SystemTime::now() - Duration::from_secs(s);
    for name in ["a.cache", "b.cache", "c.cache", "d.cache"] {
        write_cache(&dir.join(name), 20);
    }
    let size = std::fs::metadata(dir.join("a.cache")).unwrap().len();
    // a: written long ago but read recently (atime); b oldest; then c; d newest.
    set_times(&dir.join("a.cache"), ago(100), ago(50_000));
    set_times(&dir.join("b.cache"), ago(40_000), ago(40_000));
    set_times(&dir.join("c.cache"), ago(30_000), ago(30_000));
    set_times(&dir.join("d.cache"), ago(20_000), ago(20_000));
    let before = times(&dir.join("b.cache"));
    // Looking at caches does not count as using them.
    for args in [
        &["list", "--long"][..],
        &["list", "--json"],
        &["verify"],
        &["info", "b.cache"],
    ] {
        assert_eq!(run(dir, args).status.code(), Some(0), "{args:?}");
    }
    assert_eq!(
        times(&dir.join("b.cache")),
        before,
        "inspection changed atime"
    );

    let limit = (2 * size + size / 2).to_string();
    let out = run_ok(dir, &["prune", "--max-size", &limit]);
    let removed: Vec<&str> = out.lines().filter(|l| l.starts_with("removed ")).collect();
    assert_eq!(removed.len(), 2, "{out}");
    assert!(
        removed[0].contains("b.cache") && removed[1].contains("c.cache"),
        "{out}"
    );
    for (name, kept) in [
        ("a.cache", true),
        ("b.cache", false),
        ("c.cache", false),
        ("d.cache", true),
    ] {
        assert_eq!(dir.join(name).exists(), kept, "{name}");
    }
    // Already under the limit: nothing to do.
    let o = run(dir, &["prune", "--max-size", "1G"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("nothing removed"));
    // A cache in use is skipped; the limit cannot be met, exit 1.
    let lock = CacheLock::exclusive(&dir.join("d.cache")).unwrap();
    let o = run(dir, &["prune", "--max-size", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    assert!(dir.join("d.cache").exists() && !dir.join("a.cache").exists());
    drop(lock);
    for bad in ["", "12X", "-5", "lots"] {
        let o = run(dir, &["prune", "--max-size", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        no_backtrace(&o);
    }
}

#[test]
fn opening_a_cache_marks_it_used_without_touching_its_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.cache");
    write_cache(&path, 3);
    let old = SystemTime::now() - Duration::from_secs(100_000);
    set_times(&path, old, old);
    let opened_at = SystemTime::now() - Duration::from_secs(2);
    let r = CacheReader::open(&path).unwrap();
    assert_eq!(r.len(), 3);
    let (atime, mtime) = times(&path);
    assert!(atime >= opened_at, "atime not updated");
    assert_eq!(mtime, old, "mtime changed");
    // Inspection leaves it alone.
    set_times(&path, old, old);
    CacheReader::inspect(&path).unwrap();
    assert_eq!(times(&path), (old, old));
}
