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
//! files are ever deleted. The policy is the library's (`cache::maintenance`, also in
//! C as `harmonics_cache_*`): this file parses arguments and prints.

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod report;
mod text;

use harmonics_dataset::cache::maintenance::{self, Clear, Lookup, Removal};
use harmonics_dataset::cache::{cache_dir, resolve_cache_path, DirEntry, CACHE_DIR_ENV};
use report::{info, list, verify};
use text::{human_size, parse_size, printable, shown, when};

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

/// `None` (after a notice) when the directory does not exist.
fn exists<T>(dir: &Path, found: harmonics_dataset::Result<Option<T>>) -> Result<Option<T>, Failed> {
    let found = found.map_err(error)?;
    if found.is_none() {
        eprintln!(
            "cache_cli: cache directory {} does not exist (set {CACHE_DIR_ENV} to use another)",
            dir.display()
        );
    }
    Ok(found)
}

/// Resolves `name` and returns its directory entry, or the library's error.
fn find(dir: &Path, name: &str) -> Result<DirEntry, Failed> {
    let path = resolve_cache_path(name).map_err(error)?;
    match maintenance::lookup(dir, &path, name).map_err(error)? {
        Lookup::Found(e) => Ok(e),
        Lookup::Missing => Err(error(format!("no cache {}", path.display()))),
        Lookup::NotAFile(kind) => Err(error(format!(
            "{} is {kind}, not a cache file",
            path.display()
        ))),
    }
}

fn in_use(path: &Path) {
    eprintln!(
        "cache_cli: {} is in use by another process; skipped",
        shown(path)
    );
}

fn rm(name: &str) -> Outcome {
    let path = resolve_cache_path(name).map_err(error)?;
    match maintenance::remove(&path).map_err(error)? {
        Removal::Removed => {
            println!("removed {}", shown(&path));
            Ok(())
        }
        Removal::InUse => {
            in_use(&path);
            Err(Failed)
        }
        Removal::Missing => Err(error(format!("no cache {}", path.display()))),
        Removal::Refused(why) => Err(error(format!(
            "{} {why}: not removed (cache_cli rm removes only caches and the library's \
             own lock and temporary files)",
            path.display()
        ))),
    }
}

fn clear(dir: &Path, all_or_nothing: bool) -> Outcome {
    let c = match maintenance::clear(dir, all_or_nothing).map_err(error)? {
        Clear::Refused(why) => {
            let dir = shown(dir);
            eprintln!("cache_cli: error: refusing to remove {CACHE_DIR_ENV}={dir}: {why}");
            std::process::exit(2);
        }
        Clear::DanglingLink => {
            println!(
                "nothing to remove: {} is a symbolic link to a directory that does not exist",
                shown(dir)
            );
            return Ok(());
        }
        Clear::Missing => {
            println!("nothing to remove: {} does not exist", shown(dir));
            return Ok(());
        }
        Clear::Done(c) => c,
    };
    let busy_msgs = |verb: &str| {
        for b in &c.busy {
            let b = shown(&dir.join(b));
            eprintln!("cache_cli: {b} is in use by another process; {verb}");
        }
    };
    let n_busy = c.busy.len();
    if c.aborted {
        busy_msgs("nothing removed");
        return Err(error(format!(
            "nothing removed from {}: {n_busy} cache(s) in use; retry when they are done",
            shown(dir)
        )));
    }
    busy_msgs("kept");
    if !c.kept.is_empty() {
        const SHOWN: usize = 10;
        let list: Vec<String> = c
            .kept
            .iter()
            .take(SHOWN)
            .map(|(n, why)| format!("{} ({})", printable(n), printable(why)))
            .collect();
        eprintln!(
            "cache_cli: kept {} file(s) in {} that are not caches of this library: {}{}",
            c.kept.len(),
            shown(&c.real),
            list.join(", "),
            if c.kept.len() > SHOWN { ", ..." } else { "" }
        );
    }
    if n_busy > 0 {
        return Err(error(format!(
            "{} kept: {n_busy} cache(s) in use",
            shown(dir)
        )));
    }
    let removed = c.removed;
    if c.through_link {
        println!(
            "removed {removed} file(s) from {} (the directory {} links to)",
            shown(&c.real),
            shown(dir)
        );
    } else if c.dir_removed {
        println!("removed {}", shown(dir));
    } else {
        if c.kept.is_empty() {
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

fn prune(dir: &Path, max_size: u64) -> Outcome {
    let Some(p) = exists(dir, maintenance::prune(dir, max_size))? else {
        return Ok(());
    };
    let limit = human_size(max_size);
    if p.removed.is_empty() && p.in_use.is_empty() {
        let total = human_size(p.total);
        println!("total {total} is within {limit}; nothing removed");
        return Ok(());
    }
    for e in &p.in_use {
        in_use(&e.path);
    }
    for e in &p.removed {
        let (size, used) = (human_size(e.size), when(e.last_used()));
        println!("removed {} ({size}, last used {used})", e.path.display());
    }
    let total = human_size(p.total);
    if p.total > max_size {
        let busy = p.in_use.len();
        return Err(error(format!(
            "total {total} is still above {limit}: {busy} cache(s) in use could not be removed"
        )));
    }
    println!("total now {total} (limit {limit})");
    Ok(())
}
