//! Diagnostics (`harmonics_dataset::log`): a host's sink and the C log callback
//! receive the library's warnings; `HARMONICS_LOG` sets what reaches stderr.
//!
//! The sink and the level are process-wide, so the tests that change them run one at a
//! time (`support::log_lock()`, held by every test of the binary that changes them),
//! and the environment cases run in child processes. The other tests of the binary
//! may log meanwhile: a sink here looks for its own messages among what it hears.

use std::ffi::{c_char, c_void, CStr};
use std::process::Command;
use std::sync::{Arc, Mutex};

use harmonics_dataset::ffi::log::{
    harmonics_log_level, harmonics_set_log_callback, harmonics_set_log_level, harmonics_version,
};
use harmonics_dataset::ffi::{HarmonicsLogLevel, HarmonicsStatus};
use harmonics_dataset::log::{self, Level};
use harmonics_dataset::{DiskCacheProducer, Tensor, VecProducer};

use crate::support;

fn records(n: usize) -> VecProducer {
    VecProducer::new((0..n).map(|i| Tensor::from_f32(&[i as f32])).collect())
}

/// Opens a cache of 3 records, then reopens it over a source of 2: the library warns
/// that the source shrank and rebuilds.
fn provoke_a_warning(dir: &std::path::Path) {
    let path = dir.join("shrink.cache");
    DiskCacheProducer::open_at(Box::new(records(3)), path.clone(), None).unwrap();
    DiskCacheProducer::open_at(Box::new(records(2)), path, None).unwrap();
}

#[test]
fn a_sink_receives_the_warning_instead_of_stderr() {
    let _serial = support::log_lock();
    let got: Arc<Mutex<Vec<(Level, String)>>> = Arc::default();
    let g = got.clone();
    log::set_level(Level::Warn);
    log::set_sink(Some(Arc::new(move |l, m: &str| {
        g.lock().unwrap().push((l, m.to_string()))
    })));
    let dir = tempfile::tempdir().unwrap();
    provoke_a_warning(dir.path());
    log::set_sink(None);
    let got = got.lock().unwrap();
    assert!(
        got.iter()
            .any(|(l, m)| *l == Level::Warn && m.contains("the source shrank from 3 to 2")),
        "{got:?}"
    );
}

unsafe extern "C" fn collect(
    level: HarmonicsLogLevel,
    message: *const c_char,
    userdata: *mut c_void,
) {
    let out = unsafe { &*(userdata as *const Mutex<Vec<(HarmonicsLogLevel, String)>>) };
    let m = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    out.lock().unwrap().push((level, m));
}

#[test]
fn the_c_log_callback_receives_a_warning_with_its_level_and_userdata() {
    let _serial = support::log_lock();
    let got: Mutex<Vec<(HarmonicsLogLevel, String)>> = Mutex::default();
    assert_eq!(harmonics_set_log_level(1), HarmonicsStatus::Ok);
    assert_eq!(harmonics_log_level(), HarmonicsLogLevel::Warn);
    let status =
        unsafe { harmonics_set_log_callback(Some(collect), &got as *const _ as *mut c_void) };
    assert_eq!(status, HarmonicsStatus::Ok);
    let dir = tempfile::tempdir().unwrap();
    provoke_a_warning(dir.path());
    assert_eq!(
        unsafe { harmonics_set_log_callback(None, std::ptr::null_mut()) },
        HarmonicsStatus::Ok
    );
    let got = got.lock().unwrap();
    assert!(
        got.iter()
            .any(|(l, m)| *l == HarmonicsLogLevel::Warn
                && m.contains("shrink.cache: the source shrank")),
        "{got:?}"
    );
}

#[test]
fn the_level_filters_what_a_sink_hears_and_bad_levels_are_refused() {
    let _serial = support::log_lock();
    // This test's messages (other tests may log meanwhile), without the prefix.
    const MINE: &str = "the level test: ";
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let g = got.clone();
    log::set_sink(Some(Arc::new(move |_, m: &str| {
        if let Some(m) = m.strip_prefix(MINE) {
            g.lock().unwrap().push(m.to_string())
        }
    })));
    log::set_level(Level::Off);
    log::warn(&format!("{MINE}not heard"));
    log::set_level(Level::Warn);
    log::info(&format!("{MINE}not heard either"));
    log::warn(&format!("{MINE}heard"));
    log::set_level(Level::Debug);
    log::debug(&format!("{MINE}heard too"));
    log::set_sink(None);
    log::set_level(Level::Warn);
    assert_eq!(*got.lock().unwrap(), ["heard", "heard too"]);
    assert_eq!(harmonics_set_log_level(9), HarmonicsStatus::InvalidArgument);
}

#[test]
fn harmonics_version_is_the_crate_version() {
    let v = unsafe { CStr::from_ptr(harmonics_version()) }
        .to_str()
        .unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

/// Run in a child process by `harmonics_log_in_the_environment_sets_what_reaches_stderr`.
#[test]
#[ignore = "run as a child process by another test"]
fn child_warns() {
    if let Some(dir) = std::env::var_os("HARMONICS_LOG_CHILD_DIR") {
        provoke_a_warning(std::path::Path::new(&dir));
    }
}

#[test]
fn harmonics_log_in_the_environment_sets_what_reaches_stderr() {
    let stderr_with = |value: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        let child = support::test_name(module_path!(), "child_warns");
        cmd.args(["--exact", &child, "--ignored", "--nocapture"])
            .env("HARMONICS_LOG_CHILD_DIR", dir.path());
        match value {
            Some(v) => cmd.env("HARMONICS_LOG", v),
            None => cmd.env_remove("HARMONICS_LOG"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warning = "harmonics-dataset: warning: ";
    let default = stderr_with(None);
    assert!(
        default.contains(warning) && default.contains("the source shrank"),
        "{default:?}"
    );
    assert!(stderr_with(Some("warn")).contains(warning));
    assert!(!stderr_with(Some("off")).contains("the source shrank"));
    let bad = stderr_with(Some("loud"));
    assert!(
        bad.contains("HARMONICS_LOG=\"loud\" is not one of"),
        "{bad:?}"
    );
    assert!(
        bad.contains("the source shrank"),
        "an unknown value keeps warnings on"
    );
}
