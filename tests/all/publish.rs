//! `cache_cli publish NAME DEST` and `harmonics::publish` (src/http/publish.rs,
//! src/cache/publish.rs): a compact version-2 cache with its index at the head,
//! atomic at DEST (a directory: temp name + rename; S3: one signed PUT against
//! s3s-fs, a real SigV4-verifying server), a `--json` summary, the C entry point.

use crate::support;
use support::cache_files::{self, read_all};
use support::s3;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use harmonics_dataset::cache::{sha256_file, CacheReader, Header, Metadata};
use harmonics_dataset::ffi::publish::harmonics_cache_publish;
use harmonics_dataset::ffi::HarmonicsStatus;
use harmonics_dataset::{HttpOptions, HttpProducer, Producer, Tensor};
use s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cache_cli");

fn records(n: usize, width: usize) -> Vec<Tensor> {
    (0..n)
        .map(|i| Tensor::from_f32(&vec![i as f32 + 0.5; width]))
        .collect()
}

/// A cache written with `CacheWriter::create`: its index goes after the records.
fn write_cache(path: &Path, want: &[Tensor]) {
    cache_files::write_cache(path, Metadata::new("tok-1", "writer:publish"), want);
}

fn cli(cache_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env("HARMONICS_CACHE_DIR", cache_dir);
    s3::without_aws_env(&mut c);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn json_of(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "cache_cli failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

/// The file is version 2 with its index right after the header, and holds `want`.
fn assert_published(path: &Path, want: &[Tensor]) {
    let bytes = std::fs::read(path).unwrap();
    let h = Header::decode(&bytes).unwrap();
    assert_eq!(h.version, 2);
    assert_eq!(h.commit.index_at, h.data_start, "the index is at the head");
    assert_eq!(h.commit.records, want.len() as u64);
    assert_eq!(h.meta.token, "tok-1");
    let mut r = CacheReader::open(path).unwrap();
    assert!(r.has_index());
    assert_eq!(read_all(&mut r), want);
    assert_eq!(
        r.view_at(want.len() as u64 - 1).unwrap().to_owned(),
        want[want.len() - 1]
    );
}

fn dir_names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn publish_to_a_directory_writes_a_compact_indexed_file_and_a_json_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let want = records(300, 8);
    write_cache(&cache_dir.join("train.cache"), &want);
    // The source has its index at the end: the published file does not.
    let src = std::fs::read(cache_dir.join("train.cache")).unwrap();
    let sh = Header::decode(&src).unwrap();
    assert_ne!(sh.commit.index_at, sh.data_start);

    let dest = tmp.path().join("www/datasets");
    let dest_s = dest.to_str().unwrap();
    let v = json_of(&cli(
        &cache_dir,
        &["publish", "train.cache", dest_s, "--json"],
        &[],
    ));
    let out = dest.join("train.cache");
    assert_eq!(v["name"], "train.cache");
    assert_eq!(v["dest"], out.to_str().unwrap());
    assert_eq!(v["method"], "rename");
    assert_eq!(v["records"], 300);
    let (bytes, sha) = sha256_file(&out).unwrap();
    assert_eq!(v["bytes"], bytes);
    assert_eq!(v["sha256"], sha.as_str());
    assert!(v["etag"].is_null());
    assert!(v["elapsed_seconds"].as_f64().unwrap() >= 0.0);
    assert_published(&out, &want);
    assert_eq!(dir_names(&dest), ["train.cache"], "no temporary file left");

    // Without --json: one human line.
    let o = cli(&cache_dir, &["publish", "train.cache", dest_s], &[]);
    assert!(o.status.success());
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        line.contains("300 records") && line.contains(out.to_str().unwrap()),
        "{line}"
    );
}

#[test]
fn publish_refuses_a_damaged_source_a_missing_cache_and_http_destinations() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let want = records(50, 8);
    let path = cache_dir.join("bad.cache");
    write_cache(&path, &want);
    let mut b = std::fs::read(&path).unwrap();
    let h = Header::decode(&b).unwrap();
    b[h.commit.index_at as usize - 3] ^= 0x40; // inside the last record's data
    std::fs::write(&path, &b).unwrap();
    let dest = tmp.path().join("www");
    let o = cli(
        &cache_dir,
        &["publish", "bad.cache", dest.to_str().unwrap()],
        &[],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.cache"), "{err}");
    assert!(
        !dest.exists() || dir_names(&dest).is_empty(),
        "nothing published: {:?}",
        dir_names(&dest)
    );

    let o = cli(
        &cache_dir,
        &["publish", "missing.cache", dest.to_str().unwrap()],
        &[],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.cache"));

    write_cache(&cache_dir.join("ok.cache"), &want);
    let o = cli(
        &cache_dir,
        &["publish", "ok.cache", "http://127.0.0.1:9/x/"],
        &[],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("takes no uploads"));
    // A destination that is a file, not a directory.
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let o = cli(
        &cache_dir,
        &["publish", "ok.cache", file.to_str().unwrap()],
        &[],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a directory"));
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn a_reader_of_a_directory_destination_never_sees_a_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let want = records(2000, 256); // about 2 MiB
    write_cache(&cache_dir.join("big.cache"), &want);
    let dest = tmp.path().join("www");
    std::fs::create_dir_all(&dest).unwrap();
    let out = dest.join("big.cache");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, out) = (stop.clone(), out.clone());
        std::thread::spawn(move || {
            let (mut absent, mut complete) = (0u64, 0u64);
            while !stop.load(Ordering::SeqCst) {
                match std::fs::read(&out) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => absent += 1,
                    Err(e) => panic!("{e}"),
                    Ok(b) => {
                        let h = Header::decode(&b).expect("a complete header");
                        assert_eq!(h.commit.records, 2000, "only complete files at DEST");
                        assert_eq!(h.commit.index_at, h.data_start);
                        complete += 1;
                    }
                }
            }
            (absent, complete)
        })
    };
    for _ in 0..4 {
        harmonics_dataset::publish(
            cache_dir.join("big.cache").to_str().unwrap(),
            dest.to_str().unwrap(),
            &HttpOptions::default(),
        )
        .unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let (_absent, complete) = watcher.join().unwrap();
    assert!(complete > 0, "the watcher saw the published file");
    assert_published(&out, &want);
    assert_eq!(dir_names(&dest), ["big.cache"]);
}

#[test]
fn the_c_entry_point_publishes_and_returns_the_json_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let want = records(20, 4);
    let src = tmp.path().join("c.cache");
    write_cache(&src, &want);
    let dest = tmp.path().join("www");
    let name = std::ffi::CString::new(src.to_str().unwrap()).unwrap();
    let d = std::ffi::CString::new(dest.to_str().unwrap()).unwrap();
    // Every call publishes anew (the summary's elapsed time changes): one call with
    // a buffer large enough for any summary.
    let mut len = 0usize;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings, a buffer of buf.len() bytes, a writable length.
    let st = unsafe {
        harmonics_cache_publish(
            name.as_ptr(),
            d.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut len,
        )
    };
    assert_eq!(st, HarmonicsStatus::Ok);
    assert!(len < buf.len() && buf[len] == 0);
    let v: Value = serde_json::from_slice(&buf[..len]).unwrap();
    assert_eq!(v["records"], 20);
    assert_published(&dest.join("c.cache"), &want);
    // SAFETY: a null name is checked and refused.
    let st = unsafe {
        harmonics_cache_publish(
            std::ptr::null(),
            d.as_ptr(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(st, HarmonicsStatus::NullArgument);
}

fn s3_env(server: &S3Server, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", server.endpoint()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
}

fn run_s3(cache_dir: &Path, args: &[&str], env: &[(&'static str, String)]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cli(cache_dir, args, &env)
}

#[test]
fn publish_to_s3_is_one_signed_put_readable_through_s3_urls() {
    let Some(server) = S3Server::start() else {
        return;
    };
    server.create_bucket("pub");
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let want = records(400, 16);
    write_cache(&cache_dir.join("train.cache"), &want);
    let env = s3_env(&server, SECRET_KEY);

    let v = json_of(&run_s3(
        &cache_dir,
        &[
            "publish",
            "train.cache",
            "s3://pub/datasets/v1.cache",
            "--json",
        ],
        &env,
    ));
    assert_eq!(v["dest"], "s3://pub/datasets/v1.cache");
    assert_eq!(v["method"], "s3-put");
    assert_eq!(v["records"], 400);
    assert!(v["etag"].is_string(), "{v}");
    let stored: PathBuf = server.root().join("pub/datasets/v1.cache");
    let (bytes, sha) = sha256_file(&stored).unwrap();
    assert_eq!(
        (v["bytes"].as_u64().unwrap(), v["sha256"].as_str().unwrap()),
        (bytes, sha.as_str())
    );
    assert_published(&stored, &want);

    // A key ending in '/' gets the cache's file name.
    let v = json_of(&run_s3(
        &cache_dir,
        &["publish", "train.cache", "s3://pub/dir/", "--json"],
        &env,
    ));
    assert_eq!(v["dest"], "s3://pub/dir/train.cache");
    assert_published(&server.root().join("pub/dir/train.cache"), &want);

    // Another node reads it through an s3:// URL (in a child process: the AWS
    // settings are the environment). The test binary re-runs itself for that.
    let local = tmp.path().join("node/train.cache");
    let o = s3::without_aws_env(&mut Command::new(std::env::current_exe().unwrap()))
        .args([
            "--exact",
            &support::test_name(module_path!(), "s3_reader_child"),
            "--nocapture",
            "--include-ignored",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("HD_CHILD_URL", "s3://pub/datasets/v1.cache")
        .env("HD_CHILD_CACHE", &local)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let mut r = CacheReader::open(&local).unwrap();
    assert_eq!(read_all(&mut r), want);
}

/// The reader of `publish_to_s3_…`, run as a child with its own environment.
#[test]
#[ignore = "run by publish_to_s3_is_one_signed_put_readable_through_s3_urls"]
fn s3_reader_child() {
    let url = std::env::var("HD_CHILD_URL").unwrap();
    let cache = std::env::var("HD_CHILD_CACHE").unwrap();
    let mut p = HttpProducer::from_url(&url, HttpOptions::cached_at(true, &cache)).unwrap();
    assert_eq!(p.len(), 400);
    let first = p.next().unwrap();
    assert_eq!(first, Tensor::from_f32(&[0.5; 16]));
}

#[test]
fn publish_to_s3_with_a_wrong_secret_is_a_clear_error_and_no_object() {
    let Some(server) = S3Server::start() else {
        return;
    };
    server.create_bucket("pub");
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    write_cache(&cache_dir.join("t.cache"), &records(10, 4));
    let bad = s3_env(&server, "wrong-secret-000000000000000000000000");
    let o = run_s3(
        &cache_dir,
        &["publish", "t.cache", "s3://pub/t.cache"],
        &bad,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("PUT"), "{err}");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(err.contains("pub") && err.contains("t.cache"), "{err}");
    assert!(
        !err.contains("wrong-secret"),
        "no secret in messages: {err}"
    );
    assert!(!server.root().join("pub/t.cache").exists());
}
