//! Null cases of the HTTP producers (blocking and async) and their outcome calls. An
//! accepted null downloads for real from the one-record server of `Live`.

use std::ffi::c_char;
use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::http::*;
use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::{HarmonicsProducer, HarmonicsStatus};

use super::harness::*;

pub fn http_cases(l: &Live) -> Vec<Case> {
    use Expect::*;
    let csv = l.csv;
    let url = l.url.as_ptr();
    let mut cases = unsafe {
        vec![
            case("harmonics_http_outcome", "producer", Refused, move || {
                let mut o = std::mem::MaybeUninit::<HarmonicsHttpOutcome>::uninit();
                s(harmonics_http_outcome(null(), o.as_mut_ptr()))
            }),
            case("harmonics_http_outcome", "out", Refused, move || {
                s(harmonics_http_outcome(csv, null_mut()))
            }),
        ]
    };
    // The reason of a fresh download (one producer per case).
    let open = move || {
        let mut h = null_mut();
        // SAFETY: `url` is a live C string.
        let st = unsafe { harmonics_http_producer_from_url(url, null(), &mut h) };
        assert_eq!(st, HarmonicsStatus::Ok);
        h
    };
    cases.extend(text_out_cases(
        "harmonics_http_outcome_reason",
        "producer",
        |p, buf, cap, len| unsafe { harmonics_http_outcome_reason(p, buf, cap, len) },
        open,
        |h| unsafe { harmonics_producer_free(h) },
    ));
    cases.extend(constructor_cases(
        l,
        [
            "harmonics_http_producer_new",
            "harmonics_http_producer_from_url",
        ],
        |h, p, pa, o, out| unsafe { harmonics_http_producer_new(h, p, pa, o, out) },
        |u, o, out| unsafe { harmonics_http_producer_from_url(u, o, out) },
    ));
    cases.extend(constructor_cases(
        l,
        [
            "harmonics_async_http_producer_new",
            "harmonics_async_http_producer_from_url",
        ],
        |h, p, pa, o, out| unsafe { harmonics_async_http_producer_new(h, p, pa, o, out) },
        |u, o, out| unsafe { harmonics_async_http_producer_from_url(u, o, out) },
    ));
    cases
}

/// Accepted nulls of the HTTP constructors download for real: the record must arrive.
fn fetched(st: HarmonicsStatus, p: *mut HarmonicsProducer) -> Option<u32> {
    if st == HarmonicsStatus::Ok {
        let mut n = 0usize;
        // SAFETY: `p` is the live handle just created.
        unsafe {
            assert_eq!(harmonics_producer_size(p, &mut n), HarmonicsStatus::Ok);
            harmonics_producer_free(p);
        }
        assert_eq!(n, 1);
    }
    s(st)
}

type Out = *mut *mut HarmonicsProducer;

/// The null cases of one flavour's two constructors (blocking or async), named
/// `[new, from_url]`: `new(host, port, path, opts, out)` and `from_url(url, opts, out)`.
fn constructor_cases(
    l: &Live,
    [new_name, from_url_name]: [&'static str; 2],
    new: impl Fn(*const c_char, u16, *const c_char, *const HarmonicsHttpOptions, Out) -> HarmonicsStatus
        + Copy
        + 'static,
    from_url: impl Fn(*const c_char, *const HarmonicsHttpOptions, Out) -> HarmonicsStatus
        + Copy
        + 'static,
) -> Vec<Case> {
    use Expect::*;
    let url = l.url.as_ptr();
    let port = l.port;
    let host = c"127.0.0.1".as_ptr();
    let dpath = c"/data.bin".as_ptr();
    vec![
        case(new_name, "host", Refused, move || {
            s(new(null(), port, dpath, null(), &mut null_mut()))
        }),
        case(new_name, "path", Accepted, move || {
            let mut out = null_mut();
            fetched(new(host, port, null(), null(), &mut out), out)
        }),
        case(new_name, "opts", Accepted, move || {
            let mut out = null_mut();
            fetched(new(host, port, dpath, null(), &mut out), out)
        }),
        case(new_name, "out", Refused, move || {
            s(new(host, port, dpath, null(), null_mut()))
        }),
        case(from_url_name, "url", Refused, move || {
            s(from_url(null(), null(), &mut null_mut()))
        }),
        case(from_url_name, "opts", Accepted, move || {
            let mut out = null_mut();
            fetched(from_url(url, null(), &mut out), out)
        }),
        case(from_url_name, "out", Refused, move || {
            s(from_url(url, null(), null_mut()))
        }),
    ]
}
