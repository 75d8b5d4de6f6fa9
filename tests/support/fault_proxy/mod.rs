//! A TCP proxy, in threads of the test process, that sits between the HTTP producer
//! and a real server (nginx) and can break things the way networks do.
//!
//! It understands just enough HTTP/1.1 to frame messages (request heads, response
//! heads, `Content-Length`, chunked and close-delimited bodies), so it can:
//! - cut a response after N body bytes (counted as payload bytes: chunk framing is
//!   not counted), closing both sides of the connection, as a dropped link does;
//! - strip or add response headers (a server that hides or falsely claims
//!   `Accept-Ranges`);
//! - record, per exchange, the request head the client sent and the response head
//!   the server returned, and count connections and body bytes.
//!
//! Keep-alive connections are followed exchange after exchange; pipelining is not
//! (HTTP clients do not pipeline).
//!
//! [`ThrottleProxy`] is its plain-TCP sibling on the same skeleton
//! ([`listener`]): it limits every connection's rate and records nothing.
//!
//! Part of the tests' `support` module (`use support::fault_proxy;`); self-contained,
//! so a benchmark can include it alone with `#[path = ".../fault_proxy/mod.rs"]`.
#![allow(dead_code)]

mod listener;
mod relay;
mod throttle;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use listener::Listener;
#[allow(unused_imports)] // used by the parallel-download benchmark, not every test
pub use throttle::ThrottleProxy;

/// Runs in the proxy thread after a cut response's last byte was forwarded and
/// before the connection is closed, i.e. before the client can react to the cut.
pub type OnCut = Arc<dyn Fn() + Send + Sync>;

/// What the proxy does to traffic. Set before or while the proxy runs.
#[derive(Clone, Default)]
pub struct Faults {
    /// `(exchange index, n)`: the response of that exchange (0-based, in the order
    /// requests reach the proxy) is cut after `n` body bytes.
    pub cut: Vec<(usize, u64)>,
    /// Response header names (case-insensitive) removed before the client sees them.
    pub strip_response_headers: Vec<String>,
    /// Response headers added (after stripping).
    pub add_response_headers: Vec<(String, String)>,
    /// Called on each cut (e.g. to change the file on the server in between).
    pub on_cut: Option<OnCut>,
    /// `(exchange index, pause)`: the response head of that exchange is held back
    /// this long (a slow server), so other clients can pile up meanwhile.
    pub delay_response: Vec<(usize, std::time::Duration)>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("cut", &self.cut)
            .field("strip_response_headers", &self.strip_response_headers)
            .field("add_response_headers", &self.add_response_headers)
            .field("on_cut", &self.on_cut.is_some())
            .field("delay_response", &self.delay_response)
            .finish()
    }
}

impl Faults {
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Cuts the first response after `n` body bytes.
    pub fn cut_first_response_after(n: u64) -> Faults {
        Faults {
            cut: vec![(0, n)],
            ..Faults::default()
        }
    }
}

/// One request/response pair as seen by the proxy.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// Request-arrival order across all connections (0-based).
    pub index: usize,
    /// Accept order of the connection that carried it (0-based).
    pub connection: usize,
    /// The request line, e.g. `GET /a.bin HTTP/1.1`.
    pub request_line: String,
    pub request_headers: Vec<(String, String)>,
    /// The response status line as nginx sent it (empty if none arrived).
    pub status_line: String,
    pub status: u16,
    /// Response headers as nginx sent them (before any stripping/adding).
    pub response_headers: Vec<(String, String)>,
    /// Payload bytes forwarded to the client.
    pub body_bytes: u64,
    /// True when the proxy cut this response on purpose.
    pub cut: bool,
    /// True when the body was complete according to its framing.
    pub complete: bool,
    /// True once the proxy is done with this exchange.
    pub finished: bool,
}

impl Exchange {
    pub fn request_header(&self, name: &str) -> Option<&str> {
        find(&self.request_headers, name)
    }

    pub fn response_header(&self, name: &str) -> Option<&str> {
        find(&self.response_headers, name)
    }

    /// The first byte of the request's `Range: bytes=N-`, if any.
    pub fn range_start(&self) -> Option<u64> {
        let spec = self
            .request_header("range")?
            .trim()
            .strip_prefix("bytes=")?;
        spec.split('-').next()?.trim().parse().ok()
    }

    /// `(A, B)` of the request's `Range: bytes=A-B`, if it has one.
    pub fn range(&self) -> Option<(u64, u64)> {
        let spec = self
            .request_header("range")?
            .trim()
            .strip_prefix("bytes=")?;
        let (a, b) = spec.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }

    pub fn path(&self) -> &str {
        self.request_line.split(' ').nth(1).unwrap_or("")
    }
}

/// The value of header `name` (case-insensitive), if present.
fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What the HTTP relay threads share with the [`FaultProxy`] handle.
#[derive(Default)]
struct State {
    faults: Mutex<Faults>,
    exchanges: Mutex<Vec<Exchange>>,
    /// Exchange indices are handed out in request-arrival order.
    next_exchange: AtomicUsize,
    body_bytes: AtomicU64,
}

pub struct FaultProxy {
    listener: Listener,
    state: Arc<State>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards every connection to
    /// `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16, faults: Faults) -> FaultProxy {
        let state = Arc::new(State {
            faults: Mutex::new(faults),
            ..State::default()
        });
        let st = state.clone();
        let listener = Listener::start("fault-proxy", upstream_port, move |client, upstream, n| {
            relay::serve_connection(&st, client, upstream, n)
        });
        FaultProxy { listener, state }
    }

    pub fn port(&self) -> u16 {
        self.listener.port
    }

    /// `http://127.0.0.1:PROXYPORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.listener.port)
    }

    /// Replaces the fault rules (exchange indices keep counting from the start).
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.listener.connections()
    }

    /// Requests received so far (an exchange starts when its request head arrives).
    pub fn requests(&self) -> usize {
        self.state.next_exchange.load(Ordering::SeqCst)
    }

    /// Response body bytes forwarded to clients so far.
    pub fn body_bytes(&self) -> u64 {
        self.state.body_bytes.load(Ordering::SeqCst)
    }

    /// Every exchange so far, in request order. The request fields are recorded
    /// before the request is forwarded and the response head before it reaches the
    /// client, so whatever the client has seen is already here; `body_bytes`,
    /// `cut` and `complete` are final once `finished` is true.
    pub fn exchanges(&self) -> Vec<Exchange> {
        let mut v = self.state.exchanges.lock().unwrap().clone();
        v.sort_by_key(|e| e.index);
        v
    }
}
