//! A cache file cut or overwritten in place by another program while a process reads
//! it must not kill that process with SIGBUS (DESIGN.md §8): the reader reports an
//! error naming the file, or serves correct records (rebuilt from the source). And a
//! SIGBUS that is not about our mappings still reaches the host's own handler, or the
//! default action.
//!
//! The readers run in child processes (this test binary re-executed with
//! `HD_SIGBUS_ROLE` set, running one `child_*` test), so a signal death shows up as
//! the child's exit status instead of taking the harness down.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harmonics_dataset::cache::{repaired_faults, CacheReader};
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Producer, Tensor, VecProducer};

const RECORDS: usize = 2000;
const ELEMS: usize = 1000; // 4 KB of data per record: the cache spans ~2000 pages
const ROLE: &str = "HD_SIGBUS_ROLE";
const PATH: &str = "HD_SIGBUS_PATH";

/// Record `i`: `ELEMS` floats, all equal to `seed + i`.
fn record(i: usize, seed: f32) -> Tensor {
    Tensor::from_f32(&vec![seed + i as f32; ELEMS])
}

fn source(seed: f32) -> VecProducer {
    VecProducer::new((0..RECORDS).map(|i| record(i, seed)).collect())
        .with_source(format!("sigbus test seed {seed}"))
}

fn build(path: &Path, seed: f32) {
    let _ = std::fs::remove_file(path);
    let p = DiskCacheProducer::open_at(Box::new(source(seed)), path.to_path_buf(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Created);
}

/// Runs `role` in a child process reading `path`; returns it once it printed "ready".
/// (The caller waits for it, in `finish`.)
#[allow(clippy::zombie_processes)]
fn spawn(role: &str, path: &Path) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("child_{role}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(PATH, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait().unwrap();
            panic!("child exited before it was ready: {status}");
        }
        // libtest may print "test child_x ... " on the same line first.
        if line.trim_end().ends_with("ready") {
            return (child, out);
        }
    }
}

/// Waits (bounded) for the child; returns its exit status and the rest of its stdout.
fn finish(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    (status, rest)
}

fn assert_survived(status: std::process::ExitStatus, out: &str) {
    assert_eq!(
        status.signal(),
        None,
        "the reader was killed by signal {:?}; it printed: {out}",
        status.signal()
    );
    assert!(status.success(), "reader failed ({status}): {out}");
}

fn say(s: &str) {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{s}").unwrap();
    o.flush().unwrap();
}

fn role() -> Option<(String, PathBuf)> {
    Some((
        std::env::var(ROLE).ok()?,
        PathBuf::from(std::env::var_os(PATH)?),
    ))
}

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

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_reader_survives_truncation_by_another_process_and_names_the_file() {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    build(&path, 0.0);
    let (child, out) = spawn("reader", &path);
    // Keep the header page: the cut is past it, where the records are.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let (status, out) = finish(child, out);
    assert_survived(status, &out);
    assert!(out.contains("error: corrupted cache file"), "{out}");
    assert!(out.contains(&path.display().to_string()), "{out}");
    assert!(out.contains("changed while being read"), "{out}");
}

#[test]
fn a_reader_survives_truncation_to_zero() {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    build(&path, 0.0);
    let (child, out) = spawn("reader", &path);
    std::fs::File::create(&path).unwrap(); // O_TRUNC, as `> train.cache` does
    let (status, out) = finish(child, out);
    assert_survived(status, &out);
    assert!(out.contains(&path.display().to_string()), "{out}");
    assert!(out.contains("changed while being read"), "{out}");
}

#[test]
fn a_reader_survives_cp_of_another_cache_over_its_file() {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    let other = dir.path().join("new.cache");
    build(&path, 0.0);
    build(&other, 1e6);
    let (child, out) = spawn("reader", &path);
    let st = Command::new("cp").arg(&other).arg(&path).status().unwrap();
    assert!(st.success());
    let (status, out) = finish(child, out);
    assert_survived(status, &out);
    assert!(out.contains(&path.display().to_string()), "{out}");
    assert!(out.contains("changed while being read"), "{out}");
}

#[test]
fn a_producer_with_its_source_rebuilds_after_truncation_and_serves_correct_records() {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    build(&path, 0.0);
    let (child, out) = spawn("producer", &path);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(8192)
        .unwrap();
    let (status, out) = finish(child, out);
    assert_survived(status, &out);
    assert!(out.contains("rebuilt: corrupted cache file"), "{out}");
    assert!(out.contains("changed while being read"), "{out}");
    assert!(out.contains("checked"), "{out}");
}

#[test]
fn in_process_truncation_is_an_error_naming_the_file_for_views_and_copies() {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    build(&path, 0.0);
    let mut r = CacheReader::open(&path).unwrap();
    for _ in 0..10 {
        r.next_view().unwrap();
    }
    let before = repaired_faults();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = r.next_view().unwrap_err();
    assert!(e.is_corruption());
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("changed while being read"), "{msg}");
    assert!(repaired_faults() > before);
    // Sticky: the mapping stays untrusted.
    assert!(r.next_view().is_err());
    assert!(r.intact().is_err());
    // A fresh open sees the file as it is now (shorter than its commit: damage).
    let e = CacheReader::open(&path).unwrap_err();
    assert!(e.to_string().contains(&path.display().to_string()));

    // The copying path of a producer whose source is gone: an error, not zeros.
    build(&path, 0.0);
    struct Gone;
    impl Producer for Gone {
        fn next_view(&mut self) -> harmonics_dataset::Result<harmonics_dataset::TensorRef<'_>> {
            Err(harmonics_dataset::Error::Foreign("source gone".into()))
        }
        fn size(&mut self) -> harmonics_dataset::Result<usize> {
            Ok(RECORDS)
        }
        fn source(&self) -> String {
            "sigbus test seed 0".into()
        }
    }
    let mut p = DiskCacheProducer::open_at(Box::new(Gone), path.clone(), None).unwrap();
    assert_eq!(p.next().unwrap().to_f32()[0], 0.0);
    std::fs::File::create(&path).unwrap();
    let msg = p.next().unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("changed while being read"), "{msg}");
}

// --- Chaining: signals that are not about our mappings ----------------------------------

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

#[test]
fn a_host_sigbus_handler_installed_before_the_library_still_gets_its_signals() {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    build(&path, 0.0);
    let (child, out) = spawn("host_first", &path);
    let (status, out) = finish(child, out);
    assert_survived(status, &out);
    assert!(out.contains("chained ok"), "{out}");
}

#[test]
fn a_host_sigbus_handler_installed_after_the_library_still_gets_its_signals() {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    build(&path, 0.0);
    let (child, out) = spawn("host_after", &path);
    let (status, out) = finish(child, out);
    assert_survived(status, &out);
    assert!(out.contains("chained ok"), "{out}");
}

#[test]
fn a_fault_outside_the_library_mappings_keeps_the_default_action() {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    build(&path, 0.0);
    let (child, out) = spawn("default", &path);
    let (status, out) = finish(child, out);
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}: {out}");
    assert!(!out.contains("survived"), "{out}");
}
