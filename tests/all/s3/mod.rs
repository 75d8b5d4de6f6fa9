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
//! `ENV_LOCK` while it runs (`support::s3::Env`) and sets exactly the variables it
//! wants.
//!
//! One file per concept: `credentials`, `refusals`, `signing`; the helpers they
//! share are here and in `support`.

use crate::support;

mod credentials;
mod refusals;
mod signing;

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use harmonics_dataset::http::s3::{S3Config, S3Credentials, S3Object};
use harmonics_dataset::{
    AsyncHttpProducer, CacheOutcome, DType, HttpOptions, HttpProducer, Tensor,
};
use support::fault_proxy::{FaultProxy, Faults};
use support::http_fixtures::{cache_options, epoch, leftovers};
use support::http_server::wire_body;
use support::s3::{Env, S3Server, ACCESS_KEY, REGION, SECRET_KEY};

const BUCKET: &str = "hd-datasets";
/// A key with segments, spaces and characters that need encoding.
const KEY: &str = "train/v1 (final)/part+1.bin";
const SESSION_TOKEN: &str = "hd-session-token/SECRET+part=";
const WRONG_SECRET: &str = "hd-wrong-secret-0000000000000000000000";

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

fn options(cache: &Path) -> HttpOptions {
    cache_options(cache, 1)
}

fn s3_url(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
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
