//! Random access over cache files (issue 14): `view_at(i)` equals the i-th sequential
//! record, is CRC-checked on every access, refuses an index past the end, and stays
//! right after appends, after a crash mid-append, over version-1 files (read as they
//! are and upgraded) and over legacy headerless files.

use std::path::PathBuf;
use std::time::Duration;

use crate::support;
use harmonics_dataset::cache::{upgrade, CacheAppender, CacheLock, CacheReader, Header, Metadata};
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Error, Producer, Tensor, VecProducer};
use support::cache_files::*;
use support::http_server::wire_body;
use support::reliability::*;

mod appends;
mod formats;
mod layout;
mod view_at;

/// A scratch directory holding `name`, a current-format cache of `records`, and the
/// cache's path.
fn scratch_cache(name: &str, records: &[Tensor]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    write_cache(&path, Metadata::new("", "test"), records);
    (dir, path)
}

/// A fixed shuffled order of 0..n (an LCG-driven Fisher-Yates).
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, ((s >> 33) % (i as u64 + 1)) as usize);
    }
    v
}

fn assert_random_access(r: &mut CacheReader, want: &[Tensor], what: &str) {
    assert_eq!(r.len(), want.len() as u64, "{what}");
    for i in shuffled(want.len() as u64, 7) {
        let got = r
            .view_at(i)
            .unwrap_or_else(|e| panic!("{what}: view_at({i}): {e}"));
        assert!(
            got.to_owned() == want[i as usize],
            "{what}: view_at({i}) differs"
        );
    }
}

/// The file offset of record `i`'s frame, read from the on-disk index (through the
/// documented layout: the commit's index_at, the index frame, entry i's low 48 bits).
fn frame_offset(file: &[u8], i: u64) -> usize {
    let h = Header::decode(file).unwrap();
    let at = h.commit.index_at as usize;
    assert!(at > 0, "the file has an index");
    let pad = (file[at + 8] & 0x7f) as usize;
    let e = at + 9 + pad + 8 * i as usize;
    (u64::from_le_bytes(file[e..e + 8].try_into().unwrap()) & ((1 << 48) - 1)) as usize
}
