//! Null cases of the HTTP producers (blocking and async) and their outcome calls. An
//! accepted null downloads for real from the one-record server of `Live`.

use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::http::*;
use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::{HarmonicsProducer, HarmonicsStatus};

use crate::harness::*;

pub fn http_cases(l: &Live) -> Vec<Case> {
    use Expect::*;
    let csv = l.csv;
    let url = l.url.as_ptr();
    let port = l.port;
    let host = c"127.0.0.1".as_ptr();
    let dpath = c"/data.bin".as_ptr();
    // Accepted nulls of the HTTP constructors download for real: the record must arrive.
    let fetched = |st: HarmonicsStatus, p: *mut HarmonicsProducer| {
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
    };
    let mut cases = unsafe {
        vec![
            case("harmonics_http_outcome", "producer", Refused, move || {
                let mut o = std::mem::MaybeUninit::<HarmonicsHttpOutcome>::uninit();
                s(harmonics_http_outcome(null(), o.as_mut_ptr()))
            }),
            case("harmonics_http_outcome", "out", Refused, move || {
                s(harmonics_http_outcome(csv, null_mut()))
            }),
            case("harmonics_http_producer_new", "host", Refused, move || {
                s(harmonics_http_producer_new(
                    null(),
                    port,
                    dpath,
                    null(),
                    &mut null_mut(),
                ))
            }),
            case("harmonics_http_producer_new", "path", Accepted, move || {
                let mut out = null_mut();
                fetched(
                    harmonics_http_producer_new(host, port, null(), null(), &mut out),
                    out,
                )
            }),
            case("harmonics_http_producer_new", "opts", Accepted, move || {
                let mut out = null_mut();
                fetched(
                    harmonics_http_producer_new(host, port, dpath, null(), &mut out),
                    out,
                )
            }),
            case("harmonics_http_producer_new", "out", Refused, move || {
                s(harmonics_http_producer_new(
                    host,
                    port,
                    dpath,
                    null(),
                    null_mut(),
                ))
            }),
            case(
                "harmonics_http_producer_from_url",
                "url",
                Refused,
                move || {
                    s(harmonics_http_producer_from_url(
                        null(),
                        null(),
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_http_producer_from_url",
                "opts",
                Accepted,
                move || {
                    let mut out = null_mut();
                    fetched(harmonics_http_producer_from_url(url, null(), &mut out), out)
                },
            ),
            case(
                "harmonics_http_producer_from_url",
                "out",
                Refused,
                move || s(harmonics_http_producer_from_url(url, null(), null_mut())),
            ),
            case(
                "harmonics_async_http_producer_new",
                "host",
                Refused,
                move || {
                    s(harmonics_async_http_producer_new(
                        null(),
                        port,
                        dpath,
                        null(),
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_async_http_producer_new",
                "path",
                Accepted,
                move || {
                    let mut out = null_mut();
                    fetched(
                        harmonics_async_http_producer_new(host, port, null(), null(), &mut out),
                        out,
                    )
                },
            ),
            case(
                "harmonics_async_http_producer_new",
                "opts",
                Accepted,
                move || {
                    let mut out = null_mut();
                    fetched(
                        harmonics_async_http_producer_new(host, port, dpath, null(), &mut out),
                        out,
                    )
                },
            ),
            case(
                "harmonics_async_http_producer_new",
                "out",
                Refused,
                move || {
                    s(harmonics_async_http_producer_new(
                        host,
                        port,
                        dpath,
                        null(),
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_async_http_producer_from_url",
                "url",
                Refused,
                move || {
                    s(harmonics_async_http_producer_from_url(
                        null(),
                        null(),
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_async_http_producer_from_url",
                "opts",
                Accepted,
                move || {
                    let mut out = null_mut();
                    fetched(
                        harmonics_async_http_producer_from_url(url, null(), &mut out),
                        out,
                    )
                },
            ),
            case(
                "harmonics_async_http_producer_from_url",
                "out",
                Refused,
                move || {
                    s(harmonics_async_http_producer_from_url(
                        url,
                        null(),
                        null_mut(),
                    ))
                },
            ),
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
    cases
}
