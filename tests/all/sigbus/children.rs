//! The child roles, run in this binary re-executed by `spawn`: readers of a cache that
//! another process damages, and hosts with a SIGBUS handler of their own.

use super::*;

/// Child: reads the cache with a `CacheReader` record after record (cycling), checking
/// each record's content, until an error; prints `error: MESSAGE`.
#[test]
fn child_reader() {
    let Some((_, path)) = role() else { return };
    let mut r = CacheReader::open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = false;
    let mut i = 0usize;
    loop {
        match r.next_view() {
            Ok(t) => {
                let first = f32::from_le_bytes(t.data[..4].try_into().unwrap());
                assert_eq!(first, i as f32, "record {i} served with the wrong content");
                i = (i + 1) % RECORDS;
            }
            Err(e) => {
                say(&format!("error: {e}"));
                say(&format!("repaired faults: {}", repaired_faults()));
                return;
            }
        }
        if i == 0 && !ready {
            ready = true;
            say("ready");
        }
        assert!(Instant::now() < deadline, "no error within 60 s");
    }
}

/// Child: reads through a `DiskCacheProducer` whose source is still there, checking
/// every record, until the cache was rebuilt and one more full pass was checked.
#[test]
fn child_producer() {
    let Some((_, path)) = role() else { return };
    let mut p = DiskCacheProducer::open_at(Box::new(source(0.0)), path.clone(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = false;
    let mut after_rebuild = None;
    for n in 0usize.. {
        let t = p.next().unwrap();
        let first = t.to_f32()[0];
        assert_eq!(
            first,
            (n % RECORDS) as f32,
            "call {n} served the wrong record"
        );
        if n % RECORDS == RECORDS - 1 && !ready {
            ready = true;
            say("ready");
        }
        if let (None, CacheOutcome::Rebuilt(why)) = (after_rebuild, p.outcome()) {
            say(&format!("rebuilt: {why}"));
            after_rebuild = Some(n);
        }
        if after_rebuild.is_some_and(|at| n >= at + RECORDS) {
            say(&format!("checked {} records", n + 1));
            return;
        }
        assert!(Instant::now() < deadline, "no rebuild within 60 s");
    }
}

static HOST_CALLS: AtomicUsize = AtomicUsize::new(0);
static HOST_ADDR: AtomicUsize = AtomicUsize::new(0);
static HOST_CODE: AtomicUsize = AtomicUsize::new(0);

/// The host program's own SIGBUS handler: records what it saw and, for a fault, maps a
/// zero page over the faulting page so the access completes.
extern "C" fn host_handler(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    assert_eq!(sig, libc::SIGBUS);
    HOST_CALLS.fetch_add(1, Ordering::SeqCst);
    let info = unsafe { &*info };
    HOST_CODE.store(info.si_code as usize, Ordering::SeqCst);
    if info.si_code > 0 {
        let addr = unsafe { info.si_addr() } as usize;
        HOST_ADDR.store(addr, Ordering::SeqCst);
        unsafe {
            libc::mmap(
                (addr & !4095) as *mut libc::c_void,
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
        }
    }
}

fn install_host_handler() {
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = host_handler as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()), 0);
    }
}

/// A mapping the host made itself (not through the library) of a file it then cuts;
/// returns the address of a page past the new end.
fn foreign_cut_mapping(dir: &Path) -> *const u8 {
    let f = dir.join("foreign.bin");
    std::fs::write(&f, vec![7u8; 4 * 4096]).unwrap();
    let file = std::fs::File::open(&f).unwrap();
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4 * 4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(4096)
        .unwrap();
    unsafe { (p as *const u8).add(2 * 4096) }
}

/// Child: a host with its own SA_SIGINFO handler, installed before (`host_first`) or
/// after (`host_after`) the library's: both a raised SIGBUS and a fault in the host's
/// own mapping reach it, with their siginfo; faults in the library's mappings do not.
fn host_role(host_first: bool, path: &Path) {
    let dir = path.parent().unwrap();
    if host_first {
        install_host_handler();
    }
    let mut r = CacheReader::open(path).unwrap();
    if !host_first {
        install_host_handler(); // replaces the library's handler without chaining
        r = CacheReader::open(path).unwrap(); // the library installs itself again, chaining
    }
    r.next_view().unwrap();
    say("ready");
    unsafe { libc::raise(libc::SIGBUS) };
    assert_eq!(
        HOST_CALLS.load(Ordering::SeqCst),
        1,
        "raised SIGBUS not chained"
    );
    assert!(HOST_CODE.load(Ordering::SeqCst) as libc::c_int <= 0);
    let cut = foreign_cut_mapping(dir);
    let repaired = repaired_faults();
    let v = unsafe { std::ptr::read_volatile(cut) };
    assert_eq!(v, 0);
    assert_eq!(
        HOST_CALLS.load(Ordering::SeqCst),
        2,
        "foreign fault not chained"
    );
    assert_eq!(
        HOST_ADDR.load(Ordering::SeqCst),
        cut as usize,
        "siginfo not passed on"
    );
    assert_eq!(
        repaired_faults(),
        repaired,
        "the library claimed a fault that was not its own"
    );
    // And the library still protects its own mapping.
    std::fs::File::create(path).unwrap();
    let e = r.next_view().unwrap_err();
    assert!(e.to_string().contains("changed while being read"), "{e}");
    assert_eq!(
        HOST_CALLS.load(Ordering::SeqCst),
        2,
        "our fault went to the host"
    );
    say("chained ok");
}

#[test]
fn child_host_first() {
    let Some((_, path)) = role() else { return };
    host_role(true, &path);
}

#[test]
fn child_host_after() {
    let Some((_, path)) = role() else { return };
    host_role(false, &path);
}

/// Child: no handler of its own; a fault in its own cut mapping must kill it with
/// SIGBUS as it would without the library.
#[test]
fn child_default() {
    let Some((_, path)) = role() else { return };
    let mut r = CacheReader::open(&path).unwrap();
    r.next_view().unwrap();
    say("ready");
    let cut = foreign_cut_mapping(path.parent().unwrap());
    let v = unsafe { std::ptr::read_volatile(cut) };
    say(&format!("survived a foreign fault, read {v}"));
}
