//! Failures: a limit below the minimum is refused at construction with the minimum in
//! bytes; an object replaced on the server mid-stream is an error naming the URL with
//! no record of the new version served; a rank killed with SIGKILL at a random point
//! and resumed from its saved state continues exactly as an uninterrupted run, also
//! alone while its node-mate reads on; a state of another layout is refused, naming
//! both layouts.

use super::*;
use std::time::Duration;

#[test]
fn a_limit_below_the_minimum_is_refused_with_the_minimum_in_bytes() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let name = s.tmp.path().join("small").to_str().unwrap().to_string();
    let e = StreamingProducer::new(&url, order(0, 2), options(100 << 10, 2, &name)).unwrap_err();
    let m = e.to_string();
    eprintln!("{m}");
    let minimum: u64 = m
        .split("minimum of ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no minimum in {m}"));
    assert!(minimum > 100 << 10 && m.contains(&url), "{m}");
    // At the minimum it opens, and two rank processes read two epochs through it,
    // every record exact, never over it, without a hang.
    StreamingProducer::new(&url, order(0, 2), options(minimum, 2, &name)).unwrap();
    let ranks: Vec<Child> = (0..2)
        .map(|r| {
            Rank {
                url: url.clone(),
                rank: r,
                world: 2,
                rpn: 2,
                cache_dir: s.tmp.path().join("node"),
                name: "minimum.stream".into(),
                limit: minimum,
                epochs: 2,
                state_file: None,
                pace_us: 0,
            }
            .spawn()
        })
        .collect();
    for c in ranks {
        let r = report(c);
        assert_eq!(r.epochs.len(), 2);
        assert!(
            r.stats["disk_high_water"] as u64 <= minimum,
            "{:?}",
            r.stats
        );
    }
}

#[test]
fn an_object_replaced_mid_stream_is_an_error_naming_the_url_never_a_mix() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let name = s.tmp.path().join("replaced").to_str().unwrap().to_string();
    let mut p = StreamingProducer::new(&url, order(0, 1), options(700 << 10, 1, &name)).unwrap();
    for _ in 0..200 {
        check(&p.next().unwrap(), 1);
    }
    let v2 = published(s.tmp.path(), 2);
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    s.server.publish_with_mtime("train.cache", &v2, later);
    let mut served = 200;
    let e = loop {
        match p.next() {
            Ok(t) => {
                // Only version 1 (held in the node cache) until the error.
                check(&t, 1);
                served += 1;
                assert!(served < 2 * RECORDS, "the change was never noticed");
            }
            Err(e) => break e,
        }
    };
    let m = e.to_string();
    eprintln!("after {served} records: {m}");
    assert!(m.contains(&url) && m.contains("changed"), "{m}");
}

#[test]
fn a_rank_killed_at_a_random_point_resumes_exactly() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let rank = |dir: &str, state: &Path| Rank {
        url: url.clone(),
        rank: 0,
        world: 1,
        rpn: 1,
        cache_dir: s.tmp.path().join(dir),
        name: "resume.stream".into(),
        limit: 700 << 10,
        epochs: 2,
        state_file: Some(state.to_path_buf()),
        pace_us: 100,
    };
    let whole = s.tmp.path().join("whole.state");
    report(rank("a", &whole).spawn());
    let expected = std::fs::read_to_string(whole.with_extension("log")).unwrap();
    let cut = s.tmp.path().join("cut.state");
    let r = rank("b", &cut);
    for round in 0..3u64 {
        let mut c = r.spawn();
        // A different point each round (and each run).
        let at = 150 + (u64::from(std::process::id()) * 7 + round * 131) % 400;
        std::thread::sleep(Duration::from_millis(at));
        c.kill().unwrap();
        c.wait().unwrap();
    }
    report(r.spawn());
    let got = std::fs::read_to_string(cut.with_extension("log")).unwrap();
    assert_eq!(got.lines().count(), expected.lines().count());
    assert!(
        got == expected,
        "the resumed sequence differs from the uninterrupted one"
    );
}

#[test]
fn one_rank_killed_and_resumed_alone_while_its_node_mate_reads_on_continues_exactly() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let rank = |r: u64, dir: &str, state: &Path| Rank {
        url: url.clone(),
        rank: r,
        world: 2,
        rpn: 2,
        cache_dir: s.tmp.path().join(dir),
        name: "alone.stream".into(),
        limit: 800 << 10,
        epochs: 2,
        state_file: Some(state.to_path_buf()),
        pace_us: 200,
    };
    // The uninterrupted node.
    let whole: Vec<PathBuf> = (0..2)
        .map(|r| s.tmp.path().join(format!("whole{r}.state")))
        .collect();
    let children: Vec<Child> = (0..2)
        .map(|r| rank(r, "a", &whole[r as usize]).spawn())
        .collect();
    children.into_iter().for_each(|c| drop(report(c)));
    // The same node, rank 1 killed three times and resumed from its state alone while
    // rank 0 reads on.
    let cut: Vec<PathBuf> = (0..2)
        .map(|r| s.tmp.path().join(format!("cut{r}.state")))
        .collect();
    let mate = rank(0, "b", &cut[0]).spawn();
    let r1 = rank(1, "b", &cut[1]);
    for round in 0..3u64 {
        let mut c = r1.spawn();
        let at = 150 + (u64::from(std::process::id()) * 7 + round * 131) % 300;
        std::thread::sleep(Duration::from_millis(at));
        c.kill().unwrap();
        c.wait().unwrap();
    }
    report(r1.spawn());
    report(mate);
    for r in 0..2 {
        let log = |p: &Path| std::fs::read_to_string(p.with_extension("log")).unwrap();
        let (want, got) = (log(&whole[r]), log(&cut[r]));
        assert_eq!(got.lines().count(), want.lines().count(), "rank {r}");
        assert!(
            got == want,
            "rank {r}: the resumed sequence differs from the uninterrupted one"
        );
    }
}

#[test]
fn a_state_of_another_layout_is_refused_naming_both_layouts() {
    let s = serve();
    let url = s.server.url("/identity/train.cache");
    let name = |n: &str| s.tmp.path().join(n).to_str().unwrap().to_string();
    let mut four = StreamingProducer::new(&url, order(0, 4), options(0, 2, &name("four"))).unwrap();
    for _ in 0..10 {
        check(&four.next().unwrap(), 1);
    }
    let saved = four.state();
    drop(four);
    let mut two = StreamingProducer::new(&url, order(0, 2), options(0, 1, &name("two"))).unwrap();
    let m = two.restore(&saved).unwrap_err().to_string();
    eprintln!("{m}");
    assert!(
        m.contains("world_size 4 with 2 ranks per node")
            && m.contains("world_size 2 with 1 ranks per node")
            && m.contains(&url),
        "{m}"
    );
    // The producer is unchanged: it reads its own first record.
    let first = two.index(0, 0);
    assert_eq!(check(&two.next().unwrap(), 1), first);
}
