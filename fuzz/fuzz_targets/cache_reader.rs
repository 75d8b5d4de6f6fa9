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
        // The second byte names the index frame's offset in the body (0: none).
        let index_in_body = u64::from(rest.get(1).copied().unwrap_or(0));
        let body = rest.get(2..).unwrap_or(&[]);
        let start = Header::encode(&Metadata::new("tok", "fuzz"), Commit::default()).len() as u64;
        let commit = Commit {
            seq: 1,
            records,
            data_len: body.len() as u64,
            index_at: if index_in_body == 0 { 0 } else { start + index_in_body - 1 },
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
        for i in (0..=n).rev() {
            if let Err(e) = r.view_at(i) {
                assert!(
                    e.is_corruption()
                        || (i == r.len() && matches!(e, harmonics_dataset::Error::IndexOutOfRange { .. }))
                );
            }
        }
        let _ = r.verify(|_, _| {});
    }
    let _ = std::fs::remove_file(&path);
});
