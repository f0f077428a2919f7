//! How fast the simulator generates and encodes, for a person to read: no
//! thresholds (machines differ). Gated by an env var, as slow suites are:
//!
//! ```text
//! GAVEL_SIM_THROUGHPUT=1000000 cargo test --release -p gavel-sim --test throughput -- --nocapture
//! ```

use std::time::Instant;

use gavel_sim::output::{write_jsonl, write_protobuf_delimited, write_truth_line};
use gavel_sim::{SimConfig, Simulator};

#[test]
fn generation_throughput() {
    let Some(n) = std::env::var("GAVEL_SIM_THROUGHPUT").ok().and_then(|v| v.parse::<usize>().ok()) else {
        eprintln!("skipped: set GAVEL_SIM_THROUGHPUT=<events> to measure");
        return;
    };
    let started = Instant::now();
    let labelled = Simulator::new(SimConfig::default()).take(n).filter(|e| e.scenario.is_some()).count();
    let generate = started.elapsed();

    let (mut jsonl, mut protobuf, mut truth) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for e in Simulator::new(SimConfig::default()).take(n) {
        write_jsonl(&mut jsonl, &e.event).unwrap();
        write_protobuf_delimited(&mut protobuf, &e.event).unwrap();
        write_truth_line(&mut truth, &e).unwrap();
    }
    let encode = started.elapsed();
    eprintln!(
        "{n} events ({labelled} labelled): generated in {generate:.2?} ({:.0} events/s); \
         generated and written as JSONL ({} MB), protobuf ({} MB) and truth ({} MB) in {encode:.2?}",
        n as f64 / generate.as_secs_f64(),
        jsonl.len() >> 20,
        protobuf.len() >> 20,
        truth.len() >> 20,
    );
}
