//! The binary's global allocator: the system allocator, counting what one thread
//! allocates while it measures (`proptest_wire`: the peak bytes held during a decode;
//! `sampler_alloc`: every byte a sampler allocates). Only the measuring thread's own
//! allocations count: the other tests of the binary, and the test harness's threads,
//! allocate on threads of their own. A thread that is not measuring pays one
//! thread-local read per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// This thread is measuring.
    static ON: Cell<bool> = const { Cell::new(false) };
    /// Bytes allocated minus bytes freed since the measurement began.
    static NET: Cell<isize> = const { Cell::new(0) };
    /// The highest `NET` of the measurement.
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// Bytes allocated since the measurement began (frees not subtracted; a `realloc`
    /// allocates its new size, as the default `realloc`, an `alloc` and a copy, does).
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

/// Counts `allocated` new bytes and a change of `net` in the bytes held, when this
/// thread measures. `try_with`: an allocation during thread teardown must not panic.
fn track(allocated: usize, net: isize) {
    if !ON.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    let _ = ALLOCATED.try_with(|a| a.set(a.get() + allocated));
    let _ = NET.try_with(|n| {
        let v = n.get() + net;
        n.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            track(l.size(), l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        track(0, -(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            track(new, new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// What this thread allocated while running a measured function.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// The most bytes it held at once beyond what it held when the function began.
    pub peak: usize,
    /// Every byte it allocated.
    pub allocated: usize,
}

/// Runs `f`, counting this thread's allocations (not nested).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    NET.with(|n| n.set(0));
    PEAK.with(|p| p.set(0));
    ALLOCATED.with(|a| a.set(0));
    ON.with(|on| on.set(true));
    let r = f();
    ON.with(|on| on.set(false));
    let usage = Usage {
        peak: PEAK.with(Cell::get).max(0) as usize,
        allocated: ALLOCATED.with(Cell::get),
    };
    (r, usage)
}
