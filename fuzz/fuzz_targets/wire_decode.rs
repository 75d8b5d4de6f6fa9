//! Arbitrary bytes into every wire decoder: no panic, and whatever decodes re-encodes
//! to exactly the bytes it came from; the slice and stream decoders agree.
#![no_main]

use harmonics_dataset::tensor::{decode_wire, parse_wire, read_wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut shape = Vec::new();
    let parsed = parse_wire(data, &mut shape);
    let decoded = decode_wire(data);
    assert_eq!(parsed.is_ok(), decoded.is_ok());
    if let Ok((t, len)) = &decoded {
        assert!(*len <= data.len());
        assert_eq!(&t.to_wire().unwrap()[..], &data[..*len]);
    }
    let mut wire = Vec::new();
    match read_wire(&mut &data[..], &mut wire) {
        Ok(Some(h)) => {
            assert_eq!(&wire[..], &data[..h.record_len()]);
            assert_eq!(decoded.unwrap().1, h.record_len());
        }
        Ok(None) => assert!(data.is_empty()),
        Err(_) => assert!(decoded.is_err()),
    }
});
