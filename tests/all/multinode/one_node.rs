//! The ranks of one node open the same partial cache at once: one of them fetches
//! (under the cache's lock), the others wait and read its file. Eight processes, one
//! fetch counted at the server, every record exact in each.

use super::*;

/// The ranks the node holds (of the world of `WORLD`), the same in every process.
const NODE_RANKS: [u64; 2] = [2, 3];
const PROCESSES: usize = 8;

/// One rank process: opens the node's partial cache at $HD_URL into $HD_CACHE, checks
/// every record it holds, prints `HELD <count> REQUESTS <n>` (the requests this process
/// made).
#[test]
#[ignore = "a child process of the one-node test"]
fn rank_child() {
    let url = std::env::var("HD_URL").unwrap();
    let cache = std::env::var("HD_CACHE").unwrap();
    let mut p = PartialHttpProducer::new(
        &url,
        sampler_options(),
        &NODE_RANKS,
        EPOCH,
        HttpOptions::cached_at(true, &cache),
    )
    .unwrap();
    let held = p.held().to_vec();
    for &g in &held {
        assert_eq!(
            p.get(g).unwrap().to_owned(),
            record(g as usize),
            "record {g}"
        );
    }
    println!("HELD {} REQUESTS {}", held.len(), p.stats().requests);
}

/// The global indices the node's ranks take at `EPOCH`, ascending.
fn node_indices() -> Vec<u64> {
    let mut all: Vec<u64> = NODE_RANKS.iter().flat_map(|&r| rank_indices(r)).collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[test]
fn eight_ranks_of_a_node_opening_one_partial_cache_make_one_fetch() {
    let server = nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = over_http::source_cache(&tmp.path().join("cache"), "train.cache");
    harmonics_dataset::publish(
        src.to_str().unwrap(),
        server.www().to_str().unwrap(),
        &HttpOptions::default(),
    )
    .unwrap();

    // What one fetch of the node's records costs, alone.
    let alone = FaultProxy::start(server.port(), Faults::none());
    let solo = PartialHttpProducer::new(
        &format!("http://127.0.0.1:{}/identity/train.cache", alone.port()),
        sampler_options(),
        &NODE_RANKS,
        EPOCH,
        HttpOptions::cached_at(true, tmp.path().join("solo/part.cache").to_str().unwrap()),
    )
    .unwrap();
    assert_eq!(solo.held(), node_indices());
    let one_fetch = alone.requests();
    assert!(one_fetch > 3, "{one_fetch} requests");

    // The first answers are slow, so that every process has started before the
    // fetch ends (without the lock, each of them would fetch).
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            delay_response: (0..PROCESSES)
                .map(|i| (i, Duration::from_millis(300)))
                .collect(),
            ..Faults::none()
        },
    );
    let url = format!("http://127.0.0.1:{}/identity/train.cache", proxy.port());
    let cache = tmp.path().join("node/part.cache");
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    &support::test_name(module_path!(), "rank_child"),
                    "--nocapture",
                    "--include-ignored",
                ])
                .env("HD_URL", &url)
                .env("HD_CACHE", &cache)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut fetched_by = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("HELD "))
            .expect("the child printed what it holds");
        let (held, requests) = line.split_once(" REQUESTS ").unwrap();
        assert_eq!(held.parse::<usize>().unwrap(), node_indices().len());
        if requests.parse::<usize>().unwrap() > 0 {
            fetched_by += 1;
        }
    }
    assert_eq!(
        (proxy.requests(), fetched_by),
        (one_fetch, 1),
        "{PROCESSES} processes made {} requests (one fetch is {one_fetch})",
        proxy.requests()
    );
}
