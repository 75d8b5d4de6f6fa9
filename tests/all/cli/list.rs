//! `list`: plain, long and JSON, over a directory holding every kind of file.

use super::*;

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
