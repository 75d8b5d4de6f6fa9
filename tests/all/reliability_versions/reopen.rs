//! Defect 2: opening, `refresh()` and the rebuild validated the file at the path and
//! then opened the path again to serve it. Whatever replaced it in between was served
//! unchecked: here the replacement is made from inside the source's `fingerprint()` or
//! `size()`, the instant between the check and the old second open.

use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Error, Producer};

use super::*;

/// `p` serves exactly records 0..n of version `v`, and says it has n.
#[track_caller]
fn assert_serves(p: &mut DiskCacheProducer, v: u32, n: usize, what: &str) {
    assert_eq!(Producer::size(p).unwrap(), n, "{what}: size()");
    for i in 0..n {
        let t = Producer::view_at(p, i as u64)
            .unwrap_or_else(|e| panic!("{what}: view_at({i}): {e}"))
            .to_owned();
        assert_record(&t, v, i, &format!("{what}: view_at"));
    }
    match Producer::view_at(p, n as u64) {
        Err(Error::IndexOutOfRange { len, .. }) => assert_eq!(len, n as u64, "{what}"),
        other => panic!(
            "{what}: view_at({n}) past the end: {:?}",
            other.map(|t| t.to_owned())
        ),
    }
    // Every caller's cursor is at record 0 here (a fresh open or refresh, or a cycle
    // read to its end).
    for i in 0..n {
        let t = p
            .next()
            .unwrap_or_else(|e| panic!("{what}: next() {i}: {e}"));
        assert_record(&t, v, i, &format!("{what}: next"));
    }
}

/// `mv from to` or `cp from to`.
#[derive(Clone, Copy, Debug)]
enum Replace {
    Rename,
    Copy,
}

impl Replace {
    fn step(self, from: &Path, to: &Path) -> impl FnOnce() + Send + 'static {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        move || match self {
            Replace::Rename => std::fs::rename(&from, &to).unwrap(),
            Replace::Copy => cp(&from, &to),
        }
    }
}

#[test]
fn another_version_put_at_the_path_during_fingerprint_is_never_served() {
    for how in [Replace::Rename, Replace::Copy] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.cache");
        cache_of(Versioned::new(6, 120).fingerprint("v6"), &path);
        let v7 = dir.path().join("v7.cache");
        cache_of(Versioned::new(7, 120).fingerprint("v7"), &v7);
        let source = Versioned::new(6, 120).fingerprint("v6");
        source.hooks().during_fingerprint(how.step(&v7, &path));
        let mut p = DiskCacheProducer::open_at(Box::new(source), path.clone(), None).unwrap();
        let what = format!("{how:?} during fingerprint() at open");
        assert_serves(&mut p, 6, 120, &what);
        // The path holds version 7 now (or a rebuild of 6): never served as 6.
        p.refresh().unwrap();
        assert_serves(&mut p, 6, 120, &format!("{what}, then refresh()"));
    }
}

#[test]
fn a_cache_cut_to_nothing_during_size_is_neither_served_nor_counted_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.cache");
    // No fingerprint: the size rule asks `size()`.
    cache_of(Versioned::new(6, 120), &path);
    let source = Versioned::new(6, 120);
    let cut = path.clone();
    source.hooks().during_size(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&cut)
            .unwrap()
            .set_len(0)
            .unwrap()
    });
    let mut p = DiskCacheProducer::open_at(Box::new(source), path.clone(), None).unwrap();
    assert_serves(&mut p, 6, 120, "cut during size()");
}

#[test]
fn records_past_the_sources_end_are_not_served_after_a_rename_during_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.cache");
    cache_of(Versioned::new(6, 60), &path);
    let longer = dir.path().join("longer.cache");
    cache_of(Versioned::new(6, 120), &longer);
    let source = Versioned::new(6, 60);
    source
        .hooks()
        .during_size(Replace::Rename.step(&longer, &path));
    let mut p = DiskCacheProducer::open_at(Box::new(source), path.clone(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_serves(&mut p, 6, 60, "a longer file renamed over during size()");
}

#[test]
fn an_append_never_continues_another_file_put_at_the_path_during_size() {
    for how in [Replace::Rename, Replace::Copy] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.cache");
        cache_of(Versioned::new(6, 60), &path);
        // Version 7 of the same source description and length: the size rule cannot
        // tell them apart, so the append must make sure it extends the file it checked.
        let v7 = dir.path().join("v7.cache");
        cache_of(Versioned::new(7, 60), &v7);
        let source = Versioned::new(6, 90);
        source.hooks().during_size(how.step(&v7, &path));
        let mut p = DiskCacheProducer::open_at(Box::new(source), path.clone(), None).unwrap();
        assert_serves(
            &mut p,
            6,
            90,
            &format!("{how:?} during size() before an append"),
        );
    }
}

#[test]
fn between_and_during_refresh_calls_the_file_served_is_the_file_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.cache");
    cache_of(Versioned::new(6, 120).fingerprint("v6"), &path);
    let v7 = |name: &str| {
        let f = dir.path().join(name);
        cache_of(Versioned::new(7, 120).fingerprint("v7"), &f);
        f
    };
    let source = Versioned::new(6, 120).fingerprint("v6");
    let hooks = source.hooks();
    let mut p = DiskCacheProducer::open_at(Box::new(source), path.clone(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_serves(&mut p, 6, 120, "open");

    // Between calls: a rename leaves the open file alone; refresh() rebuilds.
    std::fs::rename(v7("a.cache"), &path).unwrap();
    for i in 0..120 {
        assert_record(&p.next().unwrap(), 6, i, "after a rename, before refresh()");
    }
    assert!(matches!(p.refresh().unwrap(), CacheOutcome::Rebuilt(_)));
    assert_serves(&mut p, 6, 120, "refresh() after a rename");

    // Between calls: a copy in place is noticed by the next read.
    cp(&v7("b.cache"), &path);
    assert_serves(&mut p, 6, 120, "a copy in place between calls");

    // During refresh(): the source's fingerprint moves version 7 in, after the check
    // found the file at the path to be version 6.
    for (how, name) in [(Replace::Rename, "c.cache"), (Replace::Copy, "d.cache")] {
        p.refresh().unwrap();
        assert_serves(&mut p, 6, 120, "refresh()");
        hooks.during_fingerprint(how.step(&v7(name), &path));
        assert_eq!(p.refresh().unwrap(), &CacheOutcome::Reused);
        assert_serves(
            &mut p,
            6,
            120,
            &format!("{how:?} during refresh()'s fingerprint()"),
        );
    }
}
