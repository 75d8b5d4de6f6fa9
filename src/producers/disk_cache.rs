//! `DiskCacheProducer`: wraps any producer and persists its records in a cache file,
//! so later runs read the file instead of the source.
//!
//! On open, under the cache's exclusive lock (so concurrent processes populate once):
//! - no cache, a damaged one, or a different token: the cache is (re)built from the
//!   source into a temp file and renamed into place;
//! - the header's source identity (`crate::identity`) decides next, through
//!   `Producer::match_identity`, without reading records:
//!   - the same source, unchanged: the cache is used and the source is not asked
//!     anything (no parse, no `size()`, no `next()`, no request);
//!   - another source (file, URL, kind) or a changed one (an edited CSV, another
//!     fingerprint): rebuilt, with a warning naming both identities;
//!   - a CSV that only grew: the cache is rewritten (temp file + rename; cached records
//!     copied) with the new rows, parsed from the old end only, and the new stamp;
//! - a source that cannot tell (no fingerprint) keeps the size rule: the same count is
//!   reused, N -> N+k appends exactly records N..N+k-1 (`skip(N)`, then k reads), a
//!   smaller count rebuilds;
//! - a cache without identity (written before identities, or by a producer without
//!   one): rebuilt if its recorded `source` description names another source
//!   (`identity::description_differs`: another kind, or another CSV path or URL);
//!   otherwise the size rule applies once and, if the source has a decisive identity
//!   now (a CSV stamp, a fingerprint, validators), the cache is rewritten to record it
//!   (records copied). Headerless legacy files are upgraded, as before.
//!
//! The file checked is the file served: the path is opened once, and what is served is
//! that reader, or the file just written (its writer's descriptor), or the file just
//! appended to (checked to be the one validated). A file renamed, copied or cut at the
//! path while the source is asked (`fingerprint()`, `size()`) is not served unchecked;
//! `size()` is the served file's.
//!
//! While reading, a record whose CRC or framing is damaged is never served: the cache
//! is rebuilt from the source (with a warning on stderr) and reading continues at the
//! same record; if the source cannot be read, the error names the file and the cause.
//! The copying reads (`next`, `at`) check the CRC on the copy they return, and a file
//! rewritten in place is detected (see `cache::reader`): both are repaired the same way.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::cache::{
    check_at_with_recovery, read_with_recovery, resolve_cache_path, CacheAppender, CacheLock,
    CacheReader, CacheWriter, Format, Metadata,
};
use crate::error::{Error, Result};
use crate::identity::{description_differs, IdentityMatch, SourceIdentity, SourceKind};
use crate::log::warn;
use crate::producers::{Producer, RecordSink};
use crate::tensor::{Tensor, TensorRef};

/// A token callback: its value is stored with the cache; a different value later
/// discards the cache. An empty string means "no token".
pub type TokenFn = Box<dyn FnMut() -> Result<String> + Send>;

/// What opening (or refreshing) a cache did: the outcome of every producer that keeps
/// one (`DiskCacheProducer::outcome`, `HttpProducer::outcome`,
/// `AsyncHttpProducer::outcome`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheOutcome {
    /// The cache was complete; the source was not read (an HTTP producer made no
    /// request, or revalidation could not reach the server and kept the cache, with a
    /// warning).
    Reused,
    /// There was no cache; it was populated from the source (an HTTP producer without
    /// a cache file: the body was downloaded).
    Created,
    /// The source had grown: records `from..to` were appended (`DiskCacheProducer`).
    Appended { from: u64, to: u64 },
    /// The cache was discarded and rebuilt, for the reason given: a changed token,
    /// damage, another or a changed source, a shrunk one; an HTTP producer's cache file
    /// made from another URL or by another producer, damaged, or a newer version found
    /// on revalidation.
    Rebuilt(String),
    /// Revalidation (`HttpOptions::revalidate`) was answered 304 Not Modified: the cache
    /// was kept (HTTP producers).
    Revalidated,
}

/// Caches the records of any [`Producer`] in a cache file: the first open populates it,
/// later opens read it without touching the source when the source is unchanged, append
/// only the new records when it grew, and rebuild it (with a warning) when it is another
/// or a changed source, the token changed, or the file is damaged ([`CacheOutcome`]).
/// Random access (`view_at`) is O(1).
///
/// ```
/// use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Producer, Tensor, VecProducer};
///
/// # fn main() -> harmonics_dataset::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let name = dir.path().join("squares.cache");
/// let squares = || VecProducer::new((0..4).map(|i| Tensor::from_f32(&[(i * i) as f32])).collect());
///
/// let mut cache = DiskCacheProducer::open(squares(), name.to_str().unwrap())?;
/// assert_eq!(*cache.outcome(), CacheOutcome::Created);
/// assert_eq!(cache.view_at(3)?.data, 9f32.to_le_bytes());
/// drop(cache);
///
/// let cache = DiskCacheProducer::open(squares(), name.to_str().unwrap())?;
/// assert_eq!(*cache.outcome(), CacheOutcome::Reused); // nothing read from the source
/// # Ok(())
/// # }
/// ```
pub struct DiskCacheProducer {
    base: Box<dyn Producer>,
    path: PathBuf,
    token: Option<TokenFn>,
    reader: CacheReader,
    /// Position of the base producer's cursor (records it has handed out, mod its size).
    base_cursor: u64,
    outcome: CacheOutcome,
}

impl std::fmt::Debug for DiskCacheProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCacheProducer")
            .field("path", &self.path)
            .field("records", &self.reader.len())
            .field("outcome", &self.outcome)
            .finish()
    }
}

/// What a check of an existing cache file (`size_rule`, `adopt_legacy`) found:
/// `Ok(Ok(..))` the outcome and the reader to serve, `Ok(Err(why))` the file must be
/// rebuilt, `Err` a failure.
type Check = Result<std::result::Result<(CacheOutcome, CacheReader), String>>;

impl DiskCacheProducer {
    /// Caches `base` under `name` (resolved by `resolve_cache_path`).
    pub fn open(base: impl Producer + 'static, name: &str) -> Result<DiskCacheProducer> {
        Self::open_with_token(Box::new(base), name, None)
    }

    /// Caches `base` under `name`, invalidated when `token` returns a new value.
    pub fn open_with_token(
        base: Box<dyn Producer>,
        name: &str,
        token: Option<TokenFn>,
    ) -> Result<DiskCacheProducer> {
        let path = resolve_cache_path(name)?;
        Self::open_at(base, path, token)
    }

    /// Like `open_with_token`, at an explicit path.
    pub fn open_at(
        base: Box<dyn Producer>,
        path: PathBuf,
        token: Option<TokenFn>,
    ) -> Result<DiskCacheProducer> {
        let mut p = DiskCacheProducer {
            base,
            // Absolute once, here: a later chdir() must not move the cache.
            path: crate::cache::absolute_cache_path(&path)?,
            token,
            reader: CacheReader::empty(),
            base_cursor: 0,
            outcome: CacheOutcome::Reused,
        };
        p.refresh()?;
        Ok(p)
    }

    /// Re-checks the token and the source (its identity, else its size), updating the
    /// cache as on open. Reading restarts at record 0.
    pub fn refresh(&mut self) -> Result<&CacheOutcome> {
        let token = match &mut self.token {
            Some(f) => f()?,
            None => String::new(),
        };
        let lock = CacheLock::exclusive(&self.path)?;
        let (outcome, reader) = self.sync_with_source(&token, None, &lock)?;
        (self.outcome, self.reader) = (outcome, reader);
        Ok(&self.outcome)
    }

    /// What the last open or refresh did.
    pub fn outcome(&self) -> &CacheOutcome {
        &self.outcome
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> &Metadata {
        self.reader.metadata()
    }

    /// Brings the file at `self.path` in line with the source and returns the reader to
    /// serve: the one that was checked, or one of the file just written. The path is
    /// opened once. Under `lock` (the cache's). `damaged` forces a rebuild, for the
    /// reason given.
    fn sync_with_source(
        &mut self,
        token: &str,
        damaged: Option<String>,
        lock: &CacheLock,
    ) -> Result<(CacheOutcome, CacheReader)> {
        let existing = match damaged {
            Some(reason) => Err(reason),
            None => match CacheReader::open(&self.path) {
                Ok(r) => Ok(r),
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    return Ok((CacheOutcome::Created, self.populate(token, None, lock)?))
                }
                Err(e) if e.is_corruption() => Err(e.to_string()),
                Err(e) => return Err(e),
            },
        };
        let reason = match existing {
            Err(reason) => reason,
            Ok(r) if r.format() == Format::Legacy => match self.adopt_legacy(token, r, lock)? {
                Ok(served) => return Ok(served),
                Err(reason) => reason,
            },
            Ok(r) if r.metadata().token != token => "the token changed".to_string(),
            Ok(mut r) => {
                let cached = r.len();
                let decision = match r.metadata().identity.clone() {
                    Some(recorded) => self.base.match_identity(&recorded, cached)?,
                    None => {
                        // A cache written before identities were recorded (or from a
                        // producer without one): its recorded description must not name
                        // another source; then it is trusted under the size rule.
                        let (was, is) = (&r.metadata().source, self.base.source());
                        match self.base.identity()? {
                            Some(now) if description_differs(was, &now, &is) => {
                                IdentityMatch::Different(format!(
                                    "the cache was made from {was:?}, the source is {now}"
                                ))
                            }
                            _ => IdentityMatch::Unknown,
                        }
                    }
                };
                match decision {
                    IdentityMatch::Same => {
                        // A racily clean CSV stamp just verified by content, now outside
                        // the racy window: record it, so later opens read nothing.
                        let now = self.base.identity()?;
                        let recorded = r.metadata().identity.clone();
                        if let (Some(now), Some(old)) = (now, recorded) {
                            if now.improves_on(&old) {
                                if let Some(restamped) = self.restamp(&mut r, now, lock) {
                                    r = restamped;
                                }
                            }
                        }
                        r.rewind();
                        return Ok((CacheOutcome::Reused, r));
                    }
                    IdentityMatch::Different(reason) => reason,
                    IdentityMatch::Grew => {
                        let n = self.base.size()? as u64;
                        // The header must record the grown file's stamp: the cache is
                        // rewritten (cached records copied, not re-read from the source).
                        let served = self.populate(token, Some(&mut r), lock)?;
                        let outcome = if n > cached {
                            CacheOutcome::Appended {
                                from: cached,
                                to: n,
                            }
                        } else {
                            CacheOutcome::Reused
                        };
                        return Ok((outcome, served));
                    }
                    IdentityMatch::Unknown => match self.size_rule(token, r, lock)? {
                        Ok(served) => return Ok(served),
                        Err(reason) => reason,
                    },
                }
            }
        };
        warn(&format!(
            "{}: {reason}; rebuilding it from {}",
            self.path.display(),
            self.base.source()
        ));
        let served = self.populate(token, None, lock)?;
        Ok((CacheOutcome::Rebuilt(reason), served))
    }

    /// The size-based rule, for sources that cannot say whether they changed: the same
    /// count is reused, a bigger one appended to, a smaller one rebuilt (Err: why).
    /// When the source now has a decisive identity (a CSV stamp, a fingerprint, HTTP
    /// validators) the header lacks (a cache from before identities, a CSV it could not
    /// stamp before), the cache is rewritten once to record it (records copied, not
    /// re-read from the source; best effort when nothing is appended).
    fn size_rule(&mut self, token: &str, mut r: CacheReader, lock: &CacheLock) -> Check {
        let n = self.base.size()? as u64;
        let cached = r.len();
        if n < cached {
            return Ok(Err(format!(
                "the source shrank from {cached} to {n} records"
            )));
        }
        let now = self.base.identity()?;
        // Worth a rewrite only if the identity can decide "unchanged" next time.
        let restamp = match (&r.metadata().identity, &now) {
            (old, Some(new)) => new.is_decisive() && old.as_ref() != Some(new),
            (_, None) => false,
        };
        let outcome = if n == cached {
            CacheOutcome::Reused
        } else {
            CacheOutcome::Appended {
                from: cached,
                to: n,
            }
        };
        let served = if restamp && n == cached {
            // Best effort: a cache that cannot be rewritten (a read-only directory) is
            // still valid by the size rule.
            match self.populate(token, Some(&mut r), lock) {
                Ok(written) => written,
                Err(e) => {
                    warn(&format!(
                        "{}: cannot record the source's identity ({e}); using the cache as it is",
                        self.path.display()
                    ));
                    r.rewind();
                    r
                }
            }
        } else if restamp {
            self.populate(token, Some(&mut r), lock)?
        } else if n > cached {
            match self.append(&r, cached, n, lock) {
                Ok(Some(appended)) => appended,
                // The path no longer holds the file checked above (renamed over or
                // rewritten in place meanwhile): what it holds was not checked.
                Ok(None) => {
                    return Ok(Err(
                        "the cache file was replaced while it was being checked".into(),
                    ))
                }
                Err(e) if e.is_corruption() => return Ok(Err(e.to_string())),
                // Another user's file: replace it by rename where the directory allows.
                Err(e) if e.is_permission_denied() => {
                    drop(r);
                    let reason = crate::cache::append_refused(&self.path, &e);
                    warn(&format!("{reason}; rebuilding it by rename"));
                    let served = self
                        .populate(token, None, lock)
                        .map_err(|e| crate::cache::rebuild_refused(&self.path, &reason, e))?;
                    return Ok(Ok((CacheOutcome::Rebuilt(reason), served)));
                }
                Err(e) => return Err(e),
            }
        } else {
            r.rewind();
            r
        };
        Ok(Ok((outcome, served)))
    }

    /// A headerless file of the original runtime: trusted under the size rule (the old
    /// runtime kept its token beside the cache, in `<cache>.token`, and skipped the
    /// check when the current token was empty) and upgraded, recording the identity.
    fn adopt_legacy(&mut self, token: &str, mut r: CacheReader, lock: &CacheLock) -> Check {
        let n = self.base.size()? as u64;
        let side = legacy_token_path(&self.path);
        let old_token = std::fs::read_to_string(&side).unwrap_or_default();
        let old_token = old_token.lines().next().unwrap_or("");
        if (token.is_empty() || token == old_token) && r.len() <= n {
            let from = r.len();
            let served = self.populate(token, Some(&mut r), lock)?;
            // The token now lives in the header; a stale side file would mislead.
            let _ = std::fs::remove_file(&side);
            let outcome = if from == n {
                CacheOutcome::Reused
            } else {
                CacheOutcome::Appended { from, to: n }
            };
            return Ok(Ok((outcome, served)));
        }
        Ok(Err(if token != old_token {
            "the token changed since the legacy cache was written".to_string()
        } else {
            format!("the source shrank from {} to {n} records", r.len())
        }))
    }

    /// Rewrites the cache with `identity` in its header, copying the records (the source
    /// is not read); returns a reader of the new file. Best effort: on failure (a
    /// read-only directory) the cache stays as it is, still valid, with a warning (None).
    fn restamp(
        &mut self,
        old: &mut CacheReader,
        identity: SourceIdentity,
        lock: &CacheLock,
    ) -> Option<CacheReader> {
        let mut meta = old.metadata().clone();
        meta.identity = Some(identity);
        let result = (|| {
            let mut w = CacheWriter::create(&self.path, meta, lock)?;
            copy_records(old, &mut w)?;
            w.finish_reader()
        })();
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                warn(&format!(
                    "{}: cannot record the source's identity ({e}); using the cache as it is",
                    self.path.display()
                ));
                None
            }
        }
    }

    /// Moves the base cursor to record `index`.
    fn seek_base(&mut self, index: u64, n: u64) -> Result<()> {
        if n > 0 {
            let skip = records_to_skip(self.base_cursor, index, n);
            self.base.skip(skip as usize)?;
            self.base_cursor = index % n;
        }
        Ok(())
    }

    /// Takes records `from..to` from the base and hands each to `sink`.
    fn copy_from_base(
        &mut self,
        from: u64,
        to: u64,
        mut sink: impl FnMut(TensorRef<'_>) -> Result<()>,
    ) -> Result<()> {
        self.seek_base(from, to)?;
        for _ in from..to {
            let t = self.base.next_view()?;
            sink(t)?;
            self.base_cursor += 1;
        }
        self.base_cursor %= to.max(1);
        Ok(())
    }

    /// Writes a complete new cache: the records of `keep` (a file being upgraded or
    /// restamped) if given, then the rest from the source. The header records the
    /// source's identity. Published by rename; returns a reader of the file written.
    fn populate(
        &mut self,
        token: &str,
        keep: Option<&mut CacheReader>,
        lock: &CacheLock,
    ) -> Result<CacheReader> {
        let n = self.base.size()? as u64;
        let mut meta = Metadata::new(token, &self.base.source());
        meta.identity = self.base.identity()?;
        let mut w = CacheWriter::create(&self.path, meta, lock)?;
        let mut from = 0;
        if let Some(old) = keep {
            copy_records(old, &mut w)?;
            from = old.len();
        }
        self.copy_from_base(from, n, |t| w.push(t))?;
        w.finish_reader()
    }

    /// Appends records `from..to` of the source to the file `checked` read and commits
    /// them; returns a reader of the file appended to. None (nothing written) when the
    /// path no longer holds that file as `checked` saw it.
    fn append(
        &mut self,
        checked: &CacheReader,
        from: u64,
        to: u64,
        lock: &CacheLock,
    ) -> Result<Option<CacheReader>> {
        let mut a = CacheAppender::open(&self.path, lock)?;
        if !a.continues(checked) {
            return Ok(None);
        }
        self.copy_from_base(from, to, |t| a.push(t))?;
        a.commit()?;
        a.into_reader().map(Some)
    }

    /// Rebuilds after damage was found while reading and opens the new file (the
    /// recovery loop, `cache::read_with_recovery`, returns to the cursor's record).
    fn rebuild(&mut self, damage: Error) -> Result<()> {
        let token = match &mut self.token {
            Some(f) => f()?,
            None => String::new(),
        };
        let lock = CacheLock::exclusive(&self.path)?;
        // Another process may have rebuilt the file while we waited for the lock.
        let replaced = match (std::fs::metadata(&self.path), self.reader.inode()) {
            (Ok(m), Some(ino)) => (m.dev(), m.ino()) != ino,
            _ => false,
        };
        let damaged = if replaced {
            None
        } else {
            Some(damage.to_string())
        };
        let (outcome, reader) = self
            .sync_with_source(&token, damaged, &lock)
            .map_err(|cause| Error::RebuildFailed {
                damage: Box::new(damage),
                cause: Box::new(cause),
            })?;
        (self.outcome, self.reader) = (outcome, reader);
        Ok(())
    }

    /// The next record, borrowed until the next call. Hot path: no allocation.
    pub fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let loc = read_with_recovery(self, |s| &mut s.reader, |r| r.advance(), Self::rebuild)?;
        Ok(self.reader.view(loc))
    }

    /// The next record copied into `out`, its CRC checked on the copy
    /// (`CacheReader::next_into`); damage, or a file rewritten in place, is recovered
    /// from as in `next_view`. Hot path: no allocation once `out` has grown.
    pub fn next_into(&mut self, out: &mut dyn RecordSink) -> Result<()> {
        read_with_recovery(self, |s| &mut s.reader, |r| r.next_into(out), Self::rebuild)
    }

    /// Record `index` copied into `out` (`CacheReader::at_into`), recovered from as
    /// `view_at`.
    pub fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        read_with_recovery(
            self,
            |s| &mut s.reader,
            |r| r.at_into(index, out),
            Self::rebuild,
        )
    }

    /// Record `index` (0-based, no cycling; the sequential cursor is not moved): O(1)
    /// through the cache's offset index, CRC-checked. Damage is recovered from as in
    /// `next_view` (the cache is rebuilt from the source), then record `index` is
    /// served; `Error::IndexOutOfRange` at `index >= len()`.
    pub fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        let loc = check_at_with_recovery(self, |s| &mut s.reader, index, Self::rebuild)?;
        Ok(self.reader.view_checked(loc))
    }

    pub fn len(&self) -> usize {
        self.reader.len() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.reader.is_empty()
    }

    // Not an Iterator: next() cycles forever, as the C++ API's does.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Tensor> {
        Producer::next(self)
    }
}

impl Producer for DiskCacheProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        DiskCacheProducer::next_view(self)
    }
    fn next_into(&mut self, out: &mut dyn RecordSink) -> Result<()> {
        DiskCacheProducer::next_into(self, out)
    }
    fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        DiskCacheProducer::at_into(self, index, out)
    }
    fn view_intact(&self) -> Result<()> {
        self.reader.intact()
    }
    fn size(&mut self) -> Result<usize> {
        Ok(self.len())
    }
    fn skip(&mut self, n: usize) -> Result<()> {
        self.reader.skip(n)
    }
    fn source(&self) -> String {
        format!("cache:{}", self.path.display())
    }
    /// Kind `cache` with this cache's path (the size-based rule applies).
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        Ok(Some(SourceIdentity::new(
            SourceKind::Cache,
            path.to_string_lossy(),
        )))
    }

    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        DiskCacheProducer::view_at(self, index)
    }
    fn has_random_access(&self) -> bool {
        true
    }
    /// Read-ahead of the reader serving now (`CacheReader::read_ahead`). A rebuild or
    /// a refresh that opens another file starts it without the plan: the offsets
    /// looked up were the old file's.
    fn read_ahead(&mut self, order: crate::cache::ReadOrder) {
        self.reader.read_ahead(order)
    }
}

/// Copies every record of `old` into `w` through a private copy checked against its
/// CRC (`CacheReader::next_into`): the writer computes the new frame's CRC over what it
/// is given, so a byte another program writes into `old` meanwhile must not reach it.
fn copy_records(old: &mut CacheReader, w: &mut CacheWriter) -> Result<()> {
    let mut t = Tensor::new(crate::DType::UInt8, Vec::new(), Vec::new());
    old.rewind();
    for _ in 0..old.len() {
        old.next_into(&mut t)?;
        w.push(t.as_ref())?;
    }
    Ok(())
}

// Where the original runtime stored a cache's token: one owner, `cache::maintenance`.
use crate::cache::legacy_token_path;

/// How many records a cycling base of `n` records (n > 0) must skip to go from
/// `cursor` to `index`. In u128: a foreign producer may report a size near u64::MAX.
fn records_to_skip(cursor: u64, index: u64, n: u64) -> u64 {
    let (cursor, index, n) = (cursor as u128, index as u128, n as u128);
    ((index % n + n - cursor % n) % n) as u64
}

#[cfg(test)]
mod tests {
    use super::records_to_skip;

    #[test]
    fn skipping_wraps_around_and_survives_sizes_near_u64_max() {
        assert_eq!(records_to_skip(0, 3, 5), 3);
        assert_eq!(records_to_skip(4, 1, 5), 2);
        assert_eq!(records_to_skip(2, 2, 5), 0);
        assert_eq!(records_to_skip(5, u64::MAX - 1, u64::MAX), u64::MAX - 6);
        assert_eq!(records_to_skip(u64::MAX - 1, 0, u64::MAX), 1);
    }
}
