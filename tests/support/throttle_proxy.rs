//! Transitional shim, for the parallel-download benchmark's `#[path]` include only:
//! `ThrottleProxy` now lives in `fault_proxy/` (one proxy skeleton for both). Once the
//! benchmark includes `tests/support/fault_proxy/mod.rs` itself, delete this file.

#[path = "fault_proxy/mod.rs"]
mod fault_proxy;

pub use fault_proxy::ThrottleProxy;
