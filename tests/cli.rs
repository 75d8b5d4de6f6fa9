//! `cache_cli`, `tools/cache_cli` and `scripts/clear-cache.sh`, run as processes
//! against cache directories made by the library in temp dirs.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harmonics_dataset::cache::{CacheLock, CacheReader, CacheWriter, Metadata};
use harmonics_dataset::tensor::write_tensor;
use harmonics_dataset::{DiskCacheProducer, Tensor, TokenFn, VecProducer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cache_cli");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn records(n: usize, seed: f32) -> Vec<Tensor> {
    (0..n)
        .map(|i| Tensor::from_f32(&[seed + i as f32; 16]))
        .collect()
}

/// A current-format cache populated through `DiskCacheProducer`, with a token.
fn make_cache(path: &Path, n: usize, token: &str) {
    let producer = VecProducer::new(records(n, 1.0)).with_source("vec:test");
    let t = token.to_string();
    let token: Option<TokenFn> = Some(Box::new(move || Ok(t.clone())));
    let p = DiskCacheProducer::open_at(Box::new(producer), path.to_path_buf(), token).unwrap();
    assert_eq!(p.len(), n);
}

/// A current-format cache written with `CacheWriter` directly.
fn write_cache(path: &Path, n: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = CacheWriter::create(path, Metadata::new("", "writer:test")).unwrap();
    for t in records(n, 7.0) {
        w.push(t.as_ref()).unwrap();
    }
    w.finish().unwrap();
}

/// The original headerless format: concatenated `write_tensor` records.
fn write_legacy(path: &Path, n: usize) {
    let mut bytes = Vec::new();
    for t in records(n, 3.0) {
        write_tensor(&mut bytes, t.as_ref()).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// Flips the byte `from_end` bytes before the end of the last record (a first
/// population writes the offset index right after it, at the commit's `index_at`).
fn flip_byte(path: &Path, from_end: usize) {
    let mut b = std::fs::read(path).unwrap();
    let index_at = harmonics_dataset::cache::Header::decode(&b, path)
        .unwrap()
        .commit
        .index_at as usize;
    let end = if index_at > 0 { index_at } else { b.len() };
    let at = end - from_end;
    b[at] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

/// A directory holding every kind of file `list` must tell apart:
/// a.cache (current, token "v1"), sub/c.cache (current), old.cache (legacy),
/// bad.cache (damaged magic), flipped.cache (current, one data byte flipped),
/// plus a lock, a writer's temp file and the old runtime's token side file.
fn populated(dir: &Path) {
    make_cache(&dir.join("a.cache"), 5, "v1");
    write_cache(&dir.join("sub/c.cache"), 3);
    write_legacy(&dir.join("old.cache"), 4);
    std::fs::write(dir.join("old.cache.token"), "v0\n").unwrap();
    write_cache(&dir.join("bad.cache"), 2);
    let mut b = std::fs::read(dir.join("bad.cache")).unwrap();
    b[1] ^= 0x01; // "HMNCACHE" -> "HLNCACHE"
    std::fs::write(dir.join("bad.cache"), b).unwrap();
    write_cache(&dir.join("flipped.cache"), 6);
    flip_byte(&dir.join("flipped.cache"), 3);
    std::fs::write(dir.join(".stale.cache.Ab12Cd.tmp"), b"partial").unwrap();
    assert!(dir.join(".a.cache.lock").exists());
}

/// Runs the binary with `HARMONICS_CACHE_DIR` set to `cache_dir` (or unset) in `cwd`.
fn run_in(cwd: &Path, cache_dir: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(cwd);
    match cache_dir {
        Some(d) => c.env("HARMONICS_CACHE_DIR", d),
        None => c.env_remove("HARMONICS_CACHE_DIR"),
    };
    c.output().unwrap()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    run_in(Path::new("/"), Some(dir.to_str().unwrap()), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}
fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn no_backtrace(o: &Output) {
    let e = stderr(o);
    assert!(
        !e.contains("panicked") && !e.contains("RUST_BACKTRACE"),
        "{e}"
    );
}

const PLAIN_NAMES: [&str; 6] = [
    "a.cache",
    "bad.cache",
    "flipped.cache",
    "old.cache",
    "old.cache.token",
    "sub/c.cache",
];

#[test]
fn list_piped_prints_one_path_per_cache_with_the_directory_as_spelled() {
    let tmp = tempfile::tempdir().unwrap();
    populated(&tmp.path().join("rel/hc"));
    // Relative, with a trailing slash, as the user wrote it.
    let o = run_in(tmp.path(), Some("rel/hc/"), &["list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let expected: String = PLAIN_NAMES
        .iter()
        .filter(|n| **n != "old.cache.token") // a side file of old.cache, not a cache
        .map(|n| format!("rel/hc/{n}\n"))
        .collect();
    assert_eq!(stdout(&o), expected);
    // Absolute spelling is kept too.
    let abs = tmp.path().join("rel/hc");
    let o = run(&abs, &["list"]);
    assert_eq!(
        stdout(&o).lines().next().unwrap(),
        format!("{}/a.cache", abs.display())
    );
    // Unset: the default directory, relative to the working directory.
    make_cache(&tmp.path().join(".harmonics/cache/d.cache"), 1, "");
    let o = run_in(tmp.path(), None, &["list"]);
    assert_eq!(stdout(&o), ".harmonics/cache/d.cache\n");
}

#[test]
fn list_of_a_missing_directory_is_a_notice_and_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let o = run(&missing, &["list"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    let o = run(&missing, &["list", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap(),
        Value::Array(vec![])
    );
    for args in [&["verify"][..], &["prune", "--max-size", "1K"]] {
        assert_eq!(run(&missing, args).status.code(), Some(0), "{args:?}");
    }
}

#[test]
fn list_long_is_a_table_of_format_records_token_and_source() {
    let tmp = tempfile::tempdir().unwrap();
    populated(tmp.path());
    let o = run(tmp.path(), &["list", "--long"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    // Cells by the header's columns: text left-aligned, SIZE and RECORDS right-aligned.
    let head = lines[0];
    let at = |h: &str| head.find(h).unwrap();
    assert!(
        head.starts_with("NAME ") && head.ends_with(" AGE"),
        "{head}"
    );
    let row = |name: &str| -> [String; 5] {
        let l = lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name} in\n{out}"));
        let cell = |a: usize, b: usize| l[a..b].trim().to_string();
        [
            cell(0, at("FORMAT"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string(), // RECORDS
            cell(at("FORMAT"), at("TOKEN")),
            cell(at("TOKEN"), at("SOURCE")),
            cell(at("SOURCE"), at("AGE")),
            cell(at("AGE"), l.len()),
        ]
    };
    assert_eq!(row("a.cache")[..4], ["5", "current", "v1", "vec:test"]);
    assert_eq!(row("old.cache")[..3], ["4", "legacy", ""]);
    assert_eq!(row("bad.cache")[..2], ["-", "damaged"]);
    assert_eq!(row("sub/c.cache")[..4], ["3", "current", "", "writer:test"]);
    // The flipped data byte is only found by `verify`: the header is intact.
    assert_eq!(row("flipped.cache")[1], "current");
    let age = &row("a.cache")[4];
    let (n, unit) = age.split_at(age.len() - 1);
    assert!(
        n.parse::<u64>().is_ok() && "smhd".contains(unit),
        "age {age:?}"
    );
    assert!(lines.last().unwrap().starts_with("5 cache(s)"), "{out}");
    assert!(stderr(&o).contains("bad.cache"), "damage detail on stderr");
}

#[test]
fn list_json_gives_every_field_per_cache() {
    let tmp = tempfile::tempdir().unwrap();
    populated(tmp.path());
    let o = run(tmp.path(), &["list", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let arr = v.as_array().unwrap();
    let names: Vec<&str> = arr.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "a.cache",
            "bad.cache",
            "flipped.cache",
            "old.cache",
            "sub/c.cache"
        ]
    );
    let get = |n: &str| arr.iter().find(|e| e["name"] == n).unwrap();
    let a = get("a.cache");
    assert_eq!(a["format"], "current");
    assert_eq!(a["records"], 5);
    assert_eq!(a["token"], "v1");
    assert_eq!(a["source"], "vec:test");
    assert_eq!(
        a["size"].as_u64().unwrap(),
        std::fs::metadata(tmp.path().join("a.cache")).unwrap().len()
    );
    assert!(a["age"].as_u64().unwrap() < 3600);
    assert_eq!(a["path"], tmp.path().join("a.cache").to_str().unwrap());
    let old = get("old.cache");
    assert_eq!(
        (old["format"].as_str(), old["records"].as_u64()),
        (Some("legacy"), Some(4))
    );
    assert!(old["token"].is_null());
    let bad = get("bad.cache");
    assert_eq!(bad["format"], "damaged");
    assert!(bad["records"].is_null());
    assert!(bad["error"].as_str().unwrap().contains("magic"), "{bad}");
}

#[test]
fn info_prints_metadata_and_fails_on_missing_damaged_or_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    populated(tmp.path());
    let o = run(tmp.path(), &["info", "a.cache"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "format:           current (version 2)",
        "records:          5",
        "token:            v1",
        "source:           vec:test",
        "uncommitted tail: 0 bytes",
    ] {
        assert!(out.contains(want), "{want:?} missing from\n{out}");
    }
    let o = run(tmp.path(), &["info", "--json", "sub/c.cache"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (v["records"].as_u64(), v["source"].as_str()),
        (Some(3), Some("writer:test"))
    );

    let o = run(tmp.path(), &["info", "missing.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no cache"), "{}", stderr(&o));
    let o = run(tmp.path(), &["info", "../escape"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'..' is not allowed"), "{}", stderr(&o));
    let o = run(tmp.path(), &["info", "bad.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("format:           damaged"));
    assert!(stderr(&o).contains("damaged magic"), "{}", stderr(&o));
    no_backtrace(&o);
    let o = run(tmp.path(), &["info"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
}

#[test]
fn verify_checks_every_record_and_names_the_damaged_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_cache(&dir.join("a.cache"), 50, "");
    write_legacy(&dir.join("old.cache"), 4);
    let o = run(dir, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "OK       {}: 50 records",
            dir.join("a.cache").display()
        )),
        "{out}"
    );
    assert!(out.contains("every CRC checked"));
    assert!(
        out.contains("legacy format (no CRCs): every record walked"),
        "{out}"
    );

    // One flipped byte in the last record's data: only a CRC over every record finds it.
    flip_byte(&dir.join("a.cache"), 2);
    // The header is intact, but info checks the records too: damaged, exit 1.
    let o = run(dir, &["info", "a.cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("format:           damaged") && stdout(&o).contains("record 49"),
        "{}",
        stdout(&o)
    );
    let o = run(dir, &["verify", "a.cache"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "DAMAGED  {}: record 49",
            dir.join("a.cache").display()
        )) && out.contains("CRC mismatch"),
        "{out}"
    );
    let o = run(dir, &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("OK       ") && stderr(&o).contains("1 of 2 cache(s) damaged"));
    no_backtrace(&o);

    // A legacy file cut inside a record header is served up to its last whole record.
    let mut b = std::fs::read(dir.join("old.cache")).unwrap();
    b.truncate(b.len() - 70);
    std::fs::write(dir.join("old.cache"), &b).unwrap();
    let o = run(dir, &["verify", "old.cache"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("3 records"), "{}", stdout(&o));
    assert!(stdout(&o).contains("bytes after the last complete record are ignored"));
    // A legacy file whose first record is garbage is damaged.
    std::fs::write(dir.join("junk.cache"), b"not a tensor at all").unwrap();
    let o = run(dir, &["verify", "junk.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("DAMAGED"));
    assert_eq!(run(dir, &["verify", "nope.cache"]).status.code(), Some(1));
}

#[test]
fn rm_removes_one_cache_and_skips_one_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    populated(tmp.path());
    let dir = tmp.path();
    let o = run(dir, &["rm", "sub/c.cache"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("removed {}\n", dir.join("sub/c.cache").display())
    );
    assert!(!dir.join("sub/c.cache").exists());
    // The legacy cache goes with its token side file.
    assert_eq!(run(dir, &["rm", "old.cache"]).status.code(), Some(0));
    assert!(!dir.join("old.cache.token").exists());
    let o = run(dir, &["rm", "sub/c.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no cache"));
    // Another process (this test) holds the lock: the cache is not deleted under it.
    let lock = CacheLock::exclusive(&dir.join("a.cache")).unwrap();
    let o = run(dir, &["rm", "a.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("in use by another process"),
        "{}",
        stderr(&o)
    );
    assert!(dir.join("a.cache").exists());
    drop(lock);
    assert_eq!(run(dir, &["rm", "a.cache"]).status.code(), Some(0));
    assert!(!dir.join("a.cache").exists());
    assert_eq!(run(dir, &["rm", "../x"]).status.code(), Some(1));
}

#[test]
fn clear_removes_the_directory_but_keeps_caches_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hc");
    populated(&dir);
    // A first population in progress: a held lock and a temp file, no cache file yet.
    let busy = CacheLock::exclusive(&dir.join("fresh.cache")).unwrap();
    std::fs::write(dir.join(".fresh.cache.Zz9Yx8.tmp"), b"in progress").unwrap();
    let o = run(&dir, &["clear"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("fresh.cache is in use"),
        "{}",
        stderr(&o)
    );
    assert!(dir.join(".fresh.cache.Zz9Yx8.tmp").exists());
    assert!(dir.join(".fresh.cache.lock").exists());
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "everything else removed: {left:?}");
    drop(busy);

    let o = run(&dir, &["clear"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("removed {}\n", dir.display()));
    assert!(!dir.exists());
    let o = run(&dir, &["clear"]);
    assert_eq!(o.status.code(), Some(0), "a missing directory is fine");
}

#[test]
fn clear_refuses_to_remove_more_than_a_cache_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("users/me");
    std::fs::create_dir_all(home.join("keep")).unwrap();
    let inner = tmp.path().join("work/inner");
    std::fs::create_dir_all(&inner).unwrap();
    let home_s = home.to_str().unwrap().to_string();
    for (cwd, value) in [
        (&inner, "/".to_string()),
        (&inner, "/tmp".to_string()),
        (&inner, "/usr/".to_string()),
        (&inner, home_s.clone()),
        (&inner, format!("{home_s}/keep/..")),
        (&inner, ".".to_string()),
        (&inner, "..".to_string()),
    ] {
        let o = Command::new(BIN)
            .arg("clear")
            .current_dir(cwd)
            .env("HOME", &home)
            .env("HARMONICS_CACHE_DIR", &value)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{value:?} not refused");
        assert!(stderr(&o).contains("refusing to remove"), "{}", stderr(&o));
    }
    assert!(home.join("keep").exists() && inner.exists());
}

fn set_times(path: &Path, atime: SystemTime, mtime: SystemTime) {
    let ts = |t: SystemTime| {
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        }
    };
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let times = [ts(atime), ts(mtime)];
    // SAFETY: a valid C path and a two-element timespec array.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

fn times(path: &Path) -> (SystemTime, SystemTime) {
    let m = std::fs::metadata(path).unwrap();
    (m.accessed().unwrap(), m.modified().unwrap())
}

#[test]
fn prune_evicts_least_recently_used_first_until_under_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ago = |s: u64| SystemTime::now() - Duration::from_secs(s);
    for name in ["a.cache", "b.cache", "c.cache", "d.cache"] {
        write_cache(&dir.join(name), 20);
    }
    let size = std::fs::metadata(dir.join("a.cache")).unwrap().len();
    // a: written long ago but read recently (atime); b oldest; then c; d newest.
    set_times(&dir.join("a.cache"), ago(100), ago(50_000));
    set_times(&dir.join("b.cache"), ago(40_000), ago(40_000));
    set_times(&dir.join("c.cache"), ago(30_000), ago(30_000));
    set_times(&dir.join("d.cache"), ago(20_000), ago(20_000));
    let before = times(&dir.join("b.cache"));
    // Looking at caches does not count as using them.
    for args in [
        &["list", "--long"][..],
        &["list", "--json"],
        &["verify"],
        &["info", "b.cache"],
    ] {
        assert_eq!(run(dir, args).status.code(), Some(0), "{args:?}");
    }
    assert_eq!(
        times(&dir.join("b.cache")),
        before,
        "inspection changed atime"
    );

    let limit = (2 * size + size / 2).to_string();
    let o = run(dir, &["prune", "--max-size", &limit]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let removed: Vec<&str> = out.lines().filter(|l| l.starts_with("removed ")).collect();
    assert_eq!(removed.len(), 2, "{out}");
    assert!(
        removed[0].contains("b.cache") && removed[1].contains("c.cache"),
        "{out}"
    );
    for (name, kept) in [
        ("a.cache", true),
        ("b.cache", false),
        ("c.cache", false),
        ("d.cache", true),
    ] {
        assert_eq!(dir.join(name).exists(), kept, "{name}");
    }
    // Already under the limit: nothing to do.
    let o = run(dir, &["prune", "--max-size", "1G"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("nothing removed"));
    // A cache in use is skipped; the limit cannot be met, exit 1.
    let lock = CacheLock::exclusive(&dir.join("d.cache")).unwrap();
    let o = run(dir, &["prune", "--max-size", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    assert!(dir.join("d.cache").exists() && !dir.join("a.cache").exists());
    drop(lock);
    for bad in ["", "12X", "-5", "lots"] {
        let o = run(dir, &["prune", "--max-size", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        no_backtrace(&o);
    }
}

#[test]
fn opening_a_cache_marks_it_used_without_touching_its_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.cache");
    write_cache(&path, 3);
    let old = SystemTime::now() - Duration::from_secs(100_000);
    set_times(&path, old, old);
    let opened_at = SystemTime::now() - Duration::from_secs(2);
    let r = CacheReader::open(&path).unwrap();
    assert_eq!(r.len(), 3);
    let (atime, mtime) = times(&path);
    assert!(atime >= opened_at, "atime not updated");
    assert_eq!(mtime, old, "mtime changed");
    // Inspection leaves it alone.
    set_times(&path, old, old);
    CacheReader::inspect(&path).unwrap();
    assert_eq!(times(&path), (old, old));
}

/// A target dir holding an up-to-date `release/cache_cli` (this build's binary), so
/// the launcher runs it without invoking cargo.
fn fake_target(tmp: &Path) -> PathBuf {
    let target = tmp.join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    std::fs::copy(BIN, target.join("release/cache_cli")).unwrap();
    target
}

#[test]
fn launcher_runs_from_any_directory_keeping_a_relative_cache_dir_relative() {
    let tmp = tempfile::tempdir().unwrap();
    let target = fake_target(tmp.path());
    let work = tmp.path().join("elsewhere");
    make_cache(&work.join("rel/hc/a.cache"), 2, "");
    let launcher = Path::new(ROOT).join("tools/cache_cli");
    let o = Command::new(&launcher)
        .arg("list")
        .current_dir(&work)
        .env("HARMONICS_CACHE_DIR", "rel/hc")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "rel/hc/a.cache\n");
    assert_eq!(stderr(&o), "", "no rebuild of an up-to-date binary");
    // Through a symlink in yet another directory, with arguments and exit codes passed on.
    std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(&launcher, tmp.path().join("bin/cc")).unwrap();
    let o = Command::new(tmp.path().join("bin/cc"))
        .args(["info", "missing.cache"])
        .current_dir(&work)
        .env("HARMONICS_CACHE_DIR", "rel/hc")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("rel/hc/missing.cache"),
        "{}",
        stderr(&o)
    );
}

/// The reference documentation's shell block, as written there.
const DOC_LINES: &str =
    "export HARMONICS_CACHE_DIR=/tmp/hcache\ntools/cache_cli list\nscripts/clear-cache.sh\n";

#[test]
fn reference_doc_commands_list_then_clear() {
    // Where the doc is present (beside the repo), make sure we run what it says.
    for doc in [
        "../shared/reference/dataset-caching-layer.md",
        "../../shared/reference/dataset-caching-layer.md",
    ] {
        if let Ok(text) = std::fs::read_to_string(Path::new(ROOT).join(doc)) {
            assert!(
                text.contains(&format!("```bash\n{DOC_LINES}```")),
                "doc changed"
            );
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let target = fake_target(tmp.path());
    let hc = tmp.path().join("hcache");
    make_cache(&hc.join("train.cache"), 3, "");
    make_cache(&hc.join("dataset.cache"), 2, "");
    // The same three lines, with the exported directory pointed into our temp dir.
    let script = DOC_LINES.replace("/tmp/hcache", hc.to_str().unwrap());
    let o = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(ROOT)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("HARMONICS_CACHE_DIR")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let hc = hc.display();
    assert_eq!(
        stdout(&o),
        format!("{hc}/dataset.cache\n{hc}/train.cache\nremoved {hc}\n")
    );
    assert!(!tmp.path().join("hcache").exists());
}

fn clear_script(cwd: &Path, home: &Path, value: Option<&str>) -> Output {
    let mut c = Command::new(Path::new(ROOT).join("scripts/clear-cache.sh"));
    // The script runs cache_cli through tools/cache_cli: this build's binary.
    let target = Path::new(BIN).parent().unwrap().parent().unwrap();
    c.current_dir(cwd)
        .env("HOME", home)
        .env("CARGO_TARGET_DIR", target)
        .env("HARMONICS_CLI_PROFILE", "debug");
    match value {
        Some(v) => c.env("HARMONICS_CACHE_DIR", v),
        None => c.env_remove("HARMONICS_CACHE_DIR"),
    };
    c.output().unwrap()
}

#[test]
fn clear_script_refuses_dangerous_values_and_removes_a_real_directory() {
    let tmp = tempfile::tempdir().unwrap();
    // A home directory deep enough that only the home rule can refuse it.
    let home = tmp.path().join("users/me");
    std::fs::create_dir_all(home.join("keep")).unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let home_s = home.to_str().unwrap();
    let home_slash = format!("{home_s}/");
    let home_dotted = format!("{home_s}/keep/..");
    for bad in [
        "",
        "  ",
        "/",
        "//",
        "/.",
        ".",
        "..",
        "~",
        home_s,
        &home_slash,
        &home_dotted,
        "/usr",
        "/etc/",
        "/tmp/../var",
        "/home",
        "/root",
    ] {
        let o = clear_script(&work, &home, Some(bad));
        assert_eq!(o.status.code(), Some(2), "{bad:?} not refused");
        assert!(
            stderr(&o).contains("refusing to remove"),
            "{bad:?}: {}",
            stderr(&o)
        );
    }
    assert!(home.join("keep").exists());

    let dir = tmp.path().join("hc");
    populated(&dir);
    // A cache being populated (its lock held by this process) is not removed under it.
    let busy = CacheLock::exclusive(&dir.join("sub/c.cache")).unwrap();
    let o = clear_script(&work, &home, Some(dir.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("sub/c.cache is in use") && err.contains("nothing removed"),
        "{err}"
    );
    assert!(dir.join("a.cache").exists() && dir.join("sub/c.cache").exists());
    drop(busy);
    let o = clear_script(&work, &home, Some(dir.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("removed {}\n", dir.display()));
    assert!(!dir.exists());
    let o = clear_script(&work, &home, Some(dir.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("does not exist"));
    // Unset: the default directory under the working directory.
    make_cache(&work.join(".harmonics/cache/t.cache"), 1, "");
    let o = clear_script(&work, &home, None);
    assert_eq!(stdout(&o), "removed .harmonics/cache\n");
    assert!(!work.join(".harmonics/cache").exists() && work.join(".harmonics").exists());
}
