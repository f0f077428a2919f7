//! `gavel run` configuration: embedded defaults, then a TOML file, then
//! `GAVEL__SECTION__KEY` environment variables, later sources winning.
//!
//! Every field is documented here; this file is the reference for
//! `gavel.toml`. Values of `kafka.options` may be secrets (SASL passwords,
//! TLS keys) and are redacted from `Debug` output.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gavel_kafka::{InputOrder, InputTopic, KafkaSettings, OutputTopics};
use gavel_model::Encoding;
use serde::{Deserialize, Serialize};

/// Where `/metrics` and the admin API listen unless configured: the same
/// for `gavel run` and the demo.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9477";

/// The defaults every config starts from, as the TOML `gavel config
/// defaults` prints. The Kafka adapter's tunables and output topic names
/// come from the adapter itself (`KafkaSettings::new`,
/// `OutputTopics::default`), so the two can never disagree.
pub fn defaults() -> String {
    let kafka = KafkaSettings::new("127.0.0.1:9092", "gavel", Vec::new());
    let outputs = &kafka.outputs;
    format!(
        r#"pack = "rules"
allow_empty_pack = false
admin_addr = "{DEFAULT_ADMIN_ADDR}"

[kafka]
brokers = "{brokers}"
group_id = "{group}"
shards = 0
shard_queue = {shard_queue}
pause_after = "{pause_after}"
max_in_flight = {max_in_flight}
offsets_for_times = {offsets_for_times}
max_input_bytes = {max_input_bytes}
first_start = "{first_start}"
allow_partial_ownership = {allow_partial_ownership}
order = "{order}"
order_wait = "{order_wait}"
state = "{state}"
shutdown_timeout = "{shutdown}"
warmup_timeout = "{warmup}"

[outputs]
signals = "{signals}"
actions = "{actions}"
verdicts = "{verdicts}"
shadow = "{shadow}"
dlq = "{dlq}"
emit_verdicts = false
emit_shadow = false
exactly_once = {exactly_once}
transaction_interval = "{transaction_interval}"
encoding = "protobuf"
trace_headers = [{trace_headers}]

[outputs.schema_registry]
url = ""
auto_register = true
"#,
        brokers = kafka.brokers,
        group = kafka.group_id,
        shard_queue = kafka.shard_queue,
        pause_after = humantime::format_duration(kafka.pause_after),
        max_in_flight = kafka.max_in_flight,
        offsets_for_times = kafka.offsets_for_times,
        max_input_bytes = kafka.max_input_bytes,
        first_start = kafka.first_start.as_str(),
        allow_partial_ownership = kafka.allow_partial_ownership,
        order = kafka.order.as_str(),
        order_wait = humantime::format_duration(kafka.order_wait),
        state = kafka.state.as_str(),
        shutdown = humantime::format_duration(kafka.shutdown_timeout),
        warmup = humantime::format_duration(kafka.warmup_timeout),
        signals = outputs.signals,
        actions = outputs.actions,
        verdicts = outputs.verdicts,
        shadow = outputs.shadow,
        dlq = outputs.dlq,
        exactly_once = kafka.exactly_once,
        transaction_interval = humantime::format_duration(kafka.transaction_interval),
        trace_headers = kafka.trace_headers.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", "),
    )
}

/// A string that never shows in `Debug` output or serialized.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl Serialize for Redacted {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Redacted {
    /// The value, with indirections resolved: `env:NAME` reads environment
    /// variable NAME and `file:PATH` the contents of PATH (a mounted
    /// secret, trailing newline dropped), so that secrets need not sit in
    /// the config file.
    pub fn resolve(&self) -> Result<String, String> {
        if let Some(name) = self.0.strip_prefix("env:") {
            return std::env::var(name).map_err(|_| format!("environment variable {name} is not set"));
        }
        if let Some(path) = self.0.strip_prefix("file:") {
            return std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read {path}: {e}"));
        }
        Ok(self.0.clone())
    }
}

/// The whole configuration of `gavel run`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GavelConfig {
    /// Directory of the rule pack (YAML files).
    pub pack: PathBuf,
    /// Serve a pack with no enabled rules (every event allowed). False: such
    /// a pack stops start-up and is rejected on reload, so a placeholder
    /// or a botched deploy cannot silently switch scoring off.
    pub allow_empty_pack: bool,
    /// Address of the metrics endpoint (`GET /metrics`). Keep it on
    /// loopback or a private network: it is not authenticated.
    pub admin_addr: String,
    /// Kafka connection and consumer group.
    pub kafka: KafkaSection,
    /// Input topics and their encodings.
    #[serde(default)]
    pub inputs: Vec<InputSection>,
    /// Output topic names.
    pub outputs: OutputSection,
}

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// Consumer group id. Instances sharing it split the partitions.
    pub group_id: String,
    /// Shard workers, each owning a share of the input partitions; 0 means
    /// one per core. More shards than input partitions leaves some idle.
    pub shards: usize,
    /// Messages queued for one shard, at most; when full, the consumer
    /// waits for room, up to `pause_after`.
    pub shard_queue: usize,
    /// How long the consumer waits for room in a full shard queue before it
    /// pauses that partition (and goes on with the others) until the shard
    /// catches up.
    #[serde(with = "humantime_serde")]
    pub pause_after: std::time::Duration,
    /// Messages whose outputs are awaiting acknowledgement, at most, per
    /// shard, before the shard waits for acknowledgements.
    pub max_in_flight: usize,
    /// How long a shutdown (SIGTERM/SIGINT), or the drain before giving up
    /// partitions in a rebalance, may take. Work not acknowledged by then is
    /// processed again after the restart.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: std::time::Duration,
    /// How long warm-up waits on the broker for one step before retrying.
    #[serde(with = "humantime_serde")]
    pub warmup_timeout: std::time::Duration,
    /// Static group membership (`group.instance.id`): give each instance a
    /// stable, unique id (e.g. the pod name) and a restarted instance takes
    /// its partitions straight back instead of waiting out the session
    /// timeout. Unset: dynamic membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Find warm-up start offsets with the broker's offsets-for-times; set
    /// false for brokers that do not answer it correctly (gavel then
    /// binary-searches message timestamps).
    pub offsets_for_times: bool,
    /// Input messages larger than this many bytes (key and value) are
    /// dead-lettered without being decoded, as a reference (source topic,
    /// partition, offset, size) rather than a copy.
    pub max_input_bytes: usize,
    /// Where a partition the group has no committed offset for starts (a
    /// first deployment, a renamed group): "end" warms state up from the
    /// retained history and goes live at the end of the log, emitting
    /// nothing for the past; "earliest" consumes and emits for the whole
    /// retained history, a deliberate replay.
    pub first_start: String,
    /// Become ready while owning only some of the input partitions although
    /// the pack keeps state keyed by more than the user (a feature keyed by
    /// device, IP, card or seller; a keyed read; a label or cooldown on a
    /// device): such state then counts only this instance's share of the
    /// events, about a third of them with three instances. False: an
    /// instance that does not own every input partition stays not ready
    /// (`/readyz` 503, `gavel_state_exact` 0) and logs which state is
    /// affected, instead of silently undercounting.
    pub allow_partial_ownership: bool,
    /// The order input messages feed state in. "log": by each partition's
    /// stream time (its largest Kafka timestamp so far), then topic,
    /// partition and offset — a function of the log, so two runs over the
    /// same input, or a run with crashes, give the same answers; one shard
    /// applies every partition. "arrival": as fetched, over `shards`
    /// shards, faster on many cores, but state that several partitions
    /// feed (a device's count) depends on how their fetches interleave.
    pub order: String,
    /// Under order "log": how long to wait for a partition the broker says
    /// has messages that may come first before going on without them
    /// (`gavel_input_order_stalls_total`).
    #[serde(with = "humantime_serde")]
    pub order_wait: std::time::Duration,
    /// Which input partitions feed an instance's state. "owned": those the
    /// group assigns it; exact as the only instance (see
    /// `allow_partial_ownership` for several). "replicated": every one, in
    /// the log's order, while the instance publishes only for those the
    /// group assigns it: any number of instances give one instance's
    /// answers, and one that takes over a crashed instance's partitions is
    /// already warm. Each instance does the whole work (throughput is one
    /// instance's); needs order "log".
    pub state: String,
    /// librdkafka options passed through to every client (SASL, TLS),
    /// applied after gavel's own. Values are redacted from logs; a value
    /// `env:NAME` is read from environment variable NAME and `file:PATH`
    /// from a file, at start-up.
    #[serde(default)]
    pub options: BTreeMap<String, Redacted>,
    /// librdkafka options for the consumers only (`session.timeout.ms`,
    /// `fetch.wait.max.ms`, …).
    #[serde(default)]
    pub consumer_options: BTreeMap<String, Redacted>,
    /// librdkafka options for the producer only (`linger.ms`,
    /// `compression.type`, …).
    #[serde(default)]
    pub producer_options: BTreeMap<String, Redacted>,
}

/// One `[[inputs]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputSection {
    /// Topic name.
    pub topic: String,
    /// `protobuf` or `json` (the proto3 JSON mapping).
    pub encoding: Encoding,
}

/// `[outputs]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Risk signals.
    pub signals: String,
    /// Auto-actions.
    pub actions: String,
    /// Verdicts.
    pub verdicts: String,
    /// Shadow signals.
    pub shadow: String,
    /// Dead-letter topic.
    pub dlq: String,
    /// Publish a verdict for every event (not only signals and actions).
    pub emit_verdicts: bool,
    /// Publish a signal, with every hit, for every event a shadow rule fired
    /// on, to `shadow`, whether or not the event publishes on its own.
    pub emit_shadow: bool,
    /// Exactly-once outputs through Kafka transactions. Each shard produces
    /// through its own transactional producer and commits its input offsets
    /// in the same transaction, every `transaction_interval` or
    /// `kafka.max_in_flight` messages, so a consumer reading the outputs with
    /// `isolation.level=read_committed` sees every event's outputs exactly
    /// once, whatever crashes. Costs: outputs become visible to such readers
    /// only when their transaction commits (up to ~100 ms later), and each
    /// commit is a few broker round trips. Set `kafka.instance_id` too: a
    /// restarted instance then reuses its transactional ids and aborts what
    /// its predecessor left open at once; without it, read_committed readers
    /// wait up to `transaction.timeout.ms` (10 s) after a crash. Needs a
    /// broker with transactions. False: at-least-once (offsets stored after
    /// acknowledgement; a crash may repeat outputs, with the same ids).
    pub exactly_once: bool,
    /// Exactly-once mode: how long a shard's transaction stays open at most.
    /// Shorter: outputs visible to read_committed readers sooner, more
    /// commits (a few broker round trips each).
    #[serde(with = "humantime_serde")]
    pub transaction_interval: std::time::Duration,
    /// How signals, actions, verdicts and shadow signals are encoded:
    /// `protobuf` (the default) or `json` (the proto3 JSON mapping). With
    /// `schema_registry.url` set, protobuf records are framed in the
    /// Confluent wire format. Dead-letter records keep the input's bytes.
    pub encoding: Encoding,
    /// Input headers copied to every output an input caused: the W3C trace
    /// context by default; add a correlation header (`x-request-id`, …)
    /// if the producers set one. Names match in any ASCII case.
    pub trace_headers: Vec<String>,
    /// A Confluent-compatible schema registry for the outputs.
    pub schema_registry: SchemaRegistrySection,
}

/// `[outputs.schema_registry]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistrySection {
    /// Base URL (`http://registry:8081`); empty: no registry. When set,
    /// each output topic's schema is registered (or looked up) under the
    /// subject `TOPIC-value` at start-up, `gavel/v1/common.proto` as a
    /// reference under its own import path, and every protobuf output is
    /// framed with its schema id so that standard Confluent deserialisers
    /// read it. Start-up fails if the registry cannot be reached.
    pub url: String,
    /// Register the schemas if they are not registered yet; false: only
    /// look them up (for registries where producers may not register).
    pub auto_register: bool,
    /// `user:password` for HTTP basic authentication, or `env:NAME` /
    /// `file:PATH` holding it. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<Redacted>,
}

impl GavelConfig {
    /// Loads defaults, then `file` (if given), then `GAVEL__…` variables,
    /// and validates the result, reporting every problem found.
    pub fn load(file: Option<&Path>) -> anyhow::Result<GavelConfig> {
        Self::read(file)?.checked(Self::problems)
    }

    /// Loads the config as [`Self::load`] does, but checks only what a
    /// Kafka client needs ([`Self::client_problems`]): for one-shot commands
    /// (`gavel dlq republish`) run where the pack directory may not be.
    pub fn load_client(file: Option<&Path>) -> anyhow::Result<GavelConfig> {
        Self::read(file)?.checked(Self::client_problems)
    }

    /// `self`, or every problem `check` finds in it as one bad-input error.
    fn checked(self, check: fn(&GavelConfig) -> Vec<String>) -> anyhow::Result<GavelConfig> {
        let problems = check(&self);
        if !problems.is_empty() {
            return Err(crate::error::bad_input(format!("invalid configuration:\n  {}", problems.join("\n  "))));
        }
        Ok(self)
    }

    /// Merges the sources and checks types and names, without the semantic checks.
    pub fn read(file: Option<&Path>) -> anyhow::Result<GavelConfig> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(&defaults(), config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(config::Environment::with_prefix("GAVEL").prefix_separator("__").separator("__"));
        Ok(builder.build()?.try_deserialize()?)
    }

    /// What is allowed but probably not meant, logged at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.outputs.exactly_once && self.kafka.instance_id.is_none() {
            warnings.push(
                "outputs.exactly_once without kafka.instance_id: after a crash, read_committed readers wait up to \
                 transaction.timeout.ms for the dead instance's open transactions; set a stable instance_id"
                    .to_string(),
            );
        }
        warnings
    }

    /// The problems that stop any Kafka client: no brokers, or an option
    /// whose `env:`/`file:` value cannot be read.
    pub fn client_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.kafka.brokers.trim().is_empty() {
            problems.push("kafka.brokers is empty".to_string());
        }
        for (section, options) in [
            ("options", &self.kafka.options),
            ("consumer_options", &self.kafka.consumer_options),
            ("producer_options", &self.kafka.producer_options),
        ] {
            for (key, value) in options {
                if let Err(e) = value.resolve() {
                    problems.push(format!("kafka.{section}.\"{key}\": {e}"));
                }
            }
        }
        problems
    }

    /// Every semantic problem that stops start-up, not only the first.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.client_problems();
        if self.kafka.group_id.trim().is_empty() {
            problems.push("kafka.group_id is empty".to_string());
        }
        if self.outputs.transaction_interval.is_zero() {
            problems.push("outputs.transaction_interval must be positive".to_string());
        }
        let registry = &self.outputs.schema_registry;
        if !registry.url.is_empty() {
            if !(registry.url.starts_with("http://") || registry.url.starts_with("https://")) {
                problems
                    .push(format!("outputs.schema_registry.url `{}` is not an http:// or https:// URL", registry.url));
            }
            if self.outputs.encoding != Encoding::Protobuf {
                problems.push(
                    "outputs.schema_registry.url is set but outputs.encoding is not protobuf: the registry \
                     framing is for protobuf records"
                        .to_string(),
                );
            }
        }
        if let Some(Err(e)) = registry.basic_auth.as_ref().map(Redacted::resolve) {
            problems.push(format!("outputs.schema_registry.basic_auth: {e}"));
        }
        if self.outputs.trace_headers.iter().any(|h| h.trim().is_empty()) {
            problems.push("outputs.trace_headers has an empty name".to_string());
        }
        if self.kafka.max_in_flight == 0 {
            problems.push("kafka.max_in_flight must be at least 1".to_string());
        }
        if self.kafka.shard_queue == 0 {
            problems.push("kafka.shard_queue must be at least 1".to_string());
        }
        if let Err(e) = self.kafka.first_start.parse::<gavel_kafka::FirstStart>() {
            problems.push(format!("kafka.first_start is {e}"));
        }
        match self.kafka.order.parse::<InputOrder>() {
            Err(e) => problems.push(format!("kafka.order is {e}")),
            Ok(InputOrder::Log) if self.kafka.shards > 1 => problems.push(format!(
                "kafka.shards is {} but kafka.order is \"log\", which one shard applies in the log's order: \
                 set kafka.shards = 1 (or 0), or kafka.order = \"arrival\" for more shards, whose answers then \
                 depend on how partitions interleave",
                self.kafka.shards
            )),
            Ok(_) => {}
        }
        match self.kafka.state.parse::<gavel_kafka::StateScope>() {
            Err(e) => problems.push(format!("kafka.state is {e}")),
            Ok(gavel_kafka::StateScope::Replicated) => {
                if self.kafka.order != InputOrder::Log.as_str() {
                    problems.push(
                        "kafka.state is \"replicated\", which needs kafka.order = \"log\": every instance must \
                         apply the partitions in the same order"
                            .to_string(),
                    );
                }
            }
            Ok(gavel_kafka::StateScope::Owned) => {}
        }
        if self.kafka.order_wait.is_zero() {
            problems.push("kafka.order_wait must be positive".to_string());
        }
        if self.kafka.max_input_bytes == 0 {
            problems.push("kafka.max_input_bytes must be at least 1".to_string());
        }
        if self.kafka.shutdown_timeout.is_zero() {
            problems.push("kafka.shutdown_timeout must be positive".to_string());
        }
        if self.inputs.is_empty() {
            problems.push("no [[inputs]]: name at least one input topic".to_string());
        }
        if let Err(e) = self.admin_addr.parse::<SocketAddr>() {
            problems.push(format!("admin_addr `{}`: {e}", self.admin_addr));
        }
        if !self.pack.is_dir() {
            problems.push(format!("pack `{}` is not a directory", self.pack.display()));
        }
        problems
    }

    /// Shards to run: `kafka.shards`, or when 0 one per core, or one
    /// under order "log".
    pub fn shards(&self) -> usize {
        match (self.kafka.shards, self.kafka.order.parse::<InputOrder>()) {
            (0, Ok(InputOrder::Log)) => 1,
            (0, _) => crate::runtime::default_shards(),
            (shards, _) => shards,
        }
    }

    /// The adapter's view of this config.
    pub fn kafka_settings(&self) -> KafkaSettings {
        let inputs = self.inputs.iter().map(|i| InputTopic { name: i.topic.clone(), encoding: i.encoding }).collect();
        let mut settings = KafkaSettings::new(&self.kafka.brokers, &self.kafka.group_id, inputs);
        settings.max_in_flight = self.kafka.max_in_flight;
        settings.shard_queue = self.kafka.shard_queue;
        settings.pause_after = self.kafka.pause_after;
        settings.shutdown_timeout = self.kafka.shutdown_timeout;
        settings.warmup_timeout = self.kafka.warmup_timeout;
        settings.offsets_for_times = self.kafka.offsets_for_times;
        settings.max_input_bytes = self.kafka.max_input_bytes;
        // Unparsable values were reported by `problems` before this runs.
        settings.first_start = self.kafka.first_start.parse().unwrap_or_default();
        settings.allow_partial_ownership = self.kafka.allow_partial_ownership;
        settings.order = self.kafka.order.parse().unwrap_or_default();
        settings.order_wait = self.kafka.order_wait;
        settings.state = self.kafka.state.parse().unwrap_or_default();
        settings.outputs = OutputTopics {
            signals: self.outputs.signals.clone(),
            actions: self.outputs.actions.clone(),
            verdicts: self.outputs.verdicts.clone(),
            shadow: self.outputs.shadow.clone(),
            dlq: self.outputs.dlq.clone(),
        };
        settings.exactly_once = self.outputs.exactly_once;
        settings.trace_headers = self.outputs.trace_headers.clone();
        settings.transaction_interval = self.outputs.transaction_interval;
        // Unresolvable values were reported by `problems` before this runs.
        let plain = |options: &BTreeMap<String, Redacted>| {
            options.iter().map(|(k, v)| (k.clone(), v.resolve().unwrap_or_default())).collect()
        };
        settings.client_options = plain(&self.kafka.options);
        settings.consumer_options = plain(&self.kafka.consumer_options);
        settings.producer_options = plain(&self.kafka.producer_options);
        // `group.instance.id` given as a raw option means the same as instance_id.
        let raw = ["group.instance.id"].iter().find_map(|k| {
            self.kafka.consumer_options.get(*k).or_else(|| self.kafka.options.get(*k)).map(|v| v.0.clone())
        });
        settings.instance_id = self.kafka.instance_id.clone().or(raw);
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_problems_are_all_listed() {
        let dir = std::env::temp_dir().join(format!("gavel-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gavel.toml");
        std::fs::write(
            &file,
            r#"
pack = "/nonexistent/pack"
admin_addr = "not an address"
[kafka]
brokers = "b1:9092"
group_id = ""
max_in_flight = 10
[kafka.options]
"sasl.password" = "hunter2"
"#,
        )
        .unwrap();
        let err = GavelConfig::load(Some(&file)).unwrap_err().to_string();
        for expected in ["group_id is empty", "no [[inputs]]", "admin_addr", "is not a directory"] {
            assert!(err.contains(expected), "missing `{expected}` in: {err}");
        }
    }

    #[test]
    fn the_example_config_in_deploy_parses() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/gavel.toml");
        let config = GavelConfig::read(Some(&example)).unwrap();
        assert_eq!(config.inputs.len(), 5);
        assert_eq!(config.kafka.shutdown_timeout, std::time::Duration::from_secs(30));
    }

    /// `gavel config print` writes TOML that reads back as the same config,
    /// with secrets shown as `<redacted>`.
    #[test]
    fn the_printed_config_is_toml_that_reads_back() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/gavel.toml");
        let mut config = GavelConfig::read(Some(&example)).unwrap();
        config.kafka.options.insert("sasl.password".into(), Redacted("hunter2".into()));
        let printed = toml::to_string(&config).unwrap();
        assert!(printed.contains("\"sasl.password\" = \"<redacted>\"") && !printed.contains("hunter2"), "{printed}");
        let back: GavelConfig = toml::from_str(&printed).unwrap();
        config.kafka.options.insert("sasl.password".into(), Redacted("<redacted>".into()));
        assert_eq!(format!("{back:?}"), format!("{config:?}"));
    }

    /// deploy/gavel.toml restates the defaults as documentation: every
    /// value it shares with them must be the default.
    #[test]
    fn the_example_config_restates_the_defaults_exactly() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/gavel.toml");
        let example: toml::Table = std::fs::read_to_string(example).unwrap().parse().unwrap();
        let defaults: toml::Table = defaults().parse().unwrap();
        fn same(path: &str, default: &toml::Table, example: &toml::Table) {
            for (key, value) in default {
                let Some(theirs) = example.get(key) else { continue };
                match (value, theirs) {
                    (toml::Value::Table(d), toml::Value::Table(e)) => same(&format!("{path}{key}."), d, e),
                    _ => assert_eq!(value, theirs, "deploy/gavel.toml {path}{key} differs from the default"),
                }
            }
        }
        same("", &defaults, &example);
    }

    #[test]
    fn instance_id_becomes_static_membership() {
        let dir = std::env::temp_dir().join(format!("gavel-config-s-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pack")).unwrap();
        let file = dir.join("gavel.toml");
        let pack = dir.join("pack");
        std::fs::write(
            &file,
            format!(
                "pack = {:?}\n[kafka]\ninstance_id = \"gavel-7\"\n[[inputs]]\ntopic = \"t\"\nencoding = \"json\"\n",
                pack.display().to_string()
            ),
        )
        .unwrap();
        let config = GavelConfig::load(Some(&file)).unwrap();
        let settings = config.kafka_settings();
        assert_eq!(settings.instance_id.as_deref(), Some("gavel-7"));
        assert_eq!(settings.brokers, "127.0.0.1:9092", "defaults still apply");
        assert!(!settings.exactly_once, "at-least-once unless asked");
    }

    /// Replicated state is carried into the adapter; with arrival order,
    /// start-up says it needs the log's order.
    #[test]
    fn replicated_state_needs_the_logs_order_and_at_least_once() {
        let dir = std::env::temp_dir().join(format!("gavel-config-r-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pack")).unwrap();
        let file = dir.join("gavel.toml");
        let write = |kafka: &str, outputs: &str| {
            let text = format!(
                "pack = {:?}\n[kafka]\n{kafka}\n[[inputs]]\ntopic = \"t\"\nencoding = \"json\"\n[outputs]\n{outputs}\n",
                dir.join("pack").display().to_string()
            );
            std::fs::write(&file, text).unwrap();
        };
        write("state = \"replicated\"", "");
        let config = GavelConfig::load(Some(&file)).unwrap();
        assert_eq!(config.kafka_settings().state, gavel_kafka::StateScope::Replicated);
        write("state = \"replicated\"\norder = \"arrival\"", "");
        let err = GavelConfig::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("needs kafka.order = \"log\""), "{err}");
        write("state = \"replicated\"\ninstance_id = \"g-1\"", "exactly_once = true");
        assert!(GavelConfig::load(Some(&file)).unwrap().kafka_settings().exactly_once);
        write("state = \"everywhere\"", "");
        let err = GavelConfig::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("kafka.state is `everywhere`"), "{err}");
    }

    #[test]
    fn exactly_once_is_carried_into_the_adapter_settings() {
        let dir = std::env::temp_dir().join(format!("gavel-config-eo-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pack")).unwrap();
        let file = dir.join("gavel.toml");
        let text = format!(
            "pack = {:?}\n[[inputs]]\ntopic = \"t\"\nencoding = \"json\"\n[outputs]\nexactly_once = true\n",
            dir.join("pack").display().to_string()
        );
        std::fs::write(&file, text).unwrap();
        let config = GavelConfig::load(Some(&file)).unwrap();
        assert!(config.outputs.exactly_once);
        assert!(config.kafka_settings().exactly_once);
        assert_eq!(config.kafka_settings().transaction_interval, std::time::Duration::from_millis(100));
        assert!(config.warnings().iter().any(|w| w.contains("instance_id")), "{:?}", config.warnings());
    }

    #[test]
    fn unknown_keys_are_rejected_and_secrets_redacted() {
        let dir = std::env::temp_dir().join(format!("gavel-config-u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gavel.toml");
        std::fs::write(&file, "[kafka]\nbrokrs = \"x\"\n").unwrap();
        let err = GavelConfig::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("brokrs"), "{err}");

        let secret = Redacted("hunter2".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_missing_ones_are_listed() {
        let dir = std::env::temp_dir().join(format!("gavel-config-secret-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pack")).unwrap();
        std::fs::write(dir.join("password"), "from-a-file\n").unwrap();
        let file = dir.join("gavel.toml");
        let text = format!(
            "pack = {pack:?}\n[kafka.options]\n\"sasl.password\" = \"file:{secret}\"\n\
             \"sasl.username\" = \"env:PATH\"\n\"ssl.key.password\" = \"env:GAVEL_TEST_SURELY_UNSET\"\n\
             [[inputs]]\ntopic = \"t\"\nencoding = \"json\"\n",
            pack = dir.join("pack").display().to_string(),
            secret = dir.join("password").display()
        );
        std::fs::write(&file, text).unwrap();
        let err = GavelConfig::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("GAVEL_TEST_SURELY_UNSET is not set"), "{err}");
        let fixed = std::fs::read_to_string(&file).unwrap().replace("env:GAVEL_TEST_SURELY_UNSET", "plain");
        std::fs::write(&file, fixed).unwrap();
        let settings = GavelConfig::load(Some(&file)).unwrap().kafka_settings();
        assert_eq!(settings.client_options["sasl.password"], "from-a-file");
        assert_eq!(settings.client_options["sasl.username"], std::env::var("PATH").unwrap());
    }
}
