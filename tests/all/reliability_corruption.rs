//! Corruption: one flipped byte at every header byte and at 220 seeded random positions
//! of the record area, and truncation at many lengths, of a real cache file that holds
//! two commits (14 records, then 6 appended). Each case is read twice: by `CacheReader`
//! alone (no source) and by `DiskCacheProducer` (with the source).
//!
//! What counts as correct:
//! - reader alone: it serves, in order, records that are exactly records 0..m-1 of the
//!   dataset, where m is a committed count (14 or 20); damage is reported as
//!   `Error::Corrupt` naming the file, at open or before the damaged record is served.
//!   Falling back to the older commit slot (m = 14) when the newer one is damaged is
//!   correct: that is a state the file was committed in.
//! - producer: it serves exactly the 20 records, whatever the damage (rebuilt from the
//!   source, or the older commit extended by an append).
//! - a flip that changes nothing served must lie in bytes that no reader interprets
//!   (zero padding before the first record, the pad bytes inside a frame, the spare
//!   commit slot, index bytes past the committed entries): the test checks that too.
//!   Both readers read every record sequentially and by random access (`view_at`).
//!
//! Silent wrong data (a served record that differs) must be 0.

use std::path::Path;

use crate::support;
use harmonics_dataset::cache::CacheReader;
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Error, Tensor};
use support::reliability::*;

const N_OLD: usize = 14;
const N: usize = 20;
const GEN: u32 = 7;
const TOKEN: &str = "tok-1";

struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Default, Debug)]
struct Counts {
    cases: usize,
    detected_by_open: usize,
    detected_at_read: usize,
    older_commit_served: usize,
    no_effect_unread_bytes: usize,
    producer_rebuilt: usize,
    producer_appended_after_fallback: usize,
    producer_reused: usize,
    silent_wrong: usize,
}

/// Builds the pristine file: 14 records committed, then 6 appended (seq 2).
fn pristine(dir: &Path) -> Vec<u8> {
    let path = dir.join("pristine.cache");
    DiskCacheProducer::open_at(Box::new(Slow::new(N_OLD, GEN)), path.clone(), token(TOKEN))
        .unwrap();
    let p = DiskCacheProducer::open_at(Box::new(Slow::new(N, GEN)), path.clone(), token(TOKEN))
        .unwrap();
    assert_eq!(
        p.outcome(),
        &CacheOutcome::Appended {
            from: N_OLD as u64,
            to: N as u64
        }
    );
    std::fs::read(&path).unwrap()
}

/// Byte positions no reader interprets: alignment padding after the metadata, the
/// pad bytes of each frame, the spare commit slot (slot 1: seq 1, superseded), and in
/// the index frames (format version 2) all but the entries of the records of the index
/// in force (the last frame: the append outgrew the first index and wrote a new one).
fn unread_positions(b: &[u8]) -> (Vec<bool>, usize) {
    let mut unread = vec![false; b.len()];
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(u32_at(8), 2, "format version");
    let meta_end = 104 + u32_at(16);
    let data_start = meta_end.div_ceil(64) * 64;
    unread[meta_end..data_start].fill(true);
    unread[64..104].fill(true); // slot 1 holds seq 1; slot 0 holds the newer seq 2
    let mut at = data_start;
    let mut index_frames = Vec::new();
    while at < b.len() {
        let len = u32_at(at);
        let pad = (b[at + 8] & 0x7f) as usize;
        unread[at + 9..at + 9 + pad].fill(true);
        if b[at + 8] & 0x80 != 0 {
            index_frames.push(at + 9 + pad..at + 9 + pad + len);
        }
        at += 9 + pad + len;
    }
    assert_eq!(at, b.len());
    assert_eq!(
        index_frames.len(),
        2,
        "the population's index, then the append's"
    );
    let live = index_frames.pop().unwrap();
    for dead in index_frames {
        unread[dead].fill(true);
    }
    unread[live.start + 8 * N..live.end].fill(true); // spare capacity
    (unread, data_start)
}

/// Reads the damaged file with no source. Ok(records served) or Err(detected at open?).
fn reader_alone(path: &Path) -> std::result::Result<Vec<Tensor>, (bool, Vec<Tensor>, Error)> {
    let mut r = match CacheReader::open(path) {
        Ok(r) => r,
        Err(e) => return Err((true, Vec::new(), e)),
    };
    let mut served = Vec::new();
    for _ in 0..r.len() {
        match r.next_view() {
            Ok(t) => served.push(t.to_owned()),
            Err(e) => return Err((false, served, e)),
        }
    }
    // Random access reads the index too: every record again, in reverse.
    for i in (0..r.len()).rev() {
        match r.view_at(i) {
            Ok(t) if t.to_owned() == served[i as usize] => {}
            Ok(_) => panic!("view_at({i}) differs from the sequential record"),
            Err(e) => return Err((false, Vec::new(), e)),
        }
    }
    Ok(served)
}

fn check_case(what: &str, dir: &Path, damaged: &[u8], unread: Option<bool>, c: &mut Counts) {
    let want = dataset(N, GEN);
    let path = dir.join("case.cache");
    let marker = dir.join("reads");
    let _ = std::fs::remove_file(&marker);
    std::fs::write(&path, damaged).unwrap();
    c.cases += 1;

    // 1. CacheReader alone.
    let mut fell_back = false;
    match reader_alone(&path) {
        Ok(served) => {
            if served == want {
                assert_eq!(
                    unread,
                    Some(true),
                    "{what}: damage in an interpreted byte went unnoticed"
                );
                c.no_effect_unread_bytes += 1;
            } else if served == want[..N_OLD] {
                c.older_commit_served += 1;
                fell_back = true;
            } else {
                c.silent_wrong += 1;
                panic!(
                    "{what}: reader served {} records that are not a committed prefix",
                    served.len()
                );
            }
        }
        Err((at_open, served, e)) => {
            assert!(
                served == want[..served.len()],
                "{what}: wrong record served before the error"
            );
            match &e {
                Error::Corrupt { path: p, .. } => assert_eq!(p, &path, "{what}: {e}"),
                other => panic!("{what}: damage reported as a non-corruption error: {other}"),
            }
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            if at_open {
                c.detected_by_open += 1;
            } else {
                c.detected_at_read += 1;
            }
        }
    }

    // 2. DiskCacheProducer with the source: always exactly the full dataset.
    std::fs::write(&path, damaged).unwrap();
    let base = Slow::new(N, GEN).with_marker(&marker, std::time::Duration::ZERO);
    let mut p = DiskCacheProducer::open_at(Box::new(base), path.clone(), token(TOKEN)).unwrap();
    let at_open = p.outcome().clone();
    let got: Vec<Tensor> = (0..2 * N).map(|_| p.next().unwrap()).collect();
    if got[..N] != want[..] || got[N..] != want[..] {
        c.silent_wrong += 1;
        panic!("{what}: producer served wrong records ({at_open:?})");
    }
    for i in (0..N).rev() {
        if p.view_at(i as u64).unwrap().to_owned() != want[i] {
            c.silent_wrong += 1;
            panic!("{what}: producer's view_at({i}) served a wrong record ({at_open:?})");
        }
    }
    let reads = file_len(&marker) as usize;
    match at_open {
        CacheOutcome::Appended { from, to } => {
            assert_eq!((from, to), (N_OLD as u64, N as u64));
            assert!(fell_back, "{what}: append without an older commit");
            assert_eq!(reads, N - N_OLD, "{what}: appended records only");
            c.producer_appended_after_fallback += 1;
        }
        CacheOutcome::Rebuilt(_) => c.producer_rebuilt += 1,
        CacheOutcome::Reused if reads > 0 => c.producer_rebuilt += 1, // found at read
        CacheOutcome::Reused => c.producer_reused += 1,
        CacheOutcome::Created => panic!("{what}: the damaged file was not seen at all"),
        other => panic!("{what}: unexpected outcome {other:?}"),
    }
    drop(p);
    // After the producer, the file is sound again for a reader alone.
    assert_eq!(reader_alone(&path).ok(), Some(want), "{what}: left damaged");
}

#[test]
fn every_flipped_byte_and_truncation_is_detected_before_a_record_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let good = pristine(dir.path());
    let (unread, data_start) = unread_positions(&good);
    let mut rng = SplitMix(0x5EED_CAFE);

    let mut flips = Counts::default();
    let mut positions: Vec<usize> = (0..data_start).collect(); // the whole header region
    for _ in 0..220 {
        positions.push(data_start + (rng.next() as usize) % (good.len() - data_start));
    }
    for &pos in &positions {
        let mut d = good.clone();
        d[pos] ^= 1 + (rng.next() % 255) as u8;
        check_case(
            &format!("flip at {pos}"),
            dir.path(),
            &d,
            Some(unread[pos]),
            &mut flips,
        );
    }
    println!(
        "byte flips ({} positions, file {} bytes, header {data_start}): {flips:?}",
        positions.len(),
        good.len()
    );

    let mut cuts = Counts::default();
    let mut lens: Vec<usize> = (1..good.len()).step_by(5).collect();
    lens.extend([
        1,
        7,
        8,
        23,
        24,
        55,
        56,
        87,
        88,
        data_start - 1,
        data_start,
        data_start + 1,
        good.len() - 1,
    ]);
    for &len in &lens {
        check_case(
            &format!("truncated to {len}"),
            dir.path(),
            &good[..len],
            None,
            &mut cuts,
        );
    }
    println!("truncations ({} lengths): {cuts:?}", lens.len());

    // A junk tail after the committed end (an interrupted append) is never served.
    let mut tails = Counts::default();
    for k in [1usize, 9, 100, 1000] {
        let mut d = good.clone();
        d.extend((0..k).map(|_| rng.next() as u8));
        check_case(
            &format!("junk tail of {k}"),
            dir.path(),
            &d,
            Some(true),
            &mut tails,
        );
    }
    println!("junk tails: {tails:?}");

    assert_eq!(
        flips.silent_wrong + cuts.silent_wrong + tails.silent_wrong,
        0
    );
    assert!(positions.len() >= 200);
    assert!(
        flips.detected_by_open > 0 && flips.detected_at_read > 0 && flips.older_commit_served > 0
    );
    assert_eq!(
        cuts.no_effect_unread_bytes, 0,
        "a truncation went unnoticed"
    );
    assert_eq!(tails.producer_reused, 4);
}

/// Found by the `cache_reader` fuzz target: a frame whose padding runs past the
/// committed end (wire length 0, pad 4, 12 bytes committed) made the reader slice out
/// of bounds and panic instead of reporting damage.
#[test]
fn a_frame_whose_padding_runs_past_the_end_is_damage_not_a_panic() {
    use harmonics_dataset::cache::{Commit, Header, Metadata};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.cache");
    let body = [0u8, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0];
    let commit = Commit {
        seq: 1,
        records: 1,
        data_len: body.len() as u64,
        index_at: 0,
    };
    let mut file = Header::encode(&Metadata::new("tok", "fuzz"), commit);
    file.extend_from_slice(&body);
    std::fs::write(&path, &file).unwrap();
    let mut r = CacheReader::open(&path).unwrap();
    let err = r.next_view().unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("fuzz.cache"), "{err}");
}
