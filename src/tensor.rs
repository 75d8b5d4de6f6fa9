//! `Tensor`, `DType` and the wire codec: byte for byte what the original runtime's
//! `write_tensor` wrote, little-endian:
//! `u8 dtype | u32 ndims | u32 dim × ndims | u32 nbytes | nbytes of data`.
//!
//! Decoding never allocates more than the input actually holds: a record that claims
//! 4 GiB of data is an error as soon as the bytes run out, not an allocation.
//!
//! **A record's byte count must match its shape**: `nbytes` is the product of the
//! dimensions (1 for the shape `[]`, a scalar) times the element size. Every decoder
//! here (slices, streams, the length probe the HTTP decoder and the cache readers use)
//! refuses a record that breaks the rule, and the encoder refuses to write one, so
//! our own writers never produce bytes our readers then reject. Nine zero bytes (a
//! float32 scalar of 0 bytes) are therefore damage, not a record.

use std::fmt;
use std::io::{Read, Write};

use crate::error::{Error, Result};

/// Most dimensions a record may declare. The format itself has no limit; anything
/// above this is damage, and refusing it keeps a hostile header from costing memory.
pub const MAX_NDIMS: usize = 64;

/// Element type codes, as the original runtime numbered them.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    Float32 = 0,
    Float64 = 1,
    Int32 = 2,
    Int64 = 3,
    UInt8 = 4,
}

impl DType {
    pub fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::Float32,
            1 => DType::Float64,
            2 => DType::Int32,
            3 => DType::Int64,
            4 => DType::UInt8,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Float32 | DType::Int32 => 4,
            DType::Float64 | DType::Int64 => 8,
            DType::UInt8 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
        }
    }
}

/// The data bytes a tensor of `dtype` and `shape` holds: the product of its
/// dimensions (1 for the shape `[]`, a scalar; 0 when any dimension is 0) times the
/// element size. None when that product overflows.
#[cfg(any(test, feature = "testing"))]
pub fn data_len_for(dtype: DType, shape: &[usize]) -> Option<usize> {
    data_len_of(dtype, shape.iter().copied())
}

fn data_len_of(dtype: DType, mut dims: impl Iterator<Item = usize> + Clone) -> Option<usize> {
    if dims.clone().any(|d| d == 0) {
        return Some(0);
    }
    dims.try_fold(dtype.size(), usize::checked_mul)
}

/// Checks that `nbytes` is what `dtype` and `dims` need; the message says what the
/// record (or tensor, `what`) declares and what its shape needs. Allocates only for
/// the message (one string: a decoder's error stays small).
fn check_data_len(
    what: &str,
    dtype: DType,
    dims: impl Iterator<Item = usize> + Clone,
    nbytes: usize,
) -> std::result::Result<(), String> {
    use std::fmt::Write;
    let need = data_len_of(dtype, dims.clone());
    if need == Some(nbytes) {
        return Ok(());
    }
    let mut m = format!("{what} {}[", dtype.name());
    for (i, d) in dims.enumerate() {
        let _ = write!(m, "{}{d}", if i > 0 { ", " } else { "" });
    }
    let _ = match need {
        Some(n) => write!(
            m,
            "] has {nbytes} data bytes, its shape needs {n} ({} element(s) of {} bytes)",
            n / dtype.size(),
            dtype.size()
        ),
        None => write!(m, "] has dimensions whose product overflows"),
    };
    Err(m)
}

/// An owned tensor: element type, shape and raw little-endian bytes.
///
/// Like the original `HTensor`, the type does not force the byte length to match the
/// shape; the wire codec does: writing a tensor whose bytes do not match its shape
/// (`data_len_for`) is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// A borrowed tensor: what the zero-copy read path hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorRef<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

impl Tensor {
    pub fn new(dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> Tensor {
        Tensor { dtype, shape, data }
    }

    /// A 1-D float32 tensor of `values`.
    pub fn from_f32(values: &[f32]) -> Tensor {
        let mut data = Vec::with_capacity(values.len() * 4);
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        Tensor::new(DType::Float32, vec![values.len()], data)
    }

    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef {
            dtype: self.dtype,
            shape: &self.shape,
            data: &self.data,
        }
    }

    /// Reads the data as float32 values (little-endian). Panics if the dtype is not Float32.
    pub fn to_f32(&self) -> Vec<f32> {
        assert_eq!(
            self.dtype,
            DType::Float32,
            "to_f32 on a {} tensor",
            self.dtype.name()
        );
        self.data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// The wire encoding of this tensor as a new vector.
    pub fn to_wire(&self) -> Result<Vec<u8>> {
        self.as_ref().to_wire()
    }
}

impl<'a> TensorRef<'a> {
    pub fn to_owned(&self) -> Tensor {
        Tensor::new(self.dtype, self.shape.to_vec(), self.data.to_vec())
    }

    /// Length of the wire encoding.
    pub fn wire_len(&self) -> usize {
        wire_header_len(self.shape.len()) + self.data.len()
    }

    /// Writes the wire header (everything before the data) into `out`.
    pub fn write_wire_header(&self, out: &mut Vec<u8>) -> Result<()> {
        if self.shape.len() > MAX_NDIMS {
            return Err(Error::InvalidArgument(format!(
                "tensor has {} dimensions; at most {MAX_NDIMS} are supported",
                self.shape.len()
            )));
        }
        out.push(self.dtype.code());
        out.extend_from_slice(&(self.shape.len() as u32).to_le_bytes());
        for &d in self.shape {
            let d = u32::try_from(d).map_err(|_| {
                Error::InvalidArgument(format!("dimension {d} does not fit the wire format's u32"))
            })?;
            out.extend_from_slice(&d.to_le_bytes());
        }
        check_data_len("tensor", self.dtype, self.shape.iter().copied(), self.data.len())
            .map_err(|e| {
                // What a default-constructed C++ `HTensor` is: a float32 scalar without data.
                let hint = if self.shape.is_empty() && self.data.is_empty() {
                    "; the shape [] is a scalar (1 element): an empty tensor has a 0 in its shape, e.g. [0]"
                } else {
                    ""
                };
                Error::InvalidArgument(format!(
                    "cannot write {e}: a record's bytes must match its shape{hint}"
                ))
            })?;
        let n = u32::try_from(self.data.len()).map_err(|_| {
            Error::InvalidArgument(format!(
                "{} data bytes do not fit the wire format's u32 length",
                self.data.len()
            ))
        })?;
        out.extend_from_slice(&n.to_le_bytes());
        Ok(())
    }

    pub fn to_wire(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.wire_len());
        self.write_wire_header(&mut out)?;
        out.extend_from_slice(self.data);
        Ok(out)
    }

    /// `dtype[d0, d1, …]`, for messages.
    pub fn describe(&self) -> String {
        describe(self.dtype, self.shape)
    }
}

pub(crate) fn describe(dtype: DType, shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("{}[{}]", dtype.name(), dims.join(", "))
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} bytes)",
            self.as_ref().describe(),
            self.data.len()
        )
    }
}

/// Bytes before the data in a record with `ndims` dimensions.
pub const fn wire_header_len(ndims: usize) -> usize {
    1 + 4 + 4 * ndims + 4
}

/// The parsed header of one wire record found in a byte slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireHeader {
    pub dtype: DType,
    /// Offset of the data from the start of the record.
    pub data_offset: usize,
    pub nbytes: usize,
}

impl WireHeader {
    pub fn record_len(&self) -> usize {
        self.data_offset + self.nbytes
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The message for a record whose first byte is no dtype code. Most often the body is
/// not records at all (JSON starts with `{` = 123, HTML with `<` = 60): say what is
/// expected instead.
fn unknown_dtype(code: u8) -> Error {
    let shown = if code.is_ascii_graphic() {
        format!(" ({:?} as text)", code as char)
    } else {
        String::new()
    };
    Error::Wire(format!(
        "unknown dtype code {code}{shown}: this is not the wire format. A dataset is \
         records as write_tensor writes them (u8 dtype 0..4 | u32 ndims | u32 dims | \
         u32 nbytes | data, little-endian), one after another, or a cache file \
         published with cache_cli publish"
    ))
}

/// The first 5 bytes of a wire record: its dtype and dimension count, checked. The one
/// parser of the wire header's prefix (byte slices, streams, the HTTP decoder).
pub fn parse_wire_prefix(head: &[u8; 5]) -> Result<(DType, usize)> {
    let dtype = DType::from_code(head[0]).ok_or_else(|| unknown_dtype(head[0]))?;
    let ndims = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if ndims > MAX_NDIMS {
        return Err(Error::Wire(format!(
            "record declares {ndims} dimensions (at most {MAX_NDIMS})"
        )));
    }
    Ok((dtype, ndims))
}

/// The length of the wire record starting at `b`: `Ok(Some(len))` once its header is
/// complete (and consistent: its byte count matches its shape), `Ok(None)` while more
/// bytes are needed, `Err` for a malformed header (as soon as its first byte, the
/// dtype, is there).
pub fn wire_record_len(b: &[u8]) -> Result<Option<usize>> {
    let Some(head) = b.first_chunk::<5>() else {
        if let Some(&code) = b.first() {
            DType::from_code(code).ok_or_else(|| unknown_dtype(code))?;
        }
        return Ok(None);
    };
    let (dtype, ndims) = parse_wire_prefix(head)?;
    let data_offset = wire_header_len(ndims);
    if b.len() < data_offset {
        return Ok(None);
    }
    let nbytes = read_u32(b, data_offset - 4) as usize;
    check_data_len("record", dtype, wire_dims(b, ndims), nbytes).map_err(Error::Wire)?;
    Ok(Some(data_offset + nbytes))
}

/// The dimensions of the record header at the start of `b` (complete, `ndims` checked).
fn wire_dims(b: &[u8], ndims: usize) -> impl Iterator<Item = usize> + Clone + '_ {
    (0..ndims).map(move |i| read_u32(b, 5 + 4 * i) as usize)
}

/// Parses the record at the start of `bytes`, writing its dimensions into `shape`
/// (cleared first). Checks that its byte count matches its shape and that the whole
/// record, data included, lies inside `bytes`: the one parser every reader and
/// decoder of records goes through. Hot path: allocates nothing once `shape` has
/// capacity (the shape check allocates only for its error message).
pub fn parse_wire(bytes: &[u8], shape: &mut Vec<usize>) -> Result<WireHeader> {
    let Some(head) = bytes.first_chunk::<5>() else {
        return Err(Error::Wire(format!(
            "record header needs 5 bytes, {} remain",
            bytes.len()
        )));
    };
    let (dtype, ndims) = parse_wire_prefix(head)?;
    let data_offset = wire_header_len(ndims);
    if bytes.len() < data_offset {
        return Err(Error::Wire(format!(
            "record header with {ndims} dimensions needs {data_offset} bytes, {} remain",
            bytes.len()
        )));
    }
    shape.clear();
    for i in 0..ndims {
        shape.push(read_u32(bytes, 5 + 4 * i) as usize);
    }
    let nbytes = read_u32(bytes, 5 + 4 * ndims) as usize;
    check_data_len("record", dtype, shape.iter().copied(), nbytes).map_err(Error::Wire)?;
    let available = bytes.len() - data_offset;
    if nbytes > available {
        return Err(Error::Wire(format!(
            "record declares {nbytes} data bytes, {available} remain"
        )));
    }
    Ok(WireHeader {
        dtype,
        data_offset,
        nbytes,
    })
}

/// Decodes one record from the start of `bytes`; returns it and its length.
pub fn decode_wire(bytes: &[u8]) -> Result<(Tensor, usize)> {
    let mut shape = Vec::new();
    let h = parse_wire(bytes, &mut shape)?;
    let data = bytes[h.data_offset..h.record_len()].to_vec();
    Ok((Tensor::new(h.dtype, shape, data), h.record_len()))
}

/// Writes one record in wire format (the original `write_tensor`).
pub fn write_tensor<W: Write + ?Sized>(out: &mut W, t: TensorRef<'_>) -> Result<()> {
    let mut header = Vec::with_capacity(wire_header_len(t.shape.len()));
    t.write_wire_header(&mut header)?;
    let io = |e| Error::Wire(format!("writing record: {e}"));
    out.write_all(&header).map_err(io)?;
    out.write_all(t.data).map_err(io)?;
    Ok(())
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended before the first byte.
fn read_exact_or_eof<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(Error::Wire(format!(
                    "stream ended inside a record header ({filled} of {} bytes)",
                    buf.len()
                )))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Wire(format!("reading record: {e}"))),
        }
    }
    Ok(true)
}

/// Reads `n` bytes into `data` (cleared first), growing it only as bytes arrive
/// (reusing its capacity first), so a header that lies about its length cannot make
/// us allocate the lie: memory stays within about twice the bytes actually read.
fn read_data<R: Read + ?Sized>(input: &mut R, n: usize, data: &mut Vec<u8>) -> Result<()> {
    data.clear();
    input
        .take(n as u64)
        .read_to_end(data)
        .map_err(|e| Error::Wire(format!("reading record data: {e}")))?;
    if data.len() < n {
        return Err(Error::Wire(format!(
            "record declares {n} data bytes, stream ended after {}",
            data.len()
        )));
    }
    Ok(())
}

/// Reads one record from a stream (the original `read_tensor`).
/// Returns `Ok(None)` at a clean end of stream (no byte of a new record).
pub fn read_tensor<R: Read + ?Sized>(input: &mut R) -> Result<Option<Tensor>> {
    let mut wire = Vec::new();
    match read_wire(input, &mut wire)? {
        None => Ok(None),
        Some(_) => Ok(Some(decode_wire(&wire)?.0)),
    }
}

/// Reads one record's raw wire bytes from a stream into `wire` (cleared first),
/// validating the header. `Ok(None)` at a clean end of stream, else the header.
pub fn read_wire<R: Read + ?Sized>(
    input: &mut R,
    wire: &mut Vec<u8>,
) -> Result<Option<WireHeader>> {
    let mut head = [0u8; 5];
    if !read_exact_or_eof(input, &mut head)? {
        return Ok(None);
    }
    let (dtype, ndims) = parse_wire_prefix(&head)?;
    let data_offset = wire_header_len(ndims);
    let mut rest = [0u8; 4 * MAX_NDIMS + 4];
    let rest = &mut rest[..4 * ndims + 4];
    if !read_exact_or_eof(input, rest)? {
        return Err(Error::Wire("stream ended inside a record header".into()));
    }
    let nbytes = read_u32(rest, 4 * ndims) as usize;
    let dims = (0..ndims).map(|i| read_u32(rest, 4 * i) as usize);
    check_data_len("record", dtype, dims, nbytes).map_err(Error::Wire)?;
    let mut data = std::mem::take(wire);
    read_data(input, nbytes, &mut data)?;
    // Assemble header + data; the data vector is reused as the output buffer.
    data.splice(0..0, head.iter().chain(rest.iter()).copied());
    *wire = data;
    Ok(Some(WireHeader {
        dtype,
        data_offset,
        nbytes,
    }))
}

/// `t` copied into `out`, reusing `out`'s allocations.
pub(crate) fn copy_into(out: &mut Tensor, t: TensorRef<'_>) {
    out.dtype = t.dtype;
    out.shape.clear();
    out.shape.extend_from_slice(t.shape);
    out.data.clear();
    out.data.extend_from_slice(t.data);
}

/// Where a copying read (`Producer::next_into`, `at_into`) puts a record: memory of
/// the caller's, which the reader then checks (a cache's CRC is computed over it).
pub trait RecordSink {
    /// Copies `t` into the sink's memory, replacing what it held.
    fn copy(&mut self, t: TensorRef<'_>) -> Result<()>;
    /// The data bytes of the last copy, where the sink holds them now.
    fn copied(&self) -> &[u8];
}

/// A tensor as a sink: its buffers are reused.
impl RecordSink for Tensor {
    fn copy(&mut self, t: TensorRef<'_>) -> Result<()> {
        copy_into(self, t);
        Ok(())
    }
    fn copied(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_matches_original_layout_byte_for_byte() {
        let t = Tensor::new(DType::Int32, vec![2, 3], (0u8..24).collect());
        let w = t.to_wire().unwrap();
        let mut expected = vec![2u8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 24, 0, 0, 0];
        expected.extend(0u8..24);
        assert_eq!(w, expected);
        assert_eq!(decode_wire(&w).unwrap(), (t, w.len()));
    }

    #[test]
    fn stream_round_trip_and_clean_eof() {
        let a = Tensor::from_f32(&[1.0, 2.0]);
        let b = Tensor::new(DType::UInt8, vec![0], vec![]);
        let c = Tensor::new(DType::Int64, vec![], 7i64.to_le_bytes().to_vec());
        let d = Tensor::new(DType::Float64, vec![3, 0, 2], vec![]);
        let mut buf = Vec::new();
        for t in [&a, &b, &c, &d] {
            write_tensor(&mut buf, t.as_ref()).unwrap();
        }
        let mut r = &buf[..];
        for t in [a, b, c, d] {
            assert_eq!(read_tensor(&mut r).unwrap(), Some(t));
        }
        assert_eq!(read_tensor(&mut r).unwrap(), None);
    }

    #[test]
    fn record_claiming_4_gib_is_an_error_not_an_allocation() {
        // A consistent header (uint8[4294967295]) whose data never comes.
        let mut w = vec![4u8, 1, 0, 0, 0];
        w.extend_from_slice(&u32::MAX.to_le_bytes());
        w.extend_from_slice(&u32::MAX.to_le_bytes());
        w.extend_from_slice(&[1, 2, 3]);
        let err = read_tensor(&mut &w[..]).unwrap_err().to_string();
        assert!(err.contains("4294967295"), "{err}");
        let err = decode_wire(&w).unwrap_err().to_string();
        assert!(err.contains("4294967295 data bytes, 3 remain"), "{err}");
    }

    /// Every decoder of a record: slice, stream, length probe.
    fn refusals(w: &[u8]) -> [String; 3] {
        [
            decode_wire(w).unwrap_err().to_string(),
            read_tensor(&mut &w[..]).unwrap_err().to_string(),
            wire_record_len(w).unwrap_err().to_string(),
        ]
    }

    #[test]
    fn a_byte_count_that_does_not_match_the_shape_is_refused_by_every_decoder() {
        // Nine zero bytes: float32, shape [] (a scalar, 4 bytes), 0 bytes.
        for e in refusals(&[0u8; 9]) {
            assert!(
                e.contains("float32[] has 0 data bytes, its shape needs 4"),
                "{e}"
            );
        }
        // int32[2, 3] needs 24 bytes; 20 are declared (and present).
        let mut w = vec![2u8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 20, 0, 0, 0];
        w.extend([0u8; 20]);
        for e in refusals(&w) {
            assert!(
                e.contains("int32[2, 3] has 20 data bytes, its shape needs 24"),
                "{e}"
            );
        }
        // Dimensions whose product overflows usize are an error, not a wrap-around
        // to a small count; a zero dimension makes the product 0 whatever the others.
        let mut w = vec![3u8, 4, 0, 0, 0];
        for _ in 0..4 {
            w.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        w.extend_from_slice(&8u32.to_le_bytes());
        w.extend([0u8; 8]);
        for e in refusals(&w) {
            assert!(e.contains("product overflows"), "{e}");
        }
        w[5..9].copy_from_slice(&0u32.to_le_bytes());
        let n = w.len();
        w[n - 12..n - 8].copy_from_slice(&0u32.to_le_bytes());
        w.truncate(n - 8);
        let (t, len) = decode_wire(&w).unwrap();
        assert_eq!((t.data.len(), len), (0, w.len()));
    }

    #[test]
    fn writing_a_tensor_whose_bytes_do_not_match_its_shape_is_refused() {
        // The default C++ HTensor: float32, shape [], no data.
        let empty = Tensor::new(DType::Float32, vec![], vec![]);
        let mut out = Vec::new();
        let e = write_tensor(&mut out, empty.as_ref())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("float32[] has 0 data bytes, its shape needs 4") && e.contains("[0]"),
            "{e}"
        );
        assert!(out.is_empty(), "nothing is written");
        let short = Tensor::new(DType::Float64, vec![2], vec![0; 15]);
        let e = short.to_wire().unwrap_err().to_string();
        assert!(
            e.contains("float64[2] has 15 data bytes, its shape needs 16"),
            "{e}"
        );
        assert_eq!(data_len_for(DType::Int32, &[]), Some(4));
        assert_eq!(data_len_for(DType::Int32, &[5, 0]), Some(0));
        assert_eq!(data_len_for(DType::UInt8, &[usize::MAX, 2]), None);
    }

    #[test]
    fn the_prefix_parser_serves_slices_and_lengths_alike() {
        let t = Tensor::from_f32(&[1.0, 2.0]);
        let wire = t.to_wire().unwrap();
        assert_eq!(wire_record_len(&wire[..4]).unwrap(), None);
        assert_eq!(wire_record_len(&wire[..6]).unwrap(), None);
        assert_eq!(wire_record_len(&wire).unwrap(), Some(wire.len()));
        let mut bad = wire.clone();
        bad[0] = 9;
        let (a, b) = (
            wire_record_len(&bad).unwrap_err().to_string(),
            parse_wire(&bad, &mut Vec::new()).unwrap_err().to_string(),
        );
        assert_eq!(a, b);
        assert!(a.contains("unknown dtype code 9"), "{a}");
        bad[0] = 0;
        bad[1..5].copy_from_slice(&1000u32.to_le_bytes());
        let e = wire_record_len(&bad).unwrap_err().to_string();
        assert!(e.contains("record declares 1000 dimensions"), "{e}");
    }

    #[test]
    fn bad_dtype_and_absurd_ndims_are_refused() {
        assert!(decode_wire(&[9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // An unknown dtype is refused by the length probe from its first byte on.
        assert!(wire_record_len(&[9]).is_err());
        assert_eq!(wire_record_len(&[4]).unwrap(), None);
        let err = decode_wire(&[0, 255, 255, 255, 255])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dimensions"), "{err}");
        let err = read_tensor(&mut &[0u8, 1, 0][..]).unwrap_err().to_string();
        assert!(err.contains("inside a record header"), "{err}");
    }
}
