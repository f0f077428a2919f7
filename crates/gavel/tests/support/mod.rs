//! Helpers for tests that run gavel as a user would: the `gavel` binary as a
//! child process with a config file, against a real Apache Kafka broker,
//! killed and restarted at will. Brokers come from `gavel_testkit`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gavel_kafka::{InputTopic, KafkaSettings, OutputTopics, create_topics};
use gavel_model::pb::{AutoAction, BidPlaced, Money, RiskSignal, Verdict};
use gavel_model::{Encoding, Event, Payload, encode_json, timestamp_from_ms};
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

#[allow(unused_imports)] // Each test binary uses its own share of these.
pub use gavel_testkit::{Broker, free_port};

/// The broker the test script started, or `None` to skip (see
/// `gavel_testkit`: a failure unless skipping was asked for outside CI).
pub fn shared_brokers() -> Option<String> {
    gavel_testkit::shared_brokers(std::thread::current().name().unwrap_or("a broker test"))
}

/// Whether the long variants run (`GAVEL_LONG_TESTS=1`).
pub fn long() -> bool {
    std::env::var("GAVEL_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// Serialises the tests of one binary: each runs brokers and gavel
/// processes, and two cores cannot host two such tests at once fairly.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The pack every process test runs: three bids within ten minutes by one
/// user fire a rule that blocks the bid.
pub const PACK: &str = r#"
version: "resilience-1"
features:
  - name: bids_per_user_10m
    on: [bid_placed]
    key: event.user_id
    window: 10m
    aggregate: count
rules:
  - id: fast_bidder
    description: three bids within ten minutes
    on: [bid_placed]
    when: features.bids_per_user_10m >= 3
    score: 70
    actions:
      - type: block_bid
        target: bid
        id: event.bid_placed.bid_id
"#;

/// `session.timeout.ms` of every test process: how long a SIGKILLed
/// member stays in its group.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// `kafka.shutdown_timeout` of every test process, which also bounds the
/// drain before partitions are given up in a rebalance.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Topics, pack and config for one test's gavel processes.
pub struct Setup {
    pub dir: PathBuf,
    pub brokers: String,
    pub group: String,
    pub input: String,
    pub outputs: OutputTopics,
    /// Lines added to the `[kafka]` section of every config written.
    pub kafka_extra: String,
    /// Lines added to the `[outputs]` section of every config written.
    pub outputs_extra: String,
}

impl Setup {
    /// Creates the topics (`partitions` each) and writes the pack.
    pub async fn new(brokers: &str, name: &str, partitions: i32) -> Setup {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("{name}-{}", &run[..8]);
        let dir = std::env::temp_dir().join(format!("gavel-{prefix}"));
        std::fs::create_dir_all(dir.join("pack")).unwrap();
        std::fs::write(dir.join("pack/pack.yaml"), PACK).unwrap();
        let outputs = OutputTopics {
            signals: format!("{prefix}-signals"),
            actions: format!("{prefix}-actions"),
            verdicts: format!("{prefix}-verdicts"),
            shadow: format!("{prefix}-shadow"),
            dlq: format!("{prefix}-dlq"),
        };
        let setup = Setup {
            dir,
            brokers: brokers.into(),
            group: format!("{prefix}-gavel"),
            input: format!("{prefix}-bids"),
            outputs,
            kafka_extra: String::new(),
            outputs_extra: String::new(),
        };
        let settings = setup.settings();
        let mut topics = vec![setup.input.as_str()];
        topics.extend(setup.outputs.all());
        create_topics(&settings, &topics, partitions).await.expect("create topics");
        setup
    }

    pub fn settings(&self) -> KafkaSettings {
        let mut settings = KafkaSettings::new(
            &self.brokers,
            &self.group,
            vec![InputTopic { name: self.input.clone(), encoding: Encoding::Json }],
        );
        settings.outputs = self.outputs.clone();
        settings.first_start = gavel_kafka::FirstStart::Earliest;
        settings
    }

    /// Replaces the test pack with the shipped one (`rules/`).
    pub fn use_shipped_pack(&self) {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        copy_dir(&shipped, &self.dir.join("pack"));
    }

    /// Writes a config for one gavel process and returns its path and admin address.
    pub fn config(&self, name: &str, instance_id: Option<&str>, shards: usize) -> (PathBuf, SocketAddr) {
        self.config_with(name, instance_id, shards, "")
    }

    /// Like [`Setup::config`], with `extra` TOML lines appended to `[kafka.options]`.
    pub fn config_with(
        &self,
        name: &str,
        instance_id: Option<&str>,
        shards: usize,
        extra_options: &str,
    ) -> (PathBuf, SocketAddr) {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let instance = instance_id.map(|id| format!("instance_id = \"{id}\"\n")).unwrap_or_default();
        // One shard applies the log's order; more need arrival order.
        let order = if shards > 1 { "arrival" } else { "log" };
        let text = format!(
            r#"pack = "{pack}"
admin_addr = "{admin}"

[kafka]
brokers = "{brokers}"
group_id = "{group}"
{instance}shards = {shards}
order = "{order}"
{kafka_extra}
shutdown_timeout = "{shutdown}s"
offsets_for_times = false
# The tests write input before gavel starts and expect it all scored.
first_start = "earliest"

[kafka.options]
{extra_options}

[kafka.consumer_options]
"session.timeout.ms" = "{session}"
"heartbeat.interval.ms" = "500"

[[inputs]]
topic = "{input}"
encoding = "json"

[outputs]
signals = "{signals}"
actions = "{actions}"
verdicts = "{verdicts}"
dlq = "{dlq}"
emit_verdicts = true
{outputs_extra}
"#,
            pack = self.dir.join("pack").display(),
            shutdown = SHUTDOWN_TIMEOUT.as_secs(),
            session = SESSION_TIMEOUT.as_millis(),
            brokers = self.brokers,
            group = self.group,
            input = self.input,
            kafka_extra = self.kafka_extra,
            outputs_extra = self.outputs_extra,
            signals = self.outputs.signals,
            actions = self.outputs.actions,
            verdicts = self.outputs.verdicts,
            dlq = self.outputs.dlq,
        );
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        (path, admin)
    }

    /// Sum over the input's partitions of (high watermark − committed offset).
    pub fn lag(&self) -> Option<i64> {
        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &self.brokers).set("group.id", &self.group).create().ok()?;
        let metadata = consumer.fetch_metadata(Some(&self.input), Duration::from_secs(5)).ok()?;
        let partitions: Vec<i32> = metadata.topics()[0].partitions().iter().map(|p| p.id()).collect();
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            tpl.add_partition(&self.input, p);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
        let mut lag = 0;
        for &p in &partitions {
            let (_, high) = consumer.fetch_watermarks(&self.input, p, Duration::from_secs(5)).ok()?;
            let done = match committed.find_partition(&self.input, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            };
            lag += high - done;
        }
        Some(lag)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A bid placed now by `user`, with a unique event id.
pub fn bid(n: u64, user: &str) -> Vec<u8> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let event = Event {
        event_id: format!("ev-{n}"),
        occurred_at: Some(timestamp_from_ms(now)),
        user_id: user.into(),
        device_id: Some(format!("dev-{user}")),
        payload: Some(Payload::BidPlaced(BidPlaced {
            bid_id: format!("bid-{n}"),
            listing_id: "l1".into(),
            show_id: "sh1".into(),
            seller_id: "s1".into(),
            amount: Some(Money { amount_minor: 1_000, currency: "USD".into() }),
        })),
        ..Default::default()
    };
    encode_json(&event).unwrap()
}

/// A producer that rides out broker restarts (long message timeout).
pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "120000")
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// Produces events `from..to` (ids), `rate` per second, users cycling over `users`.
pub async fn produce(producer: &FutureProducer, topic: &str, from: u64, to: u64, rate: u64, users: u64) {
    let started = Instant::now();
    let mut pending = Vec::new();
    for n in from..to {
        let user = format!("u{}", n % users);
        let payload = bid(n, &user);
        let record = FutureRecord::to(topic).key(&user).payload(&payload);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
        let due = started + Duration::from_secs_f64((n - from + 1) as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    for delivery in pending {
        delivery.await.expect("delivery not canceled").expect("delivered");
    }
}

/// Everything gavel published, as read back from its output topics.
#[derive(Default, Debug)]
pub struct Seen {
    /// Verdicts per event id.
    pub verdicts: HashMap<String, u32>,
    /// Every action: (action id, source event id, rule id).
    pub actions: Vec<(String, String, String)>,
    /// The last verdict's decision and score per event id.
    pub decisions: HashMap<String, (i32, i32)>,
}

impl Seen {
    pub fn verdicts_total(&self) -> u64 {
        self.verdicts.values().map(|&n| n as u64).sum()
    }
}

/// A client config for a test's own reader of `brokers`: a group of its
/// own (named after `name`) that starts at the beginning of each topic.
pub fn reader_config(brokers: &str, name: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{name}-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest");
    config
}

/// Reads `topics` from their beginning on a thread of its own, with
/// `isolation.level` as given, handing each message's topic and payload to
/// `each` with `into` locked; stops once the caller drops its `into`.
fn read_in_background<T: Send + 'static>(
    setup: &Setup,
    topics: &[&str],
    isolation: &str,
    into: &Arc<Mutex<T>>,
    mut each: impl FnMut(&mut T, &str, &[u8]) + Send + 'static,
) {
    let consumer: BaseConsumer = reader_config(&setup.brokers, "collector")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    let into = Arc::clone(into);
    std::thread::spawn(move || {
        loop {
            if Arc::strong_count(&into) == 1 {
                return;
            }
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
            each(&mut into.lock().unwrap(), message.topic(), message.payload().unwrap_or_default());
        }
    });
}

/// Reads the verdicts and actions topics in the background into a shared [`Seen`].
pub fn collect(setup: &Setup) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let verdicts = setup.outputs.verdicts.clone();
    let topics = [setup.outputs.verdicts.as_str(), setup.outputs.actions.as_str()];
    read_in_background(setup, &topics, "read_uncommitted", &seen, move |seen, topic, payload| {
        if topic == verdicts {
            let verdict = Verdict::decode(payload).expect("verdict decodes");
            seen.decisions.insert(verdict.event_id.clone(), (verdict.decision, verdict.score));
            *seen.verdicts.entry(verdict.event_id).or_default() += 1;
        } else {
            let action = AutoAction::decode(payload).expect("action decodes");
            seen.actions.push((action.action_id, action.source_event_id, action.rule_id));
        }
    });
    seen
}

/// Everything gavel published as a `read_committed` consumer sees it: how
/// many times each output was seen.
#[derive(Default, Debug)]
pub struct Committed {
    /// Verdicts per event id.
    pub verdicts: HashMap<String, u32>,
    /// Signals per source event id.
    pub signals: HashMap<String, u32>,
    /// Actions per action id.
    pub actions: HashMap<String, u32>,
}

impl Committed {
    /// Outputs seen more than once, counting each extra sighting.
    pub fn duplicates(&self) -> u64 {
        [&self.verdicts, &self.signals, &self.actions]
            .iter()
            .flat_map(|m| m.values())
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum()
    }
}

/// Reads the verdicts, signals and actions topics in the background with
/// `isolation.level=read_committed` into a shared [`Committed`].
pub fn collect_committed(setup: &Setup) -> Arc<Mutex<Committed>> {
    let seen = Arc::new(Mutex::new(Committed::default()));
    let outputs = setup.outputs.clone();
    let topics = [setup.outputs.verdicts.as_str(), setup.outputs.signals.as_str(), setup.outputs.actions.as_str()];
    read_in_background(setup, &topics, "read_committed", &seen, move |seen, topic, payload| {
        let (map, id) = if topic == outputs.verdicts {
            (&mut seen.verdicts, Verdict::decode(payload).expect("verdict decodes").event_id)
        } else if topic == outputs.signals {
            (&mut seen.signals, RiskSignal::decode(payload).expect("signal decodes").event_id)
        } else {
            (&mut seen.actions, AutoAction::decode(payload).expect("action decodes").action_id)
        };
        *map.entry(id).or_default() += 1;
    });
    seen
}

/// Waits until `check` holds, up to `within`.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

/// A `gavel run` child process.
pub struct Gavel {
    child: Child,
    admin: SocketAddr,
    pub log: PathBuf,
    pub started: Instant,
}

impl Gavel {
    pub fn start(config: &Path, admin: SocketAddr, log: &Path) -> Gavel {
        Self::start_with_env(config, admin, log, &[])
    }

    /// Starts one with extra environment variables.
    pub fn start_with_env(config: &Path, admin: SocketAddr, log: &Path, env: &[(&str, &str)]) -> Gavel {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gavel"))
            .args(["run", "--config"])
            .arg(config)
            .env("GAVEL_LOG", "info,rdkafka=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start gavel");
        Gavel { child, admin, log: log.to_path_buf(), started: Instant::now() }
    }

    /// SIGKILL: no drain, no commit, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `within` for it to exit.
    pub fn terminate(&mut self, within: Duration) -> Option<(ExitStatus, Duration)> {
        let asked = Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        while asked.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, asked.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.admin, Duration::from_millis(500)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: gavel\r\nConnection: close\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Some((status, body))
    }

    /// `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        self.get("/readyz").is_some_and(|(status, _)| status == 200)
    }

    /// The value of an unlabelled metric (or the sum over its label sets).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        let values: Vec<f64> = body
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    /// Waits until ready; returns how long since start, or `None` on timeout.
    pub async fn until_ready(&self, within: Duration) -> Option<Duration> {
        eventually(within, || self.ready()).await.then(|| self.started.elapsed())
    }

    /// The body of a GET on the admin endpoint.
    pub fn fetch(&self, path: &str) -> Option<String> {
        self.get(path).map(|(_, body)| body)
    }

    /// The process's log so far (for assertion messages).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Gavel {
    fn drop(&mut self) {
        self.kill();
    }
}
