//! In-process HTTP test servers on 127.0.0.1, written the way the original runtime's
//! tests wrote theirs: a raw socket, `HTTP/1.1 200 OK`, `Content-Length`,
//! `Connection: close`. Plus fault modes (error statuses, truncated bodies, garbage,
//! a record claiming 4 GiB, a stall, slow bodies, a connection dropped once, Range).
//!
//! Part of the tests' `support` module (`use support::http_server;`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use harmonics_dataset::write_tensor;
use harmonics_dataset::Tensor;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// N of a `Range: bytes=N-` request (panics on any other Range: the test servers
    /// answer only what the producer sends).
    pub fn range_start(&self) -> Option<usize> {
        let r = self.header("range")?;
        let n = r.trim_start_matches("bytes=").trim_end_matches('-').parse();
        Some(n.unwrap_or_else(|_| panic!("unexpected Range: {r:?}")))
    }
}

/// What a handler gets: the request, the socket, and the server's stop flag.
pub struct Conn<'a> {
    pub req: &'a Request,
    pub stream: &'a mut TcpStream,
    pub stop: &'a AtomicBool,
    /// 0-based number of this request on the server.
    pub n: usize,
}

impl Conn<'_> {
    /// A complete response with Content-Length and `Connection: close`.
    pub fn respond(&mut self, status: &str, extra_headers: &[(&str, String)], body: &[u8]) {
        self.head(status, body.len(), extra_headers);
        let _ = self.stream.write_all(body);
        let _ = self.stream.flush();
    }

    /// A 206 of `body[start..]` with its `Content-Range` (after `extra_headers`).
    pub fn respond_partial(&mut self, start: usize, extra_headers: &[(&str, String)], body: &[u8]) {
        let mut h = extra_headers.to_vec();
        h.push((
            "Content-Range",
            format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
        ));
        self.respond("206 Partial Content", &h, &body[start..]);
    }

    /// Writes the status line and headers, claiming `content_length` body bytes.
    pub fn head(&mut self, status: &str, content_length: usize, extra_headers: &[(&str, String)]) {
        let mut h = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {content_length}\r\nConnection: close\r\n"
        );
        for (k, v) in extra_headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        let _ = self.stream.write_all(h.as_bytes());
        let _ = self.stream.flush();
    }

    /// Sleeps `d` unless the server is stopping. False when stopping.
    pub fn sleep(&self, d: Duration) -> bool {
        let step = Duration::from_millis(10);
        let mut left = d;
        while !left.is_zero() {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            let s = left.min(step);
            std::thread::sleep(s);
            left -= s;
        }
        true
    }
}

type Handler = dyn Fn(&mut Conn<'_>) + Send + Sync + 'static;

/// A server running on 127.0.0.1 (or another loopback address) until dropped.
pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1 with a handler called once per request.
    pub fn start(handler: impl Fn(&mut Conn<'_>) + Send + Sync + 'static) -> TestServer {
        Self::start_on("127.0.0.1:0", handler).expect("bind 127.0.0.1")
    }

    pub fn start_on(
        bind: &str,
        handler: impl Fn(&mut Conn<'_>) + Send + Sync + 'static,
    ) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let workers = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let count = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (stop, requests, workers) = (stop.clone(), requests.clone(), workers.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let (stop, requests, handler, count) = (
                                stop.clone(),
                                requests.clone(),
                                handler.clone(),
                                count.clone(),
                            );
                            let w = std::thread::spawn(move || {
                                let Some(req) = read_request(&mut stream) else {
                                    return;
                                };
                                requests.lock().unwrap().push(req.clone());
                                let n = count.fetch_add(1, Ordering::SeqCst);
                                let mut conn = Conn {
                                    req: &req,
                                    stream: &mut stream,
                                    stop: &stop,
                                    n,
                                };
                                handler(&mut conn);
                                let _ = stream.shutdown(std::net::Shutdown::Both);
                            });
                            workers.lock().unwrap().push(w);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(TestServer {
            addr,
            stop,
            accept: Some(accept),
            workers,
            requests,
        })
    }

    /// Serves `body` with 200 to every request (the original tests' server).
    pub fn serving(body: Vec<u8>) -> TestServer {
        Self::start(move |c| c.respond("200 OK", &[], &body))
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}` (or `[::1]` for an IPv6 server).
    pub fn url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(a) => format!("http://{}:{}{path}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("http://[{}]:{}{path}", a.ip(), a.port()),
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Stops accepting, ends stalled handlers and joins every thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap());
        for w in workers {
            let _ = w.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(Request {
        method,
        path,
        headers,
    })
}

/// `n` float32 records of `width` values: record i holds i*1000 + j.
pub fn records(n: usize, width: usize) -> Vec<Tensor> {
    (0..n)
        .map(|i| {
            let v: Vec<f32> = (0..width).map(|j| (i * 1000 + j) as f32).collect();
            Tensor::from_f32(&v)
        })
        .collect()
}

/// The records as a body of concatenated wire records (the original format).
pub fn wire_body(records: &[Tensor]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in records {
        write_tensor(&mut out, t.as_ref()).unwrap();
    }
    out
}

/// Serves `body` honouring `Range: bytes=N-` with 206, with an ETag and
/// `Accept-Ranges: bytes`; the first full response (request 0) is cut after
/// `drop_after` bytes (Content-Length still announcing the whole body).
pub fn dropping_once_with_range(body: Vec<u8>, drop_after: usize) -> TestServer {
    TestServer::start(move |c| {
        let etag = ("ETag", "\"v1\"".to_string());
        let ranges = ("Accept-Ranges", "bytes".to_string());
        if let Some(start) = c.req.range_start() {
            c.respond_partial(start, &[etag, ranges], &body);
        } else if c.n == 0 {
            c.head("200 OK", body.len(), &[etag, ranges]);
            let _ = c.stream.write_all(&body[..drop_after]);
            // Connection dropped mid-body.
        } else {
            c.respond("200 OK", &[etag, ranges], &body);
        }
    })
}

/// Answers every request with `status` (e.g. "404 Not Found") and a short body.
pub fn status(status: &'static str) -> TestServer {
    TestServer::start(move |c| c.respond(status, &[], status.as_bytes()))
}

/// Announces all of `body` but sends only its first `keep` bytes, then closes.
pub fn truncated(body: Vec<u8>, keep: usize) -> TestServer {
    TestServer::start(move |c| {
        c.head("200 OK", body.len(), &[]);
        let _ = c.stream.write_all(&body[..keep]);
    })
}

/// Sends the first `keep` bytes of `body`, then stalls until the server stops.
pub fn stalling(body: Vec<u8>, keep: usize) -> TestServer {
    TestServer::start(move |c| {
        c.head("200 OK", body.len(), &[]);
        let _ = c.stream.write_all(&body[..keep]);
        let _ = c.stream.flush();
        c.sleep(Duration::from_secs(600));
    })
}

/// Sends `chunks` one after another, `every` apart, with a Content-Length for the
/// whole body (plus 100 bytes never sent when `truncate`); `sent` counts the chunks
/// written so far on the current request.
pub fn slow(
    chunks: Vec<Vec<u8>>,
    every: Duration,
    sent: Arc<AtomicUsize>,
    truncate: bool,
) -> TestServer {
    TestServer::start(move |c| {
        let total: usize =
            chunks.iter().map(Vec::len).sum::<usize>() + if truncate { 100 } else { 0 };
        c.head("200 OK", total, &[]);
        sent.store(0, Ordering::SeqCst);
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 && !c.sleep(every) {
                return;
            }
            // Counted before the write: a client that has read chunk i sees at least
            // i + 1 here (counted after, a fast client could see the count lag).
            sent.store(i + 1, Ordering::SeqCst);
            if c.stream.write_all(chunk).is_err() {
                return;
            }
            let _ = c.stream.flush();
        }
    })
}

/// One wire record per chunk (for `slow`).
pub fn wire_chunks(records: &[Tensor]) -> Vec<Vec<u8>> {
    records
        .iter()
        .map(|t| wire_body(std::slice::from_ref(t)))
        .collect()
}

/// `data` as a gzip stream made of stored (uncompressed) deflate blocks: a valid
/// `Content-Encoding: gzip` body without a compression library.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut blocks = data.chunks(65535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(b) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = b.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(b);
    }
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}
