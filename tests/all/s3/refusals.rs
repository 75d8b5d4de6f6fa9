//! Refusals naming the bucket, the key and the S3 error code, leaving no cache: a
//! wrong secret, an unknown access key, a missing key, an unsigned request, a
//! malformed endpoint.

use super::*;

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
