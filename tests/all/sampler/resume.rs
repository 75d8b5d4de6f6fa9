//! Resume: the state is the global position; it restores exactly, across world
//! sizes, across processes killed with SIGKILL, and refuses another dataset or seed.

use super::*;

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
pub fn run_child(spec: &str) {
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
