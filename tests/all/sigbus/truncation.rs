//! A cache cut or overwritten under a reader: an error naming the file, or correct
//! records rebuilt from the source; never a SIGBUS death.

use super::*;

#[test]
fn a_reader_survives_truncation_by_another_process_and_names_the_file() {
    let (_dir, path) = built_cache();
    // Keep the header page: the cut is past it, where the records are.
    let (status, out) = child_over("reader", &path, |p| cut(p, 4096));
    assert_survived(status, &out);
    assert!(out.contains("error: corrupted cache file"), "{out}");
    assert!(out.contains(&path.display().to_string()), "{out}");
    assert!(out.contains("changed while being read"), "{out}");
}

#[test]
fn a_reader_survives_truncation_to_zero() {
    let (_dir, path) = built_cache();
    // O_TRUNC, as `> train.cache` does.
    let (status, out) = child_over("reader", &path, |p| drop(std::fs::File::create(p).unwrap()));
    assert_survived(status, &out);
    assert!(out.contains(&path.display().to_string()), "{out}");
    assert!(out.contains("changed while being read"), "{out}");
}

#[test]
fn a_reader_survives_cp_of_another_cache_over_its_file() {
    let (dir, path) = built_cache();
    let other = dir.path().join("new.cache");
    build(&other, 1e6);
    let (status, out) = child_over("reader", &path, |p| {
        let st = Command::new("cp").arg(&other).arg(p).status().unwrap();
        assert!(st.success());
    });
    assert_survived(status, &out);
    assert!(out.contains(&path.display().to_string()), "{out}");
    assert!(out.contains("changed while being read"), "{out}");
}

#[test]
fn a_producer_with_its_source_rebuilds_after_truncation_and_serves_correct_records() {
    let (_dir, path) = built_cache();
    let (status, out) = child_over("producer", &path, |p| cut(p, 8192));
    assert_survived(status, &out);
    assert!(out.contains("rebuilt: corrupted cache file"), "{out}");
    assert!(out.contains("changed while being read"), "{out}");
    assert!(out.contains("checked"), "{out}");
}

#[test]
fn in_process_truncation_is_an_error_naming_the_file_for_views_and_copies() {
    let (_dir, path) = built_cache();
    let mut r = CacheReader::open(&path).unwrap();
    for _ in 0..10 {
        r.next_view().unwrap();
    }
    let before = repaired_faults();
    cut(&path, 4096);
    let e = r.next_view().unwrap_err();
    assert!(e.is_corruption());
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("changed while being read"), "{msg}");
    assert!(repaired_faults() > before);
    // Sticky: the mapping stays untrusted.
    assert!(r.next_view().is_err());
    assert!(r.intact().is_err());
    // A fresh open sees the file as it is now (shorter than its commit: damage).
    let e = CacheReader::open(&path).unwrap_err();
    assert!(e.to_string().contains(&path.display().to_string()));

    // The copying path of a producer whose source is gone: an error, not zeros.
    build(&path, 0.0);
    struct Gone;
    impl Producer for Gone {
        fn next_view(&mut self) -> harmonics_dataset::Result<harmonics_dataset::TensorRef<'_>> {
            Err(harmonics_dataset::Error::Foreign("source gone".into()))
        }
        fn size(&mut self) -> harmonics_dataset::Result<usize> {
            Ok(RECORDS)
        }
        fn source(&self) -> String {
            "sigbus test seed 0".into()
        }
    }
    let mut p = DiskCacheProducer::open_at(Box::new(Gone), path.clone(), None).unwrap();
    assert_eq!(p.next().unwrap().to_f32()[0], 0.0);
    std::fs::File::create(&path).unwrap();
    let msg = p.next().unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("changed while being read"), "{msg}");
}
