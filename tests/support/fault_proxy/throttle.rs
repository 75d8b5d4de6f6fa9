//! A proxy that limits every connection to a fixed rate, as object stores do per
//! connection: the bytes from the server to the client go through a token bucket
//! of their own per connection (the requests pass unthrottled). Used by the
//! parallel-download benchmark, where K ranged connections should reach K times the
//! rate of one. [`ThrottleProxy::start_shared`] caps all connections together
//! instead (a link whose total is the limit: more connections do not help). Plain
//! TCP: no HTTP framing, nothing recorded but counts.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::listener::Listener;

/// Bytes forwarded per read (and the bucket's burst).
const CHUNK: usize = 128 << 10;

pub struct ThrottleProxy {
    listener: Listener,
    /// Server-to-client bytes forwarded, over all connections.
    bytes: Arc<AtomicU64>,
}

impl ThrottleProxy {
    /// Listens on a free 127.0.0.1 port; forwards to `127.0.0.1:upstream_port` with at
    /// most `bytes_per_sec` per connection from the server to the client.
    pub fn start(upstream_port: u16, bytes_per_sec: u64) -> ThrottleProxy {
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = bytes.clone();
        let listener = Listener::start("throttle", upstream_port, move |client, upstream, _| {
            let bucket = Mutex::new(Bucket::new(bytes_per_sec));
            relay(client, upstream, &bucket, &counted)
        });
        ThrottleProxy { listener, bytes }
    }

    /// Like `start`, but at most `bytes_per_sec` for all connections together.
    pub fn start_shared(upstream_port: u16, bytes_per_sec: u64) -> ThrottleProxy {
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = bytes.clone();
        let bucket = Arc::new(Mutex::new(Bucket::new(bytes_per_sec)));
        let listener = Listener::start("throttle", upstream_port, move |client, upstream, _| {
            relay(client, upstream, &bucket, &counted)
        });
        ThrottleProxy { listener, bytes }
    }

    pub fn port(&self) -> u16 {
        self.listener.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.listener.port)
    }

    pub fn connections(&self) -> usize {
        self.listener.connections()
    }

    /// Server-to-client bytes forwarded so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
}

/// A token bucket: `rate` bytes per second, bursts of at most `CHUNK`.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        Bucket {
            rate: rate as f64,
            tokens: CHUNK as f64,
            last: Instant::now(),
        }
    }

    /// Waits until `n` bytes may pass (a shared bucket stays locked meanwhile: the
    /// connections take turns).
    fn take(&mut self, n: usize) {
        let now = Instant::now();
        let burst = CHUNK as f64;
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(burst);
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens < 0.0 {
            let wait = -self.tokens / self.rate;
            std::thread::sleep(Duration::from_secs_f64(wait));
            // The sleep's own lateness is not made up for: the rate is a ceiling.
            self.tokens = 0.0;
            self.last = Instant::now();
        }
    }
}

fn relay(client: &TcpStream, upstream: &TcpStream, bucket: &Mutex<Bucket>, bytes: &AtomicU64) {
    // Requests: unthrottled.
    let (mut c_in, mut u_out) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut u_out);
        let _ = u_out.shutdown(Shutdown::Write);
    });
    let (mut u_in, mut c_out) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match u_in.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        bucket.lock().unwrap_or_else(|p| p.into_inner()).take(n);
        if c_out.write_all(&buf[..n]).is_err() {
            break;
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    // Both closed before the request copier is joined (it reads the client).
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = up.join();
}
