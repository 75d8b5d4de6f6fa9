//! The object replaced between ranged GETs: the download restarts and serves one
//! version; an object that keeps changing is a clear error after bounded restarts.

use super::*;

/// nginx serves version 1; the proxy cuts the first ranged GET, and before the
/// connection closes the file is replaced by version 2 (another size: another ETag).
#[test]
fn the_object_replaced_between_ranged_gets_restarts_and_serves_one_version() {
    // The scenario runs in a child (this test binary again) whose stderr is read: the
    // restart must say so.
    const CHILD: &str = "HARMONICS_TEST_PARALLEL_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let name = support::test_name(
            module_path!(),
            "the_object_replaced_between_ranged_gets_restarts_and_serves_one_version",
        );
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}");
        let warning = stderr
            .lines()
            .find(|l| l.contains("warning") && l.contains("changed during the download"))
            .unwrap_or_else(|| panic!("no warning of the restart in: {stderr}"));
        assert!(warning.contains("restarting the download"), "{warning}");
        assert!(warning.contains("/identity/data.bin"), "{warning}");
        return;
    }
    let v1 = data(3000, 0);
    let v2 = data(3100, 500_000);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&v1));
    let www = server.www();
    let v2_body = wire_body(&v2);
    let replaced = Arc::new(AtomicUsize::new(0));
    let r = replaced.clone();
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            cut: vec![(1, 5_000)],
            on_cut: Some(Arc::new(move || {
                nginx::publish_file(&www, "data.bin", &v2_body, None);
                r.fetch_add(1, Ordering::SeqCst);
            })),
            ..Faults::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let got = match HttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        parallel(&dir.path().join("r.cache"), 4),
    ) {
        Ok(mut p) => epoch(&mut p),
        Err(e) => panic!("{e}: {:#?}", proxy.exchanges()),
    };
    assert_eq!(replaced.load(Ordering::SeqCst), 1);
    assert_records(&got, &v2, "after the object changed");
    let ex = finished_exchanges(&proxy);
    // A ranged GET pinned to version 1 met 412, then a new whole GET started over.
    assert!(ex.iter().any(|e| e.status == 412), "{ex:#?}");
    let whole: Vec<&Exchange> = ex.iter().filter(|e| e.range().is_none()).collect();
    assert_eq!(whole.len(), 2, "{ex:#?}");
    let etag2 = whole[1].response_header("etag").unwrap();
    assert_ne!(Some(etag2), whole[0].response_header("etag"));
    // After the restart every ranged GET is pinned to version 2.
    for e in ex
        .iter()
        .filter(|e| e.index > whole[1].index && e.range().is_some())
    {
        assert_eq!(e.request_header("if-match"), Some(etag2), "{e:#?}");
    }
    assert_eq!(leftovers(dir.path()), vec![dir.path().join("r.cache")]);
}

/// A server whose ETag changes with every request: each ranged GET is refused by
/// `If-Match`.
#[test]
fn an_object_that_keeps_changing_is_a_clear_error_after_bounded_restarts() {
    let body = wire_body(&data(300, 0));
    let server = TestServer::start(move |c| {
        let etag = format!("\"v{}\"", c.n);
        let common = [
            ("ETag", etag.clone()),
            ("Accept-Ranges", "bytes".to_string()),
        ];
        if c.req.header("if-match").is_some() {
            c.respond("412 Precondition Failed", &common, b"");
        } else {
            c.respond("200 OK", &common, &body);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/d.bin");
    let err = HttpProducer::from_url(&url, parallel(&dir.path().join("k.cache"), 4)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Http { .. }), "{msg}");
    assert!(
        msg.contains(&url) && msg.contains("changed 4 times"),
        "{msg}"
    );
    let whole = server
        .requests()
        .iter()
        .filter(|r| r.header("range").is_none())
        .count();
    assert_eq!(whole, 4, "one first GET per attempt");
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
}
