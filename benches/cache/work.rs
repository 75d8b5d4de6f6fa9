//! The code paths the `cache` benchmark times, kept apart from the timing loop so
//! `tests/all/bench_smoke.rs` can run each of them at tiny sizes (`#[path]` include).
//!
//! Nothing here measures time: each function does one unit of work (a pass, an open,
//! an append, a population) and returns what it did, so a test can check results.
//! Includers also include `benches/common` as a sibling module `common` (`super::common`).

#![allow(dead_code)] // each includer uses a subset

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harmonics_dataset::{
    CacheOutcome, DType, DiskCacheProducer, Error, Producer, Result, TensorRef,
};

/// Reads every byte of `data` as a consumer would: sums one float per 64-byte cache
/// line plus the last element, so every page (and line) of the record is touched.
/// Four independent sums, so the consumer is bound by memory, not by the latency of
/// one chain of float additions (benches/cpp/warm_pass.cpp does the same).
#[inline]
pub fn touch(data: &[u8]) -> f64 {
    let f = |i: usize| f32::from_le_bytes(data[i..i + 4].try_into().unwrap());
    let mut acc = [0f32; 4];
    let mut i = 0;
    while i + 3 * 64 + 4 <= data.len() {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += f(i + k * 64);
        }
        i += 4 * 64;
    }
    while i + 4 <= data.len() {
        acc[0] += f(i);
        i += 64;
    }
    if data.len() >= 4 {
        acc[1] += f(data.len() - 4);
    }
    (acc[0] + acc[1] + acc[2] + acc[3]) as f64
}

/// An in-memory source of `n` float32[`elems`] records; record `i` has `i` in its
/// first element (so records differ) and a fixed pattern elsewhere. O(1) `skip`.
pub struct Synth {
    n: usize,
    cursor: usize,
    shape: [usize; 1],
    buf: Vec<u8>,
}

impl Synth {
    pub fn new(n: usize, elems: usize) -> Synth {
        let buf = (0..elems)
            .flat_map(|i| ((i % 97) as f32 * 0.25).to_le_bytes())
            .collect();
        Synth {
            n,
            cursor: 0,
            shape: [elems],
            buf,
        }
    }
}

impl Producer for Synth {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        if self.n == 0 {
            return Err(Error::Empty("synthetic".into()));
        }
        let i = self.cursor;
        self.cursor = (i + 1) % self.n;
        if self.buf.len() >= 4 {
            self.buf[..4].copy_from_slice(&(i as f32).to_le_bytes());
        }
        Ok(TensorRef {
            dtype: DType::Float32,
            shape: &self.shape,
            data: &self.buf,
        })
    }
    fn size(&mut self) -> Result<usize> {
        Ok(self.n)
    }
    fn skip(&mut self, k: usize) -> Result<()> {
        if self.n > 0 {
            self.cursor = (self.cursor + k) % self.n;
        }
        Ok(())
    }
    fn source(&self) -> String {
        format!("synthetic {} x float32[{}]", self.n, self.shape[0])
    }
}

/// The base of a warm cache: claims `n` records and fails if it is ever read, so a
/// warm open that touched the source would show up as an error, not as a figure.
pub struct Absent(pub usize);

impl Producer for Absent {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        Err(Error::InvalidArgument(
            "benchmark: a warm cache read its source".into(),
        ))
    }
    fn size(&mut self) -> Result<usize> {
        Ok(self.0)
    }
    fn source(&self) -> String {
        "absent".into()
    }
}

/// Populates a cache of `n` float32[`elems`] records at `path` from memory (removing
/// any file there first). Returns the file's size in bytes.
pub fn populate(path: &Path, n: usize, elems: usize) -> Result<u64> {
    let _ = std::fs::remove_file(path);
    let p = DiskCacheProducer::open_at(Box::new(Synth::new(n, elems)), path.to_path_buf(), None)?;
    assert_eq!(p.outcome(), &CacheOutcome::Created);
    assert_eq!(p.len(), n);
    Ok(std::fs::metadata(path)
        .map_err(|e| ioe("cannot stat", path, e))?
        .len())
}

/// Opens a warm cache of `n` records (the source is never read).
pub fn open_warm(path: &Path, n: usize) -> Result<DiskCacheProducer> {
    let p = DiskCacheProducer::open_at(Box::new(Absent(n)), path.to_path_buf(), None)?;
    assert_eq!(p.outcome(), &CacheOutcome::Reused, "{}", path.display());
    Ok(p)
}

/// One pass over a warm cache of `n` records through the zero-copy view API (open
/// included). Returns (checksum, data bytes seen).
pub fn view_pass(path: &Path, n: usize, epochs: usize) -> Result<(f64, u64)> {
    let mut p = open_warm(path, n)?;
    let mut sum = 0f64;
    let mut bytes = 0u64;
    for _ in 0..n * epochs {
        let t = p.next_view()?;
        sum += touch(t.data);
        bytes += t.data.len() as u64;
    }
    Ok((std::hint::black_box(sum), bytes))
}

/// How a run of `cpp_bin` (benches/cpp/warm_pass.cpp) reads the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CppMode {
    /// `harmonics::DiskCacheProducer::next()`, in file order.
    Next,
    /// The zero-copy `next_view()`, in file order.
    View,
    /// `harmonics::SampledProducer(cache, order)::next()`.
    Sampled,
    /// `view(i)` for `i` of the caller's own `harmonics::Sampler(order)`, after
    /// `cache.read_ahead(sampler)`.
    ViewSampled,
    /// `harmonics::BatchProducer(SampledProducer(cache, order), batch)::next()`.
    Batch(usize),
}

/// One run of the C++ pass: the mode, the sampler's order (seed, `block_records`; the
/// sequential modes ignore it) and how many records to read (None: an epoch).
#[derive(Clone, Copy, Debug)]
pub struct CppPass {
    pub mode: CppMode,
    pub seed: u64,
    pub block: u64,
    pub reads: Option<usize>,
}

/// What a C++ pass printed: records and data bytes read, the sum of what it read, and
/// the order hash (the sum over the k-th record read of (k + 1) x its first element,
/// which in the benchmark's records is its own index).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CppReport {
    pub records: u64,
    pub bytes: u64,
    pub checksum: f64,
    pub order: u64,
    /// Wall and CPU seconds of the reads after the first epoch (zeros for one epoch).
    pub later: (f64, f64),
}

impl CppPass {
    /// `mode` with seed 1, a global shuffle, an epoch.
    pub fn new(mode: CppMode) -> CppPass {
        CppPass {
            mode,
            seed: 1,
            block: 0,
            reads: None,
        }
    }

    pub fn seed(self, seed: u64) -> CppPass {
        CppPass { seed, ..self }
    }

    pub fn block(self, block: u64) -> CppPass {
        CppPass { block, ..self }
    }

    pub fn reads(self, reads: usize) -> CppPass {
        CppPass {
            reads: Some(reads),
            ..self
        }
    }

    /// Runs `cpp_bin` over the cache of `n` records at `path` in this mode; its report.
    pub fn run(&self, cpp_bin: &Path, path: &Path, n: usize) -> Result<CppReport> {
        let mode = match self.mode {
            CppMode::Next => "next",
            CppMode::View => "view",
            CppMode::Sampled => "sampled",
            CppMode::ViewSampled => "view-sampled",
            CppMode::Batch(_) => "batch",
        };
        let mut args = vec![
            mode.to_string(),
            format!("seed={}", self.seed),
            format!("block={}", self.block),
        ];
        if let Some(k) = self.reads {
            args.push(format!("reads={k}"));
        }
        if let CppMode::Batch(b) = self.mode {
            args.push(format!("batch={b}"));
        }
        let out = cpp_run(cpp_bin, path, n, &args)?;
        Ok(CppReport {
            records: report_field(&out, "records=", cpp_bin)?,
            bytes: report_field(&out, "bytes=", cpp_bin)?,
            checksum: report_field(&out, "checksum=", cpp_bin)?,
            order: report_field(&out, "order=", cpp_bin)?,
            later: (
                report_field(&out, "later_wall=", cpp_bin)?,
                report_field(&out, "later_cpu=", cpp_bin)?,
            ),
        })
    }

    /// The indices of the records this pass reads over a cache of `n`, in order.
    pub fn indices(&self, n: usize) -> Result<Vec<u64>> {
        let reads = self.reads.unwrap_or(n);
        Ok(match self.mode {
            CppMode::Next | CppMode::View => (0..reads as u64).map(|k| k % n as u64).collect(),
            CppMode::Sampled | CppMode::ViewSampled | CppMode::Batch(_) => {
                let reads = match self.mode {
                    CppMode::Batch(b) => reads / b * b,
                    _ => reads,
                };
                let options = harmonics_dataset::SamplerOptions {
                    seed: self.seed,
                    block_records: self.block,
                    ..Default::default()
                };
                harmonics_dataset::Sampler::new(n as u64, options)?
                    .take(reads)
                    .collect()
            }
        })
    }

    /// Checks `got` against what this pass must read over a cache of `n` records of
    /// `record_bytes` data bytes each, written by [`populate`] (record `i` holds `i` in its
    /// first element): the record count, the bytes and the order, and `checksum` when
    /// given (that of another pass over the same records: equal up to rounding).
    pub fn verify(
        &self,
        got: &CppReport,
        n: usize,
        record_bytes: u64,
        checksum: Option<f64>,
    ) -> Result<()> {
        let idx = self.indices(n)?;
        let order = order_hash(&idx);
        let bad = |what: String| {
            Err(Error::Foreign(format!(
                "C++ pass {self:?} over {n} records: {what}"
            )))
        };
        if got.records != idx.len() as u64 || got.bytes != idx.len() as u64 * record_bytes {
            return bad(format!(
                "read {} records, {} bytes; expected {} and {}",
                got.records,
                got.bytes,
                idx.len(),
                idx.len() as u64 * record_bytes
            ));
        }
        if got.order != order {
            return bad(format!(
                "order hash {} != {order}: not the records of the order",
                got.order
            ));
        }
        if let Some(c) = checksum {
            if (got.checksum - c).abs() > 1e-9 * c.abs().max(1.0) {
                return bad(format!("checksum {} != {c}", got.checksum));
            }
        }
        Ok(())
    }
}

/// warm_pass's order hash of reading records `idx` in that order.
pub fn order_hash(idx: &[u64]) -> u64 {
    idx.iter().enumerate().fold(0u64, |h, (k, &i)| {
        h.wrapping_add((k as u64 + 1).wrapping_mul(i))
    })
}

/// The value after `key` in warm_pass's report.
fn report_field<T: std::str::FromStr>(out: &str, key: &str, bin: &Path) -> Result<T> {
    super::common::field_as(out, key)
        .ok_or_else(|| Error::Foreign(format!("{}: no {key} in {out:?}", bin.display())))
}

fn cpp_run(cpp_bin: &Path, path: &Path, n: usize, args: &[String]) -> Result<String> {
    let out = Command::new(cpp_bin)
        .arg(path)
        .arg(n.to_string())
        .args(args)
        // The binary's rpath names the library it was linked with; cargo's
        // LD_LIBRARY_PATH (target/<profile> first) could load a stale copy instead.
        .env_remove("LD_LIBRARY_PATH")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| ioe("cannot run", cpp_bin, e))?;
    if !out.status.success() {
        return Err(Error::Foreign(format!(
            "{} failed: {}",
            cpp_bin.display(),
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The baseline of a warm pass: `cat FILE > /dev/null`.
pub fn cat(path: &Path) -> Result<()> {
    run(Command::new("cat")
        .arg(path)
        .stdout(File::create("/dev/null").map_err(|e| ioe("open", "/dev/null", e))?))
}

/// The baseline of a population: `dd if=/dev/zero of=F bs=1M count=N conv=fsync`,
/// `N` = `bytes` rounded up to MiB. Removes `F` before and after.
pub fn dd_fsync(path: &Path, bytes: u64) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let count = bytes.div_ceil(1 << 20);
    run(Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", path.display()))
        .args([
            "bs=1M",
            &format!("count={count}"),
            "conv=fsync",
            "status=none",
        ]))?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let st = cmd
        .status()
        .map_err(|e| ioe("cannot run", Path::new(&prog), e))?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::Foreign(format!("{prog} failed: {st}")))
    }
}

/// A saved copy of a cache file's header, to undo appends between rounds: the
/// header (commit slots included) is rewritten and the file cut back to its length.
pub struct Snapshot {
    path: PathBuf,
    len: u64,
    head: Vec<u8>,
}

impl Snapshot {
    pub fn take(path: &Path) -> Result<Snapshot> {
        let r = harmonics_dataset::cache::CacheReader::open(path)?;
        let mut head = vec![0u8; r.data_start() as usize];
        File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .map_err(|e| ioe("cannot read", path, e))?;
        let len = std::fs::metadata(path)
            .map_err(|e| ioe("cannot stat", path, e))?
            .len();
        Ok(Snapshot {
            path: path.to_path_buf(),
            len,
            head,
        })
    }

    pub fn restore(&self) -> Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| ioe("cannot open", &self.path, e))?;
        f.write_all_at(&self.head, 0)
            .and_then(|_| f.set_len(self.len))
            .and_then(|_| f.sync_all())
            .map_err(|e| ioe("cannot restore", &self.path, e))?;
        // Commit the filesystem's journal now (with `-o discard`, ext4 discards the
        // cut blocks at the next commit), so the next timed fsync does not pay for it.
        // SAFETY: syncfs on an open descriptor has no other preconditions.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) } != 0 {
            return Err(ioe(
                "cannot syncfs",
                &self.path,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

/// Appends `k` records to the cache at `path` holding `n` float32[`elems`] records,
/// through `DiskCacheProducer` (open, append, fsync, commit). Returns the new count.
pub fn append(path: &Path, n: usize, k: usize, elems: usize) -> Result<usize> {
    let p =
        DiskCacheProducer::open_at(Box::new(Synth::new(n + k, elems)), path.to_path_buf(), None)?;
    assert_eq!(
        p.outcome(),
        &CacheOutcome::Appended {
            from: n as u64,
            to: (n + k) as u64
        }
    );
    Ok(p.len())
}

fn ioe(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
    Error::Io {
        what,
        path: path.into(),
        source,
    }
}
