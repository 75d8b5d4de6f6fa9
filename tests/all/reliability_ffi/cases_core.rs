//! Null cases of the disk cache, the producer calls, foreign callbacks, CSV, tensors
//! and the wire format.

use std::ffi::c_void;
use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::disk_cache::*;
use harmonics_dataset::ffi::error::*;
use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::tensor::*;
use harmonics_dataset::ffi::{
    HarmonicsCacheOutcome, HarmonicsProducer, HarmonicsProducerCallbacks, HarmonicsStatus,
    HarmonicsTensorView,
};

use super::harness::*;

/// A `harmonics_producer_next_copy` callback that keeps nothing.
unsafe extern "C" fn copy_nothing(
    _userdata: *mut c_void,
    _view: *const HarmonicsTensorView,
) -> HarmonicsCallbackResult {
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}

/// A `harmonics_producer_next_copy_to` callback that copies the data into a buffer of
/// the thread's (userdata is not used) and reports where.
unsafe extern "C" fn copy_to_scratch(
    _userdata: *mut c_void,
    view: *const HarmonicsTensorView,
    copied: *mut *const u8,
) -> HarmonicsCallbackResult {
    thread_local!(static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
    let v = unsafe { &*view };
    let data = match v.nbytes {
        0 => &[][..],
        n => unsafe { std::slice::from_raw_parts(v.data, n) },
    };
    SCRATCH.with_borrow_mut(|b| {
        b.clear();
        b.extend_from_slice(data);
        unsafe { *copied = b.as_ptr() };
    });
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}

unsafe extern "C" fn cb_next(
    _: *mut c_void,
    _: *mut HarmonicsTensorView,
) -> HarmonicsCallbackResult {
    HarmonicsStatus::Empty as HarmonicsCallbackResult
}
unsafe extern "C" fn cb_size(_: *mut c_void, out: *mut usize) -> HarmonicsCallbackResult {
    unsafe { *out = 0 };
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}
unsafe extern "C" fn cb_write(_: *mut c_void, _: *const u8, _: usize) -> HarmonicsCallbackResult {
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}
unsafe extern "C" fn cb_read(
    _: *mut c_void,
    _: *mut u8,
    _: usize,
    n: *mut usize,
) -> HarmonicsCallbackResult {
    unsafe { *n = 0 };
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}

/// `call` on a new producer made from `cbs`, then freed.
unsafe fn with_callback_producer(
    cbs: HarmonicsProducerCallbacks,
    call: impl FnOnce(*mut HarmonicsProducer) -> HarmonicsStatus,
) -> Option<u32> {
    let mut p = null_mut();
    assert_eq!(
        harmonics_producer_from_callbacks(&cbs, null(), &mut p),
        HarmonicsStatus::Ok
    );
    let st = call(p);
    harmonics_producer_free(p);
    s(st)
}

pub fn core_cases(l: &Live) -> Vec<Case> {
    use Expect::*;
    let (csv, cache, tensor) = (l.csv, l.cache, l.tensor as *const _);
    let name = l.cache_name.as_ptr();
    let path = l.csv_path.as_ptr();
    let cbs = HarmonicsProducerCallbacks {
        userdata: null_mut(),
        next: Some(cb_next),
        size: Some(cb_size),
        free: None,
    };
    // An empty float32 tensor, shape [0]: no data bytes, a consistent record (the shape
    // [] with no data would be a scalar missing its 4 bytes, which writing refuses).
    static EMPTY_SHAPE: [usize; 1] = [0];
    let view = HarmonicsTensorView {
        dtype: 0,
        ndims: 1,
        shape: EMPTY_SHAPE.as_ptr(),
        data: null(),
        nbytes: 0,
    };
    let csv_text: &'static [u8] = b"1,2\n";
    let mut cases = unsafe {
        vec![
            case("harmonics_disk_cache_new", "base", Refused, move || {
                s(harmonics_disk_cache_new(
                    null_mut(),
                    name,
                    null(),
                    &mut null_mut(),
                ))
            }),
            case("harmonics_disk_cache_new", "name", Refused, move || {
                s(harmonics_disk_cache_new(
                    csv,
                    null(),
                    null(),
                    &mut null_mut(),
                ))
            }),
            case("harmonics_disk_cache_new", "out", Refused, move || {
                s(harmonics_disk_cache_new(csv, name, null(), null_mut()))
            }),
            case("harmonics_disk_cache_new", "token", Accepted, move || {
                let mut out = null_mut();
                let st = harmonics_disk_cache_new(csv, name, null(), &mut out);
                harmonics_producer_free(out);
                s(st)
            }),
            case(
                "harmonics_disk_cache_new",
                "token.token",
                Refused,
                move || {
                    let t = HarmonicsTokenCallback {
                        userdata: null_mut(),
                        token: None,
                        free: None,
                    };
                    s(harmonics_disk_cache_new(csv, name, &t, &mut null_mut()))
                },
            ),
            case(
                "harmonics_disk_cache_outcome",
                "cache",
                Refused,
                move || {
                    let mut o = std::mem::MaybeUninit::<HarmonicsCacheOutcome>::uninit();
                    s(harmonics_disk_cache_outcome(null(), o.as_mut_ptr()))
                },
            ),
            case("harmonics_disk_cache_outcome", "out", Refused, move || {
                s(harmonics_disk_cache_outcome(cache, null_mut()))
            }),
            case(
                "harmonics_disk_cache_refresh",
                "cache",
                Refused,
                move || s(harmonics_disk_cache_refresh(null_mut(), null_mut())),
            ),
            case("harmonics_disk_cache_refresh", "out", Accepted, move || {
                s(harmonics_disk_cache_refresh(cache, null_mut()))
            }),
            case("harmonics_callback_error", "message", Accepted, || {
                harmonics_callback_error(null());
                None
            }),
            case("harmonics_set_log_callback", "userdata", Accepted, || {
                // It removes the process's log sink: not while another test has one.
                let _log = crate::support::log_lock();
                s(harmonics_dataset::ffi::log::harmonics_set_log_callback(
                    None,
                    null_mut(),
                ))
            }),
            case(
                "harmonics_producer_from_callbacks",
                "callbacks",
                Refused,
                || {
                    s(harmonics_producer_from_callbacks(
                        null(),
                        null(),
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_producer_from_callbacks",
                "callbacks.next",
                Refused,
                move || {
                    let c = HarmonicsProducerCallbacks { next: None, ..cbs };
                    s(harmonics_producer_from_callbacks(
                        &c,
                        null(),
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_producer_from_callbacks",
                "callbacks.size",
                Refused,
                move || {
                    let c = HarmonicsProducerCallbacks { size: None, ..cbs };
                    s(harmonics_producer_from_callbacks(
                        &c,
                        null(),
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_producer_from_callbacks",
                "source",
                Accepted,
                move || {
                    let mut out = null_mut();
                    let st = harmonics_producer_from_callbacks(&cbs, null(), &mut out);
                    harmonics_producer_free(out);
                    s(st)
                },
            ),
            case(
                "harmonics_producer_from_callbacks",
                "out",
                Refused,
                move || s(harmonics_producer_from_callbacks(&cbs, null(), null_mut())),
            ),
            case("harmonics_csv_producer_new", "path", Refused, || {
                s(harmonics_csv_producer_new(null(), false, &mut null_mut()))
            }),
            case("harmonics_csv_producer_new", "out", Refused, move || {
                s(harmonics_csv_producer_new(path, false, null_mut()))
            }),
            case(
                "harmonics_csv_producer_from_memory",
                "data",
                Refused,
                || {
                    s(harmonics_csv_producer_from_memory(
                        null(),
                        4,
                        null(),
                        false,
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_csv_producer_from_memory",
                "name",
                Accepted,
                move || {
                    let mut out = null_mut();
                    let st = harmonics_csv_producer_from_memory(
                        csv_text.as_ptr(),
                        4,
                        null(),
                        false,
                        &mut out,
                    );
                    harmonics_producer_free(out);
                    s(st)
                },
            ),
            case(
                "harmonics_csv_producer_from_memory",
                "out",
                Refused,
                move || {
                    s(harmonics_csv_producer_from_memory(
                        csv_text.as_ptr(),
                        4,
                        null(),
                        false,
                        null_mut(),
                    ))
                },
            ),
            case("harmonics_producer_size", "producer", Refused, || {
                s(harmonics_producer_size(null(), &mut 0))
            }),
            case("harmonics_producer_size", "out", Refused, move || {
                s(harmonics_producer_size(csv, null_mut()))
            }),
            case(
                "harmonics_producer_next_view",
                "producer",
                Refused,
                move || {
                    let mut v = view;
                    s(harmonics_producer_next_view(null_mut(), &mut v))
                },
            ),
            case("harmonics_producer_next_view", "out", Refused, move || {
                s(harmonics_producer_next_view(cache, null_mut()))
            }),
            case("harmonics_producer_next", "producer", Refused, || {
                s(harmonics_producer_next(null_mut(), &mut null_mut()))
            }),
            case("harmonics_producer_next", "out", Refused, move || {
                s(harmonics_producer_next(cache, null_mut()))
            }),
            case("harmonics_producer_next_copy", "producer", Refused, || {
                s(harmonics_producer_next_copy(
                    null_mut(),
                    Some(copy_nothing),
                    null_mut(),
                ))
            }),
            case("harmonics_producer_next_copy", "copy", Refused, move || {
                s(harmonics_producer_next_copy(cache, None, null_mut()))
            }),
            // userdata is only handed to the callback.
            case(
                "harmonics_producer_next_copy",
                "userdata",
                Accepted,
                move || {
                    s(harmonics_producer_next_copy(
                        cache,
                        Some(copy_nothing),
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_producer_next_copy_to",
                "producer",
                Refused,
                || {
                    s(harmonics_producer_next_copy_to(
                        null_mut(),
                        Some(copy_to_scratch),
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_producer_next_copy_to",
                "copy",
                Refused,
                move || s(harmonics_producer_next_copy_to(cache, None, null_mut())),
            ),
            // userdata is only handed to the callback.
            case(
                "harmonics_producer_next_copy_to",
                "userdata",
                Accepted,
                move || {
                    s(harmonics_producer_next_copy_to(
                        cache,
                        Some(copy_to_scratch),
                        null_mut(),
                    ))
                },
            ),
            case("harmonics_producer_at_copy_to", "producer", Refused, || {
                s(harmonics_producer_at_copy_to(
                    null_mut(),
                    0,
                    Some(copy_to_scratch),
                    null_mut(),
                ))
            }),
            case(
                "harmonics_producer_at_copy_to",
                "copy",
                Refused,
                move || s(harmonics_producer_at_copy_to(cache, 0, None, null_mut())),
            ),
            // userdata is only handed to the callback.
            case(
                "harmonics_producer_at_copy_to",
                "userdata",
                Accepted,
                move || {
                    s(harmonics_producer_at_copy_to(
                        cache,
                        0,
                        Some(copy_to_scratch),
                        null_mut(),
                    ))
                },
            ),
            case("harmonics_producer_next_batch", "producer", Refused, || {
                s(harmonics_producer_next_batch(
                    null_mut(),
                    2,
                    Some(copy_nothing),
                    null_mut(),
                ))
            }),
            case(
                "harmonics_producer_next_batch",
                "copy",
                Refused,
                move || s(harmonics_producer_next_batch(cache, 2, None, null_mut())),
            ),
            // userdata is only handed to the callback.
            case(
                "harmonics_producer_next_batch",
                "userdata",
                Accepted,
                move || {
                    s(harmonics_producer_next_batch(
                        cache,
                        2,
                        Some(copy_nothing),
                        null_mut(),
                    ))
                },
            ),
            case("harmonics_producer_skip", "producer", Refused, || {
                s(harmonics_producer_skip(null_mut(), 3))
            }),
            case(
                "harmonics_producer_set_skip_callback",
                "producer",
                Refused,
                || s(harmonics_producer_set_skip_callback(null_mut(), None)),
            ),
            case(
                "harmonics_producer_set_skip_callback",
                "skip",
                Accepted,
                move || {
                    with_callback_producer(cbs, |p| harmonics_producer_set_skip_callback(p, None))
                },
            ),
            case(
                "harmonics_producer_set_fingerprint_callback",
                "producer",
                Refused,
                || {
                    s(harmonics_producer_set_fingerprint_callback(
                        null_mut(),
                        None,
                    ))
                },
            ),
            case(
                "harmonics_producer_set_fingerprint_callback",
                "fingerprint",
                Accepted,
                move || {
                    with_callback_producer(cbs, |p| {
                        harmonics_producer_set_fingerprint_callback(p, None)
                    })
                },
            ),
            case("harmonics_producer_free", "producer", Accepted, || {
                harmonics_producer_free(null_mut());
                None
            }),
            case("harmonics_tensor_new", "shape", Refused, || {
                s(harmonics_tensor_new(
                    0,
                    null(),
                    2,
                    null(),
                    0,
                    &mut null_mut(),
                ))
            }),
            case("harmonics_tensor_new", "data", Refused, || {
                s(harmonics_tensor_new(
                    0,
                    null(),
                    0,
                    null(),
                    8,
                    &mut null_mut(),
                ))
            }),
            case("harmonics_tensor_new", "out", Refused, || {
                s(harmonics_tensor_new(0, null(), 0, null(), 0, null_mut()))
            }),
            case("harmonics_tensor_view", "tensor", Refused, move || {
                let mut v = view;
                s(harmonics_tensor_view(null(), &mut v))
            }),
            case("harmonics_tensor_view", "out", Refused, move || {
                s(harmonics_tensor_view(tensor, null_mut()))
            }),
            case("harmonics_tensor_free", "tensor", Accepted, || {
                harmonics_tensor_free(null_mut());
                None
            }),
            case("harmonics_wire_write", "tensor", Refused, || {
                s(harmonics_wire_write(null(), Some(cb_write), null_mut()))
            }),
            case("harmonics_wire_write", "write", Refused, move || {
                s(harmonics_wire_write(&view, None, null_mut()))
            }),
            case("harmonics_wire_write", "userdata", Accepted, move || {
                s(harmonics_wire_write(&view, Some(cb_write), null_mut()))
            }),
            case("harmonics_wire_read", "read", Refused, || {
                s(harmonics_wire_read(None, null_mut(), &mut null_mut()))
            }),
            case("harmonics_wire_read", "userdata", Accepted, || {
                let mut out = null_mut();
                s(harmonics_wire_read(Some(cb_read), null_mut(), &mut out))
            }),
            case("harmonics_wire_read", "out", Refused, || {
                s(harmonics_wire_read(Some(cb_read), null_mut(), null_mut()))
            }),
        ]
    };
    cases.extend(text_out_cases(
        "harmonics_disk_cache_outcome_reason",
        "cache",
        |p, buf, cap, len| unsafe { harmonics_disk_cache_outcome_reason(p, buf, cap, len) },
        move || cache,
        |_| {},
    ));
    cases.extend(text_out_cases(
        "harmonics_producer_fingerprint",
        "producer",
        |p, buf, cap, len| unsafe { harmonics_producer_fingerprint(p, buf, cap, len) },
        move || csv,
        |_| {},
    ));
    cases
}
