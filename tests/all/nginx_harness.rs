//! Self-checks of the test harness (tests/support): the nginx configuration behaves
//! as the HTTP producer tests assume (ranges honoured or not per location, gzip
//! responses chunked, ETag/304, access log fields), and the fault proxy cuts where
//! it is told and records what it saw; the throttle proxy forwards every byte, no
//! faster than its rate, and counts them. Driven by a plain reqwest client, so a
//! failure here is the harness's, not the producer's.

use crate::support;
use support::fault_proxy;
use support::nginx;

use std::io::Read;
use std::time::{Duration, Instant};

use fault_proxy::{FaultProxy, Faults, ThrottleProxy};
use nginx::Nginx;

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 7) as u8).collect()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().build().unwrap()
}

#[test]
fn nginx_honours_ranges_on_identity_and_not_on_noranges() {
    let server = Nginx::start();
    server.publish("a.bin", &body(10_000));

    let r = client()
        .get(server.url("/identity/a.bin"))
        .header("Range", "bytes=4000-")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().unwrap().as_ref(), &body(10_000)[4000..]);

    let r = client().get(server.url("/noranges/a.bin")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("accept-ranges").is_none());
    let r = client()
        .get(server.url("/noranges/a.bin"))
        .header("Range", "bytes=4000-")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "max_ranges 0 ignores Range");
    assert_eq!(r.bytes().unwrap().len(), 10_000);

    let log = server.wait_log("three requests", |l| l.len() == 3);
    assert_eq!(log[0].status, 206);
    assert_eq!(log[0].range_start(), Some(4000));
    assert_eq!(log[0].body_bytes_sent, 6000);
    assert_eq!(log[0].path(), "/identity/a.bin");
}

#[test]
fn nginx_gzips_chunked_and_answers_304_to_its_weak_etag() {
    let server = Nginx::start();
    server.publish("a.bin", &body(100_000));
    let r = client().get(server.url("/a.bin")).send().unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with("W/"), "gzip weakens the ETag: {etag}");
    assert_eq!(r.bytes().unwrap().as_ref(), &body(100_000)[..]);
    let r = client()
        .get(server.url("/a.bin"))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    let log = server.wait_log("two requests", |l| l.len() == 2);
    assert!(log[0].gzip_ratio.is_some(), "{log:#?}");
    assert_eq!(log[0].content_encoding.as_deref(), Some("gzip"));
    assert_eq!(log[0].transfer_encoding.as_deref(), Some("chunked"));
    assert!(log[0].accept_encoding.as_deref().unwrap().contains("gzip"));
    assert_eq!(log[1].status, 304);
    assert_eq!(log[1].if_none_match.as_deref(), Some(etag.as_str()));
}

#[test]
fn fault_proxy_cuts_after_n_body_bytes_and_records_the_exchange() {
    let server = Nginx::start();
    server.publish("a.bin", &body(50_000));
    let proxy = FaultProxy::start(server.port(), Faults::cut_first_response_after(12_345));

    let mut r = client()
        .get(proxy.url("/identity/a.bin"))
        .header("X-Probe", "1")
        .send()
        .unwrap();
    let mut got = Vec::new();
    let res = r.read_to_end(&mut got);
    assert!(res.is_err(), "a cut body is an error for the client");
    assert_eq!(got.len(), 12_345);
    assert_eq!(&got[..], &body(50_000)[..12_345]);

    // Second exchange passes untouched, gzip+chunked through the framing code.
    let r = client().get(proxy.url("/a.bin")).send().unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), &body(50_000)[..]);

    let ex = proxy.exchanges();
    assert_eq!(ex.len(), 2);
    assert!(ex[0].cut && !ex[0].complete);
    assert_eq!(ex[0].body_bytes, 12_345);
    assert_eq!(ex[0].request_header("x-probe"), Some("1"));
    assert_eq!(ex[0].response_header("content-length"), Some("50000"));
    assert_eq!(ex[1].response_header("transfer-encoding"), Some("chunked"));
    assert!(ex[1].body_bytes < 50_000);
    assert_eq!(proxy.connections(), 2);
}

#[test]
fn fault_proxy_rewrites_response_headers() {
    let server = Nginx::start();
    server.publish("a.bin", &body(1000));
    let faults = Faults {
        strip_response_headers: vec!["ETag".into()],
        add_response_headers: vec![("Accept-Ranges".into(), "bytes".into())],
        ..Faults::none()
    };
    let proxy = FaultProxy::start(server.port(), faults);
    let r = client().get(proxy.url("/noranges/a.bin")).send().unwrap();
    assert!(r.headers().get("etag").is_none());
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.bytes().unwrap().len(), 1000);
    assert!(proxy.exchanges()[0].response_header("etag").is_some());
}

#[test]
fn throttle_proxy_forwards_every_byte_no_faster_than_its_rate_and_counts_them() {
    let server = Nginx::start();
    let n = 400_000;
    server.publish("a.bin", &body(n));
    let rate = 2_000_000;
    let proxy = ThrottleProxy::start(server.port(), rate);
    for _ in 0..2 {
        let started = Instant::now();
        let r = client().get(proxy.url("/identity/a.bin")).send().unwrap();
        assert_eq!(r.bytes().unwrap().as_ref(), &body(n)[..]);
        // A lower bound only (a busy machine is slower, never faster): past the
        // bucket's 128 KiB burst, the rest of the body waits for tokens.
        let floor = (n - (128 << 10)) as f64 / rate as f64;
        assert!(
            started.elapsed() >= Duration::from_secs_f64(floor),
            "{:?} for {n} bytes at {rate} B/s",
            started.elapsed()
        );
    }
    assert_eq!(proxy.connections(), 2);
    // Counted after each write: the count catches up a moment after the client.
    for _ in 0..2000 {
        if proxy.bytes() >= 2 * n as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (b, most) = (proxy.bytes(), 2 * (n as u64 + 1000));
    assert!(
        b >= 2 * n as u64 && b < most,
        "{b} bytes counted for two bodies of {n}"
    );
}
