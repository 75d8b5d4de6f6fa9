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

mod credentials;
mod error_xml;
mod sign;
mod url;

pub use credentials::S3Credentials;
pub use sign::S3Payload;
pub use url::S3Object;

// The hooks of the transport and the HTTP producers (URL checks, the signed send,
// source descriptions, refusals).
pub(crate) use error_xml::{refusal, refusal_of};
pub(crate) use sign::SendSigned;
pub(crate) use url::{check, is_s3, source_description};

/// Redaction lives in a leaf module (the error type uses it too); kept here under its
/// old path for the transport and the producers.
pub(crate) use crate::redact::redact;

use reqwest::Url;

use crate::error::{Error, Result};
use credentials::find_credentials;
use url::{endpoint_from, is_dns_label};

const DEFAULT_REGION: &str = "us-east-1";

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

    /// Why no credentials are used (empty when there are some).
    fn why_unsigned(&self) -> &str {
        &self.no_credentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(in crate::http::s3) fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
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
}
