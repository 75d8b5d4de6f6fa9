//! The file part of `cache_cli publish`: a cache rewritten as a compact version-2
//! file with its offset index at the head (right after the header), so that a
//! remote reader gets the header and the index with one or two ranged GETs.
//!
//! Every record is CRC-checked on the way (a damaged source is never published),
//! and the file appears at its name only complete: it is written under a temporary
//! name in the same directory, fsynced, renamed, and the directory fsynced
//! ([`CacheWriter::finish`]). The S3 upload is in `crate::http::publish`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{CacheLock, CacheReader, CacheWriter};
use crate::error::{Error, Result};

/// What [`write_compact`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactFile {
    /// Where the file is (its final name).
    pub path: PathBuf,
    /// Records in it.
    pub records: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// The lowercase hex SHA-256 of the whole file.
    pub sha256: String,
}

/// Writes the committed records of the cache at `source` (any format: legacy,
/// version 1 or 2) to `dest` as a compact version-2 cache with the index at its
/// head, keeping the metadata, and publishes it by rename, holding `dest`'s lock
/// (whose file is removed afterwards). `dest`'s directory is created if missing. Errors name the source, the destination and the record.
pub fn write_compact(source: &Path, dest: &Path) -> Result<CompactFile> {
    let mut r = CacheReader::open(source)?;
    if dest == source {
        return Err(Error::InvalidArgument(format!(
            "cannot publish {} onto itself",
            source.display()
        )));
    }
    let records = r.len();
    let lock = CacheLock::exclusive(dest)?;
    let written = (|| {
        let mut w = CacheWriter::create_indexed(dest, r.metadata().clone(), records, &lock)?;
        r.rewind();
        // Each record copied, its CRC checked on the copy: a damaged source fails here,
        // naming it, and a byte changed in place during the copy is never published
        // under a fresh, valid CRC.
        let mut t = crate::tensor::Tensor::new(crate::tensor::DType::UInt8, Vec::new(), Vec::new());
        for _ in 0..records {
            r.next_into(&mut t)?;
            w.push(t.as_ref())?;
        }
        w.finish()
    })();
    // Nothing but the file in the directory others fetch from, whatever happened.
    lock.remove_lock_file();
    let path = written?;
    let (bytes, sha256) = sha256_file(&path)?;
    Ok(CompactFile {
        path,
        records,
        bytes,
        sha256,
    })
}

/// The size and lowercase hex SHA-256 of the file at `path`.
pub fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::io("cannot read the file", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read the file", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex(&h.finalize())))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits() {
        assert_eq!(hex(&[0, 0x0f, 0xab]), "000fab");
    }

    #[test]
    fn sha256_of_a_known_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let (n, h) = sha256_file(&p).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
