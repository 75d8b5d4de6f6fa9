//! `cache_cli publish NAME DEST`: a cache written where other nodes fetch it.
//!
//! The published file is a compact version-2 cache with its offset index at the
//! head ([`crate::cache::write_compact`]): a remote reader gets the header and the
//! index with one or two ranged GETs, then any record's bytes.
//!
//! DEST is
//! - a directory (any static server serves it): the file is `DEST/<name>` (the
//!   cache's file name), written under a temporary name in DEST, fsynced, renamed
//!   into place, and DEST fsynced. A reader of `DEST/<name>` sees the previous file
//!   or the new one, never part of one.
//! - an `s3://bucket/key` URL (a key ending in `/` gets the cache's file name
//!   appended): the compact file is written to a local temporary directory
//!   (`TMPDIR`), hashed, and uploaded with ONE signed PUT whose payload SHA-256 is
//!   part of the signature. S3 makes an object visible only once its PUT is
//!   complete (and checks the body against the signed hash), so a reader of the key
//!   sees the previous object or the new one, never part of one; a PUT that fails
//!   leaves the previous object. That is why a single PUT is used rather than a
//!   temporary key plus copy and delete (three requests, a window where the
//!   temporary key is visible and may be left behind). A single PUT is limited to
//!   5 GiB by S3; larger caches are refused before any byte is sent (multipart
//!   upload is not implemented). Settings and credentials: as for `s3://` GETs
//!   (see [`super::s3`]).
//!
//! Plain `http(s)://` destinations are refused: a static server takes no uploads;
//! publish into the directory it serves.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

use super::client::{chain, shared_client};
use super::retry::{backoff, send_cause};
use super::s3::{self, S3Config, S3Object, S3Payload};
use super::HttpOptions;
use crate::cache::{resolve_cache_path, write_compact};
use crate::error::{Error, HttpCause, Result};

/// The largest object S3 accepts in one PUT: 5 GiB.
pub const MAX_SINGLE_PUT: u64 = 5 << 30;

/// What [`publish`] did (the `--json` summary of `cache_cli publish`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishSummary {
    /// The cache published, as given.
    pub name: String,
    /// Its file.
    pub source: PathBuf,
    /// Where it is now: the file path, or the `s3://bucket/key` URL.
    pub dest: String,
    /// How it got there: `"rename"` (directory) or `"s3-put"`.
    pub method: &'static str,
    pub records: u64,
    /// Size of the published file.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the published file.
    pub sha256: String,
    /// The object's ETag as the store answered it (S3 only).
    pub etag: Option<String>,
    pub elapsed: Duration,
}

impl PublishSummary {
    /// The summary as one JSON object: name, source, dest, method, records, bytes,
    /// sha256, etag (null unless S3), elapsed_seconds. (Written here rather than with
    /// serde_json, which only the command-line tool depends on.)
    pub fn to_json(&self) -> String {
        let etag = self.etag.as_deref().map_or("null".to_string(), json_string);
        format!(
            "{{\"name\":{},\"source\":{},\"dest\":{},\"method\":{},\"records\":{},\
             \"bytes\":{},\"sha256\":{},\"etag\":{},\"elapsed_seconds\":{}}}",
            json_string(&self.name),
            json_string(&self.source.display().to_string()),
            json_string(&self.dest),
            json_string(self.method),
            self.records,
            self.bytes,
            json_string(&self.sha256),
            etag,
            self.elapsed.as_secs_f64()
        )
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Publishes the cache `name_or_path` (a name under the cache directory or an
/// absolute path, as `cache_cli` takes them) to `dest` (see the module
/// documentation). `opts`: timeouts, retries and CA file of the S3 upload.
pub fn publish(name_or_path: &str, dest: &str, opts: &HttpOptions) -> Result<PublishSummary> {
    let started = Instant::now();
    let source = resolve_cache_path(name_or_path)?;
    let file_name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::InvalidArgument(format!("{name_or_path:?} names no file")))?;
    if dest.is_empty() {
        return Err(Error::InvalidArgument(
            "the publish destination is empty".into(),
        ));
    }
    let lower = dest.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(Error::InvalidArgument(format!(
            "cannot publish to {dest}: a static HTTP server takes no uploads; publish into \
             the directory it serves, or to an s3:// URL"
        )));
    }
    let summary = |dest: String, method, f: crate::cache::CompactFile, etag| PublishSummary {
        name: name_or_path.to_string(),
        source: source.clone(),
        dest,
        method,
        records: f.records,
        bytes: f.bytes,
        sha256: f.sha256,
        etag,
        elapsed: started.elapsed(),
    };
    if s3::is_s3(dest) {
        let url = if dest.ends_with('/') {
            format!("{dest}{file_name}")
        } else {
            dest.to_string()
        };
        let obj = S3Object::parse(&url)?;
        let tmp = tempfile::Builder::new()
            .prefix(".harmonics-publish.")
            .tempdir()
            .map_err(|e| {
                Error::io(
                    "cannot create a temporary directory in",
                    std::env::temp_dir(),
                    e,
                )
            })?;
        let f = write_compact(&source, &tmp.path().join(&file_name))?;
        let etag = put_file(&obj, &url, &f.path, f.bytes, &f.sha256, opts)?;
        return Ok(summary(url, "s3-put", f, etag));
    }
    let dir = Path::new(dest);
    if dir.exists() && !dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "cannot publish to {dest}: it exists and is not a directory"
        )));
    }
    let f = write_compact(&source, &dir.join(&file_name))?;
    let path = f.path.display().to_string();
    Ok(summary(path, "rename", f, None))
}

/// Uploads the file at `path` (`len` bytes, SHA-256 `sha256`) as `obj` with one
/// signed PUT, retrying transport failures and 5xx answers `opts.retries` times.
/// Returns the ETag answered.
fn put_file(
    obj: &S3Object,
    url: &str,
    path: &Path,
    len: u64,
    sha256: &str,
    opts: &HttpOptions,
) -> Result<Option<String>> {
    if len > MAX_SINGLE_PUT {
        return Err(Error::InvalidArgument(format!(
            "cannot publish {} ({len} bytes) to {url}: S3 takes at most 5 GiB in one PUT \
             and multipart upload is not implemented",
            path.display()
        )));
    }
    let cfg = S3Config::from_env()?;
    let target = cfg.object_url(obj)?;
    let client = shared_client(opts)?;
    let http = |cause: HttpCause, detail: String| Error::http(cause, url, detail);
    let mut attempt = 0;
    loop {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        // Signed again on every attempt: a signature carries its time.
        cfg.sign_request(
            "PUT",
            &target,
            &mut headers,
            S3Payload::Sha256(sha256.to_string()),
            SystemTime::now(),
        )?;
        let file =
            std::fs::File::open(path).map_err(|e| Error::io("cannot read the file", path, e))?;
        let sent = client
            .put(target.clone())
            .headers(headers)
            .body(reqwest::blocking::Body::sized(file, len))
            .send();
        let retry = match sent {
            Ok(resp) if resp.status().is_success() => {
                let etag = resp
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                return Ok(etag);
            }
            Ok(resp) if resp.status().is_server_error() && attempt < opts.retries => {
                format!("HTTP {}", resp.status())
            }
            Ok(resp) => {
                let cause = HttpCause::status(resp.status().as_u16());
                return Err(http(cause, s3::refusal_of("PUT", url, resp)));
            }
            Err(e) if attempt < opts.retries => chain(&e),
            Err(e) => {
                return Err(http(
                    send_cause(&e),
                    format!("the PUT failed: {}", chain(&e)),
                ))
            }
        };
        crate::log::debug(&format!("PUT {url}: {retry}; retrying"));
        std::thread::sleep(backoff(attempt));
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_json_with_every_character_escaped() {
        let s = PublishSummary {
            name: "a\"b\\c\nd\u{1}é".into(),
            source: PathBuf::from("/x/y"),
            dest: "s3://b/k".into(),
            method: "s3-put",
            records: 3,
            bytes: 99,
            sha256: "ab".into(),
            etag: Some("\"e1\"".into()),
            elapsed: Duration::from_micros(1500),
        };
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["name"], "a\"b\\c\nd\u{1}é");
        assert_eq!(v["etag"], "\"e1\"");
        assert_eq!(v["records"], 3);
        assert_eq!(v["elapsed_seconds"], 0.0015);
        let none = PublishSummary { etag: None, ..s };
        let v: serde_json::Value = serde_json::from_str(&none.to_json()).unwrap();
        assert!(v["etag"].is_null());
    }
}
