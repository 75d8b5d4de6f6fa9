//! A resume after a cut never splices two versions: without a strong validator the
//! download restarts from byte 0 (also from a real nginx whose file was rewritten
//! within one second), with a strong Last-Modified it resumes under `If-Range`; a 206
//! is accepted only as the answer to the range asked for, with the same total.

use super::*;

/// A server whose resource changes from version A to version B (same length) the
/// moment it cuts the first response half-way. It honours `Range: bytes=N-` with a
/// 206 of the *current* version, whatever If-Range says (as a server must, when the
/// validator it was given is weak or absent). `headers` are sent on every response.
fn changing_server(a: Vec<u8>, b: Vec<u8>, headers: Vec<(&'static str, String)>) -> TestServer {
    assert_eq!(a.len(), b.len());
    TestServer::start(move |c: &mut Conn<'_>| {
        let h: Vec<(&str, String)> = headers.clone();
        if let Some(start) = c.req.range_start() {
            c.respond_partial(start, &h, &b);
        } else if c.n == 0 {
            c.head("200 OK", a.len(), &h);
            let _ = c.stream.write_all(&a[..a.len() / 2]);
        } else {
            c.respond("200 OK", &h, &b);
        }
    })
}

/// Another version of `records`: same shapes and lengths, other values.
fn negated(records: &[Tensor]) -> Vec<Tensor> {
    records
        .iter()
        .map(|t| Tensor::from_f32(&t.to_f32().iter().map(|v| -v - 1.0).collect::<Vec<_>>()))
        .collect()
}

/// Downloads from a `changing_server` with `headers`; returns the records and
/// whether any request asked for a Range.
fn download_across_a_change(headers: Vec<(&'static str, String)>) -> (bool, Vec<Tensor>) {
    let (a, b) = (records(40, 16), negated(&records(40, 16)));
    let server = changing_server(wire_body(&a), wire_body(&b), headers);
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache")))
        .expect("the download recovers from the cut");
    let got = epoch(&mut p);
    let ranged = server
        .requests()
        .iter()
        .any(|r| r.header("range").is_some());
    assert_eq!(got, b, "records of version A were mixed into version B");
    (ranged, got)
}

#[test]
fn resume_with_only_accept_ranges_restarts_from_zero_instead_of_splicing() {
    let (ranged, _) = download_across_a_change(vec![("Accept-Ranges", "bytes".into())]);
    assert!(!ranged, "resumed with Range without any validator");
}

#[test]
fn resume_with_only_a_weak_etag_restarts_from_zero_instead_of_splicing() {
    let (ranged, _) = download_across_a_change(vec![
        ("Accept-Ranges", "bytes".into()),
        ("ETag", "W/\"v\"".into()),
    ]);
    assert!(!ranged, "resumed with Range on a weak ETag");
}

#[test]
fn resume_with_a_last_modified_as_new_as_the_date_restarts_from_zero() {
    // RFC 9110 §8.8.2.2: a Last-Modified less than a second before the Date is weak
    // (the file may change again within the same second).
    let now = http_date(0);
    let (ranged, _) = download_across_a_change(vec![
        ("Accept-Ranges", "bytes".into()),
        ("Last-Modified", now.clone()),
        ("Date", now),
    ]);
    assert!(!ranged, "resumed with Range on a weak Last-Modified");
}

#[test]
fn resume_with_a_strong_last_modified_uses_if_range() {
    let body = wire_body(&records(40, 16));
    let lm = http_date(-3600);
    let server = {
        let (body, lm) = (body.clone(), lm.clone());
        TestServer::start(move |c| {
            let h = vec![
                ("Last-Modified", lm.clone()),
                ("Date", http_date(0)),
                ("Accept-Ranges", "bytes".to_string()),
            ];
            match c.req.range_start() {
                Some(start) if c.req.header("if-range") == Some(lm.as_str()) => {
                    c.respond_partial(start, &h, &body);
                }
                _ if c.n == 0 => {
                    c.head("200 OK", body.len(), &h);
                    let _ = c.stream.write_all(&body[..body.len() / 2]);
                }
                _ => c.respond("200 OK", &h, &body),
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        HttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache"))).unwrap();
    assert_eq!(epoch(&mut p), records(40, 16));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[1].header("if-range"), Some(lm.as_str()), "{reqs:#?}");
    assert!(reqs[1].header("range").is_some());
}

/// A whole second `secs` from now: nginx's Last-Modified has second resolution.
fn whole_second(secs: u64) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(now + secs)
}

/// nginx serving version A at `/identity/data.bin` with `mtime`, behind a proxy that
/// hides its ETag (so Last-Modified is the only validator) and cuts the first
/// response half-way, replacing the file by `b` (same length) with `b_mtime` then.
fn nginx_cut_and_replace(
    a: &[Tensor],
    b: &[Tensor],
    mtime: SystemTime,
    b_mtime: SystemTime,
) -> (Nginx, FaultProxy) {
    let server = Nginx::start();
    let (body_a, body_b) = (wire_body(a), wire_body(b));
    assert_eq!(body_a.len(), body_b.len());
    server.publish_with_mtime("data.bin", &body_a, mtime);
    let www = server.www();
    let faults = Faults {
        cut: vec![(0, body_a.len() as u64 / 2)],
        strip_response_headers: vec!["ETag".into()],
        on_cut: Some(Arc::new(move || {
            nginx::publish_file(&www, "data.bin", &body_b, Some(b_mtime));
        })),
        ..Faults::none()
    };
    let proxy = FaultProxy::start(server.port(), faults);
    (server, proxy)
}

#[test]
fn nginx_file_rewritten_within_its_last_modified_second_is_restarted_not_spliced() {
    // Both versions carry the same Last-Modified (rewritten within one second, as
    // a job writing a dataset twice does): If-Range with it would match and nginx
    // would send the tail of B after the head of A. The Last-Modified is not older
    // than the Date, hence weak: the client must not resume at all.
    let (a, b) = (records(400, 16), negated(&records(400, 16)));
    let t = whole_second(30);
    let (_server, proxy) = nginx_cut_and_replace(&a, &b, t, t);
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        opts(&dir.path().join("c.cache")),
    )
    .unwrap();
    let got = epoch(&mut p);
    let ex = proxy.exchanges();
    assert!(ex[0].cut, "{ex:#?}");
    assert!(
        ex.iter().all(|e| e.status != 206),
        "a part was used: {ex:#?}"
    );
    assert_eq!(
        ex[1].range_start(),
        None,
        "the retry starts over: {:#?}",
        ex[1]
    );
    assert_eq!(got, b, "records of version A were mixed into version B");
}

#[test]
fn nginx_without_etag_resumes_under_if_range_with_a_strong_last_modified() {
    // The same without a change: a Last-Modified an hour old is strong, and the
    // resume is a 206 guarded by it.
    let a = records(400, 16);
    let t = whole_second(0) - Duration::from_secs(3600);
    let (_server, proxy) = nginx_cut_and_replace(&a, &a, t, t);
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        opts(&dir.path().join("c.cache")),
    )
    .unwrap();
    assert_eq!(epoch(&mut p), a);
    let ex = proxy.exchanges();
    assert_eq!(ex.len(), 2, "{ex:#?}");
    assert!(ex[1].range_start().is_some_and(|s| s > 0), "{:#?}", ex[1]);
    assert_eq!(
        ex[1].request_header("if-range"),
        ex[0].response_header("last-modified")
    );
    assert_eq!(ex[1].status, 206);
}

// A 206 only as the answer to the range asked for

#[test]
fn a_206_to_a_request_without_range_is_an_error_not_a_complete_dataset() {
    let body = wire_body(&records(10, 16));
    let half = body.len() / 2;
    let server = {
        let body = body.clone();
        TestServer::start(move |c| {
            let cr = (
                "Content-Range",
                format!("bytes 0-{}/{}", half - 1, body.len()),
            );
            c.respond("206 Partial Content", &[cr], &body[..half]);
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/d");
    let msg = http_error(&url, opts(&dir.path().join("c.cache")), dir.path());
    println!("{msg}");
    assert!(msg.contains("206"), "{msg}");
    assert!(!dir.path().join("c.cache").exists());
}

#[test]
fn a_206_resume_with_another_total_restarts_from_zero() {
    // After the cut, the resource grew: the server answers the resume with a 206
    // whose start is right but whose total is not the body's. Its tail must not be
    // appended to the head already received.
    let a = records(40, 16);
    let b = negated(&records(60, 16));
    let (body_a, body_b) = (wire_body(&a), wire_body(&b));
    let server = {
        TestServer::start(move |c| {
            let h = vec![("ETag", "\"x\"".to_string())];
            if let Some(start) = c.req.range_start() {
                c.respond_partial(start, &h, &body_b);
            } else if c.n == 0 {
                c.head("200 OK", body_a.len(), &h);
                let _ = c.stream.write_all(&body_a[..body_a.len() / 2]);
            } else {
                c.respond("200 OK", &h, &body_b);
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        HttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache"))).unwrap();
    let got = epoch(&mut p);
    assert_eq!(
        got.len(),
        b.len(),
        "a spliced body of {} records",
        got.len()
    );
    assert_eq!(got, b);
    let last = server.requests().pop().unwrap();
    assert_eq!(last.header("range"), None, "the final request starts over");
}
