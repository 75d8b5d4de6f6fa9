//! Diagnostics: the one place the library reports what it did not fail on (a damaged
//! cache rebuilt, a download retried, download progress).
//!
//! A message has a [`Level`]. Which levels are reported is set by the environment
//! variable `HARMONICS_LOG=off|warn|info|debug` (read once, on the first message; the
//! default is `warn`) or by [`set_level`]. Reported messages go to stderr as
//! `harmonics-dataset: <level>: <message>` unless a host installed a [`Sink`] with
//! [`set_sink`] (the C ABI's `harmonics_set_log_callback`), which then receives them
//! instead. Nothing here ever fails or panics the caller: a sink that panics loses its
//! message, not the download.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// How much a message matters. `Off` is only a threshold: no message has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Off = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    /// Parses `off`, `warn`, `info`, `debug` (any case, surrounding blanks ignored).
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "0" => Some(Level::Off),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Off,
            1 => Level::Warn,
            2 => Level::Info,
            _ => Level::Debug,
        }
    }
}

/// Receives every reported message (level, message) in place of stderr.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// The threshold; `UNSET` until the environment was read or `set_level` called.
const UNSET: u8 = u8::MAX;
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// The environment variable that sets the level.
pub const ENV: &str = "HARMONICS_LOG";

/// The current threshold: messages at or below it are reported.
pub fn level() -> Level {
    let v = LEVEL.load(Ordering::Relaxed);
    if v != UNSET {
        return Level::from_u8(v);
    }
    let from_env = match std::env::var(ENV) {
        Ok(s) => Level::parse(&s).unwrap_or_else(|| {
            write_stderr(
                Level::Warn,
                &format!("{ENV}={s:?} is not one of off, warn, info, debug; using warn"),
            );
            Level::Warn
        }),
        Err(_) => Level::Warn,
    };
    // A concurrent set_level wins over the environment.
    let _ = LEVEL.compare_exchange(UNSET, from_env as u8, Ordering::Relaxed, Ordering::Relaxed);
    Level::from_u8(LEVEL.load(Ordering::Relaxed))
}

/// Overrides `HARMONICS_LOG` for the rest of the process.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether a message at `level` would be reported.
pub fn enabled(level: Level) -> bool {
    level != Level::Off && level <= self::level()
}

/// Sends every reported message to `sink` instead of stderr (`None`: back to stderr).
/// Waits for calls of the previous sink in flight: when it returns, that sink is no
/// longer running. A sink must not call `set_sink`.
pub fn set_sink(sink: Option<Sink>) {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = sink;
}

/// Whether a host installed a sink (then stderr is not ours to draw on).
pub fn has_sink() -> bool {
    SINK.read().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// Reports `message` at `level` if the threshold lets it through.
pub fn log(level: Level, message: &str) {
    if !enabled(level) {
        return;
    }
    // The sink runs under the read lock: once `set_sink` returns, the sink it replaced
    // is no longer running, so its owner may free what it uses.
    let sink = SINK.read().unwrap_or_else(|p| p.into_inner());
    match sink.as_ref() {
        Some(sink) => {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(level, message)));
        }
        None => write_stderr(level, message),
    }
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

fn write_stderr(level: Level, message: &str) {
    // eprintln!, not io::stderr(): the test harness captures it per test.
    eprintln!("harmonics-dataset: {}: {message}", level.name());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_from_the_environment_spelling() {
        assert_eq!(Level::parse("off"), Some(Level::Off));
        assert_eq!(Level::parse(" WARN "), Some(Level::Warn));
        assert_eq!(Level::parse("info"), Some(Level::Info));
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("loud"), None);
        assert!(Level::Warn < Level::Info && Level::Info < Level::Debug);
    }
}
