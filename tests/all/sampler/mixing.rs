//! Mixing: a global shuffle, and block mode at its default window, mix the classes
//! of a class-sorted dataset into every batch.

use super::*;

/// Classes of a class-sorted dataset: record i is of class i / 10_000.
fn classes_per_batch(o: SamplerOptions) -> Vec<usize> {
    let (classes, per_class, batch) = (20u64, 10_000u64, 256usize);
    let mut s = Sampler::new(classes * per_class, o).unwrap();
    let order = steps(&mut s, classes * per_class);
    order
        .chunks(batch)
        .filter(|c| c.len() == batch)
        .map(|c| {
            let mut seen = [false; 20];
            c.iter()
                .for_each(|&i| seen[(i / per_class) as usize] = true);
            seen.iter().filter(|&&x| x).count()
        })
        .collect()
}

fn distribution(counts: &[usize]) -> String {
    let mut hist = [0usize; 21];
    counts.iter().for_each(|&c| hist[c] += 1);
    (0..=20)
        .filter(|&c| hist[c] > 0)
        .map(|c| format!("{c} classes: {} batches", hist[c]))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn a_global_shuffle_mixes_every_batch_of_a_class_sorted_dataset() {
    let counts = classes_per_batch(opts(2024, 0, 1));
    println!(
        "global shuffle, classes per batch of 256: {}",
        distribution(&counts)
    );
    assert!(
        *counts.iter().min().unwrap() >= 18,
        "{}",
        distribution(&counts)
    );
}

#[test]
fn block_mode_at_its_default_window_mixes_every_batch() {
    for block in [16u64, 64, 256, 1000] {
        let counts = classes_per_batch(SamplerOptions {
            block_records: block,
            ..opts(2024, 0, 1)
        });
        println!(
            "block_records {block} (windows of at least {} blocks), classes per batch of 256: {}",
            harmonics_dataset::sampler::BLOCK_WINDOW,
            distribution(&counts)
        );
        assert!(
            *counts.iter().min().unwrap() >= 12,
            "block {block}: {}",
            distribution(&counts)
        );
    }
    // Without shuffling, a batch is one or two classes: the test can tell.
    let counts = classes_per_batch(SamplerOptions {
        shuffle: false,
        ..opts(0, 0, 1)
    });
    assert!(*counts.iter().max().unwrap() <= 2);
}
