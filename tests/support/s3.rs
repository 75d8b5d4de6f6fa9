//! A real S3 protocol server, `s3s-fs` (crates.io; `scripts/install-s3s.sh` installs
//! it), started by a test on a free 127.0.0.1 port over its own temporary directory,
//! with one known access key and secret. It verifies AWS Signature V4 on every
//! request (header signatures, presigned URLs, the request time), serves Range
//! GETs and answers S3 XML errors; it has no 304 (conditional GETs get a 200).
//!
//! Buckets are the root's directories and objects their files, so a test creates
//! them by writing files ([`S3Server::put`], written beside and renamed, so the
//! server never serves half a file). Killed when the handle is dropped.
//!
//! Without s3s-fs the tests skip, printing why on stderr (and `cargo test` shows the
//! line even for a passing test); under CI (`CI` set) a missing s3s-fs fails instead, since CI installs it.
//!
//! The client's settings are the process environment (`AWS_*`): a test sets them with
//! [`Env`], which holds [`ENV_LOCK`] while it lives.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The credentials the server accepts.
pub const ACCESS_KEY: &str = "HDTESTACCESSKEY0001";
pub const SECRET_KEY: &str = "hd-test-secret/Kq8+wX2zR5vN0pL7mT3sY9uB";
pub const REGION: &str = "us-east-1";

/// How long startup may take before the harness gives up (a guard against a hung
/// child, not a limit on the behaviour under test).
const STARTUP_GUARD: Duration = Duration::from_secs(30);

pub struct S3Server {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// The s3s-fs binary: `HARMONICS_S3S_FS`, else `s3s-fs` on PATH, else cargo's bin
/// directory. `None` when there is none.
pub fn s3s_fs_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HARMONICS_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
        Some(home.join("bin").join("s3s-fs")).filter(|p| p.is_file())
    })
}

impl S3Server {
    /// Starts s3s-fs and waits until it accepts connections. `None` (after saying so
    /// on stderr) when s3s-fs is not installed outside CI; panics under CI.
    pub fn start() -> Option<S3Server> {
        let Some(bin) = s3s_fs_binary() else {
            let msg = "s3s-fs is not installed (run scripts/install-s3s.sh): S3 test SKIPPED";
            if std::env::var_os("CI").is_some() {
                panic!("{msg} — but CI must run it");
            }
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "\n*** {msg} ***");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("hd-s3s.")
            .tempdir()
            .expect("cannot create a temp dir for s3s-fs");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        // The port is found by binding port 0 and releasing it; another process may
        // take it in between, so a failed start is retried on a new port.
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("s3s-fs.log")).unwrap();
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&root)
                .env("RUST_LOG", "s3s=warn,s3s_fs=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    return Some(S3Server {
                        dir,
                        port,
                        child: Some(child),
                    })
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log =
                        std::fs::read_to_string(dir.path().join("s3s-fs.log")).unwrap_or_default();
                    last_error = format!("{e}; its output: {log}");
                }
            }
        }
        panic!("s3s-fs did not start: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory the server stores buckets in.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root().join(bucket)).unwrap();
    }

    /// Stores `bytes` as object `key` of `bucket` (creating both), atomically.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root().join(bucket).join(key);
        let parent = path.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        let tmp = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(tmp.path(), bytes).unwrap();
        tmp.persist(&path).unwrap();
        path
    }

    /// What the server wrote to stdout/stderr (warnings, errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("s3s-fs.log")).unwrap_or_default()
    }

    /// Kills the server now (the port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("s3s-fs exited with {status}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > STARTUP_GUARD {
            return Err(format!(
                "no connection on port {port} within {STARTUP_GUARD:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Held by every [`Env`]: tests in one binary run in threads of one process.
pub static ENV_LOCK: Mutex<()> = Mutex::new(());

/// The `AWS_*` variables the S3 client reads.
pub const AWS_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
];

/// `cmd` (a child process that talks to S3) without this process's `AWS_*` variables:
/// it gets only the settings its test gives it, also while another test of the binary
/// holds an [`Env`] (which sets them in the whole process, the children it starts
/// meanwhile included). The variables the test gives (`cmd.env`) go after this.
pub fn without_aws_env(cmd: &mut Command) -> &mut Command {
    for name in AWS_VARS {
        cmd.env_remove(name);
    }
    cmd
}

/// The environment of one test: every `AWS_*` variable unset but those given, and
/// HOME at an empty directory (so no real `~/.aws/credentials` is read). Restored
/// on drop.
pub struct Env {
    saved: Vec<(String, Option<std::ffi::OsString>)>,
    _home: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

impl Env {
    pub fn set(vars: &[(&str, &str)]) -> Env {
        let lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let home = tempfile::tempdir().unwrap();
        let mut saved = Vec::new();
        for name in AWS_VARS.iter().copied().chain(["HOME"]) {
            saved.push((name.to_string(), std::env::var_os(name)));
            std::env::remove_var(name);
        }
        std::env::set_var("HOME", home.path());
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
        Env {
            saved,
            _home: home,
            _lock: lock,
        }
    }

    /// The server's endpoint and its credentials, plus `extra`.
    pub fn for_server(server: &S3Server, extra: &[(&str, &str)]) -> Env {
        let endpoint = server.endpoint();
        let mut vars = vec![
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ];
        for (k, v) in extra {
            vars.retain(|(n, _)| n != k);
            vars.push((k, v));
        }
        Env::set(&vars)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for (k, v) in &self.saved {
            match v {
                Some(v) => std::env::set_var(k, v),
                None => std::env::remove_var(k),
            }
        }
    }
}
