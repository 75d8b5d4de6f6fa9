//! Four node processes against s3s-fs, each fetching its ranks' quarter of one
//! published cache (bytes counted per node); a node killed mid-fetch leaves no
//! partial cache.

use super::*;

#[test]
fn four_nodes_fetch_their_quarter_of_one_published_cache() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let object = publish(&server, tmp.path());
    let proxies: Vec<FaultProxy> = (0..4)
        .map(|_| FaultProxy::start(server.port(), Faults::none()))
        .collect();
    let caches: Vec<PathBuf> = (0..4)
        .map(|n| tmp.path().join(format!("node{n}/cache/train.partial")))
        .collect();
    let children: Vec<Child> = (0..4)
        .map(|n| spawn_node(&proxies[n], n as u64, &caches[n]))
        .collect();
    let mut held_by_node = Vec::new();
    for (n, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "node {n}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("HELD "))
            .expect("HELD line");
        let held: BTreeSet<u64> = line.split(' ').map(|g| g.parse().unwrap()).collect();
        held_by_node.push(held);
    }

    // Every rank's slice of the same global order: disjoint, and together all records.
    let mut union = BTreeSet::new();
    for (n, held) in held_by_node.iter().enumerate() {
        let want: BTreeSet<u64> = rank_indices(2 * n as u64)
            .into_iter()
            .chain(rank_indices(2 * n as u64 + 1))
            .collect();
        assert_eq!(*held, want, "node {n} holds exactly its ranks' records");
        for g in held {
            assert!(union.insert(*g), "record {g} held by two nodes");
        }
    }
    assert_eq!(union.len(), RECORDS);

    // Each node was sent about its quarter plus the header and index, not the object.
    for (n, p) in proxies.iter().enumerate() {
        let sent = p.body_bytes();
        let ratio = sent as f64 / object as f64;
        eprintln!(
            "node {n}: {sent} of {object} bytes ({:.1}%), {} requests",
            ratio * 100.0,
            p.requests()
        );
        assert!(ratio <= 0.30, "node {n} was sent {sent} of {object} bytes");
        assert!(
            ratio >= 0.25,
            "node {n} was sent {sent} bytes: less than its records"
        );
    }

    // Reopened offline (the server gone): served from the partial cache, and a record
    // not held is a clear error naming it and the ranks held.
    drop(proxies);
    drop(server);
    let mut p = PartialHttpProducer::new(
        URL,
        sampler_options(),
        &[0, 1],
        EPOCH,
        HttpOptions::cached_at(true, caches[0].to_str().unwrap()),
    )
    .unwrap();
    assert_eq!(p.stats().requests, 0);
    assert_eq!(p.size().unwrap(), held_by_node[0].len());
    let g = *held_by_node[0].iter().next().unwrap();
    assert_eq!(p.view_at(g).unwrap().to_owned(), record(g as usize));
    let missing = *held_by_node[1].iter().next().unwrap();
    match p.view_at(missing) {
        Err(e @ Error::NotHeld { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&format!("record {missing}")), "{m}");
            assert!(
                m.contains("ranks [0, 1]") && m.contains("world size 8"),
                "{m}"
            );
        }
        other => panic!("expected NotHeld, got {other:?}"),
    }
}

#[test]
fn a_node_killed_mid_fetch_leaves_no_partial_cache() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    publish(&server, tmp.path());
    // The 20th exchange is held back, so the child is killed with records fetched
    // and the partial cache not complete.
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            delay_response: vec![(20, Duration::from_secs(60))],
            ..Faults::none()
        },
    );
    let cache = tmp.path().join("node/cache/train.partial");
    let mut child = spawn_node(&proxy, 0, &cache);
    let guard = Instant::now();
    while proxy.requests() < 21 {
        assert!(
            guard.elapsed() < Duration::from_secs(60),
            "the child never got that far"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !cache.exists(),
        "nothing is visible at the partial cache's name"
    );
    // A later fetch (the proxy no longer delaying) completes normally.
    proxy.set_faults(Faults::none());
    let o = spawn_node(&proxy, 0, &cache).wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(cache.exists());
}
