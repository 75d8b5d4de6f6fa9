//! `cache_cli publish` at the C boundary: `harmonics_cache_publish`.

use std::ffi::c_char;

use super::error::{guard, HarmonicsStatus};
use super::handle::arg_str;
use super::producer::copy_out_str;
use crate::http::{publish, HttpOptions};

/// Publishes the cache `name_or_path` (a name under `$HARMONICS_CACHE_DIR` or an
/// absolute path) to `dest`: a directory (the file `dest/<name>`, written under a
/// temporary name and renamed) or an `s3://bucket/key` URL (one signed PUT; a key
/// ending in `/` gets the cache's file name). The published file is a compact
/// version-2 cache with its index at the head. On success the JSON summary (name,
/// source, dest, method, records, bytes, sha256, etag, elapsed_seconds) is copied
/// into `json` like `harmonics_disk_cache_outcome_reason` copies text: up to
/// `cap - 1` bytes and a NUL (`json` may be null when `cap` is 0), the full length in
/// `*len` (may be null). Every call publishes anew, so pass a buffer large enough
/// for the summary (1 KiB plus the lengths of the paths) rather than asking for the
/// length first.
///
/// # Safety
/// `name_or_path` and `dest` are NUL-terminated strings; `json` has `cap` writable
/// bytes; `len` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_publish(
    name_or_path: *const c_char,
    dest: *const c_char,
    json: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> HarmonicsStatus {
    guard(|| {
        let name = arg_str(name_or_path, "name_or_path")?;
        let dest = arg_str(dest, "dest")?;
        let summary = publish(name, dest, &HttpOptions::default())?;
        copy_out_str(&summary.to_json(), json, cap, len)
    })
}
