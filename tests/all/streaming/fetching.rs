//! What a node fetches: its share (counted by a proxy), each block once however many
//! ranks share the node, about (1 - f) of the share after the first epoch with a limit
//! holding a fraction f (against LRU and Belady's MIN simulated over the same order), and almost
//! nothing on a warm restart.

use super::*;
use support::fault_proxy::{FaultProxy, Faults, ThrottleProxy};

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

/// What one rank's second epoch fetches with a limit holding a fraction `f` of its
/// share's disk (the fixed files on top): (stream, LRU, Belady's MIN, share blocks),
/// the simulations holding as many blocks as fit in the same bytes, over the same order.
/// With `rate`, the fetches go through a proxy limiting each connection to that many
/// bytes per second (the reader then waits for blocks and runs through each window).
fn second_epoch(f: f64, rate: Option<u64>, block: u64, connections: u32) -> (u64, u64, u64, u64) {
    let s = serve();
    let proxy = rate.map(|r| ThrottleProxy::start(s.server.port(), r));
    let url = match &proxy {
        Some(p) => p.url("/identity/train.cache"),
        None => s.server.url("/identity/train.cache"),
    };
    let dir = s.tmp.path().join("node");
    let name = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let opts = |limit: u64, name: &str| StreamOptions {
        block_bytes: block,
        http: HttpOptions {
            connections,
            ..HttpOptions::default()
        },
        ..options(limit, 1, name)
    };
    let probe = StreamingProducer::new(&url, order(0, 1), opts(0, &name("probe"))).unwrap();
    let t = probe.blocks().clone();
    drop(probe);
    let blocks = t.blocks();
    let alloc = |b: u64| {
        let (a, z) = t.byte_range(b);
        harmonics_dataset::stream::node_cache::block_allocation(t.block_records(b), z - a)
    };
    let share_bytes: u64 = (0..blocks).map(alloc).sum();
    let room = (f * share_bytes as f64) as u64;
    let limit = room + harmonics_dataset::stream::node_cache::OVERHEAD;
    let mut p = StreamingProducer::new(&url, order(0, 1), opts(limit, &name("part"))).unwrap();
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
    let capacity = (room / (0..blocks).map(alloc).max().unwrap()) as usize;
    let lru = support::cache_policy::lru(&accesses, capacity, n as usize)[1];
    let min = support::cache_policy::belady(&accesses, capacity, n as usize)[1];
    eprintln!(
        "limit = {f} of the share ({blocks} blocks, {capacity} fit): epoch 2 fetched {second} \
         blocks ({:.2} of the share); over the same order LRU fetches {lru} ({:.2}), Belady's \
         MIN {min} ({:.2}); disk high water {} of {limit}",
        second as f64 / blocks as f64,
        lru as f64 / blocks as f64,
        min as f64 / blocks as f64,
        st.disk_high_water
    );
    assert!(first >= blocks, "the first epoch fetched every block once");
    assert!(st.disk_high_water <= limit);
    (second, lru, min, blocks)
}

#[test]
fn with_half_the_share_cached_the_second_epoch_fetches_about_half_unlike_lru() {
    let (second, lru, _, blocks) = second_epoch(0.5, None, BLOCK, 2);
    assert!(
        (second as f64) <= 0.6 * blocks as f64,
        "epoch 2 fetched {second} of {blocks}"
    );
    assert!(lru as f64 >= 0.8 * blocks as f64, "the LRU baseline: {lru}");
}

/// With a small cache the prefetch must not take the room of the blocks kept for the
/// next epoch (a prefetch two windows ahead, or one for a window the reader has left,
/// evicts them to be fetched again): the stream fetches about what MIN fetches.
#[test]
fn with_a_quarter_of_the_share_cached_the_second_epoch_fetches_about_what_min_fetches() {
    let (second, _, min, blocks) = second_epoch(0.25, Some(4_000_000), 2 * BLOCK, 4);
    // Within 10% of the share above MIN: the prefetch's timing moves a few blocks on a
    // loaded machine (49-51 of 65 alone, once 53+ beside a full CI run); the defects
    // this guards against fetched 55-57 (and the bound below).
    assert!(
        second <= min + blocks / 10,
        "epoch 2 fetched {second} of {blocks} blocks; MIN fetches {min}"
    );
    assert!(
        (second as f64) <= 0.85 * blocks as f64,
        "{second} of {blocks}"
    );
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
