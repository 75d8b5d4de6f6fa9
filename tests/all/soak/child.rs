//! What one process of an episode does (this test binary re-executed, see
//! `child_soak` in main.rs): its role's opens, reads, refreshes and appends through
//! the public API, each record checked against the one asked for.
//!
//! Output on stdout, read by the parent: a `WRONG <ms> <op> <kind> <detail>` line
//! as soon as a wrong record is seen (so a writer killed later still counts it), and
//! one `RESULT: ` line at the end with the records checked, the errors by kind and
//! the outcomes of opens and refreshes. Library errors never panic the child.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harmonics_dataset::cache::CacheReader;
use harmonics_dataset::{CacheOutcome, DType, DiskCacheProducer, Error, Producer, Result, Tensor};

use super::plan::{layout_of, Proc, Rng, Role};
use super::records::{check, claimed, version_named, Identity, SoakSource, Wrong};

/// Environment of a child, set by the parent.
pub const CACHE: &str = "SOAK_CACHE";
pub const IDENTITY: &str = "SOAK_IDENTITY";
pub const LAYOUT: &str = "SOAK_LAYOUT";
pub const SHARED: &str = "SOAK_SHARED_LAYOUT";
pub const T0: &str = "SOAK_T0_NS";
/// `swap`: the checker swaps records 1 and 2 (it must then report them wrong).
pub const SABOTAGE: &str = "HARMONICS_SOAK_SABOTAGE";

/// The episode as a child sees it.
pub struct Env {
    pub cache: PathBuf,
    pub identity: Identity,
    pub layout: u64,
    pub shared: bool,
    pub t0_ns: u128,
    pub swap: bool,
}

impl Env {
    pub fn from_env() -> Env {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        Env {
            cache: PathBuf::from(var(CACHE)),
            identity: match var(IDENTITY).as_str() {
                "token" => Identity::Token,
                "fingerprint" => Identity::Fingerprint,
                _ => Identity::Both,
            },
            layout: var(LAYOUT).parse().unwrap(),
            shared: var(SHARED) == "1",
            t0_ns: var(T0).parse().unwrap(),
            swap: std::env::var(SABOTAGE).is_ok_and(|s| s == "swap"),
        }
    }
}

pub fn identity_name(i: Identity) -> &'static str {
    match i {
        Identity::Token => "token",
        Identity::Fingerprint => "fingerprint",
        Identity::Both => "both",
    }
}

pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A short name for an error's kind (its variant, and an I/O error's kind).
pub fn error_kind(e: &Error) -> String {
    match e {
        Error::Io { source, .. } => format!("io-{:?}", source.kind()),
        Error::Wire(_) => "wire".into(),
        Error::Corrupt { .. } => "corrupt".into(),
        Error::Empty(_) => "empty".into(),
        Error::RebuildFailed { cause, .. } => format!("rebuild-failed({})", error_kind(cause)),
        Error::NotRegularFile { kind, role, .. } => {
            format!("not-regular({} as {role})", kind.trim_start_matches("a "))
        }
        Error::LockTimeout { .. } => "lock-timeout".into(),
        Error::IndexOutOfRange { .. } => "out-of-range".into(),
        other => format!(
            "other({})",
            other.to_string().chars().take(40).collect::<String>()
        ),
    }
}

/// A child's counts.
#[derive(Default)]
pub struct Report {
    pub checked: u64,
    pub errors: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<String, u64>,
}

impl Report {
    pub fn encode(&self) -> String {
        let map = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";")
        };
        format!(
            "checked {}|errors {}|outcomes {}",
            self.checked,
            map(&self.errors),
            map(&self.outcomes)
        )
    }

    pub fn decode(s: &str) -> Report {
        let mut r = Report::default();
        for part in s.split('|') {
            let (name, rest) = part.split_once(' ').unwrap_or((part, ""));
            let map = || {
                rest.split(';')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.rsplit_once('=').unwrap();
                        (k.to_string(), v.parse::<u64>().unwrap())
                    })
                    .collect::<BTreeMap<_, _>>()
            };
            match name {
                "checked" => r.checked = rest.parse().unwrap(),
                "errors" => r.errors = map(),
                "outcomes" => r.outcomes = map(),
                _ => {}
            }
        }
        r
    }
}

/// The checking side of a process: which version and count its source has.
struct Checker<'a> {
    env: &'a Env,
    role: &'static str,
    version: u32,
    report: Report,
}

impl Checker<'_> {
    fn elapsed_ms(&self) -> u128 {
        now_ns().saturating_sub(self.env.t0_ns) / 1_000_000
    }

    /// Sabotage: the checker expects record 2 where 1 was asked and 1 for 2.
    fn expected(&self, index: u64) -> u64 {
        match (self.env.swap, index) {
            (true, 1) => 2,
            (true, 2) => 1,
            (_, i) => i,
        }
    }

    /// Checks `got`, received for record `index` of `version`.
    fn check_as(&mut self, op: &str, got: &Tensor, version: u32, index: u64) {
        self.report.checked += 1;
        let layout = layout_of(self.env.layout, self.env.shared, version);
        let expected = self.expected(index);
        if let Some(w) = check(got, version, expected, layout) {
            let what = match claimed(got) {
                Some((v, i)) => format!("v{v} #{i}"),
                None => format!("{} bytes of no record", got.data.len()),
            };
            self.wrong(op, w, &format!("asked v{version} #{expected}, got {what}"));
        }
    }

    fn check(&mut self, op: &str, got: &Tensor, index: u64) {
        self.check_as(op, got, self.version, index)
    }

    fn wrong(&mut self, op: &str, w: Wrong, detail: &str) {
        let line = format!(
            "WRONG {} {}/{op} {} {detail}",
            self.elapsed_ms(),
            self.role,
            w.name()
        );
        eprintln!("{line}");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn error(&mut self, op: &str, e: &Error) {
        eprintln!("{} ms: {op}: {e}", self.elapsed_ms());
        *self
            .report
            .errors
            .entry(format!("{op}:{}", error_kind(e)))
            .or_default() += 1;
    }

    fn outcome(&mut self, op: &str, o: &CacheOutcome) {
        let name = match o {
            CacheOutcome::Reused => "reused",
            CacheOutcome::Created => "created",
            CacheOutcome::Appended { .. } => "appended",
            CacheOutcome::Rebuilt(_) => "rebuilt",
            _ => "other",
        };
        *self
            .report
            .outcomes
            .entry(format!("{op}:{name}"))
            .or_default() += 1;
    }

    /// A copy of a view, if both the read and the check made after the copy (that
    /// its bytes were not cut or rewritten under it) succeeded; else the error is
    /// counted under `op` (or `<op>-intact`).
    fn confirmed(&mut self, op: &str, got: Result<Tensor>, intact: Result<()>) -> Option<Tensor> {
        match (got, intact) {
            (Ok(t), Ok(())) => Some(t),
            (Err(e), _) => {
                self.error(op, &e);
                None
            }
            (_, Err(e)) => {
                self.error(&format!("{op}-intact"), &e);
                None
            }
        }
    }

    /// `len()` after an open or refresh must be the source's count.
    fn check_len(&mut self, op: &str, len: usize, n: usize) -> bool {
        if len != n {
            self.wrong(op, Wrong::Size, &format!("len() {len}, the source has {n}"));
        }
        len == n
    }

    fn open(&mut self, n: &Arc<AtomicUsize>, delay: Duration) -> Option<DiskCacheProducer> {
        let identity = self.env.identity;
        let source = SoakSource::new(
            self.version,
            n.clone(),
            layout_of(self.env.layout, self.env.shared, self.version),
            identity,
        )
        .slow(delay);
        let token = identity.token_fn(self.version);
        match DiskCacheProducer::open_at(Box::new(source), self.env.cache.clone(), token) {
            Ok(p) => {
                self.outcome("open", p.outcome());
                self.check_len("open", p.len(), n.load(Ordering::SeqCst));
                Some(p)
            }
            Err(e) => {
                self.error("open", &e);
                None
            }
        }
    }

    /// `count` records in order from record 0 (the producer was just opened or
    /// refreshed); false on an error (the producer's cursor is then unknown: the
    /// caller reopens or refreshes).
    fn read_next(&mut self, p: &mut DiskCacheProducer, n: usize, count: usize) -> bool {
        let mut pos = 0u64;
        let mut size_ok = true;
        for _ in 0..count {
            match p.next() {
                Ok(t) => self.check("next", &t, pos),
                Err(e) => {
                    self.error("next", &e);
                    return false;
                }
            }
            // A rebuild while reading (damage found) must keep the source's count.
            if size_ok && p.len() != n {
                size_ok = self.check_len("next", p.len(), n);
            }
            pos = (pos + 1) % p.len().max(1) as u64;
        }
        true
    }

    /// Record `i` by random access, copied, then confirmed intact; past the end
    /// (`i >= n`) it must be refused. False on an error.
    fn read_at(&mut self, p: &mut DiskCacheProducer, n: usize, i: u64) -> bool {
        let got = match p.view_at(i).map(|v| v.to_owned()) {
            Err(Error::IndexOutOfRange { .. }) if i >= n as u64 => return true,
            got => got,
        };
        let Some(got) = self.confirmed("at", got, Producer::view_intact(p)) else {
            return false;
        };
        if i >= n as u64 {
            self.wrong(
                "at",
                Wrong::PastEnd,
                &format!("record {i} served, the source has {n}"),
            );
        } else {
            self.check("at", &got, i);
        }
        true
    }
}

/// Runs `proc` in this process.
pub fn run(proc: &Proc, env: &Env) -> Report {
    let mut c = Checker {
        env,
        role: proc.role.name(),
        version: proc.version,
        report: Report::default(),
    };
    let mut rng = Rng::new(proc.seed);
    let n = proc.n;
    let fixed = Arc::new(AtomicUsize::new(n));
    match proc.role {
        Role::Writer => {
            if let Some(mut p) = c.open(&fixed, Duration::from_micros(proc.delay_us)) {
                c.read_next(&mut p, n, n);
            }
        }
        Role::Appender => appender(&mut c, proc, &mut rng),
        Role::Next => {
            let per_round = proc.reads / proc.rounds as u64;
            for _ in 0..proc.rounds {
                if let Some(mut p) = c.open(&fixed, Duration::ZERO) {
                    let count = rng.range(per_round / 2, per_round * 3 / 2) as usize;
                    c.read_next(&mut p, n, count);
                }
            }
        }
        Role::At => {
            let mut p = None;
            let mut failures = 0;
            for _ in 0..proc.reads {
                if p.is_none() {
                    p = c.open(&fixed, Duration::ZERO);
                }
                let Some(q) = p.as_mut() else {
                    failures += 1;
                    if failures > proc.rounds {
                        break;
                    }
                    continue;
                };
                let i = rng.below(n as u64 + n as u64 / 16 + 1);
                if !c.read_at(q, n, i) {
                    failures += 1;
                    if failures % 3 == 0 {
                        p = None;
                    }
                    if failures > 3 * proc.rounds {
                        break;
                    }
                }
            }
        }
        Role::Refresh => {
            if let Some(mut p) = c.open(&fixed, Duration::ZERO) {
                let per_round = proc.reads / proc.rounds as u64;
                for _ in 0..proc.rounds {
                    match p.refresh() {
                        Ok(o) => {
                            let o = o.clone();
                            c.outcome("refresh", &o);
                            c.check_len("refresh", p.len(), n);
                        }
                        Err(e) => {
                            c.error("refresh", &e);
                            continue;
                        }
                    }
                    if c.read_next(&mut p, n, per_round as usize / 2) {
                        for _ in 0..per_round / 2 {
                            let i = rng.below(n as u64);
                            if !c.read_at(&mut p, n, i) {
                                break;
                            }
                        }
                    }
                }
            }
        }
        Role::Raw => {
            for _ in 0..(proc.reads / n as u64).clamp(1, 20) {
                raw(&mut c, &mut rng);
            }
        }
    }
    c.report
}

/// An appending writer: its source grows from `n_start` to `n` in `rounds` steps, a
/// `refresh()` after each (appends under the size rule; a rebuild when the
/// fingerprint names the count).
fn appender(c: &mut Checker, proc: &Proc, rng: &mut Rng) {
    let n = Arc::new(AtomicUsize::new(proc.n_start));
    let delay = Duration::from_micros(proc.delay_us);
    let Some(mut p) = c.open(&n, delay) else {
        return;
    };
    c.read_next(&mut p, proc.n_start, proc.n_start.min(50));
    for step in 1..=proc.rounds as usize {
        let now = proc.n_start + (proc.n - proc.n_start) * step / proc.rounds as usize;
        n.store(now, Ordering::SeqCst);
        match p.refresh() {
            Ok(o) => {
                let o = o.clone();
                c.outcome("refresh", &o);
                if !c.check_len("refresh", p.len(), now) {
                    continue;
                }
            }
            Err(e) => {
                c.error("refresh", &e);
                continue;
            }
        }
        // The newest records, by random access, then a few from the start in order.
        for k in 0..(now as u64).min(20) {
            if !c.read_at(&mut p, now, now as u64 - 1 - k) {
                break;
            }
        }
        let count = rng.range(1, now as u64) as usize;
        c.read_next(&mut p, now, count.min(200));
    }
}

/// A reader with no source: the header's token or fingerprint names the version
/// every record must be (a file naming none, legacy: the first record's version).
fn raw(c: &mut Checker, rng: &mut Rng) {
    let mut r = match CacheReader::open(&c.env.cache) {
        Ok(r) => r,
        Err(e) => {
            c.error("raw-open", &e);
            return;
        }
    };
    let meta = r.metadata();
    let named = version_named(&meta.token, meta.identity.as_ref().map(|i| i.id.as_str()));
    let mut version = named;
    // The copying read: its CRC is computed over the copy it hands over, so bytes
    // written in place meanwhile are never returned. (A zero-copy `next_view` does not
    // promise that: a view is the shared file's bytes, see `CacheReader`'s docs.)
    let mut t = Tensor::new(DType::UInt8, Vec::new(), Vec::new());
    for pos in 0..r.len() {
        let got = r.next_into(&mut t).map(|()| t.clone());
        let Some(got) = c.confirmed("raw-next", got, r.intact()) else {
            return;
        };
        let v = match version {
            Some(v) => v,
            None => match claimed(&got) {
                Some((v, _)) => {
                    version = Some(v);
                    v
                }
                None => {
                    c.report.checked += 1;
                    c.wrong(
                        "raw-next",
                        Wrong::Altered,
                        &format!("record {pos} of a file naming no version is no record"),
                    );
                    return;
                }
            },
        };
        c.check_as("raw-next", &got, v, pos);
    }
    let Some(v) = version else { return };
    for _ in 0..r.len().min(64) {
        let i = rng.below(r.len());
        let got = r.view_at(i).map(|v| v.to_owned());
        let Some(got) = c.confirmed("raw-at", got, r.intact()) else {
            return;
        };
        c.check_as("raw-at", &got, v, i);
    }
}
