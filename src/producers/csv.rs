//! `CsvProducer`: one 1-D float32 tensor per CSV line.
//!
//! Lazy: `open` checks that the file exists, is a regular file and can be opened
//! (a clear error naming it if not) and parses nothing. The file is parsed the first
//! time records are needed (`size()`, `next()`), in one pass that also computes the
//! CRC32 of the bytes read; a bad cell is then an error naming its row and column.
//! Values are kept packed (4 bytes each, smaller than the text they came from).
//!
//! Identity (see `crate::identity`): kind `csv`, the canonical path, and the stamp of
//! the parse: the file's dev, inode, size, mtime, ctime (fstat before and after the
//! read must agree, or no stamp is recorded), the CRC32 of the bytes parsed and the time
//! of the parse. `match_identity` compares a recorded stamp with the file now:
//! - same path and stat, not racily clean: the same source, nothing is read;
//! - racily clean (stamp taken < 2 s after the last mtime/ctime), or same size with a
//!   different stat (touched, copied, edited, mtime put back): the file is hashed
//!   (not parsed) and the CRC decides; when the bytes are the same and the stat did
//!   not move while hashing, `identity()` reports that verified stamp, which the cache
//!   records once it is out of the racy window (`SourceIdentity::improves_on`);
//! - bigger, the first `size` bytes hash to the recorded CRC and end on a newline: it
//!   grew; the producer then parses only the bytes after them, numbering rows from the
//!   line after the old content, and serves them as records `cached..`;
//! - anything else (another path, a shrunk file, changed old bytes): another source.
//!
//! A producer made from a reader (`from_reader`, the C++ `std::istream` constructor)
//! parses at construction, as before; its identity is kind `memory` with its name, so
//! the size-based rule applies to it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::identity::{FileStamp, IdentityMatch, SourceIdentity, SourceKind};
use crate::producers::{Producer, ShapeCheck};
use crate::tensor::{DType, TensorRef};

/// Work done by one producer, for tests and benchmarks (`CsvProducer::stats`).
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct CsvStats {
    /// Parse passes started (a full parse or a parse of appended bytes).
    pub parses: AtomicU64,
    /// CSV rows parsed into records.
    pub rows: AtomicU64,
    /// Bytes read to compare content with a recorded CRC (hashing, not parsing).
    pub bytes_hashed: AtomicU64,
}

#[derive(Debug, Clone)]
struct Parsed {
    /// Index of the first record held: 0 after a full parse, the cached record count
    /// after parsing only appended bytes.
    first: usize,
    /// Little-endian float32 bytes of the records held, back to back.
    data: Vec<u8>,
    /// Byte offset of held record i's start; one more entry than records held.
    offsets: Vec<usize>,
    /// The file's state when it was read (None for a reader, or a file that changed
    /// while it was read).
    stamp: Option<FileStamp>,
}

impl Parsed {
    fn len(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// Where to resume after `match_identity` found the file grew.
#[derive(Debug, Clone)]
struct Resume {
    /// Records before the appended bytes (the cache's record count).
    first: usize,
    /// Byte offset of the appended bytes, CRC32 of the bytes before them.
    offset: u64,
    crc32: u32,
    /// Lines before the appended bytes: rows are numbered from `lines + 1`.
    lines: u64,
}

#[derive(Debug, Clone)]
pub struct CsvProducer {
    name: String,
    /// The file (None: parsed from a reader at construction).
    path: Option<PathBuf>,
    /// The canonical path (the identity); empty for a reader.
    canonical: String,
    validate: bool,
    parsed: Option<Parsed>,
    resume: Option<Resume>,
    /// The file's stamp as `match_identity` last verified it by content (not parsed):
    /// reported by `identity()` so a cache can record a stamp it can trust alone.
    verified: Option<FileStamp>,
    cursor: usize,
    shape: [usize; 1],
    stats: Arc<CsvStats>,
}

impl CsvProducer {
    /// A CSV file at `path`, parsed when its records are first needed. Fails now if the
    /// file does not exist, is a directory or cannot be opened.
    pub fn open(path: impl AsRef<Path>, validate: bool) -> Result<CsvProducer> {
        let path = path.as_ref();
        let err = |e| Error::io("cannot open CSV", path, e);
        let file = File::open(path).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if meta.is_dir() {
            return Err(err(std::io::Error::other("it is a directory, not a file")));
        }
        let canonical = std::fs::canonicalize(path).map_err(err)?;
        Ok(CsvProducer {
            path: Some(path.to_path_buf()),
            canonical: canonical.to_string_lossy().into_owned(),
            ..CsvProducer::unparsed(&path.display().to_string(), validate)
        })
    }

    /// A producer named `name` with nothing parsed and no file.
    fn unparsed(name: &str, validate: bool) -> CsvProducer {
        CsvProducer {
            name: name.to_string(),
            path: None,
            canonical: String::new(),
            validate,
            parsed: None,
            resume: None,
            verified: None,
            cursor: 0,
            shape: [0],
            stats: Arc::default(),
        }
    }

    /// Reads CSV text from any reader now; `name` is used in messages.
    pub fn from_reader<R: Read>(input: R, name: &str, validate: bool) -> Result<CsvProducer> {
        let mut p = CsvProducer::unparsed(name, validate);
        let mut check = validate.then(ShapeCheck::default);
        let (data, offsets) = p.parse(input, 0, 0, check.as_mut())?;
        p.parsed = Some(Parsed {
            first: 0,
            data,
            offsets,
            stamp: None,
        });
        Ok(p)
    }

    /// Counters of the work this producer did (shared: still readable after the
    /// producer was moved into a cache).
    #[doc(hidden)]
    pub fn stats(&self) -> Arc<CsvStats> {
        self.stats.clone()
    }

    /// Number of records (parses the file if it has not been parsed yet).
    pub fn len(&mut self) -> Result<usize> {
        let p = self.parsed()?;
        Ok(p.first + p.len())
    }

    pub fn is_empty(&mut self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The parsed records, parsing now if needed (the appended bytes only, after
    /// `match_identity` said the file grew).
    fn parsed(&mut self) -> Result<&Parsed> {
        if self.parsed.is_none() {
            let resume = self.resume.take();
            self.parsed = Some(self.parse_file(resume)?);
        }
        Ok(self.parsed.as_ref().expect("set above"))
    }

    /// Parses the file, from the start or from `resume`, stamping what was read.
    fn parse_file(&self, resume: Option<Resume>) -> Result<Parsed> {
        let path = self
            .path
            .as_deref()
            .expect("a reader is parsed at construction");
        let err = |e| Error::io("cannot read CSV", path, e);
        let mut file = File::open(path).map_err(err)?;
        let before = file.metadata().map_err(err)?;
        let (offset, crc, lines, first) = match &resume {
            Some(r) => (r.offset, r.crc32, r.lines, r.first),
            None => (0, 0, 0, 0),
        };
        file.seek(SeekFrom::Start(offset)).map_err(err)?;
        let mut check = None;
        if self.validate {
            // The expectation is the file's first record, even when resuming.
            let mut c = ShapeCheck::default();
            if resume.is_some() {
                let head = File::open(path).map_err(err)?;
                let mut one = csv_reader(head);
                let mut rec = csv::StringRecord::new();
                if one.read_record(&mut rec).unwrap_or(false) {
                    self.stats.rows.fetch_add(1, Ordering::Relaxed);
                    let mut data = Vec::new();
                    self.parse_cells(&rec, 1, &mut data)?;
                    c.check(0, float_view(&data, &[data.len() / 4]))?;
                }
            }
            check = Some(c);
        }
        let mut hashed = HashingReader {
            inner: file,
            hasher: crc32fast::Hasher::new_with_initial(crc),
            read: 0,
        };
        let (data, offsets) = self.parse(&mut hashed, lines, first, check.as_mut())?;
        let after = hashed.inner.metadata().map_err(err)?;
        let (b, a) = (stamp_of(&before), stamp_of(&after));
        let stamp = (b.same_stat(&a) && offset + hashed.read == a.size).then(|| FileStamp {
            crc32: hashed.hasher.finalize(),
            ..a
        });
        Ok(Parsed {
            first,
            data,
            offsets,
            stamp,
        })
    }

    /// Parses CSV text: rows are numbered from `lines + 1`, records from `first`.
    fn parse<R: Read>(
        &self,
        input: R,
        lines: u64,
        first: usize,
        mut check: Option<&mut ShapeCheck>,
    ) -> Result<(Vec<u8>, Vec<usize>)> {
        self.stats.parses.fetch_add(1, Ordering::Relaxed);
        let mut reader = csv_reader(input);
        let (mut data, mut offsets) = (Vec::new(), vec![0]);
        let mut record = csv::StringRecord::new();
        loop {
            let more = reader.read_record(&mut record).map_err(|e| Error::Csv {
                source_name: self.name.clone(),
                row: e.position().map_or(0, |p| p.line() + lines),
                column: 0,
                detail: e.to_string(),
            })?;
            if !more {
                break;
            }
            self.stats.rows.fetch_add(1, Ordering::Relaxed);
            let row = record.position().map_or(0, |p| p.line()) + lines;
            let start = data.len();
            self.parse_cells(&record, row, &mut data)?;
            offsets.push(data.len());
            if let Some(c) = check.as_deref_mut() {
                let n = (data.len() - start) / 4;
                let index = (first + offsets.len() - 2) as u64;
                c.check(index, float_view(&data[start..], &[n]))?;
            }
        }
        Ok((data, offsets))
    }

    fn parse_cells(&self, record: &csv::StringRecord, row: u64, data: &mut Vec<u8>) -> Result<()> {
        for (col, cell) in record.iter().enumerate() {
            let cell = unquote(cell);
            if cell.is_empty() {
                continue;
            }
            let v: f32 = cell.parse().map_err(|_| Error::Csv {
                source_name: self.name.clone(),
                row,
                column: col as u64 + 1,
                detail: format!("{cell:?} is not a number"),
            })?;
            data.extend_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    /// The file's stat now, as a stamp without CRC.
    fn stat_now(&self, path: &Path) -> Result<FileStamp> {
        let m = std::fs::metadata(path).map_err(|e| Error::io("cannot stat CSV", path, e))?;
        Ok(stamp_of(&m))
    }

    /// CRC32 of the file's first `len` bytes and the number of newlines in them, and
    /// the last of them (None if `len` is 0). Counted in `stats.bytes_hashed`.
    fn hash_prefix(&self, path: &Path, len: u64) -> Result<(u32, u64, Option<u8>)> {
        let err = |e| Error::io("cannot read CSV", path, e);
        let mut f = File::open(path).map_err(err)?.take(len);
        let mut h = crc32fast::Hasher::new();
        let (mut lines, mut last, mut total) = (0u64, None, 0u64);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(err(e)),
            };
            let b = &buf[..n];
            h.update(b);
            lines += b.iter().filter(|&&c| c == b'\n').count() as u64;
            last = b.last().copied();
            total += n as u64;
        }
        self.stats.bytes_hashed.fetch_add(total, Ordering::Relaxed);
        if total < len {
            return Err(err(std::io::Error::other(format!(
                "the file ended after {total} of {len} bytes while it was read"
            ))));
        }
        Ok((h.finalize(), lines, last))
    }

    fn describe(&self, stamp: Option<&FileStamp>) -> SourceIdentity {
        SourceIdentity {
            stamp: stamp.copied(),
            ..SourceIdentity::new(SourceKind::Csv, &self.canonical)
        }
    }
}

fn csv_reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input)
}

fn float_view<'a>(data: &'a [u8], shape: &'a [usize]) -> TensorRef<'a> {
    TensorRef {
        dtype: DType::Float32,
        shape,
        data,
    }
}

/// A file's stat as a stamp without CRC, recorded now.
fn stamp_of(m: &std::fs::Metadata) -> FileStamp {
    FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        recorded_ns: now_ns(),
        crc32: 0,
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Hashes and counts what passes through.
struct HashingReader<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Strips quotes the CSV reader left in place: a quoted cell preceded by spaces
/// (` "2.5"`) is not recognised as quoted by the CSV grammar, but users write it.
fn unquote(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        Some(inner) => std::borrow::Cow::Owned(inner.trim().replace("\"\"", "\"")),
        None => std::borrow::Cow::Borrowed(cell),
    }
}

impl Producer for CsvProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let n = self.len()?;
        if n == 0 {
            return Err(Error::Empty(format!("CSV {}", self.name)));
        }
        let i = self.cursor % n;
        if i < self.parsed()?.first {
            // Records before the appended ones are wanted after all: parse it all.
            self.parsed = Some(self.parse_file(None)?);
        }
        self.cursor = (i + 1) % n;
        let p = self.parsed.as_ref().expect("parsed above");
        let bytes = &p.data[p.offsets[i - p.first]..p.offsets[i - p.first + 1]];
        self.shape = [bytes.len() / 4];
        Ok(float_view(bytes, &self.shape))
    }

    fn size(&mut self) -> Result<usize> {
        self.len()
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        let len = self.len()?;
        if len > 0 {
            self.cursor = (self.cursor + n % len) % len;
        }
        Ok(())
    }

    fn source(&self) -> String {
        format!("csv:{}", self.name)
    }

    /// `csv` with the canonical path, and the stamp of the parse once parsed; a
    /// reader's is `memory` with its name.
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        if self.path.is_none() {
            let id = SourceIdentity::new(SourceKind::Memory, format!("csv:{}", self.name));
            return Ok(Some(id));
        }
        let stamp = match &self.parsed {
            Some(p) => p.stamp.as_ref(),
            None => self.verified.as_ref(),
        };
        Ok(Some(self.describe(stamp)))
    }

    fn match_identity(&mut self, recorded: &SourceIdentity, cached: u64) -> Result<IdentityMatch> {
        let Some(path) = self.path.clone() else {
            let now = self.identity()?.expect("always known");
            return Ok(crate::identity::match_generic(recorded, &now));
        };
        let differ = |what: String, now: &SourceIdentity| {
            IdentityMatch::Different(format!(
                "{what}: the cache was made from {recorded}, the source is {now}"
            ))
        };
        let now = self.stat_now(&path)?;
        // Records parsed earlier from another state of the file are of no use now.
        if self
            .parsed
            .as_ref()
            .is_some_and(|p| !p.stamp.is_some_and(|s| s.same_stat(&now)))
        {
            self.parsed = None;
            self.cursor = 0;
        }
        self.resume = None;
        self.verified = None;
        let now_id = self.describe(Some(&now));
        if recorded.kind != SourceKind::Csv {
            return Ok(differ("another kind of source".into(), &now_id));
        }
        if recorded.id != self.canonical {
            return Ok(differ("another file".into(), &now_id));
        }
        let Some(old) = recorded.stamp else {
            return Ok(IdentityMatch::Unknown);
        };
        if old.same_stat(&now) && !old.is_racy() {
            return Ok(IdentityMatch::Same);
        }
        if now.size == old.size {
            let (crc, _, _) = self.hash_prefix(&path, now.size)?;
            if crc != old.crc32 {
                return Ok(differ(
                    "the file was edited (its content differs)".into(),
                    &now_id,
                ));
            }
            // Same bytes. If the file did not change while it was hashed, this stamp
            // describes the cached records too.
            let after = self.stat_now(&path)?;
            if after.same_stat(&now) {
                self.verified = Some(FileStamp { crc32: crc, ..now });
            }
            return Ok(IdentityMatch::Same);
        }
        if now.size < old.size {
            return Ok(differ("the file shrank".into(), &now_id));
        }
        let (crc, lines, last) = self.hash_prefix(&path, old.size)?;
        if crc != old.crc32 {
            return Ok(differ("the file's old bytes were edited".into(), &now_id));
        }
        if last.is_some_and(|c| c != b'\n') {
            return Ok(differ("the last line was continued".into(), &now_id));
        }
        if self.parsed.is_none() {
            self.resume = Some(Resume {
                first: cached as usize,
                offset: old.size,
                crc32: old.crc32,
                lines,
            });
        }
        Ok(IdentityMatch::Grew)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, validate: bool) -> Result<CsvProducer> {
        CsvProducer::from_reader(text.as_bytes(), "test.csv", validate)
    }

    #[test]
    fn quoted_cells_spaces_and_empty_cells() {
        let mut p = parse("1, \"2.5\" ,3\n 4,,5 \n\"6\"\n", false).unwrap();
        assert_eq!(p.size().unwrap(), 3);
        assert_eq!(p.next().unwrap().to_f32(), [1.0, 2.5, 3.0]);
        assert_eq!(p.next().unwrap().to_f32(), [4.0, 5.0]);
        assert_eq!(p.next().unwrap().to_f32(), [6.0]);
        assert_eq!(p.next().unwrap().to_f32(), [1.0, 2.5, 3.0], "cycles");
    }

    #[test]
    fn non_numeric_cell_names_row_and_column() {
        let err = parse("1,2\n3,abc\n", false).unwrap_err().to_string();
        assert_eq!(err, "test.csv: row 2, column 2: \"abc\" is not a number");
    }

    #[test]
    fn validate_rejects_a_row_of_another_length() {
        assert!(parse("1,2\n3,4\n", true).is_ok());
        let err = parse("1,2\n3,4\n5\n", true).unwrap_err().to_string();
        assert_eq!(
            err,
            "record 2: shape float32[1] differs from the first record's float32[2]"
        );
    }

    #[test]
    fn crc_continues_from_a_prefix() {
        let mut h = crc32fast::Hasher::new_with_initial(crc32fast::hash(b"abc"));
        h.update(b"def");
        assert_eq!(h.finalize(), crc32fast::hash(b"abcdef"));
    }

    #[test]
    fn open_is_lazy_and_checks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "1,2\n3,x\n").unwrap();
        let mut p = CsvProducer::open(&path, false).unwrap();
        assert_eq!(p.stats().parses.load(Ordering::Relaxed), 0);
        let err = p.size().unwrap_err().to_string();
        assert!(
            err.ends_with("a.csv: row 2, column 2: \"x\" is not a number"),
            "{err}"
        );
        let err = CsvProducer::open(dir.path().join("missing.csv"), false).unwrap_err();
        assert!(err.to_string().contains("missing.csv"), "{err}");
        let err = CsvProducer::open(dir.path(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("directory"), "{err}");
    }

    #[test]
    fn a_grown_file_parses_only_the_new_bytes_and_numbers_rows_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.csv");
        std::fs::write(&path, "1\n\n2\n").unwrap();
        let mut p = CsvProducer::open(&path, false).unwrap();
        assert_eq!(p.size().unwrap(), 2);
        let recorded = p.identity().unwrap().unwrap();
        assert!(recorded.stamp.is_some());
        std::fs::write(&path, "1\n\n2\n3\nbad\n").unwrap();
        let mut q = CsvProducer::open(&path, false).unwrap();
        assert_eq!(q.match_identity(&recorded, 2).unwrap(), IdentityMatch::Grew);
        let err = q.size().unwrap_err().to_string();
        assert!(
            err.ends_with("g.csv: row 5, column 1: \"bad\" is not a number"),
            "{err}"
        );
        std::fs::write(&path, "1\n\n2\n3\n4\n").unwrap();
        let mut q = CsvProducer::open(&path, false).unwrap();
        assert_eq!(q.match_identity(&recorded, 2).unwrap(), IdentityMatch::Grew);
        assert_eq!(q.size().unwrap(), 4);
        assert_eq!(q.stats().rows.load(Ordering::Relaxed), 2);
        q.skip(2).unwrap();
        assert_eq!(q.next().unwrap().to_f32(), [3.0]);
        assert_eq!(q.next().unwrap().to_f32(), [4.0]);
        // Cycling back to record 0 needs the old records: a full parse.
        assert_eq!(q.next().unwrap().to_f32(), [1.0]);
        let full = q.identity().unwrap().unwrap().stamp.unwrap();
        assert_eq!(full.crc32, crc32fast::hash(b"1\n\n2\n3\n4\n"));
    }

    #[test]
    fn stamps_decide_without_reading_unless_racy_or_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(&path, "1,2\n").unwrap();
        let mut p = CsvProducer::open(&path, false).unwrap();
        p.size().unwrap();
        let mut recorded = p.identity().unwrap().unwrap();
        let stamp = recorded.stamp.as_mut().unwrap();
        assert!(stamp.is_racy(), "just written");
        // As if recorded long after the last change: trusted without reading.
        stamp.recorded_ns += 10 * crate::identity::RACY_WINDOW_NS;
        let mut q = CsvProducer::open(&path, false).unwrap();
        assert_eq!(q.match_identity(&recorded, 1).unwrap(), IdentityMatch::Same);
        assert_eq!(q.stats().bytes_hashed.load(Ordering::Relaxed), 0);
        // Same size, other ctime (a utimes, a touch): hashed, same bytes, same source.
        recorded.stamp.as_mut().unwrap().ctime_ns -= 1;
        assert_eq!(q.match_identity(&recorded, 1).unwrap(), IdentityMatch::Same);
        assert_eq!(q.stats().bytes_hashed.load(Ordering::Relaxed), 4);
        // Same stat, other bytes (the racy rewrite): the CRC catches it when racy...
        recorded.stamp.as_mut().unwrap().ctime_ns += 1;
        recorded.stamp.as_mut().unwrap().crc32 ^= 1;
        assert_eq!(
            q.match_identity(&recorded, 1).unwrap(),
            IdentityMatch::Same,
            "trusted: not racy"
        );
        recorded.stamp.as_mut().unwrap().recorded_ns -= 10 * crate::identity::RACY_WINDOW_NS;
        assert!(
            matches!(q.match_identity(&recorded, 1).unwrap(), IdentityMatch::Different(r) if r.contains("edited"))
        );
        assert_eq!(q.stats().parses.load(Ordering::Relaxed), 0);
        let other = SourceIdentity::new(SourceKind::Csv, "/elsewhere/s.csv");
        assert!(
            matches!(q.match_identity(&other, 1).unwrap(), IdentityMatch::Different(r) if r.contains("another file") && r.contains("/elsewhere/s.csv") && r.contains("s.csv"))
        );
    }
}
