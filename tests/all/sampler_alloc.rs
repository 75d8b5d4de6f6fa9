//! The sampler allocates nothing: not per record, not per index, not per epoch. The
//! binary's counting global allocator (`alloc_count`) proves it for N up to 10^7.
//! Only the test thread's own allocations are counted: the other tests and the test
//! harness's threads allocate when they please (a "has been running for over 60
//! seconds" notice on a loaded machine, output capture), and those are not the
//! sampler's.

use harmonics_dataset::{Sampler, SamplerOptions};

/// Bytes this thread allocates while running `f` (the binary's counting allocator,
/// `crate::alloc_count`).
fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (r, usage) = crate::alloc_count::measure(f);
    (r, usage.allocated)
}

#[test]
fn a_sampler_over_ten_million_records_allocates_nothing() {
    for (block, world_size, rank) in [(0u64, 1u64, 0u64), (0, 8, 5), (1000, 3, 2), (7, 64, 63)] {
        let opts = SamplerOptions {
            seed: 99,
            block_records: block,
            world_size,
            rank,
            ..SamplerOptions::default()
        };
        let (acc, bytes) = allocated_by(|| {
            let mut s = Sampler::new(10_000_000, opts).unwrap();
            let mut acc = 0u64;
            for _ in 0..200_000 {
                acc = acc.wrapping_add(s.next_index());
            }
            s.set_epoch(7);
            let st = s.state();
            let mut t = Sampler::new(10_000_000, opts).unwrap();
            t.restore(&st).unwrap();
            let mut buf = [0u64; 256];
            t.fill(&mut buf);
            acc.wrapping_add(t.index(12345).unwrap() + buf[255])
        });
        assert_eq!(bytes, 0, "block {block}: the sampler allocated (acc {acc})");
    }
}
