//! Resume after a dropped connection: with `Range` from where it stopped (also for
//! gzip, as an identity range), from zero where ranges are missing or ignored or
//! the file changed in between.

use super::*;

/// A download whose first response the proxy cut after 40% of the body: what was
/// served, what was read, and the proxy and server to question afterwards.
struct Resumed {
    records: Vec<Tensor>,
    body_len: u64,
    cut: u64,
    proxy: FaultProxy,
    server: Nginx,
    got: Vec<Tensor>,
    _cache_dir: tempfile::TempDir,
    cache: PathBuf,
}

fn download_through_a_cut(path: &str, faults_extra: Faults, use_async: bool) -> Resumed {
    let server = Nginx::start();
    let records = dataset(400, 2);
    let body = wire_body(&records);
    server.publish("data.bin", &body);
    let body_len = body.len() as u64;
    let cut = body_len * 2 / 5;
    let mut faults = faults_extra;
    faults.cut = vec![(0, cut)];
    let proxy = FaultProxy::start(server.port(), faults);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");
    let got = if use_async {
        let mut p = open_async(proxy.port(), path, options(&cache));
        epoch(&mut p)
    } else {
        let mut p = open(proxy.port(), path, options(&cache));
        assert!(matches!(p.outcome(), CacheOutcome::Created));
        epoch(&mut p)
    };
    Resumed {
        records,
        body_len,
        cut,
        proxy,
        server,
        got,
        _cache_dir: cache_dir,
        cache,
    }
}

/// The checks shared by the blocking and async resume tests.
fn assert_resumed_with_range(r: &Resumed, path: &str) {
    assert_records(&r.got, &r.records, "records after a resumed download");
    let ex = r.proxy.exchanges();
    assert_eq!(ex.len(), 2, "one cut request and one resume: {ex:#?}");
    assert!(ex[0].cut, "the proxy cut the first response");
    assert_eq!(ex[0].body_bytes, r.cut);
    assert_eq!(
        ex[0].range_start(),
        None,
        "the first request asks for everything"
    );
    let accept_ranges = ex[0].response_header("accept-ranges");
    assert_eq!(
        accept_ranges,
        Some("bytes"),
        "nginx offers ranges on {path}"
    );

    let start = ex[1]
        .range_start()
        .unwrap_or_else(|| panic!("the retry did not ask for a Range: {:#?}", ex[1]));
    // Resuming at the last complete record is acceptable; starting over is not.
    let largest_record = r.records.iter().map(|t| t.data.len() + 64).max().unwrap() as u64;
    assert!(
        start > 0 && start <= r.cut && r.cut - start <= largest_record,
        "resumed at byte {start}, the cut was at {}",
        r.cut
    );
    let validator = ex[1]
        .request_header("if-range")
        .unwrap_or_else(|| panic!("the resume carries no If-Range: {:#?}", ex[1]));
    let etag = ex[0].response_header("etag");
    let last_modified = ex[0].response_header("last-modified");
    assert!(
        Some(validator) == etag || Some(validator) == last_modified,
        "If-Range {validator:?} is neither the ETag {etag:?} nor Last-Modified {last_modified:?}"
    );
    assert_eq!(
        ex[1].status, 206,
        "nginx answered the Range with a partial body"
    );
    assert_eq!(ex[1].body_bytes, r.body_len - start);
    assert_eq!(
        ex[1].response_header("content-range"),
        Some(format!("bytes {start}-{}/{}", r.body_len - 1, r.body_len).as_str())
    );

    // nginx's own record of it.
    let log = r
        .server
        .wait_log("the 206", |l| l.iter().any(|x| x.status == 206));
    let partial: Vec<_> = log.iter().filter(|l| l.status == 206).collect();
    assert_eq!(partial.len(), 1, "{log:#?}");
    assert_eq!(partial[0].range_start(), Some(start));
    assert_eq!(partial[0].body_bytes_sent, r.body_len - start);
    assert!(r.cache.is_file());
    println!(
        "body {} bytes, cut at {}, resumed from {start}, {} bytes re-sent",
        r.body_len,
        r.cut,
        r.body_len - start
    );
}

#[test]
fn dropped_connection_resumes_with_range_from_where_it_stopped() {
    let path = "/identity/data.bin";
    let r = download_through_a_cut(path, Faults::none(), false);
    assert_resumed_with_range(&r, path);
}

#[test]
fn async_producer_resumes_with_range_after_a_dropped_connection() {
    let path = "/identity/data.bin";
    let r = download_through_a_cut(path, Faults::none(), true);
    assert_resumed_with_range(&r, path);
}

/// After a cut on a location without ranges: the download started over from byte 0
/// and the records are exact (nothing appended twice). The resume with Range is
/// answered 200 with the whole body, and that body is the restart: decoded from byte
/// 0, not dropped and asked for again. Returns the exchanges.
fn assert_restarted_from_zero(r: &Resumed) -> Vec<fault_proxy::Exchange> {
    assert_records(&r.got, &r.records, "records after a restarted download");
    let ex = r.proxy.exchanges();
    assert!(ex[0].cut, "{ex:#?}");
    assert!(
        ex.iter().all(|e| e.status == 200),
        "nginx never sends a partial body here: {ex:#?}"
    );
    let last = ex.last().unwrap();
    assert!(last.complete && !last.cut);
    assert_eq!(
        last.body_bytes, r.body_len,
        "the final response is the whole body"
    );
    assert_eq!(
        ex.len(),
        2,
        "the 200 answering the resume was not used: {ex:#?}"
    );
    println!(
        "restart: {} requests: {:?}",
        ex.len(),
        ex.iter()
            .map(|e| (
                e.request_header("range").map(str::to_string),
                e.status,
                e.body_bytes
            ))
            .collect::<Vec<_>>()
    );
    ex
}

#[test]
fn server_without_range_support_restarts_from_zero_and_records_are_exact() {
    // nginx with `max_ranges 0`: no Accept-Ranges, and Range headers are ignored.
    let r = download_through_a_cut("/noranges/data.bin", Faults::none(), false);
    let ex = assert_restarted_from_zero(&r);
    assert_eq!(ex[0].response_header("accept-ranges"), None);
}

#[test]
fn server_claiming_ranges_but_ignoring_them_restarts_from_zero_without_duplicates() {
    // The proxy adds `Accept-Ranges: bytes` in front of a `max_ranges 0` location:
    // the client resumes with Range, gets a 200 with the whole body, and must
    // start over rather than append it after the bytes it already has.
    let lie = Faults {
        add_response_headers: vec![("Accept-Ranges".into(), "bytes".into())],
        ..Faults::none()
    };
    let r = download_through_a_cut("/noranges/data.bin", lie, false);
    let ex = assert_restarted_from_zero(&r);
    assert!(
        ex[1].range_start().is_some_and(|s| s > 0) && ex[1].status == 200,
        "the client resumed with a Range that nginx ignored: {:#?}",
        ex[1]
    );
}

#[test]
fn gzip_response_cut_mid_body_resumes_with_an_identity_range() {
    // nginx gzips `/data.bin` (chunked, weak ETag, no ranges on the gzipped form).
    // After a cut the client can still resume: a Range request carries no
    // Accept-Encoding, so nginx serves the identity bytes from the decoded offset.
    let server = Nginx::start();
    let records = dataset(400, 11);
    let body = wire_body(&records);
    // An mtime in the past: the gzipped form has a weak ETag, so the resume relies on
    // Last-Modified, which is strong only once a second older than the Date.
    server.publish_with_mtime("data.bin", &body, past(60));
    let proxy = FaultProxy::start(server.port(), Faults::cut_first_response_after(50_000));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");

    let mut p = open(proxy.port(), "/data.bin", options(&cache));
    assert_records(&epoch(&mut p), &records, "gzip download resumed");

    let ex = proxy.exchanges();
    assert_eq!(ex[0].response_header("content-encoding"), Some("gzip"));
    assert!(ex[0].cut && ex[0].body_bytes == 50_000, "{:#?}", ex[0]);
    let resume = &ex[1];
    assert!(resume.range_start().is_some(), "{resume:#?}");
    let encoding = resume.request_header("accept-encoding");
    assert!(
        !encoding.is_some_and(|e| e.contains("gzip")),
        "the Range request advertised Accept-Encoding {encoding:?}: nginx then answers \
         200 with the whole gzipped body (it has no ranges of a gzipped response), so \
         the download restarts from zero; a resume must ask for the identity \
         encoding. Exchanges: {:?}",
        ex.iter()
            .map(|e| (e.request_header("range"), e.status, e.body_bytes))
            .collect::<Vec<_>>()
    );
    let resumed: Vec<_> = ex.iter().filter(|e| e.status == 206).collect();
    assert_eq!(resumed.len(), 1, "{ex:#?}");
    let start = resumed[0].range_start().expect("Range on the resume");
    assert!(start > 0, "resumed from {start}");
    assert_eq!(resumed[0].response_header("content-encoding"), None);
    assert_eq!(resumed[0].body_bytes, body.len() as u64 - start);
    assert_eq!(ex.len(), 2, "{ex:#?}");
    println!(
        "gzip cut after 50000 compressed bytes; resumed at decoded byte {start} of {}",
        body.len()
    );
}

#[test]
fn file_replaced_between_cut_and_resume_is_downloaded_anew_not_spliced() {
    // While the client is cut off, the file on the server is replaced (same length,
    // new mtime). A resume guarded by If-Range gets the whole new file (200), not
    // the tail of the new one appended to the head of the old one.
    let server = Nginx::start();
    let old = dataset(400, 12);
    let new = dataset(400, 13);
    let (old_body, new_body) = (wire_body(&old), wire_body(&new));
    assert_eq!(old_body.len(), new_body.len());
    server.publish_with_mtime("data.bin", &old_body, past(7200));
    let www = server.www();
    let faults = Faults {
        cut: vec![(0, old_body.len() as u64 / 2)],
        on_cut: Some(std::sync::Arc::new(move || {
            nginx::publish_file(&www, "data.bin", &new_body, Some(past(60)));
        })),
        ..Faults::none()
    };
    let proxy = FaultProxy::start(server.port(), faults);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");

    let mut p = open(proxy.port(), "/identity/data.bin", options(&cache));
    let got = epoch(&mut p);
    drop(p);
    let ex = proxy.exchanges();
    assert_records(&got, &new, "records after the file changed mid-download");
    assert!(ex[0].cut);
    assert!(
        ex.iter().all(|e| e.status != 206),
        "a byte range of a different file was used: {ex:#?}"
    );
    assert!(
        ex[1].range_start().is_some() && ex[1].request_header("if-range").is_some(),
        "the resume was guarded by If-Range: {:#?}",
        ex[1]
    );
    // The cache carries the validators of the new file.
    let new_etag = ex.last().unwrap().response_header("etag").unwrap();
    assert_ne!(Some(new_etag), ex[0].response_header("etag"));
    assert_eq!(CacheReader::open(&cache).unwrap().metadata().etag, new_etag);
}
