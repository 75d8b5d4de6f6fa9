//! `list`, `info` and `verify`: the table, the JSON and the verdict lines.

use std::io::{IsTerminal, Write};
use std::path::Path;

use harmonics_dataset::cache::maintenance::{self, CacheInfo, CacheState, Checked, Verdict};
use harmonics_dataset::cache::{inspect_stream_cache, DirEntry, EntryKind, Format, Metadata};
use serde_json::{json, Value};

use crate::text::{human_age, human_size, printable, shorten, shown, since, unix, when};
use crate::{error, exists, find, Failed, Outcome};

/// A stream cache's entry: its disk use and limit (`inspect_stream_cache`).
fn stream_json(i: &CacheInfo) -> Value {
    let s = inspect_stream_cache(&i.entry.path).unwrap_or_default();
    json!({
        "name": i.entry.name,
        "path": i.entry.path.to_string_lossy(),
        "kind": "stream",
        "disk_bytes": s.disk_bytes,
        "cache_limit": s.cache_limit,
        "block_bytes": s.block_bytes,
        "source": s.url,
        "etag": s.etag,
        "modified": unix(i.entry.modified),
        "last_used": unix(i.entry.last_used()),
    })
}

fn to_json(i: &CacheInfo) -> Value {
    if i.entry.kind == EntryKind::Stream {
        return stream_json(i);
    }
    let (records, uncommitted) = match &i.reader {
        Ok(r) => (json!(r.len()), json!(r.uncommitted_tail())),
        Err(_) => (Value::Null, Value::Null),
    };
    let m = i.metadata();
    let text = |f: fn(&Metadata) -> &String| m.map_or(Value::Null, |m| json!(f(m)));
    json!({
        "name": i.entry.name,
        "path": i.entry.path.to_string_lossy(),
        "kind": "cache",
        "size": i.entry.size,
        "records": records,
        "format": i.state().as_str(),
        "token": text(|m| &m.token),
        "source": text(|m| &m.source),
        "etag": text(|m| &m.etag),
        "last_modified": text(|m| &m.last_modified),
        "created": unix(i.created()),
        "age": since(i.created()).as_secs(),
        "modified": unix(i.entry.modified),
        "last_used": unix(i.entry.last_used()),
        "uncommitted_tail": uncommitted,
        "error": i.reader.as_ref().err().map(|e| e.to_string()),
    })
}

pub(crate) fn list(dir: &Path, long: bool, as_json: bool) -> Outcome {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if !long && !as_json && !std::io::stdout().is_terminal() {
        // Piped: one path per line, and nothing is opened.
        let Some(entries) = exists(dir, maintenance::caches(dir))? else {
            return Ok(());
        };
        for e in &entries {
            writeln!(out, "{}", shown(&e.path)).map_err(error)?;
        }
        return Ok(());
    }
    let Some(rows) = exists(dir, maintenance::list(dir))? else {
        if as_json {
            println!("[]");
        }
        return Ok(());
    };
    if as_json {
        let all: Vec<Value> = rows.iter().map(to_json).collect();
        let text = serde_json::to_string_pretty(&all).map_err(error)?;
        return writeln!(out, "{text}").map_err(error);
    }
    if rows.is_empty() {
        eprintln!("cache_cli: no caches in {}", dir.display());
        return Ok(());
    }
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|i| {
            if i.entry.kind == EntryKind::Stream {
                let s = inspect_stream_cache(&i.entry.path).unwrap_or_default();
                let limit = match s.cache_limit {
                    0 => "no limit".to_string(),
                    l => format!("limit {}", human_size(l)),
                };
                return [
                    printable(&i.entry.name),
                    human_size(s.disk_bytes),
                    "-".into(),
                    "stream".into(),
                    limit,
                    shorten(&printable(&s.url), 40),
                    human_age(since(i.entry.modified)),
                ];
            }
            let (records, token, source) = match (&i.reader, i.metadata()) {
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
                i.state().as_str().into(),
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
    let (n, size) = (rows.len(), human_size(total));
    writeln!(out, "{n} cache(s), {size} in {}", shown(dir)).map_err(error)?;
    for i in rows.iter().filter(|i| i.entry.kind != EntryKind::Stream) {
        if let Err(e) = &i.reader {
            let name = printable(&i.entry.name);
            eprintln!("cache_cli: {name}: {}", printable(&e.to_string()));
        }
    }
    Ok(())
}

pub(crate) fn info(dir: &Path, name: &str, as_json: bool) -> Outcome {
    let mut i = CacheInfo::of(find(dir, name)?);
    // Damage in the records counts too (the header alone may be intact).
    let damage = match &mut i.reader {
        Ok(r) => r.verify(|_, _| {}).err(),
        Err(_) => None,
    };
    if as_json {
        let mut v = to_json(&i);
        if let Some(d) = &damage {
            v["format"] = json!("damaged");
            v["error"] = json!(d.to_string());
        }
        println!("{}", serde_json::to_string_pretty(&v).map_err(error)?);
    } else {
        let e = &i.entry;
        let format = match &i.reader {
            Ok(_) if damage.is_some() => "damaged".into(),
            Ok(r) if r.format() == Format::Current => format!("current (version {})", r.version()),
            Ok(_) => "legacy (headerless records, no checksums)".into(),
            Err(err) if err.is_permission_denied() => "unreadable (permission denied)".into(),
            Err(err) => CacheState::of_error(err).as_str().into(),
        };
        let mut rows: Vec<(&str, String)> = vec![
            ("name", printable(&e.name)),
            ("path", shown(&e.path)),
            ("format", format),
            ("size", format!("{} ({} bytes)", human_size(e.size), e.size)),
        ];
        if let Ok(r) = &i.reader {
            rows.push(("records", r.len().to_string()));
            rows.push(("data bytes", r.data_len().to_string()));
            let tail = r.uncommitted_tail();
            rows.push(("uncommitted tail", format!("{tail} bytes")));
        }
        if let Some(m) = i.metadata() {
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

pub(crate) fn verify(dir: &Path, name: Option<&str>) -> Outcome {
    let entries = match name {
        Some(n) => vec![find(dir, n)?],
        None => match exists(dir, maintenance::caches(dir))? {
            Some(v) => v,
            None => return Ok(()),
        },
    };
    let (mut damaged, mut unreadable) = (0usize, 0usize);
    let show_progress = std::io::stderr().is_terminal();
    for e in &entries {
        let path = shown(&e.path);
        match verify_one(e, show_progress) {
            Verdict::Ok(c) => println!("OK       {path}: {}", summary(&c)),
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
    let n = entries.len();
    if damaged > 0 {
        eprintln!(
            "cache_cli: {damaged} of {n} cache(s) damaged; remove them (cache_cli rm NAME) \
             or let the next run rebuild them from their source"
        );
    }
    if unreadable > 0 {
        eprintln!(
            "cache_cli: {unreadable} of {n} cache(s) could not be read (permission denied), \
             so they were not checked; run as their owner (or ask them) to verify them"
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

/// Verifies one cache, drawing a progress bar on stderr for a large one.
fn verify_one(e: &DirEntry, show_progress: bool) -> Verdict {
    let bar = show_progress && e.size >= PROGRESS_MIN_BYTES;
    let mut drawn = u64::MAX;
    let name = printable(&e.name);
    let verdict = maintenance::verify(&e.path, |done, records| {
        let pct = done * 100 / records;
        if bar && pct != drawn {
            drawn = pct;
            let fill = (pct / 4) as usize;
            let (done, todo) = ("#".repeat(fill), ".".repeat(25 - fill));
            eprint!("\r  verifying {name} [{done}{todo}] {pct:3}%");
        }
    });
    if bar && drawn != u64::MAX {
        eprint!("\r\x1b[K");
    }
    verdict
}

fn summary(c: &Checked) -> String {
    let (records, size) = (c.records, human_size(c.data_len));
    let mut s = match c.format {
        Format::Current => format!("{records} records, {size}, every CRC checked"),
        Format::Legacy => {
            format!("{records} records, {size}, legacy format (no CRCs): every record walked")
        }
    };
    if c.uncommitted_tail > 0 {
        s.push_str(&format!(
            "; {} bytes after the last complete record are ignored",
            c.uncommitted_tail
        ));
    }
    s
}
