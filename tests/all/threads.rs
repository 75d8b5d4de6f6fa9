//! One producer handle shared by threads through the C copying call
//! `harmonics_producer_next_copy` (what the C++ `next()` uses): every record arrives
//! whole, each exactly once per epoch; a failing copy callback is an error with its
//! message.

use std::ffi::{c_void, CStr};

use harmonics_dataset::ffi::error::{
    harmonics_callback_error, harmonics_last_error_message, HarmonicsCallbackResult,
    HarmonicsStatus,
};
use harmonics_dataset::ffi::producer::{
    harmonics_producer_free, harmonics_producer_next_copy, producer_into_handle, HarmonicsProducer,
};
use harmonics_dataset::ffi::tensor::HarmonicsTensorView;
use harmonics_dataset::{DType, DiskCacheProducer, Tensor, VecProducer};

const N: usize = 300;

fn shape_of(i: usize) -> Vec<usize> {
    (0..1 + i % 3).map(|d| 1 + (i + d) % 4).collect()
}

fn record(i: usize) -> Tensor {
    let n: usize = shape_of(i).iter().product();
    let data = (0..n).flat_map(|_| (i as u32).to_le_bytes()).collect();
    Tensor::new(DType::Int32, shape_of(i), data)
}

/// Copies the record into the `Vec<(Vec<usize>, Vec<u8>)>` at `userdata`.
unsafe extern "C" fn keep(
    userdata: *mut c_void,
    v: *const HarmonicsTensorView,
) -> HarmonicsCallbackResult {
    let out = unsafe { &mut *(userdata as *mut Vec<(Vec<usize>, Vec<u8>)>) };
    let v = unsafe { &*v };
    let shape = unsafe { std::slice::from_raw_parts(v.shape, v.ndims) }.to_vec();
    let data = unsafe { std::slice::from_raw_parts(v.data, v.nbytes) }.to_vec();
    out.push((shape, data));
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}

unsafe extern "C" fn refuse(
    _: *mut c_void,
    _: *const HarmonicsTensorView,
) -> HarmonicsCallbackResult {
    harmonics_callback_error(c"no room for this record".as_ptr());
    HarmonicsStatus::Foreign as HarmonicsCallbackResult
}

struct Handle(*mut HarmonicsProducer);
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

#[test]
fn four_threads_share_one_handle_through_the_copying_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("threads.cache");
    let p = DiskCacheProducer::open_at(
        Box::new(VecProducer::new((0..N).map(record).collect())),
        path,
        None,
    )
    .unwrap();
    let h = Handle(producer_into_handle(Box::new(p)));
    let per_thread = 3 * N; // 4 threads: 12 epochs in all
    let got: Vec<Vec<(Vec<usize>, Vec<u8>)>> = std::thread::scope(|s| {
        let h = &h;
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(move || {
                    let mut out: Vec<(Vec<usize>, Vec<u8>)> = Vec::new();
                    for _ in 0..per_thread {
                        let st = unsafe {
                            harmonics_producer_next_copy(
                                h.0,
                                Some(keep),
                                &mut out as *mut _ as *mut c_void,
                            )
                        };
                        assert_eq!(st, HarmonicsStatus::Ok);
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut count = vec![0usize; N];
    for (shape, data) in got.into_iter().flatten() {
        let i = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        let want = record(i);
        assert_eq!(shape, want.shape, "record {i} with another record's shape");
        assert_eq!(data, want.data, "record {i} with another record's data");
        count[i] += 1;
    }
    assert!(
        count.iter().all(|&c| c == 12),
        "records skipped or repeated: {count:?}"
    );

    let st = unsafe { harmonics_producer_next_copy(h.0, Some(refuse), std::ptr::null_mut()) };
    assert_eq!(st, HarmonicsStatus::Foreign);
    let msg = unsafe { CStr::from_ptr(harmonics_last_error_message()) }
        .to_string_lossy()
        .into_owned();
    assert!(msg.contains("no room for this record"), "{msg}");
    unsafe { harmonics_producer_free(h.0) };
}
