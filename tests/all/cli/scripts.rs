//! The `tools/cache_cli` launcher, the reference doc's commands and
//! `scripts/clear-cache.sh`.

use super::*;

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
