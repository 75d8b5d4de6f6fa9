//! The C boundary under misuse. The test reads include/harmonics_dataset.h, lists every
//! exported `harmonics_*` function and its pointer parameters, and fails if any pointer
//! parameter has no null case below: a null where the contract forbids it must give
//! HARMONICS_STATUS_NULL_ARGUMENT and a last-error message naming the argument; a null
//! where the contract allows it must be accepted. Also: a handle of the wrong kind, and
//! a Rust panic inside a foreign-producer callback chain, become error statuses.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, c_void, CStr};
use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::disk_cache::*;
use harmonics_dataset::ffi::error::*;
use harmonics_dataset::ffi::http::*;
use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::tensor::*;
use harmonics_dataset::ffi::{
    HarmonicsCacheOutcome, HarmonicsProducer, HarmonicsProducerCallbacks, HarmonicsStatus,
    HarmonicsTensor, HarmonicsTensorView,
};
use harmonics_dataset::{Producer, Result, TensorRef};

const NULL_ARG: u32 = HarmonicsStatus::NullArgument as u32;
const OK: u32 = HarmonicsStatus::Ok as u32;

/// Pointer parameters (by name) of every `harmonics_*` function in the header.
fn header_functions() -> BTreeMap<String, Vec<String>> {
    let h = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/include/harmonics_dataset.h"
    ))
    .unwrap();
    let body = &h[h.find("extern \"C\" {").expect("extern C block")..];
    let code: String = body
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let Some(open) = stmt.find('(') else { continue };
        let name = stmt[..open].split_whitespace().last().unwrap_or("");
        let name = name.trim_start_matches('*');
        if !name.starts_with("harmonics_") {
            continue;
        }
        let params = &stmt[open + 1..stmt.rfind(')').unwrap()];
        let ptrs: Vec<String> = params
            .split(',')
            .map(str::trim)
            .filter(|p| *p != "void" && !p.is_empty())
            .filter(|p| p.contains('*') || p.split_whitespace().next().unwrap().ends_with("Fn"))
            .map(|p| p.rsplit([' ', '*']).next().unwrap().to_string())
            .collect();
        out.insert(name.to_string(), ptrs);
    }
    out
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(harmonics_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

/// A `harmonics_producer_next_copy` callback that keeps nothing.
unsafe extern "C" fn copy_nothing(
    _userdata: *mut c_void,
    _view: *const HarmonicsTensorView,
) -> HarmonicsStatus {
    HarmonicsStatus::Ok
}

enum Expect {
    /// Forbidden null: NULL_ARGUMENT and a message naming the parameter.
    Refused,
    /// Null allowed by the contract (no-op, default, or ignored): no failure.
    Accepted,
}

struct Case {
    func: &'static str,
    param: &'static str,
    expect: Expect,
    /// Makes the call; None for functions returning void.
    call: Box<dyn Fn() -> Option<u32>>,
}

fn case(
    func: &'static str,
    param: &'static str,
    expect: Expect,
    call: impl Fn() -> Option<u32> + 'static,
) -> Case {
    Case {
        func,
        param,
        expect,
        call: Box::new(call),
    }
}

/// Live handles the cases use for their non-null arguments.
struct Live {
    csv: *mut HarmonicsProducer,
    cache: *mut HarmonicsProducer,
    tensor: *mut HarmonicsTensor,
    _dir: tempfile::TempDir,
    cache_name: std::ffi::CString,
    csv_path: std::ffi::CString,
    /// A dataset URL served by `serve_one_record` on 127.0.0.1.
    url: std::ffi::CString,
    port: u16,
}

/// A minimal HTTP/1.1 server on 127.0.0.1 answering every request with one record.
fn serve_one_record() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = harmonics_dataset::Tensor::from_f32(&[1.0, 2.0])
        .to_wire()
        .unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body);
        }
    });
    port
}

fn live() -> Live {
    let dir = tempfile::tempdir().unwrap();
    let csv_file = dir.path().join("d.csv");
    std::fs::write(&csv_file, "1,2\n3,4\n5,6\n").unwrap();
    let csv_path = std::ffi::CString::new(csv_file.to_str().unwrap()).unwrap();
    let cache_name = std::ffi::CString::new(dir.path().join("c.cache").to_str().unwrap()).unwrap();
    let mut csv = null_mut();
    let mut cache = null_mut();
    let mut tensor = null_mut();
    unsafe {
        assert_eq!(
            harmonics_csv_producer_new(csv_path.as_ptr(), false, &mut csv) as u32,
            OK
        );
        assert_eq!(
            harmonics_disk_cache_new(csv, cache_name.as_ptr(), null(), &mut cache) as u32,
            OK
        );
        let shape = [2usize];
        assert_eq!(
            harmonics_tensor_new(0, shape.as_ptr(), 1, [0u8; 8].as_ptr(), 8, &mut tensor) as u32,
            OK
        );
    }
    let port = serve_one_record();
    let url = std::ffi::CString::new(format!("http://127.0.0.1:{port}/data.bin")).unwrap();
    Live {
        csv,
        cache,
        tensor,
        _dir: dir,
        cache_name,
        csv_path,
        url,
        port,
    }
}

unsafe extern "C" fn cb_next(_: *mut c_void, _: *mut HarmonicsTensorView) -> HarmonicsStatus {
    HarmonicsStatus::Empty
}
unsafe extern "C" fn cb_size(_: *mut c_void, out: *mut usize) -> HarmonicsStatus {
    unsafe { *out = 0 };
    HarmonicsStatus::Ok
}
unsafe extern "C" fn cb_write(_: *mut c_void, _: *const u8, _: usize) -> HarmonicsStatus {
    HarmonicsStatus::Ok
}
unsafe extern "C" fn cb_read(
    _: *mut c_void,
    _: *mut u8,
    _: usize,
    n: *mut usize,
) -> HarmonicsStatus {
    unsafe { *n = 0 };
    HarmonicsStatus::Ok
}

fn s(st: HarmonicsStatus) -> Option<u32> {
    Some(st as u32)
}

fn cases(l: &Live) -> Vec<Case> {
    use Expect::*;
    let (csv, cache, tensor) = (l.csv, l.cache, l.tensor as *const _);
    let name = l.cache_name.as_ptr();
    let path = l.csv_path.as_ptr();
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
    let cbs = HarmonicsProducerCallbacks {
        userdata: null_mut(),
        next: Some(cb_next),
        size: Some(cb_size),
        free: None,
        skip: None,
        fingerprint: None,
    };
    let view = HarmonicsTensorView {
        dtype: 0,
        ndims: 0,
        shape: null(),
        data: null(),
        nbytes: 0,
    };
    let csv_text: &'static [u8] = b"1,2\n";
    unsafe {
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
            case(
                "harmonics_disk_cache_outcome_reason",
                "cache",
                Refused,
                move || {
                    s(harmonics_disk_cache_outcome_reason(
                        null(),
                        null_mut(),
                        0,
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_disk_cache_outcome_reason",
                "buf",
                Refused,
                move || {
                    s(harmonics_disk_cache_outcome_reason(
                        cache,
                        null_mut(),
                        8,
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_disk_cache_outcome_reason",
                "len",
                Accepted,
                move || {
                    let mut buf = [0 as c_char; 8];
                    s(harmonics_disk_cache_outcome_reason(
                        cache,
                        buf.as_mut_ptr(),
                        8,
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_producer_fingerprint",
                "producer",
                Refused,
                move || {
                    s(harmonics_producer_fingerprint(
                        null(),
                        null_mut(),
                        0,
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_producer_fingerprint",
                "buf",
                Refused,
                move || {
                    s(harmonics_producer_fingerprint(
                        csv,
                        null_mut(),
                        8,
                        null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_producer_fingerprint",
                "len",
                Accepted,
                move || {
                    let mut buf = [0 as c_char; 8];
                    s(harmonics_producer_fingerprint(
                        csv,
                        buf.as_mut_ptr(),
                        8,
                        null_mut(),
                    ))
                },
            ),
            case("harmonics_http_outcome", "producer", Refused, move || {
                let mut o = std::mem::MaybeUninit::<HarmonicsHttpOutcome>::uninit();
                s(harmonics_http_outcome(null(), o.as_mut_ptr()))
            }),
            case("harmonics_http_outcome", "out", Refused, move || {
                s(harmonics_http_outcome(csv, null_mut()))
            }),
            case(
                "harmonics_http_outcome_reason",
                "producer",
                Refused,
                move || {
                    s(harmonics_http_outcome_reason(
                        null(),
                        null_mut(),
                        0,
                        null_mut(),
                    ))
                },
            ),
            case("harmonics_http_outcome_reason", "buf", Refused, move || {
                let mut h = null_mut();
                assert_eq!(
                    harmonics_http_producer_from_url(url, null(), &mut h),
                    HarmonicsStatus::Ok
                );
                let st = harmonics_http_outcome_reason(h, null_mut(), 8, null_mut());
                harmonics_producer_free(h);
                s(st)
            }),
            case(
                "harmonics_http_outcome_reason",
                "len",
                Accepted,
                move || {
                    let mut h = null_mut();
                    assert_eq!(
                        harmonics_http_producer_from_url(url, null(), &mut h),
                        HarmonicsStatus::Ok
                    );
                    let mut buf = [0 as c_char; 8];
                    let st = harmonics_http_outcome_reason(h, buf.as_mut_ptr(), 8, null_mut());
                    harmonics_producer_free(h);
                    s(st)
                },
            ),
            case("harmonics_callback_error", "message", Accepted, || {
                harmonics_callback_error(null());
                None
            }),
            case("harmonics_set_log_callback", "userdata", Accepted, || {
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
            case("harmonics_producer_skip", "producer", Refused, || {
                s(harmonics_producer_skip(null_mut(), 3))
            }),
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
    }
}

/// The store maintenance calls (`harmonics_cache_*`). Nothing is removed: every
/// refused null is checked before any work, and the cache `l.cache_name` stays.
fn maintenance_cases(l: &Live) -> Vec<Case> {
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
fn many_nodes_cases(l: &Live) -> Vec<Case> {
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

#[test]
fn every_exported_function_survives_null_pointers() {
    let funcs = header_functions();
    assert!(funcs.len() >= 19, "header parse found only {funcs:?}");
    let l = live();
    let mut cases = cases(&l);
    cases.extend(training_order_cases());
    cases.extend(maintenance_cases(&l));
    cases.extend(many_nodes_cases(&l));
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
unsafe extern "C" fn relay_next(ud: *mut c_void, out: *mut HarmonicsTensorView) -> HarmonicsStatus {
    let st = unsafe { harmonics_producer_next_view(ud as *mut HarmonicsProducer, out) };
    if st != HarmonicsStatus::Ok {
        unsafe { harmonics_callback_error(harmonics_last_error_message()) };
    }
    st
}
unsafe extern "C" fn relay_size(ud: *mut c_void, out: *mut usize) -> HarmonicsStatus {
    unsafe { harmonics_producer_size(ud as *const HarmonicsProducer, out) }
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
        // The poisoned producer stays an error, never a crash.
        let st = harmonics_producer_size(inner, &mut 0);
        assert_ne!(st, HarmonicsStatus::Ok);
        assert!(!last_error().is_empty());
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
            skip: None,
            fingerprint: None,
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

/// Null cases of the training-order calls (random access, sampler, sampled producers).
fn training_order_cases() -> Vec<Case> {
    use harmonics_dataset::ffi::sampled::*;
    use harmonics_dataset::ffi::sampler::*;
    use harmonics_dataset::{Tensor, VecProducer};
    use Expect::*;
    // A random-access producer and a sampler, leaked for the test's lifetime.
    let records = (0..4).map(|i| Tensor::from_f32(&[i as f32])).collect();
    let ra = producer_into_handle(Box::new(VecProducer::new(records)));
    let mut sampler = null_mut();
    unsafe { assert_eq!(harmonics_sampler_new(10, null(), &mut sampler) as u32, OK) };
    let sm = sampler as usize;
    let sp = move || sm as *mut HarmonicsSampler;
    let state = unsafe {
        let mut st = std::mem::zeroed::<HarmonicsSamplerState>();
        assert_eq!(harmonics_sampler_state(sp(), &mut st) as u32, OK);
        st
    };
    let rp = ra as usize;
    let ra = move || rp as *mut HarmonicsProducer;
    let mut sampled = null_mut();
    unsafe {
        assert_eq!(
            harmonics_sampled_producer_new(ra(), null(), &mut sampled) as u32,
            OK
        )
    };
    let sd = sampled as usize;
    let sd = move || sd as *mut HarmonicsProducer;
    let free_ok = |st: HarmonicsStatus, p: *mut HarmonicsProducer| {
        unsafe { harmonics_producer_free(p) };
        s(st)
    };
    unsafe {
        vec![
            case(
                "harmonics_producer_view_at",
                "producer",
                Refused,
                move || {
                    s(harmonics_producer_view_at(
                        null_mut(),
                        0,
                        &mut std::mem::zeroed(),
                    ))
                },
            ),
            case("harmonics_producer_view_at", "out", Refused, move || {
                s(harmonics_producer_view_at(ra(), 0, null_mut()))
            }),
            case("harmonics_producer_at", "producer", Refused, move || {
                s(harmonics_producer_at(null_mut(), 0, &mut null_mut()))
            }),
            case("harmonics_producer_at", "out", Refused, move || {
                s(harmonics_producer_at(ra(), 0, null_mut()))
            }),
            case(
                "harmonics_producer_has_random_access",
                "producer",
                Refused,
                move || s(harmonics_producer_has_random_access(null(), &mut false)),
            ),
            case(
                "harmonics_producer_has_random_access",
                "out",
                Refused,
                move || s(harmonics_producer_has_random_access(ra(), null_mut())),
            ),
            case(
                "harmonics_sampled_producer_new",
                "source",
                Refused,
                move || {
                    s(harmonics_sampled_producer_new(
                        null_mut(),
                        null(),
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_sampled_producer_new",
                "options",
                Accepted,
                move || {
                    let mut out = null_mut();
                    free_ok(harmonics_sampled_producer_new(ra(), null(), &mut out), out)
                },
            ),
            case(
                "harmonics_sampled_producer_new",
                "out",
                Refused,
                move || s(harmonics_sampled_producer_new(ra(), null(), null_mut())),
            ),
            case(
                "harmonics_sampled_producer_sampler",
                "producer",
                Refused,
                move || s(harmonics_sampled_producer_sampler(null(), &mut null_mut())),
            ),
            case(
                "harmonics_sampled_producer_sampler",
                "out",
                Refused,
                move || s(harmonics_sampled_producer_sampler(sd(), null_mut())),
            ),
            case(
                "harmonics_sampled_producer_state",
                "producer",
                Refused,
                move || {
                    s(harmonics_sampled_producer_state(
                        null(),
                        &mut std::mem::zeroed(),
                    ))
                },
            ),
            case(
                "harmonics_sampled_producer_state",
                "out",
                Refused,
                move || s(harmonics_sampled_producer_state(sd(), null_mut())),
            ),
            case(
                "harmonics_sampled_producer_restore",
                "producer",
                Refused,
                move || s(harmonics_sampled_producer_restore(null_mut(), &state)),
            ),
            case(
                "harmonics_sampled_producer_restore",
                "state",
                Refused,
                move || s(harmonics_sampled_producer_restore(sd(), null())),
            ),
            case(
                "harmonics_sampled_producer_set_epoch",
                "producer",
                Refused,
                move || s(harmonics_sampled_producer_set_epoch(null_mut(), 1)),
            ),
            case(
                "harmonics_sampled_producer_peek",
                "producer",
                Refused,
                move || s(harmonics_sampled_producer_peek(null(), &mut 0)),
            ),
            case(
                "harmonics_sampled_producer_peek",
                "out",
                Refused,
                move || s(harmonics_sampled_producer_peek(sd(), null_mut())),
            ),
            case(
                "harmonics_shuffle_producer_new",
                "inner",
                Refused,
                move || {
                    s(harmonics_shuffle_producer_new(
                        null_mut(),
                        false,
                        0,
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_shuffle_producer_new",
                "out",
                Refused,
                move || s(harmonics_shuffle_producer_new(ra(), false, 0, null_mut())),
            ),
            case(
                "harmonics_shard_producer_new",
                "inner",
                Refused,
                move || {
                    s(harmonics_shard_producer_new(
                        null_mut(),
                        0,
                        1,
                        &mut null_mut(),
                    ))
                },
            ),
            case("harmonics_shard_producer_new", "out", Refused, move || {
                s(harmonics_shard_producer_new(ra(), 0, 1, null_mut()))
            }),
            case(
                "harmonics_batch_producer_new",
                "inner",
                Refused,
                move || s(harmonics_batch_producer_new(null_mut(), 2, &mut null_mut())),
            ),
            case("harmonics_batch_producer_new", "out", Refused, move || {
                s(harmonics_batch_producer_new(ra(), 2, null_mut()))
            }),
            case("harmonics_sampler_new", "options", Accepted, move || {
                let mut out = null_mut();
                let st = harmonics_sampler_new(5, null(), &mut out);
                harmonics_sampler_free(out);
                s(st)
            }),
            case("harmonics_sampler_new", "out", Refused, move || {
                s(harmonics_sampler_new(5, null(), null_mut()))
            }),
            case("harmonics_sampler_clone", "sampler", Refused, move || {
                s(harmonics_sampler_clone(null(), &mut null_mut()))
            }),
            case("harmonics_sampler_clone", "out", Refused, move || {
                s(harmonics_sampler_clone(sp(), null_mut()))
            }),
            case("harmonics_sampler_free", "sampler", Accepted, move || {
                harmonics_sampler_free(null_mut());
                None
            }),
            case("harmonics_sampler_size", "sampler", Refused, move || {
                s(harmonics_sampler_size(null(), &mut 0))
            }),
            case("harmonics_sampler_size", "out", Refused, move || {
                s(harmonics_sampler_size(sp(), null_mut()))
            }),
            case(
                "harmonics_sampler_num_records",
                "sampler",
                Refused,
                move || s(harmonics_sampler_num_records(null(), &mut 0)),
            ),
            case("harmonics_sampler_num_records", "out", Refused, move || {
                s(harmonics_sampler_num_records(sp(), null_mut()))
            }),
            case("harmonics_sampler_index", "sampler", Refused, move || {
                s(harmonics_sampler_index(null(), 0, &mut 0))
            }),
            case("harmonics_sampler_index", "out", Refused, move || {
                s(harmonics_sampler_index(sp(), 0, null_mut()))
            }),
            case("harmonics_sampler_next", "sampler", Refused, move || {
                s(harmonics_sampler_next(null_mut(), &mut 0))
            }),
            case("harmonics_sampler_next", "out", Refused, move || {
                s(harmonics_sampler_next(sp(), null_mut()))
            }),
            case("harmonics_sampler_fill", "sampler", Refused, move || {
                s(harmonics_sampler_fill(
                    null_mut(),
                    [0u64; 2].as_mut_ptr(),
                    2,
                ))
            }),
            case("harmonics_sampler_fill", "out", Refused, move || {
                s(harmonics_sampler_fill(sp(), null_mut(), 2))
            }),
            case(
                "harmonics_sampler_set_epoch",
                "sampler",
                Refused,
                move || s(harmonics_sampler_set_epoch(null_mut(), 1)),
            ),
            case("harmonics_sampler_epoch", "sampler", Refused, move || {
                s(harmonics_sampler_epoch(null(), &mut 0))
            }),
            case("harmonics_sampler_epoch", "out", Refused, move || {
                s(harmonics_sampler_epoch(sp(), null_mut()))
            }),
            case("harmonics_sampler_options", "sampler", Refused, move || {
                s(harmonics_sampler_options(
                    null(),
                    &mut harmonics_sampler_options_default(),
                ))
            }),
            case("harmonics_sampler_options", "out", Refused, move || {
                s(harmonics_sampler_options(sp(), null_mut()))
            }),
            case("harmonics_sampler_state", "sampler", Refused, move || {
                s(harmonics_sampler_state(null(), &mut std::mem::zeroed()))
            }),
            case("harmonics_sampler_state", "out", Refused, move || {
                s(harmonics_sampler_state(sp(), null_mut()))
            }),
            case("harmonics_sampler_restore", "sampler", Refused, move || {
                s(harmonics_sampler_restore(null_mut(), &state))
            }),
            case("harmonics_sampler_restore", "state", Refused, move || {
                s(harmonics_sampler_restore(sp(), null()))
            }),
        ]
    }
}
