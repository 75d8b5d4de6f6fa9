//! Signing beyond one GET: a cut connection resumes with a freshly signed Range,
//! parallel ranges are signed and pinned to the ETag, revalidation is signed,
//! presigned URLs work (an expired one is refused), a skewed clock is refused.

use super::*;

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
    let ranged: Vec<_> = ex.iter().filter(|e| e.range().is_some()).collect();
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
    let (a, b) = ex[1].range().unwrap();
    assert!(ex[1].cut, "{:#?}", ex[1]);
    assert_eq!(
        ranged
            .iter()
            .filter(|e| e.range() == Some((a + 10_000, b)))
            .count(),
        1,
        "{ex:#?}"
    );
    assert_eq!(ex.iter().filter(|e| e.range().is_none()).count(), 1);
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
    assert_eq!(
        p.outcome(),
        CacheOutcome::Rebuilt("revalidation: the server has another version".into())
    );
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
    assert_eq!(p.outcome(), CacheOutcome::Created);
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
