//! `gavel sim`: simulated marketplace traffic with labelled fraud, to a
//! recording (JSON Lines or length-delimited protobuf, gavel-recording's
//! formats) with a ground-truth file beside it, or to Kafka at a steady
//! rate through the feed ([`super::feed`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use gavel_model::event_time_ms;
use gavel_recording::FileFormat;
use gavel_sim::{SimConfig, SimEvent, Simulator, Timeline, write_truth_line};

use super::feed::{self, Encodings, FeedOptions, Pace};
use crate::backtest::file_format;

/// `gavel sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Events to generate; with `--brokers`, 0 sends until Ctrl-C.
    #[arg(long, default_value_t = 1_000_000, conflicts_with = "duration")]
    pub events: u64,
    /// Marketplace time instead of a count: this much event time (`3d`,
    /// `36h`) with a daily rhythm, and abuse in episodes on its own clocks
    /// (gavel-sim's crate docs, "Marketplace time").
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "brokers")]
    pub duration: Option<std::time::Duration>,
    /// Events per second of event time (and, to Kafka, of wall-clock time);
    /// with `--duration`, normal events per second on the day's average.
    /// [default: 5000, or 20 with `--duration`]
    #[arg(long)]
    pub rate: Option<f64>,
    /// With `--duration`, abuse episodes each scenario starts a day, on
    /// average.
    #[arg(long, default_value_t = 4.0, requires = "duration")]
    pub episodes_per_day: f64,
    /// Seed: the same seed and options give the same events.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Multiply every fraud scenario's share of traffic by this.
    #[arg(long, default_value_t = 1.0)]
    pub fraud_scale: f64,
    /// Write the events to this file.
    #[arg(long, required_unless_present = "brokers", conflicts_with = "brokers")]
    pub out: Option<PathBuf>,
    /// The file's format; by default from its name (`.jsonl` → JSON Lines, else protobuf).
    #[arg(long, value_parser = file_format())]
    pub format: Option<FileFormat>,
    /// Write the ground truth (which events belong to which scenario) here, as JSON Lines.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Send to these Kafka brokers instead, each event to its `marketplace.*` topic.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Encoding of the messages sent to Kafka.
    #[arg(long, value_parser = file_format(), default_value = "protobuf")]
    pub encoding: FileFormat,
}

/// `--rate`'s default: the compressed timeline's busy marketplace.
const COMPRESSED_RATE: f64 = 5_000.0;
/// `--rate`'s default with `--duration`: a smaller marketplace, so that
/// days of it are a few million events.
const DAYS_RATE: f64 = 20.0;

/// Runs `gavel sim`.
pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    let rate = args.rate.unwrap_or(if args.duration.is_some() { DAYS_RATE } else { COMPRESSED_RATE });
    anyhow::ensure!(rate > 0.0, "--rate must be positive");
    anyhow::ensure!(args.fraud_scale >= 0.0, "--fraud-scale must not be negative");
    anyhow::ensure!(args.episodes_per_day >= 0.0, "--episodes-per-day must not be negative");
    let mut config = SimConfig {
        seed: args.seed,
        rate_per_sec: rate,
        live_shows: SimConfig::shows_for_rate(rate),
        episodes_per_day: args.episodes_per_day,
        ..SimConfig::default()
    };
    if args.duration.is_some() {
        config.timeline = Timeline::Days;
    }
    // Event time at which a `--duration` run stops.
    let end_ms = args.duration.map(|d| config.start_ms.saturating_add(d.as_millis() as i64));
    config.scale_fraud(args.fraud_scale);
    let mut truth = args.truth.as_deref().map(create).transpose()?;
    let mut write_truth = |event: &SimEvent| -> anyhow::Result<()> {
        if let Some(truth) = &mut truth {
            write_truth_line(truth, event)?;
        }
        Ok(())
    };
    let started = Instant::now();
    let written = match (&args.out, &args.brokers) {
        (Some(path), _) => {
            let format = args.format.unwrap_or_else(|| FileFormat::of(path));
            let mut out = create(path)?;
            let mut n = 0;
            let limit = if end_ms.is_some() { usize::MAX } else { args.events as usize };
            let before_end =
                |sim: &SimEvent| end_ms.is_none_or(|end| event_time_ms(&sim.event).is_some_and(|t| t < end));
            for sim in Simulator::new(config).take(limit).take_while(before_end) {
                format.write(&mut out, &sim.event)?;
                write_truth(&sim)?;
                n += 1;
            }
            out.flush()?;
            n
        }
        (None, Some(brokers)) => {
            // Live traffic carries live times.
            config.start_ms = crate::clock::now_ms();
            let mut producer = feed::producer_config(brokers);
            producer.set("enable.idempotence", "true");
            let options = FeedOptions {
                pace: Pace::PerSecond(rate),
                encodings: Encodings::All(args.encoding.encoding()),
                undecodable_every: None,
            };
            // 0 sends until Ctrl-C: usize::MAX events is as good as endless.
            let limit = if args.events == 0 { usize::MAX } else { args.events as usize };
            let events = Simulator::new(config).take(limit);
            let stop = crate::runtime::termination_signal();
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(feed::feed(&producer, &options, events, stop, &mut write_truth))?.events
        }
        (None, None) => return Err(crate::error::bad_input("give --out FILE or --brokers HOSTS")),
    };
    if let Some(truth) = &mut truth {
        truth.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("wrote {written} events in {secs:.2} s ({:.0} events/s)", written as f64 / secs.max(1e-9));
    Ok(())
}

/// Creates `path` for buffered writing, naming it in the error.
fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}
