//! `gavel sim`: simulated marketplace traffic with labelled fraud, to a
//! file (JSON Lines or length-delimited protobuf) with a ground-truth file
//! beside it, or to Kafka at a steady rate.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use gavel_model::{encode_json, encode_protobuf};
use gavel_sim::{SimConfig, Simulator, output, topic_for};

use crate::backtest::FileFormat;

/// `gavel sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Events to generate; with `--brokers`, 0 sends until Ctrl-C.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events per second of event time (and, to Kafka, of wall-clock time).
    #[arg(long, default_value_t = 5_000.0)]
    pub rate: f64,
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
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// Write the ground truth (which events belong to which scenario) here, as JSON Lines.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Send to these Kafka brokers instead, each event to its `marketplace.*` topic.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Encoding of the messages sent to Kafka.
    #[arg(long, value_enum, default_value = "protobuf")]
    pub encoding: FileFormat,
}

/// Runs `gavel sim`.
pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    anyhow::ensure!(args.fraud_scale >= 0.0, "--fraud-scale must not be negative");
    let mut config = SimConfig {
        seed: args.seed,
        rate_per_sec: args.rate,
        live_shows: SimConfig::shows_for_rate(args.rate),
        ..SimConfig::default()
    };
    config.scale_fraud(args.fraud_scale);
    let mut truth = match &args.truth {
        Some(path) => {
            Some(BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?))
        }
        None => None,
    };
    let started = Instant::now();
    let written = match (&args.out, &args.brokers) {
        (Some(path), _) => {
            let format = args.format.unwrap_or_else(|| FileFormat::of(path));
            let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let mut n = 0;
            for sim in Simulator::new(config).take(args.events as usize) {
                match format {
                    FileFormat::Jsonl => output::write_jsonl(&mut out, &sim.event)?,
                    FileFormat::Protobuf => output::write_protobuf_delimited(&mut out, &sim.event)?,
                }
                if let Some(truth) = &mut truth {
                    output::write_truth_line(truth, &sim)?;
                }
                n += 1;
            }
            out.flush()?;
            n
        }
        (None, Some(brokers)) => {
            // Live traffic carries live times.
            config.start_ms = crate::clock::now_ms();
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(to_kafka(brokers, config, args, truth.as_mut()))?
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

/// Sends to Kafka at `args.rate` events per second until `args.events` (or Ctrl-C).
async fn to_kafka(
    brokers: &str,
    config: SimConfig,
    args: &SimArgs,
    mut truth: Option<&mut BufWriter<std::fs::File>>,
) -> anyhow::Result<u64> {
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()?;
    let mut sim = Simulator::new(config);
    let started = Instant::now();
    let interrupted = crate::runtime::termination_signal();
    tokio::pin!(interrupted);
    let mut sent = 0u64;
    let mut pending = Vec::new();
    while args.events == 0 || sent < args.events {
        // Batches of 10 ms worth, on schedule.
        let due = started + Duration::from_secs_f64(sent as f64 / args.rate);
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {}
            () = &mut interrupted => break,
        }
        let batch = ((args.rate / 100.0).ceil() as u64).max(1);
        for sim_event in sim.by_ref().take(batch as usize) {
            let event = &sim_event.event;
            let topic = topic_for(event.kind().context("simulated events have a payload")?);
            let payload = match args.encoding {
                FileFormat::Protobuf => encode_protobuf(event),
                FileFormat::Jsonl => encode_json(event)?,
            };
            let mut record = rdkafka::producer::FutureRecord::to(topic).key(event.user_id.as_bytes()).payload(&payload);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => break pending.push(delivery),
                    Err((_, back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            if let Some(truth) = truth.as_deref_mut() {
                output::write_truth_line(truth, &sim_event)?;
            }
            sent += 1;
        }
        if pending.len() > 10_000 {
            for delivery in pending.drain(..) {
                delivery.await.context("delivery canceled")?.map_err(|(e, _)| e)?;
            }
        }
    }
    for delivery in pending {
        delivery.await.context("delivery canceled")?.map_err(|(e, _)| e)?;
    }
    Ok(sent)
}
