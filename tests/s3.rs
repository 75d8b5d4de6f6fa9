//! `s3://bucket/key` URLs against a real S3 protocol server that verifies SigV4
//! signatures (`s3s-fs`, started per test on 127.0.0.1; see tests/support/s3.rs).
//!
//! What is proven here (DESIGN §10): good credentials download, cache and reopen
//! with the server gone, through HttpProducer, AsyncHttpProducer and the C ABI;
//! credentials come from the environment or a profile of the shared credentials
//! file; a wrong secret, an unknown access key, a missing key and an unsigned request
//! are errors naming the bucket, the key and the S3 error code, leaving no cache; a
//! connection cut mid-body resumes with a Range that is signed afresh; presigned
//! URLs work as plain URLs (and an expired one is refused); a signature of a skewed
//! clock is refused; no secret reaches an error message or the cache file.
//!
//! The settings are the process environment (`AWS_*`), so every test holds
//! `ENV_LOCK` while it runs and sets exactly the variables it wants.

mod support;
use support::fault_proxy;
use support::s3;

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fault_proxy::{FaultProxy, Faults};
use harmonics_dataset::http::s3::{S3Config, S3Credentials, S3Object};
use harmonics_dataset::http::{AsyncHttpProducer, HttpOptions, HttpOutcome, HttpProducer};
use harmonics_dataset::tensor::write_tensor;
use harmonics_dataset::{DType, Producer, Tensor};
use s3::{S3Server, ACCESS_KEY, REGION, SECRET_KEY};

const BUCKET: &str = "hd-datasets";
/// A key with segments, spaces and characters that need encoding.
const KEY: &str = "train/v1 (final)/part+1.bin";
const SESSION_TOKEN: &str = "hd-session-token/SECRET+part=";
const WRONG_SECRET: &str = "hd-wrong-secret-0000000000000000000000";

static ENV_LOCK: Mutex<()> = Mutex::new(());

const AWS_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
];

/// The environment of one test: every `AWS_*` variable unset but those given, and
/// HOME at an empty directory (so no real `~/.aws/credentials` is read). Restored
/// on drop.
struct Env {
    saved: Vec<(String, Option<std::ffi::OsString>)>,
    _home: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

impl Env {
    fn set(vars: &[(&str, &str)]) -> Env {
        let lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let home = tempfile::tempdir().unwrap();
        let mut saved = Vec::new();
        for name in AWS_VARS.iter().copied().chain(["HOME"]) {
            saved.push((name.to_string(), std::env::var_os(name)));
            std::env::remove_var(name);
        }
        std::env::set_var("HOME", home.path());
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
        Env {
            saved,
            _home: home,
            _lock: lock,
        }
    }

    /// The server's endpoint and its credentials, plus `extra`.
    fn for_server(server: &S3Server, extra: &[(&str, &str)]) -> Env {
        let endpoint = server.endpoint();
        let mut vars = vec![
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ];
        for (k, v) in extra {
            vars.retain(|(n, _)| n != k);
            vars.push((k, v));
        }
        Env::set(&vars)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for (k, v) in &self.saved {
            match v {
                Some(v) => std::env::set_var(k, v),
                None => std::env::remove_var(k),
            }
        }
    }
}

fn records(n: usize, seed: u8) -> Vec<Tensor> {
    (0..n)
        .map(|i| {
            let shape = vec![2, 3 + i % 5];
            let count: usize = shape.iter().product();
            let data: Vec<u8> = (0..count * 4)
                .map(|j| (i * 31 + j * 7) as u8 ^ seed)
                .collect();
            Tensor::new(DType::Float32, shape, data)
        })
        .collect()
}

fn wire_body(records: &[Tensor]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        write_tensor(&mut out, r.as_ref()).unwrap();
    }
    out
}

fn epoch(p: &mut dyn Producer) -> Vec<Tensor> {
    let n = p.size().unwrap();
    (0..n).map(|_| p.next().unwrap()).collect()
}

fn options(cache: &Path) -> HttpOptions {
    HttpOptions {
        cache_path: cache.to_str().unwrap().to_string(),
        retries: 1,
        ..HttpOptions::default()
    }
}

fn s3_url(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

/// Files in a cache directory that a later run could take for data (the lock
/// companion `.<name>.lock` holds none).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        !(name.starts_with('.') && name.ends_with(".lock"))
    });
    v
}

/// Neither secret (nor the session token) is in `text`.
fn assert_no_secret(text: &[u8], what: &str) {
    for secret in [SECRET_KEY, WRONG_SECRET, SESSION_TOKEN] {
        assert!(
            !text.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{what} contains a secret"
        );
    }
    // A signature or a token may only appear redacted.
    let lower = text.to_ascii_lowercase();
    for marker in ["signature=", "security-token=", "x-amz-security-token:"] {
        let m = marker.as_bytes();
        for at in
            (0..lower.len().saturating_sub(m.len() - 1)).filter(|&i| lower[i..].starts_with(m))
        {
            assert!(
                text[at + m.len()..].starts_with(b"REDACTED"),
                "{what} contains {marker} unredacted"
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// ---------------------------------------------------------------------------
// Good credentials

#[test]
fn good_credentials_download_cache_and_reopen_with_the_server_stopped() {
    let Some(mut server) = S3Server::start() else {
        return;
    };
    let want = records(40, 1);
    server.put(BUCKET, KEY, &wire_body(&want));
    let _env = Env::for_server(&server, &[("AWS_SESSION_TOKEN", SESSION_TOKEN)]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("train.cache");

    let mut p = HttpProducer::from_url(&s3_url(KEY), options(&cache)).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::Downloaded);
    assert_eq!(p.url(), s3_url(KEY));
    assert_eq!(epoch(&mut p), want);
    drop(p);

    // The cache records where the data came from (the s3:// URL and the store), never
    // a signature, the secret or the session token.
    let bytes = std::fs::read(&cache).unwrap();
    assert!(
        contains(&bytes, &s3_url(KEY)),
        "the cache names the s3:// URL"
    );
    assert!(
        contains(&bytes, &server.endpoint()),
        "the cache names the endpoint"
    );
    assert_no_secret(&bytes, "the cache file");
    let debug = format!("{:?}", S3Config::from_env().unwrap());
    assert!(
        !debug.contains(SECRET_KEY) && !debug.contains(SESSION_TOKEN),
        "{debug}"
    );

    server.stop();
    let mut p = HttpProducer::from_url(&s3_url(KEY), options(&cache)).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::FromCache);
    assert_eq!(epoch(&mut p), want);
}

#[test]
fn async_producer_and_the_c_abi_accept_s3_urls() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let want = records(25, 2);
    server.put(BUCKET, "a.bin", &wire_body(&want));
    server.put(BUCKET, "c.bin", &wire_body(&want[..7]));
    let _env = Env::for_server(&server, &[]);
    let dir = tempfile::tempdir().unwrap();

    let mut p = AsyncHttpProducer::from_url(&s3_url("a.bin"), options(&dir.path().join("a.cache")))
        .unwrap();
    assert_eq!(epoch(&mut p), want);

    use harmonics_dataset::ffi::error::harmonics_last_error_message;
    use harmonics_dataset::ffi::http::{
        harmonics_http_options_default, harmonics_http_producer_from_url,
    };
    use harmonics_dataset::ffi::producer::{harmonics_producer_free, harmonics_producer_size};
    use harmonics_dataset::ffi::{HarmonicsHttpOptions, HarmonicsStatus};
    let cache = CString::new(dir.path().join("c.cache").to_str().unwrap()).unwrap();
    unsafe {
        let mut opts: HarmonicsHttpOptions = harmonics_http_options_default();
        opts.cache_path = cache.as_ptr();
        let url = CString::new(s3_url("c.bin")).unwrap();
        let mut p = std::ptr::null_mut();
        let status = harmonics_http_producer_from_url(url.as_ptr(), &opts, &mut p);
        let msg = CStr::from_ptr(harmonics_last_error_message()).to_string_lossy();
        assert_eq!(status, HarmonicsStatus::Ok, "{msg}");
        let mut n = 0usize;
        assert_eq!(harmonics_producer_size(p, &mut n), HarmonicsStatus::Ok);
        assert_eq!(n, 7);
        harmonics_producer_free(p);

        let url = CString::new(s3_url("absent.bin")).unwrap();
        let absent = CString::new(dir.path().join("absent.cache").to_str().unwrap()).unwrap();
        opts.cache_path = absent.as_ptr();
        let mut p = std::ptr::null_mut();
        let status = harmonics_http_producer_from_url(url.as_ptr(), &opts, &mut p);
        assert_ne!(status, HarmonicsStatus::Ok);
        assert!(p.is_null());
        let msg = CStr::from_ptr(harmonics_last_error_message()).to_string_lossy();
        assert!(
            msg.contains("NoSuchKey") && msg.contains("absent.bin"),
            "{msg}"
        );
    }
}

#[test]
fn credentials_come_from_a_profile_of_the_shared_credentials_file() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let want = records(10, 3);
    server.put(BUCKET, "p.bin", &wire_body(&want));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = NOTTHISONE\naws_secret_access_key = nope\n\n\
             [ml-team]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    let endpoint = server.endpoint();
    let _env = Env::set(&[
        ("AWS_ENDPOINT_URL_S3", &endpoint),
        ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
        ("AWS_PROFILE", "ml-team"),
        ("AWS_REGION", REGION),
    ]);
    let mut p =
        HttpProducer::from_url(&s3_url("p.bin"), options(&dir.path().join("p.cache"))).unwrap();
    assert_eq!(epoch(&mut p), want);
}

// ---------------------------------------------------------------------------
// Refusals

/// Opens `url` expecting an error; checks that it names the bucket and the key and
/// that nothing was cached or leaked. Returns the message.
fn refused(url: &str, key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("x.cache");
    let e = HttpProducer::from_url(url, options(&cache))
        .unwrap_err()
        .to_string();
    eprintln!("refused as expected: {e}");
    assert!(
        e.contains(BUCKET) && e.contains(key),
        "names bucket and key: {e}"
    );
    assert_no_secret(e.as_bytes(), "the error message");
    assert_eq!(
        leftovers(dir.path()),
        Vec::<PathBuf>::new(),
        "no cache left: {e}"
    );
    e
}

#[test]
fn a_wrong_secret_is_signature_does_not_match_and_leaves_no_cache() {
    let Some(server) = S3Server::start() else {
        return;
    };
    server.put(BUCKET, KEY, &wire_body(&records(5, 4)));
    let _env = Env::for_server(&server, &[("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)]);
    let e = refused(&s3_url(KEY), KEY);
    assert!(e.contains("SignatureDoesNotMatch"), "{e}");
    assert!(e.contains("403"), "{e}");
    assert!(e.contains("secret access key"), "says what to check: {e}");
}

#[test]
fn an_unknown_access_key_is_refused_naming_the_code() {
    let Some(server) = S3Server::start() else {
        return;
    };
    server.put(BUCKET, KEY, &wire_body(&records(5, 5)));
    let _env = Env::for_server(&server, &[("AWS_ACCESS_KEY_ID", "HDUNKNOWNKEY")]);
    let e = refused(&s3_url(KEY), KEY);
    // s3s answers NotSignedUp where AWS answers InvalidAccessKeyId.
    assert!(
        e.contains("NotSignedUp") || e.contains("InvalidAccessKeyId"),
        "{e}"
    );
    assert!(e.contains("does not know the access key id"), "{e}");
}

#[test]
fn a_missing_key_is_no_such_key() {
    let Some(server) = S3Server::start() else {
        return;
    };
    server.create_bucket(BUCKET);
    let _env = Env::for_server(&server, &[]);
    let e = refused(&s3_url("no/such key.bin"), "no/such key.bin");
    assert!(e.contains("NoSuchKey") && e.contains("404"), "{e}");
}

#[test]
fn without_credentials_the_request_is_unsigned_and_the_refusal_says_why() {
    let Some(server) = S3Server::start() else {
        return;
    };
    server.put(BUCKET, KEY, &wire_body(&records(5, 6)));
    let endpoint = server.endpoint();
    let _env = Env::set(&[("AWS_ENDPOINT_URL", &endpoint), ("AWS_PROFILE", "gone")]);
    let e = refused(&s3_url(KEY), KEY);
    assert!(e.contains("the request was unsigned"), "{e}");
    assert!(
        e.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"),
        "{e}"
    );
    assert!(e.contains("AWS_PROFILE=gone"), "{e}");
}

#[test]
fn a_malformed_endpoint_is_refused_when_the_producer_is_made() {
    let _env = Env::set(&[("AWS_ENDPOINT_URL", "ftp://127.0.0.1/")]);
    let dir = tempfile::tempdir().unwrap();
    let e = HttpProducer::from_url(&s3_url(KEY), options(&dir.path().join("x.cache")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("AWS_ENDPOINT_URL") && e.contains("http://"),
        "{e}"
    );
    let e = HttpProducer::from_url("s3://bucket-only", options(&dir.path().join("x.cache")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no key"), "{e}");
}

// ---------------------------------------------------------------------------
// Signed resumes, presigned URLs, clocks

#[test]
fn a_cut_connection_resumes_with_a_freshly_signed_range() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let want = records(400, 7);
    let body = wire_body(&want);
    server.put(BUCKET, KEY, &body);
    let proxy = FaultProxy::start(
        server.port(),
        Faults::cut_first_response_after(body.len() as u64 / 3),
    );
    let endpoint = format!("http://127.0.0.1:{}", proxy.port());
    let _env = Env::for_server(&server, &[("AWS_ENDPOINT_URL", &endpoint)]);
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(&s3_url(KEY), options(&dir.path().join("r.cache"))).unwrap();
    assert_eq!(epoch(&mut p), want, "records are exact after the resume");

    let ex = proxy.exchanges();
    assert!(ex.len() >= 2, "{ex:#?}");
    assert!(ex[0].cut, "the first response was cut");
    let resume = &ex[1];
    assert_eq!(resume.status, 206, "{resume:#?}");
    assert!(resume.range_start().is_some_and(|s| s > 0), "{resume:#?}");
    let auth = resume.request_header("authorization").unwrap_or_default();
    let signed = auth.split("SignedHeaders=").nth(1).unwrap_or_default();
    assert!(
        signed.split([';', ',']).any(|h| h == "range"),
        "Range is signed: {auth}"
    );
    assert_ne!(
        ex[0].request_header("authorization"),
        resume.request_header("authorization"),
        "each request carries its own signature"
    );
    assert!(ex[0]
        .path()
        .starts_with(&format!("/{BUCKET}/train/v1%20%28final%29/part%2B1.bin")));
}

/// `bytes=A-B` of a request.
fn range_of(e: &fault_proxy::Exchange) -> Option<(u64, u64)> {
    let (a, b) = e
        .request_header("range")?
        .strip_prefix("bytes=")?
        .split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[test]
fn parallel_ranges_are_signed_pinned_to_the_etag_and_a_cut_range_is_resumed() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let want = records(20_000, 3);
    let body = wire_body(&want);
    server.put(BUCKET, KEY, &body);
    // Exchange 1 is the first ranged GET (0 is the first, whole GET).
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            cut: vec![(1, 10_000)],
            ..Faults::default()
        },
    );
    let endpoint = format!("http://127.0.0.1:{}", proxy.port());
    let _env = Env::for_server(&server, &[("AWS_ENDPOINT_URL", &endpoint)]);
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        connections: 4,
        parallel_min_bytes: 1,
        retries: 2,
        ..options(&dir.path().join("p.cache"))
    };
    let mut p = HttpProducer::from_url(&s3_url(KEY), o).unwrap();
    assert_eq!(epoch(&mut p), want, "records are exact over 4 connections");
    let ex = proxy.exchanges();
    let etag = ex[0].response_header("etag").unwrap().to_string();
    let ranged: Vec<_> = ex.iter().filter(|e| range_of(e).is_some()).collect();
    assert!(ranged.len() >= 3, "{ex:#?}");
    for e in &ranged {
        assert_eq!(e.request_header("if-match"), Some(etag.as_str()), "{e:#?}");
        let auth = e.request_header("authorization").unwrap_or_default();
        let signed = auth.split("SignedHeaders=").nth(1).unwrap_or_default();
        assert!(
            signed.split([';', ',']).any(|h| h == "range"),
            "Range is signed: {auth}"
        );
    }
    // The cut range was resumed from where it was cut, not restarted.
    let (a, b) = range_of(&ex[1]).unwrap();
    assert!(ex[1].cut, "{:#?}", ex[1]);
    assert_eq!(
        ranged
            .iter()
            .filter(|e| range_of(e) == Some((a + 10_000, b)))
            .count(),
        1,
        "{ex:#?}"
    );
    assert_eq!(ex.iter().filter(|e| range_of(e).is_none()).count(), 1);
}

#[test]
fn revalidation_sends_the_stored_etag_signed_and_a_changed_object_replaces_the_cache() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let v1 = records(30, 10);
    server.put(BUCKET, KEY, &wire_body(&v1));
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let endpoint = format!("http://127.0.0.1:{}", proxy.port());
    let _env = Env::for_server(&server, &[("AWS_ENDPOINT_URL", &endpoint)]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("v.cache");
    let mut p = HttpProducer::from_url(&s3_url(KEY), options(&cache)).unwrap();
    assert_eq!(epoch(&mut p), v1);
    drop(p);
    let etag = proxy.exchanges()[0]
        .response_header("etag")
        .expect("s3s-fs sends an ETag")
        .to_string();

    let v2 = records(31, 11);
    server.put(BUCKET, KEY, &wire_body(&v2));
    let opts = HttpOptions {
        revalidate: true,
        ..options(&cache)
    };
    let mut p = HttpProducer::from_url(&s3_url(KEY), opts).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::Downloaded);
    assert_eq!(epoch(&mut p), v2, "the changed object replaced the cache");
    let ex = proxy.exchanges();
    let conditional = ex.last().unwrap();
    assert_eq!(
        conditional.request_header("if-none-match"),
        Some(etag.as_str())
    );
    let auth = conditional
        .request_header("authorization")
        .unwrap_or_default();
    assert!(
        auth.contains("if-none-match"),
        "If-None-Match is signed: {auth}"
    );
    assert_eq!(
        conditional.status, 200,
        "s3s-fs has no 304; a changed ETag answers 200 anyway"
    );
}

fn server_config(server: &S3Server, token: Option<&str>) -> S3Config {
    S3Config::new(
        REGION,
        Some(reqwest::Url::parse(&server.endpoint()).unwrap()),
        Some(S3Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            token.map(String::from),
        )),
    )
}

#[test]
fn a_presigned_url_works_as_a_plain_url_and_an_expired_one_is_refused() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let want = records(12, 8);
    server.put(BUCKET, KEY, &wire_body(&want));
    // No AWS settings at all: the URL carries everything.
    let _env = Env::set(&[]);
    let obj = S3Object::parse(&s3_url(KEY)).unwrap();
    let cfg = server_config(&server, Some(SESSION_TOKEN));
    let url = cfg
        .presign_get(&obj, Duration::from_secs(3600), SystemTime::now())
        .unwrap();
    assert!(
        url.as_str().starts_with("http://127.0.0.1:") && url.as_str().contains("X-Amz-Signature=")
    );
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(url.as_str(), options(&dir.path().join("p.cache"))).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::Downloaded);
    assert_eq!(epoch(&mut p), want);
    // The presigned URL's bearer secrets (signature, session token) are kept out of
    // the cache file and of Debug output.
    let signature = url
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-Signature")
        .unwrap()
        .1
        .into_owned();
    let bytes = std::fs::read(dir.path().join("p.cache")).unwrap();
    assert_no_secret(&bytes, "the cache of a presigned URL");
    assert!(
        !contains(&bytes, &signature),
        "the cache holds the signature"
    );
    let debug = format!("{p:?}");
    assert!(
        !debug.contains(&signature) && !debug.contains("SECRET"),
        "{debug}"
    );

    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let expired = cfg
        .presign_get(&obj, Duration::from_secs(60), two_hours_ago)
        .unwrap();
    let cache = dir.path().join("expired.cache");
    let e = HttpProducer::from_url(expired.as_str(), options(&cache))
        .unwrap_err()
        .to_string();
    assert!(e.contains("403"), "{e}");
    assert!(e.contains("X-Amz-Signature=REDACTED"), "{e}");
    assert_no_secret(e.as_bytes(), "the error message");
    assert!(!cache.exists());
}

#[test]
fn a_signature_from_a_skewed_clock_is_refused_by_the_server() {
    let Some(server) = S3Server::start() else {
        return;
    };
    server.put(BUCKET, KEY, &wire_body(&records(3, 9)));
    let cfg = server_config(&server, Some(SESSION_TOKEN));
    let url = cfg
        .object_url(&S3Object::parse(&s3_url(KEY)).unwrap())
        .unwrap();
    let get = |time: SystemTime| {
        let mut headers = reqwest::header::HeaderMap::new();
        assert!(cfg.sign_headers("GET", &url, &mut headers, time).unwrap());
        let resp = reqwest::blocking::Client::new()
            .get(url.clone())
            .headers(headers)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    assert_eq!(get(SystemTime::now()).0, 200);
    let (status, body) = get(SystemTime::now() - Duration::from_secs(3600));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("RequestTimeTooSkewed"), "{body}");
}
