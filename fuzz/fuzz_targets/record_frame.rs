//! Arbitrary bytes into the one record-frame check (`cache::check_record_frame`, which
//! every reader of frames calls): no panic (no read out of bounds), and a frame it
//! accepts lies inside the bytes, its CRC holds over its wire bytes, and its record is
//! exactly as long as the frame says and re-encodes to those bytes.
#![no_main]

use harmonics_dataset::cache::check_record_frame;
use harmonics_dataset::tensor::decode_wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut shape = Vec::new();
    if let Ok(f) = check_record_frame(data, &mut shape) {
        assert!(f.wire_at <= f.frame_len() && f.frame_len() <= data.len());
        let wire = &data[f.wire_at..f.frame_len()];
        assert_eq!(crc32fast::hash(wire), f.crc);
        assert_eq!(f.wire.record_len(), wire.len());
        let (t, len) = decode_wire(wire).expect("an accepted record decodes");
        assert_eq!(len, wire.len());
        assert_eq!((t.dtype, &t.shape[..]), (f.wire.dtype, &shape[..]));
        assert_eq!(&t.to_wire().unwrap()[..], wire);
    }
});
