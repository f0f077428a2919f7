//! Re-publishing dead-lettered messages to where they came from, once the
//! cause (a producer bug, a wrong topic encoding) is fixed: for
//! `gavel dlq republish`.
//!
//! The dead-letter topic is read outside any consumer group, from a start
//! offset up to the high watermarks taken when the run starts, and nothing
//! is committed. Each selected record goes back to its source topic (the
//! `gavel.source.topic` header) with its original key, value and
//! timestamp, plus `gavel.republished.from` naming the dead-letter record.
//! A *reference* (an empty value with `gavel.source.size`: the original
//! was too large to copy) cannot be re-published from here; it is reported
//! with its source coordinates instead. Payload bytes are never printed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};

use crate::error::{KafkaError, Result};
use crate::settings::KafkaSettings;

/// The header a re-published record carries: `DLQTOPIC/PARTITION/OFFSET`.
pub const REPUBLISHED_FROM: &str = "gavel.republished.from";

/// What to re-publish.
#[derive(Debug, Clone, Default)]
pub struct Republish {
    /// Read and report only; produce nothing.
    pub dry_run: bool,
    /// Only records from this source topic.
    pub source_topic: Option<String>,
    /// Only records whose reason (`gavel.error`) contains this.
    pub reason_contains: Option<String>,
    /// Start at this offset on every dead-letter partition (default: the
    /// earliest retained).
    pub from_offset: Option<i64>,
    /// Send to this topic instead of each record's source topic.
    pub to: Option<String>,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Republished {
    /// Dead-letter records read.
    pub read: u64,
    /// Records selected and re-published (or, dry, that would be), by
    /// destination topic.
    pub by_topic: BTreeMap<String, u64>,
    /// Selected records by reason.
    pub by_reason: BTreeMap<String, u64>,
    /// References skipped: the originals were too large to copy.
    pub references: Vec<Reference>,
    /// Records without a `gavel.source.topic` header (not gavel's), skipped.
    pub foreign: u64,
    /// The last dead-letter offset read, per partition: where a later run
    /// resumes (`--from-offset` one past it).
    pub last_offsets: BTreeMap<i32, i64>,
}

/// A dead-letter reference: where the original is (while retained).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: String,
    /// Source offset.
    pub offset: String,
    /// The original's size in bytes.
    pub size: String,
    /// Why it was dead-lettered.
    pub reason: String,
}

/// Reads the dead-letter topic and re-publishes what `plan` selects.
/// Blocking; waits for every delivery and fails if any fails.
pub fn republish(settings: &KafkaSettings, plan: &Republish) -> Result<Republished> {
    let timeout = settings.warmup_timeout;
    let dlq = settings.outputs.dlq.as_str();
    let mut config = settings.consumer_config();
    config.set("enable.auto.commit", "false").set("group.id", format!("{}.dlq-republish", settings.group_id));
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(Some(dlq), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == dlq && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(KafkaError::UnknownTopic(dlq.to_string()));
    }
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        let (low, high) = consumer.fetch_watermarks(dlq, partition, timeout)?;
        let start = plan.from_offset.map_or(low, |from| from.max(low));
        if start < high {
            assignment.add_partition_offset(dlq, partition, Offset::Offset(start))?;
            ends.insert(partition, high);
        }
    }
    let mut report = Republished::default();
    if ends.is_empty() {
        return Ok(report);
    }
    consumer.assign(&assignment)?;
    let producer: Option<FutureProducer> = if plan.dry_run { None } else { Some(settings.producer_config().create()?) };
    let mut deliveries = Vec::new();
    let mut quiet_since = Instant::now();
    while !ends.is_empty() {
        let Some(polled) = consumer.poll(Duration::from_millis(200)) else {
            if quiet_since.elapsed() > timeout {
                return Err(KafkaError::consume(rdkafka::types::RDKafkaErrorCode::RequestTimedOut));
            }
            continue;
        };
        quiet_since = Instant::now();
        let message = polled.map_err(KafkaError::Consume)?;
        let partition = message.partition();
        let Some(&end) = ends.get(&partition) else { continue };
        if message.offset() >= end {
            ends.remove(&partition);
            continue;
        }
        report.read += 1;
        report.last_offsets.insert(partition, message.offset());
        if message.offset() + 1 >= end {
            ends.remove(&partition);
        }
        if let Some(record) = select(&message, plan, &mut report)
            && let Some(producer) = &producer
        {
            let from = format!("{dlq}/{partition}/{}", message.offset());
            let headers = OwnedHeaders::new().insert(Header { key: REPUBLISHED_FROM, value: Some(&from) });
            let mut out = FutureRecord::to(&record).payload(message.payload().unwrap_or_default()).headers(headers);
            if let Some(key) = message.key() {
                out = out.key(key);
            }
            if let Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) = message.timestamp() {
                out = out.timestamp(ms);
            }
            deliveries.push(producer.send_result(out).map_err(|(e, _)| KafkaError::Client(e))?);
        }
    }
    for delivery in deliveries {
        let outcome = futures::executor::block_on(delivery)
            .map_err(|_| KafkaError::Client(rdkafka::error::KafkaError::Canceled))?;
        outcome.map_err(|(e, _)| KafkaError::Client(e))?;
    }
    Ok(report)
}

/// The destination of `message` if `plan` selects it, counting it in
/// `report` either way it goes.
fn select(message: &BorrowedMessage<'_>, plan: &Republish, report: &mut Republished) -> Option<String> {
    let header = |name: &str| {
        message.headers().and_then(|h| {
            h.iter().find(|h| h.key == name).map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
        })
    };
    let Some(source) = header("gavel.source.topic") else {
        report.foreign += 1;
        return None;
    };
    let reason = header("gavel.error").unwrap_or_default();
    if plan.source_topic.as_ref().is_some_and(|t| *t != source)
        || plan.reason_contains.as_ref().is_some_and(|s| !reason.contains(s.as_str()))
    {
        return None;
    }
    if message.payload().is_none_or(<[u8]>::is_empty)
        && let Some(size) = header("gavel.source.size")
    {
        let field = |name| header(name).unwrap_or_default();
        let (partition, offset) = (field("gavel.source.partition"), field("gavel.source.offset"));
        report.references.push(Reference { topic: source, partition, offset, size, reason });
        return None;
    }
    let destination = plan.to.clone().unwrap_or(source);
    *report.by_topic.entry(destination.clone()).or_default() += 1;
    *report.by_reason.entry(reason).or_default() += 1;
    Some(destination)
}
