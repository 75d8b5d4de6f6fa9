//! Read-only mappings of cache files that survive the file being cut or overwritten
//! under them by another program (`cp new.cache train.cache`, `truncate`, an editor).
//!
//! The danger: a page of a shared file mapping that lies past the file's current end
//! raises SIGBUS when touched, and SIGBUS kills the process by default. Rename-based
//! publication never does this (the mapping keeps the old inode), but a program that
//! writes the file *in place* does.
//!
//! The defence, chosen over `pread` into a buffer (which would give up zero-copy views
//! and add a copy of every byte to the warm pass):
//!
//! - Every mapping made here is entered in a process-wide registry of address ranges
//!   (lock-free, readable from a signal handler).
//! - A SIGBUS handler is installed the first time a cache is mapped (and installed
//!   again, chaining to whatever is there, if a later mapping finds that someone
//!   replaced it). For a fault inside a registered range it maps an anonymous zero page
//!   over the faulting page (`MAP_FIXED`), marks the mapping *poisoned* and returns: the
//!   access completes, reading zeros, and the reader turns the poison into an error
//!   naming the file at its next check. For any other SIGBUS (outside our mappings, or
//!   sent with `kill`) it chains to the handler that was installed before (calling it
//!   with the same `siginfo` and context when it is an `SA_SIGINFO` handler), or, when
//!   that was the default action, restores the default and re-raises, so the process
//!   dies exactly as it would have without the library.
//! - An in-place overwrite that has already rewritten a page (so no fault happens)
//!   is caught by comparing the file's first bytes (magic, version, metadata length and
//!   the header CRC, which covers token, source, creation time and the file's random
//!   nonce) with those seen at open: no writer of this library rewrites them in place,
//!   and no two files it writes share them (the nonce: two versions with equal token,
//!   source and identity, written in the same second, differ there too). `cp` writes
//!   the file from its start, so by the time a reader meets a byte of the other file,
//!   its head has changed.
//!
//! `Mapping::intact` is the check: one atomic load and a 24-byte compare, done by the
//! reader after it has checked (and before it hands out) each record, sequential or
//! random, and again by the copying read paths after they have copied a record.
//!
//! Limits: a zero-copy view already handed out may read zeros (or the new bytes) where
//! the file was cut or rewritten after it was checked; the next call on the producer
//! reports the error. A file written before nonces, overwritten by one with the same
//! head, is not told apart (see `reader.rs`). A host that installs its own SIGBUS
//! handler after the library and does not chain to the previous one takes the
//! protection away until the next cache is mapped (which installs it again).

use std::fs::File;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

use memmap2::{Advice, Mmap, MmapOptions, UncheckedAdvice};

/// How many leading bytes of the file identify its content (see the module doc).
const HEAD: usize = 24;

/// A read-only shared mapping of (a prefix of) a file, protected against SIGBUS.
pub(crate) struct Mapping {
    // Field order: `map` is unmapped after Drop::drop has left the registry.
    map: Mmap,
    slot: &'static Slot,
    head: [u8; HEAD],
    head_len: usize,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("len", &self.map.len())
            .field("intact", &self.intact())
            .finish()
    }
}

impl Mapping {
    /// Maps the first `len` bytes of `file` read-only. `len` must be non-zero.
    pub(crate) fn new(file: &File, len: usize) -> std::io::Result<Mapping> {
        install_handler()?;
        // SAFETY: the mapping is read-only and shared. Its bytes can change or vanish
        // if another program writes or truncates the file in place; a vanished page is
        // replaced by a zero page by the SIGBUS handler below (no signal kills us), and
        // readers only ever look at the bytes through bounds-checked parsing and
        // `intact()` before trusting them.
        let map = unsafe { MmapOptions::new().len(len).map(file) }?;
        let slot = Slot::claim(map.as_ptr() as usize, map.len());
        let mut m = Mapping {
            map,
            slot,
            head: [0; HEAD],
            head_len: 0,
        };
        m.head_len = m.map.len().min(HEAD);
        let head_len = m.head_len;
        m.head[..head_len].copy_from_slice(&m.map[..head_len]);
        Ok(m)
    }

    /// False once a page of the mapping was found cut from the file (SIGBUS), or when
    /// the file's first bytes differ from those it had when it was mapped.
    #[inline]
    pub(crate) fn intact(&self) -> bool {
        // The head is read first: if it faults, the poison flag is set before we look.
        let same = if self.head_len == HEAD {
            let word = |b: &[u8], i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap());
            (0..HEAD)
                .step_by(8)
                .all(|i| word(&self.map, i) == word(&self.head, i))
        } else {
            self.map[..self.head_len] == self.head[..self.head_len]
        };
        same && !self.slot.poisoned.load(Ordering::Acquire)
    }

    /// Advice only: a failure changes speed, never results.
    pub(crate) fn advise(&self, advice: Advice) {
        let _ = self.map.advise(advice);
    }

    /// True when every page of `[start, start + len)` (page-aligned `start`) is in the
    /// page cache; `pages` is scratch space (one byte a page).
    pub(crate) fn resident(&self, start: usize, len: usize, pages: &mut Vec<u8>) -> bool {
        let len = len.min(self.map.len().saturating_sub(start));
        let n = len.div_ceil(page_size());
        if n == 0 {
            return true;
        }
        pages.clear();
        pages.resize(n, 0);
        // SAFETY: `start` is a page-aligned offset inside the mapping (whose start is
        // page-aligned) and `len` bytes lie within it; `pages` has a byte for each page;
        // mincore only reads page-table state.
        let rc = unsafe {
            libc::mincore(
                self.map.as_ptr().add(start) as *mut libc::c_void,
                len,
                pages.as_mut_ptr().cast(),
            )
        };
        rc == 0 && pages.iter().all(|p| p & 1 == 1)
    }

    /// Asks that a fault which misses the page cache read the aligned 2 MiB around it
    /// as one folio, mapped by one page-table entry (`MADV_HUGEPAGE` on this mapping;
    /// transparent huge pages must be enabled for `madvise` or `always`). False where
    /// the kernel cannot; advice only, like the others.
    pub(crate) fn huge_pages(&self) -> bool {
        huge_pages_enabled() && self.map.advise(Advice::HugePage).is_ok()
    }

    /// True when the first, middle and last pages of `[start, start + len)`
    /// (page-aligned `start`) are in the page cache: a cheap look at a large range that
    /// is read or not as a whole (three one-page `mincore` calls; `pages` is scratch
    /// space, as for `resident`).
    pub(crate) fn probably_resident(&self, start: usize, len: usize, pages: &mut Vec<u8>) -> bool {
        let len = len.min(self.map.len().saturating_sub(start));
        if len == 0 {
            return true;
        }
        let page = page_size();
        let last = (len - 1) / page * page;
        [0, last / 2 / page * page, last]
            .iter()
            .all(|&o| self.resident(start + o, 1, pages))
    }

    /// Asks the kernel to read `[start, start + len)` (page-aligned `start`) into the
    /// page cache without waiting (`MADV_WILLNEED`).
    pub(crate) fn will_need(&self, start: usize, len: usize) {
        let len = len.min(self.map.len().saturating_sub(start));
        if len == 0 {
            return;
        }
        // SAFETY: advice on a range of our own mapping; it reads the file into the page
        // cache and changes nothing we can observe but speed.
        let _ = unsafe {
            libc::madvise(
                self.map.as_ptr().add(start) as *mut libc::c_void,
                len,
                libc::MADV_WILLNEED,
            )
        };
    }

    /// Drops the resident pages of `[start, start + len)` (page-aligned offsets).
    ///
    /// # Safety
    /// No reference into that range may be alive.
    pub(crate) unsafe fn dont_need(&self, start: usize, len: usize) {
        // SAFETY: per the caller; MADV_DONTNEED on a read-only mapping only drops the
        // page-table entries, later reads fault the same bytes (or a zero page) back in.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, start, len)
        };
    }
}

/// Whether transparent huge pages serve `MADV_HUGEPAGE` mappings here (read once).
fn huge_pages_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|s| s.contains("[always]") || s.contains("[madvise]"))
    })
}

/// The system's page size.
pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

impl std::ops::Deref for Mapping {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Leave the registry before `map` is unmapped (right after this returns).
        self.slot.release();
    }
}

/// Number of SIGBUS faults repaired by the handler in this process (for tests).
pub fn repaired_faults() -> usize {
    REPAIRED.load(Ordering::Relaxed)
}

static REPAIRED: AtomicUsize = AtomicUsize::new(0);

// --- The registry ------------------------------------------------------------------------

/// One registered range. `seq` is a sequence lock: odd while the owner rewrites
/// `start`/`len`, so the handler never trusts a torn pair.
struct Slot {
    claimed: AtomicBool,
    seq: AtomicUsize,
    start: AtomicUsize,
    len: AtomicUsize,
    poisoned: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // used only as an array initialiser
const FREE: Slot = Slot {
    claimed: AtomicBool::new(false),
    seq: AtomicUsize::new(0),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    poisoned: AtomicBool::new(false),
};

const CHUNK: usize = 64;

/// Slots come in chunks linked from `FIRST`; a chunk is never freed, so the handler
/// can walk the list at any time.
struct Chunk {
    slots: [Slot; CHUNK],
    next: AtomicPtr<Chunk>,
}

static FIRST: Chunk = Chunk {
    slots: [FREE; CHUNK],
    next: AtomicPtr::new(std::ptr::null_mut()),
};

impl Chunk {
    fn iter() -> impl Iterator<Item = &'static Chunk> {
        let mut at: Option<&'static Chunk> = Some(&FIRST);
        std::iter::from_fn(move || {
            let c = at?;
            let next = c.next.load(Ordering::Acquire);
            // SAFETY: chunks are leaked boxes, valid for the rest of the process.
            at = unsafe { next.as_ref() };
            Some(c)
        })
    }
}

impl Slot {
    /// Registers `[start, start + len)`, growing the registry when every slot is taken.
    fn claim(start: usize, len: usize) -> &'static Slot {
        loop {
            let mut last = &FIRST;
            for chunk in Chunk::iter() {
                last = chunk;
                for s in &chunk.slots {
                    if s.claimed
                        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        s.poisoned.store(false, Ordering::Relaxed);
                        s.publish(start, len);
                        return s;
                    }
                }
            }
            let fresh = Box::into_raw(Box::new(Chunk {
                slots: [FREE; CHUNK],
                next: AtomicPtr::new(std::ptr::null_mut()),
            }));
            if last
                .next
                .compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                // Another thread added a chunk first: use it.
                // SAFETY: `fresh` was never shared.
                drop(unsafe { Box::from_raw(fresh) });
            }
        }
    }

    fn publish(&self, start: usize, len: usize) {
        self.seq.fetch_add(1, Ordering::AcqRel); // odd: being written
        self.start.store(start, Ordering::Relaxed);
        self.len.store(len, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::Release); // even: stable
    }

    fn release(&self) {
        self.publish(0, 0);
        self.claimed.store(false, Ordering::Release);
    }

    /// Async-signal-safe: the slot whose range holds `addr`, if any.
    fn find(addr: usize) -> Option<&'static Slot> {
        for chunk in Chunk::iter() {
            for s in &chunk.slots {
                let before = s.seq.load(Ordering::Acquire);
                if before % 2 == 1 {
                    // Being registered or released: not in use by the faulting access.
                    continue;
                }
                let (start, len) = (
                    s.start.load(Ordering::Relaxed),
                    s.len.load(Ordering::Relaxed),
                );
                fence(Ordering::Acquire);
                if s.seq.load(Ordering::Relaxed) != before {
                    continue;
                }
                if len > 0 && addr >= start && addr - start < len {
                    return Some(s);
                }
            }
        }
        None
    }
}

// --- The handler -------------------------------------------------------------------------

/// The action that was in force before ours (a leaked box, never freed: the handler
/// may be reading it on another thread).
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Mutex<()> = Mutex::new(());

type InfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
type PlainHandler = extern "C" fn(libc::c_int);

/// Installs `on_sigbus` unless it is already the SIGBUS action, remembering the
/// action it replaces.
fn install_handler() -> std::io::Result<()> {
    let _g = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: sigaction with a zeroed out-struct queries the current action.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut current) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if current.sa_sigaction == on_sigbus as InfoHandler as usize {
        return Ok(());
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, Ordering::Relaxed);
    }
    PREVIOUS.store(Box::into_raw(Box::new(current)), Ordering::Release);
    // SAFETY: a fully initialised sigaction; the handler is async-signal-safe.
    let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
    ours.sa_sigaction = on_sigbus as InfoHandler as usize;
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    unsafe { libc::sigemptyset(&mut ours.sa_mask) };
    if unsafe { libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; saved and restored around our system calls.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler. si_addr is
    // meaningful only for faults the kernel raised (si_code > 0), not for kill(2).
    let fault = unsafe { info.as_ref() }
        .filter(|i| i.si_code > 0)
        .map(|i| unsafe { i.si_addr() } as usize);
    if let Some(slot) = fault.and_then(Slot::find) {
        let page = PAGE.load(Ordering::Relaxed);
        let at = fault.unwrap_or(0) & !(page - 1);
        // SAFETY: the page lies inside a live mapping of ours (registered ranges are
        // left before they are unmapped); replacing it with a zero page changes bytes
        // that nothing will trust, since the mapping is now marked poisoned.
        let r = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            slot.poisoned.store(true, Ordering::Release);
            REPAIRED.fetch_add(1, Ordering::Relaxed);
            // SAFETY: as above.
            unsafe { *libc::__errno_location() = errno };
            return;
        }
    }
    // SAFETY: `chain` only calls async-signal-safe functions and the previous handler.
    unsafe {
        *libc::__errno_location() = errno;
        chain(sig, info, ctx, fault.is_some());
    }
}

/// Hands a SIGBUS that is not ours to the action installed before us.
unsafe fn chain(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
    from_kernel: bool,
) {
    // SAFETY: PREVIOUS is null or a leaked, immutable box.
    let prev = unsafe { PREVIOUS.load(Ordering::Acquire).as_ref() };
    let action = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if action == libc::SIG_IGN && !from_kernel {
        return;
    }
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // The default action (a fault cannot be ignored: the kernel would kill us too).
        // SAFETY: signal-safe calls; the re-raised signal is delivered (and kills the
        // process) as soon as this handler returns and SIGBUS is unblocked.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut dfl.sa_mask);
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
            libc::raise(sig);
        }
        return;
    }
    let Some(p) = prev else { return };
    if p.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous action said it is an SA_SIGINFO handler.
        let f: InfoHandler = unsafe { std::mem::transmute::<usize, InfoHandler>(action) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the previous action said it is a plain handler.
        let f: PlainHandler = unsafe { std::mem::transmute::<usize, PlainHandler>(action) };
        f(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_finds_live_ranges_only() {
        let a = Slot::claim(0x10_0000, 0x2000);
        let b = Slot::claim(0x20_0000, 0x1000);
        assert!(std::ptr::eq(Slot::find(0x10_1fff).unwrap(), a));
        assert!(std::ptr::eq(Slot::find(0x20_0000).unwrap(), b));
        assert!(Slot::find(0x10_2000).is_none());
        a.release();
        assert!(Slot::find(0x10_0000).is_none());
        assert!(std::ptr::eq(Slot::find(0x20_0fff).unwrap(), b));
        b.release();
    }

    #[test]
    fn the_registry_grows_past_one_chunk() {
        let slots: Vec<_> = (0..CHUNK * 2 + 3)
            .map(|i| Slot::claim(0x1000_0000 + i * 0x10_000, 0x1000))
            .collect();
        for (i, s) in slots.iter().enumerate() {
            assert!(std::ptr::eq(
                Slot::find(0x1000_0000 + i * 0x10_000 + 5).unwrap(),
                *s
            ));
        }
        for s in slots {
            s.release();
        }
    }
}
