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

#[test]
fn every_epoch_is_a_permutation_and_epochs_differ() {
    for n in SIZES {
        for seed in SEEDS {
            let epochs = if n > 10_000 { 2 } else { 16 };
            let orders: Vec<Vec<u64>> = (0..epochs).map(|e| epoch_order(n, seed, e, 0)).collect();
            let distinct: std::collections::HashSet<&Vec<u64>> = orders.iter().collect();
            match n {
                1 => assert_eq!(distinct.len(), 1),
                2 => assert_eq!(distinct.len(), 2, "both orders of 2 records appear"),
                _ => {
                    for e in 1..orders.len() {
                        assert_ne!(orders[e - 1], orders[e], "n={n} seed={seed} epoch {e}");
                    }
                    assert_ne!(orders[0], (0..n).collect::<Vec<_>>(), "shuffled");
                }
            }
            // Seeds differ too.
            if n >= 7 && seed != 0 {
                assert_ne!(orders[0], epoch_order(n, 0, 0, 0));
            }
        }
    }
}

#[test]
fn block_mode_epochs_are_permutations() {
    for n in [7u64, 1000, 1_000_003] {
        for b in [1u64, 3, 64, 1000] {
            let a = epoch_order(n, 5, 0, b);
            if n > b * 2 {
                assert_ne!(a, epoch_order(n, 5, 1, b), "n={n} b={b}");
            }
        }
    }
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
        run_child(&spec);
    }
}

fn child(env: &[(&str, String)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

#[test]
fn the_order_is_identical_in_another_process() {
    let out = child(&[("HD_ORDER_CHILD", "1".into())]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    for line in text.lines().filter(|l| l.starts_with("digest ")) {
        let f: Vec<u64> = line[7..].split(' ').map(|x| x.parse().unwrap()).collect();
        assert_eq!(f[2], digest(epoch_order(f[0], f[1], 3, 0)), "{line}");
        checked += 1;
    }
    assert_eq!(checked, SIZES.len() * SEEDS.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Large N: distinct in-range indices on a sample of positions, no O(N) memory.
    #[test]
    fn large_epochs_map_sampled_positions_injectively(
        n in 1u64..=10_000_000, seed in any::<u64>(), epoch in 0u64..1000,
        block in prop_oneof![Just(0u64), 1u64..5000], starts in proptest::collection::vec(any::<u64>(), 8)
    ) {
        let s = Sampler::new(n, SamplerOptions { seed, block_records: block, ..SamplerOptions::default() }).unwrap();
        let mut s = s;
        s.set_epoch(epoch);
        let mut got = std::collections::HashMap::new();
        for st in starts {
            // A run of consecutive positions from a random start.
            let start = st % n;
            for k in start..(start + 64).min(n) {
                let i = s.index(k).unwrap();
                prop_assert!(i < n);
                if let Some(prev) = got.insert(i, k) {
                    prop_assert_eq!(prev, k, "positions {} and {} both map to {}", prev, k, i);
                }
            }
        }
    }

    /// Small N: the whole epoch is a permutation, for any options.
    #[test]
    fn small_epochs_are_permutations(n in 1u64..3000, seed in any::<u64>(), epoch in any::<u64>(), block in 0u64..100) {
        let mut s = Sampler::new(n, SamplerOptions { seed, block_records: block, ..SamplerOptions::default() }).unwrap();
        s.set_epoch(epoch);
        let mut seen = vec![false; n as usize];
        for _ in 0..n {
            let i = s.next_index() as usize;
            prop_assert!(!std::mem::replace(&mut seen[i], true));
        }
    }
}

/// All ranks' indices for one epoch: `out[r]` is rank r's sequence.
fn ranks(n: u64, w: u64, drop_last: bool, seed: u64) -> Vec<Vec<u64>> {
    (0..w)
        .map(|r| {
            let mut s = Sampler::new(
                n,
                SamplerOptions {
                    drop_last,
                    ..opts(seed, r, w)
                },
            )
            .unwrap();
            (0..s.size()).map(|_| s.next_index()).collect()
        })
        .collect()
}

#[test]
fn shards_are_equal_disjoint_or_padded_and_share_one_global_sequence() {
    for n in [1001u64, 7, 100_003] {
        let global = epoch_order(n, 11, 0, 0);
        for w in [1u64, 2, 3, 8, 64] {
            for drop_last in [false, true] {
                if drop_last && n < w {
                    continue; // refused: every rank would get nothing
                }
                let per = ranks(n, w, drop_last, 11);
                let count = if drop_last { n / w } else { n.div_ceil(w) };
                for (r, seq) in per.iter().enumerate() {
                    assert_eq!(seq.len() as u64, count, "n={n} w={w} rank {r}");
                    for (k, &i) in seq.iter().enumerate() {
                        // rank r's k-th index is global position k*w + r, wrapping.
                        let g = (k as u64 * w + r as u64) % n;
                        assert_eq!(i, global[g as usize], "n={n} w={w} r={r} k={k}");
                    }
                }
                let mut all: Vec<u64> = per.concat();
                all.sort_unstable();
                let before = all.len();
                all.dedup();
                if drop_last {
                    assert_eq!(all.len(), before, "disjoint with drop_last");
                    assert_eq!(before as u64, n / w * w);
                } else {
                    assert_eq!(all.len() as u64, n, "the union is the dataset");
                    assert_eq!(before as u64 - n, count * w - n, "padding only");
                }
            }
        }
    }
}

fn steps(s: &mut Sampler, k: u64) -> Vec<u64> {
    (0..k).map(|_| s.next_index()).collect()
}

#[test]
fn state_is_the_global_position_and_restores_exactly() {
    let mut a = Sampler::new(1000, opts(3, 2, 4)).unwrap();
    steps(&mut a, 37);
    let st = a.state();
    assert_eq!((st.epoch, st.position), (0, 37 * 4));
    assert_eq!(
        (st.num_records, st.world_size, st.rank, st.seed),
        (1000, 4, 2, 3)
    );
    let rest = steps(&mut a, 600);
    let mut b = Sampler::new(1000, opts(3, 2, 4)).unwrap();
    b.restore(&st).unwrap();
    assert_eq!(steps(&mut b, 600), rest);
    // After exactly size() steps the state is the next epoch's start.
    let mut c = Sampler::new(1000, opts(3, 0, 4)).unwrap();
    steps(&mut c, 250);
    assert_eq!((c.state().epoch, c.state().position), (1, 0));
}

/// The global position → record of `epoch`, for every W: what any world size must follow.
fn global_at(n: u64, seed: u64, epoch: u64, g: u64) -> u64 {
    let mut s = Sampler::new(n, opts(seed, 0, 1)).unwrap();
    s.set_epoch(epoch);
    s.index(g % n).unwrap()
}

#[test]
fn a_state_saved_at_four_ranks_continues_at_two_and_at_eight() {
    for n in [1000u64, 1003, 10] {
        for k in [0u64, 1, 2, 100, 249] {
            let w = 4;
            if k * w >= n {
                continue;
            }
            // Any rank's state will do: they agree on the global position.
            let saved: Vec<SamplerState> = (0..w)
                .map(|r| {
                    let mut s = Sampler::new(n, opts(9, r, w)).unwrap();
                    steps(&mut s, k);
                    s.state()
                })
                .collect();
            assert!(saved.iter().all(|s| s.position == k * w && s.epoch == 0));
            for w2 in [2u64, 8] {
                let mut covered = Vec::new();
                let mut counts = Vec::new();
                for r in 0..w2 {
                    let mut s = Sampler::new(n, opts(9, r, w2)).unwrap();
                    s.restore(&saved[(r % w) as usize]).unwrap();
                    let mut j = 0u64;
                    while s.epoch() == 0 {
                        let g = k * w + r + j * w2;
                        assert_eq!(
                            s.next_index(),
                            global_at(n, 9, 0, g),
                            "n={n} k={k} w'={w2} r={r} j={j}"
                        );
                        covered.push(g);
                        j += 1;
                    }
                    counts.push(j);
                    // The next epoch is a fresh epoch 1 at world size w2.
                    let per_rank = n.div_ceil(w2).min(3);
                    let fresh: Vec<u64> = (0..per_rank)
                        .map(|j| global_at(n, 9, 1, j * w2 + r))
                        .collect();
                    assert_eq!(steps(&mut s, per_rank), fresh);
                }
                assert!(
                    counts.iter().all(|&c| c == counts[0]),
                    "equal counts {counts:?}"
                );
                covered.sort_unstable();
                // Every remaining global position once, then padding positions ≥ n.
                let expect: Vec<u64> = (k * w..k * w + counts[0] * w2).collect();
                assert_eq!(covered, expect);
                assert!(
                    counts[0] * w2 - (n - k * w) < w2,
                    "padding less than one step"
                );
            }
        }
    }
}

#[test]
fn a_state_for_another_dataset_or_seed_is_refused() {
    let st = Sampler::new(1000, opts(1, 0, 4)).unwrap().state();
    let mut other = Sampler::new(999, opts(1, 0, 4)).unwrap();
    let err = other.restore(&st).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid argument: cannot restore sampler state: it is for 1000 records, this sampler has 999"
    );
    let mut reseeded = Sampler::new(1000, opts(2, 0, 4)).unwrap();
    let err = reseeded.restore(&st).unwrap_err().to_string();
    assert!(
        err.contains("it is for seed 1, this sampler has seed 2"),
        "{err}"
    );
    // A refused restore leaves the sampler where it was.
    assert_eq!(reseeded.state().position, 0);
}

fn format_state(s: &SamplerState) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {}",
        s.seed,
        s.epoch,
        s.position,
        s.num_records,
        s.world_size,
        s.rank,
        u8::from(s.options.shuffle),
        u8::from(s.options.drop_last),
        s.options.block_records
    )
}

fn parse_state(text: &str, options: SamplerOptions) -> SamplerState {
    let f: Vec<u64> = text.split(' ').map(|x| x.parse().unwrap()).collect();
    SamplerState {
        seed: f[0],
        epoch: f[1],
        position: f[2],
        num_records: f[3],
        world_size: f[4],
        rank: f[5],
        options: SamplerOptions {
            shuffle: f[6] == 1,
            drop_last: f[7] == 1,
            block_records: f[8],
            ..options
        },
    }
}

/// "n w rank seed block steps": prints "i <index>" per step and "s <state>" every 7
/// steps (the checkpoint); restores from HD_RESTORE first; steps 0 = forever.
fn run_child(spec: &str) {
    let f: Vec<u64> = spec.split(' ').map(|x| x.parse().unwrap()).collect();
    let o = SamplerOptions {
        block_records: f[4],
        ..opts(f[3], f[2], f[1])
    };
    let mut s = Sampler::new(f[0], o).unwrap();
    if let Ok(st) = std::env::var("HD_RESTORE") {
        s.restore(&parse_state(&st, o)).unwrap();
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut k = 0u64;
    while f[5] == 0 || k < f[5] {
        writeln!(out, "i {}", s.next_index()).unwrap();
        k += 1;
        if k % 7 == 0 {
            writeln!(out, "s {}", format_state(&s.state())).unwrap();
        }
        out.flush().unwrap();
    }
}

#[test]
fn a_process_killed_at_any_step_resumes_the_exact_sequence() {
    let (n, w) = (3001u64, 4u64);
    let mut rng = 0x1234_5678u64;
    for point in 0..24 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = 1 + (rng >> 33) % (3 * n / w); // up to three epochs in
        let rank = point % w;
        let block = if point % 3 == 0 { 50 } else { 0 };
        let spec = format!("{n} {w} {rank} 77 {block}");
        let mut c = child(&[("HD_RUN_CHILD", format!("{spec} 0"))])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
        let mut before = Vec::new();
        let mut checkpoint: Option<(usize, String)> = None;
        let mut read = 0;
        while read < kill_after {
            let line = lines.next().expect("child output").unwrap();
            if let Some(i) = line.strip_prefix("i ") {
                before.push(i.parse::<u64>().unwrap());
                read += 1;
            } else if let Some(st) = line.strip_prefix("s ") {
                checkpoint = Some((before.len(), st.to_string()));
            }
        }
        // SIGKILL, mid-run (the child is writing or blocked on the pipe).
        unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
        let status = c.wait().unwrap();
        assert!(!status.success(), "killed");
        let (kept, restore) = checkpoint.map_or((0, None), |(k, s)| (k, Some(s)));
        let mut env = vec![("HD_RUN_CHILD", format!("{spec} 500"))];
        if let Some(st) = &restore {
            env.push(("HD_RESTORE", st.clone()));
        }
        let out = child(&env).output().unwrap();
        assert!(out.status.success());
        let resumed: Vec<u64> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("i ").map(|x| x.parse().unwrap()))
            .collect();
        let mut whole = before[..kept].to_vec();
        whole.extend(resumed);
        let mut reference = Sampler::new(
            n,
            SamplerOptions {
                block_records: block,
                ..opts(77, rank, w)
            },
        )
        .unwrap();
        let expected = steps(&mut reference, whole.len() as u64);
        assert_eq!(
            whole, expected,
            "kill point {point} after {kill_after} steps"
        );
        assert_eq!(before[..kept], expected[..kept]);
    }
}

/// Classes of a class-sorted dataset: record i is of class i / 10_000.
fn classes_per_batch(o: SamplerOptions) -> Vec<usize> {
    let (classes, per_class, batch) = (20u64, 10_000u64, 256usize);
    let mut s = Sampler::new(classes * per_class, o).unwrap();
    let order = steps(&mut s, classes * per_class);
    order
        .chunks(batch)
        .filter(|c| c.len() == batch)
        .map(|c| {
            let mut seen = [false; 20];
            c.iter()
                .for_each(|&i| seen[(i / per_class) as usize] = true);
            seen.iter().filter(|&&x| x).count()
        })
        .collect()
}

fn distribution(counts: &[usize]) -> String {
    let mut hist = [0usize; 21];
    counts.iter().for_each(|&c| hist[c] += 1);
    (0..=20)
        .filter(|&c| hist[c] > 0)
        .map(|c| format!("{c} classes: {} batches", hist[c]))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn a_global_shuffle_mixes_every_batch_of_a_class_sorted_dataset() {
    let counts = classes_per_batch(opts(2024, 0, 1));
    println!(
        "global shuffle, classes per batch of 256: {}",
        distribution(&counts)
    );
    assert!(
        *counts.iter().min().unwrap() >= 18,
        "{}",
        distribution(&counts)
    );
}

#[test]
fn block_mode_at_its_default_window_mixes_every_batch() {
    for block in [16u64, 64, 256, 1000] {
        let counts = classes_per_batch(SamplerOptions {
            block_records: block,
            ..opts(2024, 0, 1)
        });
        println!(
            "block_records {block} (windows of at least {} blocks), classes per batch of 256: {}",
            harmonics_dataset::sampler::BLOCK_WINDOW,
            distribution(&counts)
        );
        assert!(
            *counts.iter().min().unwrap() >= 12,
            "block {block}: {}",
            distribution(&counts)
        );
    }
    // Without shuffling, a batch is one or two classes: the test can tell.
    let counts = classes_per_batch(SamplerOptions {
        shuffle: false,
        ..opts(0, 0, 1)
    });
    assert!(*counts.iter().max().unwrap() <= 2);
}

// --- Producers in a training order --------------------------------------------------

fn records(n: usize) -> Vec<Tensor> {
    (0..n).map(|i| Tensor::from_f32(&[i as f32, 0.5])).collect()
}

fn value(t: TensorRef<'_>) -> u64 {
    t.to_owned().to_f32()[0] as u64
}

/// A producer without random access (a stream), counting the records it hands out.
struct Stream {
    inner: VecProducer,
    reads: usize,
}

impl Producer for Stream {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.reads += 1;
        self.inner.next_view()
    }
    fn size(&mut self) -> Result<usize> {
        self.inner.size()
    }
    fn source(&self) -> String {
        "stream".into()
    }
}

/// A random-access producer whose sequential path must not be used.
struct RandomOnly {
    inner: VecProducer,
    reads: usize,
}

impl Producer for RandomOnly {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        panic!("a random-access producer is not read sequentially");
    }
    fn size(&mut self) -> Result<usize> {
        self.inner.size()
    }
    fn source(&self) -> String {
        "random-only".into()
    }
    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        self.reads += 1;
        if index == 13 {
            return Err(harmonics_dataset::Error::Foreign(
                "record 13 is damaged".into(),
            ));
        }
        self.inner.view_at(index)
    }
    fn has_random_access(&self) -> bool {
        true
    }
}

#[test]
fn a_sampled_producer_reads_the_sampler_order_and_retries_a_failed_read() {
    let o = opts(5, 1, 3);
    let mut p = SampledProducer::new(
        RandomOnly {
            inner: VecProducer::new(records(100)),
            reads: 0,
        },
        o,
    )
    .unwrap();
    let mut s = Sampler::new(100, o).unwrap();
    assert_eq!(p.size().unwrap(), 34);
    for _ in 0..200 {
        let i = s.next_index();
        if i == 13 {
            let err = p.next().unwrap_err().to_string();
            assert!(err.contains("record 13 is damaged"));
            assert_eq!(
                p.sampler().peek(),
                13,
                "a failed read does not move the sampler"
            );
            p.skip(1).unwrap();
            continue;
        }
        assert_eq!(value(p.next_view().unwrap()), i);
    }
    assert_eq!(p.state(), s.state());
    let err = SampledProducer::new(
        Stream {
            inner: VecProducer::new(records(3)),
            reads: 0,
        },
        o,
    )
    .err()
    .unwrap();
    assert_eq!(err.to_string(), "stream does not support random access");
}

#[test]
fn shuffle_producer_is_a_new_permutation_each_epoch_in_both_modes() {
    let mut ra = ShuffleProducer::new(VecProducer::new(records(50)), Some(8)).unwrap();
    let mut st = ShuffleProducer::new(
        Stream {
            inner: VecProducer::new(records(50)),
            reads: 0,
        },
        Some(8),
    )
    .unwrap();
    assert_eq!(ra.size().unwrap(), 50);
    let mut epochs = Vec::new();
    for _ in 0..3 {
        let a: Vec<u64> = (0..50).map(|_| value(ra.next_view().unwrap())).collect();
        let b: Vec<u64> = (0..50).map(|_| value(st.next_view().unwrap())).collect();
        assert_eq!(a, b, "the same order over a cache and over a stream");
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        epochs.push(a);
    }
    assert_ne!(epochs[0], epochs[1]);
    // Unseeded: each object draws its own order.
    let a: Vec<u64> = {
        let mut p = ShuffleProducer::new(VecProducer::new(records(50)), None).unwrap();
        (0..50).map(|_| value(p.next_view().unwrap())).collect()
    };
    let b: Vec<u64> = {
        let mut p = ShuffleProducer::new(VecProducer::new(records(50)), None).unwrap();
        (0..50).map(|_| value(p.next_view().unwrap())).collect()
    };
    assert_ne!(a, b);
}

#[test]
fn wrappers_over_random_access_read_nothing_up_front() {
    let base = || RandomOnly {
        inner: VecProducer::new(records(10)),
        reads: 0,
    };
    // RandomOnly panics if read sequentially: construction loads nothing.
    let mut s = ShuffleProducer::new(base(), Some(1)).unwrap();
    assert_eq!(s.size().unwrap(), 10);
    let mut sh = ShardProducer::new(base(), 2, 3).unwrap();
    let got: Vec<u64> = (0..4).map(|_| value(sh.next_view().unwrap())).collect();
    assert_eq!(
        got,
        [7, 8, 9, 7],
        "shard 2 of 3 over 10 records is 7..10, cycling"
    );
    let mut stream = Stream {
        inner: VecProducer::new(records(10)),
        reads: 0,
    };
    stream.reads = 0;
    let mut sh = ShardProducer::new(stream, 0, 3).unwrap();
    let got: Vec<u64> = (0..5).map(|_| value(sh.next_view().unwrap())).collect();
    assert_eq!(
        got,
        [0, 1, 2, 3, 0],
        "shard 0 of 3 is 0..4 (the first shard is longer)"
    );
    assert!(ShardProducer::new(base(), 3, 3).is_err());
}

#[test]
fn batch_producer_stacks_consecutive_records() {
    let mut b = BatchProducer::new(VecProducer::new(records(10)), 4).unwrap();
    assert_eq!(b.size().unwrap(), 2);
    let t = b.next().unwrap();
    assert_eq!(t.shape, [4, 2]);
    assert_eq!(t.to_f32(), [0.0, 0.5, 1.0, 0.5, 2.0, 0.5, 3.0, 0.5]);
    let t = b.next().unwrap();
    assert_eq!(t.to_f32()[0], 4.0);
    let t = b.next().unwrap(); // 8, 9, then cycling to 0, 1 as the original did
    assert_eq!(
        t.to_f32().iter().step_by(2).copied().collect::<Vec<_>>(),
        [8.0, 9.0, 0.0, 1.0]
    );
    let mut mixed = VecProducer::new(records(1));
    mixed.push(Tensor::from_f32(&[1.0]));
    let err = BatchProducer::new(mixed, 2)
        .unwrap()
        .next()
        .unwrap_err()
        .to_string();
    assert!(err.contains("shape float32[1] differs"), "{err}");
    assert!(BatchProducer::new(VecProducer::new(records(1)), 0).is_err());
}

#[test]
fn the_c_abi_reads_a_random_access_producer_at_an_index_and_in_sampler_order() {
    use harmonics_dataset::ffi::producer::*;
    use harmonics_dataset::ffi::sampled::*;
    use harmonics_dataset::ffi::tensor::harmonics_tensor_free;
    use harmonics_dataset::ffi::{HarmonicsStatus as St, HarmonicsTensorView};
    use std::ptr::{null, null_mut};
    let h = harmonics_dataset::ffi::producer::producer_into_handle(Box::new(VecProducer::new(
        records(20),
    )));
    unsafe {
        let mut yes = false;
        assert_eq!(harmonics_producer_has_random_access(h, &mut yes), St::Ok);
        assert!(yes);
        let mut v: HarmonicsTensorView = std::mem::zeroed();
        assert_eq!(harmonics_producer_view_at(h, 7, &mut v), St::Ok);
        assert_eq!(std::slice::from_raw_parts(v.data, 4), 7.0f32.to_le_bytes());
        let mut t = null_mut();
        assert_eq!(harmonics_producer_at(h, 20, &mut t), St::IndexOutOfRange);
        assert_eq!(harmonics_producer_at(h, 19, &mut t), St::Ok);
        harmonics_tensor_free(t);
        let o = harmonics_dataset::ffi::HarmonicsSamplerOptions {
            seed: 3,
            ..harmonics_dataset::ffi::sampler::harmonics_sampler_options_default()
        };
        let mut sp = null_mut();
        assert_eq!(harmonics_sampled_producer_new(h, &o, &mut sp), St::Ok);
        let mut s = Sampler::new(
            20,
            SamplerOptions {
                seed: 3,
                ..SamplerOptions::default()
            },
        )
        .unwrap();
        for _ in 0..30 {
            assert_eq!(harmonics_producer_next_view(sp, &mut v), St::Ok);
            let got = f32::from_le_bytes(std::slice::from_raw_parts(v.data, 4).try_into().unwrap());
            assert_eq!(got as u64, s.next_index());
        }
        // peek + at + skip: the same record, one copy.
        let mut i = 0u64;
        assert_eq!(harmonics_sampled_producer_peek(sp, &mut i), St::Ok);
        assert_eq!(i, s.peek());
        assert_eq!(harmonics_producer_skip(sp, 1), St::Ok);
        s.next_index();
        let mut st = std::mem::zeroed();
        assert_eq!(harmonics_sampled_producer_state(sp, &mut st), St::Ok);
        assert_eq!((st.epoch, st.position), (1, 11));
        // The wrappers over a random-access handle.
        let mut shard = null_mut();
        assert_eq!(harmonics_shard_producer_new(h, 1, 3, &mut shard), St::Ok);
        assert_eq!(harmonics_producer_next_view(shard, &mut v), St::Ok);
        assert_eq!(std::slice::from_raw_parts(v.data, 4), 7.0f32.to_le_bytes());
        let mut batch = null_mut();
        assert_eq!(
            harmonics_batch_producer_new(h, 0, &mut batch),
            St::InvalidArgument
        );
        let mut shuffle = null_mut();
        assert_eq!(
            harmonics_shuffle_producer_new(h, true, 3, &mut shuffle),
            St::Ok
        );
        let mut n = 0usize;
        assert_eq!(harmonics_producer_size(shuffle, &mut n), St::Ok);
        assert_eq!(n, 20);
        // A producer without random access.
        let csv = b"1\n2\n";
        let mut c = null_mut();
        assert_eq!(
            harmonics_csv_producer_from_memory(csv.as_ptr(), 4, null(), false, &mut c),
            St::Ok
        );
        assert_eq!(harmonics_producer_view_at(c, 0, &mut v), St::NoRandomAccess);
        assert_eq!(
            harmonics_sampled_producer_new(c, null(), &mut null_mut()),
            St::NoRandomAccess
        );
        for p in [h, sp, shard, shuffle, c] {
            harmonics_producer_free(p);
        }
    }
}
