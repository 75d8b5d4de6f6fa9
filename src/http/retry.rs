//! Retry policy of every request: the backoff, a sleep that a stop interrupts, and
//! `Failure`, what went wrong in one attempt and whether another one may help.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::client::chain;
use crate::error::{HttpCause, HttpErrorKind};

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

/// What went wrong in one attempt, and whether another attempt may help. The cause
/// says what kind of failure it is when it ends the download (`Error::Http`).
pub(crate) enum Failure {
    Retry(HttpCause, String),
    /// The transport failed after part of the body had arrived (retryable): kept to
    /// be reported even when the retries then fail differently (server gone).
    Cut(HttpCause, String),
    Fatal(HttpCause, String),
    Stopped,
    /// The object changed between the ranged GETs of a parallel download: start over.
    Changed(String),
    /// The server did not serve a range it announced: start over on one connection.
    NoRanges(String),
}

impl Failure {
    pub(crate) fn detail(self) -> String {
        match self {
            Failure::Retry(_, d)
            | Failure::Cut(_, d)
            | Failure::Fatal(_, d)
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
    Failure::Retry(send_cause(e), d)
}

/// What kind of failure a request that got no response met: TLS (the handshake or a
/// certificate; reqwest counts it as a connect error), a timeout, no connection.
pub(crate) fn send_cause(e: &reqwest::Error) -> HttpCause {
    HttpCause::of(if is_tls(e) {
        HttpErrorKind::Tls
    } else if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else {
        HttpErrorKind::Other
    })
}

/// What kind of failure a read of the body met: the read timeout, else a cut body.
pub(crate) fn read_cause(e: &std::io::Error) -> HttpCause {
    HttpCause::of(
        if e.kind() == std::io::ErrorKind::TimedOut || chain(e).contains("timed out") {
            HttpErrorKind::Timeout
        } else {
            HttpErrorKind::Body
        },
    )
}

/// True when rustls is somewhere in the causes of `e` (inside I/O errors included:
/// tokio-rustls reports a TLS failure as one, which hyper wraps in another).
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<rustls::Error>() {
            return true;
        }
        // An io::Error's `source()` skips the error it wraps: step into that instead.
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    false
}
