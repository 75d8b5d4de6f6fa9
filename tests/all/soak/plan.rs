//! An episode's plan, drawn from its seed: the dataset versions and their layout,
//! what the cache path holds at the start, the processes (their roles, versions and
//! when a writer is killed) and the faults applied while they run (when, and what).
//! The plan is a pure function of the seed (and the fault filter); only the timing
//! of the processes themselves varies between runs of one seed.

use std::fmt::Write as _;

use super::records::Identity;

/// The splitmix64 finaliser: a good 64-bit mix, also the step of [`Rng`].
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small deterministic generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// One of `choices`, each with its weight.
    pub fn weighted<T: Copy>(&mut self, choices: &[(u64, T)]) -> T {
        let total: u64 = choices.iter().map(|c| c.0).sum();
        let mut x = self.below(total);
        for &(w, c) in choices {
            if x < w {
                return c;
            }
            x -= w;
        }
        unreachable!("x < total")
    }
}

/// What a process does (see `child.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opens the cache over a slow source (populating or rebuilding it), then reads it
    /// once in order. May be killed (SIGKILL) while it writes.
    Writer,
    /// Opens over a source of `n_start` records that grows to `n` in steps, with a
    /// `refresh()` after each step (appending), reading the new records. May be killed.
    Appender,
    /// Opens, reads in order with `next()`, drops; `rounds` times.
    Next,
    /// Opens once, reads random records with `view_at` (and a few past the end).
    At,
    /// Opens once; `rounds` times `refresh()`, then some `next()` and `view_at`.
    Refresh,
    /// `CacheReader::open` on the path, with no source: every record must be the one
    /// the header's token or fingerprint names, at its position.
    Raw,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Appender => "appender",
            Role::Next => "next",
            Role::At => "at",
            Role::Refresh => "refresh",
            Role::Raw => "raw",
        }
    }
    pub fn parse(s: &str) -> Role {
        match s {
            "writer" => Role::Writer,
            "appender" => Role::Appender,
            "next" => Role::Next,
            "at" => Role::At,
            "refresh" => Role::Refresh,
            "raw" => Role::Raw,
            other => panic!("unknown soak role {other}"),
        }
    }
}

/// One process of an episode.
#[derive(Clone, Debug)]
pub struct Proc {
    pub role: Role,
    pub version: u32,
    /// The source's record count (an appender's final count).
    pub n: usize,
    /// An appender's first count.
    pub n_start: usize,
    pub rounds: u32,
    /// A reader's budget of records over all its rounds.
    pub reads: u64,
    /// A writer's or appender's time per source record, in microseconds.
    pub delay_us: u64,
    pub start_ms: u64,
    /// SIGKILL this long after the start, if still running.
    pub kill_ms: Option<u64>,
    pub seed: u64,
}

impl Proc {
    /// The child's specification, as one environment value.
    pub fn encode(&self) -> String {
        format!(
            "role={},version={},n={},n_start={},rounds={},reads={},delay_us={},seed={}",
            self.role.name(),
            self.version,
            self.n,
            self.n_start,
            self.rounds,
            self.reads,
            self.delay_us,
            self.seed
        )
    }

    pub fn decode(s: &str) -> Proc {
        let mut p = Proc {
            role: Role::Next,
            version: 0,
            n: 0,
            n_start: 0,
            rounds: 0,
            reads: 0,
            delay_us: 0,
            start_ms: 0,
            kill_ms: None,
            seed: 0,
        };
        for kv in s.split(',') {
            let (k, v) = kv.split_once('=').expect("key=value");
            let num = || v.parse::<u64>().expect("a number");
            match k {
                "role" => p.role = Role::parse(v),
                "version" => p.version = num() as u32,
                "n" => p.n = num() as usize,
                "n_start" => p.n_start = num() as usize,
                "rounds" => p.rounds = num() as u32,
                "reads" => p.reads = num(),
                "delay_us" => p.delay_us = num(),
                "seed" => p.seed = num(),
                other => panic!("unknown key {other}"),
            }
        }
        p
    }
}

/// Another version's file, kept outside the cache directory, copied or moved over
/// the cache path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stash {
    pub version: u32,
    /// The original runtime's headerless format (else the current format).
    pub legacy: bool,
}

/// Something planted at the cache path or at its lock file's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plant {
    /// A symbolic link to a file outside the cache directory.
    LinkToFile,
    /// A symbolic link to a valid cache of the main version outside the directory,
    /// holding fewer records (a writer that follows it would append there).
    LinkToCache,
    /// A symbolic link to a directory outside.
    LinkToDir,
    /// A symbolic link to a name outside that does not exist.
    Dangling,
    Fifo,
    Dir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cli {
    Clear,
    Prune { max_bytes: u64 },
    Rm,
    Verify,
}

/// What is done to the cache path while the processes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `count` bytes flipped in place.
    Flip {
        count: u32,
    },
    /// Cut to `keep_permille`/1000 of its length.
    Truncate {
        keep_permille: u64,
    },
    /// The first `len` bytes zeroed in place.
    ZeroHead {
        len: u64,
    },
    /// `len` bytes zeroed at a random place.
    ZeroRange {
        len: u64,
    },
    /// Another version's file copied over the path: with `cp` (truncates, then
    /// writes), or written over the old bytes in place without truncating.
    Copy {
        stash: Stash,
        in_place: bool,
    },
    /// Another version's file renamed over the path (`mv`).
    Move {
        stash: Stash,
    },
    /// The cache file removed (`rm`).
    Remove,
    /// The lock file removed while others may hold or wait on it.
    RemoveLock,
    /// Something planted at the path (or the lock's), removed after `hold_ms`.
    Plant {
        what: Plant,
        at_lock: bool,
        hold_ms: u64,
    },
    Cli(Cli),
}

impl Fault {
    /// The fault's kind, for tallies and `HARMONICS_SOAK_FAULTS`.
    pub fn kind(&self) -> String {
        let stash = |s: &Stash| if s.legacy { "-legacy" } else { "" };
        match self {
            Fault::Flip { .. } => "flip".into(),
            Fault::Truncate { .. } => "truncate".into(),
            Fault::ZeroHead { len } => format!("zero-head-{len}"),
            Fault::ZeroRange { .. } => "zero-range".into(),
            Fault::Copy {
                stash: s,
                in_place: false,
            } => format!("cp{}", stash(s)),
            Fault::Copy { in_place: true, .. } => "cp-in-place".into(),
            Fault::Move { stash: s } => format!("mv{}", stash(s)),
            Fault::Remove => "rm".into(),
            Fault::RemoveLock => "rm-lock".into(),
            Fault::Plant { what, at_lock, .. } => format!(
                "plant-{}{}",
                match what {
                    Plant::LinkToFile => "link-file",
                    Plant::LinkToCache => "link-cache",
                    Plant::LinkToDir => "link-dir",
                    Plant::Dangling => "link-dangling",
                    Plant::Fifo => "fifo",
                    Plant::Dir => "dir",
                },
                if *at_lock { "-at-lock" } else { "" }
            ),
            Fault::Cli(c) => match c {
                Cli::Clear => "cli-clear".into(),
                Cli::Prune { .. } => "cli-prune".into(),
                Cli::Rm => "cli-rm".into(),
                Cli::Verify => "cli-verify".into(),
            },
        }
    }
}

/// What the cache path holds before the processes start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initial {
    Empty,
    Stash(Stash),
    /// A current-format cache of that version with its first `len` bytes zeroed.
    ZeroedHead(u32, u64),
}

/// Which faults a run may draw, and whether to draw any at all.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Fault kinds allowed (prefixes of `Fault::kind`, or a whole kind followed by
    /// `$`; plus `kill` for killed writers and `initial` for an initial state other
    /// than empty or the main version's cache); empty: all. `none` matches nothing.
    pub faults: Vec<String>,
    /// No faults, one version, no writers killed: only the readers' checks.
    pub quiet: bool,
}

impl Options {
    fn allows(&self, kind: &str) -> bool {
        !self.quiet
            && (self.faults.is_empty()
                || self.faults.iter().any(|a| match a.strip_suffix('$') {
                    Some(exact) => kind == exact,
                    None => kind.starts_with(a.as_str()),
                }))
    }
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    pub identity: Identity,
    pub layout: u64,
    /// All versions share one layout (their files line up frame for frame).
    pub shared_layout: bool,
    /// (version, record count); the first is the main one.
    pub versions: Vec<(u32, usize)>,
    pub initial: Initial,
    pub procs: Vec<Proc>,
    /// (milliseconds after the start, fault), in time order.
    pub faults: Vec<(u64, Fault)>,
    /// The version of the source the parent opens at the end, checking every record.
    pub final_version: u32,
}

impl Plan {
    pub fn layout_of(&self, version: u32) -> u64 {
        layout_of(self.layout, self.shared_layout, version)
    }

    pub fn n_of(&self, version: u32) -> usize {
        self.versions
            .iter()
            .find(|v| v.0 == version)
            .map(|v| v.1)
            .expect("a version of the plan")
    }

    pub fn main_version(&self) -> u32 {
        self.versions[0].0
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{:?}, {} layout, versions {}, initial {}; procs [",
            self.identity,
            if self.shared_layout { "shared" } else { "own" },
            self.versions
                .iter()
                .map(|(v, n)| format!("v{v}:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
            match self.initial {
                Initial::Empty => "empty".to_string(),
                Initial::Stash(s) => format!(
                    "v{} {}",
                    s.version,
                    if s.legacy { "legacy" } else { "cache" }
                ),
                Initial::ZeroedHead(v, len) => format!("v{v} cache, head zeroed {len}"),
            }
        );
        for (k, p) in self.procs.iter().enumerate() {
            let _ = write!(
                s,
                "{}{} v{}",
                if k > 0 { ", " } else { "" },
                p.role.name(),
                p.version
            );
            if p.role == Role::Appender {
                let _ = write!(s, " {}->{}", p.n_start, p.n);
            }
            if let Some(ms) = p.kill_ms {
                let _ = write!(s, " kill@{}ms", p.start_ms + ms);
            }
        }
        s.push_str("]; faults [");
        for (k, (at, f)) in self.faults.iter().enumerate() {
            let _ = write!(s, "{}{}@{at}ms", if k > 0 { ", " } else { "" }, f.kind());
        }
        s.push(']');
        s
    }
}

/// The layout of `version` in an episode whose layout seed is `layout`.
pub fn layout_of(layout: u64, shared: bool, version: u32) -> u64 {
    if shared {
        layout
    } else {
        mix(layout ^ version as u64)
    }
}

/// The plan of the episode with this seed.
pub fn plan(seed: u64, opts: &Options) -> Plan {
    let mut rng = Rng::new(seed);
    let identity = rng.weighted(&[
        (40, Identity::Token),
        (30, Identity::Fingerprint),
        (30, Identity::Both),
    ]);
    let layout = rng.next_u64();
    let shared_layout = rng.chance(70);
    let nversions = if opts.quiet {
        1
    } else {
        rng.weighted(&[(30, 1), (50, 2), (20, 3)])
    };
    // Single-digit versions: every version's header has the same length, so files of
    // a shared layout line up byte for byte.
    let mut versions: Vec<(u32, usize)> = Vec::new();
    let base_n = records(&mut rng);
    let same_n = rng.chance(60);
    while versions.len() < nversions {
        let v = rng.range(1, 9) as u32;
        if versions.iter().all(|x| x.0 != v) {
            let n = if same_n || versions.is_empty() {
                base_n
            } else {
                records(&mut rng)
            };
            versions.push((v, n));
        }
    }
    let main = versions[0].0;
    let single = versions.len() == 1;
    // A legacy file records no identity: the library trusts it under the size rule
    // (documented). Planted only where a token tells versions apart, or where no other
    // version is in play.
    let legacy_ok = identity != Identity::Fingerprint || single;
    let pick_other = |rng: &mut Rng| -> u32 {
        if !single && rng.chance(70) {
            versions[1 + rng.below(versions.len() as u64 - 1) as usize].0
        } else {
            versions[rng.below(versions.len() as u64) as usize].0
        }
    };

    let initial = if opts.quiet {
        Initial::Empty
    } else if !opts.allows("initial") {
        if rng.chance(50) {
            Initial::Empty
        } else {
            Initial::Stash(Stash {
                version: main,
                legacy: false,
            })
        }
    } else {
        match rng.below(100) {
            0..=34 => Initial::Empty,
            35..=69 => Initial::Stash(Stash {
                version: main,
                legacy: false,
            }),
            70..=84 => Initial::Stash(Stash {
                version: pick_other(&mut rng),
                legacy: false,
            }),
            85..=92 if legacy_ok => Initial::Stash(Stash {
                version: pick_other(&mut rng),
                legacy: true,
            }),
            _ => Initial::ZeroedHead(main, [8, 16, 64][rng.below(3) as usize]),
        }
    };

    let nprocs = rng.range(2, 6) as usize;
    let mut procs = Vec::new();
    for _ in 0..nprocs {
        let role = if opts.quiet {
            rng.weighted(&[
                (30, Role::Next),
                (30, Role::At),
                (25, Role::Refresh),
                (15, Role::Raw),
            ])
        } else {
            rng.weighted(&[
                (25, Role::Next),
                (20, Role::At),
                (15, Role::Refresh),
                (10, Role::Raw),
                (15, Role::Writer),
                (15, Role::Appender),
            ])
        };
        let version = if rng.chance(65) {
            main
        } else {
            pick_other(&mut rng)
        };
        let n = versions.iter().find(|v| v.0 == version).unwrap().1;
        let writes = matches!(role, Role::Writer | Role::Appender);
        let delay_us = if writes { rng.range(20, 300) } else { 0 };
        let n_start = if role == Role::Appender {
            (n * rng.range(30, 90) as usize / 100).max(1)
        } else {
            0
        };
        let kill_ms = (writes && opts.allows("kill") && rng.chance(60)).then(|| {
            let span = (n as u64 - n_start as u64) * delay_us / 1000;
            rng.below(span * 13 / 10 + 20)
        });
        procs.push(Proc {
            role,
            version,
            n,
            n_start,
            rounds: rng.range(2, 6) as u32,
            reads: rng.range(4_000, 20_000),
            delay_us,
            start_ms: rng.below(40),
            kill_ms,
            seed: rng.next_u64(),
        });
    }

    let mut faults = Vec::new();
    if !opts.quiet {
        let count = rng.range(0, 8);
        // The readers' budgets take a few hundred milliseconds: faults land among them.
        let window = rng.range(20, 400);
        let mut attempts = 0;
        while (faults.len() as u64) < count && attempts < 200 {
            attempts += 1;
            let f = fault(&mut rng, legacy_ok, &pick_other);
            if opts.allows(&f.kind()) {
                faults.push((rng.below(window), f));
            }
        }
        faults.sort_by_key(|f| f.0);
    }
    let final_version = versions[rng.below(versions.len() as u64) as usize].0;
    Plan {
        seed,
        identity,
        layout,
        shared_layout,
        versions,
        initial,
        procs,
        faults,
        final_version,
    }
}

/// A record count: hundreds to a few thousand (log-uniform over 150..2500).
fn records(rng: &mut Rng) -> usize {
    let u = rng.below(1_000_000) as f64 / 1_000_000.0;
    (150.0 * (2500.0f64 / 150.0).powf(u)) as usize
}

fn fault(rng: &mut Rng, legacy_ok: bool, pick_other: &dyn Fn(&mut Rng) -> u32) -> Fault {
    match rng.below(100) {
        0..=11 => Fault::Flip {
            count: rng.range(1, 4) as u32,
        },
        12..=19 => Fault::Truncate {
            keep_permille: rng.below(1000),
        },
        20..=29 => Fault::ZeroHead {
            len: [8, 16, 64][rng.below(3) as usize],
        },
        30..=35 => Fault::ZeroRange {
            len: rng.range(1, 4096),
        },
        36..=49 => {
            let legacy = legacy_ok && rng.chance(20);
            Fault::Copy {
                stash: Stash {
                    version: pick_other(rng),
                    legacy,
                },
                in_place: !legacy && rng.chance(40),
            }
        }
        50..=61 => Fault::Move {
            stash: Stash {
                version: pick_other(rng),
                legacy: legacy_ok && rng.chance(20),
            },
        },
        62..=65 => Fault::Remove,
        66..=69 => Fault::RemoveLock,
        70..=83 => Fault::Plant {
            what: rng.weighted(&[
                (20, Plant::LinkToFile),
                (20, Plant::LinkToCache),
                (10, Plant::LinkToDir),
                (15, Plant::Dangling),
                (20, Plant::Fifo),
                (15, Plant::Dir),
            ]),
            at_lock: rng.chance(30),
            hold_ms: rng.range(5, 100),
        },
        84..=87 => Fault::Cli(Cli::Clear),
        88..=90 => Fault::Cli(Cli::Prune {
            max_bytes: [0, 4096, 1 << 20][rng.below(3) as usize],
        }),
        91..=94 => Fault::Cli(Cli::Rm),
        _ => Fault::Cli(Cli::Verify),
    }
}
