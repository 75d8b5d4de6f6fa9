//! What a node fetches: its share (counted by a proxy), each block once however many
//! ranks share the node, about (1 - f) of the share after the first epoch with a limit
//! holding a fraction f (against an LRU simulation of the same order), and almost
//! nothing on a warm restart.

use super::*;
use support::fault_proxy::{FaultProxy, Faults};

#[test]
fn each_node_fetches_its_share_of_the_dataset_per_epoch() {
    let s = serve();
    let mut proxies = Vec::new();
    let mut children = Vec::new();
    for node in 0..2u64 {
        let proxy = FaultProxy::start(s.server.port(), Faults::none());
        let rank = Rank {
            url: proxy.url("/identity/train.cache"),
            rank: node,
            world: 2,
            rpn: 1,
            cache_dir: s.tmp.path().join(format!("node{node}")),
            name: "share.stream".into(),
            limit: 0,
            epochs: 1,
            state_file: None,
            pace_us: 0,
        };
        children.push(rank.spawn());
        proxies.push(proxy);
    }
    for (node, c) in children.into_iter().enumerate() {
        let r = report(c);
        let fetched = proxies[node].body_bytes();
        let allowed = 1.15 * (s.bytes - head_bytes(s.bytes)) as f64 / 2.0
            + head_bytes(s.bytes) as f64
            + 4096.0;
        eprintln!(
            "node {node}: fetched {fetched} bytes of a {}-byte dataset ({:.3} of dataset/nodes)",
            s.bytes,
            fetched as f64 / (s.bytes as f64 / 2.0)
        );
        assert!(fetched as f64 <= allowed, "{fetched} > {allowed}");
        assert_eq!(r.stats["bytes_fetched"] as u64, fetched);
    }
}

#[test]
fn four_ranks_on_one_node_fetch_each_block_once() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let dir = s.tmp.path().join("node");
    let children: Vec<Child> = (0..4)
        .map(|rank| {
            Rank {
                url: url.clone(),
                rank,
                world: 4,
                rpn: 4,
                cache_dir: dir.clone(),
                name: "once.stream".into(),
                limit: 0,
                epochs: 1,
                state_file: None,
                pace_us: 0,
            }
            .spawn()
        })
        .collect();
    let fetched: f64 = children
        .into_iter()
        .map(|c| report(c).stats["blocks_fetched"])
        .sum();
    let probe = dir.join("probe").to_str().unwrap().to_string();
    let blocks = StreamingProducer::new(&url, order(0, 4), options(0, 4, &probe))
        .unwrap()
        .blocks()
        .blocks();
    eprintln!("4 ranks on one node: {fetched} block fetches for {blocks} blocks");
    assert!(fetched as u64 <= blocks + 1, "{fetched} > {blocks} + 1");
}

/// Blocks fetched by an LRU cache of `capacity` blocks over `accesses`.
fn lru(accesses: &[u64], capacity: usize) -> u64 {
    let mut cache: Vec<u64> = Vec::new();
    let mut fetched = 0;
    for &b in accesses {
        if let Some(i) = cache.iter().position(|&c| c == b) {
            cache.remove(i);
        } else {
            fetched += 1;
            if cache.len() == capacity {
                cache.remove(0);
            }
        }
        cache.push(b);
    }
    fetched
}

#[test]
fn with_half_the_share_cached_the_second_epoch_fetches_about_half_unlike_lru() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let dir = s.tmp.path().join("node");
    let name = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let probe = StreamingProducer::new(&url, order(0, 1), options(0, 1, &name("probe"))).unwrap();
    let t = probe.blocks().clone();
    drop(probe);
    let blocks = t.blocks();
    let share_bytes: u64 = (0..blocks)
        .map(|b| {
            let (a, z) = t.byte_range(b);
            harmonics_dataset::stream::node_cache::block_allocation(t.block_records(b), z - a)
        })
        .sum();
    let limit = share_bytes / 2 + harmonics_dataset::stream::node_cache::OVERHEAD + 4096;
    let mut p =
        StreamingProducer::new(&url, order(0, 1), options(limit, 1, &name("half"))).unwrap();
    let n = p.rank_size();
    let mut accesses = Vec::new();
    for e in 0..2 {
        for k in 0..n {
            accesses.push(t.block_of(p.index(e, k)));
        }
    }
    for _ in 0..n {
        check(&p.next().unwrap(), 1);
    }
    let first = p.stats().blocks_fetched;
    for _ in 0..n {
        check(&p.next().unwrap(), 1);
    }
    let st = p.stats();
    let second = st.blocks_fetched - first;
    // The same cache size in blocks, LRU over the same order (a simulation).
    let capacity = (blocks / 2) as usize;
    let lru_first = lru(&accesses[..n as usize], capacity);
    let lru_second = lru(&accesses, capacity) - lru_first;
    eprintln!(
        "limit = 50% of the share ({blocks} blocks): epoch 2 fetched {second} blocks ({:.2} of \
         the share); LRU over the same order: {lru_second} ({:.2}); disk high water {} of {limit}",
        second as f64 / blocks as f64,
        lru_second as f64 / blocks as f64,
        st.disk_high_water
    );
    assert!(first >= blocks, "the first epoch fetched every block once");
    assert!(
        (second as f64) <= 0.6 * blocks as f64,
        "epoch 2 fetched {second} of {blocks}"
    );
    assert!(st.disk_high_water <= limit);
}

#[test]
fn a_warm_restart_fetches_almost_nothing() {
    let s = serve();
    let proxy = FaultProxy::start(s.server.port(), Faults::none());
    let rank = Rank {
        url: proxy.url("/identity/train.cache"),
        rank: 0,
        world: 1,
        rpn: 1,
        cache_dir: s.tmp.path().join("node"),
        name: "warm.stream".into(),
        limit: 0,
        epochs: 1,
        state_file: None,
        pace_us: 0,
    };
    let cold = report(rank.spawn());
    let before = proxy.body_bytes();
    let warm = report(rank.spawn());
    let again = proxy.body_bytes() - before;
    eprintln!(
        "cold run: {} bytes fetched; warm restart: {again} bytes ({} blocks)",
        cold.stats["bytes_fetched"], warm.stats["blocks_fetched"]
    );
    assert_eq!(warm.stats["blocks_fetched"], 0.0);
    assert!(again <= head_bytes(s.bytes) + 8192, "{again}");
    assert_eq!(cold.epochs[0], warm.epochs[0], "the same order");
}
