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

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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

    pub fn path(&self) -> &str {
        self.request_line.split(' ').nth(1).unwrap_or("")
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[derive(Default)]
struct State {
    faults: Mutex<Faults>,
    exchanges: Mutex<Vec<Exchange>>,
    /// Exchange indices are handed out in request-arrival order.
    next_exchange: AtomicUsize,
    connections: AtomicUsize,
    body_bytes: AtomicU64,
    stopping: AtomicBool,
    /// Both sockets of every live connection, shut down when the proxy stops.
    live: Mutex<Vec<TcpStream>>,
}

pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards every connection to
    /// `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            faults: Mutex::new(faults),
            ..State::default()
        });
        let st = state.clone();
        let acceptor = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if st.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let index = st.connections.fetch_add(1, Ordering::SeqCst);
                    let st2 = st.clone();
                    std::thread::Builder::new()
                        .name(format!("fault-proxy-conn-{index}"))
                        .spawn(move || serve_connection(st2, client, index, upstream_port))
                        .expect("spawn proxy connection thread");
                }
            })
            .expect("spawn proxy acceptor");
        FaultProxy {
            port,
            state,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PROXYPORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Replaces the fault rules (exchange indices keep counting from the start).
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
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

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor with a connection of our own.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for s in self.state.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn serve_connection(st: Arc<State>, client: TcpStream, connection: usize, upstream_port: u16) {
    if st.stopping.load(Ordering::SeqCst) {
        return;
    }
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        // Upstream down: the client sees the connection closed.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let mut live = st.live.lock().unwrap();
        live.push(client.try_clone().unwrap());
        live.push(upstream.try_clone().unwrap());
    }
    let mut from_client = BufReader::new(client.try_clone().unwrap());
    let mut to_client = client.try_clone().unwrap();
    let mut from_upstream = BufReader::new(upstream.try_clone().unwrap());
    let mut to_upstream = upstream.try_clone().unwrap();
    let close = || {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    };

    // One exchange per request head, until the client closes.
    while let Some(head) = read_head(&mut from_client) {
        let index = st.next_exchange.fetch_add(1, Ordering::SeqCst);
        let (request_line, request_headers) = parse_head(&head);
        let mut ex = Exchange {
            index,
            connection,
            request_line,
            request_headers,
            ..Exchange::default()
        };
        publish(&st, &ex);
        let is_head = ex.request_line.starts_with("HEAD ");
        if to_upstream.write_all(&head).is_err() {
            record(&st, ex);
            break;
        }
        // A request body (not used by the producer, forwarded for completeness).
        if let Some(n) = content_length(&ex.request_headers) {
            if copy_exact(&mut from_client, &mut to_upstream, n).is_err() {
                record(&st, ex);
                break;
            }
        }

        // Response head.
        let Some(rhead) = read_head(&mut from_upstream) else {
            record(&st, ex);
            break;
        };
        let (status_line, response_headers) = parse_head(&rhead);
        ex.status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        ex.status_line = status_line.clone();
        ex.response_headers = response_headers;
        publish(&st, &ex);
        let faults = st.faults.lock().unwrap().clone();
        if let Some((_, pause)) = faults.delay_response.iter().find(|(i, _)| *i == index) {
            std::thread::sleep(*pause);
        }
        let out_head = rewrite_head(&status_line, &ex.response_headers, &faults);
        if to_client.write_all(&out_head).is_err() {
            record(&st, ex);
            break;
        }
        let cut_after = faults
            .cut
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, n)| *n);

        // Response body, framed as the server framed it.
        let no_body = is_head || ex.status == 204 || ex.status == 304 || ex.status < 200;
        let chunked = ex
            .response_header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut counter = BodyCounter {
            st: &st,
            sent: 0,
            cut_after,
        };
        let result = if no_body {
            Ok(true)
        } else if chunked {
            forward_chunked(&mut from_upstream, &mut to_client, &mut counter)
        } else if let Some(n) = content_length(&ex.response_headers) {
            forward_length(&mut from_upstream, &mut to_client, &mut counter, Some(n))
        } else {
            forward_length(&mut from_upstream, &mut to_client, &mut counter, None)
        };
        ex.body_bytes = counter.sent;
        let keep_going = match result {
            Ok(complete) => {
                ex.complete = complete;
                complete && !header_says_close(&ex.response_headers)
            }
            Err(Cut) => {
                ex.cut = true;
                let _ = to_client.flush();
                if let Some(hook) = &faults.on_cut {
                    hook();
                }
                false
            }
        };
        let _ = to_client.flush();
        record(&st, ex);
        if !keep_going {
            break;
        }
    }
    close();
}

/// Stores the exchange's current state (replacing the earlier one of that index).
fn publish(st: &State, ex: &Exchange) {
    let mut all = st.exchanges.lock().unwrap();
    match all.iter_mut().find(|e| e.index == ex.index) {
        Some(e) => *e = ex.clone(),
        None => all.push(ex.clone()),
    }
}

/// Stores the exchange's final state.
fn record(st: &State, mut ex: Exchange) {
    ex.finished = true;
    publish(st, &ex);
}

/// The body was cut on purpose.
struct Cut;

struct BodyCounter<'a> {
    st: &'a State,
    sent: u64,
    cut_after: Option<u64>,
}

impl BodyCounter<'_> {
    /// How many of `available` payload bytes may still be forwarded.
    fn allowance(&self, available: usize) -> usize {
        match self.cut_after {
            Some(limit) => (limit.saturating_sub(self.sent) as usize).min(available),
            None => available,
        }
    }

    fn add(&mut self, n: usize) -> Result<(), Cut> {
        self.sent += n as u64;
        self.st.body_bytes.fetch_add(n as u64, Ordering::SeqCst);
        self.check()
    }

    fn check(&self) -> Result<(), Cut> {
        match self.cut_after {
            Some(limit) if self.sent >= limit => Err(Cut),
            _ => Ok(()),
        }
    }
}

/// Forwards `len` payload bytes (or up to EOF when `None`). Ok(true) when complete.
fn forward_length(
    from: &mut BufReader<TcpStream>,
    to: &mut TcpStream,
    counter: &mut BodyCounter<'_>,
    len: Option<u64>,
) -> Result<bool, Cut> {
    let mut left = len;
    loop {
        counter.check()?;
        if left == Some(0) {
            return Ok(true);
        }
        let buf = match from.fill_buf() {
            Ok(b) => b,
            Err(_) => return Ok(false),
        };
        if buf.is_empty() {
            // EOF: complete only for a close-delimited body.
            return Ok(len.is_none());
        }
        let mut n = buf.len();
        if let Some(l) = left {
            n = n.min(l as usize);
        }
        let n = counter.allowance(n);
        if to.write_all(&buf[..n]).is_err() {
            return Ok(false);
        }
        from.consume(n);
        if let Some(l) = left.as_mut() {
            *l -= n as u64;
        }
        counter.add(n)?;
    }
}

/// Forwards a chunked body, framing and all; counts only chunk payload.
fn forward_chunked(
    from: &mut BufReader<TcpStream>,
    to: &mut TcpStream,
    counter: &mut BodyCounter<'_>,
) -> Result<bool, Cut> {
    loop {
        let mut size_line = Vec::new();
        if from.read_until(b'\n', &mut size_line).unwrap_or(0) == 0 {
            return Ok(false);
        }
        let text = String::from_utf8_lossy(&size_line);
        let size_hex = text.trim().split(';').next().unwrap_or("").trim();
        let Ok(size) = u64::from_str_radix(size_hex, 16) else {
            return Ok(false);
        };
        if to.write_all(&size_line).is_err() {
            return Ok(false);
        }
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut line = Vec::new();
                if from.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                    return Ok(false);
                }
                if to.write_all(&line).is_err() {
                    return Ok(false);
                }
                if line == b"\r\n" || line == b"\n" {
                    return Ok(true);
                }
            }
        }
        if !forward_length(from, to, counter, Some(size))? {
            return Ok(false);
        }
        let mut crlf = [0u8; 2];
        if from.read_exact(&mut crlf).is_err() || to.write_all(&crlf).is_err() {
            return Ok(false);
        }
    }
}

fn copy_exact(from: &mut BufReader<TcpStream>, to: &mut TcpStream, n: u64) -> std::io::Result<()> {
    let copied = std::io::copy(&mut from.take(n), to)?;
    if copied == n {
        Ok(())
    } else {
        Err(std::io::ErrorKind::UnexpectedEof.into())
    }
}

/// Reads a message head up to and including the blank line; None on EOF/error.
fn read_head(r: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        match r.read_until(b'\n', &mut head) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // Stray empty line between messages.
                head.clear();
                continue;
            }
            return Some(head);
        }
    }
}

fn parse_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let first = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    (first, headers)
}

fn rewrite_head(status_line: &str, headers: &[(String, String)], faults: &Faults) -> Vec<u8> {
    let mut out = format!("{status_line}\r\n");
    for (k, v) in headers {
        if faults
            .strip_response_headers
            .iter()
            .any(|s| s.eq_ignore_ascii_case(k))
        {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    for (k, v) in &faults.add_response_headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn content_length(headers: &[(String, String)]) -> Option<u64> {
    find(headers, "content-length")?.trim().parse().ok()
}

fn header_says_close(headers: &[(String, String)]) -> bool {
    find(headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
}
