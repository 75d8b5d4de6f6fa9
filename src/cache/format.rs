//! The cache file format, version 2 (version 1 is still read and appended to). All
//! integers little-endian.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "HMNCACHE"
//! 8       4     version (2; 1 in older files, see below)
//! 12      4     flags (0)
//! 16      4     meta_len: bytes of metadata at META_OFFSET (104)
//! 20      4     header_crc: CRC32 of bytes 0..20 followed by the metadata
//! 24      40    commit slot 0 ┐ each: u64 seq | u64 records | u64 data_len |
//! 64      40    commit slot 1 ┘       u64 index_at | u32 reserved | u32 CRC32 of the 36 bytes before
//! 104     …     metadata: token, source, etag, last_modified (u32 length + UTF-8 each),
//!               then u64 created (unix seconds), then (optional) u32 length + the
//!               source identity (`identity::SourceIdentity::encode`; length 0: none),
//!               then (optional) u32 length 8 + the u64 file nonce
//! data_start    zero padding up to a multiple of 64
//!               frames, back to back, up to data_start + data_len:
//!               record frame: u32 wire_len | u32 CRC32(wire) | u8 pad | pad zero bytes | wire
//!               index frame:  u32 body_len | u32 0 | u8 0x80|pad | pad zero bytes | body
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
//! The nonce was added after the identity the same way: a random number drawn by the
//! writer for every file it writes (`CacheWriter`), so that no two files share their
//! header CRC (bytes 20..24) even when token, source, identity and creation second are
//! equal. A reader compares the file's first 24 bytes with those it saw at open to tell
//! that the file was rewritten in place by another program (`cp other.cache
//! train.cache`); see `mapping.rs`. A file with a nonce always writes the identity
//! field, with length 0 when there is none, so the nonce's position is unambiguous;
//! older code reads that empty identity as "no identity" and ignores the nonce. A file
//! without a nonce (written before it) reads as nonce 0.
//! `pad` (0..7) places each record's tensor data at a multiple of 8 in the file, so a
//! zero-copy view of float64 data is aligned.
//!
//! **The offset index (version 2).** `index_at` is the file offset of the index frame
//! in force (0: none, which only a file of 0 records written by this library has). Its
//! body holds `capacity = body_len / 8` u64 entries, 8-aligned; entry `i < records` is
//! the file offset of record `i`'s frame in its low 48 bits and a 16-bit check
//! (`index_check(i, offset)`) in its high 16 bits, so a damaged entry is detected
//! instead of serving another record. Entries at `records..capacity` are spare.
//! Record `i` is therefore found with one read of the index and one of the frame: O(1),
//! two pages. Sequential readers skip index frames (one byte test per frame).
//! - A first population writes the index frame after the last record (the count is not
//!   known before) and publishes the file by rename.
//! - An append writes its frames after the committed end; then its entries go into the
//!   spare capacity of the index in force (in place: entries past the committed count
//!   are read by nobody), or, when that is full, a new index frame with twice the
//!   capacity is written after the new frames (the old entries copied, amortised O(1)
//!   per record; the old frame stays behind as dead bytes that readers skip). The data
//!   and the entries are fsynced before the commit slot that points at them is written.
//! - `compact`/publish may place the index frame first, right after the header: a remote
//!   reader then gets the commit (and `index_at`) with one ranged GET of the header and
//!   the index with a second (or one GET of `index_at + body` if it reads enough).
//!
//! **Version 1** has 32-byte slots (`seq | records | data_len | u32 reserved | u32 CRC`),
//! metadata at offset 88, and no index frames. It is read as before; random access over
//! it (and over the headerless legacy format) builds an in-memory index on first use
//! (8 bytes per record, one pass over the frame headers). `upgrade` rewrites such a file
//! in the current version by rename.

use crate::error::{Error, Result};
use crate::identity::SourceIdentity;
use crate::tensor::{parse_wire, WireHeader};

pub const MAGIC: [u8; 8] = *b"HMNCACHE";
/// The version this library writes.
pub const VERSION: u32 = 2;
/// The older version still read (and appended to in its own layout).
pub const VERSION_1: u32 = 1;
pub const SLOT0: usize = 24;
/// Commit slot length of the current version.
pub const SLOT_LEN: usize = 40;
/// Offset of the metadata in the current version.
pub const META_OFFSET: usize = SLOT0 + 2 * SLOT_LEN;
/// Commit slot length and metadata offset of version 1.
pub const SLOT_LEN_V1: usize = 32;
pub const META_OFFSET_V1: usize = SLOT0 + 2 * SLOT_LEN_V1;
/// Metadata larger than this is damage, not data (tokens and URLs are short).
pub const MAX_META_LEN: usize = 1 << 20;
pub const DATA_ALIGN: usize = 64;
pub const FRAME_HEADER: usize = 9;
/// Bytes of a file's head `Header::region_len` reads (magic, version, flags, meta_len).
pub const REGION_PREFIX: usize = 20;
/// Tensor data starts at a multiple of this in the file.
pub const DATA_ALIGNMENT: usize = 8;
/// Set in a frame's pad byte: the frame is an index frame, not a record.
pub const INDEX_FRAME: u8 = 0x80;
/// Bytes per index entry.
pub const INDEX_ENTRY: usize = 8;
/// Index entries hold file offsets below this (256 TiB).
pub const INDEX_OFFSET_MASK: u64 = (1 << 48) - 1;

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
    /// Drawn at random by the writer for each file it writes (whatever the caller set
    /// here); 0 in files written before nonces. See the module doc.
    pub nonce: u64,
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
        let id = self.identity.as_ref().map(SourceIdentity::encode);
        if id.is_some() || self.nonce != 0 {
            let b = id.unwrap_or_default();
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(&b);
        }
        if self.nonce != 0 {
            out.extend_from_slice(&8u32.to_le_bytes());
            out.extend_from_slice(&self.nonce.to_le_bytes());
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
        let mut rest = &bytes[8..];
        // The optional trailing fields: u32 length + bytes each.
        let mut next_field = || -> Option<Option<&[u8]>> {
            let Some(len) = rest.get(..4) else {
                return Some(None);
            };
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let field = rest.get(4..4usize.checked_add(len)?)?;
            rest = &rest[4 + len..];
            Some(Some(field))
        };
        let identity = next_field()?.and_then(SourceIdentity::decode);
        let nonce = match next_field()? {
            Some(b) => b.try_into().map_or(0, u64::from_le_bytes),
            None => 0,
        };
        Some(Metadata {
            token,
            source,
            etag,
            last_modified,
            created,
            identity,
            nonce,
        })
    }
}

/// A random non-zero nonce for a new file (`Metadata::nonce`): from the kernel's
/// generator, else (no `getrandom`) from the clock, the pid and a counter.
pub(crate) fn new_nonce() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    let mut v = u64::from_le_bytes(b);
    if n != b.len() as isize {
        use std::hash::{BuildHasher, Hasher};
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        v = h.finish();
    }
    v.max(1)
}

/// One commit: how much of the file is valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    pub seq: u64,
    pub records: u64,
    pub data_len: u64,
    /// File offset of the index frame in force; 0: no index (always 0 in version 1).
    pub index_at: u64,
}

impl Commit {
    /// The slot bytes in the current version.
    pub fn encode(&self) -> [u8; SLOT_LEN] {
        let mut b = [0u8; SLOT_LEN];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.records.to_le_bytes());
        b[16..24].copy_from_slice(&self.data_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.index_at.to_le_bytes());
        let crc = crc32fast::hash(&b[..SLOT_LEN - 4]);
        b[SLOT_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The slot bytes in `version`'s layout (`index_at` is not stored in version 1).
    pub fn encode_for(&self, version: u32) -> Vec<u8> {
        if version == VERSION_1 {
            let mut b = [0u8; SLOT_LEN_V1];
            b[0..8].copy_from_slice(&self.seq.to_le_bytes());
            b[8..16].copy_from_slice(&self.records.to_le_bytes());
            b[16..24].copy_from_slice(&self.data_len.to_le_bytes());
            let crc = crc32fast::hash(&b[..28]);
            b[28..32].copy_from_slice(&crc.to_le_bytes());
            b.to_vec()
        } else {
            self.encode().to_vec()
        }
    }

    fn decode(b: &[u8], version: u32) -> Option<Commit> {
        let n = slot_len(version);
        let crc = u32::from_le_bytes(b[n - 4..n].try_into().ok()?);
        if crc32fast::hash(&b[..n - 4]) != crc {
            return None;
        }
        let u = |r: std::ops::Range<usize>| u64::from_le_bytes(b[r].try_into().unwrap());
        Some(Commit {
            seq: u(0..8),
            records: u(8..16),
            data_len: u(16..24),
            index_at: if version == VERSION_1 { 0 } else { u(24..32) },
        })
    }

    /// File offset of the slot this commit is written to (alternating by sequence).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))] // used by tests only
    pub fn slot_offset(&self) -> u64 {
        self.slot_offset_for(VERSION)
    }

    /// `slot_offset` in `version`'s layout.
    pub fn slot_offset_for(&self, version: u32) -> u64 {
        (SLOT0 + (self.seq % 2) as usize * slot_len(version)) as u64
    }
}

/// Commit slot length of `version`.
pub fn slot_len(version: u32) -> usize {
    if version == VERSION_1 {
        SLOT_LEN_V1
    } else {
        SLOT_LEN
    }
}

/// Metadata offset of `version`.
pub fn meta_offset(version: u32) -> usize {
    SLOT0 + 2 * slot_len(version)
}

/// The parsed header of a current-format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub meta: Metadata,
    pub commit: Commit,
    /// Offset of the first record.
    pub data_start: u64,
    /// The file's format version (1 or 2).
    pub version: u32,
}

impl Header {
    /// Encodes the whole header region (up to `data_start`) with `commit` in its slot.
    pub fn encode(meta: &Metadata, commit: Commit) -> Vec<u8> {
        Self::encode_version(meta, commit, VERSION)
    }

    /// `encode` in an older layout: `VERSION_1` files are still appended to as they
    /// are (and tests make them).
    pub fn encode_version(meta: &Metadata, commit: Commit, version: u32) -> Vec<u8> {
        let meta_bytes = meta.encode();
        let meta_at = meta_offset(version);
        let data_start = data_start_for(meta_at, meta_bytes.len());
        let mut b = vec![0u8; data_start];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&version.to_le_bytes());
        b[16..20].copy_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
        b[meta_at..meta_at + meta_bytes.len()].copy_from_slice(&meta_bytes);
        let mut h = crc32fast::Hasher::new();
        h.update(&b[0..20]);
        h.update(&meta_bytes);
        b[20..24].copy_from_slice(&h.finalize().to_le_bytes());
        let at = commit.slot_offset_for(version) as usize;
        let slot = commit.encode_for(version);
        b[at..at + slot.len()].copy_from_slice(&slot);
        b
    }

    /// Bytes of the header region (up to `data_start`) given its first 20 bytes:
    /// what a stream reader must read before the first frame. Err for a version this
    /// library does not read or an implausible metadata length.
    pub fn region_len(first20: &[u8]) -> std::result::Result<usize, String> {
        if first20.len() < REGION_PREFIX {
            return Err(format!(
                "the header needs {REGION_PREFIX} bytes, {} remain",
                first20.len()
            ));
        }
        let u32_at = |at: usize| u32::from_le_bytes(first20[at..at + 4].try_into().unwrap());
        let version = u32_at(8);
        if version != VERSION && version != VERSION_1 {
            return Err(format!(
                "unsupported format version {version} (this library reads 1 and {VERSION})"
            ));
        }
        let meta_len = u32_at(16) as usize;
        if meta_len > MAX_META_LEN {
            return Err(format!("metadata length {meta_len} is implausible"));
        }
        Ok(data_start_for(meta_offset(version), meta_len))
    }

    /// Parses the header at the start of `bytes` (the file's first bytes; it must
    /// hold at least the metadata). The format knows no files: the caller adds the
    /// path or URL to the error (`Error::corrupt`).
    pub fn decode(bytes: &[u8]) -> std::result::Result<Header, String> {
        let bad = |d: String| d;
        if bytes.len() < META_OFFSET_V1 {
            return Err(bad(format!(
                "header is {} bytes, needs {META_OFFSET_V1}",
                bytes.len()
            )));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let version = u32_at(8);
        // An unknown version still has its checksum checked first: a flipped version
        // byte is damage, not a file from the future.
        let meta_at = meta_offset(if version == VERSION_1 {
            VERSION_1
        } else {
            VERSION
        });
        let meta_len = u32_at(16) as usize;
        if meta_len > MAX_META_LEN || meta_at + meta_len > bytes.len() {
            return Err(bad(format!(
                "metadata length {meta_len} does not fit the file"
            )));
        }
        let meta_bytes = &bytes[meta_at..meta_at + meta_len];
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[0..20]);
        h.update(meta_bytes);
        if h.finalize() != u32_at(20) {
            return Err(bad("header checksum mismatch".into()));
        }
        if version != VERSION && version != VERSION_1 {
            return Err(bad(format!(
                "unsupported format version {version} (this library reads 1 and {VERSION})"
            )));
        }
        let meta = Metadata::decode(meta_bytes).ok_or_else(|| bad("malformed metadata".into()))?;
        // Decode from a copy: another process may be writing a slot of a mapped file
        // right now, and the CRC and the fields must come from the same bytes.
        let n = slot_len(version);
        let mut copy = [0u8; 2 * SLOT_LEN];
        copy[..2 * n].copy_from_slice(&bytes[SLOT0..SLOT0 + 2 * n]);
        let slots = [
            Commit::decode(&copy[..n], version),
            Commit::decode(&copy[n..2 * n], version),
        ];
        let commit = slots
            .into_iter()
            .flatten()
            .max_by_key(|c| c.seq)
            .ok_or_else(|| bad("both commit slots are damaged".into()))?;
        Ok(Header {
            meta,
            commit,
            data_start: data_start_for(meta_at, meta_len) as u64,
            version,
        })
    }
}

/// True if a commit slot holds bytes (it is not the never-written all-zero slot) that
/// fail their CRC: damage, or a slot another process is writing at this moment.
pub fn slot_in_flux(bytes: &[u8]) -> bool {
    let version = match bytes.get(8..12) {
        Some(v) if u32::from_le_bytes(v.try_into().unwrap()) == VERSION_1 => VERSION_1,
        _ => VERSION,
    };
    let n = slot_len(version);
    (0..2).any(|i| {
        let at = SLOT0 + i * n;
        bytes.get(at..at + n).is_some_and(|b| {
            let mut copy = [0u8; SLOT_LEN];
            copy[..n].copy_from_slice(b);
            copy.iter().any(|&x| x != 0) && Commit::decode(&copy[..n], version).is_none()
        })
    })
}

fn data_start_for(meta_at: usize, meta_len: usize) -> usize {
    (meta_at + meta_len).div_ceil(DATA_ALIGN) * DATA_ALIGN
}

/// What the first bytes of a file say about its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    Current,
    /// No magic and nothing of our header: the original headerless format
    /// (concatenated records), to be walked record by record.
    Legacy,
    /// A file that was a cache of the current format (or of version 1) whose head is
    /// damaged: most of the magic, or with the magic gone, the rest of our header
    /// (see `sniff`). Damage, never legacy records. The reason, for messages.
    Damaged(&'static str),
}

/// Bytes of a file's head `sniff` looks at: the fixed header of either version and
/// (usually) all its metadata. Pass at least this much where the file has it.
pub const SNIFF_LEN: usize = 4096;

/// Classifies a file by its first bytes (`first`: up to `SNIFF_LEN` of them; fewer
/// only when the file is that short). A head that is not the magic is still a cache's
/// when
/// - five or more of the magic's eight bytes are there (a legacy file starts with a
///   dtype code 0..4, never with 'H'; five matching bytes cannot happen by chance in a
///   wire record header);
/// - or our header follows: a commit slot of either version's layout, not all zero,
///   whose CRC holds, or the header checksum holding once the magic is put back (the
///   magic, the version and the flags zeroed or overwritten; the chance that a legacy
///   file's bytes pass either check is 2^-32 per check);
/// - or it starts with nine zero bytes: a record header of nine zero bytes is a
///   float32 scalar without its 4 bytes, which no writer produces (`crate::tensor`),
///   so a head zeroed beyond the slots (more than 104 bytes) is damage too.
pub fn sniff(first: &[u8]) -> Sniff {
    if first.len() >= 8 && first[..8] == MAGIC {
        return Sniff::Current;
    }
    let matching = first
        .iter()
        .zip(MAGIC.iter())
        .filter(|(a, b)| a == b)
        .count();
    if matching >= 5 {
        Sniff::Damaged("damaged magic bytes (most of the cache format's magic is there)")
    } else if first.get(..crate::tensor::wire_header_len(0)) == Some(&[0u8; 9][..]) {
        Sniff::Damaged("it starts with nine zero bytes (a zeroed head), which no record is")
    } else if has_commit_slot(first) {
        Sniff::Damaged("its magic bytes are gone, but a commit slot of the cache header is intact")
    } else if header_checksum_holds_without_magic(first) {
        Sniff::Damaged("its magic bytes are gone, but the cache header's checksum holds")
    } else {
        Sniff::Legacy
    }
}

/// A commit slot at its place in either version's layout: not all zero, CRC valid.
fn has_commit_slot(b: &[u8]) -> bool {
    [VERSION, VERSION_1].into_iter().any(|version| {
        let n = slot_len(version);
        (0..2).any(|i| {
            let at = SLOT0 + i * n;
            b.get(at..at + n)
                .is_some_and(|s| s.iter().any(|&x| x != 0) && Commit::decode(s, version).is_some())
        })
    })
}

/// The header checksum (bytes 0..20 then the metadata) holds with the magic put back
/// at 0..8, and with the version and flags put back too where they read zero.
fn header_checksum_holds_without_magic(b: &[u8]) -> bool {
    let Some(fixed) = b.get(..24) else {
        return false;
    };
    let u32_at = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().unwrap());
    let (version, flags, meta_len, stored) = (u32_at(8), u32_at(12), u32_at(16), u32_at(20));
    let versions: &[u32] = match version {
        0 => &[VERSION, VERSION_1],
        v if v == VERSION || v == VERSION_1 => &[v],
        _ => return false,
    };
    versions.iter().any(|&v| {
        let at = meta_offset(v);
        let Some(meta) = b.get(at..at + meta_len as usize) else {
            return false;
        };
        let mut h = crc32fast::Hasher::new();
        h.update(&MAGIC);
        h.update(&v.to_le_bytes());
        h.update(&flags.to_le_bytes());
        h.update(&fixed[16..20]);
        h.update(meta);
        h.finalize() == stored
    })
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

/// A parsed frame header (the 9 bytes at a frame's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A record: its wire bytes are at `wire_at..wire_at + wire_len` from the frame's
    /// start, with CRC32 `crc`.
    Record {
        wire_at: usize,
        wire_len: usize,
        crc: u32,
    },
    /// An index frame (version 2): its entries are at `body_at..body_at + body_len`.
    Index { body_at: usize, body_len: usize },
}

impl Frame {
    /// Bytes from the frame's start to the next frame.
    pub fn len(&self) -> u64 {
        match *self {
            Frame::Record {
                wire_at, wire_len, ..
            } => (wire_at + wire_len) as u64,
            Frame::Index { body_at, body_len } => (body_at + body_len) as u64,
        }
    }
}

impl Frame {
    /// Zero bytes between the frame header and the record's wire bytes (or the index
    /// body): what a stream reader skips.
    pub fn pad_len(&self) -> usize {
        match *self {
            Frame::Record { wire_at, .. } => wire_at - FRAME_HEADER,
            Frame::Index { body_at, .. } => body_at - FRAME_HEADER,
        }
    }
}

/// The frame header at the start of `frame` flags an index frame (version 2): the one
/// byte test a sequential reader makes per frame before parsing it.
#[inline(always)]
pub fn flags_index_frame(frame: &[u8]) -> bool {
    frame
        .get(..FRAME_HEADER)
        .is_some_and(|fh| fh[FRAME_HEADER - 1] & INDEX_FRAME != 0)
}

/// File offset of the body of an index frame that starts at `frame_start`.
pub fn index_body_at(frame_start: u64) -> u64 {
    frame_start + (FRAME_HEADER + frame_pad(frame_start, 0)) as u64
}

/// Parses a frame header. `index_frames`: the file's version has index frames (a pad
/// byte with `INDEX_FRAME` set is then an index frame, else damage). Lengths are as the
/// header claims: the caller checks they fit.
pub fn parse_frame(
    fh: &[u8; FRAME_HEADER],
    index_frames: bool,
) -> std::result::Result<Frame, String> {
    let len = u32::from_le_bytes(fh[0..4].try_into().unwrap()) as usize;
    let word = u32::from_le_bytes(fh[4..8].try_into().unwrap());
    let pad_byte = fh[8];
    if index_frames && pad_byte & INDEX_FRAME != 0 {
        let pad = (pad_byte & !INDEX_FRAME) as usize;
        if pad >= DATA_ALIGNMENT || word != 0 || len % INDEX_ENTRY != 0 {
            return Err(format!(
                "invalid index frame header (pad {pad}, reserved {word}, length {len})"
            ));
        }
        return Ok(Frame::Index {
            body_at: FRAME_HEADER + pad,
            body_len: len,
        });
    }
    let pad = pad_byte as usize;
    if pad >= DATA_ALIGNMENT {
        return Err(format!("invalid frame padding {pad}"));
    }
    Ok(Frame::Record {
        wire_at: FRAME_HEADER + pad,
        wire_len: len,
        crc: word,
    })
}

/// A record frame that passed `check_record_frame`: its wire bytes are at
/// `wire_at..wire_at + wire_len` from the frame's start, their CRC32 is `crc`, and
/// `wire` is the parsed record (whose length is `wire_len`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordFrame {
    pub wire_at: usize,
    pub wire_len: usize,
    pub crc: u32,
    pub wire: WireHeader,
}

impl RecordFrame {
    /// Bytes from the frame's start to the next frame.
    pub fn frame_len(&self) -> usize {
        self.wire_at + self.wire_len
    }
}

/// Checks the record frame at the start of `bytes` (which may run on past it): the
/// frame header (a record, not an index frame or bad padding), its bounds inside
/// `bytes`, the CRC of its wire bytes, the wire record itself (`parse_wire`, its
/// dimensions into `shape`) and that the record is exactly as long as the frame says.
/// The one check of a record frame: every reader of frames calls it. Allocates nothing
/// once `shape` has capacity; never panics, whatever `bytes` hold.
pub fn check_record_frame(
    bytes: &[u8],
    shape: &mut Vec<usize>,
) -> std::result::Result<RecordFrame, String> {
    check_record_frame_with(bytes, shape, |b, at, len| {
        Some(crc32fast::hash(&b[at..at + len]))
    })
}

/// `check_record_frame` with the hashing left to the caller: `crc(bytes, wire_at,
/// wire_len)` returns the CRC32 of `bytes[wire_at..wire_at + wire_len]` (a hasher that
/// prefetches, say), or None to skip the CRC check when the caller hashes a copy of the
/// wire bytes itself and compares it with `RecordFrame::crc` (hash once).
#[inline(always)]
pub fn check_record_frame_with(
    bytes: &[u8],
    shape: &mut Vec<usize>,
    crc: impl FnOnce(&[u8], usize, usize) -> Option<u32>,
) -> std::result::Result<RecordFrame, String> {
    let Some(fh) = bytes.first_chunk::<FRAME_HEADER>() else {
        return Err(format!(
            "frame header needs {FRAME_HEADER} bytes, {} remain",
            bytes.len()
        ));
    };
    // Index frames are parsed as such, so that the message names them.
    let (wire_at, wire_len, stored) = match parse_frame(fh, true)? {
        Frame::Record {
            wire_at,
            wire_len,
            crc,
        } => (wire_at, wire_len, crc),
        Frame::Index { .. } => return Err("an index frame where a record belongs".into()),
    };
    if wire_at > bytes.len() || wire_len > bytes.len() - wire_at {
        return Err(format!(
            "frame claims {wire_len} bytes, {} remain",
            bytes.len().saturating_sub(wire_at)
        ));
    }
    if crc(bytes, wire_at, wire_len).is_some_and(|c| c != stored) {
        return Err("CRC mismatch".into());
    }
    let wire = one_whole_record(&bytes[wire_at..wire_at + wire_len], shape)?;
    Ok(RecordFrame {
        wire_at,
        wire_len,
        crc: stored,
        wire,
    })
}

/// The wire part of `check_record_frame`, for a decoder that reads a frame's header
/// and its wire bytes apart (a stream): `wire` (exactly the frame's wire bytes) has
/// the CRC32 `crc` the frame header stores, parses, and is one whole record.
pub fn check_record_wire(
    wire: &[u8],
    crc: u32,
    shape: &mut Vec<usize>,
) -> std::result::Result<WireHeader, String> {
    if crc32fast::hash(wire) != crc {
        return Err("CRC mismatch".into());
    }
    one_whole_record(wire, shape)
}

/// `wire` parses and is exactly one record.
#[inline(always)]
fn one_whole_record(
    wire: &[u8],
    shape: &mut Vec<usize>,
) -> std::result::Result<WireHeader, String> {
    let h = parse_wire(wire, shape).map_err(|e| e.to_string())?;
    if h.record_len() != wire.len() {
        return Err(format!(
            "record is {} bytes, frame says {}",
            h.record_len(),
            wire.len()
        ));
    }
    Ok(h)
}

/// The metadata length a header region (from `Header::encode`) declares.
pub fn declared_meta_len(header: &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(header.get(16..20)?.try_into().ok()?) as usize)
}

/// Writes the header of an index frame of `capacity` entries starting at
/// `frame_start` (its body, 8-aligned in the file, follows).
pub fn index_frame_header(frame_start: u64, capacity: u64, out: &mut Vec<u8>) -> Result<()> {
    let body_len = capacity
        .checked_mul(INDEX_ENTRY as u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "an index of {capacity} records exceeds the format's 4 GiB index frame"
            ))
        })?;
    let pad = frame_pad(frame_start, 0);
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.push(INDEX_FRAME | pad as u8);
    out.extend(std::iter::repeat(0u8).take(pad));
    Ok(())
}

/// The 16-bit check stored with index entry `i` pointing at `offset`.
pub fn index_check(i: u64, offset: u64) -> u64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&i.to_le_bytes());
    h.update(&offset.to_le_bytes());
    (h.finalize() & 0xffff) as u64
}

/// Index entry `i` for a frame at `offset`.
pub fn index_entry(i: u64, offset: u64) -> u64 {
    debug_assert!(offset <= INDEX_OFFSET_MASK);
    offset | index_check(i, offset) << 48
}

/// The frame offset in index entry `i`, or None when its check fails.
pub fn entry_offset(i: u64, entry: u64) -> Option<u64> {
    let offset = entry & INDEX_OFFSET_MASK;
    (entry >> 48 == index_check(i, offset)).then_some(offset)
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
            nonce: 0,
        };
        let c1 = Commit {
            seq: 1,
            records: 3,
            data_len: 100,
            ..Commit::default()
        };
        let mut b = Header::encode(&meta, c1);
        assert_eq!(b.len() % DATA_ALIGN, 0);
        let h = Header::decode(&b).unwrap();
        assert_eq!((h.meta, h.commit), (meta.clone(), c1));
        let c2 = Commit {
            seq: 2,
            records: 5,
            data_len: 180,
            ..Commit::default()
        };
        let at = c2.slot_offset() as usize;
        b[at..at + SLOT_LEN].copy_from_slice(&c2.encode());
        assert_eq!(Header::decode(&b).unwrap().commit, c2);
        b[at + 9] ^= 1; // torn newest slot: previous commit stays in force
        assert_eq!(Header::decode(&b).unwrap().commit, c1);
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
    fn the_nonce_is_an_optional_field_after_the_identity() {
        let mut meta = Metadata::new("t", "csv:a.csv");
        let plain = meta.encode();
        meta.nonce = new_nonce();
        assert_ne!(meta.nonce, new_nonce(), "two files, two nonces");
        // Without an identity, an empty identity field keeps the nonce's place.
        let with = meta.encode();
        assert_eq!(&with[..plain.len()], &plain[..], "appended after created");
        assert_eq!(&with[plain.len()..plain.len() + 4], &[0; 4]);
        assert_eq!(Metadata::decode(&with), Some(meta.clone()));
        meta.identity = Some(crate::identity::SourceIdentity::url("http://h/x", "e", ""));
        let both = meta.encode();
        assert_eq!(Metadata::decode(&both), Some(meta.clone()));
        // What the previous release read from it: the identity, trailing bytes ignored.
        let id_end = both.len() - 12;
        let old = Metadata::decode(&both[..id_end]).unwrap();
        assert_eq!((old.identity, old.nonce), (meta.identity.clone(), 0));
        // A nonce cut short is malformed; a nonce field of another length reads as 0.
        assert_eq!(Metadata::decode(&both[..both.len() - 1]), None);
        let mut odd = both[..id_end].to_vec();
        odd.extend_from_slice(&[4, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(Metadata::decode(&odd).unwrap().nonce, 0);
        // The header CRC covers it: same fields, another nonce, other first 24 bytes.
        let c = Commit::default();
        let a = Header::encode(&meta, c);
        meta.nonce = new_nonce();
        assert_ne!(a[..24], Header::encode(&meta, c)[..24]);
    }

    #[test]
    fn version_1_headers_still_decode() {
        let meta = Metadata::new("t", "s");
        let c = Commit {
            seq: 3,
            records: 2,
            data_len: 40,
            index_at: 0,
        };
        let b = Header::encode_version(&meta, c, VERSION_1);
        assert_eq!(&b[8..12], &1u32.to_le_bytes());
        let h = Header::decode(&b).unwrap();
        assert_eq!((h.version, h.commit, h.meta), (VERSION_1, c, meta));
        assert_eq!(h.data_start as usize, b.len());
        assert_eq!(Header::region_len(&b[..20]).unwrap(), b.len());
        assert!(
            Header::region_len(&b[..REGION_PREFIX - 1]).is_err(),
            "short: no panic"
        );
        assert_eq!(c.slot_offset_for(VERSION_1), (SLOT0 + SLOT_LEN_V1) as u64);
    }

    #[test]
    fn index_entries_detect_damage_and_frames_parse() {
        for (i, off) in [(0u64, 64u64), (7, 4096), (1 << 40, (1 << 47) + 3)] {
            let e = index_entry(i, off);
            assert_eq!(entry_offset(i, e), Some(off));
            assert_eq!(entry_offset(i + 1, e), None, "entry of another index");
            let undetected = (0..64).filter(|b| entry_offset(i, e ^ (1 << b)).is_some());
            assert_eq!(undetected.count(), 0, "a single bit flip passed the check");
        }
        let mut out = Vec::new();
        index_frame_header(101, 5, &mut out).unwrap();
        let fh: [u8; FRAME_HEADER] = out[..FRAME_HEADER].try_into().unwrap();
        let f = parse_frame(&fh, true).unwrap();
        assert_eq!(
            f,
            Frame::Index {
                body_at: out.len(),
                body_len: 40
            }
        );
        assert_eq!((101 + out.len()) % DATA_ALIGNMENT, 0);
        assert!(
            parse_frame(&fh, false).is_err(),
            "no index frames in version 1"
        );
        assert!(index_frame_header(0, 1 << 29, &mut Vec::new()).is_err());
    }

    #[test]
    fn damaged_header_bytes_are_detected() {
        let b = Header::encode(
            &Metadata::new("t", "s"),
            Commit {
                seq: 1,
                records: 1,
                data_len: 9,
                ..Commit::default()
            },
        );
        for i in 0..META_OFFSET + 10 {
            if (SLOT0..SLOT0 + SLOT_LEN).contains(&i) {
                continue; // seq 1 lives in slot 1; damage in unused slot 0 changes nothing
            }
            let mut d = b.clone();
            d[i] ^= 0x40;
            let ok = match sniff(&d) {
                Sniff::Current => Header::decode(&d).is_err(),
                Sniff::Damaged(_) => true,
                Sniff::Legacy => false,
            };
            assert!(ok, "flip at byte {i} went unnoticed");
        }
    }

    /// A header of `version` with one commit (seq 1, as a first population writes),
    /// followed by a few frame bytes.
    fn cache_head(version: u32) -> Vec<u8> {
        let commit = Commit {
            seq: 1,
            records: 3,
            data_len: 300,
            index_at: 0,
        };
        let mut b =
            Header::encode_version(&Metadata::new("tok", "csv:/d/train.csv"), commit, version);
        b.extend_from_slice(&[7u8; 64]);
        b
    }

    #[test]
    fn a_cache_head_zeroed_or_without_its_magic_is_damaged_not_legacy() {
        for version in [VERSION, VERSION_1] {
            let head = cache_head(version);
            assert_eq!(sniff(&head), Sniff::Current);
            for (from, to) in [(0, 8), (0, 16), (0, 24), (0, 64), (0, 200), (3, 8), (0, 4)] {
                let mut d = head.clone();
                d[from..to].fill(0);
                assert!(
                    matches!(sniff(&d), Sniff::Damaged(_)),
                    "v{version}, bytes {from}..{to} zeroed: {:?}",
                    sniff(&d)
                );
            }
            for i in 0..8 {
                let mut d = head.clone();
                d[i] = 0;
                assert!(matches!(sniff(&d), Sniff::Damaged(_)), "byte {i} zeroed");
                d[..8].copy_from_slice(b"XXXXXXXX");
                assert!(matches!(sniff(&d), Sniff::Damaged(_)), "magic overwritten");
            }
        }
    }

    #[test]
    fn legacy_bodies_are_sniffed_as_legacy() {
        use crate::tensor::{DType, Tensor};
        // Records of every dtype and of 0..4 dimensions, the values a counter: no
        // commit slot, checksum or magic is found in them by chance.
        for seed in 0..2000usize {
            let mut body = Vec::new();
            for r in 0..3 {
                let dtype = DType::from_code(((seed + r) % 5) as u8).unwrap();
                let shape: Vec<usize> = (0..(seed + r) % 5)
                    .map(|d| 1 + (seed * 7 + d) % 6)
                    .collect();
                let n = crate::tensor::data_len_for(dtype, &shape).unwrap();
                let data = (0..n).map(|j| (seed * 31 + r * 17 + j) as u8).collect();
                body.extend(Tensor::new(dtype, shape, data).to_wire().unwrap());
            }
            assert_eq!(sniff(&body), Sniff::Legacy, "seed {seed}");
        }
        // Zero-valued data behind a valid record header is still legacy.
        let zeros = Tensor::new(DType::UInt8, vec![100], vec![0; 100]);
        assert_eq!(sniff(&zeros.to_wire().unwrap()), Sniff::Legacy);
    }

    /// A record frame as the writer lays it out at `frame_start`, and its wire bytes.
    fn record_frame(frame_start: u64, t: &crate::tensor::Tensor) -> (Vec<u8>, Vec<u8>) {
        let wire = t.to_wire().unwrap();
        let hl = crate::tensor::wire_header_len(t.shape.len());
        let mut frame = Vec::new();
        frame_header(
            frame_start,
            hl,
            wire.len(),
            crc32fast::hash(&wire),
            &mut frame,
        );
        frame.extend_from_slice(&wire);
        (frame, wire)
    }

    /// A fuzz loop over the one frame check (a bounded, deterministic run of what
    /// `fuzz/fuzz_targets/record_frame.rs` does without end): valid frames of every
    /// dtype and rank are accepted with their own bounds; arbitrary bytes and the valid
    /// frames cut, grown, shifted and with bytes or bits changed never panic (a read out
    /// of bounds would), and a changed frame is accepted only when the record it yields
    /// is the one that was written (only its unhashed pad bytes can change unseen).
    #[test]
    fn the_record_frame_check_accepts_exactly_the_valid_frames() {
        use crate::tensor::{DType, Tensor};
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut shape = Vec::new();
        let (mut accepted_changed, mut checked) = (0, 0);
        for case in 0..3000u64 {
            let dtype = DType::from_code((rand() % 5) as u8).unwrap();
            let dims: Vec<usize> = (0..rand() % 4).map(|_| (rand() % 5) as usize).collect();
            let n = crate::tensor::data_len_for(dtype, &dims).unwrap();
            let data = (0..n).map(|_| rand() as u8).collect();
            let t = Tensor::new(dtype, dims.clone(), data);
            let (frame, wire) = record_frame(rand() % 64, &t);
            // Valid, alone or with more bytes after it.
            let mut tail = frame.clone();
            tail.extend((0..rand() % 16).map(|_| rand() as u8));
            for bytes in [&frame[..], &tail[..]] {
                let f = check_record_frame(bytes, &mut shape).expect("a valid frame");
                assert_eq!(f.frame_len(), frame.len(), "case {case}");
                assert_eq!(&bytes[f.wire_at..f.frame_len()], &wire[..]);
                assert_eq!(f.crc, crc32fast::hash(&wire));
                assert_eq!((f.wire.dtype, &shape), (dtype, &dims));
            }
            // A frame whose CRC holds over more bytes than its record: refused.
            let mut long = wire.clone();
            long.extend((0..1 + rand() % 8).map(|_| rand() as u8));
            let mut bad = Vec::new();
            frame_header(0, 0, long.len(), crc32fast::hash(&long), &mut bad);
            bad.extend_from_slice(&long);
            assert!(check_record_frame(&bad, &mut shape).is_err(), "case {case}");
            // Cut anywhere: refused.
            let cut = (rand() as usize) % frame.len();
            assert!(check_record_frame(&frame[..cut], &mut shape).is_err());
            // Changed: bytes overwritten, bits flipped, a length or pad byte rewritten.
            for _ in 0..8 {
                let mut d = frame.clone();
                for _ in 0..1 + rand() % 3 {
                    let at = (rand() as usize) % d.len();
                    match rand() % 3 {
                        0 => d[at] ^= 1 << (rand() % 8),
                        1 => d[at] = rand() as u8,
                        _ => d[(rand() as usize) % FRAME_HEADER] = rand() as u8,
                    }
                }
                if d == frame {
                    continue;
                }
                checked += 1;
                if let Ok(f) = check_record_frame(&d, &mut shape) {
                    accepted_changed += 1;
                    assert_eq!(
                        &d[f.wire_at..f.frame_len()],
                        &wire[..],
                        "case {case}: {d:?}"
                    );
                    assert_eq!(d[..FRAME_HEADER], frame[..FRAME_HEADER]);
                }
            }
            // Arbitrary bytes, some behind a plausible frame header.
            let mut junk: Vec<u8> = (0..rand() % 80).map(|_| rand() as u8).collect();
            if junk.len() >= FRAME_HEADER && rand() % 2 == 0 {
                let len = (junk.len() - FRAME_HEADER) as u32;
                junk[..4].copy_from_slice(&len.to_le_bytes());
                junk[8] = 0;
            }
            if let Ok(f) = check_record_frame(&junk, &mut shape) {
                assert!(f.frame_len() <= junk.len());
                assert_eq!(crc32fast::hash(&junk[f.wire_at..f.frame_len()]), f.crc);
            }
        }
        // Only changes to the pad bytes (no hash covers them) pass.
        assert!(checked > 10_000 && accepted_changed < checked / 10);
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
