//! s3:// against s3s-fs (SigV4 verified): the same exactness, two ranks of one node in
//! one process sharing its stream cache.

use super::*;
use support::s3::{Env, S3Server};

#[test]
fn an_s3_stream_serves_every_record_exactly() {
    let Some(server) = S3Server::start() else {
        eprintln!("s3s-fs is not installed: skipped (scripts/install-s3s.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    server.create_bucket("data");
    server.put("data", "train.cache", &published(tmp.path(), 1));
    let _env = Env::for_server(&server, &[]);
    let cache = tmp.path().join("node");
    let readers: Vec<_> = (0..2)
        .map(|rank| {
            let mut o = options(0, 2, cache.join("s3.stream").to_str().unwrap());
            o.http.connections = 2;
            StreamingProducer::new("s3://data/train.cache", order(rank, 2), o).unwrap()
        })
        .collect();
    let handles: Vec<_> = readers
        .into_iter()
        .map(|mut p| {
            std::thread::spawn(move || {
                let n = p.rank_size();
                (0..n)
                    .map(|_| check(&p.next().unwrap(), 1))
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), RECORDS, "every record once");
}
