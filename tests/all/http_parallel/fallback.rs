//! When a download stays on one connection: no range support, a weak ETag or no
//! `Accept-Ranges`, an object below the threshold, ranges announced but ignored.

use super::*;

#[test]
fn a_server_without_range_support_gets_a_single_connection() {
    let recs = data(2000, 0);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&recs));
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let got = download(
        &proxy.url("/noranges/data.bin"),
        parallel(&dir.path().join("n.cache"), 4),
    );
    assert_records(&got, &recs, "no ranges");
    let ex = finished_exchanges(&proxy);
    assert_ne!(ex[0].response_header("accept-ranges"), Some("bytes"));
    whole_gets_only(&ex);
}

#[test]
fn a_weak_etag_or_no_accept_ranges_gets_a_single_connection() {
    let recs = data(2000, 0);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&recs));
    for (strip, add) in [
        ("etag", Some(("ETag", "W/\"weak\""))),
        ("etag", None),
        ("accept-ranges", None),
    ] {
        let faults = Faults {
            strip_response_headers: vec![strip.to_string()],
            add_response_headers: add
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Faults::default()
        };
        let proxy = FaultProxy::start(server.port(), faults);
        let dir = tempfile::tempdir().unwrap();
        let got = download(
            &proxy.url("/identity/data.bin"),
            parallel(&dir.path().join("w.cache"), 4),
        );
        assert_records(&got, &recs, strip);
        whole_gets_only(&finished_exchanges(&proxy));
    }
}

#[test]
fn an_object_below_the_threshold_gets_a_single_connection_by_default() {
    let recs = data(2000, 0);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&recs));
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        cache_path: dir.path().join("d.cache").to_str().unwrap().to_string(),
        ..HttpOptions::default()
    };
    assert_eq!((o.connections, o.parallel_min_bytes), (0, 64 << 20));
    let got = download(&proxy.url("/identity/data.bin"), o);
    assert_records(&got, &recs, "default options");
    whole_gets_only(&finished_exchanges(&proxy));
}

/// A server that announces `Accept-Ranges: bytes` with a strong ETag but answers
/// every ranged GET with the whole object.
#[test]
fn a_server_that_ignores_ranges_it_announced_is_downloaded_again_on_one_connection() {
    let recs = data(1000, 0);
    let body = wire_body(&recs);
    let server = TestServer::start(move |c| {
        let h = [
            ("ETag", "\"v1\"".to_string()),
            ("Accept-Ranges", "bytes".to_string()),
        ];
        c.respond("200 OK", &h, &body);
    });
    let dir = tempfile::tempdir().unwrap();
    let got = download(
        &server.url("/d.bin"),
        parallel(&dir.path().join("i.cache"), 4),
    );
    assert_records(&got, &recs, "after falling back to one connection");
    let reqs = server.requests();
    let whole = reqs.iter().filter(|r| r.header("range").is_none()).count();
    assert_eq!(
        whole, 2,
        "the first GET, then the single-connection one: {reqs:#?}"
    );
    assert_eq!(leftovers(dir.path()), vec![dir.path().join("i.cache")]);
}
