//! `cargo bench --bench sampler [-- --rounds R]`: the training-order figures of issue 14
//! that need no cache, each against a baseline measured in the same run (rounds
//! alternate baseline and subject; the median per-round figure is printed). Nothing is
//! asserted.
//!
//! - S1: sampler indices per second on one core (target ≥ 50 M/s), global shuffle and
//!   block mode, against the sequential order (a counter) and against a stored
//!   permutation array (what an O(N) `randperm` sampler reads);
//! - S2: the state's size in bytes (target ≤ 128);
//! - S3: resume at position 900,000 of a 1,000,000-record epoch: restore plus the first
//!   index (and the first record of an in-memory SampledProducer, and of a cache when the
//!   cache has random access) against replaying the 900,000 steps (target < 1 ms).

#[path = "../common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::median;

use harmonics_dataset::ffi::HarmonicsSamplerState;
use harmonics_dataset::{
    DiskCacheProducer, Producer, SampledProducer, Sampler, SamplerOptions, SamplerState, Tensor,
    VecProducer,
};

/// CPU seconds of this thread: "per core" on a machine shared with other work.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// A stopwatch of this thread's CPU time.
struct Cpu(f64);
impl Cpu {
    fn now() -> Cpu {
        Cpu(thread_cpu())
    }
    fn elapsed(&self) -> f64 {
        thread_cpu() - self.0
    }
}

/// CPU seconds to fill `total` indices from `s`, in chunks of 4096 (the bulk path).
fn fill_rate(s: &mut Sampler, total: usize) -> f64 {
    let mut buf = vec![0u64; 4096];
    let t = Cpu::now();
    let mut done = 0;
    while done < total {
        s.fill(&mut buf);
        black_box(&buf);
        done += buf.len();
    }
    t.elapsed()
}

fn array_rate(perm: &[u64], total: usize) -> f64 {
    let mut buf = vec![0u64; 4096];
    let t = Cpu::now();
    let mut k = 0usize;
    let mut done = 0;
    while done < total {
        for slot in buf.iter_mut() {
            *slot = perm[k];
            k += 1;
            if k == perm.len() {
                k = 0;
            }
        }
        black_box(&buf);
        done += buf.len();
    }
    t.elapsed()
}

fn main() {
    let argv = common::bench_args();
    let rounds = argv
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize);
    let n = 10_000_000u64;
    let total = 20_000_000usize;
    let o = |shuffle: bool, block: u64| SamplerOptions {
        seed: 7,
        shuffle,
        block_records: block,
        ..SamplerOptions::default()
    };

    // A stored permutation (Fisher–Yates with the sampler's own indices as randomness
    // source is not needed: any permutation array reads the same way).
    let mut perm: Vec<u64> = Vec::with_capacity(n as usize);
    let mut s = Sampler::new(n, o(true, 0)).unwrap();
    perm.extend((0..n).map(|_| s.next_index()));

    let (mut seq, mut arr, mut glob, mut block) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        seq.push(fill_rate(&mut Sampler::new(n, o(false, 0)).unwrap(), total));
        arr.push(array_rate(&perm, total));
        glob.push(fill_rate(&mut Sampler::new(n, o(true, 0)).unwrap(), total));
        block.push(fill_rate(
            &mut Sampler::new(n, o(true, 256)).unwrap(),
            total,
        ));
    }
    let rate = |v: &[f64]| total as f64 / median(v) / 1e6;
    let ratio =
        |a: &[f64], b: &[f64]| median(&a.iter().zip(b).map(|(x, y)| x / y).collect::<Vec<_>>());
    println!("S1  sampler indices per CPU-second of one core (thread CPU time), N = 10^7, {rounds} rounds (median)");
    println!(
        "    sequential order (baseline, a counter)   {:8.1} M/s",
        rate(&seq)
    );
    println!(
        "    stored permutation array (80 MB)         {:8.1} M/s",
        rate(&arr)
    );
    for (what, v) in [
        ("global shuffle (Feistel, 0 bytes/record)", &glob),
        ("block shuffle (B = 256)                 ", &block),
    ] {
        println!(
            "    {what} {:8.1} M/s   {:.2}x the counter's time, {:.2}x the array's   target >= 50 M/s: {}",
            rate(v),
            ratio(v, &seq),
            ratio(v, &arr),
            if rate(v) >= 50.0 { "met" } else { "MISSED" }
        );
    }
    drop(perm);

    println!("S2  state size: Rust SamplerState {} bytes, C HarmonicsSamplerState {} bytes (target <= 128; the permutation array above: {} bytes)",
        std::mem::size_of::<SamplerState>(), std::mem::size_of::<HarmonicsSamplerState>(), n * 8);

    // S3: resume at 900,000 of 1,000,000.
    let n = 1_000_000u64;
    let at = 900_000u64;
    let mut saved = Sampler::new(n, o(true, 0)).unwrap();
    for _ in 0..at {
        saved.next_index();
    }
    let state = saved.state();
    let expected = saved.peek();
    let records: Vec<Tensor> = (0..n).map(|i| Tensor::from_f32(&[i as f32])).collect();
    let mut mem = SampledProducer::new(VecProducer::new(records), o(true, 0)).unwrap();
    let (mut restore, mut replay, mut rec_restore, mut rec_replay) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut s = Sampler::new(n, o(true, 0)).unwrap();
        s.restore(&state).unwrap();
        let first = s.next_index();
        restore.push(t.elapsed().as_secs_f64());
        assert_eq!(first, expected);

        let t = Instant::now();
        let mut s = Sampler::new(n, o(true, 0)).unwrap();
        for _ in 0..at {
            black_box(s.next_index());
        }
        let first = s.next_index();
        replay.push(t.elapsed().as_secs_f64());
        assert_eq!(first, expected);

        let t = Instant::now();
        mem.restore(&state).unwrap();
        let v = mem.next().unwrap();
        rec_restore.push(t.elapsed().as_secs_f64());
        assert_eq!(v.to_f32()[0] as u64, expected);

        mem.set_epoch(0);
        let t = Instant::now();
        for _ in 0..at {
            black_box(mem.next_view().unwrap().data.len());
        }
        let v = mem.next().unwrap();
        rec_replay.push(t.elapsed().as_secs_f64());
        assert_eq!(v.to_f32()[0] as u64, expected);
    }
    let us = |v: &[f64]| median(v) * 1e6;
    let resume = |what: &str, restore: &[f64], replay: &[f64]| {
        println!(
            "    {what} {:9.2} us   replay {:9.0} us   ratio {:.6}   target < 1 ms: {}",
            us(restore),
            us(replay),
            ratio(restore, replay),
            if us(restore) < 1000.0 {
                "met"
            } else {
                "MISSED"
            }
        )
    };
    println!("S3  resume at 900,000 of a 1,000,000-record epoch, {rounds} rounds (median)");
    resume("Sampler: restore + first index", &restore, &replay);
    resume(
        "SampledProducer (in memory): restore + first record",
        &rec_restore,
        &rec_replay,
    );

    // Over a cache file, when the cache has random access (the on-disk index).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resume.cache");
    let base = VecProducer::new((0..n).map(|i| Tensor::from_f32(&[i as f32; 16])).collect());
    let name = path.to_str().unwrap().to_string();
    let probe = DiskCacheProducer::open(base.clone(), &name).unwrap();
    if !probe.has_random_access() {
        println!("    SampledProducer over a cache: n/a (this build's cache has no random access)");
        return;
    }
    drop(probe);
    let (mut c_restore, mut c_replay) = (vec![], vec![]);
    for _ in 0..rounds {
        let b = base.clone(); // not timed: a million small allocations
        let t = Instant::now();
        let cache = DiskCacheProducer::open(b, &name).unwrap();
        let mut p = SampledProducer::new(cache, o(true, 0)).unwrap();
        p.restore(&state).unwrap();
        let v = p.next().unwrap();
        c_restore.push(t.elapsed().as_secs_f64());
        assert_eq!(v.to_f32()[0] as u64, expected);

        let b = base.clone();
        let t = Instant::now();
        let cache = DiskCacheProducer::open(b, &name).unwrap();
        let mut p = SampledProducer::new(cache, o(true, 0)).unwrap();
        for _ in 0..at {
            black_box(p.next_view().unwrap().data.len());
        }
        let v = p.next().unwrap();
        c_replay.push(t.elapsed().as_secs_f64());
        assert_eq!(v.to_f32()[0] as u64, expected);
    }
    resume(
        "SampledProducer over a warm cache: open + restore + first record",
        &c_restore,
        &c_replay,
    );
}
