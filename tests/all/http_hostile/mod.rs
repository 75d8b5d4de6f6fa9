//! HTTP under hostile and careless servers and users (DESIGN §8, issue 12's HTTP items
//! and issue 11's empty body), against in-process servers on 127.0.0.1:
//! - a resume after a cut never splices two versions: without a strong validator
//!   (only `Accept-Ranges`, only a weak ETag, a Last-Modified as new as the Date —
//!   also from a real nginx whose file was rewritten within one second) the download
//!   restarts from byte 0; with a strong Last-Modified it resumes under `If-Range`;
//! - a 206 is accepted only when it answers the range asked for, with the same total;
//! - `HttpOptions::max_bytes` stops an endless body (and refuses a Content-Length
//!   beyond it) naming the URL and the limit, leaving no cache file;
//! - a body cut with the server then gone says where it was cut, and what the
//!   retries then hit;
//! - an empty 200 is an error naming the URL, not a dataset of zero records;
//! - dropping an `AsyncHttpProducer` returns while its thread is still blocked
//!   (another process's cache lock, a server that never answers);
//! - views served while following a download are 8-byte aligned (Rust and C view).
//!
//! One file per concept: `resume`, `limits` (download limit, messages, empty body),
//! `dropping`, `views`; the helpers they share are here and in `support`.

use crate::support;

mod dropping;
mod limits;
mod resume;
mod views;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use harmonics_dataset::cache::lock_path;
use harmonics_dataset::{
    AsyncHttpProducer, DType, Error, HttpOptions, HttpProducer, Producer, Tensor,
};
use support::fault_proxy::{FaultProxy, Faults};
use support::http_fixtures::{cache_options, epoch, leftovers};
use support::http_server::{self, records, wire_body, Conn, TestServer};
use support::nginx::{self, Nginx};

fn opts(cache: &Path) -> HttpOptions {
    cache_options(cache, 2)
}

/// The HTTP error of opening `url`, checked to name the URL and leave no cache.
fn http_error(url: &str, o: HttpOptions, dir: &Path) -> String {
    let msg = match HttpProducer::from_url(url, o) {
        Ok(p) => panic!("{url} gave a producer of {} records", p.len()),
        Err(e @ Error::Http { .. }) => e.to_string(),
        Err(e) => panic!("not an HTTP error: {e}"),
    };
    assert!(msg.contains(url), "{msg:?} does not name {url}");
    assert_eq!(leftovers(dir), Vec::<PathBuf>::new(), "after: {msg}");
    msg
}

/// An HTTP date `secs` seconds from now (negative: in the past).
fn http_date(secs: i64) -> String {
    let now = std::time::SystemTime::now();
    let t = if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs((-secs) as u64)
    };
    httpdate::fmt_http_date(t)
}

/// The C thread-local error message (after a failed C call).
fn last_error() -> String {
    use harmonics_dataset::ffi::error::harmonics_last_error_message;
    // SAFETY: returns a NUL-terminated thread-local string (or null).
    unsafe {
        let p = harmonics_last_error_message();
        assert!(!p.is_null());
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}
