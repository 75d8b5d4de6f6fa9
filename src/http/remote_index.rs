//! The head of a published cache file (`cache_cli publish`: a version-2 cache with its
//! offset index right after the header) read by ranged GETs of the pinned object
//! (`ranged.rs`): the record count, every record's frame offset, and the check of a
//! fetched record frame. Shared by the per-node partial fetch and the stream.
//!
//! The object is opened by one ranged GET of its first `HEAD_PROBE` bytes, which hold
//! the header and the index frame's header (and, for a small dataset, the whole index);
//! a longer header or index is read with further ranges. The index entries are read in
//! chunks of `INDEX_CHUNK` bytes, so a caller that only walks them (`for_each_offset`)
//! holds one chunk in memory, whatever the record count.

use std::path::Path;

use super::ranged::RangedObject;
use super::HttpOptions;
use crate::cache::{
    check_record_frame, entry_offset, parse_frame, Frame, Header, DATA_ALIGNMENT, FRAME_HEADER,
    REGION_PREFIX,
};
use crate::error::{Error, HttpCause, HttpErrorKind, Result};

/// Bytes of the opening ranged GET.
const HEAD_PROBE: u64 = 4 << 10;
/// Bytes of index entries read per ranged GET while walking the index.
const INDEX_CHUNK: u64 = 1 << 20;

/// A published cache file at a URL: the pinned object and where its records are.
#[derive(Debug)]
pub(crate) struct RemoteIndex {
    pub object: RangedObject,
    /// Records committed.
    pub records: u64,
    /// The end of the last record's frame.
    pub end: u64,
    /// Where the index entries start, and the bytes of the head already fetched.
    entries_at: u64,
    head: Vec<u8>,
}

impl RemoteIndex {
    /// Opens the published cache at `url` (http(s) or s3), pinned to its ETag.
    pub(crate) fn open(
        url: &str,
        opts: &HttpOptions,
        activity: &'static str,
        halted: &dyn Fn() -> bool,
    ) -> Result<RemoteIndex> {
        let client = super::shared_client(opts)?;
        let (object, mut head) =
            RangedObject::open(client, url, opts.retries, HEAD_PROBE, activity, halted)?;
        let err = |detail: String| Error::http(HttpCause::of(HttpErrorKind::Body), url, detail);
        let total = object.len();
        if head.len() < REGION_PREFIX {
            return Err(err(format!(
                "not a published cache: the object is {total} bytes"
            )));
        }
        let region = Header::region_len(&head[..REGION_PREFIX])
            .map_err(|d| err(format!("not a published cache: {d}")))? as u64;
        // The header and the index frame's header, and what the probe held beyond.
        let need = (region + (FRAME_HEADER + DATA_ALIGNMENT) as u64).min(total);
        if (head.len() as u64) < need {
            let rest = object
                .read(head.len() as u64, need, halted)
                .map_err(|f| f.into_error(url))?;
            head.extend_from_slice(&rest);
        }
        let h = Header::decode(&head).map_err(|d| Error::corrupt(Path::new(url), d))?;
        let records = h.commit.records;
        let end = h.data_start + h.commit.data_len;
        if h.version < 2 || h.commit.index_at != h.data_start || end > total {
            return Err(err(
                "not a published cache (a version-2 file with its index at the head): \
                 publish it with `cache_cli publish`"
                    .into(),
            ));
        }
        let at = h.data_start as usize;
        let fh: &[u8; FRAME_HEADER] = head
            .get(at..at + FRAME_HEADER)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| err("the index frame is cut".into()))?;
        let Ok(Frame::Index { body_at, body_len }) = parse_frame(fh, true) else {
            return Err(err("no index frame at the head".into()));
        };
        // Never trust a count the bytes cannot hold.
        let bytes = records
            .checked_mul(8)
            .filter(|&n| n <= body_len as u64 && n <= total);
        if bytes.is_none() {
            return Err(err(format!("an index of {records} records does not fit")));
        }
        Ok(RemoteIndex {
            object,
            records,
            end,
            entries_at: h.data_start + body_at as u64,
            head,
        })
    }

    pub(crate) fn url(&self) -> &str {
        self.object.url()
    }

    /// The published file's bytes are not what they must be (`HttpErrorKind::Body`).
    fn err(&self, detail: String) -> Error {
        Error::http(HttpCause::of(HttpErrorKind::Body), self.url(), detail)
    }

    /// The bytes of the header and index before the first record's frame (what
    /// every reader of the file fetches once).
    pub(crate) fn head_bytes(&self) -> u64 {
        self.entries_at + self.records * 8
    }

    /// Calls `f(i, frame offset of record i)` for every record, ascending; every
    /// entry is checked (its 16-bit check, inside the data, ascending).
    pub(crate) fn for_each_offset(
        &self,
        halted: &dyn Fn() -> bool,
        mut f: impl FnMut(u64, u64) -> Result<()>,
    ) -> Result<()> {
        let first_frame = self.entries_at + self.records * 8;
        let mut i = 0u64;
        let mut prev: Option<u64> = None;
        while i < self.records {
            let from = self.entries_at + i * 8;
            let to = (from + INDEX_CHUNK).min(first_frame);
            let chunk = if to <= self.head.len() as u64 {
                self.head[from as usize..to as usize].to_vec()
            } else {
                self.object
                    .read(from, to, halted)
                    .map_err(|fl| fl.into_error(self.url()))?
            };
            for c in chunk.chunks_exact(8) {
                let e = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                let off = entry_offset(i, e)
                    .filter(|&o| o >= first_frame && o < self.end)
                    .filter(|&o| prev.map_or(true, |p| o > p))
                    .ok_or_else(|| self.err(format!("index entry {i} is damaged")))?;
                f(i, off)?;
                prev = Some(off);
                i += 1;
            }
        }
        Ok(())
    }

    /// Every record's frame offset, ascending (8 bytes per record in memory).
    pub(crate) fn offsets(&self, halted: &dyn Fn() -> bool) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(self.records as usize);
        self.for_each_offset(halted, |_, o| {
            out.push(o);
            Ok(())
        })?;
        Ok(out)
    }
}

/// The wire bytes of record `g`'s frame `frame` (the bytes from its frame header to
/// the next frame), CRC-checked; an error names `url` and the record.
pub(crate) fn record_wire<'a>(frame: &'a [u8], g: u64, url: &str) -> Result<&'a [u8]> {
    let bad = |d: String| {
        Error::http(
            HttpCause::of(HttpErrorKind::Body),
            url,
            format!("record {g}: {d}"),
        )
    };
    // The slice ends where the index says the next frame starts: a frame that
    // claims more runs past its index entry.
    let f = check_record_frame(frame, &mut Vec::new()).map_err(bad)?;
    Ok(&frame[f.wire_at..f.frame_len()])
}
