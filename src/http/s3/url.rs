//! The rules of S3 URLs: an `s3://bucket/key` URL and its object ([`S3Object`]), the
//! endpoint setting, virtual-hosted or path-style addressing, and what the cache
//! metadata records as a URL's source (a presigned URL without its secrets).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;

use super::S3Config;
use crate::error::{Error, Result};

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
    pub(super) bucket: String,
    pub(super) key: String,
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
    pub(super) fn encoded_key(&self) -> String {
        utf8_percent_encode(&self.key, KEY_ENCODE).to_string()
    }

    /// `bucket "B", key "K"` for messages.
    pub(super) fn describe(&self) -> String {
        format!("bucket {:?}, key {:?}", self.bucket, self.key)
    }
}

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

/// A bucket usable as a DNS label of a virtual-hosted (TLS wildcard) host name.
pub(super) fn is_dns_label(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`: an http(s) URL with a host, and
/// perhaps a path prefix.
pub(super) fn endpoint_from(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Url>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn presigned_secrets_are_left_out_of_the_source() {
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
    }
}
