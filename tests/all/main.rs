//! The integration tests: one test binary, `all` (issue 21). Each suite is a module
//! here, and `support` (tests/support/) is compiled once for all of them, so the test
//! build compiles and links one binary instead of one per suite.
//!
//! The suites run on the threads of one process. A test must therefore not change
//! process-wide state that another suite's test could see:
//! - environment variables and the working directory: set them on the `Command` of a
//!   child process instead (the S3 tests, whose settings are the environment, go
//!   through `support::s3::Env`, which holds one lock for the whole binary);
//! - the log level or sink: hold `support::log_lock()`;
//! - signal handlers, resource limits, user ids, `fork()`: do it in a child process,
//!   this binary run again for one test (`support::test_name(module_path!(), ..)`
//!   names it; see `support::reliability::child_command`).
//!
//! A new suite: a file `tests/all/<suite>.rs`, or a folder `tests/all/<suite>/` with a
//! `mod.rs` (and its own modules beside it), plus a `mod <suite>;` line below, in
//! alphabetical order. Its tests are `<suite>::<test>`: `cargo test --test all
//! <suite>::` runs one suite. It uses the helpers as `crate::support` (`use
//! crate::support;`). A suite that runs `cache_cli` needs the `cli` feature (the binary
//! is built with it only): it gets `#[cfg(feature = "cli")]`, as `cli` below.

#[path = "../support/mod.rs"]
mod support;

// Allocation counting on the measuring thread (proptest_wire, sampler_alloc).
mod alloc_count;

mod bench_smoke;
#[cfg(feature = "cli")]
mod cli;
mod disk_cache;
mod docs_reference;
mod error_next_steps;
#[cfg(feature = "cli")]
mod hostile_cli;
mod hostile_fs;
mod http_async;
mod http_client_pool;
mod http_hostile;
mod http_nginx;
mod http_parallel;
mod http_producer;
mod http_tls;
#[cfg(feature = "cli")]
mod legacy_damage;
mod log;
mod memory;
mod multinode;
mod nginx_harness;
mod proptest_wire;
#[cfg(feature = "cli")]
mod publish;
mod random_access;
mod random_access_http;
mod read_ahead;
mod reliability_concurrency;
mod reliability_corruption;
mod reliability_crash;
mod reliability_ffi;
mod reliability_fs;
mod reliability_versions;
mod s3;
mod sampler;
mod sampler_alloc;
mod sigbus;
#[cfg(feature = "cli")]
mod soak;
mod source_identity;
mod streaming;
mod threads;
