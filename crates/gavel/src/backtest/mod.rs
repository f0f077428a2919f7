//! `gavel replay`: the backtest. Recorded events run through the same
//! engine code as production, in event-time order, with each decision
//! stamped at its event's time, so the same input and pack always give the
//! same report, byte for byte. With a baseline pack the two run side by
//! side over the same events and the report says what changed; with a
//! ground-truth file it says how well each scenario is caught.
//!
//! An event "is flagged" when gavel would publish a signal for it: an
//! enforcing rule with a non-zero score fired, or an action was requested.
//!
//! Start at [`run`]. The pieces: `recording.rs` reads the events and
//! orders them, `replay.rs` runs them through the packs and tallies,
//! `diff.rs` compares with the baseline, `score.rs` scores against ground
//! truth, `report.rs` holds the report and renders it.

mod diff;
mod recording;
mod replay;
mod report;
mod score;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use gavel_recording::FileFormat;

pub use recording::{Recording, read_file};
pub use replay::replay;
pub use report::{Detection, Diff, Example, LookAlikeScore, PackId, Report, RuleHits, RuleScore, ScenarioScore};
pub use score::Truth;

/// `gavel replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Recorded events: JSON Lines (`.jsonl`) or length-delimited protobuf
    /// (other names; see `--format`).
    #[arg(long, conflicts_with = "topic", required_unless_present = "topic")]
    pub input: Option<PathBuf>,
    /// Read this Kafka topic from its beginning to its current end instead.
    #[arg(long)]
    pub topic: Option<String>,
    /// Brokers for `--topic`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// The input's format; by default from the file name, protobuf for a topic.
    #[arg(long, value_parser = file_format())]
    pub format: Option<FileFormat>,
    /// The pack directory to replay.
    #[arg(long)]
    pub rules: PathBuf,
    /// A second pack directory to compare with, over the same events.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Ground truth (JSON Lines from `gavel sim --truth`): adds precision
    /// and recall per scenario and per rule.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Print the report as JSON (stable: same input and packs, same bytes).
    #[arg(long)]
    pub json: bool,
}

/// Parses a [`FileFormat`] flag (`--format`, `gavel sim --encoding`): its
/// names, with their descriptions in `--help`.
pub fn file_format() -> impl TypedValueParser<Value = FileFormat> {
    let names = FileFormat::ALL.map(|f| PossibleValue::new(f.as_str()).help(f.description()));
    PossibleValuesParser::new(names).try_map(|name| name.parse::<FileFormat>())
}

/// Runs `gavel replay`: prints the report on stdout, progress and the
/// replay rate on stderr.
pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let pack = crate::tools::pack::load(&args.rules)?;
    let baseline = args.baseline.as_deref().map(crate::tools::pack::load).transpose()?;
    let truth = match &args.truth {
        Some(path) => Some(Truth::read(recording::open(path)?).with_context(|| path.display().to_string())?),
        None => None,
    };
    let read_started = Instant::now();
    let recording = match (&args.input, &args.topic) {
        (Some(path), _) => read_file(path, args.format.unwrap_or_else(|| FileFormat::of(path)))?,
        (None, Some(topic)) => {
            recording::read_kafka(&args.brokers, topic, args.format.unwrap_or(FileFormat::Protobuf))?
        }
        (None, None) => anyhow::bail!("give --input FILE or --topic TOPIC"),
    };
    let read_secs = read_started.elapsed().as_secs_f64();
    let bar = indicatif::ProgressBar::new(recording.len() as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events  {per_sec}  eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let report = replay(&recording, pack, baseline, truth.as_ref(), &mut |done| bar.set_position(done));
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    let packs = if args.baseline.is_some() { 2 } else { 1 };
    eprintln!(
        "read {} events in {read_secs:.2} s; replayed them through {packs} pack(s) in {secs:.2} s ({:.0} events/s)",
        recording.len(),
        recording.len() as f64 / secs.max(1e-9)
    );
    Ok(())
}
