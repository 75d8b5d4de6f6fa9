//! Refusals: why S3 (or any server) refused a request, for `Error::Http`: the bucket,
//! the key, the code and message of S3's XML error body (nothing else of it: a
//! SignatureDoesNotMatch body echoes the string to sign), and what to check.

use std::io::Read;

use reqwest::blocking::Response;

use super::{S3Config, S3Object, DEFAULT_REGION};

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
    use super::super::tests::env;
    use super::super::S3Credentials;
    use super::*;

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
