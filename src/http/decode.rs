//! The body decoder: turns a downloaded body, concatenated wire records or a published
//! cache file (magic `HMNCACHE`, every frame CRC verified), into records pushed to the
//! temp cache file's `CacheWriter`, one record at most buffered, none trusted unchecked.

use std::io::{self, Read};

use super::fetch::Observer;
use crate::cache::{read_full, read_stream_header, CacheWriter, FrameStream, MAGIC};
use crate::error::Error;
use crate::shape_check::ShapeCheck;
use crate::tensor::{
    parse_wire, wire_header_len, wire_record_len, TensorRef, WireHeader, MAX_NDIMS,
};

pub(super) enum DecodeError {
    /// The body is not what it must be (or its transport failed: see `failed`).
    Body(String),
    /// Writing the cache, validation.
    Other(Error),
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

const BODY_BUFFER: usize = 256 << 10;

pub(super) fn decode_body<R: Read + ?Sized>(
    body: &mut R,
    writer: &mut CacheWriter,
    check: Option<&mut ShapeCheck>,
    obs: &mut dyn Observer,
) -> std::result::Result<(), DecodeError> {
    let mut first = [0u8; 8];
    let n = read_full(body, &mut first).map_err(|e| DecodeError::Body(e.to_string()))?;
    if n == 0 {
        // Not a dataset of zero records that later runs would trust: an empty body
        // is what a misconfigured server or an emptied file sends.
        return Err(DecodeError::Body(
            "the server sent an empty body (no records): an empty dataset is refused".into(),
        ));
    }
    if n == 8 && first == MAGIC {
        let input = io::Cursor::new(first[..n].to_vec()).chain(&mut *body);
        let mut input = Counting {
            inner: io::BufReader::with_capacity(BODY_BUFFER, input),
            n: 0,
        };
        decode_cache_file(&mut input, writer, check, obs)
    } else {
        decode_records(body, &first[..n], writer, check, obs)
    }
}

/// Parses record `index`'s `wire` (the one parse it gets: the writer reuses the header)
/// and applies the `validate` shape check.
fn check_record(
    wire: &[u8],
    shape: &mut Vec<usize>,
    index: u64,
    check: &mut Option<&mut ShapeCheck>,
) -> std::result::Result<WireHeader, DecodeError> {
    let h =
        parse_wire(wire, shape).map_err(|e| DecodeError::Body(format!("record {index}: {e}")))?;
    if let Some(c) = check.as_deref_mut() {
        let t = TensorRef {
            dtype: h.dtype,
            shape,
            data: &wire[h.data_offset..h.record_len()],
        };
        c.check(index, t).map_err(DecodeError::Other)?;
    }
    Ok(h)
}

/// The length of the wire record starting at `b`: `Ok(Some(len))` once its header is
/// complete, `Ok(None)` while more bytes are needed, `Err` for a malformed header.
fn record_len(b: &[u8]) -> std::result::Result<Option<usize>, String> {
    wire_record_len(b).map_err(|e| e.to_string())
}

/// Why the body ended inside the record at `b` (incomplete by `record_len`).
fn truncated_record(b: &[u8]) -> String {
    if b.len() < 5 {
        return format!("body ended inside a record header ({} of 5 bytes)", b.len());
    }
    let ndims = u32::from_le_bytes(b[1..5].try_into().unwrap()) as usize;
    let head = wire_header_len(ndims);
    if b.len() < head {
        return format!(
            "body ended inside a record header ({} of {head} bytes)",
            b.len()
        );
    }
    let nbytes = u32::from_le_bytes(b[head - 4..head].try_into().unwrap());
    format!(
        "malformed record: record declares {nbytes} data bytes, body ended after {}",
        b.len() - head
    )
}

/// The decode buffer of `decode_records`: large reads, records decoded in place.
const READ_BUFFER: usize = 4 << 20;

/// Concatenated wire records, as the original runtime's servers sent them.
///
/// The body is read in large chunks into one buffer and every complete record is
/// pushed straight from it (no per-record copy or allocation); only a record cut by
/// the end of the buffer is moved to its front. A record larger than the buffer
/// grows it by doubling as its bytes arrive, never by what its header merely claims
/// (a header claiming 4 GiB costs at most twice what was actually sent).
fn decode_records<R: Read + ?Sized>(
    body: &mut R,
    first: &[u8],
    writer: &mut CacheWriter,
    mut check: Option<&mut ShapeCheck>,
    obs: &mut dyn Observer,
) -> std::result::Result<(), DecodeError> {
    let mut buf = vec![0u8; READ_BUFFER];
    buf[..first.len()].copy_from_slice(first);
    let (mut start, mut end) = (0usize, first.len());
    let mut shape = Vec::new();
    let mut index = 0u64;
    // Body offset of `buf[start]`.
    let mut at = 0u64;
    let mut eof = false;
    let err = |index: u64, at: u64, e: String| {
        DecodeError::Body(format!("record {index} at byte {at} of the body: {e}"))
    };
    let mut batch: Vec<(std::ops::Range<usize>, WireHeader)> = Vec::new();
    loop {
        // Every complete record in the buffer is checked, then all of them are
        // written at once, straight from the buffer (vectored writes).
        batch.clear();
        let need = loop {
            match record_len(&buf[start..end]) {
                Err(e) => return Err(err(index, at, e)),
                Ok(Some(len)) if len <= end - start => {
                    let wire = &buf[start..start + len];
                    let h = check_record(wire, &mut shape, index, &mut check)?;
                    obs.record(writer).map_err(DecodeError::Other)?;
                    batch.push((start..start + len, h));
                    start += len;
                    at += len as u64;
                    index += 1;
                }
                Ok(Some(len)) => break len,
                Ok(None) => break wire_header_len(MAX_NDIMS),
            }
        };
        if !batch.is_empty() {
            let records: Vec<(&[u8], WireHeader)> =
                batch.iter().map(|(r, h)| (&buf[r.clone()], *h)).collect();
            writer.push_wires(&records).map_err(DecodeError::Other)?;
            obs.batch(writer).map_err(DecodeError::Other)?;
        }
        if eof {
            if start == end {
                break;
            }
            return Err(err(index, at, truncated_record(&buf[start..end])));
        }
        if start + need > buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            if need > buf.len() && end == buf.len() {
                let grown = (buf.len() * 2).min(need);
                buf.resize(grown, 0);
            }
        }
        let n = loop {
            match body.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(index, at, format!("reading record: {e}"))),
            }
        };
        if n == 0 {
            eof = true;
        }
        end += n;
    }
    obs.total(index);
    Ok(())
}

/// A published cache file (either version): header verified, every frame's CRC
/// verified, the index checked against the records (the layout is `crate::cache`'s).
fn decode_cache_file<R: Read>(
    input: &mut Counting<R>,
    writer: &mut CacheWriter,
    mut check: Option<&mut ShapeCheck>,
    obs: &mut dyn Observer,
) -> std::result::Result<(), DecodeError> {
    let bad = |d: String| DecodeError::Body(format!("published cache file: {d}"));
    // `input` starts at the magic again (the sniffed bytes are chained back in).
    let header = read_stream_header(input).map_err(bad)?;
    let mut frames = FrameStream::new(&header);
    obs.total(frames.records());
    let mut wire = Vec::new();
    let mut shape = Vec::new();
    let mut index = 0u64;
    while let Some(crc) = frames.next_record(input, &mut wire).map_err(bad)? {
        let h = check_record(&wire, &mut shape, index, &mut check)?;
        writer
            .push_checked_wire(&wire, h, crc)
            .map_err(DecodeError::Other)?;
        obs.record(writer).map_err(DecodeError::Other)?;
        obs.batch(writer).map_err(DecodeError::Other)?;
        index += 1;
    }
    Ok(())
}
