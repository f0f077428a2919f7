//! gavel through a real broker, against the ceiling, in one run.
//!
//! 1. **Throughput, A/B/C/D, alternating.** M simulated events are preloaded
//!    into a topic. Phase A is a *passthrough*: gavel's own Kafka pipeline
//!    (same client settings, same shards, same offset handling) with a
//!    processor that copies each message to one output unchanged. Phase B is
//!    gavel's full pipeline with the shipped pack as deployed by default
//!    (signals and actions: a few records per hundred events). Phase C is B
//!    with a verdict for every event as well (so it writes more records than
//!    A, to three topics). Phase D is B in exactly-once mode (a
//!    transactional producer per shard, input offsets committed in the
//!    transaction; DESIGN.md's target ≥ 0.7 × A). Phase E is B on one
//!    shard in the log's order, and phase F three instances of E in one
//!    group under `kafka.state = "replicated"`, each reading every
//!    partition into its state (timed from the first instance ready, so
//!    the group's settling counts). Each phase reads all M
//!    events with a fresh consumer group; its rate is M / (time from
//!    partitions assigned to the M-th message acknowledged), counting
//!    acknowledged messages, not watermarks. A first round warms the
//!    broker's JVM up and is not counted. The best of each is reported with
//!    its ratio to A (DESIGN.md's target: ≥ 0.9 × A).
//! 2. **Open-loop latency.** Events are sent on a fixed schedule at half
//!    of C's best rate (the latency run publishes a verdict per event, so C
//!    is its capacity); each verdict read back is timed from its event's
//!    *scheduled* send time, so a stall delays every event behind it rather
//!    than pausing the clock (no coordinated omission). Reports p50, p99,
//!    p99.9 and max, and separately the part inside gavel (message returned
//!    by the consumer → outputs enqueued).
//!    At each fixed rate the run goes through gavel in arrival order, in
//!    the log's order, and as three replicated instances.
//! 3. **One hop.** At each fixed rate, after gavel, the same open-loop run
//!    through a passthrough that copies each event to the verdicts topic:
//!    what one more stage through an internal topic costs end to end
//!    (produce, consume, produce, consume), the unit of any topology that
//!    moves events to the owners of their keys.
//!
//! Client settings that matter for latency: gavel's consumer
//! `fetch.wait.max.ms=5`, gavel's producer `linger.ms=2`, acks=all and
//! idempotence; the load generator `linger.ms=1` (a backend that batches a
//! little: with 0 every event is its own produce request, which on a small
//! machine costs the co-located broker more CPU than gavel uses, and with
//! librdkafka's default of 5 the generator's own batching would be most of
//! the figure); the verdict reader `fetch.wait.max.ms=5`. The latency phase
//! publishes verdicts (to time every event) and reads them back.
//!
//! Run: `cargo bench -p gavel-benches --bench kafka`. Broker:
//! `GAVEL_BENCH_BROKERS`, or an Apache Kafka started for the run. Knobs:
//! `GAVEL_BENCH_EVENTS` (M, default 100,000), `GAVEL_BENCH_ROUNDS` (A/B
//! pairs, default 2), `GAVEL_BENCH_LATENCY_SECS` (default 10),
//! `GAVEL_BENCH_SHARDS` (default: cores), `GAVEL_BENCH_PARTITIONS` (default 4),
//! `GAVEL_BENCH_LATENCY_RATES` (fixed rates after half load, default 1000,5000,10000),
//! `GAVEL_BENCH_GENERATOR_LINGER_MS` (default 1).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gavel::runtime::processor::{Emit, EngineProcessor};
use gavel::runtime::reload::Rules;
use gavel::telemetry::Stats;
use gavel_benches::broker::BenchBroker;
use gavel_benches::{preload, shipped_pack};
use gavel_engine::Engine;
use gavel_kafka::{
    Hooks, Input, InputOrder, InputTopic, KafkaSettings, Output, OutputTopic, OutputTopics, Pipeline, PipelineObserver,
    Processed, Processor, StateScope, create_topics,
};
use gavel_model::pb::Verdict;
use gavel_model::{Encoding, encode_protobuf};
use gavel_sim::{SimConfig, Simulator};
use hdrhistogram::Histogram;
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Copies every message to one output topic, untouched: the ceiling of
/// throughput, and in the latency run one hop through the broker.
struct Passthrough(OutputTopic);

impl Processor for Passthrough {
    fn process(&mut self, input: &Input<'_>) -> Processed {
        let copy = Output::new(self.0, input.key.unwrap_or_default().to_vec(), input.payload.to_vec());
        Processed::Outputs(vec![copy].into())
    }
}

/// What an open-loop latency run puts between the generator and the
/// reader.
#[derive(Clone, Copy)]
enum Stage {
    /// gavel with the shipped pack, a verdict for every event, its shards
    /// taking messages as they arrive (`kafka.order = "arrival"`).
    Gavel,
    /// The same on one shard merging the partitions in the log's order
    /// (`kafka.order = "log"`, the default): what determinism costs.
    GavelLog,
    /// Three instances of `GavelLog` in one group under
    /// `kafka.state = "replicated"`: each reads every partition into its
    /// state and publishes for the partitions the group gives it.
    Replicated3,
    /// A passthrough copying each event to the verdicts topic: one hop
    /// (produce, consume, produce again, consume), what each extra stage
    /// of a topology through internal topics adds.
    Hop,
}

/// Counts acknowledged and processed messages, and how often partitions
/// were paused because a shard stayed full (each pause costs a refetch).
#[derive(Default)]
struct Acks {
    acknowledged: AtomicU64,
    processed: AtomicU64,
    pauses: AtomicU64,
    /// Partitions paused now, to count each pause once.
    paused_now: std::sync::atomic::AtomicUsize,
}

impl PipelineObserver for Acks {
    fn processed(&self, _: &str, _: Duration, _: usize) {
        self.processed.fetch_add(1, Ordering::Relaxed);
    }

    fn acknowledged(&self, _: Option<i64>, _: Option<i64>) {
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
    }

    fn paused(&self, partitions: usize) {
        let before = self.paused_now.swap(partitions, Ordering::Relaxed);
        self.pauses.fetch_add(partitions.saturating_sub(before) as u64, Ordering::Relaxed);
    }
}

fn outputs(prefix: &str) -> OutputTopics {
    OutputTopics {
        signals: format!("{prefix}-signals"),
        actions: format!("{prefix}-actions"),
        verdicts: format!("{prefix}-verdicts"),
        shadow: format!("{prefix}-shadow"),
        dlq: format!("{prefix}-dlq"),
    }
}

/// How a throughput phase consumes and commits.
#[derive(Clone, Copy)]
enum Mode {
    /// Shards take messages as they arrive; at-least-once.
    Arrival,
    /// One shard merges the partitions in the log's order; at-least-once.
    Log,
    /// Shards take messages as they arrive; exactly-once.
    ExactlyOnce,
    /// Log order, every instance keeping every partition's state.
    Replicated,
}

/// Runs one throughput phase over the preloaded topic, one pipeline per
/// element of `instances` (each its processors) in one group; returns
/// events/s.
async fn phase(
    brokers: &str,
    topic: &str,
    name: &str,
    events: u64,
    partitions: i32,
    instances: Vec<Vec<Box<dyn Processor>>>,
    mode: Mode,
) -> f64 {
    let run = format!("{name}-{}", uuid_like());
    let mut settings =
        KafkaSettings::new(brokers, &run, vec![InputTopic { name: topic.into(), encoding: Encoding::Protobuf }]);
    settings.outputs = outputs(&run);
    // The input is preloaded: read it from the start.
    settings.first_start = gavel_kafka::FirstStart::Earliest;
    settings.exactly_once = matches!(mode, Mode::ExactlyOnce);
    settings.order =
        if matches!(mode, Mode::Arrival | Mode::ExactlyOnce) { InputOrder::Arrival } else { InputOrder::Log };
    if matches!(mode, Mode::Replicated) {
        settings.state = StateScope::Replicated;
    }
    let out_topics: Vec<&str> = settings.outputs.all().to_vec();
    create_topics(&settings, &out_topics, partitions).await.expect("create output topics");
    let acks = Arc::new(Acks::default());
    let (group, ready) = start_group(&settings, instances, &(Arc::clone(&acks) as Arc<dyn PipelineObserver>));
    // From the first instance ready: several count the time their group
    // takes to settle.
    until_ready(&ready, false).await;
    let started = Instant::now();
    while acks.acknowledged.load(Ordering::Relaxed) < events {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let pauses = acks.pauses.load(Ordering::Relaxed);
    if pauses > 0 {
        println!("    {name}: partitions paused {pauses} times (a shard stayed full)");
    }
    stop_group(group).await;
    events as f64 / secs
}

/// A running group: each pipeline's stop and task.
type Group = Vec<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<gavel_kafka::Result<()>>)>;

/// Starts one pipeline per element of `instances` with `settings`, all
/// reporting to `observer`; returns them and their readiness flags.
fn start_group(
    settings: &KafkaSettings,
    instances: Vec<Vec<Box<dyn Processor>>>,
    observer: &Arc<dyn PipelineObserver>,
) -> (Group, Vec<Arc<AtomicBool>>) {
    let mut group = Vec::new();
    let mut flags = Vec::new();
    for processors in instances {
        let ready = Arc::new(AtomicBool::new(false));
        let hooks = Hooks { observer: Arc::clone(observer), ready: Arc::clone(&ready), ..Hooks::default() };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let pipeline = Pipeline::new(settings.clone()).expect("pipeline");
        let running = tokio::spawn(pipeline.run(processors, hooks, async {
            let _ = stopped.await;
        }));
        group.push((stop, running));
        flags.push(ready);
    }
    (group, flags)
}

/// Waits until every instance (`all`) or one of them is ready.
async fn until_ready(ready: &[Arc<AtomicBool>], all: bool) {
    let ready_now = |r: &Arc<AtomicBool>| r.load(Ordering::Relaxed);
    while !(if all { ready.iter().all(ready_now) } else { ready.iter().any(ready_now) }) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Stops every pipeline of `group` and waits for each.
async fn stop_group(group: Group) {
    let mut tasks = Vec::new();
    for (stop, running) in group {
        let _ = stop.send(());
        tasks.push(running);
    }
    for running in tasks {
        running.await.expect("pipeline task").expect("pipeline");
    }
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos())
}

/// `n` instances of one log-order shard each, every one with its own engine.
fn replicas(n: usize, stats: &Arc<Stats>, verdicts: bool) -> Vec<Vec<Box<dyn Processor>>> {
    (0..n).map(|_| engine_shards(1, stats, verdicts)).collect()
}

fn engine_shards(shards: usize, stats: &Arc<Stats>, verdicts: bool) -> Vec<Box<dyn Processor>> {
    let rules = Rules::new(Engine::new(shipped_pack()), None);
    (0..shards)
        .map(|_| {
            Box::new(EngineProcessor::new(Arc::clone(&rules), Arc::clone(stats), Emit { verdicts, shadow: false }))
                as Box<dyn Processor>
        })
        .collect()
}

fn micros(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let events: u64 = env_or("GAVEL_BENCH_EVENTS", 100_000);
    let rounds: usize = env_or("GAVEL_BENCH_ROUNDS", 2);
    let latency_secs: f64 = env_or("GAVEL_BENCH_LATENCY_SECS", 10.0);
    let shards: usize = env_or("GAVEL_BENCH_SHARDS", gavel::runtime::default_shards());
    let partitions: i32 = env_or("GAVEL_BENCH_PARTITIONS", 4);
    let broker = BenchBroker::start()
        .expect("a broker: set GAVEL_BENCH_BROKERS, or install java and mvn for scripts/kafka/broker");
    let topic = format!("bench-{}-in", uuid_like());
    let admin = KafkaSettings::new(&broker.addr, "bench-admin", vec![]);
    create_topics(&admin, &[&topic], partitions).await.expect("create input topic");
    let started = Instant::now();
    preload(&broker.addr, &topic, events as usize).await.expect("preload");
    println!(
        "kafka: {events} events preloaded in {:.1} s into {partitions} partitions on {}; {shards} shard(s)",
        started.elapsed().as_secs_f64(),
        broker.addr
    );

    let (mut best_a, mut best_b, mut best_c, mut best_d, mut best_e, mut best_f) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    // Round 0 warms the broker up (its JIT compiler alone took a quarter of
    // the machine's CPU through a run that started cold); it is printed,
    // not counted.
    for round in 0..=rounds {
        let passthrough: Vec<Box<dyn Processor>> =
            (0..shards).map(|_| Box::new(Passthrough(OutputTopic::Signals)) as _).collect();
        let a = phase(&broker.addr, &topic, "pass", events, partitions, vec![passthrough], Mode::Arrival).await;
        let stats = Arc::new(Stats::default());
        let gavel = |shards, verdicts| vec![engine_shards(shards, &stats, verdicts)];
        let b = phase(&broker.addr, &topic, "gavel", events, partitions, gavel(shards, false), Mode::Arrival).await;
        let c = phase(&broker.addr, &topic, "verdicts", events, partitions, gavel(shards, true), Mode::Arrival).await;
        let d = phase(&broker.addr, &topic, "eos", events, partitions, gavel(shards, false), Mode::ExactlyOnce).await;
        let e = phase(&broker.addr, &topic, "log", events, partitions, gavel(1, false), Mode::Log).await;
        let three = replicas(3, &stats, false);
        let f = phase(&broker.addr, &topic, "replicated", events, partitions, three, Mode::Replicated).await;
        let label = if round == 0 { "warm-up (not counted)".to_string() } else { format!("round {round}") };
        println!(
            "  {label}: passthrough {a:>8.0}/s   gavel {b:>8.0}/s ({:.2})   + verdicts {c:>8.0}/s ({:.2})   exactly-once {d:>8.0}/s ({:.2})   log order, 1 shard {e:>8.0}/s ({:.2})   3 replicated {f:>8.0}/s ({:.2})",
            b / a,
            c / a,
            d / a,
            e / a,
            f / a
        );
        if round == 0 {
            continue;
        }
        best_a = best_a.max(a);
        best_b = best_b.max(b);
        best_c = best_c.max(c);
        best_d = best_d.max(d);
        best_e = best_e.max(e);
        best_f = best_f.max(f);
    }
    println!(
        "  best:    passthrough {best_a:>8.0}/s   gavel {best_b:>8.0}/s ({:.2})   + verdicts {best_c:>8.0}/s ({:.2})   exactly-once {best_d:>8.0}/s ({:.2})   log order, 1 shard {best_e:>8.0}/s ({:.2})   3 replicated {best_f:>8.0}/s ({:.2})   (targets ≥ 0.90, exactly-once ≥ 0.70)",
        best_b / best_a,
        best_c / best_a,
        best_d / best_a,
        best_e / best_a,
        best_f / best_a
    );

    // Open-loop latency: at half the best rate of the configuration it runs
    // (verdicts for every event, phase C), then at each rate in
    // GAVEL_BENCH_LATENCY_RATES (default 1000, 5000 and 10,000), where the broker is not the limit.
    let lat = Latency { brokers: &broker.addr, latency_secs, shards, partitions };
    lat.open_loop(Stage::Gavel, "half of the best with verdicts", (best_c / 2.0).max(1.0)).await;
    let extra = std::env::var("GAVEL_BENCH_LATENCY_RATES").unwrap_or_else(|_| "1000,5000,10000".into());
    let rates: Vec<f64> = extra.split(',').filter_map(|r| r.trim().parse::<f64>().ok()).filter(|r| *r > 0.0).collect();
    // At each fixed rate, gavel and then one bare hop, so the two can be
    // compared in one run.
    for &rate in &rates {
        lat.open_loop(Stage::Gavel, "fixed, arrival order", rate).await;
        lat.open_loop(Stage::GavelLog, "fixed, log order, 1 shard", rate).await;
        lat.open_loop(Stage::Replicated3, "fixed, 3 replicated instances", rate).await;
        lat.open_loop(Stage::Hop, "one hop, no processing", rate).await;
    }
}

/// The settings every open-loop run shares.
#[derive(Clone, Copy)]
struct Latency<'a> {
    brokers: &'a str,
    latency_secs: f64,
    shards: usize,
    partitions: i32,
}

impl Latency<'_> {
    /// One open-loop run of `stage` at `rate` events/s for `latency_secs`.
    /// Long because it is one script: topics, the stage, a paced producer,
    /// a consumer of its outputs, then the percentiles, in the order they
    /// happen.
    async fn open_loop(&self, stage: Stage, label: &str, rate: f64) {
        let Latency { brokers, latency_secs, shards, partitions } = *self;
        let total = (rate * latency_secs) as usize;
        let run = format!("lat-{}", uuid_like());
        let input = format!("{run}-in");
        let mut settings =
            KafkaSettings::new(brokers, &run, vec![InputTopic { name: input.clone(), encoding: Encoding::Protobuf }]);
        settings.outputs = outputs(&run);
        // The input is preloaded: read it from the start.
        settings.first_start = gavel_kafka::FirstStart::Earliest;
        settings.order =
            if matches!(stage, Stage::GavelLog | Stage::Replicated3) { InputOrder::Log } else { InputOrder::Arrival };
        if matches!(stage, Stage::Replicated3) {
            settings.state = StateScope::Replicated;
        }
        let mut topics = vec![input.as_str()];
        topics.extend(settings.outputs.all());
        create_topics(&settings, &topics, partitions).await.expect("create latency topics");
        let stats = Arc::new(Stats::default());
        let instances = match stage {
            Stage::Gavel => vec![engine_shards(shards, &stats, true)],
            Stage::GavelLog => vec![engine_shards(1, &stats, true)],
            Stage::Replicated3 => replicas(3, &stats, true),
            Stage::Hop => vec![(0..shards).map(|_| Box::new(Passthrough(OutputTopic::Verdicts)) as _).collect()],
        };
        let (group, ready) = start_group(&settings, instances, &(Arc::clone(&stats) as Arc<dyn PipelineObserver>));
        until_ready(&ready, true).await;

        // The reader: verdicts back, timed against each event's schedule.
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("{run}-reader"))
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "5")
            .create()
            .expect("reader");
        reader.subscribe(&[&settings.outputs.verdicts]).expect("subscribe");
        let origin = Instant::now() + Duration::from_millis(500);
        let scheduled = move |i: usize| origin + Duration::from_secs_f64(i as f64 / rate);
        let read = std::thread::spawn(move || {
            // 1 µs … 60 s, 3 significant digits: constant, valid bounds.
            let mut h = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
            let deadline = Instant::now() + Duration::from_secs_f64(latency_secs + 60.0);
            let mut seen = 0;
            while seen < total && Instant::now() < deadline {
                let Some(Ok(m)) = reader.poll(Duration::from_millis(50)) else { continue };
                let arrived = Instant::now();
                let payload = m.payload().unwrap_or_default();
                let event_id = match stage {
                    Stage::Gavel | Stage::GavelLog | Stage::Replicated3 => Verdict::decode(payload).map(|v| v.event_id),
                    Stage::Hop => gavel_model::pb::Event::decode(payload).map(|e| e.event_id),
                };
                let Some(i) =
                    event_id.ok().and_then(|id| id.strip_prefix("lat-").and_then(|i| i.parse::<usize>().ok()))
                else {
                    continue;
                };
                h.saturating_record(arrived.saturating_duration_since(scheduled(i)).as_nanos() as u64);
                seen += 1;
            }
            (h, seen)
        });

        let linger: f64 = env_or("GAVEL_BENCH_GENERATOR_LINGER_MS", 1.0);
        let generator: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", linger.to_string())
            .create()
            .expect("generator");
        let mut sim = Simulator::new(SimConfig::default());
        let mut pending = Vec::with_capacity(total);
        for i in 0..total {
            let Some(mut sim_event) = sim.next() else { break };
            sim_event.event.event_id = format!("lat-{i}");
            // Event time now, so windows behave as live.
            sim_event.event.occurred_at = Some(gavel_model::timestamp_from_ms(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
                    as i64,
            ));
            let payload = encode_protobuf(&sim_event.event);
            tokio::time::sleep_until(scheduled(i).into()).await;
            let record = FutureRecord::to(&input).key(&sim_event.event.user_id).payload(&payload);
            if let Ok(delivery) = generator.send_result(record) {
                pending.push(delivery);
            }
        }
        for delivery in pending {
            let _ = delivery.await;
        }
        let (h, seen) = read.join().expect("reader thread");
        stop_group(group).await;
        let inside = stats.totals().latency;
        println!(
            "  open loop at {rate:.0} events/s ({label}) for {latency_secs:.0} s: {seen}/{total} read back; produce → output consumed \
         p50 {} p99 {} p99.9 {} max {}",
            micros(h.value_at_quantile(0.5)),
            micros(h.value_at_quantile(0.99)),
            micros(h.value_at_quantile(0.999)),
            micros(h.max())
        );
        println!(
            "  inside gavel (message polled → outputs enqueued): p50 {:.1} µs p99 {:.1} µs p99.9 {:.1} µs max {:.1} µs",
            inside.p50_ns as f64 / 1e3,
            inside.p99_ns as f64 / 1e3,
            inside.p999_ns as f64 / 1e3,
            inside.max_ns as f64 / 1e3
        );
    }
}
