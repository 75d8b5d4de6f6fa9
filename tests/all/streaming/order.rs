//! The order across processes: 2 nodes × 2 ranks, 2 epochs, every record exact; per
//! epoch the ranks are disjoint, their union is the dataset, their sizes equal; epoch 1
//! differs from epoch 0; a node's ranks read only that node's blocks.

use super::*;

#[test]
fn two_nodes_of_two_ranks_read_every_record_once_per_epoch_and_epochs_differ() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let ranks: Vec<Rank> = (0..4)
        .map(|rank| Rank {
            url: url.clone(),
            rank,
            world: 4,
            rpn: 2,
            cache_dir: s.tmp.path().join(format!("node{}", rank / 2)),
            name: "train.stream".into(),
            limit: 800 << 10,
            epochs: 2,
            state_file: None,
            pace_us: 0,
        })
        .collect();
    let children: Vec<Child> = ranks.iter().map(Rank::spawn).collect();
    let reports: Vec<Report> = children.into_iter().map(report).collect();
    let size = reports[0].epochs[0].len();
    let mut orders = Vec::new();
    for e in 0..2 {
        let mut seen = vec![0u32; RECORDS];
        for r in &reports {
            assert_eq!(r.epochs[e].len(), size, "equal sizes in every epoch");
            for &i in &r.epochs[e] {
                seen[i as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c >= 1), "the union is the dataset");
        let repeated: u32 = seen.iter().map(|&c| c - 1).sum();
        // Padding only: within one block per node.
        assert!(
            repeated as u64 <= 2 * (BLOCK / frame_len() + 2),
            "{repeated}"
        );
        // Nodes hold disjoint records (the blocks were dealt to one node each).
        let node0: std::collections::HashSet<u64> = reports[0].epochs[e]
            .iter()
            .chain(&reports[1].epochs[e])
            .copied()
            .collect();
        assert!(reports[2].epochs[e]
            .iter()
            .chain(&reports[3].epochs[e])
            .all(|i| !node0.contains(i)));
        orders.push(
            reports
                .iter()
                .map(|r| r.epochs[e].clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_ne!(
        orders[0], orders[1],
        "epoch 1's order differs from epoch 0's"
    );
    // Stable dealing: each node reads the same records in both epochs.
    let set = |e: usize, a: usize, b: usize| {
        let mut v: Vec<u64> = orders[e][a].iter().chain(&orders[e][b]).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    assert_eq!(set(0, 0, 1), set(1, 0, 1));
}
