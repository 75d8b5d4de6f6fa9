//! The cache file format, version 1. All integers little-endian.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "HMNCACHE"
//! 8       4     version (1)
//! 12      4     flags (0)
//! 16      4     meta_len: bytes of metadata at offset 88
//! 20      4     header_crc: CRC32 of bytes 0..20 followed by the metadata
//! 24      32    commit slot 0 ┐ each: u64 seq | u64 records | u64 data_len |
//! 56      32    commit slot 1 ┘       u32 reserved | u32 CRC32 of the 28 bytes before
//! 88      …     metadata: token, source, etag, last_modified (u32 length + UTF-8 each),
//!               then u64 created (unix seconds), then (optional) u32 length + the
//!               source identity (`identity::SourceIdentity::encode`)
//! data_start    zero padding up to a multiple of 64
//!               records: u32 wire_len | u32 CRC32(wire) | u8 pad | pad zero bytes | wire
//! ```
//!
//! The valid slot with the highest sequence number says how many records (and bytes
//! after `data_start`) are committed; anything after that is an uncommitted tail that
//! readers never look at. Appends write the data, make it durable, then write the
//! *other* slot, so a torn slot write leaves the previous commit in force.
//! The identity field was added after `created` without a version change: older code
//! stops reading the metadata at `created` (it never checked for trailing bytes), and
//! this code reads a file without it as "no identity". An identity in an encoding this
//! version does not know is also read as "no identity".
//! `pad` (0..7) places each record's tensor data at a multiple of 8 in the file, so a
//! zero-copy view of float64 data is aligned.

use crate::error::{Error, Result};
use crate::identity::SourceIdentity;
use std::path::Path;

pub const MAGIC: [u8; 8] = *b"HMNCACHE";
pub const VERSION: u32 = 1;
pub const SLOT0: usize = 24;
pub const SLOT_LEN: usize = 32;
pub const META_OFFSET: usize = SLOT0 + 2 * SLOT_LEN;
/// Metadata larger than this is damage, not data (tokens and URLs are short).
pub const MAX_META_LEN: usize = 1 << 20;
pub const DATA_ALIGN: usize = 64;
pub const FRAME_HEADER: usize = 9;
/// Tensor data starts at a multiple of this in the file.
pub const DATA_ALIGNMENT: usize = 8;

/// Descriptive data stored once, when the file is created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The user token in force when the cache was populated; empty means none.
    pub token: String,
    /// Where the records came from (producer description or URL).
    pub source: String,
    /// HTTP validators of the body the cache was made from (empty when unknown).
    pub etag: String,
    pub last_modified: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// What the records were made from (None: not recorded, e.g. an older file).
    pub identity: Option<SourceIdentity>,
}

impl Metadata {
    pub fn new(token: &str, source: &str) -> Metadata {
        Metadata {
            token: token.to_string(),
            source: source.to_string(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ..Metadata::default()
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for s in [&self.token, &self.source, &self.etag, &self.last_modified] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.created.to_le_bytes());
        if let Some(id) = &self.identity {
            let b = id.encode();
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(&b);
        }
        out
    }

    fn decode(mut bytes: &[u8]) -> Option<Metadata> {
        let mut field = || -> Option<String> {
            let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
            let s = std::str::from_utf8(bytes.get(4..4 + len)?)
                .ok()?
                .to_string();
            bytes = &bytes[4 + len..];
            Some(s)
        };
        let (token, source, etag, last_modified) = (field()?, field()?, field()?, field()?);
        let created = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let rest = &bytes[8..];
        let identity = match rest.get(..4) {
            None => None,
            Some(len) => {
                let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
                SourceIdentity::decode(rest.get(4..4usize.checked_add(len)?)?)
            }
        };
        Some(Metadata {
            token,
            source,
            etag,
            last_modified,
            created,
            identity,
        })
    }
}

/// One commit: how much of the file is valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    pub seq: u64,
    pub records: u64,
    pub data_len: u64,
}

impl Commit {
    pub fn encode(&self) -> [u8; SLOT_LEN] {
        let mut b = [0u8; SLOT_LEN];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.records.to_le_bytes());
        b[16..24].copy_from_slice(&self.data_len.to_le_bytes());
        let crc = crc32fast::hash(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Commit> {
        let crc = u32::from_le_bytes(b[28..32].try_into().ok()?);
        if crc32fast::hash(&b[..28]) != crc {
            return None;
        }
        let u = |r: std::ops::Range<usize>| u64::from_le_bytes(b[r].try_into().unwrap());
        Some(Commit {
            seq: u(0..8),
            records: u(8..16),
            data_len: u(16..24),
        })
    }

    /// File offset of the slot this commit is written to (alternating by sequence).
    pub fn slot_offset(&self) -> u64 {
        (SLOT0 + (self.seq % 2) as usize * SLOT_LEN) as u64
    }
}

/// The parsed header of a current-format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub meta: Metadata,
    pub commit: Commit,
    /// Offset of the first record.
    pub data_start: u64,
}

impl Header {
    /// Encodes the whole header region (up to `data_start`) with `commit` in its slot.
    pub fn encode(meta: &Metadata, commit: Commit) -> Vec<u8> {
        let meta_bytes = meta.encode();
        let data_start = data_start_for(meta_bytes.len());
        let mut b = vec![0u8; data_start];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[16..20].copy_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
        b[META_OFFSET..META_OFFSET + meta_bytes.len()].copy_from_slice(&meta_bytes);
        let mut h = crc32fast::Hasher::new();
        h.update(&b[0..20]);
        h.update(&meta_bytes);
        b[20..24].copy_from_slice(&h.finalize().to_le_bytes());
        let at = commit.slot_offset() as usize;
        b[at..at + SLOT_LEN].copy_from_slice(&commit.encode());
        b
    }

    /// Parses the header at the start of `bytes` (the file's first bytes; it must
    /// hold at least the metadata). `path` is only for messages.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Header> {
        let bad = |d: String| Error::corrupt(path, d);
        if bytes.len() < META_OFFSET {
            return Err(bad(format!(
                "header is {} bytes, needs {META_OFFSET}",
                bytes.len()
            )));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let version = u32_at(8);
        let meta_len = u32_at(16) as usize;
        if meta_len > MAX_META_LEN || META_OFFSET + meta_len > bytes.len() {
            return Err(bad(format!(
                "metadata length {meta_len} does not fit the file"
            )));
        }
        let meta_bytes = &bytes[META_OFFSET..META_OFFSET + meta_len];
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[0..20]);
        h.update(meta_bytes);
        if h.finalize() != u32_at(20) {
            return Err(bad("header checksum mismatch".into()));
        }
        if version != VERSION {
            return Err(bad(format!(
                "unsupported format version {version} (this library reads {VERSION})"
            )));
        }
        let meta = Metadata::decode(meta_bytes).ok_or_else(|| bad("malformed metadata".into()))?;
        // Decode from a copy: another process may be writing a slot of a mapped file
        // right now, and the CRC and the fields must come from the same bytes.
        let mut copy = [0u8; 2 * SLOT_LEN];
        copy.copy_from_slice(&bytes[SLOT0..SLOT0 + 2 * SLOT_LEN]);
        let slots = [
            Commit::decode(&copy[..SLOT_LEN]),
            Commit::decode(&copy[SLOT_LEN..]),
        ];
        let commit = slots
            .into_iter()
            .flatten()
            .max_by_key(|c| c.seq)
            .ok_or_else(|| bad("both commit slots are damaged".into()))?;
        Ok(Header {
            meta,
            commit,
            data_start: data_start_for(meta_len) as u64,
        })
    }
}

/// True if a commit slot holds bytes (it is not the never-written all-zero slot) that
/// fail their CRC: damage, or a slot another process is writing at this moment.
pub fn slot_in_flux(bytes: &[u8]) -> bool {
    (0..2).any(|i| {
        let at = SLOT0 + i * SLOT_LEN;
        bytes.get(at..at + SLOT_LEN).is_some_and(|b| {
            let mut copy = [0u8; SLOT_LEN];
            copy.copy_from_slice(b);
            copy.iter().any(|&x| x != 0) && Commit::decode(&copy).is_none()
        })
    })
}

fn data_start_for(meta_len: usize) -> usize {
    (META_OFFSET + meta_len).div_ceil(DATA_ALIGN) * DATA_ALIGN
}

/// What the first bytes of a file say about its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    Current,
    /// No magic: the original headerless format (concatenated records).
    Legacy,
    /// Nearly the magic: a current-format file whose first bytes are damaged.
    DamagedMagic,
}

pub fn sniff(first: &[u8]) -> Sniff {
    if first.len() >= 8 && first[..8] == MAGIC {
        return Sniff::Current;
    }
    let matching = first
        .iter()
        .zip(MAGIC.iter())
        .filter(|(a, b)| a == b)
        .count();
    // A legacy file starts with a dtype code 0..4, never with 'H'; five matching
    // bytes out of eight cannot happen by chance in a wire record header.
    if matching >= 5 {
        Sniff::DamagedMagic
    } else {
        Sniff::Legacy
    }
}

/// Pad bytes for a record whose frame starts at `frame_start` and whose wire header
/// is `wire_header_len` bytes, so its data lands on a multiple of `DATA_ALIGNMENT`.
pub fn frame_pad(frame_start: u64, wire_header_len: usize) -> usize {
    let data_at = frame_start as usize + FRAME_HEADER + wire_header_len;
    (DATA_ALIGNMENT - data_at % DATA_ALIGNMENT) % DATA_ALIGNMENT
}

/// Writes a frame header for `wire` (CRC included) into `out`: the bytes that go
/// before the wire bytes themselves.
pub fn frame_header(
    frame_start: u64,
    wire_header_len: usize,
    wire_len: usize,
    crc: u32,
    out: &mut Vec<u8>,
) {
    let pad = frame_pad(frame_start, wire_header_len);
    out.extend_from_slice(&(wire_len as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(pad as u8);
    out.extend(std::iter::repeat(0u8).take(pad));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_picks_newest_valid_slot() {
        let meta = Metadata {
            token: "v2".into(),
            source: "csv:train.csv".into(),
            etag: "\"abc\"".into(),
            last_modified: String::new(),
            created: 42,
            identity: None,
        };
        let c1 = Commit {
            seq: 1,
            records: 3,
            data_len: 100,
        };
        let mut b = Header::encode(&meta, c1);
        assert_eq!(b.len() % DATA_ALIGN, 0);
        let h = Header::decode(&b, Path::new("x")).unwrap();
        assert_eq!((h.meta, h.commit), (meta.clone(), c1));
        let c2 = Commit {
            seq: 2,
            records: 5,
            data_len: 180,
        };
        let at = c2.slot_offset() as usize;
        b[at..at + SLOT_LEN].copy_from_slice(&c2.encode());
        assert_eq!(Header::decode(&b, Path::new("x")).unwrap().commit, c2);
        b[at + 9] ^= 1; // torn newest slot: previous commit stays in force
        assert_eq!(Header::decode(&b, Path::new("x")).unwrap().commit, c1);
    }

    #[test]
    fn identity_is_an_optional_field_after_created() {
        let mut meta = Metadata::new("t", "csv:a.csv");
        let plain = meta.encode();
        assert_eq!(Metadata::decode(&plain), Some(meta.clone()), "no identity");
        meta.identity = Some(crate::identity::SourceIdentity::url("http://h/x", "e", ""));
        let with = meta.encode();
        assert_eq!(&with[..plain.len()], &plain[..], "appended after created");
        assert_eq!(Metadata::decode(&with), Some(meta.clone()));
        // What older code read: the same four strings and `created`, trailing bytes ignored.
        let old = Metadata::decode(&with[..plain.len()]).unwrap();
        assert_eq!(
            (old.token, old.source, old.created),
            ("t".into(), "csv:a.csv".into(), meta.created)
        );
        // An identity field cut short is malformed metadata.
        assert_eq!(Metadata::decode(&with[..with.len() - 1]), None);
    }

    #[test]
    fn damaged_header_bytes_are_detected() {
        let b = Header::encode(
            &Metadata::new("t", "s"),
            Commit {
                seq: 1,
                records: 1,
                data_len: 9,
            },
        );
        for i in 0..META_OFFSET + 10 {
            if (SLOT0..SLOT0 + SLOT_LEN).contains(&i) {
                continue; // seq 1 lives in slot 1; damage in unused slot 0 changes nothing
            }
            let mut d = b.clone();
            d[i] ^= 0x40;
            let ok = match sniff(&d) {
                Sniff::Current => Header::decode(&d, Path::new("x")).is_err(),
                Sniff::DamagedMagic => true,
                Sniff::Legacy => false,
            };
            assert!(ok, "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn frames_align_tensor_data() {
        for start in 0..16u64 {
            for hl in [9usize, 13, 17, 21] {
                let pad = frame_pad(start, hl);
                assert!(pad < DATA_ALIGNMENT);
                assert_eq!(
                    (start as usize + FRAME_HEADER + pad + hl) % DATA_ALIGNMENT,
                    0
                );
            }
        }
    }
}
