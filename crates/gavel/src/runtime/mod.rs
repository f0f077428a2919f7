//! The runtime of `gavel run`: [`serve`] wires the Kafka pipeline to one
//! [`processor::EngineProcessor`] per shard over the engine in force
//! ([`reload::Rules`]), warms state up, runs store maintenance, and serves the
//! admin endpoint ([`admin`]) with the configuration of [`config`].
//!
//! It holds no rule or feature logic (that is the engine's) and no Kafka
//! protocol code (that is `gavel-kafka`'s).

pub mod admin;
pub mod config;
pub mod encoding;
pub mod processor;
pub mod registry;
pub mod reload;

use std::future::Future;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use gavel_engine::Engine;
use gavel_kafka::{Hooks, KafkaSettings, Pipeline};

use crate::runtime::admin::Admin;
use crate::runtime::config::GavelConfig;

use crate::runtime::encoding::OutputFormat;
pub use crate::runtime::processor::Emit;
use crate::runtime::processor::EngineProcessor;
use crate::runtime::registry::Registry;
use crate::runtime::reload::Rules;
use crate::telemetry::{self, Stats};

/// `gavel run`: loads the config (file, then `GAVEL__` overrides) and the
/// pack, starts the admin endpoint, the pack watcher and the periodic stats
/// log, and serves until SIGINT or SIGTERM.
pub fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let config = GavelConfig::load(config)?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let pack = crate::tools::pack::load(&config.pack)?;
    if pack.rules.is_empty() && !config.allow_empty_pack {
        return Err(crate::error::bad_input(format!(
            "the rule pack in {} has no enabled rules: every event would be allowed. \
             Set allow_empty_pack = true to serve it anyway",
            config.pack.display()
        )));
    }
    tracing::info!(pack_version = %pack.version, rules = pack.rules.len(), brokers = %config.kafka.brokers, "starting");
    reload::log_warnings(&pack);
    let format = output_format(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let addr: SocketAddr = config.admin_addr.parse().context("admin_addr")?;
        let metrics = telemetry::install_recorder()?;
        let rules = Rules::new(Engine::new(pack), Some(config.pack.clone()));
        rules.allow_empty(config.allow_empty_pack);
        rules.watch()?;
        let ready = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let admin = Admin { metrics, rules: Arc::clone(&rules), ready: Arc::clone(&ready), stats: Arc::clone(&stats) };
        let bound = admin::serve(addr, admin).await?;
        tracing::info!(%bound, "admin endpoint: /metrics /healthz /readyz /stats /v1/rules");
        tokio::spawn(telemetry::log_every(Arc::clone(&stats), Duration::from_secs(10)));
        let emit = Emit { verdicts: config.outputs.emit_verdicts, shadow: config.outputs.emit_shadow };
        let options = ServeOptions { shards: config.shards(), emit, format };
        serve(config.kafka_settings(), rules, stats, options, ready, termination_signal()).await
    })
}

/// The configured output encoding; with a schema registry, the schemas
/// are registered (or looked up) first, so an unreachable registry stops
/// start-up.
pub fn output_format(config: &GavelConfig) -> anyhow::Result<OutputFormat> {
    let registry = &config.outputs.schema_registry;
    if registry.url.is_empty() {
        return Ok(OutputFormat::plain(config.outputs.encoding));
    }
    // Unresolvable values were reported by `problems` before this runs.
    let auth = registry.basic_auth.as_ref().and_then(|a| a.resolve().ok());
    let client = Registry::new(&registry.url, auth.as_deref(), registry.auto_register);
    let ids = client.schema_ids(&config.kafka_settings().outputs)?;
    OutputFormat::confluent(&ids)
}

/// How [`serve`] runs, besides the Kafka settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Shard workers (threads); each owns a share of the input partitions.
    pub shards: usize,
    /// The optional outputs to publish.
    pub emit: Emit,
    /// How outputs are encoded.
    pub format: OutputFormat,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { shards: default_shards(), emit: Emit::default(), format: OutputFormat::default() }
    }
}

/// One shard per core.
pub fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Runs the engine against Kafka until `shutdown` resolves: join the group,
/// warm up each assigned partition's history, then consume, evaluate and
/// produce on `options.shards` shards, storing offsets after acknowledgement
/// and committing on revoke and exit. `ready` is true while partitions are
/// assigned and warmed up.
pub async fn serve(
    settings: KafkaSettings,
    rules: Arc<Rules>,
    stats: Arc<Stats>,
    options: ServeOptions,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    telemetry::describe(&settings);
    let pipeline = Pipeline::new(settings)?;
    let maintenance = tokio::spawn(maintain(Arc::clone(&rules)));
    let processors: Vec<Box<dyn gavel_kafka::Processor>> = (0..options.shards.max(1))
        .map(|_| {
            Box::new(
                EngineProcessor::new(Arc::clone(&rules), Arc::clone(&stats), options.emit)
                    .with_format(options.format.clone()),
            ) as Box<dyn gavel_kafka::Processor>
        })
        .collect();
    let current = Arc::clone(&rules);
    let hooks = Hooks {
        observer: stats,
        warm: Some(Box::new(WarmEngine { rules: Arc::clone(&rules) })),
        ready: Arc::clone(&ready),
        beyond_the_message_key: Some(Arc::new(move || current.current().pack().state_beyond_the_message_key())),
    };
    let result = pipeline.run(processors, hooks, shutdown).await;
    maintenance.abort();
    ready.store(false, Ordering::Relaxed);
    Ok(result?)
}

/// Rebuilds velocity state from the input topics: every partition is
/// replayed from (now − the pack's longest window) up to the group's
/// committed offset, updating features only. [`serve`] does this itself for
/// each partition it is assigned; this is the same replay over all of them.
pub async fn warm_up(settings: &KafkaSettings, rules: &Arc<Rules>) -> anyhow::Result<gavel_kafka::WarmupReport> {
    let mut sink = WarmEngine { rules: Arc::clone(rules) };
    let Some(since_ms) = gavel_kafka::WarmSink::since_ms(&sink) else {
        return Ok(gavel_kafka::WarmupReport::default());
    };
    let settings = settings.clone();
    let report = tokio::task::spawn_blocking(move || {
        let timeout = settings.warmup_timeout;
        gavel_kafka::warm_up(&settings, since_ms, &mut sink, timeout)
    })
    .await??;
    Ok(report)
}

/// Feeds replayed messages to the engine's warm path; undecodable ones were
/// dead-lettered when first seen and are skipped.
struct WarmEngine {
    rules: Arc<Rules>,
}

/// Feeds one message into the engine's state only (warm-up, and the
/// partitions another member publishes for); an undecodable one was
/// dead-lettered when first seen and is skipped.
pub(crate) fn warm_input(rules: &Rules, input: &gavel_kafka::Input<'_>) {
    if let Ok(event) = gavel_model::decode(input.encoding, input.payload) {
        let lane = gavel_engine::lane_of(input.topic, input.partition);
        let _ = rules.current().warm_in(lane, &event, input.timestamp_ms);
    }
    telemetry::engine::warmup_message();
}

impl gavel_kafka::WarmSink for WarmEngine {
    fn warm(&mut self, input: &gavel_kafka::Input<'_>) {
        warm_input(&self.rules, input);
    }

    fn since_ms(&self) -> Option<i64> {
        let longest = self.rules.current().pack().longest_window_ms() as i64;
        if longest == 0 {
            return None;
        }
        // History older than the longest window (or wait) cannot change
        // any feature or pending timer.
        Some(crate::clock::now_ms() - longest)
    }
}

/// Every few seconds: evicts idle velocity keys, lapsed cooldowns and
/// expired labels, and publishes the store's size per feature. Runs until
/// the process ends.
pub async fn maintain(rules: Arc<Rules>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        let engine = rules.current();
        // Evicted as of the events' own time (the engine's watermark), so
        // a log processed late keeps the state it would have had live.
        let evicted = engine.sweep();
        telemetry::engine::store_swept(&engine, evicted);
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
