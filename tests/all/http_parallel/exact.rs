//! Exact records over several connections: a published cache file, a legacy wire
//! body, the async producer; a connection cut mid-range resumes that range.

use super::*;

#[test]
fn a_published_cache_file_over_four_connections_gives_the_single_connection_records() {
    let recs = data(3000, 0);
    let file = published_cache(&recs);
    let server = Nginx::start();
    server.publish("shared.cache", &file);
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let url = proxy.url("/identity/shared.cache");
    let dir = tempfile::tempdir().unwrap();

    let one = download(&url, single(&dir.path().join("one.cache")));
    assert_eq!(proxy.requests(), 1, "{:#?}", proxy.exchanges());
    let four = download(&url, parallel(&dir.path().join("four.cache"), 4));
    assert_records(&one, &recs, "single connection");
    assert_records(&four, &recs, "four connections");
    let ex = finished_exchanges(&proxy);
    let etag = ex[1].response_header("etag").unwrap().to_string();
    assert!(!etag.starts_with("W/"), "{etag}");
    assert_ranges_cover(&ex[2..], &etag, file.len() as u64);
    let conns: std::collections::HashSet<usize> = ex[1..].iter().map(|e| e.connection).collect();
    assert!(conns.len() >= 4, "connections used: {conns:?}");
    // Reopened offline: a complete, valid cache.
    drop(proxy);
    drop(server);
    let again = download(&url, parallel(&dir.path().join("four.cache"), 4));
    assert_records(&again, &recs, "reopened");
}

#[test]
fn a_legacy_wire_body_over_four_connections_gives_the_single_connection_records() {
    let recs = data(3000, 7);
    let body = wire_body(&recs);
    let server = Nginx::start();
    server.publish("data.bin", &body);
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let url = proxy.url("/identity/data.bin");
    let dir = tempfile::tempdir().unwrap();
    let one = download(&url, single(&dir.path().join("one.cache")));
    let four = download(&url, parallel(&dir.path().join("four.cache"), 4));
    assert_records(&one, &recs, "single connection");
    assert_records(&four, &recs, "four connections");
    let ex = finished_exchanges(&proxy);
    let etag = ex[1].response_header("etag").unwrap().to_string();
    assert_ranges_cover(&ex[2..], &etag, body.len() as u64);
    // Both caches hold the same records in the same format.
    assert_eq!(
        std::fs::metadata(dir.path().join("one.cache"))
            .unwrap()
            .len(),
        std::fs::metadata(dir.path().join("four.cache"))
            .unwrap()
            .len()
    );
}

#[test]
fn the_async_producer_over_four_connections_serves_the_exact_records() {
    let recs = data(2000, 3);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&recs));
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let mut p = AsyncHttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        parallel(&dir.path().join("a.cache"), 4),
    )
    .unwrap();
    let got: Vec<Tensor> = (0..recs.len()).map(|_| p.next().unwrap()).collect();
    assert_records(&got, &recs, "async, four connections");
    drop(p);
    let ex = finished_exchanges(&proxy);
    assert!(
        ex.iter().filter(|e| e.range().is_some()).count() >= 3,
        "{ex:#?}"
    );
}

#[test]
fn one_connection_cut_mid_range_resumes_that_range_and_the_result_is_exact() {
    let recs = data(3000, 1);
    let body = wire_body(&recs);
    let server = Nginx::start();
    server.publish("data.bin", &body);
    // Exchange 1 is the first ranged GET (exchange 0 is the first, whole GET).
    let cut_at = 10_000u64;
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            cut: vec![(1, cut_at)],
            ..Faults::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let got = download(
        &proxy.url("/identity/data.bin"),
        parallel(&dir.path().join("c.cache"), 4),
    );
    assert_records(&got, &recs, "after a cut range");
    let ex = finished_exchanges(&proxy);
    let cut = &ex[1];
    assert!(cut.cut, "{cut:#?}");
    let (a, b) = cut.range().unwrap();
    // The rest of that range was asked for, from where the cut left it, pinned.
    let resumed: Vec<&Exchange> = ex
        .iter()
        .filter(|e| e.range() == Some((a + cut_at, b)))
        .collect();
    assert_eq!(resumed.len(), 1, "{ex:#?}");
    assert_eq!(resumed[0].status, 206);
    assert_eq!(
        resumed[0].request_header("if-match"),
        ex[0].response_header("etag")
    );
    // Not restarted: one whole GET, and no other request for that range's start.
    assert_eq!(
        ex.iter().filter(|e| e.range().is_none()).count(),
        1,
        "{ex:#?}"
    );
    assert_eq!(
        ex.iter()
            .filter(|e| e.range().map(|r| r.0) == Some(a))
            .count(),
        1
    );
    // The ranges still tile the object once the resumed part replaces the cut one.
    let ranged: u64 = ex
        .iter()
        .filter_map(Exchange::range)
        .map(|(a, b)| b - a + 1)
        .sum();
    let piece0 = ex
        .iter()
        .filter_map(Exchange::range)
        .map(|r| r.0)
        .min()
        .unwrap();
    assert_eq!(ranged - (b - a + 1 - cut_at) + piece0, body.len() as u64);
}
