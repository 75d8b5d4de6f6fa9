//! Random-access figures (issue 14), each a ratio against a baseline of the same run:
//! - 8: a warm shuffled epoch over A through `view_at` vs the sequential view pass
//!   (target ≤ 2×);
//! - 9: peak RSS of a shuffled epoch over a 2 GB cache, in a child (target < 64 MiB),
//!   against the peak RSS of opening it;
//! - 10: cold block-shuffled vs cold sequential, the file's pages dropped from the page
//!   cache with `posix_fadvise(POSIX_FADV_DONTNEED)` before each round (target ≤ 1.5×);
//!   10g: the same for the global shuffle (informative).
//!
//! The shuffled orders are `harmonics_dataset::Sampler`'s (global shuffle, or block mode
//! with `block_records` records a block), so the bench reads exactly what a training
//! job reads, and the order itself costs no memory.

use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::{role_rss, A_ELEMS};
use crate::common::{interleave, timed, vm_hwm_kib, R};
use crate::table::{Row, Target};
use crate::work::*;
use harmonics_dataset::{Result, Sampler, SamplerOptions};

/// Block size of the cold block-shuffled figure: a 20,000-record slice of A makes 312
/// blocks of 64 records (200 KiB), 4 windows of 78 blocks.
pub const COLD_BLOCK: u64 = 64;

/// One epoch over a warm cache of `n` records in the order of a `Sampler` with `seed`
/// (global shuffle when `block == 0`, else block mode), through `view_at` (open
/// included). Returns (checksum, data bytes seen).
pub fn shuffled_pass(path: &Path, n: usize, seed: u64, block: u64) -> Result<(f64, u64)> {
    let mut p = open_warm(path, n)?;
    let mut order = Sampler::new(
        n as u64,
        SamplerOptions {
            seed,
            block_records: block,
            ..SamplerOptions::default()
        },
    )?;
    let mut sum = 0f64;
    let mut bytes = 0u64;
    for _ in 0..n {
        let t = p.view_at(order.next_index())?;
        sum += touch(t.data);
        bytes += t.data.len() as u64;
    }
    Ok((std::hint::black_box(sum), bytes))
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

/// The child role: one shuffled epoch; prints what `field` parses.
pub fn shuffle_role(path: &str, n: &str) -> R<String> {
    let (sum, bytes) = shuffled_pass(Path::new(path), n.parse()?, 1, 0)?;
    Ok(format!(
        "bytes={bytes} checksum={sum} hwm_kib={}",
        vm_hwm_kib()
    ))
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
        let (rnd_sum, _) = shuffled_pass(path_a, n_a, 7, 0)?;
        if (seq_sum - rnd_sum).abs() > 1e-6 * seq_sum.abs().max(1.0) {
            return Err(
                format!("shuffled epoch checksum {rnd_sum} != sequential {seq_sum}").into(),
            );
        }
        let mut seed = 0;
        let runs = interleave(
            rounds,
            || timed(|| view_pass(path_a, n_a, 1).map(drop).map_err(Into::into)),
            || {
                seed += 1;
                timed(|| {
                    shuffled_pass(path_a, n_a, seed, 0)
                        .map(drop)
                        .map_err(Into::into)
                })
            },
        )?;
        let bytes = (n_a * A_ELEMS * 4) as u64;
        rows.push(
            Row::new(
                "8",
                format!("shuffled view_at epoch, A ({n_a} rec)"),
                "sequential view pass, A",
                runs,
                Target::Ratio(2.0),
            )
            .rate(n_a as u64, bytes, bytes),
        );
    }

    if want(9) {
        // 2 GiB of A-shaped records: many records per page run, the case where random
        // pages pile up if nothing releases them.
        let n = ((2u64 << 30) / (A_ELEMS as u64 * 4 + 32)) as usize;
        let n = ((n as f64 * scale).round() as usize).max(2);
        eprintln!("bench: figure 9 (peak RSS of a shuffled epoch over a 2 GB cache, {n} rec)");
        let path = dir.join("rss-shuffle.cache");
        populate(&path, n, A_ELEMS)?;
        let size = std::fs::metadata(&path)?.len();
        cat(&path)?;
        let p = path.display().to_string();
        let ns = n.to_string();
        let runs = interleave(
            rounds,
            || Ok(role_rss(exe, &["open", &p, &ns])?.0),
            || Ok(role_rss(exe, &["shuffle", &p, &ns])?.0),
        )?;
        rows.push(
            Row::new(
                "9",
                format!(
                    "peak RSS, shuffled epoch over {} MiB cache ({n} rec)",
                    size >> 20
                ),
                "peak RSS, open only",
                runs,
                Target::Below(64.0 * 1024.0, "subject"),
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
                format!("cold block-shuffled view_at epoch (B = {COLD_BLOCK}, {n} A rec)"),
                Target::Ratio(1.5),
            ),
            (
                "10g",
                0,
                format!("cold globally shuffled view_at epoch ({n} A rec)"),
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
                        shuffled_pass(&path, n, seed, block)
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
