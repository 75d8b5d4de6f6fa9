//! What the index buys: `seek` uses it, `view_at` data is 8-aligned, and a cold
//! random read asks for its aligned cluster in one request.

use super::*;

/// With the index, `seek` (and so `skip` and a resume) lands on the record without
/// walking: a seek far past a damaged record does not trip on it.
#[test]
fn seek_uses_the_index() {
    let want = dataset(1000, 8);
    let (dir, path) = scratch_cache("seek.cache", &want);
    let mut d = std::fs::read(&path).unwrap();
    let at = frame_offset(&d, 10);
    d[at + 20] ^= 0x01; // damage record 10
    std::fs::write(&path, &d).unwrap();
    let mut r = CacheReader::open(&path).unwrap();
    r.seek(900).unwrap();
    assert_eq!(r.position(), 900);
    assert!(r.next_view().unwrap().to_owned() == want[900]);
    r.seek(1999).unwrap(); // modulo the count, as before
    assert!(r.next_view().unwrap().to_owned() == want[999]);
    assert!(
        r.next_view().unwrap().to_owned() == want[0],
        "cycles after the last"
    );
    // A file without an index (version 1) still seeks by walking, checking as it goes.
    let v1 = dir.path().join("seek-v1.cache");
    std::fs::write(
        &v1,
        version_1_file(&Metadata::new("tok", "v1 source"), &want),
    )
    .unwrap();
    let mut r = CacheReader::open(&v1).unwrap();
    r.seek(500).unwrap();
    assert!(r.next_view().unwrap().to_owned() == want[500]);
}

/// `view_at` hands out tensor data at a multiple of 8 in memory, as the sequential
/// zero-copy path does, whatever the frame's position in the file: float64 views are
/// aligned.
#[test]
fn view_at_data_is_8_aligned() {
    use harmonics_dataset::DType;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aligned.cache");
    let recs: Vec<Tensor> = (0..200usize)
        .map(|i| {
            // Header and data lengths vary with the record (its bytes match its shape).
            let mut shape: Vec<usize> = (0..1 + i % 4).map(|d| 1 + (i + d) % 3).collect();
            shape.push(1 + i % 5);
            let n: usize = shape.iter().product::<usize>();
            let data = (0..n)
                .flat_map(|j| ((i * 10 + j) as f64).to_le_bytes())
                .collect();
            Tensor::new(DType::Float64, shape, data)
        })
        .collect();
    write_cache(&path, Metadata::new("", "test"), &recs);
    let mut r = CacheReader::open(&path).unwrap();
    for i in shuffled(200, 3) {
        let t = r.view_at(i).unwrap();
        assert_eq!(t.data.as_ptr() as usize % 8, 0, "record {i} misaligned");
        assert!(t.to_owned() == recs[i as usize]);
    }
}

/// Pages of `f` in `[from, to)` that are in the page cache.
fn resident_pages(f: &std::fs::File, from: usize, to: usize) -> usize {
    use std::os::unix::io::AsRawFd;
    let page = 4096;
    let (from, to) = (from / page * page, to.div_ceil(page) * page);
    let len = to - from;
    let mut vec = vec![0u8; len / page];
    // SAFETY: a read-only shared mapping of our own file, unmapped below; mincore writes
    // one byte per page into `vec`, which holds that many.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            from as libc::off_t,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::mincore(p, len, vec.as_mut_ptr()), 0);
        libc::munmap(p, len);
    }
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

#[test]
fn a_cold_random_read_asks_for_its_aligned_cluster_in_one_request() {
    use std::os::unix::io::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cold.cache");
    let records: Vec<Tensor> = (0..2000)
        .map(|i| Tensor::from_f32(&vec![i as f32; 784]))
        .collect();
    write_cache(&path, Metadata::new("", "test"), &records);
    let f = std::fs::File::open(&path).unwrap();
    f.sync_all().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let at = frame_offset(&bytes, 1000);
    let cluster = 128 << 10;
    let (lo, hi) = (at / cluster * cluster, (at / cluster + 1) * cluster);
    drop(bytes);
    // The cluster request is asynchronous advice, and a busy device (the other tests
    // of this binary write and fsync in parallel) may let it lag or drop it: a few
    // fresh attempts, each from a cold page cache. Without clustering no attempt ever
    // sees more than the record's own 1-2 pages.
    let mut resident = 0;
    for _attempt in 0..5 {
        let mut r = CacheReader::open(&path).unwrap();
        // SAFETY: advice on our own descriptor.
        assert_eq!(
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) },
            0
        );
        if resident_pages(&f, lo, hi) > 0 {
            eprintln!("skipped: this file system keeps the pages (tmpfs?)");
            return;
        }
        let v = r.view_at(1000).unwrap().to_owned();
        assert!(v == records[1000]);
        // The record covers 1-2 pages; the cluster around it is 32 (some may still be
        // in flight). Without clustering, only the record's.
        for _ in 0..200 {
            resident = resident_pages(&f, lo, hi);
            if resident >= 16 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("{resident} of 32 pages around record 1000 resident");
}
