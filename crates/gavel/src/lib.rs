//! The `gavel` binary's library: CLI commands, configuration, the tokio
//! wiring between the Kafka adapter and the engine, telemetry and the demo.
//!
//! Start reading at [`serve`]: it is the whole runtime in one function. The
//! commands in `main.rs` set up its inputs (config, pack, shutdown signal)
//! and call it.

pub mod admin;
pub mod config;
pub mod demo;
pub mod pack;
pub mod processor;
pub mod reload;
pub mod ruletools;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use gavel_kafka::{KafkaSettings, Pipeline};

use crate::processor::EngineProcessor;
use crate::reload::Rules;
use crate::telemetry::Stats;

/// Runs the engine against Kafka until `shutdown` resolves: consume,
/// evaluate, produce, store offsets after acknowledgement, commit on exit.
/// `ready` is set once the consumer has subscribed.
pub async fn serve(
    settings: KafkaSettings,
    rules: Arc<Rules>,
    stats: Arc<Stats>,
    emit_verdicts: bool,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    warm_up(&settings, &rules).await?;
    let pipeline = Pipeline::new(settings)?;
    let maintenance = tokio::spawn(maintain(Arc::clone(&rules)));
    ready.store(true, Ordering::Relaxed);
    let mut processor = EngineProcessor::new(rules, Arc::clone(&stats), emit_verdicts);
    let result = pipeline.run(&mut processor, &*stats, shutdown).await;
    maintenance.abort();
    ready.store(false, Ordering::Relaxed);
    Ok(result?)
}

/// Rebuilds velocity state from the input topics before going live: every
/// partition is replayed from (now − the pack's longest window) up to the
/// group's committed offset, updating features only. Logs and returns what
/// it did; a broker that cannot be read fails start-up.
pub async fn warm_up(settings: &KafkaSettings, rules: &Arc<Rules>) -> anyhow::Result<gavel_kafka::WarmupReport> {
    let engine = rules.current();
    let longest = engine.pack().longest_window_ms() as i64;
    if longest == 0 {
        return Ok(gavel_kafka::WarmupReport::default());
    }
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let settings = settings.clone();
    let report = tokio::task::spawn_blocking(move || {
        let mut sink = WarmEngine { engine };
        gavel_kafka::warm_up(&settings, now_ms - longest, &mut sink, std::time::Duration::from_secs(30))
    })
    .await??;
    metrics::counter!(telemetry::names::WARMUP_MESSAGES).increment(report.messages);
    Ok(report)
}

/// Feeds replayed messages to the engine's warm path; undecodable ones were
/// dead-lettered when first seen and are skipped.
struct WarmEngine {
    engine: Arc<gavel_engine::Engine>,
}

impl gavel_kafka::WarmSink for WarmEngine {
    fn warm(&mut self, input: &gavel_kafka::Input<'_>) {
        if let Ok(event) = gavel_model::decode(input.encoding, input.payload) {
            let _ = self.engine.warm(&event, input.timestamp_ms);
        }
    }
}

/// Every few seconds: evicts idle velocity keys, lapsed cooldowns and
/// expired labels, and publishes the store's size per feature. Runs until
/// the process ends.
pub async fn maintain(rules: Arc<Rules>) {
    use metrics::{counter, gauge};
    use telemetry::names;
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        every.tick().await;
        let engine = rules.current();
        // Live events carry times close to the wall clock; eviction is the
        // one place gavel reads it, and only to forget what has expired.
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let evicted = engine.maintain(now_ms);
        counter!(names::VELOCITY_EVICTED).increment(evicted as u64);
        for (feature, window) in engine.pack().features.iter().zip(engine.windows()) {
            gauge!(names::VELOCITY_KEYS, "feature" => feature.name.clone()).set(window.len() as f64);
            gauge!(names::VELOCITY_BYTES, "feature" => feature.name.clone()).set(window.bytes() as f64);
            counter!(names::VELOCITY_CAP_EVICTIONS, "feature" => feature.name.clone())
                .absolute(window.evicted_by_cap_total());
            counter!(names::VELOCITY_TOO_LATE, "feature" => feature.name.clone()).absolute(window.too_late_total());
        }
        gauge!(names::LABELS).set(engine.labels().len() as f64);
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn termination_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
