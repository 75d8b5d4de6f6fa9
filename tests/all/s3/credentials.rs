//! Good credentials: download, cache and reopen with the server stopped, through
//! HttpProducer, AsyncHttpProducer and the C ABI; credentials from a profile of the
//! shared credentials file.

use super::*;

#[test]
fn good_credentials_download_cache_and_reopen_with_the_server_stopped() {
    let Some(mut server) = S3Server::start() else {
        return;
    };
    let want = records(40, 1);
    server.put(BUCKET, KEY, &wire_body(&want));
    let _env = Env::for_server(&server, &[("AWS_SESSION_TOKEN", SESSION_TOKEN)]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("train.cache");

    let mut p = HttpProducer::from_url(&s3_url(KEY), options(&cache)).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Created);
    assert_eq!(p.url(), s3_url(KEY));
    assert_eq!(epoch(&mut p), want);
    drop(p);

    // The cache records where the data came from (the s3:// URL and the store), never
    // a signature, the secret or the session token.
    let bytes = std::fs::read(&cache).unwrap();
    assert!(
        contains(&bytes, &s3_url(KEY)),
        "the cache names the s3:// URL"
    );
    assert!(
        contains(&bytes, &server.endpoint()),
        "the cache names the endpoint"
    );
    assert_no_secret(&bytes, "the cache file");
    let debug = format!("{:?}", S3Config::from_env().unwrap());
    assert!(
        !debug.contains(SECRET_KEY) && !debug.contains(SESSION_TOKEN),
        "{debug}"
    );

    server.stop();
    let mut p = HttpProducer::from_url(&s3_url(KEY), options(&cache)).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    assert_eq!(epoch(&mut p), want);
}

#[test]
fn async_producer_and_the_c_abi_accept_s3_urls() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let want = records(25, 2);
    server.put(BUCKET, "a.bin", &wire_body(&want));
    server.put(BUCKET, "c.bin", &wire_body(&want[..7]));
    let _env = Env::for_server(&server, &[]);
    let dir = tempfile::tempdir().unwrap();

    let mut p = AsyncHttpProducer::from_url(&s3_url("a.bin"), options(&dir.path().join("a.cache")))
        .unwrap();
    assert_eq!(epoch(&mut p), want);

    use harmonics_dataset::ffi::error::harmonics_last_error_message;
    use harmonics_dataset::ffi::http::{
        harmonics_http_options_default, harmonics_http_producer_from_url,
    };
    use harmonics_dataset::ffi::producer::{harmonics_producer_free, harmonics_producer_size};
    use harmonics_dataset::ffi::{HarmonicsHttpOptions, HarmonicsStatus};
    let cache = CString::new(dir.path().join("c.cache").to_str().unwrap()).unwrap();
    unsafe {
        let mut opts: HarmonicsHttpOptions = harmonics_http_options_default();
        opts.cache_path = cache.as_ptr();
        let url = CString::new(s3_url("c.bin")).unwrap();
        let mut p = std::ptr::null_mut();
        let status = harmonics_http_producer_from_url(url.as_ptr(), &opts, &mut p);
        let msg = CStr::from_ptr(harmonics_last_error_message()).to_string_lossy();
        assert_eq!(status, HarmonicsStatus::Ok, "{msg}");
        let mut n = 0usize;
        assert_eq!(harmonics_producer_size(p, &mut n), HarmonicsStatus::Ok);
        assert_eq!(n, 7);
        harmonics_producer_free(p);

        let url = CString::new(s3_url("absent.bin")).unwrap();
        let absent = CString::new(dir.path().join("absent.cache").to_str().unwrap()).unwrap();
        opts.cache_path = absent.as_ptr();
        let mut p = std::ptr::null_mut();
        let status = harmonics_http_producer_from_url(url.as_ptr(), &opts, &mut p);
        assert_ne!(status, HarmonicsStatus::Ok);
        assert!(p.is_null());
        let msg = CStr::from_ptr(harmonics_last_error_message()).to_string_lossy();
        assert!(
            msg.contains("NoSuchKey") && msg.contains("absent.bin"),
            "{msg}"
        );
    }
}

#[test]
fn credentials_come_from_a_profile_of_the_shared_credentials_file() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let want = records(10, 3);
    server.put(BUCKET, "p.bin", &wire_body(&want));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = NOTTHISONE\naws_secret_access_key = nope\n\n\
             [ml-team]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    let endpoint = server.endpoint();
    let _env = Env::set(&[
        ("AWS_ENDPOINT_URL_S3", &endpoint),
        ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
        ("AWS_PROFILE", "ml-team"),
        ("AWS_REGION", REGION),
    ]);
    let mut p =
        HttpProducer::from_url(&s3_url("p.bin"), options(&dir.path().join("p.cache"))).unwrap();
    assert_eq!(epoch(&mut p), want);
}
