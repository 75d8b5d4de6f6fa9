//! Views served while following a download are 8-byte aligned (Rust and C view).

use super::*;

/// Records whose wire headers have different lengths (1-D, 2-D, 3-D), of 8-byte
/// elements, so that every data offset modulo 8 differs.
fn mixed_records(n: usize) -> Vec<Tensor> {
    (0..n)
        .map(|i| {
            let shape = match i % 3 {
                0 => vec![3],
                1 => vec![2, 3],
                _ => vec![1, 2, 2],
            };
            let count: usize = shape.iter().product();
            let data: Vec<u8> = (0..count)
                .flat_map(|j| ((i * 100 + j) as f64).to_le_bytes())
                .collect();
            Tensor::new(DType::Float64, shape, data)
        })
        .collect()
}

/// Sends the first `first` records, then holds the rest back until `release`.
fn held_back(records: &[Tensor], first: usize, release: Arc<AtomicBool>) -> TestServer {
    let head = wire_body(&records[..first]);
    let rest = wire_body(&records[first..]);
    TestServer::start(move |c| {
        c.head("200 OK", head.len() + rest.len(), &[]);
        let _ = c.stream.write_all(&head);
        let _ = c.stream.flush();
        while !release.load(Ordering::Relaxed) {
            if !c.sleep(Duration::from_millis(5)) {
                return;
            }
        }
        let _ = c.stream.write_all(&rest);
    })
}

#[test]
fn views_served_while_following_are_8_byte_aligned() {
    let recs = mixed_records(30);
    let release = Arc::new(AtomicBool::new(false));
    let server = held_back(&recs, 9, release.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        AsyncHttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache"))).unwrap();
    // The rest is held back: these 9 come from the growing temp file.
    for (i, want) in recs[..9].iter().enumerate() {
        let v = p.next_view().unwrap();
        assert_eq!(
            v.data.as_ptr() as usize % 8,
            0,
            "record {i} while following"
        );
        assert_eq!((v.shape, v.data), (&want.shape[..], &want.data[..]));
    }
    release.store(true, Ordering::Relaxed);
    for (i, want) in recs.iter().enumerate().skip(9) {
        let v = p.next_view().unwrap();
        assert_eq!(v.data.as_ptr() as usize % 8, 0, "record {i}");
        assert_eq!((v.shape, v.data), (&want.shape[..], &want.data[..]));
    }
}

#[test]
fn c_views_served_while_following_are_8_byte_aligned() {
    use harmonics_dataset::ffi::http::*;
    use harmonics_dataset::ffi::producer::*;
    use harmonics_dataset::ffi::{HarmonicsProducer, HarmonicsStatus, HarmonicsTensorView};
    let recs = mixed_records(12);
    let release = Arc::new(AtomicBool::new(false));
    let server = held_back(&recs, 6, release.clone());
    let url = std::ffi::CString::new(server.url("/d")).unwrap();
    let mut out: *mut HarmonicsProducer = std::ptr::null_mut();
    // SAFETY: valid C string; null options mean the defaults (no persistent cache).
    let status =
        unsafe { harmonics_async_http_producer_from_url(url.as_ptr(), std::ptr::null(), &mut out) };
    assert_eq!(
        status as u32,
        HarmonicsStatus::Ok as u32,
        "{}",
        last_error()
    );
    for (i, want) in recs.iter().enumerate() {
        if i == 6 {
            release.store(true, Ordering::Relaxed);
        }
        let mut v = std::mem::MaybeUninit::<HarmonicsTensorView>::uninit();
        // SAFETY: a live handle and a writable view.
        let st = unsafe { harmonics_producer_next_view(out, v.as_mut_ptr()) };
        assert_eq!(st as u32, HarmonicsStatus::Ok as u32, "{}", last_error());
        // SAFETY: written by the successful call.
        let v = unsafe { v.assume_init() };
        assert_eq!(v.data as usize % 8, 0, "C view of record {i}");
        // SAFETY: the view is valid until the next call on the handle.
        let data = unsafe { std::slice::from_raw_parts(v.data, v.nbytes) };
        assert_eq!(data, &want.data[..], "record {i}");
    }
    // SAFETY: the handle from the constructor, freed once.
    unsafe { harmonics_producer_free(out) };
}
