//! The one error type of the crate. Every message names what the user can act on:
//! the file, the URL, the record index, the CSV row and column.

use std::path::PathBuf;

/// `NotRegularFile::kind` of a symbolic link.
pub(crate) const SYMLINK: &str = "a symbolic link";
/// `NotRegularFile::role` of a cache file.
pub(crate) const CACHE_FILE: &str = "cache file";

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the dataset layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An OS-level I/O failure, with what we were doing and on which path.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Malformed wire bytes (a record of the `write_tensor` format).
    #[error("malformed record: {0}")]
    Wire(String),

    /// A cache file whose header, framing or CRC is damaged.
    #[error("corrupted cache file {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    /// A cache name or path that is refused (empty, NUL byte, escapes the directory).
    #[error("invalid cache name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// A CSV cell that is not a number, or a CSV syntax error.
    #[error("{source_name}: row {row}, column {column}: {detail}")]
    Csv {
        source_name: String,
        row: u64,
        column: u64,
        detail: String,
    },

    /// With validation on, a record whose dtype/shape differs from the first one.
    #[error("record {index}: shape {found} differs from the first record's {expected}")]
    ShapeMismatch {
        index: u64,
        expected: String,
        found: String,
    },

    /// An HTTP failure (status, transport, truncated body, bad records), naming the URL.
    /// (Shown with a presigned URL's signature and session token redacted.) `kind` and
    /// `status` say what failed, for a caller that acts on it (`Error::http_kind`,
    /// `Error::http_status`).
    #[error("{}: {}", crate::redact::redact(url), crate::redact::redact(detail))]
    Http {
        url: String,
        detail: String,
        kind: HttpErrorKind,
        /// The status of the response that failed, when a response said it.
        status: Option<u16>,
    },

    /// A producer with no records was asked for one.
    #[error("{0} has no records")]
    Empty(String),

    /// An error raised by a foreign (C/C++) producer or token callback, message intact.
    #[error("{0}")]
    Foreign(String),

    /// Damage was found in a cache and rebuilding it from its source failed: `damage`
    /// says what was found, `cause` why the rebuild failed.
    #[error("{damage}; rebuilding it from the source failed: {cause}")]
    RebuildFailed {
        damage: Box<Error>,
        cause: Box<Error>,
    },

    /// A download was stopped before it finished because its consumer went away (the
    /// producer was dropped or restarted); the URL is named.
    #[error("the download of {} was stopped before it finished", crate::redact::redact(.0))]
    Stopped(String),

    /// A caller handed in an argument that cannot be used.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Something other than a regular file where a cache file or a lock file belongs
    /// (a symbolic link, FIFO, device, socket or directory), refused before anything
    /// was read or written through it.
    #[error(
        "{path} is {kind}, not a regular file: refused as a {role} (nothing was opened through it)"
    )]
    NotRegularFile {
        path: PathBuf,
        /// What is there: "a symbolic link", "a FIFO", "a directory", ...
        kind: &'static str,
        /// What the path was meant to be: "cache file" or "lock file".
        role: &'static str,
    },

    /// Another process held a cache's lock for longer than the lock timeout
    /// (`HARMONICS_LOCK_TIMEOUT`, `cache::set_lock_timeout`).
    #[error("gave up waiting for the lock of {path} after {:.1} s: {}", waited.as_secs_f64(), holder(*pid))]
    LockTimeout {
        path: PathBuf,
        /// The holder's pid as it recorded it in the lock file, if known.
        pid: Option<u32>,
        waited: std::time::Duration,
    },

    /// Random access (`view_at`, a sampler) asked of a producer that has none. The
    /// message says what to do: a `DiskCacheProducer` over it has random access.
    #[error(
        "{0} does not support random access: wrap it in a DiskCacheProducer (a cache on \
         disk reads any record directly) and sample that"
    )]
    NoRandomAccess(String),

    /// A record index past the end.
    #[error("{source_name}: record index {index} is out of range (the dataset has {len} records)")]
    IndexOutOfRange {
        source_name: String,
        index: u64,
        len: u64,
    },

    /// An object used again after a panic inside it was caught (an internal error, see
    /// `HARMONICS_STATUS_PANIC`): its state cannot be trusted, every later call fails
    /// so. Free it and make a new one.
    #[error("{0} is unusable after an earlier internal error")]
    Poisoned(String),

    /// A record a partial cache (per-node partial fetch) does not hold.
    #[error("{source_name}: record {index} is not held here: {detail}")]
    NotHeld {
        source_name: String,
        index: u64,
        detail: String,
    },
}

/// What kind of HTTP failure an `Error::Http` is (`Error::http_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// No connection could be made: refused, unreachable, a name that does not resolve.
    Connect,
    /// TLS failed: the handshake, a certificate that is not trusted or does not name
    /// the host, or a CA file (`HttpOptions::ca_cert`) that cannot be used.
    Tls,
    /// The connect or read timeout expired (before the response, or within the body).
    Timeout,
    /// The server answered with a status that is not the dataset (404, 403, a 5xx after
    /// the retries, a 206 to a request for the whole): `Error::http_status` gives it.
    Status,
    /// The object changed during the download: more often than restarts allow, or under
    /// a partial fetch (which cannot restart).
    ChangedObject,
    /// The body: cut short, over the download limit, or not records of the format.
    Body,
    /// Anything else: the client could not be built, a download thread not started.
    Other,
}

/// The kind and status of an HTTP failure, carried from where it is found to where the
/// `Error::Http` is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HttpCause {
    pub kind: HttpErrorKind,
    pub status: Option<u16>,
}

impl HttpCause {
    pub(crate) const fn of(kind: HttpErrorKind) -> HttpCause {
        HttpCause { kind, status: None }
    }

    /// The cause of `e` when it is an HTTP failure; `Other` for anything else (an error
    /// repeated inside an HTTP one, such as a background download's).
    pub(crate) fn of_error(e: &Error) -> HttpCause {
        HttpCause {
            kind: e.http_kind().unwrap_or(HttpErrorKind::Other),
            status: e.http_status(),
        }
    }

    /// A response whose status is not one we can use.
    pub(crate) const fn status(code: u16) -> HttpCause {
        HttpCause {
            kind: HttpErrorKind::Status,
            status: Some(code),
        }
    }
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("it is held by pid {p} (set HARMONICS_LOCK_TIMEOUT to wait longer)"),
        None => "it is held by another process (set HARMONICS_LOCK_TIMEOUT to wait longer)".into(),
    }
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// An `Error::Http` for `url`: `cause` is what kind of failure it is.
    pub(crate) fn http(
        cause: HttpCause,
        url: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Error::Http {
            url: url.into(),
            detail: detail.into(),
            kind: cause.kind,
            status: cause.status,
        }
    }

    /// An HTTP error built without a URL (the client's, shared by URLs) made to name
    /// `url`; any other error as it is.
    pub(crate) fn for_url(self, url: &str) -> Self {
        match self {
            Error::Http {
                detail,
                kind,
                status,
                ..
            } => Error::Http {
                url: url.to_string(),
                detail,
                kind,
                status,
            },
            e => e,
        }
    }

    /// What kind of HTTP failure this is; None when it is not one. Looks through a
    /// failed rebuild to its cause.
    pub fn http_kind(&self) -> Option<HttpErrorKind> {
        match self {
            Error::Http { kind, .. } => Some(*kind),
            Error::RebuildFailed { cause, .. } => cause.http_kind(),
            _ => None,
        }
    }

    /// The status code of the HTTP response that made this error (404, 503, ...); None
    /// when there was none (not an HTTP error, or no response: refused, TLS, timeout,
    /// a cut body). Looks through a failed rebuild to its cause.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => *status,
            Error::RebuildFailed { cause, .. } => cause.http_status(),
            _ => None,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// True for damage that a rebuild from the source can repair: a damaged cache
    /// file, or a symbolic link planted at the cache's name (a rebuild renames a new
    /// file over the link and never writes through it).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. }
                | Error::NotRegularFile {
                    kind: SYMLINK,
                    role: CACHE_FILE,
                    ..
                }
        )
    }

    /// True for an I/O error whose cause is a permission refusal (`EACCES`, `EPERM`).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::Io { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied)
    }
}
