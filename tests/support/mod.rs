//! Helpers shared by the integration tests: one module, included once by the `all` test
//! binary (tests/all/main.rs: `#[path = "../support/mod.rs"] mod support;`), whose suites
//! use it as `crate::support`. The benchmarks include some of its files alone.
//!
//! - [`http_server`]: a small in-process HTTP server with scripted responses.
//! - [`http_fixtures`]: options, published cache files, epochs and leftovers of the
//!   HTTP and S3 tests.
//! - [`fault_proxy`]: a TCP proxy that cuts, stalls or corrupts a transfer on cue,
//!   and its sibling `ThrottleProxy` that limits each connection's rate.
//! - [`nginx`]: a real nginx on a free 127.0.0.1 port, serving a temp dir.
//! - [`s3`]: a real S3 protocol server (s3s-fs) with known keys.
//! - [`cache_files`]: cache files written by the writer or byte by byte (version 1),
//!   read back in order.
//! - [`reliability`]: cache fixtures, child processes killed mid-write, file damage.
//! - [`cache_policy`]: LRU and Belady's MIN simulated over a known block order.
//!
//! And here: [`test_name`], the name a suite's test has in the binary (for the child
//! processes that re-run the binary for one test), and [`log_lock`], held by the tests
//! that change the process-wide log level or sink.
#![allow(dead_code)]

pub mod cache_files;
pub mod cache_policy;
pub mod fault_proxy;
pub mod http_fixtures;
pub mod http_server;
pub mod nginx;
pub mod reliability;
pub mod s3;

use std::sync::{Mutex, MutexGuard};

/// The name libtest knows the test `name` of the module `module` by (pass
/// `module_path!()`): the module's path without the crate's name, as `--exact` wants
/// it. A test that runs this binary again for one of its tests (a child process) names
/// it so, wherever its suite's module sits: `test_name(module_path!(), "child_x")` in
/// tests/all/log.rs is `log::child_x`.
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_binary, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// Held by every test that sets the process-wide log level or sink
/// (`harmonics_dataset::log::set_level`/`set_sink`, `harmonics_set_log_level`/
/// `harmonics_set_log_callback`): the suites of `all` run on threads of one process,
/// and one test's sink (or level `Off`) would take another's messages. Tests that only
/// log need not hold it; a sink that must hear exactly its own messages filters them.
pub fn log_lock() -> MutexGuard<'static, ()> {
    static LOG: Mutex<()> = Mutex::new(());
    LOG.lock().unwrap_or_else(|p| p.into_inner())
}
