//! Arbitrary files into `CacheReader`: no panic, no read outside the mapping, and
//! every record it serves passes its own checks. The first input byte picks the mode:
//! even = the bytes are the whole file; odd = the bytes follow a valid header (with a
//! commit claiming the rest), so the fuzzer reaches the framing and CRC checks.
#![no_main]

use harmonics_dataset::cache::{CacheReader, Commit, Header, Metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let records = u64::from(rest.first().copied().unwrap_or(0) % 8);
        let body = rest.get(1..).unwrap_or(&[]);
        let commit = Commit {
            seq: 1,
            records,
            data_len: body.len() as u64,
        };
        let mut f = Header::encode(&Metadata::new("tok", "fuzz"), commit);
        f.extend_from_slice(body);
        f
    };
    let path = std::env::temp_dir().join(format!("hmn-fuzz-{}.cache", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    if let Ok(mut r) = CacheReader::open(&path) {
        let n = r.len().min(4096);
        for _ in 0..2 * n {
            match r.next_view() {
                Ok(t) => assert!(t.shape.len() <= harmonics_dataset::tensor::MAX_NDIMS),
                Err(e) => {
                    assert!(e.is_corruption() || matches!(e, harmonics_dataset::Error::Empty(_)));
                    break;
                }
            }
        }
        let _ = r.verify(|_, _| {});
    }
    let _ = std::fs::remove_file(&path);
});
