//! The offset index of format version 2 (layout: `format.rs`): the log of frame
//! offsets a writer or appender keeps until its commit, and the walk that builds an
//! index for files that have none (version 1, legacy).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::format::{index_entry, parse_frame, Frame, FRAME_HEADER, INDEX_ENTRY};
use crate::error::{Error, Result};
use crate::tensor::parse_wire;

/// Offsets kept in memory before they are spilled to a temporary file (512 KiB).
const SPILL_AT: usize = 1 << 16;

/// The frame offsets of the records written since the last commit, in order. A large
/// population spills them to an unnamed temporary file beside the cache, so memory
/// stays bounded whatever the record count (8 bytes per record go to disk instead).
#[derive(Debug)]
pub(crate) struct EntryLog {
    /// Record index of the first offset logged.
    first: u64,
    pending: Vec<u64>,
    spill: Option<File>,
    spilled: u64,
}

impl EntryLog {
    pub fn new(first: u64) -> EntryLog {
        EntryLog {
            first,
            pending: Vec::new(),
            spill: None,
            spilled: 0,
        }
    }

    /// Logs the frame offset of the next record. `path` (the cache) is where a spill
    /// file goes and what errors name.
    #[inline]
    pub fn push(&mut self, offset: u64, path: &Path) -> Result<()> {
        self.pending.push(offset);
        if self.pending.len() >= SPILL_AT {
            self.spill_pending(path)?;
        }
        Ok(())
    }

    fn spill_pending(&mut self, path: &Path) -> Result<()> {
        if self.spill.is_none() {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            self.spill = Some(
                tempfile::tempfile_in(dir)
                    .map_err(|e| Error::io("cannot create index spill file in", dir, e))?,
            );
        }
        let bytes: Vec<u8> = self.pending.iter().flat_map(|o| o.to_le_bytes()).collect();
        let f = self.spill.as_mut().expect("created above");
        f.write_all(&bytes)
            .map_err(|e| Error::io("cannot write index spill file for", path, e))?;
        self.spilled += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Offsets logged.
    pub fn len(&self) -> u64 {
        self.spilled + self.pending.len() as u64
    }

    /// Hands the encoded index entries of every logged record to `f`, in order, in
    /// chunks of bytes.
    pub fn for_each_chunk(
        &mut self,
        path: &Path,
        mut f: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<()> {
        let io = |e| Error::io("cannot write index of", path, e);
        let mut out = Vec::with_capacity(SPILL_AT * INDEX_ENTRY);
        let mut i = self.first;
        if let Some(spill) = &self.spill {
            let mut raw = vec![0u8; SPILL_AT * INDEX_ENTRY];
            let mut done = 0u64;
            while done < self.spilled {
                let n = (self.spilled - done).min(SPILL_AT as u64) as usize;
                spill
                    .read_exact_at(&mut raw[..n * INDEX_ENTRY], done * INDEX_ENTRY as u64)
                    .map_err(|e| Error::io("cannot read index spill file for", path, e))?;
                out.clear();
                for c in raw[..n * INDEX_ENTRY].chunks_exact(INDEX_ENTRY) {
                    let off = u64::from_le_bytes(c.try_into().unwrap());
                    out.extend_from_slice(&index_entry(i, off).to_le_bytes());
                    i += 1;
                }
                f(&out).map_err(io)?;
                done += n as u64;
            }
        }
        for chunk in self.pending.chunks(SPILL_AT) {
            out.clear();
            for &off in chunk {
                out.extend_from_slice(&index_entry(i, off).to_le_bytes());
                i += 1;
            }
            f(&out).map_err(io)?;
        }
        Ok(())
    }

    /// Forgets everything logged; the next offset is record `first`'s.
    pub fn reset(&mut self, first: u64) {
        self.first = first;
        self.pending.clear();
        self.spilled = 0;
        if let Some(f) = self.spill.as_mut() {
            let _ = f.set_len(0).and_then(|_| f.seek(SeekFrom::Start(0)));
        }
    }
}

/// The frame offsets of the `records` records in `map[data_start..data_end]`, found
/// by walking the frame headers (`framed`: a current-format file; else headerless
/// wire records, whose offsets are the records' own). Index frames are skipped when
/// `index_frames`. For files that carry no index: O(records) once, 8 bytes a record.
pub(crate) fn walk_offsets(
    map: &[u8],
    data_start: usize,
    data_end: usize,
    records: u64,
    framed: bool,
    index_frames: bool,
) -> std::result::Result<Vec<u64>, String> {
    let mut out = Vec::with_capacity(records.min((data_end - data_start) as u64 / 4) as usize);
    let mut at = data_start;
    let mut shape = Vec::new();
    while (out.len() as u64) < records {
        if at >= data_end {
            return Err(format!(
                "the records end after {} of {records} at offset {at}",
                out.len()
            ));
        }
        let len = if framed {
            let fh: &[u8; FRAME_HEADER] = map
                .get(at..at + FRAME_HEADER)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("frame header at offset {at} is cut off"))?;
            let f = parse_frame(fh, index_frames).map_err(|e| format!("offset {at}: {e}"))?;
            if let Frame::Record { .. } = f {
                out.push(at as u64);
            }
            f.len() as usize
        } else {
            out.push(at as u64);
            parse_wire(&map[at..data_end], &mut shape)
                .map_err(|e| format!("offset {at}: {e}"))?
                .record_len()
        };
        at = at
            .checked_add(len)
            .filter(|&e| e <= data_end)
            .ok_or_else(|| format!("frame at offset {at} runs past the committed end"))?;
    }
    Ok(out)
}
