//! What the adapter needs to know: brokers, group, topics and their
//! encodings, and librdkafka options passed through untouched; and the
//! librdkafka client configurations built from them.
//!
//! Option values are taken as given: secrets are resolved by the caller
//! (the binary's config layer) before they get here. This module only keeps
//! them out of `Debug` output; it does not read files or the environment.

use std::collections::BTreeMap;
use std::time::Duration;

use gavel_model::Encoding;
use rdkafka::ClientConfig;

use crate::contract::{InputTopic, OutputTopics};

/// Everything the pipeline needs to talk to Kafka. `Debug` shows option
/// keys but redacts values that may be secrets (see [`is_secret`]).
#[derive(Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group id.
    pub group_id: String,
    /// Topics read.
    pub inputs: Vec<InputTopic>,
    /// Topics written.
    pub outputs: OutputTopics,
    /// Messages whose outputs are not yet acknowledged, at most, per shard.
    /// When reached, the shard waits for acknowledgements before taking more.
    pub max_in_flight: usize,
    /// Messages queued for one shard, at most (backpressure). When its
    /// queue is full, the consumer waits for room, up to `pause_after`.
    pub shard_queue: usize,
    /// How long the consumer waits for room in a full shard queue before it
    /// pauses the partition and goes on with the others. While it waits, no
    /// other partition's messages are handed over (librdkafka keeps
    /// prefetching meanwhile), so it is short. A pause costs a refetch and,
    /// when every partition of a broker is paused, up to a second before
    /// librdkafka fetches again, so it is kept for a shard really stuck.
    pub pause_after: Duration,
    /// How long shutdown, and draining before a rebalance, may take.
    pub shutdown_timeout: Duration,
    /// How long a warm-up waits for the broker before giving up a step.
    pub warmup_timeout: Duration,
    /// Ask the broker for warm-up start offsets by timestamp; when false (or
    /// when the broker cannot answer), search message timestamps instead.
    pub offsets_for_times: bool,
    /// librdkafka options applied to every client after gavel's own, so they
    /// win (SASL, TLS, tuning). Values may be secrets: never log them.
    pub client_options: BTreeMap<String, String>,
    /// librdkafka options for the consumers only (session timeout, fetch sizes).
    pub consumer_options: BTreeMap<String, String>,
    /// librdkafka options for the producer only (linger, batch size, compression).
    pub producer_options: BTreeMap<String, String>,
    /// Static group membership (`group.instance.id`) for the group consumer.
    /// Only the one client that joins the group carries it: a second client
    /// with the same id would fence the first.
    pub instance_id: Option<String>,
    /// Exactly-once mode: each shard produces through its own transactional
    /// producer and commits its input offsets inside the same transaction
    /// (`transactional.rs`), instead of storing them after acknowledgement.
    /// The consumers then read with `isolation.level=read_committed` and the
    /// group consumer never auto-commits.
    pub exactly_once: bool,
    /// Exactly-once mode: how long a shard's transaction stays open, at most,
    /// before it is committed. A transaction also commits once it holds
    /// `max_in_flight` messages, and before partitions are given up.
    pub transaction_interval: Duration,
    /// Input messages larger than this (key and value, in bytes) are
    /// dead-lettered without being decoded.
    pub max_input_bytes: usize,
    /// Where a partition the group never committed starts.
    pub first_start: FirstStart,
    /// Input headers copied, with their values, to every output the input
    /// caused (its signal, actions, verdict, dead-letter record): the trace
    /// context (`traceparent`, `tracestate`) or a correlation id. Names
    /// match without regard to ASCII case.
    pub trace_headers: Vec<String>,
    /// Become ready while owning only some of the input partitions even
    /// though the processor keeps state that events of any partition feed
    /// ([`crate::Hooks::beyond_the_message_key`]): such state then counts
    /// only this member's share of the events. False: a member that does
    /// not own every input partition stays not ready and says why.
    pub allow_partial_ownership: bool,
    /// The order a shard applies its partitions' messages in
    /// (`order.rs`).
    pub order: InputOrder,
    /// With [`InputOrder::Log`]: how long a shard waits for a partition
    /// known to have messages that may come first before it goes on
    /// without them (counted as a stall).
    pub order_wait: Duration,
    /// Which input partitions feed this member's state: the ones the group
    /// gives it, or every one (`follow.rs`).
    pub state: StateScope,
}

/// The order a shard applies the messages of its input partitions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputOrder {
    /// By `(stream time, topic, partition, offset)`: a function of the log,
    /// so two runs over the same log, or a run with crashes, feed state in
    /// the same order (`order.rs`). Costs waiting for the partition that
    /// is behind.
    #[default]
    Log,
    /// As the consumer hands messages over: no waiting, but state that
    /// several partitions feed depends on how their fetches interleave.
    Arrival,
}

impl InputOrder {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            InputOrder::Log => "log",
            InputOrder::Arrival => "arrival",
        }
    }
}

impl std::str::FromStr for InputOrder {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "log" => Ok(InputOrder::Log),
            "arrival" => Ok(InputOrder::Arrival),
            other => Err(format!("`{other}` (expected \"log\" or \"arrival\")")),
        }
    }
}

/// Which input partitions feed a member's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateScope {
    /// The partitions the group assigns: one member is exact; several
    /// count only their share of state keyed beyond the message key, and
    /// are not ready unless `allow_partial_ownership`.
    #[default]
    Owned,
    /// Every input partition, in the log's order: each member keeps the
    /// whole state and publishes for the partitions the group assigns it,
    /// so any number of members give one member's answers, and a member
    /// that takes over a partition is already warm. Each member does the
    /// whole work: this scales availability, not throughput.
    Replicated,
}

impl StateScope {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            StateScope::Owned => "owned",
            StateScope::Replicated => "replicated",
        }
    }
}

impl std::str::FromStr for StateScope {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "owned" => Ok(StateScope::Owned),
            "replicated" => Ok(StateScope::Replicated),
            other => Err(format!("`{other}` (expected \"owned\" or \"replicated\")")),
        }
    }
}

/// Where consumption starts on a partition the group has no committed
/// offset for: a first deployment, a renamed group, a new partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstStart {
    /// Warm state up from the retained history (now − the longest window)
    /// to the end of the log, then go live at the end: nothing is emitted
    /// for the past.
    #[default]
    End,
    /// Consume the whole retained history from the earliest offset,
    /// emitting signals, verdicts and actions for it: a deliberate replay.
    Earliest,
}

impl FirstStart {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            FirstStart::End => "end",
            FirstStart::Earliest => "earliest",
        }
    }
}

impl std::str::FromStr for FirstStart {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "end" => Ok(FirstStart::End),
            "earliest" => Ok(FirstStart::Earliest),
            other => Err(format!("`{other}` (expected \"end\" or \"earliest\")")),
        }
    }
}

/// Bytes of a record batch that are not key, value or headers (batch and
/// record headers, varints), rounded up generously.
const RECORD_FRAMING_BYTES: usize = 1_024;

impl KafkaSettings {
    /// Settings with gavel's defaults for everything but brokers, group and inputs.
    pub fn new(brokers: impl Into<String>, group_id: impl Into<String>, inputs: Vec<InputTopic>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            group_id: group_id.into(),
            inputs,
            outputs: OutputTopics::default(),
            max_in_flight: 10_000,
            shard_queue: 4_096,
            pause_after: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(30),
            warmup_timeout: Duration::from_secs(30),
            offsets_for_times: true,
            client_options: BTreeMap::new(),
            consumer_options: BTreeMap::new(),
            producer_options: BTreeMap::new(),
            instance_id: None,
            exactly_once: false,
            allow_partial_ownership: false,
            order: InputOrder::Log,
            order_wait: Duration::from_millis(500),
            state: StateScope::Owned,
            transaction_interval: Duration::from_millis(100),
            max_input_bytes: 1_000_000,
            first_start: FirstStart::End,
            trace_headers: vec!["traceparent".into(), "tracestate".into()],
        }
    }

    /// The largest record the producer accepts (librdkafka's
    /// `message.max.bytes`, 1,000,000 unless configured), less room for the
    /// record's framing: outputs larger than this are not sent as they are
    /// (see `shard::process`).
    pub fn max_output_bytes(&self) -> usize {
        let configured = self
            .producer_options
            .get("message.max.bytes")
            .or_else(|| self.client_options.get("message.max.bytes"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        configured.unwrap_or(1_000_000).saturating_sub(RECORD_FRAMING_BYTES)
    }

    /// The consumer that joins the group: [`Self::consumer_config`] plus the
    /// static membership id, if any.
    pub(crate) fn group_consumer_config(&self) -> ClientConfig {
        let mut config = self.consumer_config();
        if let Some(id) = &self.instance_id {
            config.set("group.instance.id", id);
        }
        if self.exactly_once {
            // Offsets are committed inside each shard's transaction only.
            config.set("enable.auto.commit", "false");
        }
        config
    }

    /// Whether this member keeps the state of every input partition
    /// ([`StateScope::Replicated`]).
    pub(crate) fn replicated(&self) -> bool {
        self.state == StateScope::Replicated
    }

    /// The consumer that reads every input partition into state under
    /// [`StateScope::Replicated`]: assigned, never in the group, never
    /// committing.
    pub(crate) fn follower_config(&self) -> ClientConfig {
        let mut config = self.consumer_config();
        config.set("enable.auto.commit", "false");
        config
    }

    /// A consumer of the group's offsets that never joins it (warm-up, lag).
    pub(crate) fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // Apache Kafka answers a waiting fetch as soon as one byte is in
            // (fetch.min.bytes = 1), so this bounds only how long an empty
            // fetch is parked; brokers that answer only at the deadline add
            // this much latency. 5 ms costs more empty fetches on idle
            // partitions, not latency.
            .set("fetch.wait.max.ms", "5")
            .set("session.timeout.ms", "10000")
            // Consumer lag per partition, for metrics, and each partition's
            // log end, which the merge of `InputOrder::Log` waits on.
            .set("statistics.interval.ms", "1000");
        self.apply_options(&mut config, &self.consumer_options);
        // Static membership belongs to the group consumer alone.
        config.remove("group.instance.id");
        if self.exactly_once {
            // Never see aborted records (inputs written by transactional
            // producers, gavel's own among them), and wait for the group's
            // pending transactional offsets rather than read stale ones.
            config.set("isolation.level", "read_committed");
        }
        config
    }

    /// The idempotent producer every shard shares.
    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("compression.type", "none");
        self.apply_options(&mut config, &self.producer_options);
        config
    }

    /// The transactional producer of one shard in exactly-once mode:
    /// [`Self::producer_config`] plus `transactional.id`, with a transaction
    /// timeout of 10 s unless the user chose one (the broker aborts a
    /// transaction left open that long, e.g. by a crashed process whose id
    /// is not reused).
    pub(crate) fn transactional_producer_config(&self, transactional_id: &str) -> ClientConfig {
        let mut config = self.producer_config();
        if config.get("transaction.timeout.ms").is_none() {
            config.set("transaction.timeout.ms", "10000");
        }
        config.set("transactional.id", transactional_id);
        config
    }

    /// A client for the admin API (topic creation).
    pub(crate) fn admin_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        self.apply_options(&mut config, &BTreeMap::new());
        config
    }

    /// Applies the options for every client, then `specific` ones, over
    /// what `config` already has.
    fn apply_options(&self, config: &mut ClientConfig, specific: &BTreeMap<String, String>) {
        for (key, value) in self.client_options.iter().chain(specific) {
            config.set(key, value);
        }
    }

    /// The index into [`Self::inputs`] and the encoding of input `topic`.
    pub(crate) fn encoding_of(&self, topic: &str) -> Option<(usize, Encoding)> {
        self.inputs.iter().position(|t| t.name == topic).map(|i| (i, self.inputs[i].encoding))
    }
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let KafkaSettings {
            brokers,
            group_id,
            inputs,
            outputs,
            max_in_flight,
            shard_queue,
            pause_after,
            shutdown_timeout,
            warmup_timeout,
            offsets_for_times,
            client_options,
            consumer_options,
            producer_options,
            instance_id,
            exactly_once,
            transaction_interval,
            max_input_bytes,
            first_start,
            trace_headers,
            allow_partial_ownership,
            order,
            order_wait,
            state,
        } = self;
        f.debug_struct("KafkaSettings")
            .field("brokers", brokers)
            .field("group_id", group_id)
            .field("inputs", inputs)
            .field("outputs", outputs)
            .field("max_in_flight", max_in_flight)
            .field("shard_queue", shard_queue)
            .field("pause_after", pause_after)
            .field("shutdown_timeout", shutdown_timeout)
            .field("warmup_timeout", warmup_timeout)
            .field("offsets_for_times", offsets_for_times)
            .field("client_options", &Redacted(client_options))
            .field("consumer_options", &Redacted(consumer_options))
            .field("producer_options", &Redacted(producer_options))
            .field("instance_id", instance_id)
            .field("exactly_once", exactly_once)
            .field("transaction_interval", transaction_interval)
            .field("max_input_bytes", max_input_bytes)
            .field("first_start", first_start)
            .field("trace_headers", trace_headers)
            .field("allow_partial_ownership", allow_partial_ownership)
            .field("order", order)
            .field("order_wait", order_wait)
            .field("state", state)
            .finish()
    }
}

/// librdkafka options with their values hidden: any of them may be a
/// secret (`sasl.password`, `ssl.key.pem`, `sasl.oauthbearer.client.secret`,
/// …), and a list of which are would go stale, so none is shown.
struct Redacted<'a>(&'a BTreeMap<String, String>);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.keys().map(|key| (key, format_args!("<redacted>")))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_option_values() {
        let mut settings = KafkaSettings::new("broker:9092", "group", vec![]);
        settings.client_options.insert("sasl.password".into(), "hunter2".into());
        settings.consumer_options.insert("sasl.oauthbearer.client.secret".into(), "s3cr3t-consumer".into());
        settings.producer_options.insert("ssl.key.pem".into(), "-----BEGIN PRIVATE KEY-----".into());
        let shown = format!("{settings:?}");
        for secret in ["hunter2", "s3cr3t-consumer", "BEGIN PRIVATE KEY"] {
            assert!(!shown.contains(secret), "{secret} leaked into {shown}");
        }
        assert!(shown.contains("sasl.password") && shown.contains("<redacted>"), "keys stay visible: {shown}");
        assert!(shown.contains("broker:9092") && shown.contains("group"));
        let pretty = format!("{settings:#?}");
        assert!(!pretty.contains("hunter2"));
    }

    #[test]
    fn only_the_group_consumer_carries_the_static_membership_id() {
        let mut settings = KafkaSettings::new("b", "g", vec![]);
        settings.instance_id = Some("gavel-0".into());
        settings.consumer_options.insert("group.instance.id".into(), "sneaked-in".into());
        assert_eq!(settings.group_consumer_config().get("group.instance.id"), Some("gavel-0"));
        assert_eq!(settings.consumer_config().get("group.instance.id"), None);
    }

    #[test]
    fn exactly_once_reads_committed_and_never_auto_commits() {
        let mut settings = KafkaSettings::new("b", "g", vec![]);
        assert_eq!(settings.group_consumer_config().get("isolation.level"), None, "at-least-once unchanged");
        assert_eq!(settings.group_consumer_config().get("enable.auto.commit"), Some("true"));
        settings.exactly_once = true;
        settings.consumer_options.insert("enable.auto.commit".into(), "true".into());
        settings.consumer_options.insert("isolation.level".into(), "read_uncommitted".into());
        let group = settings.group_consumer_config();
        assert_eq!(group.get("enable.auto.commit"), Some("false"));
        assert_eq!(group.get("isolation.level"), Some("read_committed"));
        assert_eq!(settings.consumer_config().get("isolation.level"), Some("read_committed"));
        let producer = settings.transactional_producer_config("g.gavel-0.shard-1");
        assert_eq!(producer.get("transactional.id"), Some("g.gavel-0.shard-1"));
        assert_eq!(producer.get("transaction.timeout.ms"), Some("10000"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn user_options_win_over_gavels_own() {
        let mut settings = KafkaSettings::new("b", "g", vec![]);
        settings.client_options.insert("linger.ms".into(), "50".into());
        settings.producer_options.insert("compression.type".into(), "zstd".into());
        let producer = settings.producer_config();
        assert_eq!(producer.get("linger.ms"), Some("50"));
        assert_eq!(producer.get("compression.type"), Some("zstd"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
    }
}
