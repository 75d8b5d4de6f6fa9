//! Producers in a training order: sampled, shuffled, sharded and batched producers,
//! from Rust and through the C ABI.

use super::*;

// --- Producers in a training order --------------------------------------------------

fn records(n: usize) -> Vec<Tensor> {
    (0..n).map(|i| Tensor::from_f32(&[i as f32, 0.5])).collect()
}

fn value(t: TensorRef<'_>) -> u64 {
    t.to_owned().to_f32()[0] as u64
}

/// A producer without random access (a stream), counting the records it hands out.
struct Stream {
    inner: VecProducer,
    reads: usize,
}

impl Producer for Stream {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.reads += 1;
        self.inner.next_view()
    }
    fn size(&mut self) -> Result<usize> {
        self.inner.size()
    }
    fn source(&self) -> String {
        "stream".into()
    }
}

/// A random-access producer whose sequential path must not be used.
struct RandomOnly {
    inner: VecProducer,
    reads: usize,
}

impl Producer for RandomOnly {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        panic!("a random-access producer is not read sequentially");
    }
    fn size(&mut self) -> Result<usize> {
        self.inner.size()
    }
    fn source(&self) -> String {
        "random-only".into()
    }
    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        self.reads += 1;
        if index == 13 {
            return Err(harmonics_dataset::Error::Foreign(
                "record 13 is damaged".into(),
            ));
        }
        self.inner.view_at(index)
    }
    fn has_random_access(&self) -> bool {
        true
    }
}

#[test]
fn a_sampled_producer_reads_the_sampler_order_and_retries_a_failed_read() {
    let o = opts(5, 1, 3);
    let mut p = SampledProducer::new(
        RandomOnly {
            inner: VecProducer::new(records(100)),
            reads: 0,
        },
        o,
    )
    .unwrap();
    let mut s = Sampler::new(100, o).unwrap();
    assert_eq!(p.size().unwrap(), 34);
    for _ in 0..200 {
        let i = s.next_index();
        if i == 13 {
            let err = p.next().unwrap_err().to_string();
            assert!(err.contains("record 13 is damaged"));
            assert_eq!(
                p.sampler().peek(),
                13,
                "a failed read does not move the sampler"
            );
            p.skip(1).unwrap();
            continue;
        }
        assert_eq!(value(p.next_view().unwrap()), i);
    }
    assert_eq!(p.state(), s.state());
    let err = SampledProducer::new(
        Stream {
            inner: VecProducer::new(records(3)),
            reads: 0,
        },
        o,
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .starts_with("stream does not support random access: wrap it in a DiskCacheProducer"),
        "{err}"
    );
}

#[test]
fn shuffle_producer_is_a_new_permutation_each_epoch_in_both_modes() {
    let mut ra = ShuffleProducer::new(VecProducer::new(records(50)), Some(8)).unwrap();
    let mut st = ShuffleProducer::new(
        Stream {
            inner: VecProducer::new(records(50)),
            reads: 0,
        },
        Some(8),
    )
    .unwrap();
    assert_eq!(ra.size().unwrap(), 50);
    let mut epochs = Vec::new();
    for _ in 0..3 {
        let a: Vec<u64> = (0..50).map(|_| value(ra.next_view().unwrap())).collect();
        let b: Vec<u64> = (0..50).map(|_| value(st.next_view().unwrap())).collect();
        assert_eq!(a, b, "the same order over a cache and over a stream");
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        epochs.push(a);
    }
    assert_ne!(epochs[0], epochs[1]);
    // Unseeded: each object draws its own order.
    let a: Vec<u64> = {
        let mut p = ShuffleProducer::new(VecProducer::new(records(50)), None).unwrap();
        (0..50).map(|_| value(p.next_view().unwrap())).collect()
    };
    let b: Vec<u64> = {
        let mut p = ShuffleProducer::new(VecProducer::new(records(50)), None).unwrap();
        (0..50).map(|_| value(p.next_view().unwrap())).collect()
    };
    assert_ne!(a, b);
}

#[test]
fn wrappers_over_random_access_read_nothing_up_front() {
    let base = || RandomOnly {
        inner: VecProducer::new(records(10)),
        reads: 0,
    };
    // RandomOnly panics if read sequentially: construction loads nothing.
    let mut s = ShuffleProducer::new(base(), Some(1)).unwrap();
    assert_eq!(s.size().unwrap(), 10);
    let mut sh = ShardProducer::new(base(), 2, 3).unwrap();
    let got: Vec<u64> = (0..4).map(|_| value(sh.next_view().unwrap())).collect();
    assert_eq!(
        got,
        [7, 8, 9, 7],
        "shard 2 of 3 over 10 records is 7..10, cycling"
    );
    let mut stream = Stream {
        inner: VecProducer::new(records(10)),
        reads: 0,
    };
    stream.reads = 0;
    let mut sh = ShardProducer::new(stream, 0, 3).unwrap();
    let got: Vec<u64> = (0..5).map(|_| value(sh.next_view().unwrap())).collect();
    assert_eq!(
        got,
        [0, 1, 2, 3, 0],
        "shard 0 of 3 is 0..4 (the first shard is longer)"
    );
    assert!(ShardProducer::new(base(), 3, 3).is_err());
}

#[test]
fn batch_producer_stacks_consecutive_records() {
    let mut b = BatchProducer::new(VecProducer::new(records(10)), 4).unwrap();
    assert_eq!(b.size().unwrap(), 2);
    let t = b.next().unwrap();
    assert_eq!(t.shape, [4, 2]);
    assert_eq!(t.to_f32(), [0.0, 0.5, 1.0, 0.5, 2.0, 0.5, 3.0, 0.5]);
    let t = b.next().unwrap();
    assert_eq!(t.to_f32()[0], 4.0);
    let t = b.next().unwrap(); // 8, 9, then cycling to 0, 1 as the original did
    assert_eq!(
        t.to_f32().iter().step_by(2).copied().collect::<Vec<_>>(),
        [8.0, 9.0, 0.0, 1.0]
    );
    let mut mixed = VecProducer::new(records(1));
    mixed.push(Tensor::from_f32(&[1.0]));
    let err = BatchProducer::new(mixed, 2)
        .unwrap()
        .next()
        .unwrap_err()
        .to_string();
    assert!(err.contains("shape float32[1] differs"), "{err}");
    assert!(BatchProducer::new(VecProducer::new(records(1)), 0).is_err());
}

#[test]
fn the_c_abi_reads_a_random_access_producer_at_an_index_and_in_sampler_order() {
    use harmonics_dataset::ffi::producer::*;
    use harmonics_dataset::ffi::sampled::*;
    use harmonics_dataset::ffi::tensor::harmonics_tensor_free;
    use harmonics_dataset::ffi::{HarmonicsStatus as St, HarmonicsTensorView};
    use std::ptr::{null, null_mut};
    let h = harmonics_dataset::ffi::producer::producer_into_handle(Box::new(VecProducer::new(
        records(20),
    )));
    unsafe {
        let mut yes = false;
        assert_eq!(harmonics_producer_has_random_access(h, &mut yes), St::Ok);
        assert!(yes);
        let mut v: HarmonicsTensorView = std::mem::zeroed();
        assert_eq!(harmonics_producer_view_at(h, 7, &mut v), St::Ok);
        assert_eq!(std::slice::from_raw_parts(v.data, 4), 7.0f32.to_le_bytes());
        let mut t = null_mut();
        assert_eq!(harmonics_producer_at(h, 20, &mut t), St::IndexOutOfRange);
        assert_eq!(harmonics_producer_at(h, 19, &mut t), St::Ok);
        harmonics_tensor_free(t);
        let o = harmonics_dataset::ffi::HarmonicsSamplerOptions {
            seed: 3,
            ..harmonics_dataset::ffi::sampler::harmonics_sampler_options_default()
        };
        let mut sp = null_mut();
        assert_eq!(harmonics_sampled_producer_new(h, &o, &mut sp), St::Ok);
        let mut s = Sampler::new(
            20,
            SamplerOptions {
                seed: 3,
                ..SamplerOptions::default()
            },
        )
        .unwrap();
        for _ in 0..30 {
            assert_eq!(harmonics_producer_next_view(sp, &mut v), St::Ok);
            let got = f32::from_le_bytes(std::slice::from_raw_parts(v.data, 4).try_into().unwrap());
            assert_eq!(got as u64, s.next_index());
        }
        // peek + at + skip: the same record, one copy.
        let mut i = 0u64;
        assert_eq!(harmonics_sampled_producer_peek(sp, &mut i), St::Ok);
        assert_eq!(i, s.peek());
        assert_eq!(harmonics_producer_skip(sp, 1), St::Ok);
        s.next_index();
        let mut st = std::mem::zeroed();
        assert_eq!(harmonics_sampled_producer_state(sp, &mut st), St::Ok);
        assert_eq!((st.epoch, st.position), (1, 11));
        // The wrappers over a random-access handle.
        let mut shard = null_mut();
        assert_eq!(harmonics_shard_producer_new(h, 1, 3, &mut shard), St::Ok);
        assert_eq!(harmonics_producer_next_view(shard, &mut v), St::Ok);
        assert_eq!(std::slice::from_raw_parts(v.data, 4), 7.0f32.to_le_bytes());
        let mut batch = null_mut();
        assert_eq!(
            harmonics_batch_producer_new(h, 0, &mut batch),
            St::InvalidArgument
        );
        let mut shuffle = null_mut();
        assert_eq!(
            harmonics_shuffle_producer_new(h, true, 3, &mut shuffle),
            St::Ok
        );
        let mut n = 0usize;
        assert_eq!(harmonics_producer_size(shuffle, &mut n), St::Ok);
        assert_eq!(n, 20);
        // A producer without random access.
        let csv = b"1\n2\n";
        let mut c = null_mut();
        assert_eq!(
            harmonics_csv_producer_from_memory(csv.as_ptr(), 4, null(), false, &mut c),
            St::Ok
        );
        assert_eq!(harmonics_producer_view_at(c, 0, &mut v), St::NoRandomAccess);
        assert_eq!(
            harmonics_sampled_producer_new(c, null(), &mut null_mut()),
            St::NoRandomAccess
        );
        for p in [h, sp, shard, shuffle, c] {
            harmonics_producer_free(p);
        }
    }
}
