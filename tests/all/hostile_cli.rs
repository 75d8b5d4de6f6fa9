//! `cache_cli` and `scripts/clear-cache.sh` against hostile or careless directories
//! (DESIGN.md §8): non-cache files offered to `rm`, control characters in tokens,
//! sources and names, a cache directory reached through a symbolic link, a cache
//! the user may not read (run as uid 65534: the suite runs as root), and damage
//! that only the records show.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use harmonics_dataset::write_tensor;
use harmonics_dataset::{DiskCacheProducer, Tensor, TokenFn, VecProducer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cache_cli");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn make_cache(path: &Path, n: usize, token: &str, source: &str) {
    let records: Vec<Tensor> = (0..n).map(|i| Tensor::from_f32(&[i as f32; 8])).collect();
    let producer = VecProducer::new(records).with_source(source);
    let t = token.to_string();
    let token: Option<TokenFn> = Some(Box::new(move || Ok(t.clone())));
    DiskCacheProducer::open_at(Box::new(producer), path.to_path_buf(), token).unwrap();
}

fn write_legacy(path: &Path, n: usize) {
    let mut bytes = Vec::new();
    for i in 0..n {
        write_tensor(&mut bytes, Tensor::from_f32(&[i as f32; 4]).as_ref()).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn cli(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir("/").env("HARMONICS_CACHE_DIR", dir);
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    cli(dir).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}
fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// No byte that a terminal interprets or that splits a line: C0 controls but the
/// newline ending each line, DEL, and C1 controls (U+0080..U+009F).
fn assert_no_controls(text: &str) {
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n') || ('\u{80}'..='\u{9f}').contains(&c);
        assert!(!bad, "control {:?} at {i} in\n{text}", c);
    }
}

#[test]
fn rm_refuses_anything_but_caches_and_creates_no_lock_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hc");
    std::fs::create_dir_all(&dir).unwrap();
    let outside = tmp.path().join("thesis.txt");
    std::fs::write(&outside, b"four years of work").unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link.cache")).unwrap();
    std::fs::create_dir(dir.join("sub.cache")).unwrap();
    std::fs::write(dir.join(".big.lock"), vec![b'x'; 4096]).unwrap();
    let refused = [
        (outside.to_str().unwrap(), "is not a cache file"),
        ("notes.txt", "is not a cache file"),
        ("link.cache", "is a symbolic link"),
        ("sub.cache", "is a directory"),
        (".big.lock", "is not a cache file"),
    ];
    for (name, why) in refused {
        let o = run(&dir, &["rm", name]);
        assert_eq!(o.status.code(), Some(1), "{name} removed: {}", stdout(&o));
        assert!(
            stderr(&o).contains(why) && stderr(&o).contains("not removed"),
            "{name}: {}",
            stderr(&o)
        );
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"four years of work");
    assert!(dir.join("notes.txt").exists() && dir.join(".big.lock").exists());
    assert!(dir.join("link.cache").symlink_metadata().is_ok() && dir.join("sub.cache").is_dir());
    assert!(
        !tmp.path().join(".thesis.txt.lock").exists(),
        "lock beside the victim"
    );
    assert!(!dir.join(".notes.txt.lock").exists());

    // Caches of every kind go: current, legacy, damaged (its magic says what it is),
    // and the library's own lock and temp files.
    make_cache(&dir.join("a.cache"), 3, "", "vec");
    write_legacy(&dir.join("old.cache"), 2);
    make_cache(&dir.join("bad.cache"), 2, "", "vec");
    let mut b = std::fs::read(dir.join("bad.cache")).unwrap();
    b[2] ^= 0x20;
    std::fs::write(dir.join("bad.cache"), b).unwrap();
    std::fs::write(dir.join(".w.cache.Ab12Cd.tmp"), b"partial").unwrap();
    for name in [
        "a.cache",
        "old.cache",
        "bad.cache",
        ".a.cache.lock",
        ".w.cache.Ab12Cd.tmp",
    ] {
        let o = run(&dir, &["rm", name]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(!dir.join(name).exists(), "{name} still there");
    }
}

#[test]
fn list_and_info_escape_control_characters_and_json_stays_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let token = "v1\x1b[2J\x1b]0;owned\x07\nFAKE  1 B  9  current\tx\u{7f}\u{9b}31m\u{202e}";
    let source = "http://h/x\r\nsecond line\x1b[31m";
    make_cache(&dir.join("evil.cache"), 2, token, source);
    make_cache(&dir.join("new\nline.cache"), 1, "", "plain");

    let o = run(dir, &["list", "--long"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_no_controls(&out);
    assert_eq!(out.lines().count(), 4, "header, 2 rows, total:\n{out}");
    assert!(out.contains("v1\\x1b[2J"), "{out}");
    assert!(out.contains("new\\nline.cache"), "{out}");
    assert_no_controls(&stderr(&o));

    let o = run(dir, &["info", "evil.cache"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_no_controls(&out);
    assert!(
        out.contains(
            "v1\\x1b[2J\\x1b]0;owned\\x07\\nFAKE  1 B  9  current\\tx\\x7f\\u{9b}31m\\u{202e}"
        ),
        "{out}"
    );
    assert!(
        out.contains("http://h/x\\r\\nsecond line\\x1b[31m"),
        "{out}"
    );

    // Piped, one path per line even for a name with a newline.
    let o = run(dir, &["list"]);
    assert_no_controls(&stdout(&o));
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));

    // JSON keeps the exact text (escaped the JSON way) and parses.
    let o = run(dir, &["list", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let evil = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "evil.cache")
        .unwrap();
    assert_eq!(evil["token"], token);
    assert_eq!(evil["source"], source);
    let o = run(dir, &["info", "--json", "evil.cache"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["token"], token);
    assert!(!stdout(&o).contains('\x1b'));
}

/// A cache directory with caches, companions, and files of the user's own.
fn mixed_dir(real: &Path) {
    make_cache(&real.join("a.cache"), 3, "", "vec");
    make_cache(&real.join("sub/b.cache"), 2, "", "vec");
    write_legacy(&real.join("old.cache"), 2);
    std::fs::write(real.join("old.cache.token"), "v0\n").unwrap();
    std::fs::write(real.join(".x.cache.Zz9Yx8.tmp"), b"partial").unwrap();
    std::fs::write(real.join("notes.txt"), b"mine").unwrap();
    std::fs::write(real.join(".profile"), b"also mine").unwrap();
}

fn assert_cleared_but_kept_user_files(real: &Path) {
    for gone in [
        "a.cache",
        "sub/b.cache",
        "old.cache",
        "old.cache.token",
        ".a.cache.lock",
    ] {
        assert!(!real.join(gone).exists(), "{gone} left");
    }
    assert!(!real.join(".x.cache.Zz9Yx8.tmp").exists());
    assert_eq!(std::fs::read(real.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read(real.join(".profile")).unwrap(), b"also mine");
}

fn clear_script(cwd: &Path, home: &Path, value: &Path) -> Output {
    let target = Path::new(BIN).parent().unwrap().parent().unwrap();
    Command::new(Path::new(ROOT).join("scripts/clear-cache.sh"))
        .current_dir(cwd)
        .env("HOME", home)
        .env("HARMONICS_CACHE_DIR", value)
        .env("CARGO_TARGET_DIR", target)
        .env("HARMONICS_CLI_PROFILE", "debug")
        .output()
        .unwrap()
}

#[test]
fn clear_through_a_symlinked_directory_clears_the_caches_it_points_at() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/me");
    std::fs::create_dir_all(&home).unwrap();
    for tool in ["cli", "script"] {
        let real = tmp.path().join(format!("real-{tool}"));
        mixed_dir(&real);
        let link = tmp.path().join(format!("link-{tool}"));
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let o = match tool {
            "cli" => run(&link, &["clear"]),
            _ => clear_script(tmp.path(), &home, &link),
        };
        assert_eq!(o.status.code(), Some(0), "{tool}: {}", stderr(&o));
        assert!(stdout(&o).contains("removed"), "{tool}: {}", stdout(&o));
        assert_cleared_but_kept_user_files(&real);
        let err = stderr(&o);
        assert!(
            err.contains("kept 2 file(s)") && err.contains("notes.txt") && err.contains(".profile"),
            "{tool}: {err}"
        );
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(
            !real.join("sub").exists(),
            "{tool}: emptied subdirectory left"
        );
    }

    // Without a link: the same, and the directory stays because user files are in it.
    let real = tmp.path().join("plain");
    mixed_dir(&real);
    let o = run(&real, &["clear"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_cleared_but_kept_user_files(&real);

    // A link to a dangerous place is refused by both, as the place itself is.
    for (name, target) in [("to-root", Path::new("/")), ("to-home", home.as_path())] {
        let link = tmp.path().join(name);
        std::os::unix::fs::symlink(target, &link).unwrap();
        let o = cli(&link).env("HOME", &home).arg("clear").output().unwrap();
        assert_eq!(o.status.code(), Some(2), "cli {name}: {}", stderr(&o));
        assert!(stderr(&o).contains("refusing to remove"));
        let o = clear_script(tmp.path(), &home, &link);
        assert_eq!(o.status.code(), Some(2), "script {name}: {}", stderr(&o));
        assert!(stderr(&o).contains("refusing to remove"));
    }
    assert!(home.exists());
}

#[test]
fn unreadable_cache_is_reported_as_unreadable_not_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hc");
    make_cache(&dir.join("mine.cache"), 3, "", "vec");
    make_cache(&dir.join("secret.cache"), 3, "", "vec");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.join("secret.cache"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // As another user: root reads every file whatever its mode.
    let as_nobody = |args: &[&str]| cli(&dir).args(args).uid(65534).gid(65534).output().unwrap();

    let o = as_nobody(&["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("UNREADABLE") && out.contains("secret.cache"),
        "{out}"
    );
    assert!(
        out.contains("permission denied") && out.contains("owner uid 0"),
        "{out}"
    );
    assert!(!out.contains("DAMAGED"), "{out}");
    assert!(
        out.contains("OK       ") && out.contains("mine.cache"),
        "{out}"
    );
    let err = stderr(&o);
    assert!(
        err.contains("could not be read (permission denied)"),
        "{err}"
    );
    assert!(
        !err.contains("damaged") && !err.contains("cache_cli rm"),
        "{err}"
    );

    let o = as_nobody(&["list", "--long"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let row = stdout(&o)
        .lines()
        .find(|l| l.starts_with("secret.cache"))
        .unwrap()
        .to_string();
    assert!(
        row.contains("unreadable") && !row.contains("damaged"),
        "{row}"
    );
    let o = as_nobody(&["list", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["format"] == "unreadable"));

    let o = as_nobody(&["info", "secret.cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("unreadable (permission denied)"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("damage"), "{}", stdout(&o));
}

#[test]
fn info_exits_1_on_a_cache_damaged_only_in_its_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_cache(&dir.join("r.cache"), 20, "", "vec");
    let mut b = std::fs::read(dir.join("r.cache")).unwrap();
    // The last record's data ends where the offset index that follows it begins.
    let header = harmonics_dataset::cache::Header::decode(&b).unwrap();
    let at = header.commit.index_at as usize - 5;
    b[at] ^= 0x40;
    std::fs::write(dir.join("r.cache"), b).unwrap();
    let o = run(dir, &["info", "r.cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("damage:") && stdout(&o).contains("CRC mismatch"));
    let o = run(dir, &["info", "--json", "r.cache"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["format"], "damaged");
    assert!(v["error"].as_str().unwrap().contains("record 19"), "{v}");
}

#[test]
fn prune_evicts_only_caches_never_the_users_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_cache(&dir.join("a.cache"), 50, "", "vec");
    std::fs::write(dir.join("notes.txt"), vec![b'n'; 100_000]).unwrap();
    let o = run(dir, &["prune", "--max-size", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!dir.join("a.cache").exists());
    assert!(
        dir.join("notes.txt").exists(),
        "prune removed a file that is not a cache"
    );
}
