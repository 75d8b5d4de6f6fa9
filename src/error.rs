//! The one error type of the crate. Every message names what the user can act on:
//! the file, the URL, the record index, the CSV row and column.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the dataset layer.
#[derive(Debug, thiserror::Error)]
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
    #[error("{url}: {detail}")]
    Http { url: String, detail: String },

    /// A producer with no records was asked for one.
    #[error("{0} has no records")]
    Empty(String),

    /// An error raised by a foreign (C/C++) producer or token callback, message intact.
    #[error("{0}")]
    Foreign(String),

    /// A caller handed in an argument that cannot be used.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Random access (`view_at`) asked of a producer that has none.
    #[error("{0} does not support random access")]
    NoRandomAccess(String),

    /// A record index past the end.
    #[error("{source_name}: record index {index} is out of range (the dataset has {len} records)")]
    IndexOutOfRange {
        source_name: String,
        index: u64,
        len: u64,
    },
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// True for damage that a rebuild from the source can repair.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}
