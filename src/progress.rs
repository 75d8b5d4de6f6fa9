//! Progress of a long download: bytes, rate and ETA on one stderr line.
//!
//! Shown only when it helps a person watching: the download has run for more than
//! [`DELAY`], stderr is a terminal, and the log level (`HARMONICS_LOG`, see
//! [`crate::log`]) is not `off`. A host that installed a log sink gets a throttled
//! progress message at `info` level instead. Anything else is silent, so logs and pipes
//! never receive carriage returns.
//!
//! The hot path (`update`) is a comparison when progress is off, and a clock read
//! otherwise; a line is formatted at most every [`EVERY`].

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::log::{self, Level};

/// Downloads shorter than this show nothing.
pub const DELAY: Duration = Duration::from_secs(2);
/// The terminal line is redrawn at most this often.
pub const EVERY: Duration = Duration::from_millis(250);
/// A log sink receives a progress message at most this often.
pub const EVERY_SINK: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Off,
    Terminal,
    Sink,
}

/// Where progress goes, from the facts that decide it.
fn output(stderr_is_terminal: bool, level: Level, has_sink: bool) -> Output {
    if level == Level::Off {
        Output::Off
    } else if has_sink {
        if level >= Level::Info {
            Output::Sink
        } else {
            Output::Off
        }
    } else if stderr_is_terminal {
        Output::Terminal
    } else {
        Output::Off
    }
}

/// The progress of one transfer, named by `label` (its URL). Finishes its line on drop.
pub struct Progress {
    label: String,
    out: Output,
    start: Instant,
    last: Option<Instant>,
    drawn: bool,
    done: u64,
    total: Option<u64>,
}

impl Progress {
    /// Progress for a transfer starting now, shown according to the module's rule.
    pub fn new(label: &str) -> Progress {
        let out = output(
            std::io::stderr().is_terminal(),
            log::level(),
            log::has_sink(),
        );
        Progress::with_output(label, out, Instant::now())
    }

    fn with_output(label: &str, out: Output, start: Instant) -> Progress {
        Progress {
            label: label.to_string(),
            out,
            start,
            last: None,
            drawn: false,
            done: 0,
            total: None,
        }
    }

    /// `done` bytes of `total` (when known) have arrived.
    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if self.out == Output::Off {
            return;
        }
        self.update_at(done, total, Instant::now());
    }

    fn update_at(&mut self, done: u64, total: Option<u64>, now: Instant) {
        if let Some(line) = self.step(done, total, now) {
            self.emit(&line, false);
        }
    }

    /// The line to show at `now`, if one is due.
    fn step(&mut self, done: u64, total: Option<u64>, now: Instant) -> Option<String> {
        self.done = done;
        self.total = total;
        let every = match self.out {
            Output::Off => return None,
            Output::Terminal => EVERY,
            Output::Sink => EVERY_SINK,
        };
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed < DELAY {
            return None;
        }
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < every)
        {
            return None;
        }
        self.last = Some(now);
        Some(format_line(&self.label, done, total, elapsed))
    }

    fn emit(&mut self, line: &str, last: bool) {
        match self.out {
            Output::Off => {}
            Output::Sink => log::log(Level::Info, line),
            Output::Terminal => {
                // \r and "erase to end of line": the line is redrawn in place.
                let end = if last { "\n" } else { "" };
                eprint!("\r{line}\x1b[K{end}");
                self.drawn = true;
            }
        }
    }

    /// Ends the line (once something was drawn) with the final count.
    pub fn finish(&mut self) {
        if self.drawn {
            let line = format_line(&self.label, self.done, self.total, self.start.elapsed());
            self.emit(&line, true);
            self.drawn = false;
        }
        self.out = Output::Off;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `label: 12.0 MiB of 60.0 MiB (20%), 6.0 MiB/s, ETA 8 s`; without a known total,
/// `label: 12.0 MiB, 6.0 MiB/s`.
pub fn format_line(label: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let mut line = format!("{label}: {}", bytes(done as f64));
    if let Some(total) = total.filter(|t| *t > 0) {
        let pct = (done as f64 / total as f64 * 100.0).min(100.0);
        line += &format!(" of {} ({pct:.0}%)", bytes(total as f64));
        line += &format!(", {}/s", bytes(rate));
        if rate > 0.0 && done < total {
            line += &format!(", ETA {}", duration((total - done) as f64 / rate));
        }
    } else {
        line += &format!(", {}/s", bytes(rate));
    }
    line
}

fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn duration(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..=99 => format!("{s} s"),
        100..=5999 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_line_says_bytes_rate_and_eta() {
        let l = format_line(
            "http://h/d",
            12 * MIB,
            Some(60 * MIB),
            Duration::from_secs(2),
        );
        assert_eq!(
            l,
            "http://h/d: 12.0 MiB of 60.0 MiB (20%), 6.0 MiB/s, ETA 8 s"
        );
        let l = format_line("u", 3 * MIB / 2, None, Duration::from_secs(3));
        assert_eq!(l, "u: 1.5 MiB, 512.0 KiB/s");
        let l = format_line("u", 100, Some(100), Duration::from_secs(4));
        assert_eq!(l, "u: 100 B of 100 B (100%), 25 B/s");
        assert_eq!(duration(61.2), "62 s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(7300.0), "2h01m");
        assert_eq!(bytes(5.0 * 1024.0 * 1024.0 * 1024.0), "5.0 GiB");
    }

    #[test]
    fn nothing_before_the_delay_then_at_most_one_line_per_interval() {
        let t0 = Instant::now();
        let mut p = Progress::with_output("u", Output::Terminal, t0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(p.step(10, Some(100), at(0)), None);
        assert_eq!(p.step(20, Some(100), at(1999)), None);
        assert!(p
            .step(30, Some(100), at(2000))
            .unwrap()
            .starts_with("u: 30 B of 100 B"));
        assert_eq!(p.step(31, Some(100), at(2100)), None, "throttled");
        assert!(p.step(40, Some(100), at(2250)).is_some());
        let mut sink = Progress::with_output("u", Output::Sink, t0);
        assert!(sink.step(1, None, at(2500)).is_some());
        assert_eq!(
            sink.step(2, None, at(6000)),
            None,
            "a sink is told less often"
        );
        assert!(sink.step(3, None, at(7500)).is_some());
        p.out = Output::Off; // drop must not draw on the test's stderr
        sink.out = Output::Off;
    }

    #[test]
    fn progress_is_off_when_stderr_is_not_a_terminal_or_the_level_is_off() {
        assert_eq!(output(false, Level::Warn, false), Output::Off);
        assert_eq!(output(true, Level::Warn, false), Output::Terminal);
        assert_eq!(output(true, Level::Debug, false), Output::Terminal);
        assert_eq!(output(true, Level::Off, false), Output::Off);
        assert_eq!(
            output(true, Level::Warn, true),
            Output::Off,
            "a sink at warn hears nothing"
        );
        assert_eq!(output(false, Level::Info, true), Output::Sink);
        let mut off = Progress::with_output("u", Output::Off, Instant::now());
        assert_eq!(off.step(1, None, Instant::now() + DELAY * 2), None);
    }

    /// Run by `a_real_transfer_draws_only_on_a_terminal` in a child process: a transfer
    /// that has lasted 3 s reports its progress through `Progress::new`'s own rule.
    #[test]
    #[ignore = "run as a child process by another test"]
    fn child_reports_a_long_transfer() {
        if std::env::var_os("HARMONICS_PROGRESS_CHILD").is_none() {
            return;
        }
        let mut p = Progress::new("http://127.0.0.1/long");
        let start = p.start;
        p.update_at(5 * MIB, Some(10 * MIB), start + Duration::from_secs(3));
        p.finish();
    }

    fn child(through_pty: bool) -> String {
        let exe = std::env::current_exe().unwrap();
        let args = [
            "--exact",
            "progress::tests::child_reports_a_long_transfer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ];
        let mut cmd = if through_pty {
            // script(1) gives the child a pseudo-terminal for stdin/stdout/stderr.
            let line = std::iter::once(exe.display().to_string())
                .chain(args.iter().map(|a| a.to_string()))
                .collect::<Vec<_>>()
                .join(" ");
            let mut c = Command::new("script");
            c.args(["-qec", &line, "/dev/null"]);
            c
        } else {
            let mut c = Command::new(&exe);
            c.args(args);
            c
        };
        let out = cmd
            .env("HARMONICS_PROGRESS_CHILD", "1")
            .env_remove("HARMONICS_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "child failed: {out:?}");
        let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
        all += &String::from_utf8_lossy(&out.stderr);
        all
    }

    #[test]
    fn a_real_transfer_draws_only_on_a_terminal() {
        let piped = child(false);
        assert!(
            !piped.contains("5.0 MiB of 10.0 MiB"),
            "progress reached a pipe: {piped:?}"
        );
        if Command::new("script").arg("--version").output().is_err() {
            eprintln!("SKIP the terminal half: no script(1) to make a pseudo-terminal");
            return;
        }
        let tty = child(true);
        assert!(
            tty.contains("http://127.0.0.1/long: 5.0 MiB of 10.0 MiB (50%)"),
            "no progress on a terminal: {tty:?}"
        );
    }
}
