//! Reading a cache never loads the dataset into RAM: a child process iterates a
//! 512 MiB cache (every byte CRC-checked) and reports its peak RSS, which must stay
//! far below the file size. Measured in a fresh process so the test harness's own
//! allocations (and the writer's buffers) do not count.

use std::process::Command;

use harmonics_dataset::cache::{CacheLock, CacheReader, CacheWriter, Metadata};
use harmonics_dataset::{DType, TensorRef};

use crate::support;

const CHILD_ENV: &str = "HD_MEMORY_CHILD_CACHE";

/// Peak resident set (VmHWM) of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Child role: iterate the cache twice (two epochs), touching one float per cache
/// line so every page is really read, then print the peak RSS.
fn child(path: &str) {
    let mut r = CacheReader::open(path).unwrap();
    let mut sum = 0f64;
    for _ in 0..2 * r.len() {
        let t = r.next_view().unwrap();
        for line in t.data.chunks(64) {
            sum += f32::from_le_bytes(line[..4].try_into().unwrap()) as f64;
        }
    }
    println!("peak_rss_kib={} checksum={sum}", peak_rss_kib());
}

#[test]
fn iterating_a_512_mib_cache_keeps_peak_rss_far_below_its_size() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.cache");
    let record: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let lock = CacheLock::exclusive(&path).unwrap();
    let mut w = CacheWriter::create(&path, Metadata::new("", "memory test"), &lock).unwrap();
    for _ in 0..512 {
        w.push(TensorRef {
            dtype: DType::Float32,
            shape: &[1 << 18],
            data: &record,
        })
        .unwrap();
    }
    w.finish().unwrap();
    drop(lock);
    let size = std::fs::metadata(&path).unwrap().len();

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            &support::test_name(
                module_path!(),
                "iterating_a_512_mib_cache_keeps_peak_rss_far_below_its_size",
            ),
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: u64 = stdout
        .split("peak_rss_kib=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("child printed its peak RSS");
    println!(
        "cache {} MiB, peak RSS while iterating it twice: {} MiB ({:.1}% of the file)",
        size >> 20,
        peak >> 10,
        100.0 * (peak << 10) as f64 / size as f64
    );
    assert!(
        peak << 10 < size / 4,
        "peak RSS {peak} KiB is not far below the {size}-byte cache"
    );
}
