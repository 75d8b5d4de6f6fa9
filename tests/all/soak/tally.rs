//! The run's totals over its episodes, the summary line and the per-fault table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::episode::Outcome;

/// What an episode, or a whole run, counted.
#[derive(Default, Debug)]
pub struct Counts {
    pub checked: u64,
    /// Wrong records by where they were seen and what they were (`next:other-version`).
    pub wrong: BTreeMap<String, u64>,
    /// Errors by the operation that met them and their kind (`open:corrupt`).
    pub errors: BTreeMap<String, u64>,
    /// What the opens and refreshes did, and how `cache_cli` runs exited.
    pub outcomes: BTreeMap<String, u64>,
    pub signal_deaths: u64,
    pub hangs: u64,
    pub outside_touches: u64,
    /// Processes that exited with a failure and no result (a panic).
    pub panics: u64,
}

impl Counts {
    pub fn wrong_total(&self) -> u64 {
        self.wrong.values().sum()
    }

    /// Any wrong record, signal death, hang, outside touch or failed process.
    pub fn failed(&self) -> bool {
        self.wrong_total() + self.signal_deaths + self.hangs + self.outside_touches + self.panics
            > 0
    }

    pub fn add_error(&mut self, key: String) {
        *self.errors.entry(key).or_default() += 1;
    }

    pub fn add(&mut self, o: &Counts) {
        let merge = |into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>| {
            for (k, v) in from {
                *into.entry(k.clone()).or_default() += v;
            }
        };
        self.checked += o.checked;
        merge(&mut self.wrong, &o.wrong);
        merge(&mut self.errors, &o.errors);
        merge(&mut self.outcomes, &o.outcomes);
        self.signal_deaths += o.signal_deaths;
        self.hangs += o.hangs;
        self.outside_touches += o.outside_touches;
        self.panics += o.panics;
    }
}

#[derive(Default)]
pub struct Tally {
    pub episodes: u64,
    pub failed_episodes: Vec<u64>,
    pub counts: Counts,
    /// Per fault kind: (episodes where it was applied, of which with a wrong record,
    /// wrong records read by processes that went wrong after it, the last fault).
    pub per_fault: BTreeMap<String, (u64, u64, u64)>,
}

impl Tally {
    pub fn add(&mut self, seed: u64, o: &Outcome) {
        self.episodes += 1;
        if o.failed() {
            self.failed_episodes.push(seed);
        }
        self.counts.add(&o.counts);
        let mut kinds = o.faults_applied.clone();
        kinds.extend(o.wrong_by_fault.keys().cloned());
        kinds.sort();
        kinds.dedup();
        for k in kinds {
            let e = self.per_fault.entry(k.clone()).or_default();
            if o.faults_applied.contains(&k) {
                e.0 += 1;
                if o.counts.wrong_total() > 0 {
                    e.1 += 1;
                }
            }
            e.2 += o.wrong_by_fault.get(&k).copied().unwrap_or(0);
        }
    }

    /// True when no episode failed.
    pub fn clean(&self) -> bool {
        self.failed_episodes.is_empty()
    }

    /// `soak: E episodes, R records checked, W wrong, ... N errors (by kind)`.
    pub fn summary(&self) -> String {
        let errors: u64 = self.counts.errors.values().sum();
        // Errors by kind, folded over the operation that met them, largest first.
        let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
        for (k, v) in &self.counts.errors {
            *by_kind
                .entry(k.split_once(':').map_or(k, |x| x.1))
                .or_default() += v;
        }
        let mut kinds: Vec<_> = by_kind.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        let kinds = kinds
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut s = format!(
            "soak: {} episodes, {} records checked, {} wrong, {} signal deaths, {} hangs, \
             {} outside touches, {errors} errors ({kinds})",
            self.episodes,
            self.counts.checked,
            self.counts.wrong_total(),
            self.counts.signal_deaths,
            self.counts.hangs,
            self.counts.outside_touches,
        );
        if self.counts.panics > 0 {
            let _ = write!(
                s,
                ", {} processes failed without a result",
                self.counts.panics
            );
        }
        s
    }

    /// The wrong records by place and kind, the errors by operation, what opens did,
    /// and the table of faults.
    pub fn details(&self) -> String {
        let mut s = String::new();
        let line = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "errors by operation and kind: {}",
            line(&self.counts.errors)
        );
        let _ = writeln!(s, "outcomes: {}", line(&self.counts.outcomes));
        if !self.counts.wrong.is_empty() {
            s.push_str("wrong records by where they were read and what they were:\n");
            for (k, v) in &self.counts.wrong {
                let _ = writeln!(s, "  {k:<32} {v}");
            }
        }
        s.push_str(
            "faults: episodes applied | of which with wrong records | wrong records of the processes \
             whose first wrong record came after it (the last fault)\n",
        );
        for (k, (applied, bad, wrong)) in &self.per_fault {
            let _ = writeln!(s, "  {k:<28} {applied:>6} {bad:>6} {wrong:>9}");
        }
        s
    }
}
