//! How the shard workers scale across cores: the simulated marketplace mix,
//! split into 16 partitions by user, processed by 1, 2, … shard threads
//! exactly as the Kafka runtime's shards do (each thread owns the
//! partitions `p % shards == i`, in order, through the binary's
//! `EngineProcessor`: decode, evaluate, encode), sharing one engine and its
//! velocity store. Kafka itself is left out: this is the ceiling the
//! consumer feeds.
//!
//! A Prometheus recorder is installed, as in `gavel run`.
//!
//! Shard counts run alternately, several rounds, and the best round of each
//! is reported with its ratio to one shard, so a noisy shared machine skews
//! both sides alike.
//!
//! Run: `cargo bench -p gavel-benches --bench shards` (shard counts from
//! `GAVEL_BENCH_SHARDS`, default `1,2`; rounds from `GAVEL_BENCH_ROUNDS`,
//! default 5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gavel::runtime::processor::{Emit, EngineProcessor};
use gavel::runtime::reload::Rules;
use gavel::telemetry::Stats;
use gavel_benches::shipped_pack;
use gavel_engine::Engine;
use gavel_kafka::{Input, Processor};
use gavel_model::{Encoding, encode_protobuf};
use gavel_sim::{SimConfig, Simulator};
use hdrhistogram::Histogram;

const EVENTS: usize = 400_000;
const PARTITIONS: usize = 16;

fn partitioned() -> Vec<Vec<Vec<u8>>> {
    let mut partitions = vec![Vec::new(); PARTITIONS];
    for sim in Simulator::new(SimConfig::default()).take(EVENTS) {
        // Partition by user, as a marketplace keying its topics by user would.
        let p = sim.event.user_id.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize)) % PARTITIONS;
        partitions[p].push(encode_protobuf(&sim.event));
    }
    partitions
}

/// Processes every partition on `shards` threads; returns the wall time
/// and the per-event processing time (decode → outputs built) of them all.
fn run(partitions: &Arc<Vec<Vec<Vec<u8>>>>, shards: usize) -> (Duration, Histogram<u64>) {
    let rules = Rules::new(Engine::new(shipped_pack()), None);
    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let mut threads = Vec::new();
        for shard in 0..shards {
            let mut processor = EngineProcessor::new(Arc::clone(&rules), Arc::clone(&stats), Emit::default());
            let partitions = Arc::clone(partitions);
            threads.push(scope.spawn(move || {
                // 1 ns … 1 s, 3 significant digits: constant, valid bounds.
                let mut latency = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("bounds");
                let mut outputs = 0usize;
                // Interleave the shard's partitions, as a consumer's fetches do.
                let owned: Vec<usize> = (0..PARTITIONS).filter(|p| p % shards == shard).collect();
                let longest = owned.iter().map(|&p| partitions[p].len()).max().unwrap_or(0);
                for i in 0..longest {
                    for &p in &owned {
                        let Some(payload) = partitions[p].get(i) else { continue };
                        let input = Input {
                            topic: "marketplace.events",
                            partition: p as i32,
                            offset: i as i64,
                            key: None,
                            payload,
                            timestamp_ms: None,
                            encoding: Encoding::Protobuf,
                        };
                        let began = Instant::now();
                        if let gavel_kafka::Processed::Outputs(o) = processor.process(&input) {
                            outputs += o.len();
                        }
                        latency.saturating_record(began.elapsed().as_nanos() as u64);
                    }
                }
                std::hint::black_box(outputs);
                latency
            }));
        }
        let mut all = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("bounds");
        for thread in threads {
            // Same bounds: adding cannot fail.
            let _ = all.add(thread.join().expect("shard thread"));
        }
        all
    });
    (started.elapsed(), latencies)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let shard_counts: Vec<usize> = std::env::var("GAVEL_BENCH_SHARDS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect();
    let rounds: usize = std::env::var("GAVEL_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    // Metrics are recorded as in production: a Prometheus recorder is
    // installed, so every counter the processor bumps costs what it costs live.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("first recorder");
    let partitions = Arc::new(partitioned());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "shards: {EVENTS} simulated events in {PARTITIONS} partitions, shipped pack, {cores} cores, {rounds} rounds"
    );
    let mut best = vec![Duration::MAX; shard_counts.len()];
    let mut latency = vec![None; shard_counts.len()];
    for _ in 0..rounds {
        for (i, &shards) in shard_counts.iter().enumerate() {
            let (took, h) = run(&partitions, shards);
            if took < best[i] {
                best[i] = took;
                latency[i] = Some(h);
            }
        }
    }
    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    let base = rate(best[0]);
    for (i, &shards) in shard_counts.iter().enumerate() {
        let r = rate(best[i]);
        let us = |q: f64| latency[i].as_ref().map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1e3);
        println!(
            "  {shards:>2} shard(s): {:>9.0} events/s  {:>7.0} /s per shard  {:.2}x of {} shard(s)   \
             per event p50 {:.1} µs p99 {:.1} µs p99.9 {:.1} µs",
            r,
            r / shards as f64,
            r / base,
            shard_counts[0],
            us(0.5),
            us(0.99),
            us(0.999)
        );
    }
}
