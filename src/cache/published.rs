//! Reading a cache file as a byte stream, front to back, with O(1) memory: how a
//! published cache file downloaded over HTTP is decoded. The layout knowledge lives
//! here, beside `format.rs`, not in the HTTP code.
//!
//! Every frame is checked on the way through: record CRCs, frame lengths against the
//! committed length, and (version 2) the index in force against the record offsets
//! actually found, by comparing a CRC of the expected entries with a CRC of the stored
//! ones, so the index may come before the records (a compacted file) or after them.

use std::io::{self, Read};

use super::format::{
    check_record_wire, index_entry, parse_frame, Frame, Header, DATA_ALIGNMENT, FRAME_HEADER,
    INDEX_ENTRY, REGION_PREFIX, VERSION_1,
};

/// Reads up to `buf.len()` bytes; fewer only at the end of the stream.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads and checks the header region of a cache file (version 1 or 2) from the start
/// of `input`, leaving `input` at the first frame.
pub fn read_stream_header<R: Read>(input: &mut R) -> Result<Header, String> {
    let io_bad = |e: io::Error| e.to_string();
    let mut head = vec![0u8; REGION_PREFIX];
    if read_full(input, &mut head).map_err(io_bad)? < head.len() {
        return Err("body ended inside the header".into());
    }
    let data_start = Header::region_len(&head)?;
    head.resize(data_start, 0);
    if read_full(input, &mut head[REGION_PREFIX..]).map_err(io_bad)? < data_start - REGION_PREFIX {
        return Err("body ended inside the header".into());
    }
    Header::decode(&head)
}

/// Walks the frames after a header read by `read_stream_header`.
#[derive(Debug)]
pub struct FrameStream {
    version: u32,
    records: u64,
    data_start: u64,
    data_len: u64,
    index_at: u64,
    /// Bytes of frames consumed so far.
    consumed: u64,
    /// Records returned so far.
    next: u64,
    /// CRC of the index entries the records found call for.
    expected: crc32fast::Hasher,
    /// CRC of the first `records` entries of the index in force, once it was read.
    stored: Option<u32>,
    done: bool,
    /// Dimensions of the record last checked (reused).
    shape: Vec<usize>,
}

impl FrameStream {
    pub fn new(h: &Header) -> FrameStream {
        FrameStream {
            version: h.version,
            records: h.commit.records,
            data_start: h.data_start,
            data_len: h.commit.data_len,
            index_at: h.commit.index_at,
            consumed: 0,
            next: 0,
            expected: crc32fast::Hasher::new(),
            stored: None,
            done: false,
            shape: Vec::new(),
        }
    }

    /// Records committed.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Reads the next record's wire bytes into `wire` and returns its CRC (checked),
    /// skipping index frames (checked); `Ok(None)` once every record and the frames
    /// after the last one have been read and the committed length ends there.
    pub fn next_record<R: Read>(
        &mut self,
        input: &mut R,
        wire: &mut Vec<u8>,
    ) -> Result<Option<u32>, String> {
        let io_bad = |e: io::Error| e.to_string();
        loop {
            if self.done {
                return Ok(None);
            }
            let index = self.next;
            if index == self.records && self.consumed == self.data_len {
                return self.finish().map(|_| None);
            }
            let frame_at = self.data_start + self.consumed;
            let mut fh = [0u8; FRAME_HEADER];
            if read_full(input, &mut fh).map_err(io_bad)? < FRAME_HEADER {
                return Err(if index < self.records {
                    format!("body ended before record {index} of {}", self.records)
                } else {
                    format!(
                        "records end at {} bytes, the header commits {}",
                        self.consumed, self.data_len
                    )
                });
            }
            let frame = parse_frame(&fh, self.version != VERSION_1)
                .map_err(|e| format!("record {index}: {e}"))?;
            let frame_len = frame.len();
            if self.consumed + frame_len > self.data_len {
                return Err(format!(
                    "record {index}: frame of {frame_len} bytes overruns the committed length {}",
                    self.data_len
                ));
            }
            match frame {
                Frame::Index { body_len, .. } => {
                    let mut pad = [0u8; DATA_ALIGNMENT];
                    let pad_len = frame.pad_len();
                    if read_full(input, &mut pad[..pad_len]).map_err(io_bad)? < pad_len {
                        return Err(format!("body ended inside the index frame at {frame_at}"));
                    }
                    self.read_index(input, frame_at, body_len)?;
                    self.consumed += frame_len;
                }
                Frame::Record { wire_len, crc, .. } => {
                    if index == self.records {
                        return Err(format!(
                            "records end at {} bytes, the header commits {}",
                            self.consumed, self.data_len
                        ));
                    }
                    let mut pad = [0u8; DATA_ALIGNMENT];
                    let pad_len = frame.pad_len();
                    if read_full(input, &mut pad[..pad_len]).map_err(io_bad)? < pad_len {
                        return Err(format!("body ended inside record {index}"));
                    }
                    wire.clear();
                    (&mut *input)
                        .take(wire_len as u64)
                        .read_to_end(wire)
                        .map_err(|e| format!("record {index}: {e}"))?;
                    if wire.len() < wire_len {
                        return Err(format!("body ended inside record {index}"));
                    }
                    check_record_wire(wire, crc, &mut self.shape)
                        .map_err(|e| format!("record {index}: {e}"))?;
                    self.expected
                        .update(&index_entry(index, frame_at).to_le_bytes());
                    self.consumed += frame_len;
                    self.next += 1;
                    return Ok(Some(crc));
                }
            }
        }
    }

    /// Reads an index frame's body: the one in force is checksummed (its first
    /// `records` entries), any other (left behind by an append) skipped.
    fn read_index<R: Read>(
        &mut self,
        input: &mut R,
        frame_at: u64,
        body_len: usize,
    ) -> Result<(), String> {
        let live = frame_at == self.index_at && self.stored.is_none();
        let mut keep = if live {
            self.records * INDEX_ENTRY as u64
        } else {
            0
        };
        if keep > body_len as u64 {
            return Err(format!(
                "the index at {frame_at} holds {} entries for {} records",
                body_len / INDEX_ENTRY,
                self.records
            ));
        }
        let mut h = crc32fast::Hasher::new();
        let mut buf = [0u8; 64 << 10];
        let mut left = body_len as u64;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            if read_full(input, &mut buf[..n]).map_err(|e| e.to_string())? < n {
                return Err(format!("body ended inside the index frame at {frame_at}"));
            }
            let k = keep.min(n as u64) as usize;
            h.update(&buf[..k]);
            keep -= k as u64;
            left -= n as u64;
        }
        if live {
            self.stored = Some(h.finalize());
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        self.done = true;
        if self.index_at == 0 {
            return Ok(());
        }
        match self.stored {
            None => Err(format!(
                "the commit names an index at offset {} that is not an index frame",
                self.index_at
            )),
            Some(s) if s != self.expected.clone().finalize() => {
                Err("the index does not match the records' offsets".into())
            }
            Some(_) => Ok(()),
        }
    }
}
