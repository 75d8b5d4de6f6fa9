//! The C boundary under misuse. The test reads include/harmonics_dataset.h, lists every
//! exported `harmonics_*` function and its pointer parameters, and fails if any pointer
//! parameter has no null case below: a null where the contract forbids it must give
//! HARMONICS_STATUS_NULL_ARGUMENT and a last-error message naming the argument; a null
//! where the contract allows it must be accepted. Also: a handle of the wrong kind, and
//! a Rust panic inside a foreign-producer callback chain, become error statuses.

mod cases_core;
mod cases_http;
mod cases_store;
mod cases_training;
mod harness;

use std::collections::BTreeSet;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::disk_cache::*;
use harmonics_dataset::ffi::error::*;
use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::tensor::*;
use harmonics_dataset::ffi::{
    HarmonicsCacheOutcome, HarmonicsProducer, HarmonicsProducerCallbacks, HarmonicsStatus,
    HarmonicsTensorView,
};
use harmonics_dataset::{Producer, Result, TensorRef};

use harness::*;

#[test]
fn every_exported_function_survives_null_pointers() {
    let funcs = header_functions();
    assert!(funcs.len() >= 19, "header parse found only {funcs:?}");
    let l = live();
    let mut cases = cases_core::core_cases(&l);
    cases.extend(cases_http::http_cases(&l));
    cases.extend(cases_training::training_order_cases());
    cases.extend(cases_store::maintenance_cases(&l));
    cases.extend(cases_store::many_nodes_cases(&l));
    cases.extend(cases_store::streaming_cases(&l));
    let covered: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| (c.func.to_string(), c.param.to_string()))
        .collect();
    let mut missing = Vec::new();
    for (f, ptrs) in &funcs {
        for p in ptrs {
            if !covered.contains(&(f.clone(), p.clone())) {
                missing.push(format!("{f}({p})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "pointer parameters without a null case: {missing:?}"
    );
    for c in &cases {
        assert!(
            funcs.contains_key(c.func),
            "{} is not in the header (stale case)",
            c.func
        );
    }

    let (mut refused, mut accepted) = (0, 0);
    for c in &cases {
        unsafe { harmonics_callback_error(null()) };
        let st = (c.call)();
        match c.expect {
            Expect::Refused => {
                assert_eq!(
                    st,
                    Some(NULL_ARG),
                    "{}({}) null: status {st:?}",
                    c.func,
                    c.param
                );
                let msg = last_error();
                let key = c.param.rsplit('.').next().unwrap();
                assert!(
                    msg.contains(key),
                    "{}({}) null: message {msg:?} does not name the argument",
                    c.func,
                    c.param
                );
                refused += 1;
            }
            Expect::Accepted => {
                assert!(
                    st.is_none() || st == Some(OK),
                    "{}({}) null is allowed but failed: {st:?} {}",
                    c.func,
                    c.param,
                    last_error()
                );
                accepted += 1;
            }
        }
    }
    // Functions with no pointer parameter still answer sanely.
    assert!(!harmonics_last_error_message().is_null());
    let name = unsafe { CStr::from_ptr(harmonics_status_name(NULL_ARG)) };
    assert_eq!(name.to_str().unwrap(), "null argument");
    let unknown = unsafe { CStr::from_ptr(harmonics_status_name(12345)) };
    assert!(!unknown.to_bytes().is_empty());
    println!(
        "C ABI: {} functions in the header, {} pointer parameters; {refused} null cases refused with NULL_ARGUMENT, {accepted} accepted as documented",
        funcs.len(),
        funcs.values().map(Vec::len).sum::<usize>()
    );
    unsafe {
        harmonics_producer_free(l.cache);
        harmonics_producer_free(l.csv);
        harmonics_tensor_free(l.tensor);
    }
}

#[test]
fn a_handle_of_the_wrong_kind_is_an_error_not_a_crash() {
    let l = live();
    let mut o = std::mem::MaybeUninit::<HarmonicsCacheOutcome>::uninit();
    unsafe {
        let st = harmonics_disk_cache_outcome(l.csv, o.as_mut_ptr());
        assert_eq!(st, HarmonicsStatus::InvalidArgument);
        assert!(
            last_error().contains("not a disk cache"),
            "{}",
            last_error()
        );
        let st = harmonics_disk_cache_refresh(l.csv, null_mut());
        assert_eq!(st, HarmonicsStatus::InvalidArgument);
        // A bad dtype code and a non-UTF-8 name are refused too.
        let st = harmonics_tensor_new(9, null(), 0, null(), 0, &mut null_mut());
        assert_eq!(st, HarmonicsStatus::InvalidArgument);
        assert!(last_error().contains('9'));
        let bad = b"\xff\xfe\0";
        let st = harmonics_disk_cache_new(
            l.csv,
            bad.as_ptr() as *const c_char,
            null(),
            &mut null_mut(),
        );
        assert_eq!(st, HarmonicsStatus::InvalidArgument);
        assert!(last_error().contains("UTF-8"));
        harmonics_producer_free(l.cache);
        harmonics_producer_free(l.csv);
        harmonics_tensor_free(l.tensor);
    }
}

/// A Rust producer that panics on its third record.
struct Panicky {
    n: usize,
    data: [u8; 4],
}

impl Producer for Panicky {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.n += 1;
        if self.n == 3 {
            panic!("boom in record {}", self.n - 1);
        }
        Ok(TensorRef {
            dtype: harmonics_dataset::DType::UInt8,
            shape: &[4],
            data: &self.data,
        })
    }
    fn size(&mut self) -> Result<usize> {
        Ok(5)
    }
    fn source(&self) -> String {
        "panicky".into()
    }
}

/// Foreign `next` (what C/C++ code does): pulls from another handle; on failure hands
/// the library's message back as the callback's error.
unsafe extern "C" fn relay_next(
    ud: *mut c_void,
    out: *mut HarmonicsTensorView,
) -> HarmonicsCallbackResult {
    let st = unsafe { harmonics_producer_next_view(ud as *mut HarmonicsProducer, out) };
    if st != HarmonicsStatus::Ok {
        unsafe { harmonics_callback_error(harmonics_last_error_message()) };
    }
    st as HarmonicsCallbackResult
}
unsafe extern "C" fn relay_size(ud: *mut c_void, out: *mut usize) -> HarmonicsCallbackResult {
    unsafe {
        harmonics_producer_size(ud as *const HarmonicsProducer, out) as HarmonicsCallbackResult
    }
}

#[test]
fn a_rust_panic_inside_a_foreign_producer_chain_becomes_an_error_status() {
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::CString::new(dir.path().join("p.cache").to_str().unwrap()).unwrap();
    let name2 = std::ffi::CString::new(dir.path().join("q.cache").to_str().unwrap()).unwrap();
    unsafe {
        // Direct: disk cache over a Rust producer that panics mid-population.
        let inner = producer_into_handle(Box::new(Panicky { n: 0, data: [1; 4] }));
        let mut out = null_mut();
        let st = harmonics_disk_cache_new(inner, name.as_ptr(), null(), &mut out);
        assert_eq!(st, HarmonicsStatus::Panic);
        assert!(
            last_error().contains("boom in record 2"),
            "{}",
            last_error()
        );
        assert!(out.is_null());
        // The poisoned producer stays an error of its own, never a crash.
        let st = harmonics_producer_size(inner, &mut 0);
        assert_eq!(st, HarmonicsStatus::Poisoned, "{}", last_error());
        assert!(
            last_error().contains("unusable after an earlier internal error"),
            "{}",
            last_error()
        );
        harmonics_producer_free(inner);

        // Chain: cache -> foreign callbacks (as C++ would write them) -> Rust producer
        // that panics. The panic is caught at the inner boundary, travels back through
        // the callback as a status + message, and out of the outer call.
        let inner = producer_into_handle(Box::new(Panicky { n: 0, data: [2; 4] }));
        let cbs = HarmonicsProducerCallbacks {
            userdata: inner as *mut c_void,
            next: Some(relay_next),
            size: Some(relay_size),
            free: None,
        };
        let mut relay = null_mut();
        assert_eq!(
            harmonics_producer_from_callbacks(&cbs, c"relay".as_ptr(), &mut relay),
            HarmonicsStatus::Ok
        );
        let st = harmonics_disk_cache_new(relay, name2.as_ptr(), null(), &mut out);
        assert_eq!(st, HarmonicsStatus::Foreign);
        assert!(
            last_error().contains("boom in record 2"),
            "{}",
            last_error()
        );
        assert!(out.is_null());
        // No cache file was published from the failed population.
        assert!(!dir.path().join("q.cache").exists());
        harmonics_producer_free(relay);
        harmonics_producer_free(inner);
    }
    println!("panics in the callback chain: 2 caught, reported as PANIC and FOREIGN statuses");
}
