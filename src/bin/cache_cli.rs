//! `cache_cli`: inspect and clean the dataset caches under `$HARMONICS_CACHE_DIR`
//! (default `.harmonics/cache`).
//!
//! Exit codes: 0 success; 1 a cache is damaged, unreadable or missing, or could not be
//! removed (in use by another process, not a cache, I/O error); 2 bad usage.
//! Output meant for scripts goes to stdout, everything else to stderr. `list` with
//! stdout not a terminal prints exactly one path per cache, as the original did.
//! Text read from files (names, tokens, sources) is printed with control characters
//! escaped, so a cache cannot split a table row or drive the terminal.
//! Only caches (recognised by their content) and the library's own lock and temporary
//! files are ever deleted.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use harmonics_dataset::cache::{
    cache_dir, classify_name, irregular_kind, is_own_companion, list_caches, lock_path,
    resolve_cache_path, scan_cache_dir, why_not_a_cache, CacheLock, CacheReader, DirEntry,
    EntryKind, Format, Metadata, CACHE_DIR_ENV,
};
use harmonics_dataset::Error;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "cache_cli",
    version,
    about = "Inspect and clean the harmonics dataset caches",
    long_about = "Inspect and clean the harmonics dataset caches in $HARMONICS_CACHE_DIR \
                  (default .harmonics/cache, relative to the working directory).\n\n\
                  Only caches (recognised by their content) and the library's own lock and \
                  temporary files are ever deleted.\n\n\
                  Exit codes: 0 success; 1 a cache is damaged, unreadable or missing, or \
                  could not be removed; 2 bad usage."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the caches. Piped: one `<dir>/<name>` per line; on a terminal: a table.
    List {
        /// Print the table (name, size, records, format, token, source, age) even when piped.
        #[arg(short, long)]
        long: bool,
        /// Print a JSON array of objects, one per cache: name, path, size (bytes),
        /// records, format, token, source, etag, last_modified, created, age (seconds
        /// since created), modified, last_used (unix seconds), uncommitted_tail, error.
        /// Fields a format does not have are null.
        #[arg(long, conflicts_with = "long")]
        json: bool,
    },
    /// Print all metadata of one cache and check its records; exit 1 if it is
    /// missing, unreadable or damaged.
    Info {
        /// Cache name (relative to the cache directory) or absolute path.
        name: String,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Check every record of one cache (or all of them); exit 1 if any is damaged or
    /// cannot be read.
    Verify {
        /// Cache name; all caches when omitted.
        name: Option<String>,
    },
    /// Remove one cache (refused with exit 1 if it is not a cache file, or if
    /// another process is using it).
    Rm {
        /// Cache name (relative to the cache directory) or absolute path.
        name: String,
    },
    /// Remove the caches in the cache directory (through a symbolic link: in the
    /// directory it points to), their lock and temporary files, and the directory if
    /// that leaves it empty. Other files are kept and listed; caches in use are kept.
    Clear {
        /// Remove nothing at all if any cache is in use (for scripts/clear-cache.sh).
        #[arg(long)]
        all_or_nothing: bool,
    },
    /// Remove the least recently used caches until their total size is at most SIZE.
    Prune {
        /// Size limit: bytes, or with a unit: K/M/G/T and KiB/MiB/GiB/TiB are powers
        /// of 1024, KB/MB/GB/TB powers of 1000 (e.g. 500M, 2G, 1.5GiB, 1024).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: u64,
    },
    /// Write the cache where other nodes fetch it: into directory DEST (as
    /// DEST/<name>, renamed into place) or to s3://bucket/key (one signed PUT), as a
    /// compact version-2 cache with its index at the head.
    Publish {
        /// Cache name (relative to the cache directory) or absolute path.
        name: String,
        /// A directory, or an s3://bucket/key URL (a key ending in '/' gets the name).
        dest: String,
        /// Print a JSON summary: name, source, dest, method, records, bytes, sha256,
        /// etag, elapsed_seconds.
        #[arg(long)]
        json: bool,
    },
}

/// A failure the user must see; the message is printed on stderr, exit code 1.
struct Failed;

type Outcome = std::result::Result<(), Failed>;

fn main() -> ExitCode {
    // Like `ls`: die quietly when a reader of our output goes away (`| head`).
    // SAFETY: resetting a signal disposition to its default at startup.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let dir = cache_dir();
    let result = match cli.command {
        Command::List { long, json } => list(&dir, long, json),
        Command::Info { name, json } => info(&dir, &name, json),
        Command::Verify { name } => verify(&dir, name.as_deref()),
        Command::Rm { name } => rm(&name),
        Command::Clear { all_or_nothing } => clear(&dir, all_or_nothing),
        Command::Prune { max_size } => prune(&dir, max_size),
        Command::Publish { name, dest, json } => {
            harmonics_dataset::publish(&name, &dest, &Default::default())
                .map(|s| match json {
                    true => println!("{}", s.to_json()),
                    false => println!(
                        "published {name} ({} records, {} bytes) to {}",
                        s.records, s.bytes, s.dest
                    ),
                })
                .map_err(error)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::from(1),
    }
}

fn error(msg: impl std::fmt::Display) -> Failed {
    eprintln!("cache_cli: error: {}", printable(&msg.to_string()));
    Failed
}

/// `s` with every character that could split a line or drive a terminal escaped:
/// C0 controls (ESC, BEL, newline, tab, ...), DEL, C1 controls and the Unicode
/// direction overrides. A backslash is doubled, so the escaping is unambiguous.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that reorder the text displayed after them (Trojan Source).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A path for a message, escaped.
fn shown(p: &Path) -> String {
    printable(&p.to_string_lossy())
}

/// The caches under `dir`; `None` (after a notice) when the directory does not exist.
fn caches_in(dir: &Path) -> std::result::Result<Option<Vec<DirEntry>>, Failed> {
    match list_caches(dir) {
        Ok(v) => Ok(Some(v)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "cache_cli: cache directory {} does not exist (set {CACHE_DIR_ENV} to use another)",
                dir.display()
            );
            Ok(None)
        }
        Err(e) => Err(error(e)),
    }
}

/// How a cache that could not be inspected is shown: "unreadable" for a permission
/// refusal (the file may be fine), "not-a-file" for a link or special file, else
/// "damaged".
fn failure_kind(e: &Error) -> &'static str {
    match e {
        e if e.is_permission_denied() => "unreadable",
        Error::NotRegularFile { .. } => "not-a-file",
        _ => "damaged",
    }
}

/// What opening a cache for inspection found.
struct Inspection {
    entry: DirEntry,
    reader: std::result::Result<CacheReader, Error>,
}

impl Inspection {
    fn of(entry: DirEntry) -> Inspection {
        let reader = CacheReader::inspect(&entry.path);
        Inspection { entry, reader }
    }

    fn format(&self) -> &'static str {
        match &self.reader {
            Ok(r) if r.format() == Format::Current => "current",
            Ok(_) => "legacy",
            Err(e) => failure_kind(e),
        }
    }

    fn meta(&self) -> Option<&Metadata> {
        match &self.reader {
            Ok(r) if r.format() == Format::Current => Some(r.metadata()),
            _ => None,
        }
    }

    /// When the cache was made: from its header, else its modification time.
    fn created(&self) -> SystemTime {
        match self.meta() {
            Some(m) if m.created > 0 => UNIX_EPOCH + Duration::from_secs(m.created),
            _ => self.entry.modified,
        }
    }

    fn to_json(&self) -> Value {
        let (records, uncommitted) = match &self.reader {
            Ok(r) => (json!(r.len()), json!(r.uncommitted_tail())),
            Err(_) => (Value::Null, Value::Null),
        };
        let m = self.meta();
        let text = |f: fn(&Metadata) -> &String| m.map_or(Value::Null, |m| json!(f(m)));
        json!({
            "name": self.entry.name,
            "path": self.entry.path.to_string_lossy(),
            "size": self.entry.size,
            "records": records,
            "format": self.format(),
            "token": text(|m| &m.token),
            "source": text(|m| &m.source),
            "etag": text(|m| &m.etag),
            "last_modified": text(|m| &m.last_modified),
            "created": unix(self.created()),
            "age": since(self.created()).as_secs(),
            "modified": unix(self.entry.modified),
            "last_used": unix(self.entry.last_used()),
            "uncommitted_tail": uncommitted,
            "error": self.reader.as_ref().err().map(|e| e.to_string()),
        })
    }
}

fn list(dir: &Path, long: bool, as_json: bool) -> Outcome {
    let Some(entries) = caches_in(dir)? else {
        if as_json {
            println!("[]");
        }
        return Ok(());
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if as_json {
        let all: Vec<Value> = entries
            .into_iter()
            .map(|e| Inspection::of(e).to_json())
            .collect();
        let text = serde_json::to_string_pretty(&all).map_err(error)?;
        return writeln!(out, "{text}").map_err(error);
    }
    if !long && !std::io::stdout().is_terminal() {
        for e in &entries {
            writeln!(out, "{}", shown(&e.path)).map_err(error)?;
        }
        return Ok(());
    }
    if entries.is_empty() {
        eprintln!("cache_cli: no caches in {}", dir.display());
        return Ok(());
    }
    let rows: Vec<Inspection> = entries.into_iter().map(Inspection::of).collect();
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|i| {
            let (records, token, source) = match (&i.reader, i.meta()) {
                (Ok(r), Some(m)) => (
                    r.len().to_string(),
                    printable(&m.token),
                    printable(&m.source),
                ),
                (Ok(r), None) => (r.len().to_string(), String::new(), String::new()),
                (Err(_), _) => ("-".into(), String::new(), String::new()),
            };
            [
                printable(&i.entry.name),
                human_size(i.entry.size),
                records,
                i.format().into(),
                shorten(&token, 24),
                shorten(&source, 40),
                human_age(since(i.created())),
            ]
        })
        .collect();
    let header = [
        "NAME", "SIZE", "RECORDS", "FORMAT", "TOKEN", "SOURCE", "AGE",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 7]| {
        let mut s = String::new();
        for (k, (c, w)) in cols.iter().zip(widths).enumerate() {
            // Numbers right-aligned, text left-aligned; no trailing blanks.
            let pad = " ".repeat(w - c.chars().count());
            match k {
                1 | 2 => s.push_str(&format!("{pad}{c}")),
                6 => s.push_str(c),
                _ => s.push_str(&format!("{c}{pad}")),
            }
            if k < 6 {
                s.push_str("  ");
            }
        }
        s
    };
    writeln!(out, "{}", line(header)).map_err(error)?;
    for row in &cells {
        writeln!(out, "{}", line(row.each_ref().map(|s| s.as_str()))).map_err(error)?;
    }
    let total: u64 = rows.iter().map(|i| i.entry.size).sum();
    writeln!(
        out,
        "{} cache(s), {} in {}",
        rows.len(),
        human_size(total),
        shown(dir)
    )
    .map_err(error)?;
    for i in &rows {
        if let Err(e) = &i.reader {
            eprintln!(
                "cache_cli: {}: {}",
                printable(&i.entry.name),
                printable(&e.to_string())
            );
        }
    }
    Ok(())
}

/// Resolves `name` and returns its directory entry, or the library's error.
fn find(dir: &Path, name: &str) -> std::result::Result<DirEntry, Failed> {
    let path = resolve_cache_path(name).map_err(error)?;
    let meta = std::fs::symlink_metadata(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            error(format!("no cache {}", path.display()))
        } else {
            error(format!("cannot read {}: {e}", path.display()))
        }
    })?;
    if let Some(kind) = irregular_kind(&meta.file_type()) {
        return Err(error(format!(
            "{} is {kind}, not a cache file",
            path.display()
        )));
    }
    let shown = path
        .strip_prefix(dir)
        .map_or_else(|_| name.to_string(), |p| p.to_string_lossy().into_owned());
    Ok(DirEntry {
        name: shown,
        path,
        kind: EntryKind::Cache,
        is_symlink: false,
        size: meta.len(),
        modified: meta.modified().unwrap_or(UNIX_EPOCH),
        accessed: meta.accessed().unwrap_or(UNIX_EPOCH),
    })
}

fn info(dir: &Path, name: &str, as_json: bool) -> Outcome {
    let mut i = Inspection::of(find(dir, name)?);
    // Damage in the records counts too (the header alone may be intact).
    let damage = match &mut i.reader {
        Ok(r) => r.verify(|_, _| {}).err(),
        Err(_) => None,
    };
    if as_json {
        let mut v = i.to_json();
        if let Some(d) = &damage {
            v["format"] = json!("damaged");
            v["error"] = json!(d.to_string());
        }
        println!("{}", serde_json::to_string_pretty(&v).map_err(error)?);
    } else {
        let e = &i.entry;
        let mut rows: Vec<(&str, String)> = vec![
            ("name", printable(&e.name)),
            ("path", shown(&e.path)),
            (
                "format",
                match &i.reader {
                    Ok(_) if damage.is_some() => "damaged".into(),
                    Ok(r) if r.format() == Format::Current => {
                        format!("current (version {})", r.version())
                    }
                    Ok(_) => "legacy (headerless records, no checksums)".into(),
                    Err(err) if err.is_permission_denied() => {
                        "unreadable (permission denied)".into()
                    }
                    Err(err) => failure_kind(err).into(),
                },
            ),
            ("size", format!("{} ({} bytes)", human_size(e.size), e.size)),
        ];
        if let Ok(r) = &i.reader {
            rows.push(("records", r.len().to_string()));
            rows.push(("data bytes", r.data_len().to_string()));
            rows.push((
                "uncommitted tail",
                format!("{} bytes", r.uncommitted_tail()),
            ));
        }
        if let Some(m) = i.meta() {
            rows.push(("token", printable(&m.token)));
            rows.push(("source", printable(&m.source)));
            rows.push(("etag", printable(&m.etag)));
            rows.push(("last-modified", printable(&m.last_modified)));
        }
        rows.push(("created", when(i.created())));
        rows.push(("modified", when(e.modified)));
        rows.push(("last used", when(e.last_used())));
        match (&i.reader, &damage) {
            (Err(err), _) if err.is_permission_denied() => {
                rows.push(("error", printable(&err.to_string())))
            }
            (Err(err), _) | (Ok(_), Some(err)) => {
                rows.push(("damage", printable(&err.to_string())))
            }
            _ => {}
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for (k, v) in rows {
            writeln!(out, "{:<17} {v}", format!("{k}:")).map_err(error)?
        }
    }
    match (&i.reader, damage) {
        (Ok(_), None) => Ok(()),
        (Err(e), _) => Err(error(e)),
        (Ok(_), Some(e)) => Err(error(e)),
    }
}

/// What checking one cache found.
enum Verdict {
    Ok(String),
    Damaged(String),
    /// Permission denied: the file may well be intact.
    Unreadable(String),
}

fn verify(dir: &Path, name: Option<&str>) -> Outcome {
    let entries = match name {
        Some(n) => vec![find(dir, n)?],
        None => match caches_in(dir)? {
            Some(v) => v,
            None => return Ok(()),
        },
    };
    let (mut damaged, mut unreadable) = (0usize, 0usize);
    let show_progress = std::io::stderr().is_terminal();
    for e in &entries {
        let path = shown(&e.path);
        match verify_one(e, show_progress) {
            Verdict::Ok(summary) => println!("OK       {path}: {summary}"),
            Verdict::Damaged(detail) => {
                damaged += 1;
                println!("DAMAGED  {path}: {}", printable(&detail));
            }
            Verdict::Unreadable(detail) => {
                unreadable += 1;
                println!("UNREADABLE {path}: {}", printable(&detail));
            }
        }
    }
    if damaged > 0 {
        eprintln!(
            "cache_cli: {damaged} of {} cache(s) damaged; remove them (cache_cli rm NAME) \
             or let the next run rebuild them from their source",
            entries.len()
        );
    }
    if unreadable > 0 {
        eprintln!(
            "cache_cli: {unreadable} of {} cache(s) could not be read (permission denied), \
             so they were not checked; run as their owner (or ask them) to verify them",
            entries.len()
        );
    }
    if damaged + unreadable > 0 {
        return Err(Failed);
    }
    if entries.is_empty() {
        eprintln!("cache_cli: no caches in {}", shown(dir));
    }
    Ok(())
}

/// Progress bars are drawn only for caches at least this large.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

fn verify_one(e: &DirEntry, show_progress: bool) -> Verdict {
    let verdict = |err: Error| match err {
        err if err.is_permission_denied() => {
            Verdict::Unreadable(format!("permission denied{}: {err}", owner_of(&e.path)))
        }
        Error::Corrupt { detail, .. } => Verdict::Damaged(detail),
        other => Verdict::Damaged(other.to_string()),
    };
    let mut r = match CacheReader::inspect(&e.path) {
        Ok(r) => r,
        Err(err) => return verdict(err),
    };
    let records = r.len();
    let bar = show_progress && e.size >= PROGRESS_MIN_BYTES && records > 0;
    let mut drawn = u64::MAX;
    let name = printable(&e.name);
    let checked = r.verify(|done, _| {
        if bar {
            let pct = done * 100 / records;
            if pct != drawn {
                drawn = pct;
                let fill = (pct / 4) as usize;
                eprint!(
                    "\r  verifying {name} [{}{}] {pct:3}%",
                    "#".repeat(fill),
                    ".".repeat(25 - fill)
                );
            }
        }
    });
    if bar {
        eprint!("\r\x1b[K");
    }
    let checked = match checked {
        Ok(n) => n,
        Err(err) => return verdict(err),
    };
    let mut summary = match r.format() {
        Format::Current => format!(
            "{checked} records, {}, every CRC checked",
            human_size(r.data_len())
        ),
        Format::Legacy => format!(
            "{checked} records, {}, legacy format (no CRCs): every record walked",
            human_size(r.data_len())
        ),
    };
    if r.uncommitted_tail() > 0 {
        summary.push_str(&format!(
            "; {} bytes after the last complete record are ignored",
            r.uncommitted_tail()
        ));
    }
    Verdict::Ok(summary)
}

/// " (owner uid N, mode M)" for a message about a file we may not read.
fn owner_of(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!(" (owner uid {}, mode {:o})", m.uid(), m.mode() & 0o7777),
        Err(_) => String::new(),
    }
}

/// Removes one cache file and its token side file, holding the cache's lock.
/// Returns false (after a message) when another process holds the lock. The caller
/// has checked that `path` is a cache (`why_not_a_cache`): no lock file is ever
/// created beside anything else.
fn remove_cache(path: &Path) -> std::result::Result<bool, Failed> {
    let Some(_lock) = CacheLock::try_exclusive(path).map_err(error)? else {
        eprintln!(
            "cache_cli: {} is in use by another process; skipped",
            shown(path)
        );
        return Ok(false);
    };
    std::fs::remove_file(path)
        .map_err(|e| error(format!("cannot remove {}: {e}", path.display())))?;
    let mut side = path.as_os_str().to_owned();
    side.push(".token");
    let _ = std::fs::remove_file(PathBuf::from(side));
    // The lock file stays: unlinking it could let two processes lock different files.
    Ok(true)
}

/// Removes the library's own lock or temporary file at `path` unless a process holds
/// its `flock` (a writer holds its temp file's, a user of a cache its lock's).
fn remove_companion(path: &Path) -> std::result::Result<bool, Failed> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| error(format!("cannot open {}: {e}", path.display())))?;
    // SAFETY: flock on a descriptor we own; released when `f` is dropped.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        eprintln!(
            "cache_cli: {} is in use by another process; skipped",
            shown(path)
        );
        return Ok(false);
    }
    std::fs::remove_file(path)
        .map_err(|e| error(format!("cannot remove {}: {e}", path.display())))?;
    Ok(true)
}

fn rm(name: &str) -> Outcome {
    let path = resolve_cache_path(name).map_err(error)?;
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(error(format!("no cache {}", path.display())))
        }
        Err(e) => return Err(error(format!("cannot read {}: {e}", path.display()))),
    };
    let refuse = |why: String| {
        error(format!(
            "{} {why}: not removed (cache_cli rm removes only caches and the library's \
             own lock and temporary files)",
            path.display()
        ))
    };
    if let Some(kind) = irregular_kind(&meta.file_type()) {
        return Err(refuse(format!("is {kind}, not a cache file")));
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let removed = match classify_name(&file_name) {
        // A lock holds at most a pid; anything larger is not one of ours.
        EntryKind::Lock { .. } if meta.len() <= 64 => remove_companion(&path)?,
        EntryKind::Temp { .. } => remove_companion(&path)?,
        _ => {
            match why_not_a_cache(&path) {
                Ok(None) => {}
                Ok(Some(why)) => return Err(refuse(format!("is not a cache file ({why})"))),
                Err(e) => return Err(error(e)),
            }
            remove_cache(&path)?
        }
    };
    if removed {
        println!("removed {}", shown(&path));
        Ok(())
    } else {
        Err(Failed)
    }
}

/// Why removing `dir` as a whole would remove more than a cache directory, if it would:
/// `/` or a directory directly under it, the home directory, or the working directory
/// or one above it (the same rules as `scripts/clear-cache.sh`).
fn dangerous_to_remove(dir: &Path) -> Option<String> {
    let real = std::fs::canonicalize(dir).ok()?;
    if real.components().count() <= 2 {
        return Some(format!(
            "it resolves to the top-level directory {}",
            real.display()
        ));
    }
    if let Some(home) = std::env::var_os("HOME").and_then(|h| std::fs::canonicalize(h).ok()) {
        if real == home {
            return Some("it resolves to the home directory".into());
        }
    }
    if let Ok(cwd) = std::env::current_dir().and_then(std::fs::canonicalize) {
        if cwd.starts_with(&real) {
            return Some("it contains the working directory".into());
        }
    }
    None
}

fn clear(dir: &Path, all_or_nothing: bool) -> Outcome {
    // The rules apply to what the path resolves to, so also through a link.
    if let Some(why) = dangerous_to_remove(dir) {
        eprintln!(
            "cache_cli: error: refusing to remove {CACHE_DIR_ENV}={}: {why}",
            shown(dir)
        );
        std::process::exit(2);
    }
    let through_link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    // Through a link, the caches are those of the directory it points to; the link
    // and that directory stay.
    let real = if through_link {
        match std::fs::canonicalize(dir) {
            Ok(r) => r,
            Err(_) => {
                println!(
                    "nothing to remove: {} is a symbolic link to a directory that does not exist",
                    shown(dir)
                );
                return Ok(());
            }
        }
    } else {
        dir.to_path_buf()
    };
    let files = match scan_cache_dir(&real) {
        Ok(v) => v,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            println!("nothing to remove: {} does not exist", shown(dir));
            return Ok(());
        }
        Err(e) => return Err(error(e)),
    };
    // What may go: caches (by content), the library's locks and temporary files, and
    // the token side files of caches that go. Everything else stays, with a reason.
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut going: Vec<&DirEntry> = Vec::new();
    let mut cache_names: Vec<&str> = Vec::new();
    for f in &files {
        match &f.kind {
            EntryKind::Cache if f.is_symlink => {
                kept.push((f.name.clone(), "a symbolic link".into()))
            }
            EntryKind::Cache => match why_not_a_cache(&f.path) {
                Ok(None) => {
                    going.push(f);
                    cache_names.push(&f.name);
                }
                Ok(Some(why)) => kept.push((f.name.clone(), format!("not a cache: {why}"))),
                Err(e) => kept.push((f.name.clone(), e.to_string())),
            },
            EntryKind::Lock { cache } | EntryKind::Temp { cache } => {
                if is_own_companion(f) {
                    going.push(f);
                    cache_names.push(cache);
                } else {
                    kept.push((
                        f.name.clone(),
                        "not a lock or temporary file of ours".into(),
                    ))
                }
            }
            EntryKind::TokenSide { .. } | EntryKind::Hidden => {}
        }
    }
    for f in &files {
        match &f.kind {
            EntryKind::TokenSide { cache } if cache_names.contains(&cache.as_str()) => {
                going.push(f)
            }
            EntryKind::TokenSide { .. } | EntryKind::Hidden => {
                kept.push((f.name.clone(), "not a cache".into()))
            }
            _ => {}
        }
    }
    // Every cache with a file or a lock, including one being populated for the
    // first time (it has a lock and a temporary file but no cache file yet).
    cache_names.sort_unstable();
    cache_names.dedup();
    let mut locks = Vec::new();
    let mut busy = Vec::new();
    for name in cache_names {
        match CacheLock::try_exclusive(&real.join(name)) {
            Ok(Some(l)) => locks.push((name, l)),
            Ok(None) => busy.push(name.to_string()),
            Err(e) => return Err(error(e)),
        }
    }
    let busy_msgs = |verb: &str| {
        for b in &busy {
            eprintln!(
                "cache_cli: {} is in use by another process; {verb}",
                shown(&dir.join(b))
            );
        }
    };
    if all_or_nothing && !busy.is_empty() {
        busy_msgs("nothing removed");
        for (name, _) in &locks {
            // Lock files this run created for caches that had none go again.
            if !files.iter().any(|f| {
                f.kind
                    == EntryKind::Lock {
                        cache: name.to_string(),
                    }
            }) {
                let _ = std::fs::remove_file(lock_path(&real.join(name)));
            }
        }
        return Err(error(format!(
            "nothing removed from {}: {} cache(s) in use; retry when they are done",
            shown(dir),
            busy.len()
        )));
    }
    let mut removed = 0usize;
    for f in &going {
        if f.cache_name().is_some_and(|n| busy.iter().any(|b| b == n)) {
            continue;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(error(format!("cannot remove {}: {e}", f.path.display()))),
        }
    }
    for (name, _) in &locks {
        // Lock files taken above (some did not exist before): going, like the rest.
        let _ = std::fs::remove_file(lock_path(&real.join(name)));
    }
    remove_empty_dirs(&real);
    drop(locks);
    busy_msgs("kept");
    if !kept.is_empty() {
        const SHOWN: usize = 10;
        let list: Vec<String> = kept
            .iter()
            .take(SHOWN)
            .map(|(n, why)| format!("{} ({})", printable(n), printable(why)))
            .collect();
        eprintln!(
            "cache_cli: kept {} file(s) in {} that are not caches of this library: {}{}",
            kept.len(),
            shown(&real),
            list.join(", "),
            if kept.len() > SHOWN { ", ..." } else { "" }
        );
    }
    if !busy.is_empty() {
        return Err(error(format!(
            "{} kept: {} cache(s) in use",
            shown(dir),
            busy.len()
        )));
    }
    if through_link {
        println!(
            "removed {removed} file(s) from {} (the directory {} links to)",
            shown(&real),
            shown(dir)
        );
    } else if std::fs::remove_dir(&real).is_ok() {
        println!("removed {}", shown(dir));
    } else {
        if kept.is_empty() {
            eprintln!(
                "cache_cli: kept {}: it still holds entries that are not caches (hidden \
                 directories, special files)",
                shown(dir)
            );
        }
        println!("removed {removed} file(s) from {}", shown(dir));
    }
    Ok(())
}

/// Removes the empty subdirectories under `dir` (not `dir` itself).
fn remove_empty_dirs(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for e in read.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_dirs(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

fn prune(dir: &Path, max_size: u64) -> Outcome {
    let Some(mut entries) = caches_in(dir)? else {
        return Ok(());
    };
    // Only caches count and go: not links, not files of the user's that sit here.
    entries.retain(|e| !e.is_symlink && matches!(why_not_a_cache(&e.path), Ok(None)));
    let mut total: u64 = entries.iter().map(|e| e.size).sum();
    let limit = human_size(max_size);
    if total <= max_size {
        println!(
            "total {} is within {limit}; nothing removed",
            human_size(total)
        );
        return Ok(());
    }
    entries.sort_by(|a, b| a.last_used().cmp(&b.last_used()).then(a.name.cmp(&b.name)));
    let mut busy = 0usize;
    for e in &entries {
        if total <= max_size {
            break;
        }
        if !remove_cache(&e.path)? {
            busy += 1;
            continue;
        }
        total = total.saturating_sub(e.size);
        println!(
            "removed {} ({}, last used {})",
            e.path.display(),
            human_size(e.size),
            when(e.last_used())
        );
    }
    if total > max_size {
        return Err(error(format!(
            "total {} is still above {limit}: {busy} cache(s) in use could not be removed",
            human_size(total)
        )));
    }
    println!("total now {} (limit {limit})", human_size(total));
    Ok(())
}

/// Parses a size: `1024`, `500M`, `2G`, `1.5GiB`, `10KB`, `3 MiB`.
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 1024, 500M, 2G, 1.5GiB)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let factor: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} in {s:?} (use K, M, G, T, KiB…, or KB…)"
            ))
        }
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes.floor() as u64)
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2026-11-25 22:04:05 UTC (3m ago)`.
fn when(t: SystemTime) -> String {
    let secs = unix(t);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC ({} ago)",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        human_age(since(t))
    )
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("3 mib"), Ok(3 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "M", "-1", "1.2.3", "5X", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn control_characters_are_escaped_unambiguously() {
        assert_eq!(printable("plain café"), "plain café");
        assert_eq!(
            printable("a\x1b[31mb\x07\n\t\r\x7f\u{9b}\u{202e}\\"),
            "a\\x1b[31mb\\x07\\n\\t\\r\\x7f\\u{9b}\\u{202e}\\\\"
        );
    }

    #[test]
    fn dates_and_sizes_render_readably() {
        assert!(when(UNIX_EPOCH + Duration::from_secs(1_764_108_245))
            .starts_with("2025-11-25 22:04:05 UTC"));
        assert!(when(UNIX_EPOCH).starts_with("1970-01-01 00:00:00 UTC"));
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
