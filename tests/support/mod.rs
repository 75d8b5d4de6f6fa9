//! Helpers shared by the integration tests: one module, included by every test
//! binary with `mod support;` (a binary in a folder: `#[path = "../support/mod.rs"]`).
//!
//! - [`http_server`]: a small in-process HTTP server with scripted responses.
//! - [`fault_proxy`]: a TCP proxy that cuts, stalls or corrupts a transfer on cue.
//! - [`throttle_proxy`]: a TCP proxy that limits each connection's rate.
//! - [`nginx`]: a real nginx on a free 127.0.0.1 port, serving a temp dir.
//! - [`s3`]: a real S3 protocol server (s3s-fs) with known keys.
//! - [`reliability`]: cache fixtures, child processes killed mid-write, file damage.
#![allow(dead_code)]

pub mod cache_files;
pub mod fault_proxy;
pub mod http_server;
pub mod nginx;
pub mod reliability;
pub mod s3;
pub mod throttle_proxy;
