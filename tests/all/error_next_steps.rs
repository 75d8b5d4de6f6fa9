//! The errors a new user meets first say what to do next (issue 24): a body that is
//! not the wire format (JSON, HTML), a URL without a scheme, a sampler over a producer
//! without random access, and a default cache directory that cannot be created.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use harmonics_dataset::tensor::decode_wire;
use harmonics_dataset::{
    AsyncHttpProducer, CsvProducer, DiskCacheProducer, HttpOptions, HttpProducer, Producer,
    SampledProducer, SamplerOptions, Tensor, VecProducer,
};

use crate::support;

/// Serves `body` with status 200 to every connection on 127.0.0.1; returns its URL.
fn serve(body: &'static [u8], content_type: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/data", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(body);
        }
    });
    url
}

fn no_cache() -> HttpOptions {
    HttpOptions {
        cache: false,
        ..Default::default()
    }
}

fn assert_says_not_the_wire_format(message: &str, code: &str) {
    for part in [
        &format!("unknown dtype code {code}") as &str,
        "this is not the wire format",
        "write_tensor",
        "u8 dtype 0..4 | u32 ndims | u32 dims | u32 nbytes | data",
        "cache_cli publish",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn json_bytes_are_named_as_not_the_wire_format() {
    let err = decode_wire(br#"{"records": [[1.0, 2.0]]}"#)
        .unwrap_err()
        .to_string();
    assert_says_not_the_wire_format(&err, "123 ('{' as text)");
}

#[test]
fn a_server_answering_json_gets_the_expected_format_in_the_error() {
    let url = serve(
        br#"{"records": [[1.0, 2.0], [3.0, 4.0]]}"#,
        "application/json",
    );
    let err = HttpProducer::from_url(&url, no_cache())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&url), "the URL is named: {err}");
    assert_says_not_the_wire_format(&err, "123");
}

#[test]
fn a_server_answering_html_gets_the_expected_format_in_the_error() {
    let url = serve(b"<!doctype html><title>Not here</title>", "text/html");
    let err = HttpProducer::from_url(&url, no_cache())
        .err()
        .unwrap()
        .to_string();
    assert_says_not_the_wire_format(&err, "60 ('<' as text)");
}

#[test]
fn a_url_without_a_scheme_says_which_schemes_to_add() {
    for url in [
        "127.0.0.1:8080/data",
        "localhost:8080/data",
        "data.example.com/train.bin",
    ] {
        let sync = HttpProducer::from_url(url, no_cache())
            .err()
            .unwrap()
            .to_string();
        let background = AsyncHttpProducer::from_url(url, no_cache())
            .err()
            .unwrap()
            .to_string();
        for err in [sync, background] {
            assert!(
                err.contains("it has no scheme; add http://, https:// or s3:// in front"),
                "{err}"
            );
            assert!(err.contains(&format!("\"http://{url}\"")), "{err}");
            assert!(!err.contains("relative URL without a base"), "{err}");
        }
    }
}

#[test]
fn a_sampler_over_a_csv_producer_suggests_a_disk_cache_and_the_advice_works() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("train.csv");
    std::fs::write(&csv, "1,2\n3,4\n5,6\n").unwrap();
    let err = SampledProducer::new(
        CsvProducer::open(&csv, false).unwrap(),
        SamplerOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("does not support random access"), "{err}");
    assert!(err.contains("wrap it in a DiskCacheProducer"), "{err}");

    // Following the advice: the same CSV through a cache samples fine.
    let cached = DiskCacheProducer::open(
        CsvProducer::open(&csv, false).unwrap(),
        dir.path().join("train.cache").to_str().unwrap(),
    )
    .unwrap();
    let mut sampled = SampledProducer::new(cached, SamplerOptions::default()).unwrap();
    let mut firsts: Vec<f32> = (0..3)
        .map(|_| sampled.next_view().unwrap().to_owned().to_f32()[0])
        .collect();
    firsts.sort_by(f32::total_cmp);
    assert_eq!(firsts, [1.0, 3.0, 5.0]);
}

/// Set in the child process of the cache-directory test: which case it runs.
const CHILD_CASE: &str = "ERROR_NEXT_STEPS_CHILD";

/// Opens a cache named "train.cache" (relative: under the cache directory) from the
/// working directory the parent chose; prints the error.
#[test]
fn child_opens_a_cache_under_the_default_directory() {
    if std::env::var_os(CHILD_CASE).is_none() {
        return; // only meaningful as the child of the test below
    }
    let base = VecProducer::new(vec![Tensor::from_f32(&[1.0])]);
    match DiskCacheProducer::open(base, "train.cache") {
        Ok(_) => println!("RESULT opened"),
        Err(e) => println!("RESULT error: {e}"),
    }
}

/// Runs the child in `cwd` with `HARMONICS_CACHE_DIR` set to `cache_dir` (None: unset);
/// returns its RESULT line.
fn child_result(cwd: &Path, cache_dir: Option<&str>) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &support::test_name(
            module_path!(),
            "child_opens_a_cache_under_the_default_directory",
        ),
        "--nocapture",
        "--test-threads=1",
    ])
    .current_dir(cwd)
    .env(CHILD_CASE, "1");
    match cache_dir {
        Some(d) => cmd.env("HARMONICS_CACHE_DIR", d),
        None => cmd.env_remove("HARMONICS_CACHE_DIR"),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no RESULT line from the child:\n{stdout}"))
        .to_string()
}

#[test]
fn an_uncreatable_default_cache_directory_names_harmonics_cache_dir() {
    // `.harmonics` is a file where the default cache directory must go: even root
    // cannot create `.harmonics/cache` under it (a read-only directory stops only
    // other users).
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join(".harmonics"), "not a directory").unwrap();
    let err = child_result(cwd.path(), None);
    assert!(
        err.starts_with("error: cannot create cache directory"),
        "{err}"
    );
    assert!(err.contains(".harmonics/cache"), "{err}");
    assert!(
        err.contains(
            "HARMONICS_CACHE_DIR is not set, and the default .harmonics/cache is relative to \
             the working directory; set HARMONICS_CACHE_DIR to a directory this process can write"
        ),
        "{err}"
    );

    // Set but unusable: the error shows the value it came from.
    let blocked = cwd.path().join(".harmonics/cache").display().to_string();
    let err = child_result(cwd.path(), Some(&blocked));
    assert!(
        err.contains(&format!("HARMONICS_CACHE_DIR={blocked}")),
        "{err}"
    );

    // The next step works: a writable HARMONICS_CACHE_DIR.
    let writable = cwd.path().join("caches").display().to_string();
    assert_eq!(child_result(cwd.path(), Some(&writable)), "opened");
}

#[test]
fn an_absolute_cache_path_outside_the_cache_directory_gets_no_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let name = dir.path().join("file/sub/train.cache");
    let base = VecProducer::new(vec![Tensor::from_f32(&[1.0])]);
    let err = DiskCacheProducer::open(base, name.to_str().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("cannot create cache directory"), "{err}");
    assert!(!err.contains("HARMONICS_CACHE_DIR"), "{err}");
}
