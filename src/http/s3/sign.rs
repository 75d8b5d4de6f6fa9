//! Signing: the SigV4 methods of [`S3Config`] (headers, presigned URLs) and the signed
//! send of the transport (`SendSigned`), which points an `s3://` request at its object
//! and signs every attempt anew.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningInstructions, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;

use super::{is_s3, S3Config, S3Credentials, S3Object};
use crate::error::{Error, Result};
use crate::log::warn;

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

impl S3Config {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
