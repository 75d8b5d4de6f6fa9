//! One episode, run by the parent: a fresh directory (the cache directory, the other
//! versions' files, sentinel files outside), the processes of the plan started and
//! killed on schedule, the faults applied on schedule, `cache_cli` beside them; then
//! the file as left on disk checked with no source, a final open checked record by
//! record, and the sentinels compared with their snapshot.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use harmonics_dataset::cache::{lock_path, CacheReader, MAGIC};
use harmonics_dataset::{DiskCacheProducer, Producer, Tensor};

use crate::child::{self, error_kind, identity_name, Report};
use crate::plan::{Cli, Fault, Initial, Plan, Plant, Rng, Stash};
use crate::records::{check, claimed, record, version_named, SoakSource, Wrong};
use crate::support::reliability::{child_command, sigkill};

/// The cache's name in the episode's cache directory.
const NAME: &str = "data.cache";

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
    pub checked: u64,
    /// Wrong records by where they were seen and what they were (`next:other-version`).
    pub wrong: BTreeMap<String, u64>,
    /// Wrong records by the last fault applied before them (`none`: no fault yet).
    pub wrong_by_fault: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<String, u64>,
    pub signal_deaths: u64,
    pub hangs: u64,
    pub outside_touches: u64,
    /// Processes that exited with a failure and no result (a panic).
    pub panics: u64,
    /// When the last process of the plan ended, in ms after the start.
    pub procs_ms: u64,
    /// Fault kinds applied in this episode (for the per-fault table).
    pub faults_applied: Vec<String>,
    pub details: Vec<String>,
}

impl Outcome {
    pub fn wrong_total(&self) -> u64 {
        self.wrong.values().sum()
    }
    pub fn failed(&self) -> bool {
        self.wrong_total() + self.signal_deaths + self.hangs + self.outside_touches + self.panics
            > 0
    }
    fn add_wrong(&mut self, place: &str, kind: &str, fault: &str) {
        *self.wrong.entry(format!("{place}:{kind}")).or_default() += 1;
        *self.wrong_by_fault.entry(fault.to_string()).or_default() += 1;
    }
    fn add_error(&mut self, key: String) {
        *self.errors.entry(key).or_default() += 1;
    }
}

/// The episode's directory: `cache/` (HARMONICS_CACHE_DIR), `stash/` (the other
/// versions' files), `outside/` (sentinels), `staging/` (mv sources), `logs/`.
struct Dirs {
    root: tempfile::TempDir,
    cache_dir: PathBuf,
    cache: PathBuf,
    stash: PathBuf,
    outside: PathBuf,
    staging: PathBuf,
    logs: PathBuf,
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
                    let note = apply(&fault, &dirs, &mut rng, cfg, &mut running);
                    match note {
                        Applied::Done => {
                            applied.push((now_ms, fault.kind()));
                            out.faults_applied.push(fault.kind());
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
                out.hangs += 1;
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
        out.outside_touches += 1;
        out.details.push(format!("outside touch: {touch}"));
    }
    for e in std::fs::read_dir(dirs.root.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !["cache", "stash", "outside", "staging", "logs"].contains(&name.as_str()) {
            out.outside_touches += 1;
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

fn stash_path(dirs: &Dirs, s: Stash) -> PathBuf {
    dirs.stash.join(format!(
        "v{}.{}",
        s.version,
        if s.legacy { "legacy" } else { "cache" }
    ))
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
        let path = stash_path(dirs, s);
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
            std::fs::copy(stash_path(dirs, s), &dirs.cache).unwrap();
        }
        Initial::ZeroedHead(v, len) => {
            let src = stash_path(
                dirs,
                Stash {
                    version: v,
                    legacy: false,
                },
            );
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
    let mut cmd = child_command("child_soak", &p.encode(), &envs);
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
            out.add_wrong(&op, &kind, &last_fault(applied, ms));
            if wrongs < 5 {
                out.details.push(format!(
                    "{}: WRONG {rest} (last fault: {})",
                    r.label,
                    last_fault(applied, ms)
                ));
            }
            wrongs += 1;
        } else if let Some((_, rest)) = line.split_once("RESULT: ") {
            result = Some(Report::decode(rest));
        }
    }
    if let Some(sig) = status.signal() {
        if !(r.killed && sig == libc::SIGKILL) {
            out.signal_deaths += 1;
            out.details.push(format!(
                "{} died of signal {sig}; log: {}",
                r.label,
                tail(&r.log)
            ));
        }
    } else if r.reports {
        match result {
            Some(rep) => {
                out.checked += rep.checked;
                for (k, v) in rep.errors {
                    *out.errors.entry(k).or_default() += v;
                }
                for (k, v) in rep.outcomes {
                    *out.outcomes.entry(k).or_default() += v;
                }
            }
            None => {
                out.panics += 1;
                out.details.push(format!(
                    "{} exited with {status} and no result; log: {}",
                    r.label,
                    tail(&r.log)
                ));
            }
        }
    } else {
        let key = format!("{}:exit-{}", r.label, status.code().unwrap_or(-1));
        *out.outcomes.entry(key).or_default() += 1;
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

/// What applying a fault did.
enum Applied {
    Done,
    /// Planted at this path, to be removed after this many milliseconds.
    Planted(PathBuf, u64),
    /// Not applicable to what the path holds now (e.g. a byte flip in a legacy
    /// file, which has no CRC to catch it, or a copy onto a planted link).
    Skipped,
}

fn is_regular(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

fn absent(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_err()
}

/// The cache path opened for writing in place: only a regular file, never through
/// a link (the soak must not touch the outside itself).
fn open_in_place(path: &Path) -> Option<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    f.metadata().ok()?.file_type().is_file().then_some(f)
}

/// True when the file starts with the current format's magic. Byte-level damage is
/// applied only to such files: the legacy format has no CRC, so a flipped byte in it
/// cannot be detected by any reader.
fn is_current(f: &File) -> bool {
    let mut head = [0u8; 8];
    f.read_exact_at(&mut head, 0).is_ok() && head == MAGIC
}

fn apply(
    fault: &Fault,
    dirs: &Dirs,
    rng: &mut Rng,
    cfg: &Config,
    running: &mut Vec<Running>,
) -> Applied {
    let path = &dirs.cache;
    let done = |ok: bool| if ok { Applied::Done } else { Applied::Skipped };
    match *fault {
        Fault::Flip { count } => {
            let Some(f) = open_in_place(path).filter(is_current) else {
                return Applied::Skipped;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len == 0 {
                return Applied::Skipped;
            }
            for _ in 0..count {
                let at = rng.below(len);
                let mut b = [0u8; 1];
                if f.read_exact_at(&mut b, at).is_ok() {
                    b[0] ^= 1 << rng.below(8);
                    let _ = f.write_all_at(&b, at);
                }
            }
            Applied::Done
        }
        Fault::Truncate { keep_permille } => {
            let Some(f) = open_in_place(path) else {
                return Applied::Skipped;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            done(f.set_len(len * keep_permille / 1000).is_ok())
        }
        Fault::ZeroHead { len } => {
            let Some(f) = open_in_place(path).filter(is_current) else {
                return Applied::Skipped;
            };
            done(f.write_all_at(&vec![0u8; len as usize], 0).is_ok())
        }
        Fault::ZeroRange { len } => {
            let Some(f) = open_in_place(path).filter(is_current) else {
                return Applied::Skipped;
            };
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            if size == 0 {
                return Applied::Skipped;
            }
            let at = rng.below(size);
            let len = len.min(size - at);
            done(f.write_all_at(&vec![0u8; len as usize], at).is_ok())
        }
        Fault::Copy { stash, in_place } => {
            let src = stash_path(dirs, stash);
            if in_place {
                // As `dd conv=notrunc`: the other version's bytes over the old ones.
                let Some(f) = open_in_place(path) else {
                    return Applied::Skipped;
                };
                let bytes = std::fs::read(&src).unwrap();
                done(f.write_all_at(&bytes, 0).is_ok())
            } else {
                if !(is_regular(path) || absent(path)) {
                    return Applied::Skipped;
                }
                let ok = Command::new("cp")
                    .arg(&src)
                    .arg(path)
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                done(ok)
            }
        }
        Fault::Move { stash } => {
            let staged = dirs.staging.join(format!("mv-{}", rng.next_u64()));
            std::fs::copy(stash_path(dirs, stash), &staged).unwrap();
            let ok = std::fs::rename(&staged, path).is_ok();
            let _ = std::fs::remove_file(&staged);
            done(ok)
        }
        Fault::Remove => done(is_regular(path) && std::fs::remove_file(path).is_ok()),
        Fault::RemoveLock => {
            let lock = lock_path(path);
            done(is_regular(&lock) && std::fs::remove_file(&lock).is_ok())
        }
        Fault::Plant {
            what,
            at_lock,
            hold_ms,
        } => {
            let at = if at_lock {
                lock_path(path)
            } else {
                path.clone()
            };
            unplant(&at);
            if is_regular(&at) && std::fs::remove_file(&at).is_err() {
                return Applied::Skipped;
            }
            let link = |target: &str| std::os::unix::fs::symlink(dirs.outside.join(target), &at);
            let ok = match what {
                Plant::LinkToFile => link("file").is_ok(),
                Plant::LinkToCache => link("cache").is_ok(),
                Plant::LinkToDir => link("dir").is_ok(),
                Plant::Dangling => link("absent").is_ok(),
                Plant::Fifo => {
                    let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
                    // SAFETY: mkfifo(3) on a NUL-terminated path we own.
                    unsafe { libc::mkfifo(c.as_ptr(), 0o644) == 0 }
                }
                Plant::Dir => {
                    std::fs::create_dir(&at).is_ok()
                        && std::fs::write(at.join("inner"), b"planted").is_ok()
                }
            };
            if ok {
                Applied::Planted(at, hold_ms)
            } else {
                Applied::Skipped
            }
        }
        Fault::Cli(c) => {
            let mut cmd = Command::new(&cfg.cli);
            cmd.env("HARMONICS_CACHE_DIR", &dirs.cache_dir);
            match c {
                Cli::Clear => cmd.arg("clear"),
                Cli::Prune { max_bytes } => {
                    cmd.args(["prune", "--max-size", &max_bytes.to_string()])
                }
                Cli::Rm => cmd.args(["rm", NAME]),
                Cli::Verify => cmd.args(["verify", NAME]),
            };
            let kind = fault.kind();
            let log = dirs.logs.join(format!("{kind}-{}.log", running.len()));
            running.push(start(kind, cmd, log, false));
            Applied::Done
        }
    }
}

/// Removes what a plant left at `at` (a link, a FIFO, a directory), never a regular
/// file (the library may have renamed a new cache over a planted link).
fn unplant(at: &Path) {
    let Ok(m) = std::fs::symlink_metadata(at) else {
        return;
    };
    let t = m.file_type();
    if t.is_dir() {
        let _ = std::fs::remove_dir_all(at);
    } else if !t.is_file() {
        let _ = std::fs::remove_file(at);
    }
}

/// The file left at the cache path, read with no source: every record must be the
/// one its header names (a file naming none: the first record's version), and none
/// may be bytes of no record.
fn check_on_disk(plan: &Plan, dirs: &Dirs, applied: &[(u64, String)], out: &mut Outcome) {
    let last = last_fault(applied, u64::MAX);
    let mut r = match CacheReader::open(&dirs.cache) {
        Ok(r) => r,
        Err(e) => {
            out.add_error(format!("disk-open:{}", error_kind(&e)));
            return;
        }
    };
    let meta = r.metadata();
    let mut version = version_named(&meta.token, meta.identity.as_ref().map(|i| i.id.as_str()));
    for pos in 0..r.len() {
        let got = match r.next_view() {
            Ok(t) => t.to_owned(),
            Err(e) => {
                out.add_error(format!("disk-next:{}", error_kind(&e)));
                return;
            }
        };
        out.checked += 1;
        let v = match version.or_else(|| claimed(&got).map(|c| c.0)) {
            Some(v) => v,
            None => {
                out.add_wrong("disk", Wrong::Altered.name(), &last);
                out.details.push(format!(
                    "on disk: record {pos} of a file naming no version is no record (last fault: {last})"
                ));
                return;
            }
        };
        version = Some(v);
        if let Some(w) = check(&got, v, pos, plan.layout_of(v)) {
            out.add_wrong("disk", w.name(), &last);
            out.details.push(format!(
                "on disk: record {pos} is {} ({}; header token {:?}; last fault: {last})",
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
            out.add_error(format!("final-open:{}", error_kind(&e)));
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
        out.checked += 1;
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
                out.add_error(format!("final-next:{}", error_kind(&e)));
                return;
            }
        }
    }
    for i in (0..n as u64).rev() {
        match p.view_at(i).map(|t| t.to_owned()) {
            Ok(t) => match Producer::view_intact(&p) {
                Ok(()) => report(t, i, "view_at", out),
                Err(e) => out.add_error(format!("final-at:{}", error_kind(&e))),
            },
            Err(e) => {
                out.add_error(format!("final-at:{}", error_kind(&e)));
                return;
            }
        }
    }
}

/// What the files outside the cache directory were before the episode.
struct Snapshot(Vec<(PathBuf, Option<Entry>)>);

#[derive(PartialEq, Debug)]
struct Entry {
    kind: &'static str,
    ino: u64,
    len: u64,
    mtime_ns: i64,
    content: Vec<u8>,
}

impl Snapshot {
    fn take(dirs: &[&Path]) -> Snapshot {
        let mut all = Vec::new();
        for d in dirs {
            walk(d, &mut all);
        }
        // A name that must stay absent (the target of a dangling link).
        if let Some(outside) = dirs.iter().find(|d| d.ends_with("outside")) {
            all.push(outside.join("absent"));
        }
        Snapshot(
            all.into_iter()
                .map(|p| {
                    let e = entry(&p);
                    (p, e)
                })
                .collect(),
        )
    }

    /// What differs now: one line per path.
    fn compare(&self) -> Vec<String> {
        let mut diffs = Vec::new();
        for (path, before) in &self.0 {
            let now = entry(path);
            if &now != before {
                diffs.push(format!(
                    "{}: {} -> {}",
                    path.display(),
                    describe(before),
                    describe(&now)
                ));
            }
        }
        let mut names = Vec::new();
        for (path, _) in &self.0 {
            if let Some(parent) = path.parent() {
                if !names.contains(&parent.to_path_buf()) {
                    names.push(parent.to_path_buf());
                }
            }
        }
        for dir in names {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if !self.0.iter().any(|(p, _)| *p == e.path()) {
                    diffs.push(format!("{} appeared", e.path().display()));
                }
            }
        }
        diffs
    }
}

fn walk(dir: &Path, all: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        all.push(p.clone());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, all);
        }
    }
}

fn entry(path: &Path) -> Option<Entry> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let t = m.file_type();
    let kind = if t.is_file() {
        "file"
    } else if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "link"
    } else {
        "other"
    };
    let mut content = Vec::new();
    if t.is_file() {
        let _ = File::open(path).and_then(|mut f| f.read_to_end(&mut content));
    }
    Some(Entry {
        kind,
        ino: m.ino(),
        len: if t.is_dir() { 0 } else { m.len() },
        mtime_ns: if t.is_dir() {
            0
        } else {
            m.mtime() * 1_000_000_000 + m.mtime_nsec()
        },
        content,
    })
}

fn describe(e: &Option<Entry>) -> String {
    match e {
        None => "absent".into(),
        Some(e) => format!(
            "{} ino {} len {} mtime {}",
            e.kind, e.ino, e.len, e.mtime_ns
        ),
    }
}
