//! A loopback TCP proxy that limits every connection to a fixed rate, as object stores
//! do per connection: the bytes from the server to the client go through a token
//! bucket of their own per connection (the requests pass unthrottled). Used by the
//! parallel-download benchmark (`benches/parallel_fetch/main.rs`), where K ranged
//! connections should reach K times the rate of one.
//!
//! Part of the tests' `support` module (`use support::throttle_proxy;`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes forwarded per read (and the bucket's burst).
const CHUNK: usize = 128 << 10;

#[derive(Default)]
struct State {
    stopping: AtomicBool,
    connections: AtomicUsize,
    /// Server-to-client bytes forwarded, over all connections.
    bytes: AtomicU64,
    live: Mutex<Vec<TcpStream>>,
}

pub struct ThrottleProxy {
    port: u16,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl ThrottleProxy {
    /// Listens on a free 127.0.0.1 port; forwards to `127.0.0.1:upstream_port` with at
    /// most `bytes_per_sec` per connection from the server to the client.
    pub fn start(upstream_port: u16, bytes_per_sec: u64) -> ThrottleProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind throttle proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let st = state.clone();
        let acceptor = std::thread::Builder::new()
            .name("throttle-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if st.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    st.connections.fetch_add(1, Ordering::SeqCst);
                    let st2 = st.clone();
                    std::thread::spawn(move || serve(st2, client, upstream_port, bytes_per_sec));
                }
            })
            .expect("spawn throttle acceptor");
        ThrottleProxy {
            port,
            state,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Server-to-client bytes forwarded so far.
    pub fn bytes(&self) -> u64 {
        self.state.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for ThrottleProxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for s in self.state.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// A token bucket: `rate` bytes per second, bursts of at most `CHUNK`.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Waits until `n` bytes may pass.
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

fn serve(st: Arc<State>, client: TcpStream, upstream_port: u16, rate: u64) {
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
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
    // Requests: unthrottled.
    let (mut c_in, mut u_out) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut u_out);
        let _ = u_out.shutdown(Shutdown::Write);
    });
    let (mut u_in, mut c_out) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
    let mut bucket = Bucket {
        rate: rate as f64,
        tokens: CHUNK as f64,
        last: Instant::now(),
    };
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match u_in.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        bucket.take(n);
        if c_out.write_all(&buf[..n]).is_err() {
            break;
        }
        st.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = up.join();
}
