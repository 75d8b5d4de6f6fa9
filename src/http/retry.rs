//! Retry policy of every request: the backoff, a sleep that a stop interrupts, and
//! `Failure`, what went wrong in one attempt and whether another one may help.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::client::chain;

/// Backoff before retry `n` (0-based): 200 ms, 400 ms, 800 ms, … capped at 5 s.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << n.min(5)).min(5_000))
}

/// Sleeps `d`, waking early when `stop` is set. Returns false when stopped.
pub(crate) fn sleep_unless_stopped(d: Duration, stop: Option<&AtomicBool>) -> bool {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() {
        if stopped(stop) {
            return false;
        }
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
    !stopped(stop)
}

pub(crate) fn stopped(stop: Option<&AtomicBool>) -> bool {
    stop.is_some_and(|s| s.load(Ordering::Relaxed))
}

/// What went wrong in one attempt, and whether another attempt may help.
pub(crate) enum Failure {
    Retry(String),
    /// The transport failed after part of the body had arrived (retryable): kept to
    /// be reported even when the retries then fail differently (server gone).
    Cut(String),
    Fatal(String),
    Stopped,
    /// The object changed between the ranged GETs of a parallel download: start over.
    Changed(String),
    /// The server did not serve a range it announced: start over on one connection.
    NoRanges(String),
}

impl Failure {
    pub(crate) fn detail(self) -> String {
        match self {
            Failure::Retry(d)
            | Failure::Cut(d)
            | Failure::Fatal(d)
            | Failure::Changed(d)
            | Failure::NoRanges(d) => d,
            Failure::Stopped => "download stopped".into(),
        }
    }
}

pub(crate) fn classify_send_error(e: &reqwest::Error) -> Failure {
    let d = if e.is_connect() {
        format!("cannot connect: {}", chain(e))
    } else if e.is_timeout() {
        format!("no response within the read timeout: {}", chain(e))
    } else {
        format!("request failed: {}", chain(e))
    };
    Failure::Retry(d)
}
