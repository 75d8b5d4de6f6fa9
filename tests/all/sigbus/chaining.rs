//! Signals that are not about the library's mappings still reach the host's own handler
//! (installed before or after the library's), or the default action.

use super::*;

/// The host child `role` (see `children::host_role`) runs to its end: every signal
/// that was not about the library's mappings reached its handler.
fn assert_the_host_handler_is_chained(role: &str) {
    let (_dir, path) = built_cache();
    let (status, out) = child_over(role, &path, |_| {});
    assert_survived(status, &out);
    assert!(out.contains("chained ok"), "{out}");
}

#[test]
fn a_host_sigbus_handler_installed_before_the_library_still_gets_its_signals() {
    assert_the_host_handler_is_chained("host_first");
}

#[test]
fn a_host_sigbus_handler_installed_after_the_library_still_gets_its_signals() {
    assert_the_host_handler_is_chained("host_after");
}

#[test]
fn a_fault_outside_the_library_mappings_keeps_the_default_action() {
    let (_dir, path) = built_cache();
    let (status, out) = child_over("default", &path, |_| {});
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}: {out}");
    assert!(!out.contains("survived"), "{out}");
}
