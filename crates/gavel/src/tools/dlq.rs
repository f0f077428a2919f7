//! `gavel dlq republish`: sends dead-lettered messages back to their source
//! topics once their cause is fixed, or, with `--dry-run`, says what it
//! would send.
//!
//! It reads the dead-letter topic from a start (the beginning,
//! `--from-offset` or `--since`) up to its ends when the run starts
//! (`gavel_kafka::DeadLetterReader`), selects records by source topic and
//! reason, and re-publishes each (`gavel_kafka::Republisher`): to its
//! source topic and partition, or to `--to` by key. References (the
//! original was too large to copy) and records gavel did not write are
//! reported and skipped. A destination topic is checked before anything
//! is produced to it, so a typo fails fast instead of creating a topic or
//! waiting for delivery timeouts.
//!
//! The report names topics, partitions, offsets, sizes and reasons only,
//! never key or payload bytes: they may hold chat text or card data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use gavel_kafka::{DeadLetter, DeadLetterReader, FailedDelivery, ReadFrom, Republisher};

use crate::error::bad_input;
use crate::runtime::config::GavelConfig;

/// `gavel dlq republish` arguments.
#[derive(Debug, clap::Args)]
pub struct RepublishArgs {
    /// TOML config file: brokers, client options (TLS, SASL) and the
    /// dead-letter topic (`outputs.dlq`). `GAVEL__…` variables apply.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Brokers, instead of the config's `kafka.brokers`.
    #[arg(long)]
    pub brokers: Option<String>,
    /// The dead-letter topic to read, instead of the config's `outputs.dlq`.
    #[arg(long)]
    pub dlq: Option<String>,
    /// Read and report only; produce nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only records dead-lettered from this source topic (repeat for
    /// several).
    #[arg(long)]
    pub source_topic: Vec<String>,
    /// Only records whose reason (`gavel.error`) contains this text (case
    /// sensitive).
    #[arg(long)]
    pub reason_contains: Option<String>,
    /// Where to start: `N` on every partition, or `P:N` on partition P
    /// (repeat for several; unnamed partitions start at a plain `N`, else
    /// at the beginning). A run prints the flags that resume after it.
    #[arg(long, value_parser = parse_from_offset, conflicts_with = "since")]
    pub from_offset: Vec<FromOffset>,
    /// Start at the first record dead-lettered at or after TIME: UTC in
    /// RFC 3339 (`2026-11-23T10:00:00Z`) or an age (`6h`, `2days`).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<Since>,
    /// Send every selected record to this topic (by key) instead of its
    /// source topic and partition.
    #[arg(long)]
    pub to: Option<String>,
    /// How long to wait for the brokers: for each metadata answer, for a
    /// fetch that brings nothing, and for each delivery (unless
    /// `message.timeout.ms` is configured).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// A `--from-offset` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromOffset {
    /// `N`: every partition not named otherwise.
    All(i64),
    /// `P:N`: partition P.
    Partition(i32, i64),
}

fn parse_from_offset(text: &str) -> Result<FromOffset, String> {
    let offset = |t: &str| match t.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(format!("`{t}` is not an offset (a whole number, 0 or more)")),
    };
    match text.split_once(':') {
        None => Ok(FromOffset::All(offset(text)?)),
        Some((partition, n)) => {
            let partition = partition
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| format!("`{partition}` is not a partition number"))?;
            Ok(FromOffset::Partition(partition, offset(n)?))
        }
    }
}

/// A `--since` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// A point in time, milliseconds since the epoch.
    At(i64),
    /// This long before the run starts.
    Ago(Duration),
}

fn parse_since(text: &str) -> Result<Since, String> {
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        let ms = time.duration_since(UNIX_EPOCH).map_err(|_| format!("`{text}` is before 1970"))?.as_millis();
        return Ok(Since::At(ms as i64));
    }
    humantime::parse_duration(text)
        .map(Since::Ago)
        .map_err(|_| format!("`{text}` is neither a UTC time (2026-11-23T10:00:00Z) nor an age (6h)"))
}

/// Where the read starts, from the flags.
fn read_from(args: &RepublishArgs) -> anyhow::Result<ReadFrom> {
    if let Some(since) = args.since {
        let ms = match since {
            Since::At(ms) => ms,
            Since::Ago(age) => crate::clock::now_ms().saturating_sub(age.as_millis() as i64),
        };
        return Ok(ReadFrom::Since(ms));
    }
    if args.from_offset.is_empty() {
        return Ok(ReadFrom::Beginning);
    }
    let mut partitions = BTreeMap::new();
    let mut others = None;
    for from in &args.from_offset {
        match *from {
            FromOffset::All(n) if others.is_some_and(|o| o != n) => {
                return Err(bad_input("--from-offset N given twice with different offsets"));
            }
            FromOffset::All(n) => others = Some(n),
            FromOffset::Partition(p, n) => {
                if partitions.insert(p, n).is_some_and(|o| o != n) {
                    return Err(bad_input(format!("--from-offset names partition {p} twice")));
                }
            }
        }
    }
    Ok(ReadFrom::Offsets { partitions, others })
}

/// A reference skipped: where the original is, while retained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Where the reference itself is: dead-letter partition and offset.
    pub at: (i32, i64),
    /// Source topic.
    pub topic: String,
    /// Source partition, if the header says.
    pub partition: Option<i32>,
    /// Source offset, if the header says.
    pub offset: Option<i64>,
    /// The original's size in bytes.
    pub size: u64,
    /// Why it was dead-lettered.
    pub reason: String,
}

/// What a run did, or (dry) would do.
#[derive(Debug, Default)]
pub struct Report {
    /// The dead-letter topic.
    pub dlq: String,
    /// Nothing was produced.
    pub dry_run: bool,
    /// Dead-letter records read.
    pub read: u64,
    /// Records left out by `--source-topic` / `--reason-contains`.
    pub left_out: u64,
    /// Selected records re-published (or, dry, that would be), by
    /// destination topic: count and bytes (key and value).
    pub by_topic: BTreeMap<String, (u64, u64)>,
    /// Those records by reason.
    pub by_reason: BTreeMap<String, u64>,
    /// Destinations the brokers do not know (a dry run goes on; a run stops).
    pub missing: Vec<String>,
    /// References skipped.
    pub references: Vec<Reference>,
    /// Records without `gavel.source.topic` (not written by gavel), skipped.
    pub foreign: u64,
    /// Per partition: the first offset read and the last offset handled.
    pub read_range: BTreeMap<i32, (i64, i64)>,
    /// Per partition: where this run started (for partitions with nothing read).
    pub starts: BTreeMap<i32, i64>,
    /// Records sent whose delivery succeeded.
    pub delivered: u64,
    /// Deliveries that failed.
    pub failed: Vec<FailedDelivery>,
}

impl Report {
    /// Records selected for re-publishing.
    pub fn selected(&self) -> u64 {
        self.by_topic.values().map(|(n, _)| n).sum()
    }

    /// Where a later run resumes, per partition: after the last record
    /// handled, or at the first failed delivery, whichever is earlier.
    pub fn resume(&self) -> BTreeMap<i32, i64> {
        let mut resume: BTreeMap<i32, i64> = self.starts.clone();
        for (&p, &(_, last)) in &self.read_range {
            resume.insert(p, last + 1);
        }
        for failed in &self.failed {
            let at = resume.entry(failed.partition).or_insert(failed.offset);
            *at = (*at).min(failed.offset);
        }
        resume
    }

    /// The report, as printed.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let dlq = &self.dlq;
        if self.dry_run {
            let _ = writeln!(out, "dry run: nothing produced");
        }
        let _ = writeln!(out, "read {} record(s) from {dlq}, up to its end when the run started", self.read);
        let verb = if self.dry_run { "would re-publish" } else { "re-published" };
        let bytes: u64 = self.by_topic.values().map(|(_, b)| b).sum();
        if self.dry_run {
            let _ = writeln!(out, "{verb} {} ({bytes} bytes)", self.selected());
        } else {
            let _ = writeln!(
                out,
                "{verb} {} of {} selected ({bytes} bytes); {} delivery(ies) failed",
                self.delivered,
                self.selected(),
                self.failed.len()
            );
        }
        for (topic, (count, bytes)) in &self.by_topic {
            let missing = if self.missing.contains(topic) { " (topic does not exist: a run stops here)" } else { "" };
            let _ = writeln!(out, "  to {topic}: {count} ({bytes} bytes){missing}");
        }
        let mut reasons: Vec<(&String, &u64)> = self.by_reason.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, count) in reasons {
            let _ = writeln!(out, "  reason {reason:?}: {count}");
        }
        if self.left_out > 0 {
            let _ = writeln!(out, "left out by the filters: {}", self.left_out);
        }
        if !self.references.is_empty() {
            let _ = writeln!(
                out,
                "skipped {} reference(s): the original was too large to copy; read it from its source topic while \
                 retained",
                self.references.len()
            );
            let unknown = |n: Option<i64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
            for r in &self.references {
                let _ = writeln!(
                    out,
                    "  {}/{}/{} ({} bytes): {:?} [{dlq}/{}/{}]",
                    r.topic,
                    unknown(r.partition.map(i64::from)),
                    unknown(r.offset),
                    r.size,
                    r.reason,
                    r.at.0,
                    r.at.1
                );
            }
        }
        if self.foreign > 0 {
            let _ =
                writeln!(out, "skipped {} record(s) without gavel.source.topic (not written by gavel)", self.foreign);
        }
        for failed in &self.failed {
            let _ = writeln!(out, "failed {dlq}/{}/{}: {}", failed.partition, failed.offset, failed.error);
        }
        for (partition, (first, last)) in &self.read_range {
            let _ = writeln!(out, "last offset read on {dlq}/{partition}: {last} (read from {first})");
        }
        let resume = self.resume();
        if !resume.is_empty() {
            let flags: Vec<String> = resume.iter().map(|(p, o)| format!("--from-offset {p}:{o}")).collect();
            let _ = writeln!(out, "resume with {}", flags.join(" "));
        }
        out
    }
}

/// Whether the filters select `letter`.
fn selected(args: &RepublishArgs, source: &str, letter: &DeadLetter<'_>) -> bool {
    (args.source_topic.is_empty() || args.source_topic.iter().any(|t| t == source))
        && args
            .reason_contains
            .as_ref()
            .is_none_or(|s| letter.reason.as_deref().unwrap_or_default().contains(s.as_str()))
}

/// Runs the command and prints its report; fails (after printing it) if
/// the read stopped early or any delivery failed.
pub fn run(args: &RepublishArgs) -> anyhow::Result<()> {
    let config = GavelConfig::load_client(args.config.as_deref())?;
    let mut settings = config.kafka_settings();
    if let Some(brokers) = &args.brokers {
        settings.brokers.clone_from(brokers);
    }
    let dlq = args.dlq.clone().unwrap_or_else(|| settings.outputs.dlq.clone());
    if args.to.as_deref() == Some(dlq.as_str()) {
        return Err(bad_input(format!("--to {dlq} is the dead-letter topic itself")));
    }
    let from = read_from(args)?;
    let brokers = settings.brokers.clone();
    let timeout = args.timeout;
    let where_ = || format!("reading {dlq} from {brokers} (waiting up to {})", humantime::format_duration(timeout));
    let reader = DeadLetterReader::open(&settings, &dlq, &from, timeout).with_context(where_)?;
    let mut republisher = match args.dry_run {
        true => None,
        false => Some(Republisher::new(&settings, &dlq, timeout).context("creating the producer")?),
    };
    let mut report = Report { dlq: dlq.clone(), dry_run: args.dry_run, ..Report::default() };
    report.starts = reader.ranges().iter().map(|r| (r.partition, r.start)).collect();
    // Partition counts of the destinations met so far (`None`: no such topic).
    let mut destinations: BTreeMap<String, Option<usize>> = BTreeMap::new();
    let mut stopped: Option<anyhow::Error> = None;
    let read = reader.read(&mut |letter| {
        let step = handle(args, &reader, &mut destinations, republisher.as_mut(), &mut report, letter);
        match step {
            Ok(()) => {
                report.read += 1;
                report.read_range.entry(letter.partition).or_insert((letter.offset, letter.offset)).1 = letter.offset;
                ControlFlow::Continue(())
            }
            Err(e) => {
                stopped = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(republisher) = republisher {
        (report.delivered, report.failed) = republisher.finish();
    }
    print!("{}", report.render());
    read.with_context(where_)?;
    if let Some(e) = stopped {
        return Err(e);
    }
    if let Some(first) = report.failed.first() {
        let (failed, sent) = (report.failed.len(), report.selected());
        return Err(clone_error(&first.error))
            .context(format!("{failed} of {sent} deliveries failed (each is listed above; resume as printed)"));
    }
    Ok(())
}

/// One record: counted, and sent unless this is a dry run.
fn handle(
    args: &RepublishArgs,
    reader: &DeadLetterReader,
    destinations: &mut BTreeMap<String, Option<usize>>,
    republisher: Option<&mut Republisher>,
    report: &mut Report,
    letter: &DeadLetter<'_>,
) -> anyhow::Result<()> {
    let Some(source) = letter.source_topic.as_deref() else {
        report.foreign += 1;
        return Ok(());
    };
    if !selected(args, source, letter) {
        report.left_out += 1;
        return Ok(());
    }
    let reason = letter.reason.clone().unwrap_or_default();
    if letter.is_reference() {
        report.references.push(Reference {
            at: (letter.partition, letter.offset),
            topic: source.to_string(),
            partition: letter.source_partition,
            offset: letter.source_offset,
            size: letter.source_size.unwrap_or_default(),
            reason,
        });
        return Ok(());
    }
    let to = args.to.as_deref().unwrap_or(source);
    let partitions = match destinations.get(to) {
        Some(known) => *known,
        None => {
            let found = reader.partitions_of(to).with_context(|| format!("looking up topic {to}"))?;
            destinations.insert(to.to_string(), found);
            found
        }
    };
    if partitions.is_none() {
        if !report.dry_run {
            return Err(bad_input(format!(
                "topic {to} does not exist (the destination of {}/{}/{}); nothing was sent to it",
                report.dlq, letter.partition, letter.offset
            )));
        }
        if !report.missing.iter().any(|m| m == to) {
            report.missing.push(to.to_string());
        }
    }
    // Back to the partition it was read from, so that a key's messages stay
    // together whatever partitioner the original producer used.
    let partition = match (&args.to, letter.source_partition, partitions) {
        (None, Some(p), Some(count)) if p >= 0 && (p as usize) < count => Some(p),
        _ => None,
    };
    if let Some(republisher) = republisher {
        republisher.send(letter, to, partition);
    }
    let entry = report.by_topic.entry(to.to_string()).or_default();
    entry.0 += 1;
    entry.1 += (letter.payload.len() + letter.key.map_or(0, <[u8]>::len)) as u64;
    *report.by_reason.entry(reason).or_default() += 1;
    Ok(())
}

/// A copy of a delivery error for the command's own error (the report
/// keeps the original): the rdkafka error inside, so `classify` sees it.
fn clone_error(error: &gavel_kafka::KafkaError) -> anyhow::Error {
    use std::error::Error as _;
    match error.source().and_then(|s| s.downcast_ref::<rdkafka::error::KafkaError>()) {
        Some(rd) => anyhow::Error::new(rd.clone()),
        None => anyhow::anyhow!("{error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_offsets_name_every_partition_or_one() {
        assert_eq!(parse_from_offset("12"), Ok(FromOffset::All(12)));
        assert_eq!(parse_from_offset("3:40"), Ok(FromOffset::Partition(3, 40)));
        assert!(parse_from_offset("-1").is_err());
        assert!(parse_from_offset("x:1").is_err());
        assert!(parse_from_offset("1:").is_err());
    }

    #[test]
    fn since_is_a_utc_time_or_an_age() {
        assert_eq!(parse_since("1970-01-01T00:00:01Z"), Ok(Since::At(1_000)));
        assert_eq!(parse_since("6h"), Ok(Since::Ago(Duration::from_secs(6 * 3600))));
        assert!(parse_since("yesterday-ish").is_err());
    }

    #[test]
    fn a_run_resumes_after_what_it_read_or_at_its_first_failure() {
        let mut report = Report {
            starts: BTreeMap::from([(0, 0), (1, 5), (2, 9)]),
            read_range: BTreeMap::from([(0, (0, 6)), (1, (5, 20))]),
            ..Report::default()
        };
        report.failed.push(FailedDelivery {
            partition: 1,
            offset: 8,
            error: gavel_kafka::KafkaError::Client(rdkafka::error::KafkaError::Canceled),
        });
        assert_eq!(report.resume(), BTreeMap::from([(0, 7), (1, 8), (2, 9)]));
        let text = report.render();
        assert!(text.contains("resume with --from-offset 0:7 --from-offset 1:8 --from-offset 2:9"), "{text}");
    }
}
