//! Helpers shared by the integration tests: one module, included by every test
//! binary with `mod support;` (a binary in a folder: `#[path = "../support/mod.rs"]`).
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
#![allow(dead_code)]

pub mod cache_files;
pub mod cache_policy;
pub mod fault_proxy;
pub mod http_fixtures;
pub mod http_server;
pub mod nginx;
pub mod reliability;
pub mod s3;
