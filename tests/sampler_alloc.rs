//! The sampler allocates nothing: not per record, not per index, not per epoch. A
//! counting global allocator (this test binary's own) proves it for N up to 10^7.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use harmonics_dataset::{Sampler, SamplerOptions};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
        let before = ALLOCATED.load(Ordering::SeqCst);
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
        acc = acc.wrapping_add(t.index(12345).unwrap() + buf[255]);
        let after = ALLOCATED.load(Ordering::SeqCst);
        assert_eq!(
            after - before,
            0,
            "block {block}: the sampler allocated (acc {acc})"
        );
    }
}
