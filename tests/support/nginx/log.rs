//! nginx's access log as the harness writes it: one tab-separated line per request
//! ([`LOG_FIELDS`], the `log_format` of the config), parsed into [`LogLine`]s.

/// Fields of the access log line, in order (see `log_format` in the config).
pub(super) const LOG_FIELDS: &[&str] = &[
    "$request",
    "$status",
    "$http_range",
    "$http_if_range",
    "$http_if_none_match",
    "$http_if_modified_since",
    "$http_accept_encoding",
    "$body_bytes_sent",
    "$gzip_ratio",
    "$sent_http_content_encoding",
    "$sent_http_transfer_encoding",
    "$sent_http_etag",
];

/// One parsed access-log line. Absent values are `None` (nginx writes `-`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `GET /path HTTP/1.1`
    pub request: String,
    pub status: u16,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub accept_encoding: Option<String>,
    pub body_bytes_sent: u64,
    pub gzip_ratio: Option<String>,
    pub content_encoding: Option<String>,
    pub transfer_encoding: Option<String>,
    pub etag: Option<String>,
}

impl LogLine {
    /// The request path (second word of the request line).
    pub fn path(&self) -> &str {
        self.request.split(' ').nth(1).unwrap_or("")
    }

    /// The first byte of a `Range: bytes=N-` request, if any.
    pub fn range_start(&self) -> Option<u64> {
        parse_range_start(self.range.as_deref()?)
    }
}

/// `bytes=N-` or `bytes=N-M` → N.
pub fn parse_range_start(value: &str) -> Option<u64> {
    let spec = value.trim().strip_prefix("bytes=")?;
    spec.split('-').next()?.trim().parse().ok()
}

/// One access-log line; None when it does not have the expected fields.
pub(super) fn parse_log_line(line: &str) -> Option<LogLine> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != LOG_FIELDS.len() {
        return None;
    }
    let opt = |s: &str| (s != "-").then(|| unescape(s));
    Some(LogLine {
        request: unescape(f[0]),
        status: f[1].parse().ok()?,
        range: opt(f[2]),
        if_range: opt(f[3]),
        if_none_match: opt(f[4]),
        if_modified_since: opt(f[5]),
        accept_encoding: opt(f[6]),
        body_bytes_sent: f[7].parse().ok()?,
        gzip_ratio: opt(f[8]),
        content_encoding: opt(f[9]),
        transfer_encoding: opt(f[10]),
        etag: opt(f[11]),
    })
}

/// Undoes nginx's log escaping (`"` and bytes outside printable ASCII as `\xNN`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1] == b'x' {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
