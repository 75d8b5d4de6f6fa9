//! Defect 4: a copying read checked the CRC over the shared mapping and then copied
//! the mapping, so a byte written into the record in between was handed over. Here a
//! second thread writes one byte of a record again and again (`pwrite`: flipped, then
//! put back) while the copying reads run: every record returned must be exact.

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use harmonics_dataset::DiskCacheProducer;

use super::*;

/// Records of 256 KiB (a copy takes long enough for the writer to land inside it).
const BIG: usize = 64 << 10;
const RECORDS: usize = 2;

/// The file offset of a byte in the middle of record 1's data.
fn byte_of_record_1(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mid = &rec_len(6, 1, BIG).data[BIG * 2..BIG * 2 + 32];
    bytes.windows(mid.len()).position(|w| w == mid).unwrap() as u64
}

/// Runs `reads(stop)` while another thread flips the byte at `at` of the file at
/// `path` and puts it back, over and over, reopening the path now and then (to follow
/// the rebuilds, which rename a new file in). Returns the number of writes.
fn with_a_byte_hammered(path: &Path, at: u64, reads: impl FnOnce()) -> usize {
    let stop = AtomicBool::new(false);
    let writes = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) else {
                    continue;
                };
                let mut b = [0u8; 1];
                f.read_at(&mut b, at).ok();
                for _ in 0..500 {
                    f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
                    f.write_all_at(&b, at).unwrap();
                }
                writes.fetch_add(1000, Ordering::Relaxed);
            }
        });
        // Stops the writer however `reads` ends (a failed assertion must not hang).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        reads();
    });
    writes.into_inner()
}

fn big_cache(dir: &Path) -> (PathBuf, u64) {
    let path = dir.join("big.cache");
    cache_of(
        Versioned::new(6, RECORDS).len(BIG).fingerprint("big"),
        &path,
    );
    let at = byte_of_record_1(&path);
    (path, at)
}

fn big_source() -> Box<Versioned> {
    Box::new(Versioned::new(6, RECORDS).len(BIG).fingerprint("big"))
}

/// `t` is exactly the record of version 6 it claims to be (the byte written lies in
/// the middle of record 1's data, far from the version and index it names).
#[track_caller]
fn assert_exact(t: &Tensor, what: &str) {
    let (_, i) = who(t);
    assert!(i < RECORDS, "{what}: index {i}");
    assert_record(t, 6, i, what);
}

#[test]
fn next_never_returns_a_record_changed_during_its_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (path, at) = big_cache(dir.path());
    let mut p = DiskCacheProducer::open_at(big_source(), path.clone(), None).unwrap();
    let mut errors = 0;
    let writes = with_a_byte_hammered(&path, at, || {
        for _ in 0..300 {
            match p.next() {
                Ok(t) => assert_exact(&t, "next()"),
                // Refused (the rebuilt file was hit again): allowed.
                Err(e) => {
                    assert!(e.is_corruption(), "{e}");
                    errors += 1;
                }
            }
        }
    });
    eprintln!("{writes} writes, {errors} reads refused");
}

#[test]
fn the_copying_c_calls_never_return_a_record_changed_during_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (path, at) = big_cache(dir.path());
    let h = handle(DiskCacheProducer::open_at(big_source(), path.clone(), None).unwrap());
    let mut errors = 0;
    let writes = with_a_byte_hammered(&path, at, || {
        for k in 0..200 {
            let got = match k % 5 {
                0 => h.next_copy(),
                1 => h.next(),
                2 => h.next_copy_to(),
                3 => h.at_copy_to(1),
                _ => h.at(1),
            };
            match got {
                Ok(t) => assert_exact(&t, "a copying C call"),
                Err(_) => errors += 1,
            }
        }
    });
    eprintln!("{writes} writes, {errors} reads refused");
}
