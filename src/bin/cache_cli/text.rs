//! Text for people: escaping of what files contain, sizes, ages and dates.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `s` with every character that could split a line or drive a terminal escaped:
/// C0 controls (ESC, BEL, newline, tab, ...), DEL, C1 controls and the Unicode
/// direction overrides. A backslash is doubled, so the escaping is unambiguous.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that reorder the text displayed after them (Trojan Source).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A path for a message, escaped.
pub(crate) fn shown(p: &Path) -> String {
    printable(&p.to_string_lossy())
}

/// Parses a size: `1024`, `500M`, `2G`, `1.5GiB`, `10KB`, `3 MiB`.
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 1024, 500M, 2G, 1.5GiB)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let factor: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} in {s:?} (use K, M, G, T, KiB…, or KB…)"
            ))
        }
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes.floor() as u64)
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

pub(crate) fn since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

pub(crate) fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2026-11-25 22:04:05 UTC (3m ago)`.
pub(crate) fn when(t: SystemTime) -> String {
    let secs = unix(t);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC ({} ago)",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        human_age(since(t))
    )
}

pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("3 mib"), Ok(3 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "M", "-1", "1.2.3", "5X", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn control_characters_are_escaped_unambiguously() {
        assert_eq!(printable("plain café"), "plain café");
        assert_eq!(
            printable("a\x1b[31mb\x07\n\t\r\x7f\u{9b}\u{202e}\\"),
            "a\\x1b[31mb\\x07\\n\\t\\r\\x7f\\u{9b}\\u{202e}\\\\"
        );
    }

    #[test]
    fn dates_and_sizes_render_readably() {
        assert!(when(UNIX_EPOCH + Duration::from_secs(1_764_108_245))
            .starts_with("2025-11-25 22:04:05 UTC"));
        assert!(when(UNIX_EPOCH).starts_with("1970-01-01 00:00:00 UTC"));
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
