//! Cache files for tests, written through the library's writer or byte by byte in the
//! version-1 format a previous release left on disk, and read back in order. (The
//! legacy headerless format is `http_server::wire_body`.)

use std::path::Path;

use harmonics_dataset::cache::{
    CacheLock, CacheReader, CacheWriter, Commit, Header, Metadata, VERSION_1,
};
use harmonics_dataset::Tensor;

/// A current-format cache of `records` at `path` (its parent created), written with
/// `CacheWriter::create`: the offset index goes after the records.
pub fn write_cache(path: &Path, meta: Metadata, records: &[Tensor]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let lock = CacheLock::exclusive(path).unwrap();
    let mut w = CacheWriter::create(path, meta, &lock).unwrap();
    for t in records {
        w.push(t.as_ref()).unwrap();
    }
    w.finish().unwrap();
    // A fixture: nothing but the cache in the directory.
    lock.remove_lock_file();
}

/// The bytes of a version-1 file as the previous release wrote it: 32-byte slots,
/// metadata at 88, frames padded so that each record's data is 8-aligned, no index.
pub fn version_1_file(meta: &Metadata, records: &[Tensor]) -> Vec<u8> {
    let start = Header::encode_version(meta, Commit::default(), VERSION_1).len();
    let mut body = Vec::new();
    for t in records {
        let wire = t.to_wire().unwrap();
        let hl = wire.len() - t.data.len();
        let pad = (8 - (start + body.len() + 9 + hl) % 8) % 8;
        body.extend_from_slice(&(wire.len() as u32).to_le_bytes());
        body.extend_from_slice(&crc32fast::hash(&wire).to_le_bytes());
        body.push(pad as u8);
        body.extend(std::iter::repeat(0u8).take(pad));
        body.extend_from_slice(&wire);
    }
    let commit = Commit {
        seq: 1,
        records: records.len() as u64,
        data_len: body.len() as u64,
        index_at: 0,
    };
    let mut file = Header::encode_version(meta, commit, VERSION_1);
    file.extend_from_slice(&body);
    file
}

/// Every record of `r`, in order, from the start.
pub fn read_all(r: &mut CacheReader) -> Vec<Tensor> {
    r.rewind();
    (0..r.len())
        .map(|_| r.next_view().unwrap().to_owned())
        .collect()
}
