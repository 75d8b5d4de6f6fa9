//! Sentinels: the files outside the cache directory (a plain file, a valid cache, a
//! directory, a name that must stay absent, the other versions' files), snapshot
//! before an episode and compared after it: kind, inode, length, mtime and content.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the files outside the cache directory were before the episode.
pub struct Snapshot(Vec<(PathBuf, Option<Entry>)>);

#[derive(PartialEq, Debug)]
struct Entry {
    kind: &'static str,
    ino: u64,
    len: u64,
    mtime_ns: i64,
    content: Vec<u8>,
}

impl Snapshot {
    pub fn take(dirs: &[&Path]) -> Snapshot {
        let mut all = Vec::new();
        for d in dirs {
            walk(d, &mut all);
        }
        // A name that must stay absent (the target of a dangling link).
        if let Some(outside) = dirs.iter().find(|d| d.ends_with("outside")) {
            all.push(outside.join("absent"));
        }
        Snapshot(
            all.into_iter()
                .map(|p| {
                    let e = entry(&p);
                    (p, e)
                })
                .collect(),
        )
    }

    /// What differs now: one line per path.
    pub fn compare(&self) -> Vec<String> {
        let mut diffs = Vec::new();
        for (path, before) in &self.0 {
            let now = entry(path);
            if &now != before {
                diffs.push(format!(
                    "{}: {} -> {}",
                    path.display(),
                    describe(before),
                    describe(&now)
                ));
            }
        }
        let mut names = Vec::new();
        for (path, _) in &self.0 {
            if let Some(parent) = path.parent() {
                if !names.contains(&parent.to_path_buf()) {
                    names.push(parent.to_path_buf());
                }
            }
        }
        for dir in names {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if !self.0.iter().any(|(p, _)| *p == e.path()) {
                    diffs.push(format!("{} appeared", e.path().display()));
                }
            }
        }
        diffs
    }
}

fn walk(dir: &Path, all: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        all.push(p.clone());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, all);
        }
    }
}

fn entry(path: &Path) -> Option<Entry> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let t = m.file_type();
    let kind = if t.is_file() {
        "file"
    } else if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "link"
    } else {
        "other"
    };
    let mut content = Vec::new();
    if t.is_file() {
        let _ = File::open(path).and_then(|mut f| f.read_to_end(&mut content));
    }
    Some(Entry {
        kind,
        ino: m.ino(),
        len: if t.is_dir() { 0 } else { m.len() },
        mtime_ns: if t.is_dir() {
            0
        } else {
            m.mtime() * 1_000_000_000 + m.mtime_nsec()
        },
        content,
    })
}

fn describe(e: &Option<Entry>) -> String {
    match e {
        None => "absent".into(),
        Some(e) => format!(
            "{} ino {} len {} mtime {}",
            e.kind, e.ino, e.len, e.mtime_ns
        ),
    }
}
