//! Null cases of the store maintenance calls, publishing and the partial (many-node)
//! HTTP producer.

use std::ffi::c_char;
use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::HarmonicsStatus;

use super::harness::*;

/// The store maintenance calls (`harmonics_cache_*`). Nothing is removed: every
/// refused null is checked before any work, and the cache `l.cache_name` stays.
pub fn maintenance_cases(l: &Live) -> Vec<Case> {
    use harmonics_dataset::ffi::maintenance::*;
    use Expect::*;
    let name = l.cache_name.as_ptr();
    let dir_c = std::ffi::CString::new(l._dir.path().to_str().unwrap()).unwrap();
    let dir: *const c_char = Box::leak(dir_c.into_boxed_c_str()).as_ptr();
    let list = |dir: *const c_char| {
        let mut out = null_mut();
        assert_eq!(
            unsafe { harmonics_cache_list(dir, &mut out) },
            HarmonicsStatus::Ok
        );
        out
    };
    unsafe {
        vec![
            case("harmonics_cache_list", "dir", Accepted, move || {
                // The default cache directory, read only (possibly missing: empty).
                let l = list(null());
                harmonics_cache_list_free(l);
                s(HarmonicsStatus::Ok)
            }),
            case("harmonics_cache_list", "out", Refused, move || {
                s(harmonics_cache_list(dir, null_mut()))
            }),
            case("harmonics_cache_list_len", "list", Refused, || {
                s(harmonics_cache_list_len(null(), &mut 0))
            }),
            case("harmonics_cache_list_len", "out", Refused, move || {
                let l = list(dir);
                let st = harmonics_cache_list_len(l, null_mut());
                harmonics_cache_list_free(l);
                s(st)
            }),
            case("harmonics_cache_list_get", "list", Refused, || {
                let mut e = std::mem::MaybeUninit::<HarmonicsCacheEntry>::uninit();
                s(harmonics_cache_list_get(null(), 0, e.as_mut_ptr()))
            }),
            case("harmonics_cache_list_get", "out", Refused, move || {
                let l = list(dir);
                let st = harmonics_cache_list_get(l, 0, null_mut());
                harmonics_cache_list_free(l);
                s(st)
            }),
            case("harmonics_cache_list_free", "list", Accepted, || {
                harmonics_cache_list_free(null_mut());
                None
            }),
            case("harmonics_cache_verify", "name", Refused, || {
                s(harmonics_cache_verify(null(), &mut 0))
            }),
            case(
                "harmonics_cache_verify",
                "out_records",
                Refused,
                move || s(harmonics_cache_verify(name, null_mut())),
            ),
            case("harmonics_cache_remove", "name", Refused, || {
                s(harmonics_cache_remove(null(), &mut false))
            }),
            case(
                "harmonics_cache_remove",
                "out_removed",
                Refused,
                move || s(harmonics_cache_remove(name, null_mut())),
            ),
            case("harmonics_cache_clear", "dir", Refused, || {
                let mut r = HarmonicsClearReport::default();
                s(harmonics_cache_clear(null(), false, &mut r))
            }),
            case("harmonics_cache_clear", "out", Refused, move || {
                s(harmonics_cache_clear(dir, false, null_mut()))
            }),
            case("harmonics_cache_prune", "dir", Refused, || {
                let mut r = HarmonicsPruneReport::default();
                s(harmonics_cache_prune(null(), 0, &mut r))
            }),
            case("harmonics_cache_prune", "out", Refused, move || {
                s(harmonics_cache_prune(dir, 0, null_mut()))
            }),
            case(
                "harmonics_cache_verify",
                "(after the cases)",
                Accepted,
                move || {
                    // The refused calls above did no work: the cache is still there, intact.
                    let mut n = 0;
                    let st = harmonics_cache_verify(name, &mut n);
                    assert_eq!(n, 3, "{}", last_error());
                    s(st)
                },
            ),
        ]
    }
}

/// `harmonics_cache_publish` and `harmonics_partial_http_producer_new` (src/ffi/publish.rs,
/// src/ffi/partial.rs).
pub fn many_nodes_cases(l: &Live) -> Vec<Case> {
    use harmonics_dataset::ffi::http::{harmonics_http_options_default, HarmonicsHttpOptions};
    use harmonics_dataset::ffi::partial::harmonics_partial_http_producer_new;
    use harmonics_dataset::ffi::publish::harmonics_cache_publish;
    use harmonics_dataset::ffi::sampler::{
        harmonics_sampler_options_default, HarmonicsSamplerOptions,
    };
    use Expect::*;
    let name = l.cache_name.as_ptr();
    let www = std::ffi::CString::new(l._dir.path().join("www").to_str().unwrap()).unwrap();
    let dest: *const c_char = Box::leak(www.into_boxed_c_str()).as_ptr();
    let url: *const c_char = c"http://127.0.0.1:9/x.cache".as_ptr();
    let sampler: &'static HarmonicsSamplerOptions =
        Box::leak(Box::new(harmonics_sampler_options_default()));
    let opts: &'static HarmonicsHttpOptions = Box::leak(Box::new({
        let mut o = harmonics_http_options_default();
        o.cache_path = c"part.cache".as_ptr();
        o
    }));
    let ranks: &'static [u64] = &[0];
    unsafe {
        vec![
            case(
                "harmonics_cache_publish",
                "name_or_path",
                Refused,
                move || {
                    s(harmonics_cache_publish(
                        null(),
                        dest,
                        null_mut(),
                        0,
                        null_mut(),
                    ))
                },
            ),
            case("harmonics_cache_publish", "dest", Refused, move || {
                s(harmonics_cache_publish(
                    name,
                    null(),
                    null_mut(),
                    0,
                    null_mut(),
                ))
            }),
            case("harmonics_cache_publish", "json", Accepted, move || {
                s(harmonics_cache_publish(name, dest, null_mut(), 0, &mut 0))
            }),
            case("harmonics_cache_publish", "len", Accepted, move || {
                let mut buf = [0 as c_char; 4096];
                s(harmonics_cache_publish(
                    name,
                    dest,
                    buf.as_mut_ptr(),
                    buf.len(),
                    null_mut(),
                ))
            }),
            case(
                "harmonics_partial_http_producer_new",
                "url",
                Refused,
                move || {
                    let mut out = null_mut();
                    s(harmonics_partial_http_producer_new(
                        null(),
                        sampler,
                        ranks.as_ptr(),
                        1,
                        0,
                        opts,
                        &mut out,
                    ))
                },
            ),
            case(
                "harmonics_partial_http_producer_new",
                "sampler",
                Refused,
                move || {
                    let mut out = null_mut();
                    s(harmonics_partial_http_producer_new(
                        url,
                        null(),
                        ranks.as_ptr(),
                        1,
                        0,
                        opts,
                        &mut out,
                    ))
                },
            ),
            case(
                "harmonics_partial_http_producer_new",
                "ranks",
                Refused,
                move || {
                    let mut out = null_mut();
                    s(harmonics_partial_http_producer_new(
                        url,
                        sampler,
                        null(),
                        1,
                        0,
                        opts,
                        &mut out,
                    ))
                },
            ),
            case(
                "harmonics_partial_http_producer_new",
                "opts",
                Refused,
                move || {
                    let mut out = null_mut();
                    s(harmonics_partial_http_producer_new(
                        url,
                        sampler,
                        ranks.as_ptr(),
                        1,
                        0,
                        null(),
                        &mut out,
                    ))
                },
            ),
            case(
                "harmonics_partial_http_producer_new",
                "out",
                Refused,
                move || {
                    s(harmonics_partial_http_producer_new(
                        url,
                        sampler,
                        ranks.as_ptr(),
                        1,
                        0,
                        opts,
                        null_mut(),
                    ))
                },
            ),
        ]
    }
}

/// The streaming producer's calls (src/ffi/streaming.rs). No stream is opened here (it
/// needs a published file served with ranges): a null `opts` or `order` is accepted
/// when the call goes on to the URL (a refused connection, HTTP); the other pointers
/// are refused before any work, also on a handle that is not a stream.
pub fn streaming_cases(l: &Live) -> Vec<Case> {
    use harmonics_dataset::ffi::sampler::{
        harmonics_sampler_options_default, HarmonicsSamplerOptions,
    };
    use harmonics_dataset::ffi::streaming::*;
    use Expect::*;
    let url: *const c_char = c"http://127.0.0.1:9/x.cache".as_ptr();
    let order: &'static HarmonicsSamplerOptions =
        Box::leak(Box::new(harmonics_sampler_options_default()));
    let opts: &'static HarmonicsStreamOptions = Box::leak(Box::new({
        let mut o = harmonics_stream_options_default();
        o.http.retries = 0;
        o
    }));
    let not_a_stream = l.cache;
    let went_on_to_the_url = |st: HarmonicsStatus| {
        assert_eq!(st, HarmonicsStatus::Http, "{}", last_error());
        s(HarmonicsStatus::Ok)
    };
    unsafe {
        vec![
            case(
                "harmonics_streaming_producer_new",
                "url",
                Refused,
                move || {
                    let mut out = null_mut();
                    s(harmonics_streaming_producer_new(
                        null(),
                        order,
                        opts,
                        &mut out,
                    ))
                },
            ),
            case(
                "harmonics_streaming_producer_new",
                "out",
                Refused,
                move || {
                    s(harmonics_streaming_producer_new(
                        url,
                        order,
                        opts,
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_streaming_producer_new",
                "order",
                Accepted,
                move || {
                    let mut out = null_mut();
                    went_on_to_the_url(harmonics_streaming_producer_new(
                        url,
                        null(),
                        opts,
                        &mut out,
                    ))
                },
            ),
            case(
                "harmonics_streaming_producer_new",
                "opts",
                Accepted,
                move || {
                    let mut out = null_mut();
                    went_on_to_the_url(harmonics_streaming_producer_new(
                        url,
                        order,
                        null(),
                        &mut out,
                    ))
                },
            ),
            case(
                "harmonics_streaming_producer_num_records",
                "producer",
                Refused,
                || s(harmonics_streaming_producer_num_records(null(), &mut 0)),
            ),
            case(
                "harmonics_streaming_producer_num_records",
                "out",
                Refused,
                move || {
                    s(harmonics_streaming_producer_num_records(
                        not_a_stream,
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_streaming_producer_epoch",
                "producer",
                Refused,
                || s(harmonics_streaming_producer_epoch(null(), &mut 0)),
            ),
            case(
                "harmonics_streaming_producer_epoch",
                "out",
                Refused,
                move || s(harmonics_streaming_producer_epoch(not_a_stream, null_mut())),
            ),
            case(
                "harmonics_streaming_producer_set_epoch",
                "producer",
                Refused,
                || s(harmonics_streaming_producer_set_epoch(null_mut(), 1)),
            ),
            case(
                "harmonics_streaming_producer_state",
                "producer",
                Refused,
                || {
                    let mut st = HarmonicsStreamState::default();
                    s(harmonics_streaming_producer_state(null(), &mut st))
                },
            ),
            case(
                "harmonics_streaming_producer_state",
                "out",
                Refused,
                move || s(harmonics_streaming_producer_state(not_a_stream, null_mut())),
            ),
            case(
                "harmonics_streaming_producer_restore",
                "producer",
                Refused,
                || {
                    let st = HarmonicsStreamState::default();
                    s(harmonics_streaming_producer_restore(null_mut(), &st))
                },
            ),
            case(
                "harmonics_streaming_producer_restore",
                "state",
                Refused,
                move || s(harmonics_streaming_producer_restore(not_a_stream, null())),
            ),
            case(
                "harmonics_streaming_producer_stats",
                "producer",
                Refused,
                || {
                    let mut st = HarmonicsStreamStats::default();
                    s(harmonics_streaming_producer_stats(null(), &mut st))
                },
            ),
            case(
                "harmonics_streaming_producer_stats",
                "out",
                Refused,
                move || s(harmonics_streaming_producer_stats(not_a_stream, null_mut())),
            ),
        ]
    }
}
