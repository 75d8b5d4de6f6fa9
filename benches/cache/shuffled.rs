//! Issue 23's figures, "shuffled epochs at sequential speed": shuffled epochs through
//! the C++ API (benches/cpp/warm_pass.cpp) against a pass over the same records in file
//! order, interleaved in the same run. Every run is checked (`CppPass::verify`): its
//! record count and bytes, its order hash against the sampler's order (so a shuffled
//! pass that read anything else fails), its checksum against the baseline's of the
//! same round.
//! - 11a: warm global shuffle over A, `SampledProducer::next()` vs the sequential
//!   `DiskCacheProducer::next()` pass (target ≤ 1.5);
//! - 11b: warm, `view(i)` in the caller's own `Sampler` order after
//!   `cache.read_ahead(sampler)` vs the sequential `next_view()` pass (target ≤ 1.5);
//! - 11c: cold block-shuffled epoch (`block_records` = 64) over A through
//!   `SampledProducer::next()` vs a cold sequential `next()` pass (target ≤ 1.2), A's
//!   pages dropped from the page cache with `posix_fadvise(POSIX_FADV_DONTNEED)` before
//!   every run (all of A: the disk here reads it cold in under a second at full scale,
//!   so a smaller slice would time little but the open);
//! - 11d: the same with a global shuffle (target ≤ 2);
//! - 11e: `BatchProducer(SampledProducer, 256)::next()` vs `SampledProducer::next()`
//!   over the same records in the same order (target: a record rate ≥ 90% of it, time
//!   ratio ≤ 1/0.9);
//! - 11f, 11g: 11a and 11b in a training job's steady state: three epochs in one
//!   process, the two after the first timed by the pass itself (the file is mapped by
//!   then: random reads keep their pages mapped, the sequential pass releases what it
//!   passed). Context for 11a/11b, whose single epoch includes mapping the file.
//! - 11h: the floor of a shuffled order on this machine, no read path in it: a plain
//!   loop that hashes (crc32fast) and touches the same records of A where they lie in
//!   one mapping, in the sampler's global order with the record 8 ahead prefetched
//!   into L2 (what the read-ahead does), vs the same loop in file order. Context for
//!   11a/11b: what a random order costs the memory system here, before any library.

use std::cell::Cell;
use std::path::Path;

use super::A_ELEMS;
use crate::common::{interleave, timed, Sample, R};
use crate::random::{drop_cached, COLD_BLOCK};
use crate::table::{Row, Target};
use crate::work::*;
use harmonics_dataset::cache::CacheReader;
use harmonics_dataset::{Sampler, SamplerOptions};

const REC_BYTES: u64 = (A_ELEMS * 4) as u64;

/// Batch size of figure 11e.
const BATCH: usize = 256;

/// Runs `pass` over the cache of `n` records at `path` (its pages dropped first when
/// `cold`), timed, then checks it; returns the sample and the run's checksum. With
/// `LATER`, the sample is the pass's own timing of the epochs after its first.
fn checked_run<const LATER: bool>(
    cpp: &Path,
    path: &Path,
    n: usize,
    pass: CppPass,
    cold: bool,
    checksum: Option<f64>,
) -> R<(Sample, f64)> {
    if cold {
        drop_cached(path)?;
    }
    let mut report = None;
    let sample = timed(|| {
        report = Some(pass.run(cpp, path, n)?);
        Ok(())
    })?;
    let report = report.expect("set by the timed run");
    pass.verify(&report, n, REC_BYTES, checksum)?;
    Ok((if LATER { report.later } else { sample }, report.checksum))
}

/// `base` and `subj` interleaved for `rounds` rounds, both checked, the subject's
/// checksum against the baseline's of the same round. Each round has its own seed,
/// shared by both passes (a sequential pass ignores it).
fn pair<const LATER: bool>(
    rounds: usize,
    cpp: &Path,
    path: &Path,
    n: usize,
    cold: bool,
    base: CppPass,
    subj: CppPass,
) -> R<(Vec<Sample>, Vec<Sample>)> {
    let seed = Cell::new(10u64);
    let checksum = Cell::new(0f64);
    interleave(
        rounds,
        || {
            seed.set(seed.get() + 1);
            let (s, c) = checked_run::<LATER>(cpp, path, n, base.seed(seed.get()), cold, None)?;
            checksum.set(c);
            Ok(s)
        },
        || {
            let pass = subj.seed(seed.get());
            Ok(checked_run::<LATER>(cpp, path, n, pass, cold, Some(checksum.get()))?.0)
        },
    )
}

/// What read-ahead did over one cold epoch of the slice in `block` order (Rust
/// `CacheReader`, untimed): evidence that the cold mode was entered.
fn cold_read_ahead(path: &Path, n: usize, block: u64) -> R<String> {
    drop_cached(path)?;
    let mut r = CacheReader::open(path)?;
    let options = SamplerOptions {
        seed: 3,
        block_records: block,
        ..SamplerOptions::default()
    };
    let mut order = Sampler::new(n as u64, options)?;
    r.read_ahead(Box::new(order.clone()));
    for _ in 0..n {
        r.view_at(order.next_index())?;
    }
    Ok(format!("{:?}", r.read_ahead_stats()))
}

/// Figure 11h: the floor (see the module doc). The records' bytes are located once
/// through a `CacheReader` (untimed), then both loops read them in place.
fn floor(rounds: usize, path_a: &Path, n_a: usize, rows: &mut Vec<Row>) -> R<()> {
    eprintln!(
        "bench: figure 11h (the floor: hashing A's records in place, global shuffle vs file order)"
    );
    cat(path_a)?;
    let mut r = CacheReader::open(path_a)?;
    let mut at = Vec::with_capacity(n_a);
    for i in 0..n_a as u64 {
        let v = r.view_at(i)?;
        at.push((v.data.as_ptr() as usize, v.data.len()));
    }
    let mut sampler = Sampler::new(
        n_a as u64,
        SamplerOptions {
            seed: 7,
            ..SamplerOptions::default()
        },
    )?;
    let shuffled: Vec<(usize, usize)> = (0..n_a)
        .map(|_| at[sampler.next_index() as usize])
        .collect();
    let pass = |order: &[(usize, usize)]| -> R<Sample> {
        timed(|| {
            let (mut crc, mut sum) = (0u32, 0f64);
            for (k, &(p, len)) in order.iter().enumerate() {
                if let Some(&(q, qlen)) = order.get(k + 8) {
                    prefetch_l2(q, qlen.min(8 << 10));
                }
                // SAFETY: `p..p + len` is a record's data inside `r`'s mapping, which
                // stays mapped and unchanged while `r` lives (a warm, unshared file).
                let data = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
                crc ^= crc32fast::hash(data);
                sum += touch(data);
            }
            std::hint::black_box((crc, sum));
            Ok(())
        })
    };
    let runs = interleave(rounds, || pass(&at), || pass(&shuffled))?;
    drop(r);
    let bytes_a = n_a as u64 * REC_BYTES;
    rows.push(
        Row::new(
            "11h",
            "the floor: hash and touch A's records in place, global shuffle, record 8 ahead prefetched into L2",
            "the same loop in file order",
            runs,
            Target::Info,
        )
        .rate(n_a as u64, bytes_a, bytes_a),
    );
    Ok(())
}

/// A hint to load `len` bytes at address `p` into L2 (as the read-ahead does).
fn prefetch_l2(p: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for o in (0..len).step_by(64) {
        // SAFETY: prefetching has no requirement on the address (and no effect on
        // memory); these lie inside a live mapping anyway.
        unsafe {
            core::arch::x86_64::_mm_prefetch((p + o) as *const i8, core::arch::x86_64::_MM_HINT_T1)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Figure 11's rows (A is left cold).
pub fn figures(rounds: usize, cpp: &Path, path_a: &Path, n_a: usize, rows: &mut Vec<Row>) -> R<()> {
    if !path_a.exists() {
        populate(path_a, n_a, A_ELEMS)?;
    }
    let bytes_a = n_a as u64 * REC_BYTES;
    let warm = [
        (
            "11a",
            CppMode::Next,
            CppMode::Sampled,
            "warm global shuffle, C++ SampledProducer::next()",
            "sequential C++ DiskCacheProducer::next() pass",
        ),
        (
            "11b",
            CppMode::View,
            CppMode::ViewSampled,
            "warm global shuffle, C++ view(i) in the caller's Sampler order after read_ahead(sampler)",
            "sequential C++ next_view() pass",
        ),
    ];
    for (fig, base, subj, what, baseline) in warm {
        eprintln!("bench: figure {fig} ({what} vs {baseline}, A)");
        cat(path_a)?;
        let runs = pair::<false>(
            rounds,
            cpp,
            path_a,
            n_a,
            false,
            CppPass::new(base),
            CppPass::new(subj),
        )?;
        rows.push(
            Row::new(
                fig,
                format!("{what}, A ({n_a} rec)"),
                format!("{baseline}, A"),
                runs,
                Target::Ratio(1.5),
            )
            .rate(n_a as u64, bytes_a, bytes_a),
        );
        // The same in a job's steady state: epochs 2 and 3 of one process.
        let steady = if fig == "11a" { "11f" } else { "11g" };
        eprintln!("bench: figure {steady} (as {fig}, epochs 2-3 of one process)");
        let runs = pair::<true>(
            rounds,
            cpp,
            path_a,
            n_a,
            false,
            CppPass::new(base).reads(3 * n_a),
            CppPass::new(subj).reads(3 * n_a),
        )?;
        rows.push(
            Row::new(
                steady,
                format!("{what}, epochs 2-3 in one process, A"),
                format!("{baseline}, epochs 2-3, A"),
                runs,
                Target::Info,
            )
            .rate(2 * n_a as u64, 2 * bytes_a, 2 * bytes_a),
        );
    }

    eprintln!(
        "bench: figure 11e (BatchProducer(SampledProducer, {BATCH}) vs SampledProducer::next(), A)"
    );
    cat(path_a)?;
    let k = n_a / BATCH * BATCH;
    let runs = pair::<false>(
        rounds,
        cpp,
        path_a,
        n_a,
        false,
        CppPass::new(CppMode::Sampled).reads(k),
        CppPass::new(CppMode::Batch(BATCH)),
    )?;
    rows.push(
        Row::new(
            "11e",
            format!(
                "C++ BatchProducer(SampledProducer, {BATCH})::next(), {} batches",
                k / BATCH
            ),
            format!("C++ SampledProducer::next(), the same {k} rec"),
            runs,
            Target::Ratio(1.0 / 0.9),
        )
        .rate(k as u64, k as u64 * REC_BYTES, k as u64 * REC_BYTES),
    );

    floor(rounds, path_a, n_a, rows)?;

    for (fig, block, target) in [("11c", COLD_BLOCK, 1.2), ("11d", 0, 2.0)] {
        let what = match block {
            0 => "cold global shuffle".to_string(),
            b => format!("cold block shuffle (B = {b})"),
        };
        eprintln!("bench: figure {fig} ({what}, C++ SampledProducer::next() vs cold sequential next(), A)");
        eprintln!(
            "bench:   read-ahead over one cold epoch (Rust CacheReader): {}",
            cold_read_ahead(path_a, n_a, block)?
        );
        let runs = pair::<false>(
            rounds,
            cpp,
            path_a,
            n_a,
            true,
            CppPass::new(CppMode::Next),
            CppPass::new(CppMode::Sampled).block(block),
        )?;
        rows.push(
            Row::new(
                fig,
                format!("{what}, C++ SampledProducer::next(), A ({n_a} rec)"),
                "cold sequential C++ next() pass, A",
                runs,
                Target::Ratio(target),
            )
            .rate(n_a as u64, bytes_a, bytes_a),
        );
    }
    Ok(())
}
