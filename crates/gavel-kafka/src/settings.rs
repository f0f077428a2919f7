//! What the adapter needs to know: brokers, group, topics and their
//! encodings, and librdkafka options passed through untouched.

use std::collections::BTreeMap;
use std::time::Duration;

use gavel_model::Encoding;
use rdkafka::ClientConfig;

/// An input topic and how its messages are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTopic {
    /// Topic name.
    pub name: String,
    /// Encoding of every message on it.
    pub encoding: Encoding,
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
    /// Undecodable input, with the reason in headers.
    pub dlq: String,
}

impl Default for OutputTopics {
    fn default() -> Self {
        OutputTopics {
            signals: "risk.signals".into(),
            actions: "risk.actions".into(),
            verdicts: "risk.verdicts".into(),
            dlq: "risk.dlq".into(),
        }
    }
}

impl OutputTopics {
    /// All four names.
    pub fn all(&self) -> [&str; 4] {
        [&self.signals, &self.actions, &self.verdicts, &self.dlq]
    }
}

/// Everything the pipeline needs to talk to Kafka.
#[derive(Debug, Clone)]
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
    /// Messages queued for one shard, at most. When its queue is full, the
    /// partitions routed to it are paused until it catches up (backpressure).
    pub shard_queue: usize,
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
}

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
            shutdown_timeout: Duration::from_secs(30),
            warmup_timeout: Duration::from_secs(30),
            offsets_for_times: true,
            client_options: BTreeMap::new(),
            consumer_options: BTreeMap::new(),
            producer_options: BTreeMap::new(),
            instance_id: None,
        }
    }

    /// The consumer that joins the group: [`Self::consumer_config`] plus the
    /// static membership id, if any.
    pub(crate) fn group_consumer_config(&self) -> ClientConfig {
        let mut config = self.consumer_config();
        if let Some(id) = &self.instance_id {
            config.set("group.instance.id", id);
        }
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
            // Brokers that answer a waiting fetch only at its deadline (Tansu)
            // add this much latency; 5 ms keeps it small at little cost.
            .set("fetch.wait.max.ms", "5")
            .set("session.timeout.ms", "10000")
            // Consumer lag per partition, for metrics.
            .set("statistics.interval.ms", "5000");
        self.apply_options(&mut config, &self.consumer_options);
        // Static membership belongs to the group consumer alone.
        config.remove("group.instance.id");
        config
    }

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

    pub(crate) fn admin_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        self.apply_options(&mut config, &BTreeMap::new());
        config
    }

    fn apply_options(&self, config: &mut ClientConfig, specific: &BTreeMap<String, String>) {
        for (key, value) in self.client_options.iter().chain(specific) {
            config.set(key, value);
        }
    }

    pub(crate) fn encoding_of(&self, topic: &str) -> Option<(usize, Encoding)> {
        self.inputs.iter().position(|t| t.name == topic).map(|i| (i, self.inputs[i].encoding))
    }
}
