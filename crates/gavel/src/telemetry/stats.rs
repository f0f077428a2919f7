//! [`Stats`]: the pipeline observer. It records the Kafka-side metrics
//! (consumed, dead-lettered, acknowledged, end-to-end latency, lag,
//! retries, rebalances) and keeps exact processing-latency histograms,
//! striped per shard thread, for the console line and `/stats`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gavel_kafka::PipelineObserver;
use hdrhistogram::Histogram;
use metrics::{counter, gauge, histogram};

use crate::telemetry::names;
use crate::telemetry::tally::Tally;

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
    /// Stats that also keep a [`Tally`] (the demo's live view).
    pub fn with_tally() -> Stats {
        Stats { tally: Some(Tally::default()), ..Stats::default() }
    }

    /// Counts one produced signal.
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

    fn oversized(&self, topic: &str) {
        counter!(names::OUTPUTS_OVERSIZED, "topic" => topic.to_string()).increment(1);
    }

    fn panicked(&self, topic: &str) {
        counter!(names::PROCESSING_PANICS, "topic" => topic.to_string()).increment(1);
    }

    fn acknowledged(&self, kafka_timestamp_ms: Option<i64>, event_time_ms: Option<i64>) {
        let handles = self.end_to_end.get_or_init(|| EndToEnd {
            acknowledged: counter!(names::EVENTS_ACKNOWLEDGED),
            from_event_time: histogram!(names::END_TO_END_DURATION, "from" => "event_time"),
            from_kafka_timestamp: histogram!(names::END_TO_END_DURATION, "from" => "kafka_timestamp"),
        });
        handles.acknowledged.increment(1);
        let now_ms = crate::clock::now_ms();
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

    fn out_of_order(&self, stalled: u64, forced: u64) {
        counter!(names::INPUT_ORDER_BROKEN, "reason" => "stalled").increment(stalled);
        counter!(names::INPUT_ORDER_BROKEN, "reason" => "forced").increment(forced);
    }

    fn rebalanced(&self, kind: &'static str, partitions: usize) {
        counter!(names::KAFKA_REBALANCES, "kind" => kind).increment(1);
        let owned = if kind == "assign" { partitions } else { 0 };
        gauge!(names::KAFKA_PARTITIONS_ASSIGNED).set(owned as f64);
    }

    fn warmed(&self, report: &gavel_kafka::WarmupReport) {
        gauge!(names::WARMUP_DURATION).set(report.elapsed.as_secs_f64());
    }

    fn exact(&self, exact: bool) {
        gauge!(names::STATE_EXACT).set(if exact { 1.0 } else { 0.0 });
    }

    fn held(&self, bytes: usize) {
        gauge!(names::FOLLOW_HELD_BYTES).set(bytes as f64);
    }

    fn handed_over(&self, messages: usize) {
        counter!(names::FOLLOW_HANDED_OVER).increment(messages as u64);
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
}
