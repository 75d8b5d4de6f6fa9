//! Redaction of bearer secrets in text shown to users: a presigned URL's
//! `X-Amz-Signature` and `X-Amz-Security-Token`. A leaf module: the error type
//! (`crate::error`) and the transport (`crate::http::s3`) both use it.

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

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn presigned_secrets_are_replaced_and_the_rest_is_kept() {
        let url = "https://h.example/b/k.bin?versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256\
                   &X-Amz-Credential=AK%2F20250101%2Fus-east-1%2Fs3%2Faws4_request\
                   &X-Amz-Security-Token=tok%2Bsecret&X-Amz-Signature=abc123";
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
        let plain = "https://h.example/b/k.bin?x=1";
        assert_eq!(redact(plain), plain);
    }
}
