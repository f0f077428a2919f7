//! Gavel's telemetry, one home for every metric: [`names`] declares each
//! one (name, kind, unit, help); [`describe`] describes them all and
//! registers at zero the series whose labels are known up front;
//! [`engine`] holds the engine's metric handles (per event, per pack, per
//! store sweep); [`stats`] is the pipeline observer (Kafka-side metrics and
//! the exact in-process latency percentiles of `/stats` and the console);
//! [`tally`] counts decisions for the demo's view. Logging setup is here too.
//!
//! Code outside this module records metrics only through these types and
//! never names a metric itself.

pub mod engine;
pub mod names;
pub mod stats;
pub mod tally;

use std::time::Duration;

use metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use crate::telemetry::stats::{Interval, Percentiles, Stats, Totals};
pub use crate::telemetry::tally::{Tally, TallySnapshot};

/// Installs the `tracing` subscriber on stderr: filter from `GAVEL_LOG`
/// (default `info,rdkafka=warn`), JSON lines when `GAVEL_LOG_FORMAT=json`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAVEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    // Colour only for a person at a terminal: a log file or collector
    // would get escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if std::env::var("GAVEL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    // A panic's message can quote the value it choked on (a string slice
    // error prints the string), and that value may be chat text or card
    // data: log where it happened, never what it said.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            location = location.as_deref().unwrap_or("unknown"),
            "panic (message withheld: it may quote input)"
        );
    }));
}

/// Histogram buckets, in seconds: ten per decade (each bound 10^0.1 ≈
/// 1.26 times the last) from `from` to `to`. Prometheus interpolates
/// linearly inside a bucket; at this spacing its quantile estimates of
/// smooth latency distributions stay within 10% of the exact value (see
/// the test), where the old 1-2.5-5 steps read a p99 of 20 ms as 55 ms.
fn decade_buckets(from: f64, to: f64) -> Vec<f64> {
    let first = from.log10().round() as i32 * 10;
    let last = to.log10().round() as i32 * 10;
    // Rounded to 3 significant digits, so the bounds read cleanly.
    (first..=last)
        .map(|tenth| {
            let v = 10f64.powf(f64::from(tenth) / 10.0);
            let scale = 10f64.powi(2 - v.log10().floor() as i32);
            (v * scale).round() / scale
        })
        .collect()
}

/// Describes every metric (Prometheus `HELP`) and registers, at zero, the
/// counters whose label values are known up front, so that dashboards and
/// alerts see a series (and `rate()` a 0) before the first event of its kind.
pub fn describe(settings: &gavel_kafka::KafkaSettings) {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    use names::*;
    for m in ALL {
        match (m.kind, m.unit) {
            (Kind::Counter, Some(unit)) => describe_counter!(m.name, unit, m.help),
            (Kind::Counter, None) => describe_counter!(m.name, m.help),
            (Kind::Gauge, Some(unit)) => describe_gauge!(m.name, unit, m.help),
            (Kind::Gauge, None) => describe_gauge!(m.name, m.help),
            (Kind::Histogram, Some(unit)) => describe_histogram!(m.name, unit, m.help),
            (Kind::Histogram, None) => describe_histogram!(m.name, m.help),
        }
    }

    for counter in [
        EVENTS_ACKNOWLEDGED,
        SIGNALS,
        SHADOW_SIGNALS,
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
    counter!(FOLLOW_HANDED_OVER).increment(0);
    gauge!(FOLLOW_HELD_BYTES).set(0.0);
    for reason in ["stalled", "forced"] {
        counter!(INPUT_ORDER_BROKEN, "reason" => reason).increment(0);
    }
    for input in &settings.inputs {
        counter!(EVENTS_CONSUMED, "topic" => input.name.clone()).increment(0);
        counter!(EVENTS_DEAD_LETTERED, "topic" => input.name.clone()).increment(0);
        counter!(PROCESSING_PANICS, "topic" => input.name.clone()).increment(0);
    }
    for output in settings.outputs.all() {
        counter!(KAFKA_DELIVERY_RETRIES, "topic" => output.to_string()).increment(0);
        counter!(OUTPUTS_OVERSIZED, "topic" => output.to_string()).increment(0);
    }
    gauge!(KAFKA_PARTITIONS_PAUSED).set(0.0);
    gauge!(KAFKA_PARTITIONS_ASSIGNED).set(0.0);
}

/// Installs the Prometheus recorder as the process's global recorder and
/// returns the handle the admin endpoint renders `/metrics` from. Must run
/// inside a tokio runtime (it spawns the recorder's upkeep); once per process.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        // Processing: 10 µs … 10 s. End to end (broker round trips, and for
        // event time the producer's own delay): 100 µs … 100 s.
        .set_buckets_for_metric(Matcher::Full(names::PROCESSING_DURATION.into()), &decade_buckets(1e-5, 10.0))?
        .set_buckets_for_metric(Matcher::Full(names::END_TO_END_DURATION.into()), &decade_buckets(1e-4, 100.0))?
        .install_recorder()?;
    gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    collect_process_metrics();
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

/// The standard process metrics (`process_cpu_seconds_total`,
/// `process_start_time_seconds`, `process_open_fds`, memory, threads), as
/// Prometheus' own client libraries name them: call before each scrape.
pub fn collect_process_metrics() {
    static COLLECTOR: std::sync::OnceLock<metrics_process::Collector> = std::sync::OnceLock::new();
    COLLECTOR
        .get_or_init(|| {
            let collector = metrics_process::Collector::default();
            collector.describe();
            collector
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus' `histogram_quantile`: the bucket holding rank q·n, and
    /// linear interpolation inside it (from 0 for the first bucket).
    fn histogram_quantile(q: f64, bounds: &[f64], samples: &[f64]) -> f64 {
        let counts: Vec<usize> = bounds.iter().map(|b| samples.iter().filter(|&&s| s <= *b).count()).collect();
        let rank = q * samples.len() as f64;
        let i = counts.iter().position(|&c| c as f64 >= rank).expect("inside the buckets");
        let (lower, below) = if i == 0 { (0.0, 0) } else { (bounds[i - 1], counts[i - 1]) };
        let inside = (counts[i] - below) as f64;
        lower + (bounds[i] - lower) * (rank - below as f64) / inside
    }

    #[test]
    fn histogram_quantiles_stay_within_ten_percent_from_10us_to_10s() {
        use rand::{Rng, SeedableRng};
        let bounds = decade_buckets(1e-5, 10.0);
        assert_eq!((bounds[0], *bounds.last().unwrap(), bounds.len()), (1e-5, 10.0, 61));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut worst: f64 = 0.0;
        // Log-normal latencies, medians from 30 µs to 1 s, narrow and wide.
        for median_exp in [-4.5f64, -4.0, -3.3, -2.7, -2.0, -1.3, -0.5, 0.0] {
            for sigma in [0.2, 0.5, 1.0] {
                // Box-Muller: a standard normal from two uniforms.
                let mut normal = || {
                    let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
                    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
                };
                let median = 10f64.powf(median_exp);
                let mut samples: Vec<f64> =
                    (0..20_000).map(|_| median * (sigma * normal()).exp()).filter(|s| *s <= 10.0).collect();
                samples.sort_by(f64::total_cmp);
                for q in [0.5, 0.9, 0.99] {
                    let exact = samples[((q * samples.len() as f64).ceil() as usize).min(samples.len()) - 1];
                    if exact < 1e-5 {
                        continue;
                    }
                    let estimate = histogram_quantile(q, &bounds, &samples);
                    worst = worst.max((estimate - exact).abs() / exact);
                }
            }
        }
        assert!(worst <= 0.10, "worst quantile estimate is {:.1}% off", worst * 100.0);
    }

    #[test]
    fn short_durations() {
        assert_eq!(short(Duration::from_nanos(850)), "850ns");
        assert_eq!(short(Duration::from_nanos(12_345)), "12.3µs");
        assert_eq!(short(Duration::from_micros(4_100)), "4.1ms");
    }
}
