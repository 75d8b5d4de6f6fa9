//! `HttpOptions::connections` 0: the download starts on one connection and splits
//! only when more connections deliver more (see `src/http/parallel.rs`). Counted at
//! the server: a fast loopback nginx gets one whole GET; through a proxy that caps
//! every connection the download splits into several pinned ranges; through a proxy
//! that caps all connections together the probe finds no gain and the first
//! connection carries every byte.

use std::sync::{Mutex, MutexGuard};

use super::*;
use harmonics_dataset::log::{self, Level};
use support::fault_proxy::ThrottleProxy;

/// The library's debug messages about one URL's download (the process-wide log sink,
/// filtered by the URL: other tests may log meanwhile; held with `support::log_lock()`,
/// so that no other test sets another sink or level meanwhile).
struct Decisions {
    said: Arc<Mutex<Vec<String>>>,
    _log: MutexGuard<'static, ()>,
}

impl Decisions {
    fn watch(url: &str) -> Decisions {
        let log_lock = support::log_lock();
        let said = Arc::new(Mutex::new(Vec::new()));
        let (into, url) = (said.clone(), url.to_string());
        log::set_level(Level::Debug);
        log::set_sink(Some(Arc::new(move |_, m: &str| {
            if m.contains(&url) {
                into.lock().unwrap().push(m.to_string());
            }
        })));
        Decisions {
            said,
            _log: log_lock,
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.said.lock().unwrap())
    }
}

impl Drop for Decisions {
    fn drop(&mut self) {
        log::set_sink(None);
        log::set_level(Level::Warn);
    }
}

/// Automatic connections, whatever the size.
fn automatic(cache: &Path) -> HttpOptions {
    HttpOptions {
        connections: 0,
        ..parallel(cache, 0)
    }
}

/// `[0, len)` is covered by what the exchanges delivered: the whole GET from byte 0,
/// each ranged GET from its first byte.
fn assert_covered(ex: &[Exchange], len: u64) {
    let mut spans: Vec<(u64, u64)> = ex
        .iter()
        .map(|e| {
            let a = e.range().map_or(0, |r| r.0);
            (a, a + e.body_bytes)
        })
        .collect();
    spans.sort();
    let mut at = 0;
    for (a, b) in &spans {
        assert!(*a <= at, "a gap at byte {at}: {spans:?}");
        at = at.max(*b);
    }
    assert!(at >= len, "covered up to {at} of {len}: {spans:?}");
}

#[test]
fn the_automatic_download_stays_on_one_connection_against_a_fast_loopback_server() {
    // About 100 MB of 64 KiB records: the one connection is sampled before the end.
    let recs: Vec<Tensor> = (0..1600)
        .map(|i| Tensor::from_f32(&vec![i as f32; 16384]))
        .collect();
    let body = wire_body(&recs);
    let len = body.len() as u64;
    let server = Nginx::start();
    server.publish("data.bin", &body);
    let url = server.url("/identity/data.bin");
    let decisions = Decisions::watch(&url);
    let dir = tempfile::tempdir().unwrap();
    let got = download(&url, automatic(&dir.path().join("a.cache")));
    assert_records(&got, &recs, "automatic, fast server");
    // nginx logs a request once it is done with it: the whole GET is logged once the
    // first connection is closed or complete.
    server.wait_log("the whole GET", |l| l.iter().any(|x| x.range.is_none()));
    let log = server.requests_for("/identity/data.bin");
    assert_eq!(log.len(), 1, "one request: {log:#?}");
    assert_eq!((log[0].status, log[0].range.as_deref()), (200, None));
    assert_eq!(log[0].body_bytes_sent, len, "{log:#?}");
    // Each measurement that ran found the connection was not the limit. (None runs
    // when the whole body arrives within the first sample, as it can on a fast, idle
    // machine: the request log above is the proof that one connection did it all.)
    let said = decisions.take();
    assert!(
        said.iter()
            .all(|m| m.contains("staying on one connection") || m.contains("too little is left")),
        "{said:#?}"
    );
}

/// Downloads `n` records with automatic connections through a throttle on nginx,
/// started by `throttle(nginx port, 3 MB/s)`, behind a recording proxy; checks the
/// records and returns the exchanges and the object's length. 3 MB/s: slow enough
/// that even a debug build under load waits for it more than 15/16 of the time.
fn through(n: usize, throttle: fn(u16, u64) -> ThrottleProxy) -> (Vec<Exchange>, u64) {
    let recs = data(n, 12);
    let body = wire_body(&recs);
    let server = Nginx::start();
    server.publish("data.bin", &body);
    // Client -> recording proxy -> throttle -> nginx.
    let throttle = throttle(server.port(), 3_000_000);
    let recorder = FaultProxy::start(throttle.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let got = download(
        &recorder.url("/identity/data.bin"),
        automatic(&dir.path().join("t.cache")),
    );
    assert_records(&got, &recs, "automatic, throttled");
    (finished_exchanges(&recorder), body.len() as u64)
}

#[test]
fn the_automatic_download_splits_through_a_throttle_per_connection_and_the_records_are_exact() {
    let (ex, len) = through(12_000, ThrottleProxy::start);
    // First the whole GET, which carried a prefix and was then closed.
    assert!(ex[0].range().is_none(), "{:#?}", ex[0]);
    assert!(ex[0].body_bytes < len, "never split: {:#?}", ex[0]);
    let etag = ex[0].response_header("etag").unwrap();
    for e in &ex[1..] {
        assert_eq!(e.request_header("if-match"), Some(etag), "{e:#?}");
        assert_eq!(e.status, 206, "{e:#?}");
    }
    assert_covered(&ex, len);
    // The ranges over at least 3 connections, at most the automatic limit of 4 (the
    // first connection, closed after its piece, goes on as one of them).
    let ranged: std::collections::HashSet<usize> = ex[1..].iter().map(|e| e.connection).collect();
    assert!(ranged.len() >= 3, "ranged connections: {ranged:?}");
    assert!(
        ranged.len() <= 4,
        "more than the automatic limit: {ranged:?}"
    );
}

#[test]
fn the_automatic_download_stays_on_one_connection_when_two_share_one_capped_link() {
    // One cap for all connections together: a second one only halves the first.
    let (ex, len) = through(6_000, ThrottleProxy::start_shared);
    // The first connection carried every byte...
    assert!(ex[0].range().is_none(), "{:#?}", ex[0]);
    assert_eq!(ex[0].body_bytes, len, "{:#?}", ex[0]);
    assert!(ex[0].complete, "{:#?}", ex[0]);
    // ...after a second one was tried (pinned, and called off).
    assert!(ex.len() >= 2, "no probe: {ex:#?}");
    let etag = ex[0].response_header("etag").unwrap();
    for e in &ex[1..] {
        assert_eq!(e.request_header("if-match"), Some(etag), "{e:#?}");
        assert!(e.body_bytes < len / 2, "{e:#?}");
    }
}

#[test]
fn a_cut_of_the_one_connection_resumes_as_pinned_ranges_on_one_connection() {
    let recs = data(3000, 14);
    let body = wire_body(&recs);
    let len = body.len() as u64;
    let server = Nginx::start();
    server.publish("data.bin", &body);
    let cut_at = 1_000_000;
    let proxy = FaultProxy::start(server.port(), Faults::cut_first_response_after(cut_at));
    let dir = tempfile::tempdir().unwrap();
    let got = download(
        &proxy.url("/identity/data.bin"),
        automatic(&dir.path().join("c.cache")),
    );
    assert_records(&got, &recs, "automatic, first connection cut");
    let ex = finished_exchanges(&proxy);
    assert!(ex[0].range().is_none() && ex[0].cut, "{:#?}", ex[0]);
    // Then pinned ranges from the byte the cut reached, one after the other: they
    // tile the rest of the object in request order.
    let etag = ex[0].response_header("etag").unwrap();
    let mut at = cut_at;
    for e in &ex[1..] {
        assert_eq!(e.request_header("if-match"), Some(etag), "{e:#?}");
        let (a, b) = e.range().unwrap();
        assert_eq!((e.status, a), (206, at), "{ex:#?}");
        at = b + 1;
    }
    assert_eq!(at, len);
    // One connection at a time (a kept-alive one may be replaced once).
    let conns: std::collections::HashSet<usize> = ex[1..].iter().map(|e| e.connection).collect();
    assert!(conns.len() <= 2, "{conns:?}");
}
