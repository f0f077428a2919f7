//! `gavel dlq republish`: sends dead-lettered messages back to their source
//! topics once their cause is fixed (see `gavel_kafka::republish`), or,
//! with `--dry-run`, says what it would send. The report names topics,
//! partitions, offsets, sizes and reasons only, never payload bytes.

use std::fmt::Write as _;
use std::path::PathBuf;

use gavel_kafka::{Republish, Republished};

use crate::runtime::config::GavelConfig;

/// `gavel dlq republish` arguments.
#[derive(Debug, clap::Args)]
pub struct RepublishArgs {
    /// TOML config file: brokers, client options and the dead-letter topic.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Read and report only; produce nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only records dead-lettered from this source topic.
    #[arg(long)]
    pub source_topic: Option<String>,
    /// Only records whose reason contains this text.
    #[arg(long)]
    pub reason_contains: Option<String>,
    /// Start at this offset on every dead-letter partition (a previous
    /// run's last offset plus one); default: the earliest retained.
    #[arg(long)]
    pub from_offset: Option<i64>,
    /// Send to this topic instead of each record's source topic.
    #[arg(long)]
    pub to: Option<String>,
}

/// Runs the command and prints its report.
pub fn run(args: &RepublishArgs) -> anyhow::Result<()> {
    let config = GavelConfig::load(args.config.as_deref())?;
    let plan = Republish {
        dry_run: args.dry_run,
        source_topic: args.source_topic.clone(),
        reason_contains: args.reason_contains.clone(),
        from_offset: args.from_offset,
        to: args.to.clone(),
    };
    let settings = config.kafka_settings();
    let report = gavel_kafka::republish(&settings, &plan)?;
    print!("{}", render(&settings.outputs.dlq, args.dry_run, &report));
    Ok(())
}

/// The report, as printed.
pub fn render(dlq: &str, dry_run: bool, report: &Republished) -> String {
    let mut out = String::new();
    let verb = if dry_run { "would re-publish" } else { "re-published" };
    let selected: u64 = report.by_topic.values().sum();
    let _ = writeln!(out, "read {} record(s) from {dlq}; {verb} {selected}", report.read);
    for (topic, count) in &report.by_topic {
        let _ = writeln!(out, "  to {topic}: {count}");
    }
    for (reason, count) in &report.by_reason {
        let _ = writeln!(out, "  reason {reason:?}: {count}");
    }
    if !report.references.is_empty() {
        let _ = writeln!(
            out,
            "skipped {} reference(s): the original was too large to copy; read it from its source while retained",
            report.references.len()
        );
        for r in &report.references {
            let _ = writeln!(out, "  {}/{}/{} ({} bytes): {}", r.topic, r.partition, r.offset, r.size, r.reason);
        }
    }
    if report.foreign > 0 {
        let _ = writeln!(out, "skipped {} record(s) without gavel.source.topic (not written by gavel)", report.foreign);
    }
    for (partition, offset) in &report.last_offsets {
        let _ =
            writeln!(out, "last offset read on {dlq}/{partition}: {offset} (resume with --from-offset {})", offset + 1);
    }
    out
}
