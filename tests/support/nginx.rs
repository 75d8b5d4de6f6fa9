//! A real nginx (Debian's `nginx-light`) started by a test on a free loopback port,
//! in its own temporary directory with its own configuration, logs and document
//! root; killed when the handle is dropped. Each test starts its own server, so
//! tests share nothing and need no lock.
//!
//! The access log records, per request, the headers that matter to the HTTP
//! producer (Range, If-Range, If-None-Match, If-Modified-Since, Accept-Encoding)
//! and what nginx did about them (status, body bytes, gzip ratio, Content-Encoding,
//! Transfer-Encoding, ETag), one tab-separated line each; [`Nginx::access_log`]
//! parses it.
//!
//! Document root layout (all the same files under `www/`):
//! - `/…`           gzip on for `application/octet-stream` (`.bin`), ETag on;
//! - `/identity/…`  gzip off (so Range requests are honoured: nginx never serves a
//!   byte range of a gzipped response);
//! - `/noranges/…`  gzip off and `max_ranges 0` (a server without Range support);
//! - `/error500/…`  always HTTP 500;
//! - `/moved/X`     a 302 redirect to `/X`.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

// An explicit path: benchmarks include this file alone with `#[path]`, and a path
// from here resolves the same way for them and for `support`.
#[path = "nginx/log.rs"]
mod log;

pub use log::LogLine;
use log::{parse_log_line, LOG_FIELDS};

/// Where nginx is looked for; `HARMONICS_NGINX` overrides.
const NGINX_BIN: &str = "/usr/sbin/nginx";

/// How long startup may take before the harness gives up with nginx's error log.
/// (A harness guard against a hung child, not a limit on the behaviour under test.)
const STARTUP_GUARD: Duration = Duration::from_secs(20);

/// A running nginx; killed when dropped.
pub struct Nginx {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Starts nginx on a free 127.0.0.1 port and waits until it accepts connections.
    ///
    /// Panics (never skips) when nginx is not installed: the HTTP tests are part of
    /// the suite, and CI installs `nginx-light`.
    pub fn start() -> Nginx {
        Nginx::start_with(None)
    }

    /// Like `start`, but serving HTTPS with this certificate chain and key (PEM).
    pub fn start_tls(cert: &Path, key: &Path) -> Nginx {
        Nginx::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> Nginx {
        let bin = Nginx::binary().unwrap_or_else(|| {
            panic!(
                "nginx is required by the HTTP tests and was not found at {} \
                 (install it with `apt-get install -y nginx-light`, or point \
                 HARMONICS_NGINX at an nginx binary)",
                binary_path().display()
            )
        });
        Nginx::launch(&bin, |dir, port| config(dir, port, tls))
            .unwrap_or_else(|e| panic!("nginx did not start: {e}"))
    }

    /// For the benchmarks: serves `root` as it is, set up for throughput (sendfile,
    /// no access log, no gzip, no other locations). An error, not a panic, when
    /// nginx is not installed: a benchmark then skips its HTTP figures.
    pub fn serve_for_benchmarks(root: &Path) -> Result<Nginx, String> {
        let bin = Nginx::binary().ok_or_else(|| {
            format!(
                "no nginx at {} (set HARMONICS_NGINX)",
                binary_path().display()
            )
        })?;
        Nginx::launch(&bin, |dir, port| throughput_config(dir, port, root))
    }

    /// The nginx binary, when there is one (`HARMONICS_NGINX` overrides
    /// `/usr/sbin/nginx`).
    pub fn binary() -> Option<PathBuf> {
        let bin = binary_path();
        bin.exists().then_some(bin)
    }

    /// Starts `bin` with the configuration `conf(dir, port)` on a free port, in a new
    /// temp dir (with `www/` and `temp/`), and waits until it accepts connections.
    fn launch(bin: &Path, conf: impl Fn(&Path, u16) -> String) -> Result<Nginx, String> {
        let dir = tempfile::Builder::new()
            .prefix("hd-nginx.")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir for nginx: {e}"))?;
        for sub in ["www", "temp"] {
            std::fs::create_dir_all(dir.path().join(sub)).map_err(|e| e.to_string())?;
        }
        // The port is found by binding port 0 and releasing it; another process may
        // grab it in between, so a failed bind is retried on a new port.
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf(dir.path(), port)).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(dir.path().join("error.log"));
            let mut child = Command::new(bin)
                .arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
            match wait_ready(&mut child, port, dir.path()) {
                Ok(()) => {
                    return Ok(Nginx {
                        dir,
                        port,
                        child: Some(child),
                    })
                }
                Err(e) => {
                    last_error = e;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        Err(last_error)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The document root.
    pub fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// The server's own directory (config, logs, document root).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Publishes `bytes` as `www/<name>` atomically (write beside, then rename), so
    /// nginx never serves a half-written file. Returns the file's path.
    pub fn publish(&self, name: &str, bytes: &[u8]) -> PathBuf {
        publish_file(&self.www(), name, bytes, None)
    }

    /// Like [`publish`](Self::publish), with the file's modification time set, which
    /// nginx turns into Last-Modified and the ETag (`"mtime-size"`).
    pub fn publish_with_mtime(&self, name: &str, bytes: &[u8], mtime: SystemTime) -> PathBuf {
        publish_file(&self.www(), name, bytes, Some(mtime))
    }

    /// Every access-log line written so far.
    pub fn access_log(&self) -> Vec<LogLine> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| parse_log_line(l).unwrap_or_else(|| panic!("bad access log line: {l:?}")))
            .collect()
    }

    /// Access-log lines for one request path.
    pub fn requests_for(&self, path: &str) -> Vec<LogLine> {
        self.access_log()
            .into_iter()
            .filter(|l| l.path() == path)
            .collect()
    }

    /// Waits until the access log satisfies `done` (nginx writes a line when it
    /// finalises a request, which can be a moment after the client has everything),
    /// then returns it. Panics with the log after a generous guard.
    pub fn wait_log(&self, what: &str, done: impl Fn(&[LogLine]) -> bool) -> Vec<LogLine> {
        let started = Instant::now();
        loop {
            let log = self.access_log();
            if done(&log) {
                return log;
            }
            if started.elapsed() > STARTUP_GUARD {
                panic!("access log never showed {what}: {log:#?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// nginx's error log (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Kills nginx and waits for it; the port refuses connections afterwards.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Atomically replaces `dir/name` with `bytes` (and `mtime`, if given); usable
/// from any thread (e.g. a proxy hook) with just the document root.
pub fn publish_file(dir: &Path, name: &str, bytes: &[u8], mtime: Option<SystemTime>) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.publishing"));
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(bytes).unwrap();
    if let Some(t) = mtime {
        f.set_modified(t).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn binary_path() -> PathBuf {
    std::env::var_os("HARMONICS_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(NGINX_BIN))
}

/// Polls the port until nginx accepts, or reports why it exited.
fn wait_ready(child: &mut Child, port: u16, dir: &Path) -> Result<(), String> {
    let error_log = || std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut stderr);
            }
            return Err(format!(
                "nginx exited with {status}: {stderr}{}",
                error_log()
            ));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > STARTUP_GUARD {
            return Err(format!(
                "nginx not accepting on port {port} after {STARTUP_GUARD:?}: {}",
                error_log()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

fn config(dir: &Path, port: u16, tls: Option<(&Path, &Path)>) -> String {
    let d = dir.display();
    let listen = match tls {
        None => format!("listen 127.0.0.1:{port};"),
        Some((cert, key)) => format!(
            "listen 127.0.0.1:{port} ssl;\n        ssl_certificate {};\n        ssl_certificate_key {};",
            cert.display(),
            key.display()
        ),
    };
    let fields = LOG_FIELDS.join("\t");
    format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    log_format harness "{fields}";
    access_log {d}/access.log harness;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    types {{
        application/octet-stream bin cache;
    }}
    default_type application/octet-stream;
    gzip on;
    gzip_types application/octet-stream;
    gzip_min_length 1;
    etag on;
    server {{
        {listen}
        root {d}/www;
        location /identity/ {{
            alias {d}/www/;
            gzip off;
        }}
        location /noranges/ {{
            alias {d}/www/;
            gzip off;
            max_ranges 0;
        }}
        location /error500/ {{
            return 500;
        }}
        location /moved/ {{
            rewrite ^/moved/(.*)$ /$1 redirect;
        }}
    }}
}}
"#
    )
}

/// The benchmarks' configuration: `root` served as it is, as fast as nginx serves
/// files (sendfile, no access log, no gzip).
fn throughput_config(dir: &Path, port: u16, root: &Path) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 64;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {};
    }}
}}
"#,
        root.display()
    )
}
