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

// A resume answered 200 with the changed resource: its body is used (issue 20, defect 10)

/// A server whose resource changes from `a` (ETag "a") to `b` (ETag "b") the moment it
/// cuts the first response after `cut` body bytes. It honours `If-Range` as RFC 9110
/// §13.1.5 says: a range request whose validator is the current ETag gets a 206, any
/// other a 200 with the whole current resource. `sent[v]` counts the body bytes it
/// wrote of version v (a, b), in 16 KiB writes, as far as the client took them.
fn if_range_server(a: Vec<u8>, b: Vec<u8>, cut: usize, sent: Arc<[AtomicU64; 2]>) -> TestServer {
    let changed = Arc::new(AtomicBool::new(false));
    TestServer::start(move |c: &mut Conn<'_>| {
        let v = usize::from(changed.load(Ordering::SeqCst));
        let (body, etag) = if v == 0 { (&a, "\"a\"") } else { (&b, "\"b\"") };
        let h = vec![
            ("ETag", etag.to_string()),
            ("Accept-Ranges", "bytes".to_string()),
        ];
        let (from, to) = match c.req.range_start() {
            Some(start) if c.req.header("if-range") == Some(etag) => {
                let cr = format!("bytes {start}-{}/{}", body.len() - 1, body.len());
                let mut h = h.clone();
                h.push(("Content-Range", cr));
                c.head("206 Partial Content", body.len() - start, &h);
                (start, body.len())
            }
            _ => {
                c.head("200 OK", body.len(), &h);
                (0, if v == 0 { cut } else { body.len() })
            }
        };
        for chunk in body[from..to].chunks(16 << 10) {
            if c.stream.write_all(chunk).is_err() {
                return;
            }
            sent[v].fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        if v == 0 && to == cut {
            changed.store(true, Ordering::SeqCst); // then the connection is dropped
        }
    })
}

#[test]
fn a_resume_answered_200_with_the_changed_object_is_decoded_not_fetched_again() {
    let (a, b) = (records(2000, 16), negated(&records(2400, 16)));
    let (body_a, body_b) = (wire_body(&a), wire_body(&b));
    let sent = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let cut = body_a.len() * 3 / 10;
    let server = if_range_server(body_a, body_b.clone(), cut, sent.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        HttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache"))).unwrap();
    assert_eq!(epoch(&mut p), b, "not exactly the new version's records");
    let reqs = server.requests();
    let sent_b = sent[1].load(Ordering::SeqCst);
    println!(
        "bytes of the new version sent: {sent_b} for {} ({:.2}x), in {} requests",
        body_b.len(),
        sent_b as f64 / body_b.len() as f64,
        reqs.len()
    );
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[1].header("if-range"), Some("\"a\""), "{reqs:#?}");
    assert_eq!(
        sent_b,
        body_b.len() as u64,
        "the new version was sent more than once"
    );
    assert_eq!(sent[0].load(Ordering::SeqCst), cut as u64);
}

#[test]
fn nginx_answers_a_resume_of_a_changed_file_with_200_which_is_used() {
    // nginx's own ETag ("mtime-size", strong) guards the resume; the file is replaced
    // (another mtime) while the first response is cut, so If-Range no longer matches
    // and nginx sends the whole new file with 200. Its access log counts the bytes.
    let (a, b) = (records(3000, 16), negated(&records(3000, 16)));
    let server = Nginx::start();
    let (body_a, body_b) = (wire_body(&a), wire_body(&b));
    let t = whole_second(0) - Duration::from_secs(3600);
    server.publish_with_mtime("data.bin", &body_a, t);
    let www = server.www();
    let faults = Faults {
        cut: vec![(0, body_a.len() as u64 / 4)],
        on_cut: Some(Arc::new(move || {
            let later = t + Duration::from_secs(60);
            nginx::publish_file(&www, "data.bin", &body_b, Some(later));
        })),
        ..Faults::none()
    };
    let proxy = FaultProxy::start(server.port(), faults);
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        opts(&dir.path().join("c.cache")),
    )
    .unwrap();
    assert_eq!(epoch(&mut p), b, "not exactly the new version's records");
    let log = server.wait_log("two requests", |l| l.len() >= 2);
    let new_etag = log[1].etag.clone();
    let sent_b: u64 = log
        .iter()
        .filter(|l| l.etag == new_etag)
        .map(|l| l.body_bytes_sent)
        .sum();
    let size_b = wire_body(&b).len() as u64;
    println!(
        "nginx sent {sent_b} bytes of the new version ({:.2}x its size): {log:#?}",
        sent_b as f64 / size_b as f64
    );
    let cut = body_a.len() as u64 / 4;
    assert_eq!(
        (log[1].status, log[1].range_start()),
        (200, Some(cut)),
        "{log:#?}"
    );
    assert_eq!(log.len(), 2, "a second GET of the new version: {log:#?}");
    assert_eq!(sent_b, size_b);
}
