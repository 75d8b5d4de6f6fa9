//! One HTTP client and connection pool per configuration, shared by every producer
//! of the process: a server on 127.0.0.1 that keeps its connections alive and counts
//! the ones it accepts sees ONE connection for several producers over the same
//! options, and a new one for options that configure another client (a CA file,
//! timeouts).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use harmonics_dataset::tensor::write_tensor;
use harmonics_dataset::{
    AsyncHttpProducer, CacheOutcome, HttpOptions, HttpProducer, Producer, Tensor,
};

use crate::support;

/// A keep-alive HTTP/1.1 server: every request on a connection is answered 200 with
/// `body`, and the connection stays open for the next one. Counts accepted
/// connections and requests.
struct KeepAliveServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl KeepAliveServer {
    fn start(body: Vec<u8>) -> KeepAliveServer {
        KeepAliveServer::start_with(body, None)
    }

    /// As `start`, but a connection idle for `idle_close` after its last response is
    /// closed by the server (as servers with a keep-alive timeout do), without telling
    /// the client beforehand.
    fn start_with(body: Vec<u8>, idle_close: Option<Duration>) -> KeepAliveServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let body = Arc::new(body);
        let (c, r, s) = (connections.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        let (r, s, body) = (r.clone(), s.clone(), body.clone());
                        std::thread::spawn(move || serve(stream, &body, idle_close, &r, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        KeepAliveServer {
            port,
            connections,
            requests,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/data.bin", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for KeepAliveServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers requests on one connection until the client closes it, the server stops,
/// or (with `idle_close`) the connection has been idle that long.
fn serve(
    stream: TcpStream,
    body: &[u8],
    idle_close: Option<Duration>,
    requests: &AtomicUsize,
    stop: &AtomicBool,
) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let idle_since = std::time::Instant::now();
        // The request head, up to its empty line (GETs carry no body).
        let mut head_done = false;
        let mut saw_any = false;
        while !head_done {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {
                    saw_any = true;
                    head_done = line == "\r\n" || line == "\n";
                }
                Err(_) if stop.load(Ordering::Relaxed) => return,
                // A read timeout between requests: keep waiting for the next one,
                // or close a connection idle for longer than `idle_close`.
                Err(_) if !saw_any => {
                    if idle_close.is_some_and(|d| idle_since.elapsed() >= d) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            body.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(body).is_err() {
            return;
        }
        let _ = out.flush();
    }
}

fn body(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        write_tensor(&mut out, Tensor::from_f32(&[i as f32, 1.0, 2.0]).as_ref()).unwrap();
    }
    out
}

/// One test of this suite at a time: connection counts stay per test, and the fork
/// happens while no other test thread of the forking process holds a lock the child
/// would need.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// No persistent cache: every producer downloads.
fn uncached() -> HttpOptions {
    HttpOptions {
        cache: false,
        retries: 0,
        ..HttpOptions::default()
    }
}

/// A self-signed CA certificate made by `openssl` (the test's only external tool).
fn ca_pem(dir: &Path) -> std::path::PathBuf {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=harmonics pool test CA",
        ])
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("ca.pem")
}

#[test]
fn producers_over_the_same_options_share_one_connection() {
    let _serial = serial();
    let server = KeepAliveServer::start(body(5));
    let mut a = HttpProducer::from_url(&server.url(), uncached()).unwrap();
    assert_eq!(a.outcome(), CacheOutcome::Created);
    let mut b = HttpProducer::from_url(&server.url(), uncached()).unwrap();
    // Through the other producer kinds too: one pool for all of them.
    let mut c = AsyncHttpProducer::from_url(&server.url(), uncached()).unwrap();
    assert_eq!(c.size().unwrap(), 5);
    for p in [&mut a as &mut dyn Producer, &mut b, &mut c] {
        assert_eq!(p.size().unwrap(), 5);
        assert_eq!(p.next().unwrap().to_f32(), vec![0.0, 1.0, 2.0]);
    }
    assert_eq!(server.requests(), 3);
    assert_eq!(
        server.connections(),
        1,
        "three downloads one after another over the same options reuse one connection"
    );
}

#[test]
fn a_pooled_connection_the_server_closed_is_not_used_again() {
    let _serial = serial();
    // The server drops every connection idle for 50 ms; the client is not told.
    let server = KeepAliveServer::start_with(body(4), Some(Duration::from_millis(50)));
    let first = HttpProducer::from_url(&server.url(), uncached()).unwrap();
    assert_eq!(first.len(), 4);
    // Long past the server's idle timeout (its read timeout is 100 ms).
    std::thread::sleep(Duration::from_millis(600));
    // No retries: a request sent on the closed connection would fail this download.
    let mut second = HttpProducer::from_url(&server.url(), uncached()).unwrap();
    assert_eq!(second.len(), 4);
    assert_eq!(second.next().unwrap().to_f32(), vec![0.0, 1.0, 2.0]);
    assert_eq!(server.requests(), 2);
    assert_eq!(
        server.connections(),
        2,
        "the closed connection was replaced"
    );
}

#[test]
fn four_threads_downloading_at_once_share_the_pool() {
    let _serial = serial();
    let server = KeepAliveServer::start(body(6));
    let start = Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (url, start) = (server.url(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut p = HttpProducer::from_url(&url, uncached()).unwrap();
                (0..6)
                    .map(|_| p.next().unwrap().to_f32())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        let got = t.join().unwrap();
        let want: Vec<Vec<f32>> = (0..6).map(|i| vec![i as f32, 1.0, 2.0]).collect();
        assert_eq!(got, want);
    }
    assert_eq!(server.requests(), 4);
    // At most one connection per concurrent download, and they stay in the pool: a
    // fifth download opens none.
    let opened = server.connections();
    assert!((1..=4).contains(&opened), "{opened} connections");
    HttpProducer::from_url(&server.url(), uncached()).unwrap();
    assert_eq!(server.connections(), opened);
}

#[test]
fn other_timeouts_or_another_ca_file_get_a_client_of_their_own() {
    let _serial = serial();
    let server = KeepAliveServer::start(body(3));
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_pem(dir.path());
    let variants = [
        uncached(),
        HttpOptions {
            read_timeout: Duration::from_secs(31),
            ..uncached()
        },
        HttpOptions {
            connect_timeout: Duration::from_secs(11),
            ..uncached()
        },
        HttpOptions {
            ca_cert: Some(ca),
            ..uncached()
        },
    ];
    for (i, opts) in variants.iter().enumerate() {
        let p = HttpProducer::from_url(&server.url(), opts.clone()).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(server.connections(), i + 1, "options {opts:?}");
    }
    // Each configuration's client is kept: downloading again over any of them opens
    // no new connection.
    for opts in &variants {
        HttpProducer::from_url(&server.url(), opts.clone()).unwrap();
    }
    assert_eq!(server.requests(), 8);
    assert_eq!(server.connections(), variants.len());
    // The CA file replaced by another CA's (`cp` over it): the old client trusted the
    // old certificates only, so the same path makes a new client.
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(ca_pem(other.path()), variants[3].ca_cert.as_ref().unwrap()).unwrap();
    HttpProducer::from_url(&server.url(), variants[3].clone()).unwrap();
    assert_eq!(server.connections(), variants.len() + 1);
}

/// Set in the process that runs `a_forked_child_builds_its_own_client` itself.
const FORKING: &str = "HD_POOL_FORKING";

/// The test forks in a process of its own: this binary again, running this test alone
/// (the other suites of the binary run on threads of the test process, and one may
/// hold a lock at the fork that the forked child would need).
#[test]
fn a_forked_child_builds_its_own_client() {
    if std::env::var_os(FORKING).is_none() {
        let name = support::test_name(module_path!(), "a_forked_child_builds_its_own_client");
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(FORKING, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}");
        return;
    }
    let _serial = serial();
    let server = KeepAliveServer::start(body(2));
    // The parent's client (and its runtime thread) exist before the fork.
    HttpProducer::from_url(&server.url(), uncached()).unwrap();
    assert_eq!(server.connections(), 1);
    // SAFETY: the child only downloads with the library (its own client, built after
    // the fork: the parent's runtime thread does not exist in the child) and exits
    // with `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = HttpProducer::from_url(&server.url(), uncached())
            .map(|p| p.len() == 2)
            .unwrap_or(false);
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    // A child that used the parent's client would wait forever for its runtime
    // thread: a bounded wait (generous, the machine is shared), then it is killed.
    let mut status = 0;
    let mut waited = 0;
    loop {
        // SAFETY: polls the child forked above.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "waitpid failed");
        if waited >= 120_000 {
            // SAFETY: kills and reaps the child forked above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child's download did not finish (the parent's client?)");
        }
        std::thread::sleep(Duration::from_millis(20));
        waited += 20;
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child's download failed (status {status})"
    );
    // The child connected on its own; the parent still has its pooled connection.
    assert_eq!(server.connections(), 2);
    HttpProducer::from_url(&server.url(), uncached()).unwrap();
    assert_eq!(server.connections(), 2);
}
