//! The public contract between the adapter and its owner: what a processor
//! is handed ([`Input`]) and returns ([`Processed`]), where its records go
//! ([`OutputTopic`], named by [`OutputTopics::name`]), and the hooks the
//! pipeline calls back ([`PipelineObserver`], [`WarmSink`], [`Hooks`]).
//!
//! Plain types and traits only: nothing here consumes, produces or spawns,
//! and no other module of the crate is imported, so every other module can
//! depend on this one without a cycle.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use gavel_model::Encoding;
use rdkafka::Message;
use rdkafka::message::{Header, OwnedHeaders};

/// An input topic and how its messages are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTopic {
    /// Topic name.
    pub name: String,
    /// Encoding of every message on it.
    pub encoding: Encoding,
}

/// One consumed message, as the processor sees it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The message key, if any.
    pub key: Option<&'a [u8]>,
    /// The message value (empty for a tombstone).
    pub payload: &'a [u8],
    /// The Kafka timestamp in milliseconds, if the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// The topic's configured encoding.
    pub encoding: Encoding,
}

impl<'a> Input<'a> {
    /// The input view of a consumed message from a topic with `encoding`.
    pub fn of<M: Message>(message: &'a M, encoding: Encoding) -> Input<'a> {
        Input {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            payload: message.payload().unwrap_or_default(),
            timestamp_ms: message.timestamp().to_millis(),
            encoding,
        }
    }
}

/// Which output topic a record goes to; [`OutputTopics::name`] gives the
/// configured name of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputTopic {
    /// `risk.signals`.
    Signals,
    /// `risk.actions`.
    Actions,
    /// `risk.verdicts`.
    Verdicts,
    /// `risk.shadow`: signals for events that shadow rules fired on.
    Shadow,
    /// `risk.dlq`. The pipeline sends a message here, with its provenance
    /// in headers, when the processor returns [`Processed::DeadLetter`]; a
    /// processor's own [`Output`] to it would carry no such headers.
    DeadLetter,
}

impl OutputTopic {
    /// Every output topic, in the order of [`OutputTopics::all`].
    pub const ALL: [OutputTopic; 5] = [
        OutputTopic::Signals,
        OutputTopic::Actions,
        OutputTopic::Verdicts,
        OutputTopic::Shadow,
        OutputTopic::DeadLetter,
    ];
}

/// Names of the topics gavel writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTopics {
    /// Risk signals: a rule fired.
    pub signals: String,
    /// Auto-actions.
    pub actions: String,
    /// One verdict per event, when enabled.
    pub verdicts: String,
    /// Every event a shadow rule fired on, when enabled.
    pub shadow: String,
    /// Undecodable input, with the reason in headers.
    pub dlq: String,
}

impl Default for OutputTopics {
    fn default() -> Self {
        OutputTopics {
            signals: "risk.signals".into(),
            actions: "risk.actions".into(),
            verdicts: "risk.verdicts".into(),
            shadow: "risk.shadow".into(),
            dlq: "risk.dlq".into(),
        }
    }
}

impl OutputTopics {
    /// The configured name of `topic`: the one place an [`OutputTopic`]
    /// becomes a topic name.
    pub fn name(&self, topic: OutputTopic) -> &str {
        match topic {
            OutputTopic::Signals => &self.signals,
            OutputTopic::Actions => &self.actions,
            OutputTopic::Verdicts => &self.verdicts,
            OutputTopic::Shadow => &self.shadow,
            OutputTopic::DeadLetter => &self.dlq,
        }
    }

    /// All five names, in the order of [`OutputTopic::ALL`].
    pub fn all(&self) -> [&str; 5] {
        OutputTopic::ALL.map(|topic| self.name(topic))
    }
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Destination.
    pub topic: OutputTopic,
    /// Partitioning key (usually the entity id, so one entity's outputs stay in order).
    pub key: Vec<u8>,
    /// Encoded message.
    pub payload: Vec<u8>,
    /// Headers (content type, schema, …), in order. The pipeline adds the
    /// input's trace headers ([`KafkaSettings::trace_headers`]) after them.
    ///
    /// [`KafkaSettings::trace_headers`]: crate::KafkaSettings::trace_headers
    pub headers: Vec<(&'static str, Arc<str>)>,
}

impl Output {
    /// A record with no headers of its own.
    pub fn new(topic: OutputTopic, key: Vec<u8>, payload: Vec<u8>) -> Self {
        Output { topic, key, payload, headers: Vec::new() }
    }
}

/// The records a processor made of one message, and the event's own time.
///
/// Derefs to the records, so `outputs.len()` and `outputs.iter()` read as
/// on a slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// Records to produce (possibly none), in order.
    pub records: Vec<Output>,
    /// The event time (ms since the epoch) of the message, if the processor
    /// knows it: reported with its acknowledgement
    /// ([`PipelineObserver::acknowledged`]) for end-to-end latency.
    pub event_time_ms: Option<i64>,
}

impl Outputs {
    /// `records` for an event that happened at `event_time_ms`.
    pub fn new(records: Vec<Output>, event_time_ms: Option<i64>) -> Self {
        Outputs { records, event_time_ms }
    }
}

impl From<Vec<Output>> for Outputs {
    /// Records whose event time is unknown.
    fn from(records: Vec<Output>) -> Self {
        Outputs { records, event_time_ms: None }
    }
}

impl std::ops::Deref for Outputs {
    type Target = [Output];

    fn deref(&self) -> &[Output] {
        &self.records
    }
}

/// What the processor made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Records to produce (possibly none), with the event time.
    Outputs(Outputs),
    /// The message cannot be processed; send it to the dead-letter topic with this reason.
    DeadLetter(String),
}

/// Turns input messages into output records. Called once per message, in
/// partition order.
pub trait Processor: Send {
    /// Processes one message.
    fn process(&mut self, input: &Input<'_>) -> Processed;

    /// Feeds one message into state only: another member publishes its
    /// outputs, or already has (under
    /// [`StateScope::Replicated`](crate::StateScope)). State must change
    /// exactly as [`Processor::process`] would change it; the default
    /// processes and drops the outputs.
    fn warm(&mut self, input: &Input<'_>) {
        let _ = self.process(input);
    }

    /// Processes one message whose outputs another member may publish
    /// (replicated state): as [`Processor::process`], but counted nowhere,
    /// since that member counts it. The default is `process`.
    fn hold(&mut self, input: &Input<'_>) -> Processed {
        self.process(input)
    }
}

/// What a warm-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmupReport {
    /// Partitions replayed.
    pub partitions: usize,
    /// Messages replayed.
    pub messages: u64,
    /// Partitions whose start was found by binary search over timestamps.
    pub searched: usize,
    /// How long it took.
    pub elapsed: Duration,
    /// `(topic, partition, last offset replayed)` for each replayed partition.
    pub fed: Vec<(String, i32, i64)>,
    /// `(topic, partition, offset)` where live consumption starts on each
    /// partition whose start is known: the group's committed offset, or
    /// the end for one never committed.
    pub starts: Vec<(String, i32, i64)>,
    /// Partitions the group had never committed, each with the offset
    /// (the end it was warmed up to) live consumption starts at.
    pub live_starts: Vec<(String, i32, i64)>,
}

/// Receives replayed messages.
pub trait WarmSink: Send {
    /// One replayed message, in the order live consumption would feed it
    /// (`order.rs`, under [`InputOrder::Log`](crate::InputOrder::Log)).
    fn warm(&mut self, input: &Input<'_>);

    /// The earliest Kafka timestamp still worth replaying (now − the longest
    /// window the rules read), or `None` when the rules keep no history and
    /// warm-up has nothing to do. Asked at every partition assignment, so a
    /// reloaded pack with a longer window is honoured.
    fn since_ms(&self) -> Option<i64> {
        None
    }
}

/// Hooks for telemetry, called from the consumer and shard threads. Every
/// method has a no-op default.
pub trait PipelineObserver: Send + Sync {
    /// A message was processed and its outputs enqueued, `latency` after it
    /// was received.
    fn processed(&self, _topic: &str, _latency: Duration, _outputs: usize) {}
    /// A message was sent to the dead-letter topic.
    fn dead_lettered(&self, _topic: &str) {}
    /// The processor panicked on a message from `topic` (it is
    /// dead-lettered too, and [`PipelineObserver::dead_lettered`] follows).
    fn panicked(&self, _topic: &str) {}
    /// A record for output topic `topic` was over the producer's size limit
    /// and was replaced by a dead-letter reference to its input.
    fn oversized(&self, _topic: &str) {}
    /// Every output of a message was acknowledged and its offset stored.
    /// `kafka_timestamp_ms` is the input message's Kafka timestamp and
    /// `event_time_ms` the event's own time ([`Outputs::event_time_ms`]),
    /// where known, for end-to-end latency.
    fn acknowledged(&self, _kafka_timestamp_ms: Option<i64>, _event_time_ms: Option<i64>) {}
    /// Consumer lag of an owned partition, in messages, from librdkafka's
    /// statistics; `None` when the partition is no longer owned.
    fn partition_lag(&self, _topic: &str, _partition: i32, _lag: Option<i64>) {}
    /// An output could not be enqueued or delivered and is being sent again.
    fn delivery_retried(&self, _topic: &str) {}
    /// The client reported an error (broker down, connection lost); librdkafka retries.
    fn client_error(&self) {}
    /// Polling the consumer returned an error.
    fn consumer_error(&self) {}
    /// An offset commit failed.
    fn commit_failed(&self) {}
    /// This many partitions are now paused because their shard is full.
    fn paused(&self, _partitions: usize) {}
    /// A rebalance `kind` ("assign" or "revoke") of this many partitions finished.
    fn rebalanced(&self, _kind: &'static str, _partitions: usize) {}
    /// Assigned partitions were warmed up.
    fn warmed(&self, _report: &WarmupReport) {}
    /// Whether this member's state counts every event it should: it owns
    /// every input partition, owns none, or keeps no state beyond the
    /// message key ([`Hooks::beyond_the_message_key`]).
    fn exact(&self, _exact: bool) {}
    /// Under [`InputOrder::Log`](crate::InputOrder::Log): a shard stopped
    /// waiting for a partition the broker says has more (`stalled`), or
    /// released a message before one that might still come first because
    /// its buffer was full or it was draining (`forced`). Either means the
    /// order was not the log's alone at that point.
    fn out_of_order(&self, _stalled: u64, _forced: u64) {}
    /// Under [`StateScope::Replicated`](crate::StateScope): the bytes of
    /// outputs now held for partitions other members publish.
    fn held(&self, _bytes: usize) {}
    /// Under replicated state: a partition taken over published this many
    /// held messages' outputs, which its last owner may not have.
    fn handed_over(&self, _messages: usize) {}
}

impl PipelineObserver for () {}

/// What the pipeline tells its owner and asks of it, besides processing.
pub struct Hooks {
    /// Telemetry.
    pub observer: Arc<dyn PipelineObserver>,
    /// Rebuilds state from the log on every partition assignment, if given.
    pub warm: Option<Box<dyn WarmSink>>,
    /// Set once partitions are assigned and warmed up; cleared while a
    /// rebalance is in progress and after shutdown.
    pub ready: Arc<AtomicBool>,
    /// The processor's state that events of any input partition feed (a
    /// feature keyed by device, say), named for the log; empty when all of
    /// it is keyed by the input's message key. While it is not empty, a
    /// member that owns only some of the input partitions would count only
    /// its share of those events: it stays not ready unless
    /// [`KafkaSettings::allow_partial_ownership`](crate::KafkaSettings).
    /// Asked again on every rebalance and health probe, so a reloaded pack
    /// counts. `None`: nothing to check.
    pub beyond_the_message_key: Option<BeyondTheMessageKey>,
}

/// See [`Hooks::beyond_the_message_key`].
pub type BeyondTheMessageKey = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").field("warm", &self.warm.is_some()).finish_non_exhaustive()
    }
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks { observer: Arc::new(()), warm: None, ready: Arc::default(), beyond_the_message_key: None }
    }
}

/// The header names of a dead-letter record, written by the pipeline and
/// read back by `gavel dlq republish`.
pub mod dead_letter {
    /// Header: the topic the dead-lettered message was consumed from.
    pub const SOURCE_TOPIC: &str = "gavel.source.topic";
    /// Header: its partition.
    pub const SOURCE_PARTITION: &str = "gavel.source.partition";
    /// Header: its offset.
    pub const SOURCE_OFFSET: &str = "gavel.source.offset";
    /// Header: its topic's configured encoding.
    pub const SOURCE_ENCODING: &str = "gavel.source.encoding";
    /// Header: its size in bytes, on a reference record only.
    pub const SOURCE_SIZE: &str = "gavel.source.size";
    /// Header: why it was dead-lettered (never quotes the input).
    pub const ERROR: &str = "gavel.error";
    /// Header added to a re-published record: `DLQTOPIC/PARTITION/OFFSET` of
    /// the dead-letter record it was copied from.
    pub const REPUBLISHED_FROM: &str = "gavel.republished.from";
}

/// The headers a dead-letter record carries: where the message came from
/// and why it could not be processed. The reason never contains payload text.
pub fn dlq_headers(input: &Input<'_>, reason: &str) -> OwnedHeaders {
    let partition = input.partition.to_string();
    let offset = input.offset.to_string();
    OwnedHeaders::new()
        .insert(Header { key: dead_letter::SOURCE_TOPIC, value: Some(input.topic) })
        .insert(Header { key: dead_letter::SOURCE_PARTITION, value: Some(&partition) })
        .insert(Header { key: dead_letter::SOURCE_OFFSET, value: Some(&offset) })
        .insert(Header { key: dead_letter::SOURCE_ENCODING, value: Some(input.encoding.as_str()) })
        .insert(Header { key: dead_letter::ERROR, value: Some(reason) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_topic_maps_to_its_configured_name() {
        let topics = OutputTopics {
            signals: "s".into(),
            actions: "a".into(),
            verdicts: "v".into(),
            shadow: "h".into(),
            dlq: "d".into(),
        };
        assert_eq!(topics.all(), ["s", "a", "v", "h", "d"]);
        assert_eq!(topics.name(OutputTopic::DeadLetter), "d");
        for (topic, name) in OutputTopic::ALL.into_iter().zip(topics.all()) {
            assert_eq!(topics.name(topic), name);
        }
    }

    #[test]
    fn outputs_read_as_their_records() {
        let record = Output::new(OutputTopic::Signals, b"k".to_vec(), b"p".to_vec());
        let outputs = Outputs::new(vec![record.clone()], Some(7));
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs.iter().next(), Some(&record));
        assert_eq!(Outputs::from(vec![record]).event_time_ms, None);
    }

    #[test]
    fn dead_letter_headers_name_the_source_and_the_reason() {
        use rdkafka::message::Headers;
        let input = Input {
            topic: "in",
            partition: 2,
            offset: 41,
            key: None,
            payload: b"secret payload",
            timestamp_ms: None,
            encoding: Encoding::Json,
        };
        let headers = dlq_headers(&input, "bad JSON");
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
            .collect();
        let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(value("gavel.source.topic"), Some("in"));
        assert_eq!(value("gavel.source.partition"), Some("2"));
        assert_eq!(value("gavel.source.offset"), Some("41"));
        assert_eq!(value("gavel.source.encoding"), Some("json"));
        assert_eq!(value("gavel.error"), Some("bad JSON"));
        assert!(pairs.iter().all(|(_, v)| !v.contains("secret payload")));
    }
}
