//! Serving with recovery, the one copy: a read through a `CacheReader` that finds damage
//! a rebuild can repair calls the owner's rebuild step, returns the new reader to where
//! the old one was, and reads again (once). Also `CacheReader::skip`, the one skip.

use super::reader::{CacheReader, RecordLoc};
use crate::error::{Error, Result};

/// Runs `read` on the reader `reader(owner)` gives. When it fails with damage
/// (`Error::is_corruption`), `rebuild(owner, damage)` replaces the owner's reader (or
/// fails, naming the damage); the new reader is moved to the old cursor position and
/// `read` runs again. Any other error, or a second failure, is returned as is.
pub(crate) fn read_with_recovery<S, T>(
    owner: &mut S,
    reader: impl Fn(&mut S) -> &mut CacheReader,
    mut read: impl FnMut(&mut CacheReader) -> Result<T>,
    rebuild: impl FnOnce(&mut S, Error) -> Result<()>,
) -> Result<T> {
    let r = reader(owner);
    let position = r.position() % r.len().max(1);
    match read(r) {
        Err(damage) if damage.is_corruption() => {
            rebuild(owner, damage)?;
            let r = reader(owner);
            r.seek(position)?;
            read(r)
        }
        other => other,
    }
}

/// `read_with_recovery` of record `index` (`CacheReader::check_at`: O(1), CRC-checked,
/// the cursor unmoved): the random access of every producer that serves a cache.
pub(crate) fn check_at_with_recovery<S>(
    owner: &mut S,
    reader: impl Fn(&mut S) -> &mut CacheReader,
    index: u64,
    rebuild: impl FnOnce(&mut S, Error) -> Result<()>,
) -> Result<RecordLoc> {
    read_with_recovery(owner, reader, |r| r.check_at(index), rebuild)
}

impl CacheReader {
    /// Moves the cursor past `n` records, cycling after the last (as `n` calls of
    /// `advance` would, without reading them): O(1) through the offset index.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        let len = self.len();
        if len == 0 {
            return Ok(());
        }
        let to = (self.position() % len + n as u64 % len) % len;
        self.seek(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheLock, CacheWriter, Metadata};
    use crate::tensor::Tensor;

    fn cache(dir: &std::path::Path, name: &str, n: usize) -> std::path::PathBuf {
        let path = dir.join(name);
        let lock = CacheLock::exclusive(&path).unwrap();
        let mut w = CacheWriter::create(&path, Metadata::new("", "test"), &lock).unwrap();
        for i in 0..n {
            w.push(Tensor::from_f32(&[i as f32]).as_ref()).unwrap();
        }
        w.finish().unwrap();
        path
    }

    fn value(r: &mut CacheReader) -> f32 {
        let loc = r.advance().unwrap();
        let v = r.view(loc);
        f32::from_le_bytes(v.data.try_into().unwrap())
    }

    #[test]
    fn skip_cycles_and_matches_advancing() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = CacheReader::open(cache(dir.path(), "s.cache", 5)).unwrap();
        r.skip(3).unwrap();
        assert_eq!(value(&mut r), 3.0);
        r.skip(2).unwrap(); // 4 + 2 = 6 -> record 1
        assert_eq!(value(&mut r), 1.0);
        r.skip(usize::MAX).unwrap();
        assert_eq!(r.position(), (2 + usize::MAX as u64 % 5) % 5);
    }

    #[test]
    fn damage_calls_the_rebuild_step_then_reads_again_at_the_same_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache(dir.path(), "d.cache", 3);
        let mut bytes = std::fs::read(&path).unwrap();
        // Damage the data of record 1 (its f32 1.0 is unique in the file).
        let at = bytes
            .windows(4)
            .position(|w| w == 1.0f32.to_le_bytes())
            .unwrap();
        bytes[at] ^= 1;
        let damaged = dir.path().join("damaged.cache");
        std::fs::write(&damaged, &bytes).unwrap();
        struct Owner {
            reader: CacheReader,
            good: std::path::PathBuf,
            rebuilds: u32,
        }
        let mut o = Owner {
            reader: CacheReader::open(&damaged).unwrap(),
            good: path,
            rebuilds: 0,
        };
        assert_eq!(value(&mut o.reader), 0.0);
        let loc = read_with_recovery(
            &mut o,
            |o| &mut o.reader,
            |r| r.advance(),
            |o, damage| {
                assert!(damage.is_corruption(), "{damage}");
                o.rebuilds += 1;
                o.reader = CacheReader::open(&o.good)?;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(o.rebuilds, 1);
        let v = o.reader.view(loc);
        assert_eq!(f32::from_le_bytes(v.data.try_into().unwrap()), 1.0);

        // A failed rebuild is returned as the rebuild step made it.
        let mut o = Owner {
            reader: CacheReader::open(&damaged).unwrap(),
            good: dir.path().join("missing"),
            rebuilds: 0,
        };
        o.reader.skip(1).unwrap();
        let e = read_with_recovery(
            &mut o,
            |o| &mut o.reader,
            |r| r.advance(),
            |_, damage| {
                Err(Error::RebuildFailed {
                    damage: Box::new(damage),
                    cause: Box::new(Error::Foreign("source gone".into())),
                })
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::RebuildFailed { .. }), "{e}");
    }
}
