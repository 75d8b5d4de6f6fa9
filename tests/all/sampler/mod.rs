//! The training order (DESIGN §9): permutations, rank shards, resume (also across
//! processes killed with SIGKILL and across world sizes), mixing, and the producers
//! that read in that order.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use harmonics_dataset::{
    BatchProducer, Producer, Result, SampledProducer, Sampler, SamplerOptions, SamplerState,
    ShardProducer, ShuffleProducer, Tensor, TensorRef, VecProducer,
};
use proptest::prelude::*;

use crate::support;

mod mixing;
mod permutations;
mod producers;
mod resume;
mod shards;

fn opts(seed: u64, rank: u64, world_size: u64) -> SamplerOptions {
    SamplerOptions {
        seed,
        rank,
        world_size,
        ..SamplerOptions::default()
    }
}

/// One epoch of a single-rank sampler, checked to be a permutation with a bitset.
fn epoch_order(n: u64, seed: u64, epoch: u64, block_records: u64) -> Vec<u64> {
    let mut s = Sampler::new(
        n,
        SamplerOptions {
            block_records,
            ..opts(seed, 0, 1)
        },
    )
    .unwrap();
    s.set_epoch(epoch);
    assert_eq!(s.size(), n);
    let mut seen = vec![0u64; n.div_ceil(64) as usize];
    let mut order = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let i = s.next_index();
        assert!(i < n, "index {i} out of range for n={n}");
        let (w, b) = ((i / 64) as usize, i % 64);
        assert_eq!(
            seen[w] >> b & 1,
            0,
            "index {i} twice (n={n} seed={seed} epoch={epoch})"
        );
        seen[w] |= 1 << b;
        order.push(i);
    }
    assert_eq!(
        s.epoch(),
        epoch + 1,
        "the epoch advances after size() steps"
    );
    order
}

/// FNV-1a of an index sequence, to compare long sequences across processes.
fn digest(seq: impl IntoIterator<Item = u64>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in seq {
        for b in v.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

const SIZES: [u64; 5] = [1, 2, 7, 1000, 1_000_003];
const SEEDS: [u64; 4] = [0, 1, 42, u64::MAX];

/// The next `k` indices of `s`.
fn steps(s: &mut Sampler, k: u64) -> Vec<u64> {
    (0..k).map(|_| s.next_index()).collect()
}

/// Child process entry: prints digests of orders (HD_ORDER_CHILD=1), or runs a sampler
/// step by step with checkpoints (HD_RUN_CHILD=...). Does nothing in a normal run.
#[test]
fn child_entry() {
    // libtest has printed "test child_entry ... " without a newline.
    println!();
    if std::env::var_os("HD_ORDER_CHILD").is_some() {
        for n in SIZES {
            for seed in SEEDS {
                let d = digest(epoch_order(n, seed, 3, 0));
                println!("digest {n} {seed} {d}");
            }
        }
    }
    if let Ok(spec) = std::env::var("HD_RUN_CHILD") {
        resume::run_child(&spec);
    }
}

fn child(env: &[(&str, String)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    let entry = support::test_name(module_path!(), "child_entry");
    c.args(["--exact", &entry, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}
