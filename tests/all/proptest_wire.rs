//! Hostile input for the wire decoder and the cache reader (proptest).
//!
//! The binary's counting global allocator measures, per thread, the peak bytes allocated during
//! one call: decoding must never allocate more than the input actually holds (plus the
//! shape vector), whatever the header claims. Valid tensors round-trip exactly.

use std::io::Read;

use harmonics_dataset::cache::{CacheLock, CacheReader, CacheWriter, Commit, Header, Metadata};
use harmonics_dataset::tensor::{
    data_len_for, decode_wire, parse_wire, read_tensor, read_wire, write_tensor, MAX_NDIMS,
};
use harmonics_dataset::{DType, Error, Tensor};
use proptest::prelude::*;

/// Runs `f` and returns its result and the peak of bytes it had allocated at once (on
/// this thread: the binary's counting allocator, `crate::alloc_count`).
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (r, usage) = crate::alloc_count::measure(f);
    (r, usage.peak)
}

const SHAPE_BYTES: usize = MAX_NDIMS * std::mem::size_of::<usize>();
/// An error's message is allocated too (one `String` of fixed size, whatever the input
/// claims): the longest, the unknown-dtype one that spells out the wire format, is
/// about 480 bytes.
const MESSAGE: usize = 640;

fn dtype() -> impl Strategy<Value = DType> {
    (0u8..5).prop_map(|c| DType::from_code(c).unwrap())
}

/// A valid tensor: its bytes match its shape (small dimensions, or a zero dimension
/// among large ones: no data).
fn tensor() -> impl Strategy<Value = Tensor> {
    let shape = prop_oneof![
        prop::collection::vec(0usize..7, 0..4),
        (
            prop::collection::vec(1usize..100_000, 0..5),
            any::<prop::sample::Index>()
        )
            .prop_map(|(mut s, i)| {
                s.insert(i.index(s.len() + 1), 0);
                s
            }),
    ];
    (dtype(), shape)
        .prop_flat_map(|(d, s)| {
            let n = data_len_for(d, &s).unwrap();
            (Just(d), Just(s), prop::collection::vec(any::<u8>(), n))
        })
        .prop_map(|(d, s, data)| Tensor::new(d, s, data))
}

/// A record header with arbitrary claims followed by arbitrary bytes: mostly
/// plausible dtype and ndims, any dimension and length values.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..7,
        prop_oneof![0u32..6, any::<u32>()],
        prop::collection::vec(any::<u32>(), 0..6),
        prop_oneof![0u32..400, any::<u32>()],
        prop::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(|(d, nd, dims, nbytes, tail)| {
            let mut b = vec![d];
            b.extend_from_slice(&nd.to_le_bytes());
            for x in dims.iter().take((nd as usize).min(6)) {
                b.extend_from_slice(&x.to_le_bytes());
            }
            b.extend_from_slice(&nbytes.to_le_bytes());
            b.extend_from_slice(&tail);
            b
        })
}

fn hostile() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..600), near_valid()]
}

/// A reader that hands out its bytes in small irregular pieces, then EOF.
struct Dribble<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.bytes.len()).min(self.step);
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.step = self.step % 37 + 3;
        Ok(n)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn parse_and_decode_never_panic_nor_allocate_beyond_the_input(bytes in hostile()) {
        let mut shape = Vec::with_capacity(MAX_NDIMS);
        let (parsed, peak) = peak_of(|| parse_wire(&bytes, &mut shape));
        prop_assert!(peak <= if parsed.is_ok() { 0 } else { MESSAGE }, "parse_wire allocated {}", peak);
        let (decoded, peak) = peak_of(|| decode_wire(&bytes));
        prop_assert!(peak <= bytes.len() + SHAPE_BYTES + MESSAGE, "decode_wire: {} bytes for {} input", peak, bytes.len());
        match (parsed, decoded) {
            (Ok(h), Ok((t, len))) => {
                prop_assert_eq!(h.record_len(), len);
                prop_assert!(len <= bytes.len());
                prop_assert_eq!(&t.to_wire().unwrap()[..], &bytes[..len]);
            }
            (Err(_), Err(_)) => {}
            (p, d) => prop_assert!(false, "parse {:?} vs decode {:?}", p.is_ok(), d.is_ok()),
        }
    }

    #[test]
    fn read_wire_memory_grows_only_with_the_bytes_read(bytes in hostile(), step in 1usize..64) {
        let mut wire = Vec::new();
        let mut input = Dribble { bytes: &bytes, step };
        let (r, peak) = peak_of(|| read_wire(&mut input, &mut wire));
        prop_assert!(peak <= 2 * bytes.len() + 64 + MESSAGE, "read_wire: {} bytes for {} input", peak, bytes.len());
        match r {
            Ok(Some(h)) => {
                prop_assert_eq!(&wire[..], &bytes[..h.record_len()]);
                prop_assert_eq!(decode_wire(&wire).unwrap().1, wire.len());
            }
            Ok(None) => prop_assert!(bytes.is_empty()),
            Err(_) => prop_assert!(decode_wire(&bytes).is_err()),
        }
    }

    /// A header that claims up to 4 GiB, then only `k` bytes and EOF.
    #[test]
    fn a_lying_length_costs_only_what_arrived(nbytes in 1000u32.., k in 0usize..2000) {
        let mut b = vec![4u8, 1, 0, 0, 0];
        b.extend_from_slice(&nbytes.to_le_bytes());
        b.extend_from_slice(&nbytes.to_le_bytes());
        b.extend(std::iter::repeat(7u8).take(k.min(nbytes as usize - 1)));
        let mut wire = Vec::new();
        let (r, peak) = peak_of(|| read_wire(&mut Dribble { bytes: &b, step: 500 }, &mut wire));
        prop_assert!(r.is_err());
        prop_assert!(peak <= 2 * b.len() + 64 + MESSAGE, "claimed {}, {} arrived, allocated {}", nbytes, b.len(), peak);
        let (r, peak) = peak_of(|| read_tensor(&mut &b[..]));
        prop_assert!(r.is_err());
        prop_assert!(peak <= 2 * b.len() + 64 + MESSAGE, "read_tensor allocated {}", peak);
    }

    #[test]
    fn valid_tensors_round_trip_exactly(ts in prop::collection::vec(tensor(), 0..6)) {
        let mut stream = Vec::new();
        for t in &ts {
            write_tensor(&mut stream, t.as_ref()).unwrap();
            let w = t.to_wire().unwrap();
            prop_assert_eq!(decode_wire(&w).unwrap(), (t.clone(), w.len()));
        }
        let mut r = Dribble { bytes: &stream, step: 5 };
        for t in &ts {
            prop_assert_eq!(read_tensor(&mut r).unwrap(), Some(t.clone()));
        }
        prop_assert_eq!(read_tensor(&mut r).unwrap(), None);
    }

    /// A valid cache file with a few bytes overwritten: the reader never panics, and
    /// every record it serves is exactly the one written.
    #[test]
    fn cache_reader_serves_only_exact_records_from_damaged_files(
        ts in prop::collection::vec(tensor(), 1..8),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.cache");
        let lock = CacheLock::exclusive(&path).unwrap();
        let mut w = CacheWriter::create(&path, Metadata::new("t", "s"), &lock).unwrap();
        for t in &ts {
            w.push(t.as_ref()).unwrap();
        }
        w.finish().unwrap();
        drop(lock);
        let mut bytes = std::fs::read(&path).unwrap();
        for (at, v) in &damage {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len() + 1));
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(mut r) = CacheReader::open(&path) {
            for i in 0..r.len() as usize * 2 {
                match r.next_view() {
                    Ok(t) => prop_assert_eq!(t.to_owned(), ts[i % ts.len()].clone()),
                    Err(_) => break,
                }
            }
        }
    }

    /// A valid header whose commit claims arbitrary bytes (what the `cache_reader` fuzz
    /// target does, here in every `cargo test`): framing is checked, never trusted.
    #[test]
    fn cache_reader_never_panics_on_arbitrary_frames(
        records in 0u64..8,
        index_at in prop_oneof![Just(0u64), 1u64..64],
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(prop_oneof![3 => Just(0u8), 1 => 1u8..8, 1 => any::<u8>()], 0..24),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.cache");
        let start = Header::encode(&Metadata::new("t", "s"), Commit::default()).len() as u64;
        // The commit may name an index anywhere in (or past) the body, or none.
        let index_at = if index_at == 0 { 0 } else { start + index_at - 1 };
        let commit = Commit { seq: 1, records, data_len: body.len() as u64, index_at };
        let mut file = Header::encode(&Metadata::new("t", "s"), commit);
        file.extend_from_slice(&body);
        std::fs::write(&path, &file).unwrap();
        let mut r = match CacheReader::open(&path) {
            Ok(r) => r,
            Err(e) => {
                prop_assert!(e.is_corruption() && index_at != 0, "{}", e);
                return Ok(());
            }
        };
        for _ in 0..2 * records {
            if let Err(e) = r.next_view() {
                prop_assert!(e.is_corruption(), "{}", e);
                break;
            }
        }
        // Random access over the same bytes: damage or out of range, never a panic.
        for i in (0..=records).rev() {
            if let Err(e) = r.view_at(i) {
                prop_assert!(
                    e.is_corruption() || (i == records && matches!(e, Error::IndexOutOfRange { .. })),
                    "{}", e
                );
            }
        }
    }
}
