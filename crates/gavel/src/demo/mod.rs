//! The embedded demo: librdkafka's in-process mock cluster, the simulator
//! producing marketplace traffic into it, and the engine consuming it, with
//! a console line per second and Prometheus metrics on a local port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use gavel_engine::Engine;
use std::sync::atomic::AtomicBool;

use crate::runtime::Emit;
use crate::runtime::admin::Admin;
use crate::runtime::reload::Rules;
use gavel_kafka::{InputTopic, KafkaSettings, OutputTopics};
use gavel_model::Encoding;
use gavel_sim::{MARKETPLACE_TOPICS, SimConfig, Simulator};
use rdkafka::mocking::MockCluster;
use tokio::sync::watch;

use crate::telemetry::{self, Stats, Tally, TallySnapshot, short};
use gavel_model::pb::{ActionType, Decision};
use std::io::IsTerminal;

use crate::runtime::config::DEFAULT_ADMIN_ADDR;
use crate::tools::feed::{Encodings, FeedOptions, Pace, feed, producer_config};

/// What the demo runs (the `gavel demo` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Stop after this long (e.g. `10s`, `2m`); runs until Ctrl-C if absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Simulated events per second.
    #[arg(long, default_value_t = 5_000.0)]
    pub rate: f64,
    /// Address of the Prometheus metrics endpoint.
    #[arg(long, default_value = DEFAULT_ADMIN_ADDR)]
    pub metrics_addr: SocketAddr,
    /// Partitions per topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Simulator seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Run (and watch) this pack directory instead of the embedded pack.
    #[arg(long)]
    pub rules: Option<std::path::PathBuf>,
}

impl Default for DemoOptions {
    /// The flags' defaults: what `cargo run --release` runs.
    fn default() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            options: DemoOptions,
        }
        // No arguments: every field takes its declared default, which parses.
        Flags::parse_from(["gavel-demo"]).options
    }
}

/// Chat and account events travel as JSON, the rest as protobuf, so the
/// demo exercises both decoders.
fn encoding_of(topic: &str) -> Encoding {
    match topic {
        "marketplace.chat" | "marketplace.accounts" => Encoding::Json,
        _ => Encoding::Protobuf,
    }
}

/// Runs the demo. Blocks until the duration passes or Ctrl-C.
pub fn run(options: DemoOptions) -> anyhow::Result<()> {
    // The mock cluster is not Send: it lives on this thread, outside the runtime.
    let cluster = MockCluster::new(1).context("starting the in-process Kafka mock cluster")?;
    let outputs = OutputTopics::default();
    for topic in MARKETPLACE_TOPICS.iter().chain(outputs.all().iter()) {
        cluster.create_topic(topic, options.partitions, 1)?;
    }
    let brokers = cluster.bootstrap_servers();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(run_async(options, brokers));
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(cluster);
    result
}

async fn run_async(options: DemoOptions, brokers: String) -> anyhow::Result<()> {
    let metrics = telemetry::install_recorder()?;
    let (engine, dir) = match &options.rules {
        Some(dir) => (Engine::new(crate::tools::pack::load(dir)?), Some(dir.clone())),
        None => (Engine::new(crate::tools::pack::shipped()?), None),
    };
    let rules = Rules::new(engine, dir);
    rules.watch()?;
    let ready = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::with_tally());
    let admin = Admin { metrics, rules: Arc::clone(&rules), ready: Arc::clone(&ready), stats: Arc::clone(&stats) };
    let admin_addr = crate::runtime::admin::serve(options.metrics_addr, admin).await?;
    let inputs =
        MARKETPLACE_TOPICS.iter().map(|t| InputTopic { name: t.to_string(), encoding: encoding_of(t) }).collect();
    let mut settings = KafkaSettings::new(&brokers, "gavel-demo", inputs);
    // A fresh cluster: everything on it is this run's traffic.
    settings.first_start = gavel_kafka::FirstStart::Earliest;

    println!(
        "gavel demo: {} events/s of simulated marketplace traffic through an in-process Kafka cluster, rule pack {}",
        options.rate,
        rules.current().pack().version
    );
    println!("metrics: http://{admin_addr}/metrics (Prometheus text format); rules: http://{admin_addr}/v1/rules");

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let producer = tokio::spawn(produce(brokers.clone(), options.clone(), stopped(stop_rx.clone())));
    let pipeline = tokio::spawn(crate::runtime::serve(
        settings,
        Arc::clone(&rules),
        Arc::clone(&stats),
        // One shard, as `gavel run` under the default `kafka.order = "log"`.
        crate::runtime::ServeOptions { emit: Emit { verdicts: true, shadow: false }, shards: 1, ..Default::default() },
        ready,
        stopped(stop_rx.clone()),
    ));

    let totals = console(&stats, options.duration, admin_addr).await;
    let _ = stop_tx.send(true);
    producer.await??;
    pipeline.await??;
    println!("done: {} events, {} signals, {} dead-lettered", totals.0, totals.1, totals.2);
    if totals.0 == 0 {
        anyhow::bail!("the demo processed no events");
    }
    Ok(())
}

/// The console: one line (or, on a terminal, one redrawn screen) per
/// second until `duration` passes or Ctrl-C; returns the events, signals
/// and dead-lettered messages counted.
async fn console(stats: &Stats, duration: Option<Duration>, admin_addr: SocketAddr) -> (u64, u64, u64) {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut totals = (0u64, 0u64, 0u64);
    let mut previous = stats.tally.as_ref().map(Tally::snapshot).unwrap_or_default();
    let terminal = std::io::stdout().is_terminal();
    let interrupted = crate::runtime::termination_signal();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut interrupted => break,
        }
        let i = stats.take();
        totals = (totals.0 + i.events, totals.1 + i.signals, totals.2 + i.dead_lettered);
        let now = stats.tally.as_ref().map(Tally::snapshot).unwrap_or_default();
        let line = format!(
            "{:>4}s  events/s {:>7}  signals/s {:>5}  dlq {:>3}  p50 {:>8}  p99 {:>8}",
            started.elapsed().as_secs(),
            i.events,
            i.signals,
            i.dead_lettered,
            short(i.p50),
            short(i.p99)
        );
        if terminal {
            // Home, clear, redraw: one screen, refreshed every second.
            print!("\x1b[H\x1b[2J{}", live_view(&line, &now, &previous, admin_addr));
        } else {
            println!("{line}");
        }
        previous = now;
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
    }
    totals
}

/// The demo's screen: the rates line, decisions and actions in the last
/// second and since start, and the rules that fired most in the last second,
/// with shadow hits in their own column (they never change a decision).
fn live_view(line: &str, now: &TallySnapshot, before: &TallySnapshot, admin: SocketAddr) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "gavel demo: simulated marketplace → in-process Kafka → engine   (Ctrl-C stops)");
    let _ = writeln!(
        out,
        "metrics: http://{admin}/metrics   stats: http://{admin}/stats   rules: http://{admin}/v1/rules\n"
    );
    let _ = writeln!(out, "{line}\n");
    let _ = writeln!(out, "{:<14}{:>10}{:>12}", "decision", "last 1s", "total");
    for &decision in Decision::SPECIFIED {
        let (total, last) = (now.decisions(decision), before.decisions(decision));
        let _ = writeln!(out, "{:<14}{:>10}{:>12}", decision.as_str(), total - last, total);
    }
    let _ = writeln!(out, "\n{:<18}{:>6}{:>12}", "action", "last 1s", "total");
    for &action in ActionType::SPECIFIED {
        let (total, last) = (now.actions(action), before.actions(action));
        if total > 0 {
            let _ = writeln!(out, "{:<18}{:>6}{:>12}", action.as_str(), total - last, total);
        }
    }
    let mut rules: Vec<(&String, u64, u64, u64, u64)> = now
        .rules
        .iter()
        .map(|(rule, &(enforce, shadow))| {
            let (e0, s0) = before.rules.get(rule).copied().unwrap_or_default();
            (rule, enforce - e0, shadow - s0, enforce, shadow)
        })
        .collect();
    rules.sort_by(|a, b| (b.1 + b.2, b.3 + b.4).cmp(&(a.1 + a.2, a.3 + a.4)).then(a.0.cmp(b.0)));
    let _ = writeln!(out, "\n{:<34}{:>9}{:>11}{:>12}{:>12}", "top rules", "last 1s", "shadow 1s", "total", "shadow");
    for (rule, enforce, shadow, total, shadow_total) in rules.iter().take(12) {
        let _ = writeln!(out, "{rule:<34}{enforce:>9}{shadow:>11}{total:>12}{shadow_total:>12}");
    }
    out
}

/// Feeds simulated traffic at `options.rate` through the shared feed
/// ([`crate::tools::feed`]: a full queue waits, never drops), plus one
/// undecodable message every 3 seconds' worth of events to show the
/// dead-letter path.
async fn produce(brokers: String, options: DemoOptions, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let now_ms = crate::clock::now_ms();
    let config = SimConfig {
        seed: options.seed,
        rate_per_sec: options.rate,
        start_ms: now_ms,
        live_shows: SimConfig::shows_for_rate(options.rate),
        ..SimConfig::default()
    };
    let feed_options = FeedOptions {
        pace: Pace::PerSecond(options.rate),
        encodings: Encodings::PerTopic(encoding_of),
        undecodable_every: Some(((options.rate * 3.0) as u64).max(1)),
    };
    let report = feed(&producer_config(&brokers), &feed_options, Simulator::new(config), stop, |_| Ok(())).await?;
    tracing::debug!(
        events = report.events,
        undecodable = report.undecodable,
        queue_full_waits = report.queue_full_waits,
        "demo producer stopped"
    );
    Ok(())
}
