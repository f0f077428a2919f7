//! Gavel's telemetry: every metric name in one place, the Prometheus
//! exporter, and the in-process latency recorder behind the console line.
//!
//! Metric names follow `gavel_<subsystem>_<name>_<unit>` with `_total` for
//! counters. Label values come from small fixed sets (topic, event kind,
//! rule id, mode) and never carry a user, device or card id.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gavel_kafka::PipelineObserver;
use hdrhistogram::Histogram;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Metric names.
/// Installs the `tracing` subscriber on stderr: filter from `GAVEL_LOG`
/// (default `info,rdkafka=warn`), JSON lines when `GAVEL_LOG_FORMAT=json`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAVEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("GAVEL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub mod names {
    /// Counter, label `topic`: messages consumed.
    pub const EVENTS_CONSUMED: &str = "gavel_events_consumed_total";
    /// Counter, labels `topic`: messages sent to the dead-letter topic.
    pub const EVENTS_DEAD_LETTERED: &str = "gavel_events_dead_lettered_total";
    /// Counter, label `kind`: events evaluated by the engine.
    pub const EVENTS_EVALUATED: &str = "gavel_events_evaluated_total";
    /// Counter: messages whose outputs were all acknowledged and offset stored.
    pub const EVENTS_ACKNOWLEDGED: &str = "gavel_events_acknowledged_total";
    /// Counter: risk signals produced.
    pub const SIGNALS: &str = "gavel_signals_total";
    /// Counter, labels `rule`, `mode`: rule hits.
    pub const RULE_HITS: &str = "gavel_rule_hits_total";
    /// Counter, label `rule`: conditions that failed to evaluate (the rule did not fire).
    pub const RULE_ERRORS: &str = "gavel_rule_evaluation_errors_total";
    /// Counter, label `type`: auto-actions produced.
    pub const ACTIONS: &str = "gavel_actions_total";
    /// Counter, label `decision`: verdicts by decision.
    pub const VERDICTS: &str = "gavel_verdicts_total";
    /// Counter, label `result` (`success`, `failure`): rule pack reloads.
    pub const RULES_RELOADS: &str = "gavel_rules_reloads_total";
    /// Gauge, labels `version`, `hash`: 1 for the pack in force.
    pub const RULES_PACK_INFO: &str = "gavel_rules_pack_info";
    /// Gauge: rules in the pack in force.
    pub const RULES_ACTIVE: &str = "gavel_rules_active";
    /// Counter: messages replayed by warm-up (features rebuilt, nothing emitted).
    pub const WARMUP_MESSAGES: &str = "gavel_warmup_messages_total";
    /// Counter: velocity keys evicted because their window emptied.
    pub const VELOCITY_EVICTED: &str = "gavel_velocity_keys_evicted_total";
    /// Counter, label `feature`: keys evicted because the feature hit its `max_keys` cap.
    pub const VELOCITY_CAP_EVICTIONS: &str = "gavel_velocity_cap_evictions_total";
    /// Counter, label `feature`: events older than their key's window, ignored.
    pub const VELOCITY_TOO_LATE: &str = "gavel_velocity_events_too_late_total";
    /// Gauge, label `feature`: keys held.
    pub const VELOCITY_KEYS: &str = "gavel_velocity_keys";
    /// Gauge, label `feature`: bytes held (estimate).
    pub const VELOCITY_BYTES: &str = "gavel_velocity_bytes";
    /// Gauge: entities carrying at least one label.
    pub const LABELS: &str = "gavel_labels_entities";
    /// Histogram, label `topic`: receive → outputs enqueued, in seconds.
    pub const PROCESSING_DURATION: &str = "gavel_processing_duration_seconds";
    /// Client-level errors (broker down, connection lost); librdkafka retries them.
    pub const KAFKA_CLIENT_ERRORS: &str = "gavel_kafka_client_errors_total";
    /// Errors returned by polling the consumer.
    pub const KAFKA_CONSUMER_ERRORS: &str = "gavel_kafka_consumer_errors_total";
    /// Outputs sent again after a failed enqueue or delivery, by output topic.
    pub const KAFKA_DELIVERY_RETRIES: &str = "gavel_kafka_delivery_retries_total";
    /// Offset commits that failed.
    pub const KAFKA_COMMIT_FAILURES: &str = "gavel_kafka_commit_failures_total";
    /// Partitions paused because their shard is behind.
    pub const KAFKA_PARTITIONS_PAUSED: &str = "gavel_kafka_partitions_paused";
    /// Partitions this instance owns.
    pub const KAFKA_PARTITIONS_ASSIGNED: &str = "gavel_kafka_partitions_assigned";
    /// Rebalances handled, by kind (`assign`, `revoke`).
    pub const KAFKA_REBALANCES: &str = "gavel_kafka_rebalances_total";
    /// How long the last warm-up took.
    pub const WARMUP_DURATION: &str = "gavel_warmup_duration_seconds";
    /// Gauge: consumer lag of each owned input partition, in messages
    /// (librdkafka statistics, every 5 s; 0 once a partition is given up).
    pub const KAFKA_CONSUMER_LAG: &str = "gavel_kafka_consumer_lag_messages";
    /// Histogram: from the event's time (`from="event_time"`) or its Kafka
    /// timestamp (`from="kafka_timestamp"`) to every output acknowledged.
    pub const END_TO_END_DURATION: &str = "gavel_end_to_end_duration_seconds";
    /// Gauge: 1 while partitions are assigned and warmed up, else 0.
    pub const READY: &str = "gavel_ready";
    /// Gauge: resident memory of the process.
    pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
    /// Gauge, always 1: the running version, as a label.
    pub const BUILD_INFO: &str = "gavel_build_info";
}

/// Latency buckets for the processing histogram, in seconds (1 µs … 100 ms).
const LATENCY_BUCKETS: &[f64] =
    &[0.000_001, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01, 0.1];

/// Describes every metric (Prometheus `HELP`) and registers, at zero, the
/// counters whose label values are known up front, so that dashboards and
/// alerts see a series (and `rate()` a 0) before the first event of its kind.
pub fn describe(settings: &gavel_kafka::KafkaSettings) {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(EVENTS_CONSUMED, "Input messages consumed, by topic.");
    describe_counter!(EVENTS_DEAD_LETTERED, "Input messages sent to the dead-letter topic, by topic.");
    describe_counter!(EVENTS_EVALUATED, "Events evaluated by the engine, by event kind.");
    describe_counter!(EVENTS_ACKNOWLEDGED, "Input messages whose outputs were all acknowledged and offset stored.");
    describe_counter!(SIGNALS, "Risk signals published.");
    describe_counter!(RULE_HITS, "Rule hits, by rule and mode (enforce or shadow).");
    describe_counter!(RULE_ERRORS, "Rule conditions that failed to evaluate, by rule.");
    describe_counter!(ACTIONS, "Auto-actions published, by type.");
    describe_counter!(VERDICTS, "Events decided, by decision.");
    describe_counter!(RULES_RELOADS, "Rule pack reloads, by result.");
    describe_gauge!(RULES_PACK_INFO, "1 for the rule pack in force, by version and content hash.");
    describe_gauge!(RULES_ACTIVE, "Rules in the pack in force.");
    describe_counter!(WARMUP_MESSAGES, "Messages replayed by warm-up.");
    describe_gauge!(WARMUP_DURATION, Unit::Seconds, "How long the last warm-up took.");
    describe_counter!(VELOCITY_EVICTED, "Velocity keys evicted because their window emptied.");
    describe_counter!(VELOCITY_CAP_EVICTIONS, "Velocity keys evicted by a feature's max_keys cap, by feature.");
    describe_counter!(VELOCITY_TOO_LATE, "Events older than their key's window, ignored, by feature.");
    describe_gauge!(VELOCITY_KEYS, "Velocity keys held, by feature.");
    describe_gauge!(VELOCITY_BYTES, Unit::Bytes, "Velocity store memory, by feature (estimate).");
    describe_gauge!(LABELS, "Entities carrying at least one label.");
    describe_histogram!(PROCESSING_DURATION, Unit::Seconds, "Receive to outputs enqueued, by input topic.");
    describe_histogram!(END_TO_END_DURATION, Unit::Seconds, "Event time or Kafka timestamp to outputs acknowledged.");
    describe_counter!(KAFKA_CLIENT_ERRORS, "Kafka client errors (broker down, connection lost); retried.");
    describe_counter!(KAFKA_CONSUMER_ERRORS, "Errors returned by polling the consumer.");
    describe_counter!(KAFKA_DELIVERY_RETRIES, "Outputs sent again after a failed enqueue or delivery, by topic.");
    describe_counter!(KAFKA_COMMIT_FAILURES, "Offset commits that failed.");
    describe_gauge!(KAFKA_PARTITIONS_PAUSED, "Input partitions paused because their shard is behind.");
    describe_gauge!(KAFKA_PARTITIONS_ASSIGNED, "Input partitions this instance owns.");
    describe_counter!(KAFKA_REBALANCES, "Rebalances handled, by kind.");
    describe_gauge!(KAFKA_CONSUMER_LAG, "Consumer lag of each owned input partition, in messages.");
    describe_gauge!(READY, "1 while partitions are assigned and warmed up.");
    describe_gauge!(PROCESS_RESIDENT_MEMORY, Unit::Bytes, "Resident memory of the process.");
    describe_gauge!(BUILD_INFO, "Always 1, labelled with the running version.");

    for counter in [
        EVENTS_ACKNOWLEDGED,
        SIGNALS,
        WARMUP_MESSAGES,
        VELOCITY_EVICTED,
        KAFKA_CLIENT_ERRORS,
        KAFKA_CONSUMER_ERRORS,
        KAFKA_COMMIT_FAILURES,
    ] {
        counter!(counter).increment(0);
    }
    for result in ["success", "failure"] {
        counter!(RULES_RELOADS, "result" => result).increment(0);
    }
    for kind in ["assign", "revoke"] {
        counter!(KAFKA_REBALANCES, "kind" => kind).increment(0);
    }
    for input in &settings.inputs {
        counter!(EVENTS_CONSUMED, "topic" => input.name.clone()).increment(0);
        counter!(EVENTS_DEAD_LETTERED, "topic" => input.name.clone()).increment(0);
    }
    for output in settings.outputs.all() {
        counter!(KAFKA_DELIVERY_RETRIES, "topic" => output.to_string()).increment(0);
    }
    gauge!(KAFKA_PARTITIONS_PAUSED).set(0.0);
    gauge!(KAFKA_PARTITIONS_ASSIGNED).set(0.0);
}

/// End-to-end buckets, in seconds (1 ms … 1 min): they include broker
/// round trips and, for event time, the producer's own delay.
const END_TO_END_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0];

/// Installs the Prometheus recorder as the process's global recorder and
/// returns the handle the admin endpoint renders `/metrics` from. Must run
/// inside a tokio runtime (it spawns the recorder's upkeep); once per process.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::PROCESSING_DURATION.into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(names::END_TO_END_DURATION.into()), END_TO_END_BUCKETS)?
        .install_recorder()?;
    gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Counts and latencies since the last [`Stats::take`], for the console.
#[derive(Debug)]
pub struct Stats {
    events: AtomicU64,
    signals: AtomicU64,
    dead_lettered: AtomicU64,
    /// Processing latency in nanoseconds, 1 ns … 10 s, 3 significant
    /// digits: one histogram per stripe, so shard threads do not contend
    /// for one lock; merged when read.
    latency_ns: Vec<Mutex<Stripe>>,
    /// Since start, for `/stats`.
    events_total: AtomicU64,
    signals_total: AtomicU64,
    dead_lettered_total: AtomicU64,
    /// End-to-end histograms, registered on first use (after the recorder).
    end_to_end: std::sync::OnceLock<EndToEnd>,
    /// Decisions, actions and rule hits since start, for the demo's view;
    /// `None` (nothing counted) unless made with [`Stats::with_tally`].
    pub tally: Option<Tally>,
    /// Metric handles per input topic, registered once: the event path
    /// neither formats label values nor looks metrics up by name.
    per_topic: std::sync::RwLock<std::collections::HashMap<String, TopicMetrics>>,
}

/// The per-topic metric handles.
#[derive(Debug, Clone)]
struct TopicMetrics {
    consumed: metrics::Counter,
    latency: metrics::Histogram,
}

/// One interval's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Events processed.
    pub events: u64,
    /// Signals produced.
    pub signals: u64,
    /// Events dead-lettered.
    pub dead_lettered: u64,
    /// Median processing latency.
    pub p50: Duration,
    /// 99th percentile processing latency.
    pub p99: Duration,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            events: AtomicU64::new(0),
            signals: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            // Bounds are constants in hdrhistogram's valid range.
            latency_ns: (0..STRIPES)
                .map(|_| Mutex::new(Stripe { interval: histogram_ns(), total: histogram_ns() }))
                .collect(),
            events_total: AtomicU64::new(0),
            signals_total: AtomicU64::new(0),
            dead_lettered_total: AtomicU64::new(0),
            end_to_end: std::sync::OnceLock::new(),
            tally: None,
            per_topic: Default::default(),
        }
    }
}

impl Stats {
    /// Counts one produced signal.
    /// Stats that also keep a [`Tally`] (the demo's live view).
    pub fn with_tally() -> Stats {
        Stats { tally: Some(Tally::default()), ..Stats::default() }
    }

    pub fn signal(&self) {
        self.signals.fetch_add(1, Ordering::Relaxed);
        self.signals_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the figures since the last call and starts a new interval.
    pub fn take(&self) -> Interval {
        let mut h = histogram_ns();
        for stripe in &self.latency_ns {
            let mut stripe = stripe.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // Same bounds on both sides: adding cannot fail.
            let _ = h.add(&stripe.interval);
            stripe.interval.reset();
        }
        Interval {
            events: self.events.swap(0, Ordering::Relaxed),
            signals: self.signals.swap(0, Ordering::Relaxed),
            dead_lettered: self.dead_lettered.swap(0, Ordering::Relaxed),
            p50: Duration::from_nanos(h.value_at_quantile(0.50)),
            p99: Duration::from_nanos(h.value_at_quantile(0.99)),
        }
    }
}

impl Stats {
    /// Everything since start, with exact latency percentiles merged over
    /// every shard: what `/stats` serves.
    pub fn totals(&self) -> Totals {
        let mut h = histogram_ns();
        for stripe in &self.latency_ns {
            let stripe = stripe.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = h.add(&stripe.total);
        }
        Totals {
            events: self.events_total.load(Ordering::Relaxed),
            signals: self.signals_total.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered_total.load(Ordering::Relaxed),
            latency: Percentiles::of(&h),
        }
    }
}

/// What the engine decided since start: decisions, actions by type, and
/// hits per rule in enforce and shadow mode. Shards add to it concurrently.
#[derive(Debug, Default)]
pub struct Tally {
    decisions: [AtomicU64; 5],
    actions: [AtomicU64; 9],
    rules: dashmap::DashMap<String, [AtomicU64; 2]>,
}

/// A copy of a [`Tally`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallySnapshot {
    /// Per decision, indexed by `Decision as usize`.
    pub decisions: [u64; 5],
    /// Per action type, indexed by `ActionType as usize`.
    pub actions: [u64; 9],
    /// Per rule id: (enforce hits, shadow hits).
    pub rules: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Tally {
    /// Counts an event's decision.
    pub fn decision(&self, decision: i32) {
        if let Some(n) = self.decisions.get(decision as usize) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an action.
    pub fn action(&self, action_type: i32) {
        if let Some(n) = self.actions.get(action_type as usize) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a rule hit.
    pub fn rule_hit(&self, rule: &str, shadow: bool) {
        let slot = usize::from(shadow);
        if let Some(counts) = self.rules.get(rule) {
            counts[slot].fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.rules.entry(rule.to_string()).or_default()[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> TallySnapshot {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        TallySnapshot {
            decisions: std::array::from_fn(|i| load(&self.decisions[i])),
            actions: std::array::from_fn(|i| load(&self.actions[i])),
            rules: self.rules.iter().map(|e| (e.key().clone(), (load(&e.value()[0]), load(&e.value()[1])))).collect(),
        }
    }
}

/// Counts since start and processing-latency percentiles.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Totals {
    /// Events processed.
    pub events: u64,
    /// Signals published.
    pub signals: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
    /// Processing latency (receive → outputs enqueued).
    pub latency: Percentiles,
}

/// Exact percentiles of a latency histogram, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest value.
    pub max_ns: u64,
}

impl Percentiles {
    /// Reads the percentiles of `h`.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

/// One stripe's histograms: since the last [`Stats::take`], and since start.
#[derive(Debug)]
struct Stripe {
    interval: Histogram<u64>,
    total: Histogram<u64>,
}

/// Nanoseconds, 1 ns … 10 s, 3 significant digits.
fn histogram_ns() -> Histogram<u64> {
    // Constant bounds in hdrhistogram's valid range.
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds")
}

/// End-to-end latency histograms and the acknowledgement counter.
#[derive(Debug)]
struct EndToEnd {
    acknowledged: metrics::Counter,
    from_event_time: metrics::Histogram,
    from_kafka_timestamp: metrics::Histogram,
}

/// Latency histogram stripes: enough that each shard thread has its own.
const STRIPES: usize = 16;

/// This thread's stripe, handed out round-robin on first use.
fn stripe() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static STRIPE: usize = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

impl PipelineObserver for Stats {
    fn processed(&self, topic: &str, latency: Duration, _outputs: usize) {
        self.events.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        {
            let mut stripe = self.latency_ns[stripe()].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            stripe.interval.saturating_record(ns);
            stripe.total.saturating_record(ns);
        }
        self.events_total.fetch_add(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        {
            let known = self.per_topic.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(handles) = known.get(topic) {
                handles.consumed.increment(1);
                handles.latency.record(seconds);
                return;
            }
        }
        // First message from this topic: register its handles once.
        let handles = TopicMetrics {
            consumed: counter!(names::EVENTS_CONSUMED, "topic" => topic.to_string()),
            latency: histogram!(names::PROCESSING_DURATION, "topic" => topic.to_string()),
        };
        handles.consumed.increment(1);
        handles.latency.record(seconds);
        let mut map = self.per_topic.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(topic.to_string()).or_insert(handles);
    }

    fn dead_lettered(&self, topic: &str) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.dead_lettered_total.fetch_add(1, Ordering::Relaxed);
        counter!(names::EVENTS_DEAD_LETTERED, "topic" => topic.to_string()).increment(1);
    }

    fn acknowledged(&self, kafka_timestamp_ms: Option<i64>, event_time_ms: Option<i64>) {
        let handles = self.end_to_end.get_or_init(|| EndToEnd {
            acknowledged: counter!(names::EVENTS_ACKNOWLEDGED),
            from_event_time: histogram!(names::END_TO_END_DURATION, "from" => "event_time"),
            from_kafka_timestamp: histogram!(names::END_TO_END_DURATION, "from" => "kafka_timestamp"),
        });
        handles.acknowledged.increment(1);
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let age = |t: i64| (now_ms as f64 - t as f64).max(0.0) / 1e3;
        if let Some(t) = kafka_timestamp_ms {
            handles.from_kafka_timestamp.record(age(t));
        }
        if let Some(t) = event_time_ms {
            handles.from_event_time.record(age(t));
        }
    }

    fn partition_lag(&self, topic: &str, partition: i32, lag: Option<i64>) {
        gauge!(names::KAFKA_CONSUMER_LAG, "topic" => topic.to_string(), "partition" => partition.to_string())
            .set(lag.unwrap_or(0) as f64);
    }

    fn delivery_retried(&self, topic: &str) {
        counter!(names::KAFKA_DELIVERY_RETRIES, "topic" => topic.to_string()).increment(1);
    }

    fn client_error(&self) {
        counter!(names::KAFKA_CLIENT_ERRORS).increment(1);
    }

    fn consumer_error(&self) {
        counter!(names::KAFKA_CONSUMER_ERRORS).increment(1);
    }

    fn commit_failed(&self) {
        counter!(names::KAFKA_COMMIT_FAILURES).increment(1);
    }

    fn paused(&self, partitions: usize) {
        gauge!(names::KAFKA_PARTITIONS_PAUSED).set(partitions as f64);
    }

    fn rebalanced(&self, kind: &'static str, partitions: usize) {
        counter!(names::KAFKA_REBALANCES, "kind" => kind).increment(1);
        let owned = if kind == "assign" { partitions } else { 0 };
        gauge!(names::KAFKA_PARTITIONS_ASSIGNED).set(owned as f64);
    }

    fn warmed(&self, report: &gavel_kafka::WarmupReport) {
        gauge!(names::WARMUP_DURATION).set(report.elapsed.as_secs_f64());
    }
}

/// Formats a duration for the console: `850ns`, `12.3µs`, `4.1ms`.
pub fn short(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        _ => format!("{:.1}ms", ns as f64 / 1e6),
    }
}

/// Logs the interval's counts and exact latency percentiles every `period`
/// (`gavel run`; the demo prints its own console line instead).
pub async fn log_every(stats: std::sync::Arc<Stats>, period: Duration) {
    let mut every = tokio::time::interval(period);
    every.tick().await;
    loop {
        every.tick().await;
        let i = stats.take();
        let secs = period.as_secs_f64();
        tracing::info!(
            events_per_sec = (i.events as f64 / secs).round(),
            signals_per_sec = (i.signals as f64 / secs).round(),
            dead_lettered = i.dead_lettered,
            p50_us = i.p50.as_secs_f64() * 1e6,
            p99_us = i.p99.as_secs_f64() * 1e6,
            "stats"
        );
    }
}

/// Resident memory of this process (`VmRSS` in `/proc/self/status`), where
/// the platform has it.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_resets() {
        let stats = Stats::default();
        stats.processed("t", Duration::from_micros(10), 1);
        stats.processed("t", Duration::from_micros(20), 0);
        stats.signal();
        let i = stats.take();
        assert_eq!((i.events, i.signals), (2, 1));
        assert!(i.p99 >= Duration::from_micros(19) && i.p99 <= Duration::from_micros(21), "{:?}", i.p99);
        assert_eq!(stats.take().events, 0);
    }

    #[test]
    fn short_durations() {
        assert_eq!(short(Duration::from_nanos(850)), "850ns");
        assert_eq!(short(Duration::from_nanos(12_345)), "12.3µs");
        assert_eq!(short(Duration::from_micros(4_100)), "4.1ms");
    }
}
