//! Self-describing records and the source that produces them.
//!
//! Record `i` of dataset version `v` carries, in its first 12 data bytes, `v`, `i`
//! and a CRC32 of everything else it holds (the rest of its bytes, its dtype and its
//! shape); the rest is a pseudo-random payload drawn from `(v, i)`. A checker that
//! knows which version and index it asked for regenerates the whole record and
//! compares every byte; a record that differs is classified by what it claims to be.
//! The record's length, dtype and shape depend only on `(layout, i)`: versions that
//! share a layout give files whose frames line up byte for byte.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harmonics_dataset::{
    DType, Producer, Result, SourceIdentity, SourceKind, Tensor, TensorRef, TokenFn,
};

use super::plan::mix;

/// Bytes at the head of every record's data: version, index, CRC of the rest.
const HEAD: usize = 12;

/// The dtype and shape of record `index` under `layout`.
fn shape_of(layout: u64, index: u64) -> (DType, Vec<usize>, usize) {
    let h = mix(layout ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let bytes = 8 * (2 + (h % 48) as usize); // 16..=392 bytes of data
    match (h >> 8) % 4 {
        0 => (DType::UInt8, vec![bytes], bytes),
        1 => (DType::UInt8, vec![2, bytes / 2], bytes),
        2 => (DType::Int32, vec![bytes / 4], bytes),
        _ => (DType::Float64, vec![bytes / 8], bytes),
    }
}

fn checksum(dtype: DType, shape: &[usize], rest: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(rest);
    h.update(&[dtype.code()]);
    for d in shape {
        h.update(&(*d as u64).to_le_bytes());
    }
    h.finalize()
}

/// Record `index` of version `version` under `layout`.
pub fn record(version: u32, index: u64, layout: u64) -> Tensor {
    let (dtype, shape, bytes) = shape_of(layout, index);
    let mut data = vec![0u8; bytes];
    let mut state = mix(((version as u64) << 40) ^ index ^ 0x5eed);
    for chunk in data[HEAD..].chunks_mut(8) {
        state = mix(state);
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let crc = checksum(dtype, &shape, &data[HEAD..]);
    data[0..4].copy_from_slice(&version.to_le_bytes());
    data[4..8].copy_from_slice(&(index as u32).to_le_bytes());
    data[8..12].copy_from_slice(&crc.to_le_bytes());
    Tensor::new(dtype, shape, data)
}

/// What a record received in place of the expected one is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wrong {
    /// An intact record of another dataset version.
    OtherVersion,
    /// An intact record of the right version at another index.
    OtherIndex,
    /// Bytes that are no record at all (altered, torn, zeroed, garbage).
    Altered,
    /// A record served at an index past the end of the source.
    PastEnd,
    /// After an open or refresh, `len()` is not the source's record count.
    Size,
}

impl Wrong {
    pub fn name(self) -> &'static str {
        match self {
            Wrong::OtherVersion => "other-version",
            Wrong::OtherIndex => "other-index",
            Wrong::Altered => "altered",
            Wrong::PastEnd => "past-end",
            Wrong::Size => "wrong-size",
        }
    }
}

/// Checks `got` against record `index` of `version`: None when exact.
pub fn check(got: &Tensor, version: u32, index: u64, layout: u64) -> Option<Wrong> {
    let want = record(version, index, layout);
    if *got == want {
        return None;
    }
    Some(classify(got, version, index))
}

/// Why `got` is not record `index` of `version`.
fn classify(got: &Tensor, version: u32, index: u64) -> Wrong {
    match claimed(got) {
        None => Wrong::Altered,
        Some((v, _)) if v != version => Wrong::OtherVersion,
        Some((_, i)) if i != index => Wrong::OtherIndex,
        Some(_) => Wrong::Altered,
    }
}

/// The version and index a record claims, if its checksum holds (for a reader that
/// does not know which version a file holds: the first record tells).
pub fn claimed(got: &Tensor) -> Option<(u32, u64)> {
    if got.data.len() < HEAD {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes(got.data[at..at + 4].try_into().unwrap());
    (checksum(got.dtype, &got.shape, &got.data[HEAD..]) == word(8))
        .then(|| (word(0), word(4) as u64))
}

/// How a source says who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A token `v<version>`, no fingerprint: the size rule (appends) applies.
    Token,
    /// No token; a fingerprint `v<version>-n<records>`.
    Fingerprint,
    /// Both.
    Both,
}

impl Identity {
    pub fn token(self, version: u32) -> Option<String> {
        (self != Identity::Fingerprint).then(|| format!("v{version}"))
    }
    /// The token callback of a source of `version` (None without a token).
    pub fn token_fn(self, version: u32) -> Option<TokenFn> {
        self.token(version).map(|t| {
            let f: TokenFn = Box::new(move || Ok(t.clone()));
            f
        })
    }
    pub fn fingerprint(self, version: u32, n: usize) -> Option<String> {
        (self != Identity::Token).then(|| format!("v{version}-n{n}"))
    }
}

/// The version a cache header names: its token `v<k>`, else its fingerprint
/// `v<k>-n<n>`; None for a file that names none (legacy, or foreign).
pub fn version_named(token: &str, fingerprint: Option<&str>) -> Option<u32> {
    let parse = |s: &str| s.strip_prefix('v')?.split('-').next()?.parse().ok();
    parse(token).or_else(|| fingerprint.and_then(parse))
}

/// The records `0..n` of one version, in order, cycling; `n` may grow while a
/// `DiskCacheProducer` owns the source (an appending writer's dataset grows).
pub struct SoakSource {
    version: u32,
    n: Arc<AtomicUsize>,
    layout: u64,
    identity: Identity,
    cursor: u64,
    cur: Tensor,
    /// Time spent per record handed out: widens the window in which a writer dies.
    delay: Duration,
}

impl SoakSource {
    pub fn new(version: u32, n: Arc<AtomicUsize>, layout: u64, identity: Identity) -> SoakSource {
        SoakSource {
            version,
            n,
            layout,
            identity,
            cursor: 0,
            cur: record(version, 0, layout),
            delay: Duration::ZERO,
        }
    }

    pub fn fixed(version: u32, n: usize, layout: u64, identity: Identity) -> SoakSource {
        Self::new(version, Arc::new(AtomicUsize::new(n)), layout, identity)
    }

    pub fn slow(mut self, delay: Duration) -> SoakSource {
        self.delay = delay;
        self
    }

    fn len(&self) -> usize {
        self.n.load(Ordering::SeqCst)
    }
}

impl Producer for SoakSource {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let n = self.len() as u64;
        let i = self.cursor % n;
        self.cursor = (i + 1) % n;
        self.cur = record(self.version, i, self.layout);
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        Ok(self.cur.as_ref())
    }
    fn size(&mut self) -> Result<usize> {
        Ok(self.len())
    }
    fn skip(&mut self, k: usize) -> Result<()> {
        self.cursor = (self.cursor + k as u64) % self.len() as u64;
        Ok(())
    }
    fn source(&self) -> String {
        format!("soak:v{}", self.version)
    }
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        Ok(self
            .identity
            .fingerprint(self.version, self.len())
            .map(|fp| SourceIdentity::new(SourceKind::Foreign, fp)))
    }
}
