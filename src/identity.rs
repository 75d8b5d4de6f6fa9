//! Source identity: what a cache was built from, stored in its metadata, so that a
//! later open can tell "the same source, unchanged" (reuse without reading it) from
//! "another source" or "an edited one" (rebuild) and "the same file, grown" (append).
//!
//! Rules per kind (the producer decides through [`Producer::match_identity`]):
//! - `csv`: the canonical path, plus a [`FileStamp`] (dev, inode, size, mtime and ctime
//!   in ns, the CRC32 of the bytes parsed, and when the stamp was taken). Another path is
//!   another source. An unchanged stamp is the same source — except a *racily clean* one
//!   (taken less than [`RACY_WINDOW_NS`] after the file's last change: a rewrite in the
//!   same timestamp tick keeps size, mtime and ctime), whose content is hashed and
//!   compared, as git does. A changed stamp of the same size is hashed: same bytes (a
//!   `touch`, a copy) is still the same source, other bytes (an edit, also one whose
//!   mtime was put back with `utimes`) is a rebuild. A bigger file whose first `size`
//!   bytes still hash to the recorded CRC, and ended on a newline, only grew: the new
//!   rows are appended, parsing only the new bytes.
//! - `http`: the normalised URL plus the validators (ETag, Last-Modified) of the body.
//!   Another URL is another source; equal non-empty validators are the same source.
//! - `foreign` (C callbacks, C++ `Producer` subclasses): the optional `fingerprint()`.
//!   Equal non-empty fingerprints are the same source; different ones a rebuild; an
//!   empty fingerprint means "unknown": the size-based rule.
//! - `memory`, `cache`: the description (`VecProducer` name) or the wrapped cache's
//!   path: a different one is another source; otherwise the size-based rule.
//! - A different kind is always another source.
//!
//! [`Producer::match_identity`]: crate::Producer::match_identity

use std::fmt;

/// A stamp taken less than this long after the file's last change (mtime or ctime)
/// is not trusted alone: the file's content is compared with the recorded CRC.
/// Covers coarse file-system timestamps (FAT: 2 s) and clocks that tick coarsely.
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// What kind of producer made a cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Csv,
    Http,
    /// A C callback producer or a C++ `Producer` subclass.
    Foreign,
    /// A `VecProducer`.
    Memory,
    /// Another `DiskCacheProducer`.
    Cache,
    /// A kind this version does not know (written by newer code), kept as spelled.
    Other(String),
}

impl SourceKind {
    pub fn as_str(&self) -> &str {
        match self {
            SourceKind::Csv => "csv",
            SourceKind::Http => "http",
            SourceKind::Foreign => "foreign",
            SourceKind::Memory => "memory",
            SourceKind::Cache => "cache",
            SourceKind::Other(s) => s,
        }
    }

    fn parse(s: &str) -> SourceKind {
        match s {
            "csv" => SourceKind::Csv,
            "http" => SourceKind::Http,
            "foreign" => SourceKind::Foreign,
            "memory" => SourceKind::Memory,
            "cache" => SourceKind::Cache,
            other => SourceKind::Other(other.to_string()),
        }
    }
}

/// The state of a file when its records were read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// When the stamp was taken (ns since the Unix epoch, the system clock).
    pub recorded_ns: i64,
    /// CRC32 of the file's first `size` bytes (the bytes parsed).
    pub crc32: u32,
}

impl FileStamp {
    /// True when the stamp was taken so soon after the file's last change that a
    /// rewrite in the same timestamp tick could have left size, mtime and ctime alone.
    pub fn is_racy(&self) -> bool {
        self.recorded_ns
            .saturating_sub(self.mtime_ns.max(self.ctime_ns))
            < RACY_WINDOW_NS
    }

    /// Same file, same size, same times (the CRC and the recording time aside).
    pub fn same_stat(&self, other: &FileStamp) -> bool {
        (self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)
            == (
                other.dev,
                other.ino,
                other.size,
                other.mtime_ns,
                other.ctime_ns,
            )
    }
}

/// Who a cache's records came from (stored in its metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceIdentity {
    pub kind: SourceKind,
    /// csv: canonical path; http: normalised URL; foreign: the fingerprint (empty:
    /// unknown); memory: the producer's description; cache: the cache file's path.
    pub id: String,
    /// csv only: the file's state when it was parsed (None: not known).
    pub stamp: Option<FileStamp>,
    /// http only: validators of the body.
    pub etag: String,
    pub last_modified: String,
}

impl SourceIdentity {
    pub fn new(kind: SourceKind, id: impl Into<String>) -> SourceIdentity {
        SourceIdentity {
            kind,
            id: id.into(),
            stamp: None,
            etag: String::new(),
            last_modified: String::new(),
        }
    }

    /// An HTTP source: `url` normalised (scheme and host lower-cased, default port
    /// dropped, empty path made "/"), with the body's validators.
    pub fn url(url: &str, etag: &str, last_modified: &str) -> SourceIdentity {
        SourceIdentity {
            etag: etag.to_string(),
            last_modified: last_modified.to_string(),
            ..SourceIdentity::new(SourceKind::Http, normalise_url(url))
        }
    }

    /// True when this identity alone can say "unchanged" (a CSV stamp, a non-empty
    /// fingerprint, HTTP validators): worth recording in a cache that lacks it.
    pub fn is_decisive(&self) -> bool {
        match self.kind {
            SourceKind::Csv => self.stamp.is_some(),
            SourceKind::Foreign => !self.id.is_empty(),
            SourceKind::Http => !self.etag.is_empty() || !self.last_modified.is_empty(),
            _ => false,
        }
    }

    /// True when this identity, of the same source as `recorded` (already matched as
    /// the same), is worth recording in its place: a CSV stamp that can be trusted
    /// alone (not racy) replacing a racy or stale one, or a decisive identity where
    /// the recorded one was not.
    pub fn improves_on(&self, recorded: &SourceIdentity) -> bool {
        match (&self.stamp, &recorded.stamp) {
            (Some(new), Some(old)) => {
                new.crc32 == old.crc32 && !new.is_racy() && (old.is_racy() || !old.same_stat(new))
            }
            _ => self.is_decisive() && !recorded.is_decisive(),
        }
    }

    /// Encoded form stored in the metadata (see `cache::format`).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![IDENTITY_ENCODING];
        for s in [
            self.kind.as_str(),
            &self.id,
            &self.etag,
            &self.last_modified,
        ] {
            put_str(&mut out, s);
        }
        match &self.stamp {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                for v in [s.dev, s.ino, s.size] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                for v in [s.mtime_ns, s.ctime_ns, s.recorded_ns] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&s.crc32.to_le_bytes());
            }
        }
        out
    }

    /// None for an encoding this version does not know or malformed bytes: the cache
    /// is then treated as one with no identity.
    pub(crate) fn decode(bytes: &[u8]) -> Option<SourceIdentity> {
        let (&enc, mut b) = bytes.split_first()?;
        if enc != IDENTITY_ENCODING {
            return None;
        }
        let kind = SourceKind::parse(&take_str(&mut b)?);
        let (id, etag, last_modified) = (take_str(&mut b)?, take_str(&mut b)?, take_str(&mut b)?);
        let (&has_stamp, mut b) = b.split_first()?;
        let stamp = match has_stamp {
            0 => None,
            1 => {
                let mut u = || -> Option<u64> {
                    let v = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
                    b = &b[8..];
                    Some(v)
                };
                let (dev, ino, size) = (u()?, u()?, u()?);
                let (mtime_ns, ctime_ns, recorded_ns) = (u()? as i64, u()? as i64, u()? as i64);
                let crc32 = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
                Some(FileStamp {
                    dev,
                    ino,
                    size,
                    mtime_ns,
                    ctime_ns,
                    recorded_ns,
                    crc32,
                })
            }
            _ => return None,
        };
        Some(SourceIdentity {
            kind,
            id,
            stamp,
            etag,
            last_modified,
        })
    }
}

impl fmt::Display for SourceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, self.id.is_empty()) {
            (SourceKind::Foreign, true) => write!(f, "a foreign producer with no fingerprint")?,
            (SourceKind::Foreign, false) => {
                write!(f, "a foreign producer with fingerprint {:?}", self.id)?
            }
            (kind, true) => write!(f, "{}", kind.as_str())?,
            (kind, false) => write!(f, "{} {}", kind.as_str(), self.id)?,
        }
        if let Some(s) = &self.stamp {
            write!(
                f,
                " (size {}, inode {}, mtime {}.{:09})",
                s.size,
                s.ino,
                s.mtime_ns.div_euclid(1_000_000_000),
                s.mtime_ns.rem_euclid(1_000_000_000)
            )?;
        }
        if !self.etag.is_empty() {
            write!(f, " (ETag {})", self.etag)?;
        }
        if !self.last_modified.is_empty() {
            write!(f, " (Last-Modified {})", self.last_modified)?;
        }
        Ok(())
    }
}

/// What a producer says about an identity recorded in a cache.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityMatch {
    /// The same source with the same records: reuse the cache without reading it.
    Same,
    /// The same source, which kept the `cached` records and has more after them. The
    /// producer is ready: `skip(cached)` then `next()` reads only the new records.
    Grew,
    /// Another source, or changed records: rebuild, for the reason given.
    Different(String),
    /// The producer cannot tell: fall back to the size-based rule.
    Unknown,
}

/// The rule for kinds without content stamps: compares a recorded identity with the
/// producer's identity now.
pub fn match_generic(recorded: &SourceIdentity, now: &SourceIdentity) -> IdentityMatch {
    let differ = |what: &str| {
        IdentityMatch::Different(format!(
            "{what}: the cache was made from {recorded}, the source is {now}"
        ))
    };
    if recorded.kind != now.kind {
        return differ("another kind of source");
    }
    match now.kind {
        SourceKind::Http => {
            if normalise_url(&recorded.id) != normalise_url(&now.id) {
                return differ("another URL");
            }
            let (old, new) = (
                (&recorded.etag, &recorded.last_modified),
                (&now.etag, &now.last_modified),
            );
            let known = |v: (&String, &String)| !v.0.is_empty() || !v.1.is_empty();
            match (known(old), known(new)) {
                (true, true) if old == new => IdentityMatch::Same,
                (true, true) => differ("the server's validators changed"),
                _ => IdentityMatch::Unknown,
            }
        }
        SourceKind::Foreign => match (recorded.id.is_empty(), now.id.is_empty()) {
            (false, false) if recorded.id == now.id => IdentityMatch::Same,
            (false, false) => differ("the fingerprint changed"),
            _ => IdentityMatch::Unknown,
        },
        _ if recorded.id != now.id => differ("another source"),
        _ => IdentityMatch::Unknown,
    }
}

/// For a cache written without identity: is its recorded `source` description (what
/// `Producer::source()` returned) certainly another source than `now`? True when the
/// description names another kind (an http(s) URL, `csv:`, `cache:`), or the same kind
/// (CSV, HTTP) with another path or URL. Descriptions this version cannot place (a
/// user's producer) are not judged: the cache is trusted under the size rule.
pub fn description_differs(recorded: &str, now: &SourceIdentity, now_source: &str) -> bool {
    let kind = if recorded.starts_with("http://") || recorded.starts_with("https://") {
        SourceKind::Http
    } else if recorded.starts_with("csv:") {
        SourceKind::Csv
    } else if recorded.starts_with("cache:") {
        SourceKind::Cache
    } else {
        return false;
    };
    match (&kind, &now.kind) {
        (a, b) if a != b => true,
        (SourceKind::Http, _) => normalise_url(recorded) != normalise_url(now_source),
        _ => recorded != now_source,
    }
}

/// The URL in a canonical spelling (as `url::Url` prints it); unparsable input as is.
pub fn normalise_url(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| url.to_string(), |u| u.to_string())
}

const IDENTITY_ENCODING: u8 = 1;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take_str(b: &mut &[u8]) -> Option<String> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let s = std::str::from_utf8(b.get(4..4usize.checked_add(len)?)?)
        .ok()?
        .to_string();
    *b = &b[4 + len..];
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped() -> SourceIdentity {
        SourceIdentity {
            stamp: Some(FileStamp {
                dev: 1,
                ino: 2,
                size: 3,
                mtime_ns: -4,
                ctime_ns: 5,
                recorded_ns: 6,
                crc32: 7,
            }),
            ..SourceIdentity::new(SourceKind::Csv, "/d/train.csv")
        }
    }

    #[test]
    fn identities_round_trip_and_unknown_encodings_are_none() {
        for id in [
            stamped(),
            SourceIdentity::url("HTTP://Example.org:80", "\"e\"", "Tue"),
            SourceIdentity::new(SourceKind::Other("future".into()), "x"),
        ] {
            assert_eq!(SourceIdentity::decode(&id.encode()), Some(id));
        }
        let mut b = stamped().encode();
        b[0] = 9;
        assert_eq!(SourceIdentity::decode(&b), None);
        let b = stamped().encode();
        for cut in 0..b.len() {
            assert_eq!(SourceIdentity::decode(&b[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn descriptions_of_caches_without_identity_are_judged_only_when_placed() {
        let csv = SourceIdentity::new(SourceKind::Csv, "/d/a.csv");
        let url = SourceIdentity::url("http://h/x", "", "");
        let foreign = SourceIdentity::new(SourceKind::Foreign, "");
        assert!(!description_differs("csv:a.csv", &csv, "csv:a.csv"));
        assert!(description_differs("csv:b.csv", &csv, "csv:a.csv"));
        assert!(description_differs("http://h/x", &csv, "csv:a.csv"));
        assert!(!description_differs("HTTP://h:80/x", &url, "http://h/x"));
        assert!(description_differs("http://h/y", &url, "http://h/x"));
        assert!(description_differs("csv:a.csv", &foreign, "C++ producer"));
        assert!(!description_differs("synthetic", &foreign, "C++ producer"));
        assert!(!description_differs("C++ producer", &csv, "csv:a.csv"));
    }

    #[test]
    fn only_a_trustworthy_stamp_of_the_same_bytes_improves_on_a_recorded_one() {
        let at = |recorded_ns: i64, mtime_ns: i64, crc32: u32| SourceIdentity {
            stamp: Some(FileStamp {
                mtime_ns,
                recorded_ns,
                crc32,
                ..FileStamp::default()
            }),
            ..SourceIdentity::new(SourceKind::Csv, "/a.csv")
        };
        let w = RACY_WINDOW_NS;
        let racy = at(1, 0, 7);
        assert!(at(w, 0, 7).improves_on(&racy));
        assert!(!at(w - 1, 0, 7).improves_on(&racy), "itself racy");
        assert!(!at(w, 0, 8).improves_on(&racy), "other bytes");
        assert!(
            !at(3 * w, 0, 7).improves_on(&at(2 * w, 0, 7)),
            "nothing to gain"
        );
        assert!(at(3 * w, w, 7).improves_on(&at(2 * w, 0, 7)), "touched");
        let f = |s: &str| SourceIdentity::new(SourceKind::Foreign, s);
        assert!(f("v1").improves_on(&f("")));
        assert!(!f("v1").improves_on(&f("v1")));
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            SourceIdentity::url("HTTP://Example.ORG:80", "", "").id,
            "http://example.org/"
        );
        assert_eq!(normalise_url("not a url"), "not a url");
    }

    #[test]
    fn racy_stamps_are_those_taken_within_the_window_of_the_last_change() {
        let s = |m: i64, c: i64, r: i64| FileStamp {
            mtime_ns: m,
            ctime_ns: c,
            recorded_ns: r,
            ..FileStamp::default()
        };
        assert!(s(0, 0, RACY_WINDOW_NS - 1).is_racy());
        assert!(!s(0, 0, RACY_WINDOW_NS).is_racy());
        // mtime put back by utimes: ctime is the last change
        assert!(s(0, 10 * RACY_WINDOW_NS, 10 * RACY_WINDOW_NS + 1).is_racy());
    }

    #[test]
    fn generic_rule_per_kind() {
        use IdentityMatch::*;
        let f = |s: &str| SourceIdentity::new(SourceKind::Foreign, s);
        assert_eq!(match_generic(&f("v1"), &f("v1")), Same);
        assert!(
            matches!(match_generic(&f("v1"), &f("v2")), Different(r) if r.contains("\"v1\"") && r.contains("\"v2\""))
        );
        assert_eq!(match_generic(&f(""), &f("")), Unknown);
        assert_eq!(match_generic(&f("v1"), &f("")), Unknown);
        let u = |url: &str, e: &str| SourceIdentity::url(url, e, "");
        assert_eq!(
            match_generic(&u("http://h/a", "1"), &u("http://H:80/a", "1")),
            Same
        );
        assert_eq!(
            match_generic(&u("http://h/a", ""), &u("http://h/a", "")),
            Unknown
        );
        assert!(matches!(
            match_generic(&u("http://h/a", "1"), &u("http://h/a", "2")),
            Different(_)
        ));
        assert!(
            matches!(match_generic(&u("http://h/a", ""), &u("http://h/b", "")), Different(r) if r.contains("http://h/a") && r.contains("http://h/b"))
        );
        assert!(matches!(match_generic(&stamped(), &f("v1")), Different(r) if r.contains("kind")));
        let m = |s: &str| SourceIdentity::new(SourceKind::Memory, s);
        assert_eq!(match_generic(&m("a"), &m("a")), Unknown);
        assert!(matches!(match_generic(&m("a"), &m("b")), Different(_)));
    }
}
