//! What read-ahead leaves behind: no thread and no descriptor once the consumer is
//! gone, private memory flat over a 2 GB epoch, and a file copied over the mapped one
//! mid-epoch survived without a wrong record.

use super::*;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Open descriptors, those naming `path`, and the mappings of `path`.
fn fds(path: &Path) -> (usize, usize, usize) {
    let mut all = 0;
    let mut ours = 0;
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        all += 1;
        if std::fs::read_link(e.path()).is_ok_and(|l| l == path) {
            ours += 1;
        }
    }
    let name = path.to_str().unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(name))
        .count();
    (all, ours, maps)
}

/// This process's private memory (RssAnon), in KiB.
fn rss_anon_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status")
}

#[test]
fn a_consumer_dropped_mid_epoch_leaves_no_thread_and_no_descriptor() {
    if !in_child("lifecycle::a_consumer_dropped_mid_epoch_leaves_no_thread_and_no_descriptor") {
        return;
    }
    let n = 8_000;
    let (_dir, path) = scratch(n);
    let path = path.canonicalize().unwrap();
    for cold in [false, true] {
        if cold {
            drop_cached(&path);
        }
        let (threads_before, (fds_before, ..)) = (threads(), fds(&path));
        let mut p = SampledProducer::new(open_cache(&path, n), opts(50, 64, 0, 1)).unwrap();
        for _ in 0..n / 2 {
            p.next().unwrap();
        }
        assert!(fds(&path).2 >= 1, "the cache is mapped while read");
        drop(p);
        assert_eq!(
            threads(),
            threads_before,
            "cold={cold}: a thread outlived the consumer"
        );
        assert_eq!(
            fds(&path),
            (fds_before, 0, 0),
            "cold={cold}: a descriptor outlived the consumer"
        );
    }
}

#[test]
fn private_memory_stays_flat_over_a_shuffled_epoch_of_a_2gb_cache() {
    if !in_child("lifecycle::private_memory_stays_flat_over_a_shuffled_epoch_of_a_2gb_cache") {
        return;
    }
    // 2 GiB of 256 KiB records, written from a generator (never all in memory).
    const ELEMS: usize = 64 << 10;
    let n: u64 = 8_192;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.cache");
    let lock = CacheLock::exclusive(&path).unwrap();
    let mut w = CacheWriter::create(&path, Metadata::new("", "2 GiB"), &lock).unwrap();
    let mut rec = Tensor::from_f32(&vec![0f32; ELEMS]);
    for i in 0..n {
        rec.data[..4].copy_from_slice(&(i as f32).to_le_bytes());
        w.push(rec.as_ref()).unwrap();
    }
    w.finish().unwrap();
    lock.remove_lock_file();
    drop(rec);
    let mut r = CacheReader::open(&path).unwrap();
    let mut order = Sampler::new(n, opts(60, 0, 0, 1)).unwrap();
    r.read_ahead(Box::new(order.clone()));
    let mut t = Tensor::from_f32(&[]);
    r.at_into(0, &mut t).unwrap();
    let base = rss_anon_kib();
    let mut peak = base;
    for k in 0..n {
        let i = order.next_index();
        r.at_into(i, &mut t).unwrap();
        let first = f32::from_le_bytes(t.data[..4].try_into().unwrap());
        assert_eq!(first, i as f32, "record {i}");
        if k % 64 == 0 {
            peak = peak.max(rss_anon_kib());
        }
    }
    peak = peak.max(rss_anon_kib());
    eprintln!(
        "RssAnon over a shuffled epoch of {} MiB: {base} KiB at the start, {peak} KiB at most",
        std::fs::metadata(&path).unwrap().len() >> 20
    );
    assert!(
        peak - base < 32 << 10,
        "private memory grew by {} KiB over the epoch",
        peak - base
    );
}

#[test]
fn a_file_copied_over_the_mapped_cache_mid_epoch_is_survived() {
    let n = 3_000;
    let (dir, path) = scratch(n);
    // Another version, shorter (the copy cuts the mapped file: SIGBUS territory).
    let other = dir.path().join("other.cache");
    write(&other, n / 2, 1);
    let o = opts(70, 32, 0, 1);
    let mut p = SampledProducer::new(open_cache(&path, n), o).unwrap();
    let mut order = Sampler::new(n, o).unwrap();
    let mut t = Tensor::from_f32(&[]);
    for k in 0..2 * n {
        if k == n / 3 {
            std::fs::copy(&other, &path).unwrap();
        }
        let i = order.next_index();
        p.next_into(&mut t).unwrap();
        assert_record(t.as_ref(), i, 0, "after the copy");
    }
    assert!(
        matches!(
            p.source_mut().outcome(),
            harmonics_dataset::CacheOutcome::Rebuilt(_)
        ),
        "the copy was detected and the cache rebuilt: {:?}",
        p.source_mut().outcome()
    );
}

/// As above with the file cold, so its clusters come in as huge folios by faults where
/// the kernel has them (a cut then takes a page out of a huge mapping): a `cp` of a
/// shorter version over it, or a truncation in place, mid-epoch. No wrong record; the
/// cache is rebuilt.
#[test]
fn a_cold_cache_cut_mid_epoch_under_huge_clusters_is_survived() {
    let n = 12_000;
    for cut in ["cp", "truncate"] {
        let (dir, path) = scratch(n);
        let other = dir.path().join("other.cache");
        write(&other, n / 3, 1);
        drop_cached(&path);
        let o = opts(71, 0, 0, 1);
        let mut p = SampledProducer::new(open_cache(&path, n), o).unwrap();
        let mut order = Sampler::new(n, o).unwrap();
        let mut t = Tensor::from_f32(&[]);
        for k in 0..n + n / 2 {
            if k == n / 2 {
                if cut == "cp" {
                    std::fs::copy(&other, &path).unwrap();
                } else {
                    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                    let len = f.metadata().unwrap().len();
                    f.set_len(len / 3).unwrap();
                }
            }
            let i = order.next_index();
            p.next_into(&mut t).unwrap();
            assert_record(t.as_ref(), i, 0, cut);
        }
        assert!(
            matches!(
                p.source_mut().outcome(),
                harmonics_dataset::CacheOutcome::Rebuilt(_)
            ),
            "{cut}: detected and rebuilt: {:?}",
            p.source_mut().outcome()
        );
    }
}

/// One cache shared by several consumers (as the C and C++ handles share it): a
/// producer whose random reads lock the one cache.
struct Shared(std::sync::Arc<std::sync::Mutex<DiskCacheProducer>>);

impl Producer for Shared {
    fn next_view(&mut self) -> harmonics_dataset::Result<TensorRef<'_>> {
        Err(Error::InvalidArgument(
            "a shared cache serves random reads only".into(),
        ))
    }
    fn at_into(
        &mut self,
        index: u64,
        out: &mut dyn harmonics_dataset::RecordSink,
    ) -> harmonics_dataset::Result<()> {
        self.0.lock().unwrap().at_into(index, out)
    }
    fn size(&mut self) -> harmonics_dataset::Result<usize> {
        Ok(self.0.lock().unwrap().len())
    }
    fn has_random_access(&self) -> bool {
        true
    }
    fn read_ahead(&mut self, order: harmonics_dataset::cache::ReadOrder) {
        self.0.lock().unwrap().read_ahead(order)
    }
    fn source(&self) -> String {
        "shared cache".into()
    }
}

#[test]
fn four_threads_in_four_orders_over_one_cache_each_get_their_own_records() {
    // Each sampled producer tells the one cache its order; the plans replace each
    // other, so most reads are off the plan of the moment: all must stay exact.
    let n = 2_000;
    let (_dir, path) = scratch(n);
    let cache = std::sync::Arc::new(std::sync::Mutex::new(open_cache(&path, n)));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let o = opts(100 + t, [0, 16, 64, 0][t as usize], 0, 1);
                let mut p = SampledProducer::new(Shared(cache), o).unwrap();
                let mut order = Sampler::new(n, o).unwrap();
                let mut tensor = Tensor::from_f32(&[]);
                for k in 0..3 * n {
                    let i = order.next_index();
                    p.next_into(&mut tensor).unwrap();
                    assert_record(tensor.as_ref(), i, 0, &format!("thread {t}, step {k}"));
                    if k % 500 == 0 {
                        p.skip(3).unwrap(); // re-plans: the plans keep changing hands
                        for _ in 0..3 {
                            order.next_index();
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
