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
}

/// Latency buckets for the processing histogram, in seconds (1 µs … 100 ms).
const LATENCY_BUCKETS: &[f64] =
    &[0.000_001, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01, 0.1];

/// Installs the Prometheus recorder as the process's global recorder and
/// returns the handle the admin endpoint renders `/metrics` from. Must run
/// inside a tokio runtime (it spawns the recorder's upkeep); once per process.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::PROCESSING_DURATION.into()), LATENCY_BUCKETS)?
        .install_recorder()?;
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
    latency_ns: Vec<Mutex<Histogram<u64>>>,
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
                .map(|_| Mutex::new(Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds")))
                .collect(),
            per_topic: Default::default(),
        }
    }
}

impl Stats {
    /// Counts one produced signal.
    pub fn signal(&self) {
        self.signals.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the figures since the last call and starts a new interval.
    pub fn take(&self) -> Interval {
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds");
        for stripe in &self.latency_ns {
            let mut stripe = stripe.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // Same bounds on both sides: adding cannot fail.
            let _ = h.add(&*stripe);
            stripe.reset();
        }
        let interval = Interval {
            events: self.events.swap(0, Ordering::Relaxed),
            signals: self.signals.swap(0, Ordering::Relaxed),
            dead_lettered: self.dead_lettered.swap(0, Ordering::Relaxed),
            p50: Duration::from_nanos(h.value_at_quantile(0.50)),
            p99: Duration::from_nanos(h.value_at_quantile(0.99)),
        };
        interval
    }
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
        self.latency_ns[stripe()].lock().unwrap_or_else(|poisoned| poisoned.into_inner()).saturating_record(ns);
        let known = self.per_topic.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(topic).cloned();
        let handles = known.unwrap_or_else(|| {
            let handles = TopicMetrics {
                consumed: counter!(names::EVENTS_CONSUMED, "topic" => topic.to_string()),
                latency: histogram!(names::PROCESSING_DURATION, "topic" => topic.to_string()),
            };
            let mut map = self.per_topic.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            map.entry(topic.to_string()).or_insert(handles).clone()
        });
        handles.consumed.increment(1);
        handles.latency.record(latency.as_secs_f64());
    }

    fn dead_lettered(&self, topic: &str) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        counter!(names::EVENTS_DEAD_LETTERED, "topic" => topic.to_string()).increment(1);
    }

    fn acknowledged(&self) {
        counter!(names::EVENTS_ACKNOWLEDGED).increment(1);
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
