//! The dead-letter topic read back, and its records re-published: for
//! `gavel dlq republish`.
//!
//! [`DeadLetterReader`] reads the dead-letter topic's partitions from a
//! start ([`ReadFrom`]) up to the high watermarks taken when it opens, so a
//! read always ends, even while gavel keeps dead-lettering (a record
//! re-published and dead-lettered again lands beyond those ends). It
//! assigns partitions and never joins a consumer group or commits. It
//! always reads `read_committed`: a dead-letter record of an aborted
//! exactly-once transaction was written again by the retry, and reading
//! both would re-publish the message twice. A partition is done at its end
//! or where the readable records stop before it (only transaction markers
//! and aborted records follow, or a transaction still open: its records
//! are left to a later run).
//!
//! [`Republisher`] produces each chosen record with the dead-letter
//! record's key, value and Kafka timestamp through the idempotent,
//! `acks=all` producer of [`KafkaSettings::producer_config`], adding
//! [`REPUBLISHED_FROM`], and collects every delivery's result.
//!
//! Which records to re-publish, and where, is the caller's business; this
//! module never looks inside a value.

use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::contract::dead_letter::{
    ERROR, REPUBLISHED_FROM, SOURCE_ENCODING, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_SIZE, SOURCE_TOPIC,
};
use crate::error::{KafkaError, Result};
use crate::settings::KafkaSettings;

/// Deliveries outstanding, at most, before [`Republisher::send`] waits for
/// the oldest.
const MAX_PENDING: usize = 10_000;

/// Where a [`DeadLetterReader`] starts in each partition. A start below a
/// partition's low watermark (deleted by retention) starts at the low
/// watermark; one at or past the high watermark reads nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// Every partition from its low watermark.
    #[default]
    Beginning,
    /// These offsets by partition; partitions not named start at
    /// `others`, or at the beginning when that is `None`.
    Offsets {
        /// First offset to read, by partition.
        partitions: BTreeMap<i32, i64>,
        /// First offset to read in every other partition.
        others: Option<i64>,
    },
    /// The first record whose Kafka timestamp (when it was dead-lettered)
    /// is at or after this many milliseconds since the epoch.
    Since(i64),
}

/// One partition of a read: `[start, end)`, `end` being the high
/// watermark when the reader opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    /// Partition.
    pub partition: i32,
    /// First offset to read.
    pub start: i64,
    /// First offset not to read.
    pub end: i64,
}

/// A dead-letter record as read back: its own coordinates, and what its
/// headers say of the message it stands for. Key and value are borrowed
/// from the consumer's buffer.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    /// Partition in the dead-letter topic.
    pub partition: i32,
    /// Offset in the dead-letter topic.
    pub offset: i64,
    /// The dead-letter record's Kafka timestamp (when gavel wrote it).
    pub timestamp_ms: Option<i64>,
    /// The original key (none on a reference).
    pub key: Option<&'a [u8]>,
    /// The original bytes (empty on a reference).
    pub payload: &'a [u8],
    /// [`SOURCE_TOPIC`].
    pub source_topic: Option<String>,
    /// [`SOURCE_PARTITION`].
    pub source_partition: Option<i32>,
    /// [`SOURCE_OFFSET`].
    pub source_offset: Option<i64>,
    /// [`SOURCE_ENCODING`].
    pub source_encoding: Option<String>,
    /// [`SOURCE_SIZE`], on a reference.
    pub source_size: Option<u64>,
    /// [`ERROR`]: why it was dead-lettered.
    pub reason: Option<String>,
    /// Headers that are not gavel's own (`gavel.*`): the input's headers
    /// the pipeline copied (`outputs.trace_headers`), in order.
    pub carried: Vec<(&'a str, &'a [u8])>,
}

impl<'a> DeadLetter<'a> {
    /// Reads a dead-letter record's coordinates and headers.
    pub fn of(message: &'a BorrowedMessage<'_>) -> DeadLetter<'a> {
        let mut letter = DeadLetter::bare(message.partition(), message.offset(), message.key(), message.payload());
        letter.timestamp_ms = message.timestamp().to_millis();
        if let Some(headers) = message.headers() {
            letter.read_headers(headers);
        }
        letter
    }

    /// A dead letter at `partition`/`offset` whose headers are not read yet.
    fn bare(partition: i32, offset: i64, key: Option<&'a [u8]>, payload: Option<&'a [u8]>) -> DeadLetter<'a> {
        DeadLetter {
            partition,
            offset,
            timestamp_ms: None,
            key,
            payload: payload.unwrap_or_default(),
            source_topic: None,
            source_partition: None,
            source_offset: None,
            source_encoding: None,
            source_size: None,
            reason: None,
            carried: Vec::new(),
        }
    }

    /// Fills in what `headers` say.
    fn read_headers<H: Headers>(&mut self, headers: &'a H) {
        for header in headers.iter() {
            let value = header.value.unwrap_or_default();
            let text = || std::str::from_utf8(value).ok().map(str::to_string);
            match header.key {
                SOURCE_TOPIC => self.source_topic = text(),
                SOURCE_PARTITION => self.source_partition = text().and_then(|t| t.parse().ok()),
                SOURCE_OFFSET => self.source_offset = text().and_then(|t| t.parse().ok()),
                SOURCE_ENCODING => self.source_encoding = text(),
                SOURCE_SIZE => self.source_size = text().and_then(|t| t.parse().ok()),
                ERROR => self.reason = text(),
                key if key.starts_with("gavel.") => {}
                key => self.carried.push((key, value)),
            }
        }
    }

    /// Whether this record is a reference: it stands for a message or an
    /// output too large to write and holds none of its bytes, so it
    /// cannot be re-published from the dead-letter topic.
    pub fn is_reference(&self) -> bool {
        self.payload.is_empty() && self.source_size.is_some()
    }
}

/// Reads one dead-letter topic from chosen offsets to the high watermarks
/// taken when it opened (see the [module docs](self)).
pub struct DeadLetterReader {
    consumer: BaseConsumer,
    topic: String,
    ranges: Vec<PartitionRange>,
    timeout: Duration,
}

impl std::fmt::Debug for DeadLetterReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterReader").field("topic", &self.topic).field("ranges", &self.ranges).finish()
    }
}

impl DeadLetterReader {
    /// Finds `topic`'s partitions, their high watermarks and where to start
    /// in each; waits at most `timeout` for each answer. The topic must
    /// exist ([`KafkaError::UnknownTopic`]), and so must every partition
    /// `from` names ([`KafkaError::UnknownPartition`]).
    pub fn open(settings: &KafkaSettings, topic: &str, from: &ReadFrom, timeout: Duration) -> Result<Self> {
        let mut config = settings.consumer_config();
        // Never joins the group (it assigns) and never commits: a group id
        // of its own, so that nothing it does can touch gavel's group.
        config
            .set("group.id", format!("gavel-dlq-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed");
        for (key, value) in [("max.partition.fetch.bytes", "8388608"), ("fetch.max.bytes", "67108864")] {
            if config.get(key).is_none() {
                config.set(key, value);
            }
        }
        let consumer: BaseConsumer = config.create()?;
        let partitions =
            partitions_of(&consumer, topic, timeout)?.ok_or_else(|| KafkaError::UnknownTopic(topic.to_string()))?;
        if let ReadFrom::Offsets { partitions: named, .. } = from
            && let Some(&partition) = named.keys().find(|p| !partitions.contains(p))
        {
            return Err(KafkaError::UnknownPartition { topic: topic.to_string(), partition });
        }
        let mut ranges = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let (low, end) = consumer.fetch_watermarks(topic, partition, timeout)?;
            let wanted = match from {
                ReadFrom::Beginning => low,
                ReadFrom::Offsets { partitions, others } => {
                    partitions.get(&partition).copied().or(*others).unwrap_or(low)
                }
                ReadFrom::Since(ms) => offset_for_time(&consumer, topic, partition, *ms, timeout)?.unwrap_or(end),
            };
            ranges.push(PartitionRange { partition, start: wanted.clamp(low, end), end });
        }
        Ok(DeadLetterReader { consumer, topic: topic.to_string(), ranges, timeout })
    }

    /// What [`Self::read`] will read, by partition in partition order.
    pub fn ranges(&self) -> &[PartitionRange] {
        &self.ranges
    }

    /// The partition count of `topic`, or `None` if the brokers do not
    /// know it (for checking a destination before producing to it).
    pub fn partitions_of(&self, topic: &str) -> Result<Option<usize>> {
        Ok(partitions_of(&self.consumer, topic, self.timeout)?.map(|p| p.len()))
    }

    /// Hands every record of the ranges to `each`, each partition in offset
    /// order (partitions interleave), until every range is read or `each`
    /// breaks. Fails when the brokers send nothing for the timeout.
    pub fn read(&self, each: &mut dyn FnMut(&DeadLetter<'_>) -> ControlFlow<()>) -> Result<()> {
        let mut open: Vec<PartitionRange> = self.ranges.iter().copied().filter(|r| r.start < r.end).collect();
        if open.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for r in &open {
            tpl.add_partition_offset(&self.topic, r.partition, Offset::Offset(r.start))?;
        }
        self.consumer.assign(&tpl)?;
        let mut last_progress = Instant::now();
        while !open.is_empty() {
            let polled = match self.consumer.poll(Duration::from_millis(100)) {
                None => {
                    if last_progress.elapsed() > self.timeout {
                        return Err(KafkaError::consume(RDKafkaErrorCode::OperationTimedOut));
                    }
                    continue;
                }
                // Everything readable is read: the rest up to the end is
                // transaction markers, or records of aborted transactions.
                Some(Err(RdError::PartitionEOF(partition))) => {
                    open.retain(|r| r.partition != partition);
                    continue;
                }
                Some(polled) => polled.map_err(KafkaError::Consume)?,
            };
            let Some(i) = open.iter().position(|r| r.partition == polled.partition()) else { continue };
            last_progress = Instant::now();
            if polled.offset() >= open[i].end {
                open.swap_remove(i);
                continue;
            }
            if each(&DeadLetter::of(&polled)).is_break() {
                break;
            }
            if polled.offset() + 1 >= open[i].end {
                open.swap_remove(i);
            }
        }
        Ok(())
    }
}

/// The partitions of `topic`, or `None` if the brokers do not know it.
fn partitions_of(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> Result<Option<Vec<i32>>> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
    if found.error().is_some() || found.partitions().is_empty() {
        return Ok(None);
    }
    let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    Ok(Some(partitions))
}

/// The first offset of `partition` whose timestamp is at or after `ms`, or
/// `None` when there is none.
fn offset_for_time(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    ms: i64,
    timeout: Duration,
) -> Result<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(ms))?;
    let answer = consumer.offsets_for_times(tpl, timeout)?;
    let element = answer.find_partition(topic, partition);
    if let Some(Err(e)) = element.as_ref().map(|e| e.error()) {
        return Err(KafkaError::Client(e));
    }
    Ok(match element.map(|e| e.offset()) {
        Some(Offset::Offset(o)) if o >= 0 => Some(o),
        _ => None,
    })
}

/// A delivery that failed: the dead-letter record it was copied from, and
/// the producer's error.
#[derive(Debug)]
pub struct FailedDelivery {
    /// Partition in the dead-letter topic.
    pub partition: i32,
    /// Offset in the dead-letter topic.
    pub offset: i64,
    /// Why the broker did not take it.
    pub error: KafkaError,
}

/// Produces copies of dead-letter records and awaits their deliveries
/// (see the [module docs](self)). Blocking.
pub struct Republisher {
    producer: FutureProducer,
    dlq: String,
    pending: VecDeque<(i32, i64, DeliveryFuture)>,
    failed: Vec<FailedDelivery>,
    delivered: u64,
}

impl std::fmt::Debug for Republisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Republisher").field("dlq", &self.dlq).field("pending", &self.pending.len()).finish()
    }
}

impl Republisher {
    /// A producer for copies of records read from dead-letter topic `dlq`.
    /// A delivery that has not succeeded within `timeout` fails, unless
    /// `message.timeout.ms` is configured. It never creates a topic.
    pub fn new(settings: &KafkaSettings, dlq: &str, timeout: Duration) -> Result<Self> {
        let mut config = settings.producer_config();
        if config.get("message.timeout.ms").is_none() {
            config.set("message.timeout.ms", timeout.as_millis().max(1).to_string());
        }
        config.set("allow.auto.create.topics", "false");
        Ok(Republisher {
            producer: config.create()?,
            dlq: dlq.to_string(),
            pending: VecDeque::new(),
            failed: Vec::new(),
            delivered: 0,
        })
    }

    /// Queues a copy of `letter` for `topic` (its `partition`, or by key
    /// when `None`): the record's key, value and Kafka timestamp, its
    /// [carried](DeadLetter::carried) headers, and [`REPUBLISHED_FROM`].
    /// Waits while the producer's queue is full. A record the producer
    /// refuses at once (one over its size limit) is a failed delivery.
    pub fn send(&mut self, letter: &DeadLetter<'_>, topic: &str, partition: Option<i32>) {
        let from = format!("{}/{}/{}", self.dlq, letter.partition, letter.offset);
        let headers = letter
            .carried
            .iter()
            .fold(OwnedHeaders::new_with_capacity(letter.carried.len() + 1), |h, (key, value)| {
                h.insert(Header { key, value: Some(*value) })
            })
            .insert(Header { key: REPUBLISHED_FROM, value: Some(from.as_str()) });
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(letter.payload).headers(headers);
        if let Some(key) = letter.key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(ms) = letter.timestamp_ms {
            record = record.timestamp(ms);
        }
        if self.pending.len() >= MAX_PENDING {
            self.settle_oldest();
        }
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.pending.push_back((letter.partition, letter.offset, delivery));
                    return;
                }
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if !self.settle_oldest() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Err((error, _)) => {
                    let error = KafkaError::Client(error);
                    self.failed.push(FailedDelivery { partition: letter.partition, offset: letter.offset, error });
                    return;
                }
            }
        }
    }

    /// Awaits the oldest pending delivery; `false` when none is pending.
    fn settle_oldest(&mut self) -> bool {
        let Some((partition, offset, delivery)) = self.pending.pop_front() else { return false };
        match futures::executor::block_on(delivery) {
            Ok(Ok(_)) => self.delivered += 1,
            Ok(Err((error, _))) => self.failed.push(FailedDelivery { partition, offset, error: error.into() }),
            Err(_canceled) => {
                let error = KafkaError::Client(RdError::Canceled);
                self.failed.push(FailedDelivery { partition, offset, error });
            }
        }
        true
    }

    /// Awaits every delivery: how many succeeded, and each that failed.
    pub fn finish(mut self) -> (u64, Vec<FailedDelivery>) {
        while self.settle_oldest() {}
        (self.delivered, self.failed)
    }
}

#[cfg(test)]
mod tests {
    use gavel_model::Encoding;

    use super::*;
    use crate::contract::{Input, dlq_headers};

    /// A dead letter with nothing but the given headers.
    fn letter_with<'a, H: Headers>(headers: &'a H) -> DeadLetter<'a> {
        let mut letter = DeadLetter::bare(0, 0, None, None);
        letter.read_headers(headers);
        letter
    }

    #[test]
    fn the_headers_the_pipeline_writes_read_back() {
        let input = Input {
            topic: "marketplace.chat",
            partition: 3,
            offset: 41,
            key: None,
            payload: b"",
            timestamp_ms: None,
            encoding: Encoding::Json,
        };
        let headers = dlq_headers(&input, "invalid JSON")
            .insert(Header { key: SOURCE_SIZE, value: Some("2000000") })
            .insert(Header { key: "traceparent", value: Some("00-abc-def-01") })
            .insert(Header { key: "gavel.something.new", value: Some("x") });
        let letter = letter_with(&headers);
        assert_eq!(letter.source_topic.as_deref(), Some("marketplace.chat"));
        assert_eq!(letter.source_partition, Some(3));
        assert_eq!(letter.source_offset, Some(41));
        assert_eq!(letter.source_encoding.as_deref(), Some("json"));
        assert_eq!(letter.reason.as_deref(), Some("invalid JSON"));
        assert_eq!(letter.source_size, Some(2_000_000));
        assert!(letter.is_reference(), "an empty value with a size");
        assert_eq!(letter.carried, [("traceparent", &b"00-abc-def-01"[..])], "gavel's own headers stay behind");
    }

    #[test]
    fn an_empty_value_without_a_size_is_not_a_reference() {
        let input = Input {
            topic: "t",
            partition: 0,
            offset: 1,
            key: None,
            payload: b"",
            timestamp_ms: None,
            encoding: Encoding::Protobuf,
        };
        let headers = dlq_headers(&input, "event has no payload");
        assert!(!letter_with(&headers).is_reference());
    }
}
