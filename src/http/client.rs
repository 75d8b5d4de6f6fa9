//! The HTTP client: how it is built from `HttpOptions` (CA file, timeouts, redirects,
//! gzip), the process-wide client shared per configuration, the one `send` every
//! request leaves through, and small response helpers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use once_cell::sync::Lazy;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{self, HeaderMap};

use super::s3::SendSigned;
use super::HttpOptions;
use crate::error::{Error, HttpCause, HttpErrorKind, Result};

/// Sends a request of the download: the first GET, a resume and every ranged GET of
/// a parallel download all leave through here, so that a step every request needs
/// (SigV4 signing of `s3://` URLs) is applied in one place.
pub(crate) fn send(req: RequestBuilder, url: &str) -> reqwest::Result<Response> {
    req.send_signed(url)
}

/// What configures a client: the CA file (its path and the certificates it held when
/// read: a rewritten file makes another client) and the timeouts. Everything else a
/// client is built with is the same for all.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    ca_cert: Option<(PathBuf, Vec<u8>)>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl ClientKey {
    fn of(opts: &HttpOptions) -> Result<ClientKey> {
        let ca_cert = match &opts.ca_cert {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| Error::io("cannot read the CA certificate file", path, e))?;
                Some((path.clone(), pem))
            }
            None => None,
        };
        Ok(ClientKey {
            ca_cert,
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
        })
    }
}

/// The clients of this process, one per `ClientKey`.
#[derive(Default)]
struct Pool {
    clients: HashMap<ClientKey, Client>,
}

static POOL: Lazy<Mutex<Pool>> = Lazy::new(Mutex::default);

/// The process that owns `POOL` (0 until the first use).
static POOL_PID: AtomicU32 = AtomicU32::new(0);

/// The process-wide client for `opts`' configuration (see `ClientKey`), built on first
/// use: every producer, partial fetch and publish of the process with the same CA file
/// and timeouts shares it, and so its connection pool (keep-alive connections are
/// reused from one download to the next).
///
/// A child made by `fork()` never touches the parent's pool: the parent's clients
/// have runtime threads that do not exist in the child (a request there would never
/// be answered), and the pool's lock may have been held by one of the parent's other
/// threads at the fork (the child would wait for it forever). The child builds a
/// client for each call instead.
pub(crate) fn shared_client(opts: &HttpOptions) -> Result<Client> {
    let key = ClientKey::of(opts)?;
    let pid = std::process::id();
    match POOL_PID.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(owner) if owner == pid => {}
        Err(_) => return build(&key),
    }
    let lock = || POOL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = lock().clients.get(&key) {
        return Ok(c.clone());
    }
    // Built outside the lock (it takes milliseconds: TLS roots, the runtime thread);
    // when two threads race, the first inserted wins and the other is dropped.
    let client = build(&key)?;
    Ok(lock().clients.entry(key).or_insert(client).clone())
}

/// A client of its own for `opts` (with connections of its own: a download that
/// restarts after the server closed the connections of a changed object).
pub(crate) fn build_client(opts: &HttpOptions) -> Result<Client> {
    build(&ClientKey::of(opts)?)
}

fn build(key: &ClientKey) -> Result<Client> {
    let mut builder = Client::builder();
    if let Some((path, pem)) = &key.ca_cert {
        // A CA file that cannot be used is a TLS failure (of the configuration).
        let tls = HttpCause::of(HttpErrorKind::Tls);
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            let d = format!(
                "{}: not a PEM certificate bundle: {}",
                path.display(),
                chain(&e)
            );
            Error::http(tls, "", d)
        })?;
        if certs.is_empty() {
            let d = format!("{}: no certificate in the file", path.display());
            return Err(Error::http(tls, "", d));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .connect_timeout(key.connect_timeout)
        // In the blocking client this bounds the wait for the response head and for
        // every single read of the body: a read timeout, not a total one.
        .timeout(key.read_timeout)
        .redirect(reqwest::redirect::Policy::limited(10))
        .gzip(true)
        .user_agent(concat!("harmonics-dataset/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            let d = format!("cannot create the HTTP client: {}", chain(&e));
            Error::http(HttpCause::of(HttpErrorKind::Other), "", d)
        })
}

/// An error with its causes, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

pub(crate) fn header_str(h: &HeaderMap, name: header::HeaderName) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child forked while another thread of the parent holds the pool's lock gets a
    /// client (of its own) instead of waiting forever for a lock nobody will release.
    #[test]
    fn a_child_forked_while_the_pool_is_locked_builds_its_own_client() {
        let opts = HttpOptions::default();
        shared_client(&opts).unwrap();
        let held = POOL.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: the child only builds a client and leaves with `_exit`, never
        // returning into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = shared_client(&opts).is_ok();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        let mut waited_ms = 0;
        let finished = loop {
            // SAFETY: polls the child forked above.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break true;
            }
            if waited_ms >= 60_000 {
                // SAFETY: kills and reaps the child forked above.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
            waited_ms += 10;
        };
        drop(held);
        assert!(finished, "the child waited for the parent's pool lock");
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
