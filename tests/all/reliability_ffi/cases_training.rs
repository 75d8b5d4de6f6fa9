//! Null cases of the training-order calls: random access, the sampler and the sampled,
//! shuffled, sharded and batched producers.

use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::{HarmonicsProducer, HarmonicsStatus};

use super::harness::*;

/// Null cases of the training-order calls (random access, sampler, sampled producers).
pub fn training_order_cases() -> Vec<Case> {
    use harmonics_dataset::ffi::sampled::*;
    use harmonics_dataset::ffi::sampler::*;
    use harmonics_dataset::{Tensor, VecProducer};
    use Expect::*;
    // A random-access producer and a sampler, leaked for the test's lifetime.
    let records = (0..4).map(|i| Tensor::from_f32(&[i as f32])).collect();
    let ra = producer_into_handle(Box::new(VecProducer::new(records)));
    let mut sampler = null_mut();
    unsafe { assert_eq!(harmonics_sampler_new(10, null(), &mut sampler) as u32, OK) };
    let sm = sampler as usize;
    let sp = move || sm as *mut HarmonicsSampler;
    let state = unsafe {
        let mut st = std::mem::zeroed::<HarmonicsSamplerState>();
        assert_eq!(harmonics_sampler_state(sp(), &mut st) as u32, OK);
        st
    };
    let rp = ra as usize;
    let ra = move || rp as *mut HarmonicsProducer;
    let mut sampled = null_mut();
    unsafe {
        assert_eq!(
            harmonics_sampled_producer_new(ra(), null(), &mut sampled) as u32,
            OK
        )
    };
    let sd = sampled as usize;
    let sd = move || sd as *mut HarmonicsProducer;
    let free_ok = |st: HarmonicsStatus, p: *mut HarmonicsProducer| {
        unsafe { harmonics_producer_free(p) };
        s(st)
    };
    unsafe {
        vec![
            case(
                "harmonics_producer_view_at",
                "producer",
                Refused,
                move || {
                    s(harmonics_producer_view_at(
                        null_mut(),
                        0,
                        &mut std::mem::zeroed(),
                    ))
                },
            ),
            case("harmonics_producer_view_at", "out", Refused, move || {
                s(harmonics_producer_view_at(ra(), 0, null_mut()))
            }),
            case("harmonics_producer_at", "producer", Refused, move || {
                s(harmonics_producer_at(null_mut(), 0, &mut null_mut()))
            }),
            case("harmonics_producer_at", "out", Refused, move || {
                s(harmonics_producer_at(ra(), 0, null_mut()))
            }),
            case(
                "harmonics_producer_has_random_access",
                "producer",
                Refused,
                move || s(harmonics_producer_has_random_access(null(), &mut false)),
            ),
            case(
                "harmonics_producer_has_random_access",
                "out",
                Refused,
                move || s(harmonics_producer_has_random_access(ra(), null_mut())),
            ),
            case(
                "harmonics_sampled_producer_new",
                "source",
                Refused,
                move || {
                    s(harmonics_sampled_producer_new(
                        null_mut(),
                        null(),
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_sampled_producer_new",
                "options",
                Accepted,
                move || {
                    let mut out = null_mut();
                    free_ok(harmonics_sampled_producer_new(ra(), null(), &mut out), out)
                },
            ),
            case(
                "harmonics_sampled_producer_new",
                "out",
                Refused,
                move || s(harmonics_sampled_producer_new(ra(), null(), null_mut())),
            ),
            case(
                "harmonics_sampled_producer_sampler",
                "producer",
                Refused,
                move || s(harmonics_sampled_producer_sampler(null(), &mut null_mut())),
            ),
            case(
                "harmonics_sampled_producer_sampler",
                "out",
                Refused,
                move || s(harmonics_sampled_producer_sampler(sd(), null_mut())),
            ),
            case(
                "harmonics_sampled_producer_state",
                "producer",
                Refused,
                move || {
                    s(harmonics_sampled_producer_state(
                        null(),
                        &mut std::mem::zeroed(),
                    ))
                },
            ),
            case(
                "harmonics_sampled_producer_state",
                "out",
                Refused,
                move || s(harmonics_sampled_producer_state(sd(), null_mut())),
            ),
            case(
                "harmonics_sampled_producer_restore",
                "producer",
                Refused,
                move || s(harmonics_sampled_producer_restore(null_mut(), &state)),
            ),
            case(
                "harmonics_sampled_producer_restore",
                "state",
                Refused,
                move || s(harmonics_sampled_producer_restore(sd(), null())),
            ),
            case(
                "harmonics_sampled_producer_set_epoch",
                "producer",
                Refused,
                move || s(harmonics_sampled_producer_set_epoch(null_mut(), 1)),
            ),
            case(
                "harmonics_producer_read_ahead",
                "producer",
                Refused,
                move || s(harmonics_producer_read_ahead(null_mut(), sp())),
            ),
            case(
                "harmonics_producer_read_ahead",
                "sampler",
                Refused,
                move || s(harmonics_producer_read_ahead(ra(), null())),
            ),
            case(
                "harmonics_sampled_producer_peek",
                "producer",
                Refused,
                move || s(harmonics_sampled_producer_peek(null(), &mut 0)),
            ),
            case(
                "harmonics_sampled_producer_peek",
                "out",
                Refused,
                move || s(harmonics_sampled_producer_peek(sd(), null_mut())),
            ),
            case(
                "harmonics_shuffle_producer_new",
                "inner",
                Refused,
                move || {
                    s(harmonics_shuffle_producer_new(
                        null_mut(),
                        false,
                        0,
                        &mut null_mut(),
                    ))
                },
            ),
            case(
                "harmonics_shuffle_producer_new",
                "out",
                Refused,
                move || s(harmonics_shuffle_producer_new(ra(), false, 0, null_mut())),
            ),
            case(
                "harmonics_shard_producer_new",
                "inner",
                Refused,
                move || {
                    s(harmonics_shard_producer_new(
                        null_mut(),
                        0,
                        1,
                        &mut null_mut(),
                    ))
                },
            ),
            case("harmonics_shard_producer_new", "out", Refused, move || {
                s(harmonics_shard_producer_new(ra(), 0, 1, null_mut()))
            }),
            case(
                "harmonics_batch_producer_new",
                "inner",
                Refused,
                move || s(harmonics_batch_producer_new(null_mut(), 2, &mut null_mut())),
            ),
            case("harmonics_batch_producer_new", "out", Refused, move || {
                s(harmonics_batch_producer_new(ra(), 2, null_mut()))
            }),
            case("harmonics_sampler_new", "options", Accepted, move || {
                let mut out = null_mut();
                let st = harmonics_sampler_new(5, null(), &mut out);
                harmonics_sampler_free(out);
                s(st)
            }),
            case("harmonics_sampler_new", "out", Refused, move || {
                s(harmonics_sampler_new(5, null(), null_mut()))
            }),
            case("harmonics_sampler_clone", "sampler", Refused, move || {
                s(harmonics_sampler_clone(null(), &mut null_mut()))
            }),
            case("harmonics_sampler_clone", "out", Refused, move || {
                s(harmonics_sampler_clone(sp(), null_mut()))
            }),
            case("harmonics_sampler_free", "sampler", Accepted, move || {
                harmonics_sampler_free(null_mut());
                None
            }),
            case("harmonics_sampler_size", "sampler", Refused, move || {
                s(harmonics_sampler_size(null(), &mut 0))
            }),
            case("harmonics_sampler_size", "out", Refused, move || {
                s(harmonics_sampler_size(sp(), null_mut()))
            }),
            case(
                "harmonics_sampler_num_records",
                "sampler",
                Refused,
                move || s(harmonics_sampler_num_records(null(), &mut 0)),
            ),
            case("harmonics_sampler_num_records", "out", Refused, move || {
                s(harmonics_sampler_num_records(sp(), null_mut()))
            }),
            case("harmonics_sampler_index", "sampler", Refused, move || {
                s(harmonics_sampler_index(null(), 0, &mut 0))
            }),
            case("harmonics_sampler_index", "out", Refused, move || {
                s(harmonics_sampler_index(sp(), 0, null_mut()))
            }),
            case("harmonics_sampler_next", "sampler", Refused, move || {
                s(harmonics_sampler_next(null_mut(), &mut 0))
            }),
            case("harmonics_sampler_next", "out", Refused, move || {
                s(harmonics_sampler_next(sp(), null_mut()))
            }),
            case("harmonics_sampler_fill", "sampler", Refused, move || {
                s(harmonics_sampler_fill(
                    null_mut(),
                    [0u64; 2].as_mut_ptr(),
                    2,
                ))
            }),
            case("harmonics_sampler_fill", "out", Refused, move || {
                s(harmonics_sampler_fill(sp(), null_mut(), 2))
            }),
            case(
                "harmonics_sampler_set_epoch",
                "sampler",
                Refused,
                move || s(harmonics_sampler_set_epoch(null_mut(), 1)),
            ),
            case("harmonics_sampler_epoch", "sampler", Refused, move || {
                s(harmonics_sampler_epoch(null(), &mut 0))
            }),
            case("harmonics_sampler_epoch", "out", Refused, move || {
                s(harmonics_sampler_epoch(sp(), null_mut()))
            }),
            case("harmonics_sampler_options", "sampler", Refused, move || {
                s(harmonics_sampler_options(
                    null(),
                    &mut harmonics_sampler_options_default(),
                ))
            }),
            case("harmonics_sampler_options", "out", Refused, move || {
                s(harmonics_sampler_options(sp(), null_mut()))
            }),
            case("harmonics_sampler_state", "sampler", Refused, move || {
                s(harmonics_sampler_state(null(), &mut std::mem::zeroed()))
            }),
            case("harmonics_sampler_state", "out", Refused, move || {
                s(harmonics_sampler_state(sp(), null_mut()))
            }),
            case("harmonics_sampler_restore", "sampler", Refused, move || {
                s(harmonics_sampler_restore(null_mut(), &state))
            }),
            case("harmonics_sampler_restore", "state", Refused, move || {
                s(harmonics_sampler_restore(sp(), null()))
            }),
        ]
    }
}
