//! What every null case needs: the header's list of pointer parameters, the case
//! table's types, and live handles (a CSV producer, a disk cache over it, a tensor and
//! a one-record HTTP server) for the arguments that are not under test.

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::disk_cache::*;
use harmonics_dataset::ffi::error::*;
use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::tensor::*;
use harmonics_dataset::ffi::{HarmonicsProducer, HarmonicsStatus, HarmonicsTensor};

use crate::support::http_server::{wire_body, TestServer};

pub const NULL_ARG: u32 = HarmonicsStatus::NullArgument as u32;
pub const OK: u32 = HarmonicsStatus::Ok as u32;

/// Pointer parameters (by name) of every `harmonics_*` function in the header.
pub fn header_functions() -> BTreeMap<String, Vec<String>> {
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

pub fn last_error() -> String {
    unsafe { CStr::from_ptr(harmonics_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

pub enum Expect {
    /// Forbidden null: NULL_ARGUMENT and a message naming the parameter.
    Refused,
    /// Null allowed by the contract (no-op, default, or ignored): no failure.
    Accepted,
}

pub struct Case {
    pub func: &'static str,
    pub param: &'static str,
    pub expect: Expect,
    /// Makes the call; None for functions returning void.
    pub call: Box<dyn Fn() -> Option<u32>>,
}

pub fn case(
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
pub struct Live {
    pub csv: *mut HarmonicsProducer,
    pub cache: *mut HarmonicsProducer,
    pub tensor: *mut HarmonicsTensor,
    pub _dir: tempfile::TempDir,
    pub cache_name: std::ffi::CString,
    pub csv_path: std::ffi::CString,
    /// A dataset URL of one record, served by `server` on 127.0.0.1.
    pub url: std::ffi::CString,
    pub port: u16,
    pub _server: TestServer,
}

pub fn live() -> Live {
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
    let record = harmonics_dataset::Tensor::from_f32(&[1.0, 2.0]);
    let server = TestServer::serving(wire_body(&[record]));
    let port = server.port();
    let url = std::ffi::CString::new(server.url("/data.bin")).unwrap();
    Live {
        csv,
        cache,
        tensor,
        _dir: dir,
        cache_name,
        csv_path,
        url,
        port,
        _server: server,
    }
}
pub fn s(st: HarmonicsStatus) -> Option<u32> {
    Some(st as u32)
}

/// The three null cases of a call that writes text into the caller's buffer,
/// `call(handle, buf, cap, len)`: a null handle and a null buffer are refused, a null
/// `len` is accepted. `open` gives the live handle for the last two cases and `close`
/// releases it.
pub fn text_out_cases(
    func: &'static str,
    handle: &'static str,
    call: impl Fn(*mut HarmonicsProducer, *mut c_char, usize, *mut usize) -> HarmonicsStatus
        + Copy
        + 'static,
    open: impl Fn() -> *mut HarmonicsProducer + Copy + 'static,
    close: impl Fn(*mut HarmonicsProducer) + Copy + 'static,
) -> Vec<Case> {
    vec![
        case(func, handle, Expect::Refused, move || {
            s(call(null_mut(), null_mut(), 0, null_mut()))
        }),
        case(func, "buf", Expect::Refused, move || {
            let h = open();
            let st = call(h, null_mut(), 8, null_mut());
            close(h);
            s(st)
        }),
        case(func, "len", Expect::Accepted, move || {
            let h = open();
            let mut buf = [0 as c_char; 8];
            let st = call(h, buf.as_mut_ptr(), 8, null_mut());
            close(h);
            s(st)
        }),
    ]
}
