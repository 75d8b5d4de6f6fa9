//! The HTTP client: how it is built from `HttpOptions` (CA file, timeouts, redirects,
//! gzip), the one `send` every request leaves through, and small response helpers.

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

pub(crate) fn build_client(opts: &HttpOptions) -> Result<Client> {
    let mut builder = Client::builder();
    if let Some(path) = &opts.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| Error::io("cannot read the CA certificate file", path, e))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Http {
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
        .connect_timeout(opts.connect_timeout)
        // In the blocking client this bounds the wait for the response head and for
        // every single read of the body: a read timeout, not a total one.
        .timeout(opts.read_timeout)
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
