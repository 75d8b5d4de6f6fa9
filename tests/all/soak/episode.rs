//! One episode, run by the parent: a fresh directory (the cache directory, the other
//! versions' files, sentinel files outside), the processes of the plan started and
//! killed on schedule, the faults applied on schedule, `cache_cli` beside them; then
//! the file as left on disk checked with no source, a final open checked record by
//! record, and the sentinels compared with their snapshot.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use harmonics_dataset::cache::CacheReader;
use harmonics_dataset::{DiskCacheProducer, Producer, Tensor};

use super::child::{self, error_kind, identity_name, Report};
use super::faults::{apply, unplant, Applied};
use super::plan::{Fault, Initial, Plan, Rng, Stash};
use super::records::{check, claimed, record, version_named, SoakSource, Wrong};
use super::sentinels::Snapshot;
use super::tally::Counts;
use crate::support::reliability::{child_command, sigkill};

/// The cache's name in the episode's cache directory.
pub const NAME: &str = "data.cache";

/// How an episode is run (the same for every episode of a run).
#[derive(Clone, Debug)]
pub struct Config {
    /// A process still running this long after the episode started is killed and
    /// counted as a hang (a soak bound, not a speed assertion).
    pub hang: Duration,
    /// The `cache_cli` binary.
    pub cli: PathBuf,
    /// Sets `HARMONICS_SOAK_SABOTAGE=swap` in the children.
    pub sabotage: bool,
    /// Keep the directory of an episode that failed (its path is printed).
    pub keep_failed: bool,
}

/// What an episode found.
#[derive(Default, Debug)]
pub struct Outcome {
    pub counts: Counts,
    /// Wrong records by the last fault applied before the first wrong record their
    /// process read (`none`: no fault yet).
    pub wrong_by_fault: BTreeMap<String, u64>,
    /// When the last process of the plan ended, in ms after the start.
    pub procs_ms: u64,
    /// Fault kinds applied in this episode (for the per-fault table).
    pub faults_applied: Vec<String>,
    pub details: Vec<String>,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        self.counts.failed()
    }
    fn add_wrong(&mut self, place: &str, kind: &str, fault: &str) {
        *self
            .counts
            .wrong
            .entry(format!("{place}:{kind}"))
            .or_default() += 1;
        *self.wrong_by_fault.entry(fault.to_string()).or_default() += 1;
    }
}

/// The episode's directory: `cache/` (HARMONICS_CACHE_DIR), `stash/` (the other
/// versions' files), `outside/` (sentinels), `staging/` (mv sources), `logs/`.
pub struct Dirs {
    root: tempfile::TempDir,
    pub cache_dir: PathBuf,
    pub cache: PathBuf,
    pub stash: PathBuf,
    pub outside: PathBuf,
    pub staging: PathBuf,
    pub logs: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let root = tempfile::Builder::new().prefix("soak-").tempdir().unwrap();
        let p = root.path().to_path_buf();
        let d = Dirs {
            cache_dir: p.join("cache"),
            cache: p.join("cache").join(NAME),
            stash: p.join("stash"),
            outside: p.join("outside"),
            staging: p.join("staging"),
            logs: p.join("logs"),
            root,
        };
        for dir in [&d.cache_dir, &d.stash, &d.outside, &d.staging, &d.logs] {
            std::fs::create_dir_all(dir).unwrap();
        }
        d
    }

    /// Where the stash file `s` is kept.
    pub fn stash_file(&self, s: Stash) -> PathBuf {
        self.stash.join(format!(
            "v{}.{}",
            s.version,
            if s.legacy { "legacy" } else { "cache" }
        ))
    }
}

/// A process of the episode (a child of the plan, or a `cache_cli` run).
struct Running {
    label: String,
    child: Child,
    /// We sent SIGKILL (a planned kill, or a hang).
    killed: bool,
    out: Option<JoinHandle<Vec<String>>>,
    status: Option<ExitStatus>,
    log: PathBuf,
    /// A child of the plan prints a RESULT line; cache_cli does not.
    reports: bool,
}

enum Event {
    Spawn(usize),
    Kill(usize),
    Fault(usize),
    Unplant(PathBuf),
}

/// Runs the episode of `plan`.
pub fn run(plan: &Plan, cfg: &Config) -> Outcome {
    let dirs = Dirs::new();
    let mut out = Outcome::default();
    let mut rng = Rng::new(plan.seed ^ 0xfa17);
    prepare(plan, &dirs);
    let snapshot = Snapshot::take(&[&dirs.stash, &dirs.outside]);
    // The schedule's clock, shared with the children (their WRONG lines' times).
    let t0 = Instant::now();
    let t0_ns = child::now_ns();

    let mut events: Vec<(u64, Event)> = Vec::new();
    for (k, p) in plan.procs.iter().enumerate() {
        events.push((p.start_ms, Event::Spawn(k)));
        if let Some(ms) = p.kill_ms {
            events.push((p.start_ms + ms, Event::Kill(k)));
        }
    }
    for (k, (at, _)) in plan.faults.iter().enumerate() {
        events.push((*at, Event::Fault(k)));
    }
    // Applied faults: (ms after the start, kind), for attributing wrong records.
    let mut applied: Vec<(u64, String)> = Vec::new();
    // An initial state other than "empty" or "the main version's cache" counts as
    // the first fault.
    let benign = Initial::Stash(Stash {
        version: plan.main_version(),
        legacy: false,
    });
    if plan.initial != Initial::Empty && plan.initial != benign {
        applied.push((0, format!("initial-{}", initial_kind(plan.initial))));
    }

    let mut procs: Vec<Option<usize>> = vec![None; plan.procs.len()];
    let mut running: Vec<Running> = Vec::new();
    loop {
        let now_ms = t0.elapsed().as_millis() as u64;
        events.sort_by_key(|e| e.0);
        while events.first().is_some_and(|e| e.0 <= now_ms) {
            let (_, ev) = events.remove(0);
            match ev {
                Event::Spawn(k) => {
                    procs[k] = Some(running.len());
                    running.push(spawn_proc(plan, k, &dirs, t0_ns, cfg));
                }
                Event::Kill(k) => {
                    if let Some(r) = procs[k].map(|i| &mut running[i]) {
                        if r.status.is_none() {
                            r.killed = true;
                            let _ = sigkill(&mut r.child);
                            r.status = r.child.try_wait().ok().flatten();
                        }
                    }
                }
                Event::Fault(k) => {
                    let fault = plan.faults[k].1;
                    match apply(&fault, &dirs, &mut rng, &cfg.cli) {
                        Applied::Done => {
                            applied.push((now_ms, fault.kind()));
                            out.faults_applied.push(fault.kind());
                        }
                        Applied::Run(cmd) => {
                            applied.push((now_ms, fault.kind()));
                            out.faults_applied.push(fault.kind());
                            let log =
                                dirs.logs
                                    .join(format!("{}-{}.log", fault.kind(), running.len()));
                            running.push(start(fault.kind(), cmd, log, false));
                        }
                        Applied::Planted(path, hold) => {
                            applied.push((now_ms, fault.kind()));
                            out.faults_applied.push(fault.kind());
                            events.push((now_ms + hold, Event::Unplant(path)));
                        }
                        Applied::Skipped => {}
                    }
                }
                Event::Unplant(path) => unplant(&path),
            }
        }
        for r in running.iter_mut().filter(|r| r.status.is_none()) {
            if let Ok(Some(s)) = r.child.try_wait() {
                r.status = Some(s);
                if r.reports {
                    out.procs_ms = now_ms;
                }
            }
        }
        let all_done = running.iter().all(|r| r.status.is_some());
        if events.is_empty() && all_done {
            break;
        }
        if t0.elapsed() > cfg.hang {
            for r in running.iter_mut().filter(|r| r.status.is_none()) {
                out.counts.hangs += 1;
                out.details.push(format!(
                    "hang: {} still running after {:?}",
                    r.label, cfg.hang
                ));
                r.killed = true;
                let _ = sigkill(&mut r.child);
                r.status = r.child.try_wait().ok().flatten();
            }
            // Whatever is still due runs at once, so the loop ends (a process started
            // now is killed on the next turn).
            for e in events.iter_mut() {
                e.0 = 0;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    for r in running.iter_mut() {
        collect(r, &applied, &mut out);
    }

    // The file as the episode left it, read with no source.
    check_on_disk(plan, &dirs, &applied, &mut out);
    // A final open over the final version's source: every record exact.
    check_final(plan, &dirs, &applied, &mut out);
    for touch in snapshot.compare() {
        out.counts.outside_touches += 1;
        out.details.push(format!("outside touch: {touch}"));
    }
    for e in std::fs::read_dir(dirs.root.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !["cache", "stash", "outside", "staging", "logs"].contains(&name.as_str()) {
            out.counts.outside_touches += 1;
            out.details.push(format!(
                "outside touch: {name} created beside the cache directory"
            ));
        }
    }
    if out.failed() && cfg.keep_failed {
        let kept = dirs.root.keep();
        out.details
            .push(format!("episode directory kept: {}", kept.display()));
    }
    out
}

fn initial_kind(i: Initial) -> String {
    match i {
        Initial::Empty => "empty".into(),
        Initial::Stash(s) => format!("other-version{}", if s.legacy { "-legacy" } else { "" }),
        Initial::ZeroedHead(_, len) => format!("zeroed-head-{len}"),
    }
}

fn source_of(plan: &Plan, version: u32, n: usize) -> SoakSource {
    SoakSource::fixed(version, n, plan.layout_of(version), plan.identity)
}

/// A cache of `n` records of `version` written at `path` through the library.
fn build_cache(plan: &Plan, path: &Path, version: u32, n: usize) {
    let p = DiskCacheProducer::open_at(
        Box::new(source_of(plan, version, n)),
        path.to_path_buf(),
        plan.identity.token_fn(version),
    )
    .unwrap_or_else(|e| panic!("building {}: {e}", path.display()));
    assert_eq!(p.len(), n);
}

/// The stash files the plan uses, the sentinels outside, and the initial state.
fn prepare(plan: &Plan, dirs: &Dirs) {
    let mut stashes: Vec<Stash> = plan
        .faults
        .iter()
        .filter_map(|(_, f)| match f {
            Fault::Copy { stash, .. } | Fault::Move { stash } => Some(*stash),
            _ => None,
        })
        .collect();
    match plan.initial {
        Initial::Stash(s) => stashes.push(s),
        Initial::ZeroedHead(v, _) => stashes.push(Stash {
            version: v,
            legacy: false,
        }),
        Initial::Empty => {}
    }
    stashes.sort_by_key(|s| (s.version, s.legacy));
    stashes.dedup();
    for s in stashes {
        let path = dirs.stash_file(s);
        let n = plan.n_of(s.version);
        if s.legacy {
            let mut body = Vec::new();
            for i in 0..n as u64 {
                body.extend(
                    record(s.version, i, plan.layout_of(s.version))
                        .to_wire()
                        .unwrap(),
                );
            }
            std::fs::write(&path, body).unwrap();
        } else {
            build_cache(plan, &path, s.version, n);
        }
    }

    // Sentinels: a plain file, a valid cache of the main version with fewer records
    // (a writer following a link to it would append there), a directory, and a name
    // that must stay absent.
    let mut bytes = vec![0u8; 4096];
    let mut rng = Rng::new(plan.seed ^ 0x5e7);
    for b in bytes.iter_mut() {
        *b = rng.below(256) as u8;
    }
    std::fs::write(dirs.outside.join("file"), &bytes).unwrap();
    let main = plan.main_version();
    build_cache(
        plan,
        &dirs.outside.join("cache"),
        main,
        (plan.n_of(main) / 2).max(1),
    );
    std::fs::create_dir(dirs.outside.join("dir")).unwrap();
    std::fs::write(dirs.outside.join("dir").join("inner"), b"inner").unwrap();

    match plan.initial {
        Initial::Empty => {}
        Initial::Stash(s) => {
            std::fs::copy(dirs.stash_file(s), &dirs.cache).unwrap();
        }
        Initial::ZeroedHead(v, len) => {
            let src = dirs.stash_file(Stash {
                version: v,
                legacy: false,
            });
            let mut b = std::fs::read(src).unwrap();
            let len = (len as usize).min(b.len());
            b[..len].fill(0);
            std::fs::write(&dirs.cache, b).unwrap();
        }
    }
}

fn spawn_proc(plan: &Plan, k: usize, dirs: &Dirs, t0_ns: u128, cfg: &Config) -> Running {
    let p = &plan.procs[k];
    let log = dirs.logs.join(format!("{k}-{}.log", p.role.name()));
    let envs = [
        (child::CACHE, dirs.cache.display().to_string()),
        (child::IDENTITY, identity_name(plan.identity).to_string()),
        (child::LAYOUT, plan.layout.to_string()),
        (
            child::SHARED,
            if plan.shared_layout { "1" } else { "0" }.to_string(),
        ),
        (child::T0, t0_ns.to_string()),
    ];
    let mut cmd = child_command(&super::child_test(), &p.encode(), &envs);
    cmd.env_remove(child::SABOTAGE);
    if cfg.sabotage {
        cmd.env(child::SABOTAGE, "swap");
    }
    start(
        format!("proc {k} ({} v{})", p.role.name(), p.version),
        cmd,
        log,
        true,
    )
}

fn start(label: String, mut cmd: Command, log: PathBuf, reports: bool) -> Running {
    let err = File::create(&log).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            .collect::<Vec<String>>()
    });
    Running {
        label,
        child,
        killed: false,
        out: Some(out),
        status: None,
        log,
        reports,
    }
}

/// The last fault applied at or before `ms`.
fn last_fault(applied: &[(u64, String)], ms: u64) -> String {
    applied
        .iter()
        .rev()
        .find(|(at, _)| *at <= ms)
        .map_or_else(|| "none".to_string(), |(_, k)| k.clone())
}

/// Reads what a finished process printed and how it ended.
fn collect(r: &mut Running, applied: &[(u64, String)], out: &mut Outcome) {
    let status = match r.status {
        Some(s) => s,
        None => r.child.wait().unwrap(),
    };
    let lines = r.out.take().unwrap().join().unwrap_or_default();
    let mut result = None;
    let mut wrongs = 0;
    // A process's wrong records are put down to the last fault before its first one:
    // a reader that went wrong at a fault may go on reading the wrong file after
    // later faults.
    let mut cause = None;
    for line in &lines {
        if let Some((_, rest)) = line.split_once("WRONG ") {
            // WRONG <ms> <role>/<op> <kind> <detail>
            let mut f = rest.splitn(4, ' ');
            let ms: u64 = f.next().unwrap_or("0").parse().unwrap_or(0);
            let op = f
                .next()
                .unwrap_or("?")
                .split('/')
                .nth(1)
                .unwrap_or("?")
                .to_string();
            let kind = f.next().unwrap_or("?").to_string();
            let cause = cause.get_or_insert_with(|| last_fault(applied, ms));
            out.add_wrong(&op, &kind, cause);
            if wrongs < 5 {
                out.details
                    .push(format!("{}: WRONG {rest} (after: {cause})", r.label));
            }
            wrongs += 1;
        } else if let Some((_, rest)) = line.split_once("RESULT: ") {
            result = Some(Report::decode(rest));
        }
    }
    if let Some(sig) = status.signal() {
        if !(r.killed && sig == libc::SIGKILL) {
            out.counts.signal_deaths += 1;
            out.details.push(format!(
                "{} died of signal {sig}; log: {}",
                r.label,
                tail(&r.log)
            ));
        }
    } else if r.reports {
        match result {
            Some(rep) => {
                out.counts.checked += rep.checked;
                for (k, v) in rep.errors {
                    *out.counts.errors.entry(k).or_default() += v;
                }
                for (k, v) in rep.outcomes {
                    *out.counts.outcomes.entry(k).or_default() += v;
                }
            }
            None => {
                out.counts.panics += 1;
                out.details.push(format!(
                    "{} exited with {status} and no result; log: {}",
                    r.label,
                    tail(&r.log)
                ));
            }
        }
    } else {
        let key = format!("{}:exit-{}", r.label, status.code().unwrap_or(-1));
        *out.counts.outcomes.entry(key).or_default() += 1;
    }
    if wrongs > 0 {
        out.details.push(format!(
            "{}: {wrongs} wrong; log: {}",
            r.label,
            tail(&r.log)
        ));
    }
}

/// The last lines of a log file, on one line.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(6);
    lines[from..].join(" | ")
}

/// The file left at the cache path, read with no source: every record must be the
/// one its header names (a file naming none: the first record's version), and none
/// may be bytes of no record.
fn check_on_disk(plan: &Plan, dirs: &Dirs, applied: &[(u64, String)], out: &mut Outcome) {
    let last = last_fault(applied, u64::MAX);
    let mut r = match CacheReader::open(&dirs.cache) {
        Ok(r) => r,
        Err(e) => {
            out.counts
                .add_error(format!("disk-open:{}", error_kind(&e)));
            return;
        }
    };
    let meta = r.metadata();
    let mut version = version_named(&meta.token, meta.identity.as_ref().map(|i| i.id.as_str()));
    for pos in 0..r.len() {
        let got = match r.next_view() {
            Ok(t) => t.to_owned(),
            Err(e) => {
                out.counts
                    .add_error(format!("disk-next:{}", error_kind(&e)));
                return;
            }
        };
        out.counts.checked += 1;
        let v = match version.or_else(|| claimed(&got).map(|c| c.0)) {
            Some(v) => v,
            None => {
                out.add_wrong("disk", Wrong::Altered.name(), &last);
                out.details.push(format!(
                    "on disk: record {pos} of a file naming no version is no record (after: {last})"
                ));
                return;
            }
        };
        version = Some(v);
        if let Some(w) = check(&got, v, pos, plan.layout_of(v)) {
            out.add_wrong("disk", w.name(), &last);
            out.details.push(format!(
                "on disk: record {pos} is {} ({}; header token {:?}; after: {last})",
                w.name(),
                claimed(&got).map_or("no record".into(), |(v, i)| format!("v{v} #{i}")),
                r.metadata().token
            ));
            return;
        }
    }
}

/// A final open over the final version's source: `len()` is its count and every
/// record, in order and by random access, is exact.
fn check_final(plan: &Plan, dirs: &Dirs, applied: &[(u64, String)], out: &mut Outcome) {
    let last = last_fault(applied, u64::MAX);
    let v = plan.final_version;
    let n = plan.n_of(v);
    let mut p = match DiskCacheProducer::open_at(
        Box::new(source_of(plan, v, n)),
        dirs.cache.clone(),
        plan.identity.token_fn(v),
    ) {
        Ok(p) => p,
        Err(e) => {
            out.counts
                .add_error(format!("final-open:{}", error_kind(&e)));
            out.details.push(format!("final open failed: {e}"));
            return;
        }
    };
    if p.len() != n {
        out.add_wrong("final", Wrong::Size.name(), &last);
        out.details
            .push(format!("final open: len() {} for a source of {n}", p.len()));
        return;
    }
    let layout = plan.layout_of(v);
    let report = |got: Tensor, i: u64, how: &str, out: &mut Outcome| {
        out.counts.checked += 1;
        if let Some(w) = check(&got, v, i, layout) {
            out.add_wrong("final", w.name(), &last);
            out.details.push(format!(
                "final {how}({i}) is {} (got {})",
                w.name(),
                claimed(&got).map_or("no record".into(), |(v, i)| format!("v{v} #{i}"))
            ));
        }
    };
    for i in 0..n as u64 {
        match p.next() {
            Ok(t) => report(t, i, "next", out),
            Err(e) => {
                out.counts
                    .add_error(format!("final-next:{}", error_kind(&e)));
                return;
            }
        }
    }
    for i in (0..n as u64).rev() {
        match p.view_at(i).map(|t| t.to_owned()) {
            Ok(t) => match Producer::view_intact(&p) {
                Ok(()) => report(t, i, "view_at", out),
                Err(e) => out.counts.add_error(format!("final-at:{}", error_kind(&e))),
            },
            Err(e) => {
                out.counts.add_error(format!("final-at:{}", error_kind(&e)));
                return;
            }
        }
    }
}
