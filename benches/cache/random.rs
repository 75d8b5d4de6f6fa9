//! Random-access figures (issues 14 and 23), each a ratio against a baseline of the
//! same run:
//! - 8: a warm shuffled epoch over A through `view_at` with the reader told the order
//!   (`Producer::read_ahead`) vs the sequential view pass (target ≤ 2×); 8n: the same
//!   epoch without the order (context: what the read-ahead gains);
//! - 9: private memory (peak RssAnon, sampled in the child every 10,000 records) of a
//!   `SampledProducer` epoch over a 2 GB cache, in a child (target < 64 MiB), against
//!   that of opening it; 9h: the same runs' VmHWM (context: random reads go through the
//!   mapping, so the file's page-cache pages count there, not in private memory);
//! - 10: cold block-shuffled vs cold sequential, the file's pages dropped from the page
//!   cache with `posix_fadvise(POSIX_FADV_DONTNEED)` before each round (target ≤ 1.5×);
//!   10g: the same for the global shuffle (informative).
//!
//! The shuffled orders are `harmonics_dataset::Sampler`'s (global shuffle, or block mode
//! with `block_records` records a block), so the bench reads exactly what a training
//! job reads, and the order itself costs no memory.

use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::{run_role, A_ELEMS};
use crate::common::{field, interleave, rss_anon_kib, timed, vm_hwm_kib, Sample, R};
use crate::table::{Row, Target};
use crate::work::*;
use harmonics_dataset::{Producer, Result, SampledProducer, Sampler, SamplerOptions};

/// Block size of the cold block-shuffled figure: a 20,000-record slice of A makes 312
/// blocks of 64 records (200 KiB), 4 windows of 78 blocks.
pub const COLD_BLOCK: u64 = 64;

/// One epoch over a warm cache of `n` records in the order of a `Sampler` with `seed`
/// (global shuffle when `block == 0`, else block mode), through `view_at` (open
/// included); with `plan`, the cache is told the order first (`read_ahead`). Returns
/// (checksum, data bytes seen).
pub fn shuffled_pass(
    path: &Path,
    n: usize,
    seed: u64,
    block: u64,
    plan: bool,
) -> Result<(f64, u64)> {
    let mut p = open_warm(path, n)?;
    let mut order = Sampler::new(n as u64, order(seed, block))?;
    if plan {
        p.read_ahead(Box::new(order.clone()));
    }
    let mut sum = 0f64;
    let mut bytes = 0u64;
    for _ in 0..n {
        let t = p.view_at(order.next_index())?;
        sum += touch(t.data);
        bytes += t.data.len() as u64;
    }
    Ok((std::hint::black_box(sum), bytes))
}

fn order(seed: u64, block: u64) -> SamplerOptions {
    SamplerOptions {
        seed,
        block_records: block,
        ..SamplerOptions::default()
    }
}

/// Drops `path`'s pages from the page cache (clean pages; no privileges needed).
pub fn drop_cached(path: &Path) -> R<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: posix_fadvise on a descriptor we own; advice only.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(format!("posix_fadvise(DONTNEED) failed: {rc}").into());
    }
    Ok(())
}

/// The child role of figure 9: one epoch of a `SampledProducer` (global shuffle) over
/// the warm cache, zero-copy (`next_view`); prints what `field` parses, with the peak of
/// RssAnon sampled every 10,000 records.
pub fn shuffle_role(path: &str, n: &str) -> R<String> {
    let n: usize = n.parse()?;
    let mut p = SampledProducer::new(open_warm(Path::new(path), n)?, order(1, 0))?;
    let mut peak = rss_anon_kib();
    let (mut sum, mut bytes) = (0f64, 0u64);
    for k in 0..n {
        let t = p.next_view()?;
        sum += touch(t.data);
        bytes += t.data.len() as u64;
        if k % 10_000 == 0 {
            peak = peak.max(rss_anon_kib());
        }
    }
    peak = peak.max(rss_anon_kib());
    Ok(format!(
        "bytes={bytes} checksum={} rss_anon_kib={peak} hwm_kib={}",
        std::hint::black_box(sum),
        vm_hwm_kib()
    ))
}

/// A child role's (peak RssAnon, VmHWM) as two memory samples.
fn child_memory(exe: &Path, args: &[&str]) -> R<(Sample, Sample)> {
    let (out, _) = run_role(exe, args)?;
    let kib = |key| {
        field(&out, key)
            .map(|v| (v as f64, f64::NAN))
            .ok_or(format!("child said {out:?}"))
    };
    Ok((kib("rss_anon_kib=")?, kib("hwm_kib=")?))
}

/// Figures 8, 9, 10 (those of them in `want`).
#[allow(clippy::too_many_arguments)]
pub fn figures(
    want: &dyn Fn(u32) -> bool,
    rounds: usize,
    scale: f64,
    keep: bool,
    dir: &Path,
    exe: &Path,
    path_a: &Path,
    n_a: usize,
    rows: &mut Vec<Row>,
) -> R<()> {
    if want(8) {
        eprintln!("bench: figure 8 (warm shuffled view_at epoch over A vs sequential view pass)");
        if !path_a.exists() {
            populate(path_a, n_a, A_ELEMS)?;
        }
        cat(path_a)?;
        let (seq_sum, _) = view_pass(path_a, n_a, 1)?;
        for plan in [true, false] {
            let (rnd_sum, _) = shuffled_pass(path_a, n_a, 7, 0, plan)?;
            if (seq_sum - rnd_sum).abs() > 1e-9 * seq_sum.abs().max(1.0) {
                return Err(
                    format!("shuffled epoch checksum {rnd_sum} != sequential {seq_sum}").into(),
                );
            }
        }
        let bytes = (n_a * A_ELEMS * 4) as u64;
        for (fig, plan, what, target) in [
            (
                "8",
                true,
                "shuffled view_at epoch, A, order told (read_ahead)",
                Target::Ratio(2.0),
            ),
            (
                "8n",
                false,
                "shuffled view_at epoch, A, no read_ahead",
                Target::Info,
            ),
        ] {
            let mut seed = 0;
            let runs = interleave(
                rounds,
                || timed(|| view_pass(path_a, n_a, 1).map(drop).map_err(Into::into)),
                || {
                    seed += 1;
                    timed(|| {
                        shuffled_pass(path_a, n_a, seed, 0, plan)
                            .map(drop)
                            .map_err(Into::into)
                    })
                },
            )?;
            rows.push(
                Row::new(
                    fig,
                    format!("{what} ({n_a} rec)"),
                    "sequential view pass, A",
                    runs,
                    target,
                )
                .rate(n_a as u64, bytes, bytes),
            );
        }
    }

    if want(9) {
        // 2 GiB of A-shaped records: many records per page run, the case where random
        // pages pile up if nothing releases them.
        let n = ((2u64 << 30) / (A_ELEMS as u64 * 4 + 32)) as usize;
        let n = ((n as f64 * scale).round() as usize).max(2);
        eprintln!(
            "bench: figure 9 (private memory of a shuffled epoch over a 2 GB cache, {n} rec)"
        );
        let path = dir.join("rss-shuffle.cache");
        populate(&path, n, A_ELEMS)?;
        let size = std::fs::metadata(&path)?.len();
        cat(&path)?;
        let p = path.display().to_string();
        let ns = n.to_string();
        // Each child reports both figures: the VmHWM pairs are those of the same runs.
        let hwm = std::cell::RefCell::new((Vec::new(), Vec::new()));
        let runs = interleave(
            rounds,
            || {
                let (anon, h) = child_memory(exe, &["open", &p, &ns])?;
                hwm.borrow_mut().0.push(h);
                Ok(anon)
            },
            || {
                let (anon, h) = child_memory(exe, &["shuffle", &p, &ns])?;
                hwm.borrow_mut().1.push(h);
                Ok(anon)
            },
        )?;
        rows.push(
            Row::new(
                "9",
                format!(
                    "peak RssAnon, SampledProducer epoch over {} MiB cache ({n} rec)",
                    size >> 20
                ),
                "RssAnon, open only",
                runs,
                Target::Below(64.0 * 1024.0, "subject"),
            )
            .memory(),
        );
        rows.push(
            Row::new(
                "9h",
                "VmHWM of the same epochs (mapped page-cache pages included)",
                "VmHWM, open only",
                hwm.into_inner(),
                Target::Info,
            )
            .memory(),
        );
        if !keep {
            let _ = std::fs::remove_file(&path);
        }
    }

    if want(10) {
        // Cold reads cost a disk access per random record: a 20,000-record slice of A
        // (≈ 63 MB) keeps a round within seconds.
        let n = ((20_000f64 * scale).round() as usize).max(2);
        eprintln!("bench: figure 10 (cold shuffled vs cold sequential, {n} A records)");
        let path = dir.join("cold.cache");
        populate(&path, n, A_ELEMS)?;
        // Each subject against its own interleaved baseline: the ratio pairs rounds
        // measured side by side.
        let bytes = (n * A_ELEMS * 4) as u64;
        for (fig, block, what, target) in [
            (
                "10",
                COLD_BLOCK,
                format!(
                    "cold block-shuffled view_at epoch, read_ahead (B = {COLD_BLOCK}, {n} A rec)"
                ),
                Target::Ratio(1.5),
            ),
            (
                "10g",
                0,
                format!("cold globally shuffled view_at epoch, read_ahead ({n} A rec)"),
                Target::Info,
            ),
        ] {
            let mut seed = 100;
            let runs = interleave(
                rounds,
                || {
                    drop_cached(&path)?;
                    timed(|| view_pass(&path, n, 1).map(drop).map_err(Into::into))
                },
                || {
                    drop_cached(&path)?;
                    seed += 1;
                    timed(|| {
                        shuffled_pass(&path, n, seed, block, true)
                            .map(drop)
                            .map_err(Into::into)
                    })
                },
            )?;
            rows.push(
                Row::new(fig, what, "cold sequential view pass", runs, target)
                    .rate(n as u64, bytes, bytes),
            );
        }
        if !keep {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}
