//! Random-access figures (issue 14), each a ratio against a baseline of the same run:
//! - 8: a warm shuffled epoch over A through `view_at` vs the sequential view pass
//!   (target ≤ 2×);
//! - 9: peak RSS of a shuffled epoch over a 2 GB cache, in a child (target < 64 MiB),
//!   against the peak RSS of opening it;
//! - 10: cold shuffled vs cold sequential, the file's pages dropped from the page cache
//!   with `posix_fadvise(POSIX_FADV_DONTNEED)` before each round (informative: the
//!   block-shuffled order of the sampler is what issue 14 targets at 1.5×).
//!
//! The shuffled order is a bijection computed on the fly (a 4-round Feistel network on
//! the next power of four with cycle walking), so the order itself costs no memory.

use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::{field, interleave, timed, Row, Sample, Target, A_ELEMS, R};
use crate::work::*;
use harmonics_dataset::Result;

/// A permutation of 0..n, O(1) memory: a balanced Feistel network over 2^(2·half) ≥ n
/// values, walking the cycle until the value falls inside 0..n.
pub struct Perm {
    n: u64,
    half: u32,
    keys: [u64; 4],
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Perm {
    pub fn new(n: u64, seed: u64) -> Perm {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half = bits.div_ceil(2).max(1);
        let keys = [mix(seed), mix(seed + 1), mix(seed + 2), mix(seed + 3)];
        Perm { n, half, keys }
    }

    pub fn at(&self, i: u64) -> u64 {
        let mask = (1u64 << self.half) - 1;
        let mut x = i;
        loop {
            let (mut l, mut r) = (x >> self.half, x & mask);
            for k in self.keys {
                let f = mix(r ^ k) & mask;
                (l, r) = (r, l ^ f);
            }
            x = (l << self.half) | r;
            if x < self.n {
                return x;
            }
        }
    }
}

/// One epoch over a warm cache of `n` records in the order of `Perm::new(n, seed)`,
/// through `view_at` (open included). Returns (checksum, data bytes seen).
pub fn shuffled_pass(path: &Path, n: usize, seed: u64) -> Result<(f64, u64)> {
    let mut p = open_warm(path, n)?;
    let perm = Perm::new(n as u64, seed);
    let mut sum = 0f64;
    let mut bytes = 0u64;
    for k in 0..n as u64 {
        let t = p.view_at(perm.at(k))?;
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
    let (sum, bytes) = shuffled_pass(Path::new(path), n.parse()?, 1)?;
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
        let (rnd_sum, _) = shuffled_pass(path_a, n_a, 7)?;
        if (seq_sum - rnd_sum).abs() > 1e-6 * seq_sum.abs().max(1.0) {
            return Err(
                format!("shuffled epoch checksum {rnd_sum} != sequential {seq_sum}").into(),
            );
        }
        let mut seed = 0;
        let (b, s) = interleave(
            rounds,
            || timed(|| view_pass(path_a, n_a, 1).map(drop).map_err(Into::into)),
            || {
                seed += 1;
                timed(|| {
                    shuffled_pass(path_a, n_a, seed)
                        .map(drop)
                        .map_err(Into::into)
                })
            },
        )?;
        let bytes = (n_a * A_ELEMS * 4) as u64;
        rows.push(Row {
            fig: "8",
            subject: format!("shuffled view_at epoch, A ({n_a} rec)"),
            baseline: "sequential view pass, A".into(),
            base: b,
            subj: s,
            unit: "s",
            records: n_a as u64,
            bytes,
            base_bytes: bytes,
            target: Target::Ratio(2.0),
        });
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
        let child = |args: &[&str]| -> R<Sample> {
            let mut argv = vec!["--role".to_string()];
            argv.extend(args.iter().map(|s| s.to_string()));
            let (out, _) = child_peak_rss(exe, &argv)?;
            let kib = field(&out, "hwm_kib=").ok_or(format!("child said {out:?}"))?;
            Ok((kib as f64, f64::NAN))
        };
        let (b, s) = interleave(
            rounds,
            || child(&["open", &p, &ns]),
            || child(&["shuffle", &p, &ns]),
        )?;
        rows.push(Row {
            fig: "9",
            subject: format!(
                "peak RSS, shuffled epoch over {} MiB cache ({n} rec)",
                size >> 20
            ),
            baseline: "peak RSS, open only".into(),
            base: b,
            subj: s,
            unit: "KiB",
            records: n as u64,
            bytes: size,
            base_bytes: size,
            target: Target::Below(64.0 * 1024.0, "subject"),
        });
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
        let mut seed = 100;
        let (b, s) = interleave(
            rounds,
            || {
                drop_cached(&path)?;
                timed(|| view_pass(&path, n, 1).map(drop).map_err(Into::into))
            },
            || {
                drop_cached(&path)?;
                seed += 1;
                timed(|| shuffled_pass(&path, n, seed).map(drop).map_err(Into::into))
            },
        )?;
        let bytes = (n * A_ELEMS * 4) as u64;
        rows.push(Row {
            fig: "10",
            subject: format!("cold shuffled view_at epoch ({n} A rec)"),
            baseline: "cold sequential view pass".into(),
            base: b,
            subj: s,
            unit: "s",
            records: n as u64,
            bytes,
            base_bytes: bytes,
            target: Target::Info,
        });
        if !keep {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}
