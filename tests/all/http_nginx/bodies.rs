//! Bodies as nginx sends them: gzip-encoded chunked responses decode to the exact
//! records; a published cache file is accepted by URL and a damaged one refused.

use super::*;

#[test]
fn gzip_chunked_response_from_nginx_decodes_to_the_exact_records() {
    let server = Nginx::start();
    let records = dataset(300, 7);
    let body = wire_body(&records);
    server.publish("data.bin", &body);
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");

    let mut p = open(proxy.port(), "/data.bin", options(&cache));
    assert_records(&epoch(&mut p), &records, "gzip download");

    let ex = proxy.exchanges();
    assert_eq!(ex.len(), 1, "{ex:#?}");
    let ex = &ex[0];
    let accept = ex.request_header("accept-encoding").unwrap_or("");
    assert!(accept.contains("gzip"), "request advertised {accept:?}");
    assert_eq!(ex.response_header("content-encoding"), Some("gzip"));
    assert_eq!(ex.response_header("transfer-encoding"), Some("chunked"));
    assert_eq!(ex.response_header("content-length"), None);
    assert!(ex.complete, "the chunked body ended with its last chunk");
    assert!(
        ex.body_bytes < body.len() as u64,
        "{} bytes on the wire for a {} byte body",
        ex.body_bytes,
        body.len()
    );

    let log = server.wait_log("the download", |l| l.len() == 1);
    let ratio = log[0]
        .gzip_ratio
        .as_deref()
        .expect("nginx compressed ($gzip_ratio)");
    let ratio: f64 = ratio.parse().unwrap();
    assert!(ratio > 1.0, "gzip ratio {ratio}");
    println!(
        "gzip: {} bytes of records sent as {} bytes (nginx ratio {ratio})",
        body.len(),
        ex.body_bytes
    );
}

// Published cache files.

#[test]
fn published_cache_file_served_by_nginx_is_accepted_by_url() {
    let server = Nginx::start();
    let records = dataset(80, 8);
    let file = published_cache(&records);
    assert_eq!(&file[..MAGIC.len()], MAGIC);
    server.publish("shared.cache", &file);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("local.cache");
    let url = server.url("/shared.cache");

    let mut p = HttpProducer::from_url(&url, options(&cache)).unwrap();
    assert_eq!(p.url(), url);
    assert!(matches!(p.outcome(), CacheOutcome::Created));
    assert_records(&epoch(&mut p), &records, "published cache by URL");
    drop(p);
    // Revalidating it against the unchanged file is a 304, like any other body.
    let mut p = HttpProducer::from_url(&url, revalidating(&cache)).unwrap();
    assert!(matches!(p.outcome(), CacheOutcome::Revalidated));
    assert_records(&epoch(&mut p), &records, "published cache after 304");
    drop(p);

    // Offline afterwards, like any other download.
    let port = server.port();
    drop(server);
    let mut again = HttpProducer::new(
        "127.0.0.1",
        port,
        "/shared.cache",
        true,
        cache.to_str().unwrap(),
    )
    .unwrap();
    assert!(matches!(again.outcome(), CacheOutcome::Reused));
    assert_records(&epoch(&mut again), &records, "published cache, offline");
}

#[test]
fn published_cache_file_with_a_flipped_data_byte_is_rejected_and_leaves_no_cache() {
    let server = Nginx::start();
    let records = dataset(80, 9);
    let clean = published_cache(&records);
    let cache_dir = tempfile::tempdir().unwrap();
    let url = server.url("/shared.cache");

    // The intact file is accepted (so the rejection below is about the flip).
    server.publish("shared.cache", &clean);
    let intact = cache_dir.path().join("intact.cache");
    let mut p = HttpProducer::from_url(&url, options(&intact)).unwrap();
    assert_records(&epoch(&mut p), &records, "intact published cache");
    drop(p);

    // The file ends with the last record's data: flip its last byte, and check
    // that the flip is one the cache format detects when read locally.
    let mut file = clean;
    *file.last_mut().unwrap() ^= 0x40;
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("flipped.cache"), &file).unwrap();
    let mut reader = CacheReader::open(local.path().join("flipped.cache")).unwrap();
    assert_eq!(reader.data_start() + reader.data_len(), file.len() as u64);
    assert!(
        reader.verify(|_, _| {}).is_err(),
        "the flip is in CRC-checked data"
    );
    server.publish("shared.cache", &file);

    let rejected_dir = tempfile::tempdir().unwrap();
    let cache = rejected_dir.path().join("local.cache");
    let err = match HttpProducer::from_url(&url, options(&cache)) {
        Ok(mut p) => panic!(
            "a corrupted cache file was accepted ({} records)",
            p.size().unwrap_or(0)
        ),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&url), "the error names the URL: {err}");
    assert!(!cache.exists(), "a rejected download left a cache file");
    assert_eq!(leftovers(rejected_dir.path()), Vec::<PathBuf>::new());
    println!("flipped byte: {err}");
}
