//! The faults an episode applies to its cache path, as a careless user or a hostile
//! neighbour would: bytes flipped, truncated or zeroed in place, another version's
//! file copied (`cp`, or over the old bytes) or moved (`mv`) over it, the file or
//! its lock removed, a link, FIFO or directory planted at either name, `cache_cli`
//! run beside the readers. None of them ever writes outside the cache directory
//! itself: they act on regular files only, never through a link.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harmonics_dataset::cache::{lock_path, MAGIC};

use super::episode::{Dirs, NAME};
use super::plan::{Cli, Fault, Plant, Rng};

/// What applying a fault did.
pub enum Applied {
    Done,
    /// A `cache_cli` run, for the episode to start and watch like its processes.
    Run(Command),
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

/// A current-format file at `path` with something in it, opened for damage in
/// place, and its length.
fn damageable(path: &Path) -> Option<(File, u64)> {
    let f = open_in_place(path).filter(is_current)?;
    let len = f.metadata().ok()?.len();
    (len > 0).then_some((f, len))
}

/// Applies `fault` to the episode's cache path now (`cli` is the `cache_cli` binary).
pub fn apply(fault: &Fault, dirs: &Dirs, rng: &mut Rng, cli: &Path) -> Applied {
    let path = &dirs.cache;
    let done = |ok: bool| if ok { Applied::Done } else { Applied::Skipped };
    match *fault {
        Fault::Flip { count } => {
            let Some((f, len)) = damageable(path) else {
                return Applied::Skipped;
            };
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
            let Some((f, _)) = damageable(path) else {
                return Applied::Skipped;
            };
            done(f.write_all_at(&vec![0u8; len as usize], 0).is_ok())
        }
        Fault::ZeroRange { len } => {
            let Some((f, size)) = damageable(path) else {
                return Applied::Skipped;
            };
            let at = rng.below(size);
            let len = len.min(size - at);
            done(f.write_all_at(&vec![0u8; len as usize], at).is_ok())
        }
        Fault::Copy { stash, in_place } => {
            let src = dirs.stash_file(stash);
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
            std::fs::copy(dirs.stash_file(stash), &staged).unwrap();
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
            let mut cmd = Command::new(cli);
            cmd.env("HARMONICS_CACHE_DIR", &dirs.cache_dir);
            match c {
                Cli::Clear => cmd.arg("clear"),
                Cli::Prune { max_bytes } => {
                    cmd.args(["prune", "--max-size", &max_bytes.to_string()])
                }
                Cli::Rm => cmd.args(["rm", NAME]),
                Cli::Verify => cmd.args(["verify", NAME]),
            };
            Applied::Run(cmd)
        }
    }
}

/// Removes what a plant left at `at` (a link, a FIFO, a directory), never a regular
/// file (the library may have renamed a new cache over a planted link).
pub fn unplant(at: &Path) {
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
