//! The HTTP client: how it is built from `HttpOptions` (CA file, timeouts, redirects,
//! gzip), the process-wide client shared per configuration, the one `send` every
//! request leaves through, and small response helpers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use once_cell::sync::Lazy;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{self, HeaderMap};

use super::s3::SendSigned;
use super::HttpOptions;
use crate::error::{Error, Result};

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

/// The clients of this process, one per `ClientKey`, with the process id they were
/// built in.
#[derive(Default)]
struct Pool {
    pid: u32,
    clients: HashMap<ClientKey, Client>,
}

static POOL: Lazy<Mutex<Pool>> = Lazy::new(Mutex::default);

/// The process-wide client for `opts`' configuration (see `ClientKey`), built on first
/// use: every producer, partial fetch and publish of the process with the same CA file
/// and timeouts shares it, and so its connection pool (keep-alive connections are
/// reused from one download to the next). After `fork()` the child builds its own: a
/// blocking client's runtime thread does not exist in the child, so a client of the
/// parent would never answer there.
pub(crate) fn shared_client(opts: &HttpOptions) -> Result<Client> {
    let key = ClientKey::of(opts)?;
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    if pool.pid != pid {
        // The parent's clients (in a forked child) are forgotten, not dropped: dropping
        // one joins its runtime thread, which is not in this process.
        std::mem::forget(std::mem::take(&mut pool.clients));
        pool.pid = pid;
    }
    if let Some(c) = pool.clients.get(&key) {
        return Ok(c.clone());
    }
    let client = build(&key)?;
    pool.clients.insert(key, client.clone());
    Ok(client)
}

/// A client of its own for `opts` (with connections of its own: a download that
/// restarts after the server closed the connections of a changed object).
pub(crate) fn build_client(opts: &HttpOptions) -> Result<Client> {
    build(&ClientKey::of(opts)?)
}

fn build(key: &ClientKey) -> Result<Client> {
    let mut builder = Client::builder();
    if let Some((path, pem)) = &key.ca_cert {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| Error::Http {
            url: String::new(),
            detail: format!(
                "{}: not a PEM certificate bundle: {}",
                path.display(),
                chain(&e)
            ),
        })?;
        if certs.is_empty() {
            return Err(Error::Http {
                url: String::new(),
                detail: format!("{}: no certificate in the file", path.display()),
            });
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
        .map_err(|e| Error::Http {
            url: String::new(),
            detail: format!("cannot create the HTTP client: {}", chain(&e)),
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
