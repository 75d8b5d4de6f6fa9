//! The `cache` benchmark's table: one [`Row`] a figure, its per-round samples against
//! those of its baseline, printed as the median per-round ratio (min-max), the CPU-time
//! ratio, the subject's throughput and whether the target was met.

use crate::common::{median, Sample};

/// One line of the final table.
pub struct Row {
    pub fig: &'static str,
    subject: String,
    baseline: String,
    /// Per-round (seconds, CPU seconds) (or (KiB, NaN) for memory rows).
    base: Vec<Sample>,
    subj: Vec<Sample>,
    unit: &'static str,
    records: u64,
    bytes: u64,
    base_bytes: u64,
    /// Target: ratio ≤ this (or, for absolute rows, subject ≤ this in `unit`).
    target: Target,
}

pub enum Target {
    Ratio(f64),
    /// The subject's median must stay below this, in the row's unit.
    Below(f64, &'static str),
    /// Ratio within [1-x, 1+x] ("same within noise"); informative.
    Near(f64),
    /// No target: context for another row.
    Info,
}

impl Row {
    /// A row in seconds with no throughput (see [`Row::rate`]).
    pub fn new(
        fig: &'static str,
        subject: impl Into<String>,
        baseline: impl Into<String>,
        (base, subj): (Vec<Sample>, Vec<Sample>),
        target: Target,
    ) -> Row {
        Row {
            fig,
            subject: subject.into(),
            baseline: baseline.into(),
            base,
            subj,
            unit: "s",
            records: 0,
            bytes: 0,
            base_bytes: 0,
            target,
        }
    }
    /// The subject moved `records` records of `bytes` bytes, the baseline `base_bytes`.
    pub fn rate(self, records: u64, bytes: u64, base_bytes: u64) -> Row {
        Row {
            records,
            bytes,
            base_bytes,
            ..self
        }
    }
    /// A peak-RSS row: samples in KiB.
    pub fn memory(self) -> Row {
        Row {
            unit: "KiB",
            ..self
        }
    }
    fn ratios(&self) -> Vec<f64> {
        self.subj
            .iter()
            .zip(&self.base)
            .map(|(s, b)| s.0 / b.0)
            .collect()
    }
    fn cpu_ratios(&self) -> Vec<f64> {
        self.subj
            .iter()
            .zip(&self.base)
            .map(|(s, b)| s.1 / b.1)
            .filter(|r| r.is_finite())
            .collect()
    }
    fn base_values(&self) -> Vec<f64> {
        self.base.iter().map(|s| s.0).collect()
    }
    fn subj_values(&self) -> Vec<f64> {
        self.subj.iter().map(|s| s.0).collect()
    }
    fn met(&self) -> bool {
        let r = median(&self.ratios());
        match self.target {
            Target::Ratio(x) => r <= x,
            Target::Below(x, _) => median(&self.subj_values()) < x,
            Target::Near(x) => (r - 1.0).abs() <= x,
            Target::Info => true,
        }
    }
    fn print(&self) {
        let r = self.ratios();
        let (lo, hi) = r
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let (bm, sm) = (median(&self.base_values()), median(&self.subj_values()));
        let cpu = self.cpu_ratios();
        let cpu = if cpu.is_empty() {
            "-".to_string()
        } else {
            format!("{:.3}", median(&cpu))
        };
        let fmt = |v: f64| match self.unit {
            "s" if v < 0.1 => format!("{:.3} ms", v * 1e3),
            "s" => format!("{v:.3} s"),
            "KiB" => format!("{:.1} MiB", v / 1024.0),
            u => format!("{v:.3} {u}"),
        };
        let rate = if self.unit == "s" && sm > 0.0 && self.records > 0 {
            format!(
                "{:.0} rec/s, {:.0} MB/s (base {:.0} MB/s)",
                self.records as f64 / sm,
                self.bytes as f64 / 1e6 / sm,
                self.base_bytes as f64 / 1e6 / bm
            )
        } else {
            String::new()
        };
        let target = match self.target {
            Target::Ratio(x) => format!("ratio <= {}", short(x)),
            Target::Below(x, what) => format!("{what} < {}", fmt(x)),
            Target::Near(x) => format!("ratio 1 +- {x}"),
            Target::Info => "(context)".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {:.3} ({:.3}-{:.3}) | {} | {} | {} | {} |",
            self.fig,
            self.baseline,
            fmt(bm),
            self.subject,
            fmt(sm),
            median(&r),
            lo,
            hi,
            cpu,
            rate,
            target,
            match (&self.target, self.met()) {
                (Target::Info, _) => "-",
                (_, true) => "met",
                (_, false) => "MISSED",
            }
        );
    }
}

/// `x` with at most 3 decimals, trailing zeros dropped (1/0.9 prints as 1.111).
fn short(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The order of figures in the table: by number, then by the letters after it ("1",
/// "2", …, "10", "10g", "11a").
pub fn figure_key(fig: &str) -> (u32, &str) {
    let digits = fig.len() - fig.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    (fig[..digits].parse().unwrap_or(u32::MAX), &fig[digits..])
}

pub fn print_table(rows: &[Row], header: &str) {
    println!("\n{header}");
    println!("| fig | baseline | baseline median | subject | subject median | ratio median (min-max) | CPU-time ratio | subject throughput | target | |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        r.print();
    }
}
