//! Warm-up replay against live processing, through a real broker, in one
//! run: the same preloaded events are first processed live by `gavel::runtime::serve`
//! (consume → evaluate → produce → commit) and then replayed by warm-up
//! (consume → evaluate for state), each from a fresh engine with the shipped
//! pack. Prints both rates and their ratio (DESIGN.md's target: warm-up at
//! ≥ 5× the live rate), then replays once more taking messages as they
//! arrive instead of in the log's order, for what the merge costs.
//!
//! Run: `cargo bench -p gavel-benches --bench warmup`. The broker is
//! `GAVEL_BENCH_BROKERS`, or an Apache Kafka started for the run; the
//! event count is `GAVEL_BENCH_EVENTS` (default 100,000).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gavel::runtime::reload::Rules;
use gavel::runtime::{ServeOptions, serve, warm_up};
use gavel::telemetry::Stats;
use gavel_benches::broker::BenchBroker;
use gavel_benches::{preload, shipped_pack};
use gavel_engine::Engine;
use gavel_kafka::{InputTopic, KafkaSettings, OutputTopics, create_topics};
use gavel_model::Encoding;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;

fn committed_total(settings: &KafkaSettings, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let Ok(committed) = consumer.committed_offsets(tpl, Duration::from_secs(5)) else { return 0 };
    committed.elements().iter().map(|e| if let Offset::Offset(o) = e.offset() { o } else { 0 }).sum()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let events: usize = std::env::var("GAVEL_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let broker = BenchBroker::start()
        .expect("a broker: set GAVEL_BENCH_BROKERS, or install java and mvn for scripts/kafka/broker");
    let run = std::process::id();
    let topic = format!("bench-{run}-events");
    let outputs = OutputTopics {
        signals: format!("bench-{run}-signals"),
        actions: format!("bench-{run}-actions"),
        verdicts: format!("bench-{run}-verdicts"),
        shadow: format!("bench-{run}-shadow"),
        dlq: format!("bench-{run}-dlq"),
    };
    let mut settings = KafkaSettings::new(
        &broker.addr,
        format!("bench-{run}"),
        vec![InputTopic { name: topic.clone(), encoding: Encoding::Protobuf }],
    );
    settings.first_start = gavel_kafka::FirstStart::Earliest;
    settings.outputs = outputs.clone();
    let mut topics = vec![topic.as_str()];
    topics.extend(outputs.all());
    create_topics(&settings, &topics, PARTITIONS).await.expect("create topics");

    let started = Instant::now();
    preload(&broker.addr, &topic, events).await.expect("preload");
    println!(
        "warmup: {events} simulated events preloaded in {:.1} s on {}",
        started.elapsed().as_secs_f64(),
        broker.addr
    );

    // Live: from a fresh engine until every event is committed.
    let rules = Rules::new(Engine::new(shipped_pack()), None);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ready = Arc::new(AtomicBool::new(false));
    let live = tokio::spawn(serve(
        settings.clone(),
        Arc::clone(&rules),
        Arc::new(Stats::default()),
        ServeOptions::default(),
        Arc::clone(&ready),
        async {
            let _ = stopped.await;
        },
    ));
    while !ready.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    while committed_total(&settings, &topic) < events as i64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let live_secs = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    live.await.expect("serve task").expect("serve");

    // Warm-up: the same events, replayed into a fresh engine.
    let rules = Rules::new(Engine::new(shipped_pack()), None);
    let report = warm_up(&settings, &rules).await.expect("warm-up");
    assert_eq!(report.messages as usize, events, "warm-up replays every committed event");
    let warm_secs = report.elapsed.as_secs_f64();

    // The same replay taking messages as they arrive, not in the log's
    // order: what the merge costs.
    let mut arrival = settings.clone();
    arrival.order = gavel_kafka::InputOrder::Arrival;
    let rules = Rules::new(Engine::new(shipped_pack()), None);
    let report = warm_up(&arrival, &rules).await.expect("warm-up in arrival order");
    let arrival_secs = report.elapsed.as_secs_f64();

    let live_rate = events as f64 / live_secs;
    let warm_rate = events as f64 / warm_secs;
    let arrival_rate = events as f64 / arrival_secs;
    println!("  live    (consume → evaluate → produce → commit): {live_rate:>9.0} events/s ({live_secs:.2} s)");
    println!("  warm-up (consume → evaluate for state)         : {warm_rate:>9.0} events/s ({warm_secs:.2} s)");
    println!("  warm-up in arrival order                       : {arrival_rate:>9.0} events/s ({arrival_secs:.2} s)");
    println!(
        "  warm-up / live: {:.1}x  (target ≥ 5x); log order / arrival order: {:.2}",
        warm_rate / live_rate,
        warm_rate / arrival_rate
    );
}
