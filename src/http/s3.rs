//! S3: `s3://bucket/key` URLs for the HTTP producers, signed with AWS Signature V4
//! (the `aws-sigv4` crate: the signer of the official AWS SDK, pure Rust).
//!
//! - Settings come from the standard environment: `AWS_ENDPOINT_URL_S3` /
//!   `AWS_ENDPOINT_URL` (an S3-compatible store, addressed path-style:
//!   `ENDPOINT/bucket/key`; without one, AWS itself:
//!   `https://bucket.s3.REGION.amazonaws.com/key`), `AWS_REGION` /
//!   `AWS_DEFAULT_REGION` (default `us-east-1`), credentials from `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else the shared credentials
//!   file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile
//!   `AWS_PROFILE` or `default`). Without usable credentials a request goes unsigned
//!   (a public bucket), and a refusal says why no credentials were used.
//! - Requests are signed in the `Authorization` header, with every header the
//!   request carries (Range, the ETag pins, If-None-Match, …), and signed again on every
//!   attempt: a signature carries its time.
//! - Secrets never leave this module: not in messages, `Debug` output or the cache
//!   metadata (which records `s3://bucket/key` and the endpoint, never a signed URL).
//! - A refusal names the bucket, the key and the S3 error code of the XML body
//!   (AccessDenied, NoSuchKey, SignatureDoesNotMatch, RequestTimeTooSkewed, …).
//!
//! Presigned `https://` URLs need nothing of this: they are plain URLs.
//!
//! For other requests (ranged GETs pinned to an ETag, a PUT): build them with
//! `client.get(url)` (or `.put`) and every header, then
//! `SendSigned::send_signed(url)` (crate-internal), which signs each attempt; or
//! sign a `HeaderMap` with [`S3Config::sign_request`].

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningInstructions, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;

use crate::error::{Error, Result};
use crate::log::warn;

const DEFAULT_REGION: &str = "us-east-1";

/// What a key keeps unencoded in the request path: S3's rule (RFC 3986 unreserved
/// characters, and '/' between the key's segments).
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// An object named by an `s3://bucket/key` URL. Everything after the bucket's '/'
/// is the key, literally (as the AWS CLI reads it): '/', '?', '#', '%' and spaces
/// are part of the key and are encoded only in the request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Object {
    bucket: String,
    key: String,
}

impl S3Object {
    pub fn parse(url: &str) -> Result<S3Object> {
        let bad = |why: &str| Error::InvalidArgument(format!("invalid S3 URL {url:?}: {why}"));
        let rest = match url.get(..5) {
            Some(s) if s.eq_ignore_ascii_case("s3://") => &url[5..],
            _ => return Err(bad("it must start with s3://")),
        };
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| bad("no key (s3://bucket/key)"))?;
        if bucket.is_empty() {
            return Err(bad("no bucket (s3://bucket/key)"));
        }
        if bucket.len() > 255
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(bad(
                "a bucket name has letters, digits, '.', '-' and '_' only",
            ));
        }
        if key.is_empty() {
            return Err(bad("no key (s3://bucket/key)"));
        }
        if key.contains('\0') {
            return Err(bad("the key contains a NUL byte"));
        }
        // URL paths resolve "." and ".." segments, so such a key cannot be requested
        // as itself (it would name another object).
        if key.split('/').any(|s| s == "." || s == "..") {
            return Err(bad(
                "a key with \".\" or \"..\" segments cannot be requested",
            ));
        }
        Ok(S3Object {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// `s3://bucket/key`
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// The key as it appears in a request path.
    fn encoded_key(&self) -> String {
        utf8_percent_encode(&self.key, KEY_ENCODE).to_string()
    }

    /// `bucket "B", key "K"` for messages.
    fn describe(&self) -> String {
        format!("bucket {:?}, key {:?}", self.bucket, self.key)
    }
}

/// Access key id, secret and optional session token. `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// Where they came from, for messages (the variables, "profile [p] of FILE").
    origin: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("origin", &self.origin)
            .finish()
    }
}

impl S3Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> S3Credentials {
        S3Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
            origin: "the credentials given".into(),
        }
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Where the credentials were found: `AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    /// `profile [p] of FILE`.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// What a signed request declares of its body (`x-amz-content-sha256`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Payload {
    /// No body (GET, HEAD, DELETE).
    Empty,
    /// A body sent without its hash being signed (`UNSIGNED-PAYLOAD`).
    Unsigned,
    /// The lowercase hex SHA-256 of the body.
    Sha256(String),
}

/// Where S3 requests go and how they are signed. `Debug` never shows a secret.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub region: String,
    /// An S3-compatible store (path-style addressing); `None`: AWS.
    pub endpoint: Option<Url>,
    pub credentials: Option<S3Credentials>,
    /// Why there are no credentials (what was looked at, what was wrong).
    no_credentials: String,
}

impl S3Config {
    /// The settings of the process environment (see the module documentation).
    /// Errors only for a malformed endpoint URL; unusable credentials leave
    /// `credentials` empty, with the reason kept for messages.
    pub fn from_env() -> Result<S3Config> {
        S3Config::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Like `from_env`, reading variables through `env` (`None`: unset).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<S3Config> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let endpoint = endpoint_from(&var)?;
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let (credentials, no_credentials) = match find_credentials(&var) {
            Ok(c) => (Some(c), String::new()),
            Err(why) => (None, why),
        };
        Ok(S3Config {
            region,
            endpoint,
            credentials,
            no_credentials,
        })
    }

    /// A config for an explicit endpoint, region and credentials.
    pub fn new(region: &str, endpoint: Option<Url>, credentials: Option<S3Credentials>) -> Self {
        S3Config {
            region: region.to_string(),
            endpoint,
            credentials,
            no_credentials: "no credentials were given".into(),
        }
    }

    /// The object's HTTP(S) URL: `ENDPOINT/bucket/key` with an endpoint, else
    /// `https://bucket.s3.REGION.amazonaws.com/key` (path-style on AWS too when the
    /// bucket name is no DNS label, e.g. has '.', '_' or capitals).
    pub fn object_url(&self, obj: &S3Object) -> Result<Url> {
        let key = obj.encoded_key();
        let text = match &self.endpoint {
            Some(e) => {
                let base = e.as_str().trim_end_matches('/');
                format!("{base}/{}/{key}", obj.bucket)
            }
            None if is_dns_label(&obj.bucket) => {
                format!(
                    "https://{}.s3.{}.amazonaws.com/{key}",
                    obj.bucket, self.region
                )
            }
            None => format!(
                "https://s3.{}.amazonaws.com/{}/{key}",
                self.region, obj.bucket
            ),
        };
        Url::parse(&text).map_err(|e| {
            Error::InvalidArgument(format!(
                "S3 {}: cannot form a request URL (region {:?}): {e}",
                obj.url(),
                self.region
            ))
        })
    }

    /// Where an object lives, for the cache's source description: its `s3://` URL and
    /// the store (`s3://b/k at http://127.0.0.1:9000`, `s3://b/k at AWS`). No secret,
    /// no signature.
    pub fn describe_source(&self, obj: &S3Object) -> String {
        match &self.endpoint {
            Some(e) => format!("{} at {}", obj.url(), e.as_str().trim_end_matches('/')),
            None => format!("{} at AWS", obj.url()),
        }
    }

    /// Signs a request without a body in its headers: adds `authorization`,
    /// `x-amz-date`, `x-amz-content-sha256` (and `x-amz-security-token`), signing
    /// `host` and every header already in `headers` (Range, the ETag pin, …: add them
    /// first). Returns false, changing nothing, when there are no credentials.
    pub fn sign_headers(
        &self,
        method: &str,
        url: &Url,
        headers: &mut HeaderMap,
        time: SystemTime,
    ) -> Result<bool> {
        self.sign_request(method, url, headers, S3Payload::Empty, time)
    }

    /// Like [`sign_headers`](Self::sign_headers), for a request with a body (a PUT
    /// of a published cache): `payload` says what `x-amz-content-sha256` declares.
    pub fn sign_request(
        &self,
        method: &str,
        url: &Url,
        headers: &mut HeaderMap,
        payload: S3Payload,
        time: SystemTime,
    ) -> Result<bool> {
        let Some(creds) = &self.credentials else {
            return Ok(false);
        };
        let signing_error = |e: &dyn std::error::Error| {
            Error::InvalidArgument(format!("cannot sign the S3 request for {url}: {e}"))
        };
        let mut pairs = Vec::with_capacity(headers.len());
        for (name, value) in headers.iter() {
            let value = value.to_str().map_err(|e| signing_error(&e))?;
            pairs.push((name.as_str(), value));
        }
        let body = match payload {
            S3Payload::Empty => SignableBody::Bytes(&[]),
            S3Payload::Unsigned => SignableBody::UnsignedPayload,
            S3Payload::Sha256(hex) => SignableBody::Precomputed(hex),
        };
        let request = SignableRequest::new(method, url.as_str(), pairs.into_iter(), body)
            .map_err(|e| signing_error(&e))?;
        let instructions = self
            .sign_with(
                creds,
                time,
                s3_settings(SignatureLocation::Headers, None),
                request,
            )
            .map_err(|e| signing_error(&*e))?;
        for (name, value) in instructions.headers() {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| signing_error(&e))?;
            let mut value = HeaderValue::from_str(value).map_err(|e| signing_error(&e))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(true)
    }

    /// A presigned GET URL valid for `expires_in` from `time` (a plain URL anyone can
    /// fetch until then). Errors when there are no credentials.
    pub fn presign_get(
        &self,
        obj: &S3Object,
        expires_in: Duration,
        time: SystemTime,
    ) -> Result<Url> {
        let Some(creds) = &self.credentials else {
            return Err(Error::InvalidArgument(format!(
                "cannot presign {}: {}",
                obj.url(),
                self.no_credentials
            )));
        };
        let mut url = self.object_url(obj)?;
        let signing_error = |e: &dyn std::error::Error| {
            Error::InvalidArgument(format!("cannot presign {}: {e}", obj.url()))
        };
        let request = SignableRequest::new(
            "GET",
            url.as_str(),
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| signing_error(&e))?;
        let instructions = self
            .sign_with(
                creds,
                time,
                s3_settings(SignatureLocation::QueryParams, Some(expires_in)),
                request,
            )
            .map_err(|e| signing_error(&*e))?;
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in instructions.params() {
                query.append_pair(name, value);
            }
        }
        Ok(url)
    }

    /// SigV4 for `request` with `creds` at `time`, the signature placed as `settings`
    /// say (headers, or query parameters for a presigned URL).
    fn sign_with(
        &self,
        creds: &S3Credentials,
        time: SystemTime,
        settings: SigningSettings,
        request: SignableRequest<'_>,
    ) -> std::result::Result<SigningInstructions, Box<dyn std::error::Error + Send + Sync>> {
        let identity = aws_credential_types::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            creds.session_token.clone(),
            None,
            "harmonics-dataset",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()?
            .into();
        let (instructions, _signature) = sign(request, &params)?.into_parts();
        Ok(instructions)
    }

    /// Why no credentials are used (empty when there are some).
    fn why_unsigned(&self) -> &str {
        &self.no_credentials
    }
}

fn s3_settings(location: SignatureLocation, expires_in: Option<Duration>) -> SigningSettings {
    let mut s = SigningSettings::default();
    // S3 wants the payload hash header, the path as sent (encoded once, not
    // normalised: a key may contain "//").
    s.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    s.percent_encoding_mode = PercentEncodingMode::Single;
    s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    s.signature_location = location;
    s.expires_in = expires_in;
    s
}

/// A bucket usable as a DNS label of a virtual-hosted (TLS wildcard) host name.
fn is_dns_label(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`: an http(s) URL with a host, and
/// perhaps a path prefix.
fn endpoint_from(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Url>> {
    let Some((name, value)) = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find_map(|n| var(n).map(|v| (n, v)))
    else {
        return Ok(None);
    };
    let bad = |why: String| Error::InvalidArgument(format!("{name}={value:?}: {why}"));
    let url = Url::parse(&value).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the endpoint must be an http:// or https:// URL".into()));
    }
    if url.host_str().map_or(true, str::is_empty) {
        return Err(bad("no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("an endpoint has no query, fragment or user name".into()));
    }
    Ok(Some(url))
}

/// Credentials from the environment, else from the shared credentials file; `Err`
/// says why there are none.
fn find_credentials(
    var: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<S3Credentials, String> {
    let mut notes = Vec::new();
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok(S3Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: var("AWS_SESSION_TOKEN"),
                origin: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            })
        }
        (Some(_), None) => {
            notes.push("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY".into())
        }
        (None, Some(_)) => {
            notes.push("AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID".into())
        }
        (None, None) => {
            notes.push("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".into())
        }
    }
    let explicit = var("AWS_PROFILE");
    let profile = explicit.clone().unwrap_or_else(|| "default".into());
    let file = match var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(f) => Some(expand_home(&f, var("HOME").as_deref())),
        None => var("HOME").map(|h| Path::new(&h).join(".aws").join("credentials")),
    };
    match file {
        None => notes.push("HOME is not set, so there is no ~/.aws/credentials".into()),
        Some(file) => match std::fs::read_to_string(&file) {
            Ok(text) => match profile_credentials(&text, &profile) {
                Ok(Some((id, secret, token))) => {
                    return Ok(S3Credentials {
                        access_key_id: id,
                        secret_access_key: secret,
                        session_token: token,
                        origin: format!("profile [{profile}] of {}", file.display()),
                    })
                }
                Ok(None) => notes.push(format!("{} has no [{profile}] profile", file.display())),
                Err(why) => notes.push(format!("profile [{profile}] of {}: {why}", file.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                notes.push(format!("{} does not exist", file.display()))
            }
            Err(e) => notes.push(format!("cannot read {}: {e}", file.display())),
        },
    }
    if explicit.is_some() {
        notes.push(format!("AWS_PROFILE={profile}"));
    }
    Err(format!("no S3 credentials: {}", notes.join("; ")))
}

fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => Path::new(h).join(rest),
        _ => PathBuf::from(path),
    }
}

type ProfileKeys = (String, String, Option<String>);

/// The keys of `[profile]` in a shared credentials file: `Ok(None)` when there is no
/// such section, `Err` when it lacks a key. The format: `[name]` sections (`[profile
/// name]` accepted too), `key = value` lines, `#`/`;` comment lines; indented lines
/// (nested settings of the config file) are not credentials and are skipped.
fn profile_credentials(
    text: &str,
    profile: &str,
) -> std::result::Result<Option<ProfileKeys>, String> {
    let mut in_section = false;
    let mut found = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let name = name.strip_prefix("profile ").map_or(name, str::trim);
            in_section = name == profile;
            found |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    if !found {
        return Ok(None);
    }
    match (
        id.filter(|v| !v.is_empty()),
        secret.filter(|v| !v.is_empty()),
    ) {
        (Some(id), Some(secret)) => Ok(Some((id, secret, token.filter(|v| !v.is_empty())))),
        (None, _) => Err("no aws_access_key_id".into()),
        (_, None) => Err("no aws_secret_access_key".into()),
    }
}

/// A warning printed once per process (the same message on every retry is noise).
fn warn_once(msg: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    if seen
        .lock()
        .map(|mut s| s.insert(msg.to_string()))
        .unwrap_or(true)
    {
        warn(msg);
    }
}

// ---- the hooks of the transport and the HTTP producers (URL checks, the signed send,
// source descriptions, redaction, refusals) ----

/// True for an `s3://` URL.
pub(crate) fn is_s3(url: &str) -> bool {
    url.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("s3://"))
}

/// Checks an `s3://` URL when a producer is made: the URL itself and the endpoint
/// setting (part of what the cache was built from). Reads no credentials: a valid
/// cache is used without them.
pub(crate) fn check(url: &str) -> Result<()> {
    S3Object::parse(url)?;
    endpoint_from(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))?;
    Ok(())
}

/// What the cache metadata records as the source of `url`: an `s3://` URL with its
/// store (see [`S3Config::describe_source`]); a presigned URL without its signing
/// parameters (the signature and session token are bearer secrets, and change with
/// every presigning of the same object); any other URL as it is.
pub(crate) fn source_description(url: &str) -> String {
    if !is_s3(url) {
        return without_presigning(url);
    }
    match (S3Object::parse(url), S3Config::from_env()) {
        (Ok(obj), Ok(cfg)) => cfg.describe_source(&obj),
        _ => url.to_string(),
    }
}

/// The query parameters of a SigV4 presigned URL.
const PRESIGN_PARAMS: &[&str] = &[
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-signedheaders",
    "x-amz-signature",
    "x-amz-security-token",
];

fn without_presigning(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return url.to_string();
    };
    let is_presign = |k: &str| PRESIGN_PARAMS.contains(&k.to_ascii_lowercase().as_str());
    if !parsed
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-amz-signature"))
    {
        return url.to_string();
    }
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| !is_presign(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    parsed.to_string()
}

/// `text` (a URL, a message quoting one) with the values of a presigned URL's
/// secrets, `X-Amz-Signature` and `X-Amz-Security-Token`, replaced by `REDACTED`.
pub(crate) fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    const SECRETS: &[&str] = &["x-amz-signature=", "x-amz-security-token="];
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` cut `text`.
    let lower = text.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for needle in SECRETS {
        let mut from = 0;
        while let Some(i) = lower[from..].find(needle) {
            let start = from + i + needle.len();
            let len = text[start..]
                .find(|c: char| "&# \t\r\n)\"'<>".contains(c))
                .unwrap_or(text.len() - start);
            cuts.push((start, start + len));
            from = start + len;
        }
    }
    if cuts.is_empty() {
        return text.into();
    }
    cuts.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in cuts {
        out.push_str(&text[at..start]);
        out.push_str("REDACTED");
        at = end;
    }
    out.push_str(&text[at..]);
    out.into()
}

/// Sends a request built for `url`. For an `s3://` URL the request goes to the
/// object's HTTP(S) URL, signed now with the headers it has (so call this for every
/// attempt); any other request is sent as it is.
pub(crate) trait SendSigned {
    fn send_signed(self, url: &str) -> reqwest::Result<Response>;
}

impl SendSigned for RequestBuilder {
    fn send_signed(self, url: &str) -> reqwest::Result<Response> {
        if !is_s3(url) {
            return self.send();
        }
        let (client, request) = self.build_split();
        let mut request = request?;
        if let Err(e) = prepare(url, &mut request) {
            // Settings that were valid when the producer was made went bad since
            // (the environment changed): the request fails at its s3:// URL.
            warn_once(&e.to_string());
        }
        client.execute(request)
    }
}

/// Points `request` at the object and signs it.
fn prepare(url: &str, request: &mut reqwest::blocking::Request) -> Result<()> {
    let obj = S3Object::parse(url)?;
    let cfg = S3Config::from_env()?;
    let target = cfg.object_url(&obj)?;
    let method = request.method().as_str().to_string();
    if !cfg.sign_headers(&method, &target, request.headers_mut(), SystemTime::now())? {
        warn_once(&format!(
            "{url}: {}; sending the request unsigned",
            cfg.why_unsigned()
        ));
    }
    *request.url_mut() = target;
    Ok(())
}

/// The largest error body read (S3's XML errors are a few hundred bytes).
const MAX_ERROR_BODY: u64 = 64 << 10;

/// Why the server refused `url` with `resp` (a non-2xx answer), for `Error::Http`.
/// For `s3://`: the bucket, the key, the S3 error code and message of the XML body,
/// and what to check; otherwise the status alone.
pub(crate) fn refusal(url: &str, resp: Response) -> String {
    refusal_of("GET", url, resp)
}

/// Like [`refusal`], for a request of `method` (the PUT of `cache_cli publish`).
pub(crate) fn refusal_of(method: &str, url: &str, resp: Response) -> String {
    let status = resp.status();
    let Ok(obj) = S3Object::parse(url) else {
        return format!("server answered HTTP {status}");
    };
    let mut body = Vec::new();
    let _ = resp.take(MAX_ERROR_BODY).read_to_end(&mut body);
    let d = describe_refusal(&obj, status, &body, S3Config::from_env().ok().as_ref());
    if method == "GET" {
        d
    } else {
        d.replacen("refused the GET of", &format!("refused the {method} of"), 1)
    }
}

/// The message of [`refusal`]; `cfg`: the settings the request was made with.
fn describe_refusal(
    obj: &S3Object,
    status: reqwest::StatusCode,
    body: &[u8],
    cfg: Option<&S3Config>,
) -> String {
    let (code, message) = parse_error_body(body);
    let mut d = match &code {
        Some(c) => format!("S3 refused the GET of {}: {c}", obj.describe()),
        None => format!("S3 refused the GET of {}", obj.describe()),
    };
    if let Some(m) = message.filter(|m| !m.is_empty()) {
        d.push_str(&format!(" ({m})"));
    }
    d.push_str(&format!(", HTTP {status}"));
    let creds = cfg.and_then(|c| c.credentials.as_ref());
    let hint = match code.as_deref() {
        Some("SignatureDoesNotMatch") => creds.map(|c| {
            format!(
                "the secret access key (from {}) does not match the access key id",
                c.origin
            )
        }),
        Some("InvalidAccessKeyId") | Some("NotSignedUp") => {
            creds.map(|c| format!("the server does not know the access key id of {}", c.origin))
        }
        Some("RequestTimeTooSkewed") => Some(
            "this machine's clock and the server's differ by more than the allowed 15 minutes"
                .into(),
        ),
        Some("ExpiredToken") | Some("InvalidToken") => {
            Some("the session token (AWS_SESSION_TOKEN or the profile's) is no longer valid".into())
        }
        Some("PermanentRedirect") | Some("AuthorizationHeaderMalformed") => Some(format!(
            "the bucket may be in another region than {:?} (AWS_REGION)",
            cfg.map_or(DEFAULT_REGION, |c| c.region.as_str())
        )),
        _ => None,
    };
    if let Some(h) = hint {
        d.push_str(&format!("; {h}"));
    }
    if let Some(c) = cfg.filter(|c| c.credentials.is_none()) {
        d.push_str(&format!("; the request was unsigned: {}", c.why_unsigned()));
    }
    d
}

/// `Code` and `Message` of an S3 XML error body (`<Error><Code>…</Code>…`). Nothing
/// else of it is kept: a SignatureDoesNotMatch body echoes the string to sign.
fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(text) = std::str::from_utf8(body) else {
        return (None, None);
    };
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return (None, None);
    };
    let root = doc.root_element();
    if !root.has_tag_name("Error") {
        return (None, None);
    }
    let child = |name: &str| {
        root.children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
    };
    (child("Code").filter(|c| !c.is_empty()), child("Message"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn s3_urls_name_a_bucket_and_a_literal_key() {
        let o = S3Object::parse("s3://my-bucket/dir/sub/train.cache").unwrap();
        assert_eq!((o.bucket(), o.key()), ("my-bucket", "dir/sub/train.cache"));
        assert_eq!(o.url(), "s3://my-bucket/dir/sub/train.cache");
        let o = S3Object::parse("S3://b_1.x/a b/c?d#e%20+ü").unwrap();
        assert_eq!(o.key(), "a b/c?d#e%20+ü");
        assert_eq!(o.encoded_key(), "a%20b/c%3Fd%23e%2520%2B%C3%BC");
        assert_eq!(
            S3Object::parse("s3://b/a//b~-_.x").unwrap().encoded_key(),
            "a//b~-_.x"
        );
        for bad in [
            "s3://",
            "s3://bucket",
            "s3://bucket/",
            "s3:///key",
            "s3://bu/ck/../x",
            "s3://b/./x",
            "s3://b c/x",
            "s3://b:1/x",
            "http://b/x",
            "s3:b/x",
        ] {
            let e = S3Object::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn an_endpoint_means_path_style_and_aws_is_virtual_hosted() {
        let o = S3Object::parse("s3://data/a b/x.cache").unwrap();
        let cfg =
            S3Config::from_lookup(&env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")])).unwrap();
        assert_eq!(cfg.region, "us-east-1");
        assert_eq!(
            cfg.object_url(&o).unwrap().as_str(),
            "http://127.0.0.1:9000/data/a%20b/x.cache"
        );
        assert_eq!(
            cfg.describe_source(&o),
            "s3://data/a b/x.cache at http://127.0.0.1:9000"
        );
        // The S3-specific variable wins; a path prefix is kept.
        let cfg = S3Config::from_lookup(&env(&[
            ("AWS_ENDPOINT_URL", "http://other:1"),
            ("AWS_ENDPOINT_URL_S3", "https://store.example/s3/"),
        ]))
        .unwrap();
        assert_eq!(
            cfg.object_url(&o).unwrap().as_str(),
            "https://store.example/s3/data/a%20b/x.cache"
        );
        let cfg = S3Config::from_lookup(&env(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", ""),
        ]))
        .unwrap();
        assert_eq!(
            cfg.object_url(&o).unwrap().as_str(),
            "https://data.s3.eu-west-1.amazonaws.com/a%20b/x.cache"
        );
        assert_eq!(cfg.describe_source(&o), "s3://data/a b/x.cache at AWS");
        let cfg = S3Config::from_lookup(&env(&[
            ("AWS_REGION", "ap-south-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]))
        .unwrap();
        let dotted = S3Object::parse("s3://my.data/k").unwrap();
        assert_eq!(
            cfg.object_url(&dotted).unwrap().as_str(),
            "https://s3.ap-south-1.amazonaws.com/my.data/k"
        );
        for bad in ["ftp://h/", "not a url", "http://h/?q=1", "http://user@h/"] {
            let e = S3Config::from_lookup(&env(&[("AWS_ENDPOINT_URL", bad)])).unwrap_err();
            assert!(e.to_string().contains("AWS_ENDPOINT_URL="), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_come_from_the_environment_first_then_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "# comment\n[default]\naws_access_key_id = FILEKEY\naws_secret_access_key=filesecret\n\
             \n[profile team]\n AWS_ACCESS_KEY_ID = TEAMKEY\naws_access_key_id=TEAMKEY\n\
             aws_secret_access_key = teamsecret\naws_session_token = teamtoken\n; more\n\
             [broken]\naws_access_key_id = X\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        // The credentials found with these variables set (and the key, secret, token).
        let found = |pairs: &[(&str, &str)]| {
            S3Config::from_lookup(&env(pairs))
                .unwrap()
                .credentials
                .unwrap()
        };
        let parts = |c: &S3Credentials| {
            (
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                c.session_token.clone(),
            )
        };
        let c = found(&[
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
            ("AWS_SHARED_CREDENTIALS_FILE", f),
        ]);
        assert_eq!(
            c,
            S3Credentials {
                access_key_id: "ENVKEY".into(),
                secret_access_key: "envsecret".into(),
                session_token: Some("envtoken".into()),
                origin: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            }
        );
        let c = found(&[("AWS_SHARED_CREDENTIALS_FILE", f)]);
        assert_eq!(parts(&c), ("FILEKEY".into(), "filesecret".into(), None));
        assert_eq!(c.origin(), format!("profile [default] of {f}"));
        let c = found(&[
            ("AWS_SHARED_CREDENTIALS_FILE", f),
            ("AWS_PROFILE", "team"),
            ("AWS_ACCESS_KEY_ID", "only-the-id"),
        ]);
        assert_eq!(
            parts(&c),
            (
                "TEAMKEY".into(),
                "teamsecret".into(),
                Some("teamtoken".into())
            )
        );
        // ~/.aws/credentials through HOME.
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::copy(&file, dir.path().join(".aws/credentials")).unwrap();
        let home = dir.path().to_str().unwrap();
        assert_eq!(found(&[("HOME", home)]).access_key_id(), "FILEKEY");
        let c = S3Config::from_lookup(&env(&[
            ("HOME", home),
            ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        ]))
        .unwrap();
        assert_eq!(c.credentials.unwrap().access_key_id(), "FILEKEY");

        // No credentials: each reason is told.
        let why = |pairs: &[(&str, &str)]| {
            let c = S3Config::from_lookup(&env(pairs)).unwrap();
            assert!(c.credentials.is_none());
            c.why_unsigned().to_string()
        };
        let w = why(&[("AWS_SHARED_CREDENTIALS_FILE", f), ("AWS_PROFILE", "nope")]);
        assert!(
            w.contains(&format!("{f} has no [nope] profile")) && w.contains("AWS_PROFILE=nope"),
            "{w}"
        );
        let w = why(&[
            ("AWS_SHARED_CREDENTIALS_FILE", f),
            ("AWS_PROFILE", "broken"),
        ]);
        assert!(
            w.contains("profile [broken]") && w.contains("no aws_secret_access_key"),
            "{w}"
        );
        let w = why(&[("AWS_SECRET_ACCESS_KEY", "s"), ("HOME", "/nonexistent")]);
        assert!(
            w.contains("AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID"),
            "{w}"
        );
        assert!(
            w.contains("/nonexistent/.aws/credentials does not exist"),
            "{w}"
        );
        assert!(!w.contains("\"s\""), "{w}");
        let w = why(&[]);
        assert!(w.contains("HOME is not set"), "{w}");
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let cfg = S3Config::new(
            "us-east-1",
            None,
            Some(S3Credentials::new(
                "AKID",
                "very-secret",
                Some("tok-secret".into()),
            )),
        );
        let d = format!("{cfg:?}");
        assert!(d.contains("AKID") && d.contains("<redacted>"), "{d}");
        assert!(
            !d.contains("very-secret") && !d.contains("tok-secret"),
            "{d}"
        );
    }

    #[test]
    fn signing_adds_the_sigv4_headers_and_signs_range_and_if_match() {
        let cfg = S3Config::new(
            "us-east-1",
            Some(Url::parse("http://127.0.0.1:9000").unwrap()),
            Some(S3Credentials::new("AKID", "secret", Some("token".into()))),
        );
        let url = cfg
            .object_url(&S3Object::parse("s3://b/k").unwrap())
            .unwrap();
        let mut h = HeaderMap::new();
        h.insert("range", HeaderValue::from_static("bytes=10-"));
        h.insert("if-match", HeaderValue::from_static("\"abc\""));
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(cfg.sign_headers("GET", &url, &mut h, t).unwrap());
        let auth = h["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/20231114/us-east-1/s3/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=host;if-match;range;x-amz-content-sha256;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert_eq!(h["x-amz-date"], "20231114T221320Z");
        assert_eq!(h["x-amz-security-token"], "token");
        assert!(h["x-amz-security-token"].is_sensitive());
        // Without credentials nothing is added.
        let anon = S3Config::new("us-east-1", None, None);
        let mut h = HeaderMap::new();
        assert!(!anon.sign_headers("GET", &url, &mut h, t).unwrap());
        assert!(h.is_empty());
    }

    #[test]
    fn signatures_match_the_aws_documentation_example() {
        // "GET Object" of the S3 API reference's Signature V4 header examples.
        let cfg = S3Config::new(
            "us-east-1",
            None,
            Some(S3Credentials::new(
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                None,
            )),
        );
        let url = Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").unwrap();
        let mut h = HeaderMap::new();
        h.insert("range", HeaderValue::from_static("bytes=0-9"));
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        cfg.sign_headers("GET", &url, &mut h, t).unwrap();
        assert_eq!(
            h["authorization"].to_str().unwrap(),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn refusals_name_bucket_key_code_and_what_to_check() {
        let obj = S3Object::parse("s3://data/dir/x.bin").unwrap();
        let xml = |code: &str, msg: &str| {
            format!(
                "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{msg}</Message></Error>"
            )
        };
        let signed = S3Config::new(
            "eu-west-1",
            None,
            Some(S3Credentials::new("AK", "SK", None)),
        );
        // A refusal of a signed GET, with S3's error body.
        let refused = |status, code: &str, msg: &str| {
            describe_refusal(&obj, status, xml(code, msg).as_bytes(), Some(&signed))
        };
        let d = refused(
            reqwest::StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference is too large.",
        );
        assert_eq!(
            d,
            "S3 refused the GET of bucket \"data\", key \"dir/x.bin\": RequestTimeTooSkewed \
             (The difference is too large.), HTTP 403 Forbidden; this machine's clock and the \
             server's differ by more than the allowed 15 minutes"
        );
        let d = refused(
            reqwest::StatusCode::MOVED_PERMANENTLY,
            "PermanentRedirect",
            "",
        );
        assert!(
            d.ends_with("another region than \"eu-west-1\" (AWS_REGION)"),
            "{d}"
        );
        let d = refused(reqwest::StatusCode::FORBIDDEN, "SignatureDoesNotMatch", "x");
        assert!(
            d.contains("the secret access key (from the credentials given) does not match"),
            "{d}"
        );
        assert!(!d.contains("SK"), "{d}");
        let anon = S3Config::from_lookup(&env(&[("HOME", "/nonexistent")])).unwrap();
        let d = describe_refusal(&obj, reqwest::StatusCode::FORBIDDEN, b"", Some(&anon));
        assert!(
            d.starts_with("S3 refused the GET of bucket \"data\", key \"dir/x.bin\", HTTP 403 Forbidden; the request was unsigned: no S3 credentials"),
            "{d}"
        );
    }

    #[test]
    fn presigned_secrets_are_redacted_and_left_out_of_the_source() {
        let url = "https://h.example/b/k.bin?versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256\
                   &X-Amz-Credential=AK%2F20250101%2Fus-east-1%2Fs3%2Faws4_request\
                   &X-Amz-Date=20250101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host\
                   &X-Amz-Security-Token=tok%2Bsecret&X-Amz-Signature=abc123";
        assert_eq!(
            source_description(url),
            "https://h.example/b/k.bin?versionId=3"
        );
        let plain = "https://h.example/b/k.bin?x=1";
        assert_eq!(source_description(plain), plain);
        assert_eq!(
            source_description("http://h/k?X-Amz-Signature=1&X-Amz-Date=2"),
            "http://h/k"
        );
        let msg = format!("error sending request for url ({url}): refused");
        let r = redact(&msg);
        assert!(!r.contains("abc123") && !r.contains("tok%2Bsecret"), "{r}");
        assert!(
            r.contains("X-Amz-Signature=REDACTED") && r.ends_with("): refused"),
            "{r}"
        );
        assert!(
            r.contains("X-Amz-Credential=AK%2F"),
            "the key id is no secret: {r}"
        );
        assert_eq!(redact("x-amz-signature=zz"), "x-amz-signature=REDACTED");
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn a_request_with_a_body_declares_its_payload_hash() {
        let cfg = S3Config::new(
            "us-east-1",
            None,
            Some(S3Credentials::new("AK", "SK", None)),
        );
        let url = Url::parse("https://b.s3.us-east-1.amazonaws.com/k").unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let hex = "a".repeat(64);
        for (payload, declared) in [
            (S3Payload::Sha256(hex.clone()), hex.as_str()),
            (S3Payload::Unsigned, "UNSIGNED-PAYLOAD"),
            (
                S3Payload::Empty,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ] {
            let mut h = HeaderMap::new();
            assert!(cfg.sign_request("PUT", &url, &mut h, payload, t).unwrap());
            assert_eq!(h["x-amz-content-sha256"], declared);
        }
    }

    #[test]
    fn s3_error_bodies_give_their_code_and_message_only() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign></Error>"#;
        assert_eq!(
            parse_error_body(body),
            (
                Some("SignatureDoesNotMatch".into()),
                Some("The request signature we calculated does not match".into())
            )
        );
        assert_eq!(parse_error_body(b"<html>oops</html>"), (None, None));
        assert_eq!(parse_error_body(b"not xml"), (None, None));
        assert_eq!(parse_error_body(&[0xff, 0xfe]), (None, None));
    }
}
