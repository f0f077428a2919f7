//! The adapter against librdkafka's in-process mock cluster: outputs are
//! produced, undecodable input is dead-lettered with its provenance in
//! headers, and offsets are committed only for acknowledged messages.
//! (Backpressure is tested against the real broker in `broker.rs`: the mock
//! cluster stops serving a partition after many pause/resume cycles.)

use std::collections::HashMap;
use std::time::Duration;

use std::sync::{Arc, Mutex};

use gavel_kafka::{
    Hooks, Input, InputTopic, KafkaSettings, Output, OutputTopic, Outputs, Pipeline, PipelineObserver, Processed,
    Processor,
};
use gavel_model::Encoding;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Upper-cases payloads into the signals topic; rejects payloads starting
/// with `bad` and panics on those starting with `panic`.
struct Shout;

impl Processor for Shout {
    fn process(&mut self, input: &Input<'_>) -> Processed {
        if input.payload.starts_with(b"panic") {
            panic!("a bug met {:?}", String::from_utf8_lossy(input.payload));
        }
        if input.payload.starts_with(b"bad") {
            return Processed::DeadLetter(format!("cannot shout at offset {}", input.offset));
        }
        let mut shouted = Output::new(
            OutputTopic::Signals,
            input.key.unwrap_or_default().to_vec(),
            input.payload.to_ascii_uppercase(),
        );
        shouted.headers.push(("content-type", "text/plain".into()));
        Processed::Outputs(vec![shouted].into())
    }
}

fn consumer(brokers: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

/// The next `n` payloads `consumer` reads, as text, sorted.
async fn sorted_payloads(consumer: &StreamConsumer, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("records in time").unwrap();
        seen.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
    }
    seen.sort();
    seen
}

/// A record's headers, by name.
fn headers_of(m: &rdkafka::message::BorrowedMessage<'_>) -> HashMap<String, String> {
    m.headers()
        .unwrap()
        .iter()
        .map(|h| (h.key.to_string(), String::from_utf8(h.value.unwrap().to_vec()).unwrap()))
        .collect()
}

/// A mock cluster with the input topic `in` and the output topics, two
/// partitions each, holding `payloads` on `in` (keyed `k0`, `k1`, …), and
/// settings for group `gavel-test` reading it.
async fn cluster_with(payloads: &[&str]) -> (MockCluster<'static, DefaultProducerContext>, KafkaSettings) {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let input = "in";
    let mut settings =
        KafkaSettings::new(&brokers, "gavel-test", vec![InputTopic { name: input.into(), encoding: Encoding::Json }]);
    // The payloads are written before the pipeline starts: read them all.
    settings.first_start = gavel_kafka::FirstStart::Earliest;
    for topic in [input].iter().chain(settings.outputs.all().iter()) {
        cluster.create_topic(topic, 2, 1).unwrap();
    }
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    for (i, payload) in payloads.iter().enumerate() {
        let key = format!("k{i}");
        producer.send(FutureRecord::to(input).key(&key).payload(*payload), Duration::from_secs(5)).await.unwrap();
    }
    (cluster, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_dead_letters_and_commits() {
    let payloads = ["hello", "bad news", "world", "panic secret", "again"];
    let (cluster, mut settings) = cluster_with(&payloads).await;
    let brokers = cluster.bootstrap_servers();
    let input = "in";
    settings.max_in_flight = 4;

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pipeline = Pipeline::new(settings.clone()).unwrap();
    let run = tokio::spawn(async move {
        let shards: Vec<Box<dyn Processor>> = vec![Box::new(Shout), Box::new(Shout)];
        pipeline
            .run(shards, Hooks::default(), async {
                let _ = stop_rx.await;
            })
            .await
    });

    let seen = sorted_payloads(&consumer(&brokers, &settings.outputs.signals), 3).await;
    assert_eq!(seen, ["AGAIN", "HELLO", "WORLD"]);

    let dlq = consumer(&brokers, &settings.outputs.dlq);
    let mut dead = HashMap::new();
    while dead.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(30), dlq.recv()).await.expect("dlq in time").unwrap();
        let headers = headers_of(&m);
        dead.insert(m.payload().unwrap().to_vec(), (m.key().unwrap().to_vec(), headers));
    }
    let (key, headers) = &dead[&b"bad news"[..]];
    assert_eq!(key, b"k1", "the original key and bytes are kept");
    assert_eq!(headers["gavel.source.topic"], input);
    assert_eq!(headers["gavel.source.encoding"], "json");
    assert!(headers["gavel.error"].starts_with("cannot shout at offset"));
    assert!(headers.contains_key("gavel.source.partition") && headers.contains_key("gavel.source.offset"));
    // A panic dead-letters its message without quoting it; the shard goes on.
    let (key, headers) = &dead[&b"panic secret"[..]];
    assert_eq!(key, b"k3");
    assert!(headers["gavel.error"].starts_with("processing panicked"), "{}", headers["gavel.error"]);
    assert!(!headers["gavel.error"].contains("secret"));

    stop_tx.send(()).unwrap();
    run.await.unwrap().unwrap();

    // Every input message was acknowledged, so the committed offsets cover them all.
    let reader: StreamConsumer =
        ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", "gavel-test").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(input, 0);
    tpl.add_partition(input, 1);
    let committed = reader.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(total, payloads.len() as i64);
}

/// Takes each payload as the event's time in ms; dead-letters any other.
struct Stamp;

impl Processor for Stamp {
    fn process(&mut self, input: &Input<'_>) -> Processed {
        match std::str::from_utf8(input.payload).ok().and_then(|s| s.parse().ok()) {
            Some(time) => Processed::Outputs(Outputs::new(vec![], Some(time))),
            None => Processed::DeadLetter("not a time".into()),
        }
    }
}

/// Records the event time reported with each acknowledgement.
#[derive(Default)]
struct EventTimes(Mutex<Vec<Option<i64>>>);

impl PipelineObserver for EventTimes {
    fn acknowledged(&self, _kafka_timestamp_ms: Option<i64>, event_time_ms: Option<i64>) {
        self.0.lock().unwrap().push(event_time_ms);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_time_a_processor_returns_is_reported_with_its_acknowledgement() {
    let (_cluster, settings) = cluster_with(&["1000", "not a time", "2000", "3000"]).await;
    let times = Arc::new(EventTimes::default());
    let hooks = Hooks { observer: Arc::clone(&times) as Arc<dyn PipelineObserver>, ..Hooks::default() };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shards: Vec<Box<dyn Processor>> = vec![Box::new(Stamp)];
    let run = tokio::spawn(Pipeline::new(settings).unwrap().run(shards, hooks, async {
        let _ = stop_rx.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while times.0.lock().unwrap().len() < 4 {
        assert!(std::time::Instant::now() < deadline, "acknowledgements in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(()).unwrap();
    run.await.unwrap().unwrap();
    let mut seen = times.0.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [None, Some(1000), Some(2000), Some(3000)], "a dead-lettered message has no event time");
}

/// Counts the records replaced because they were too large.
#[derive(Default)]
struct Oversized(Mutex<Vec<String>>);

impl PipelineObserver for Oversized {
    fn oversized(&self, topic: &str) {
        self.0.lock().unwrap().push(topic.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_too_large_to_write_become_dead_letter_references() {
    // The producer takes records up to 2,000 bytes; inputs over 5,000 are
    // not processed at all.
    let big_output = "b".repeat(1_500);
    let huge_input = "h".repeat(6_000);
    let payloads = ["small", big_output.as_str(), huge_input.as_str(), "after"];
    let (cluster, mut settings) = cluster_with(&payloads).await;
    let brokers = cluster.bootstrap_servers();
    settings.producer_options.insert("message.max.bytes".into(), "2000".into());
    settings.max_input_bytes = 5_000;
    let seen = Arc::new(Oversized::default());
    let hooks = Hooks { observer: Arc::clone(&seen) as Arc<dyn PipelineObserver>, ..Hooks::default() };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shards: Vec<Box<dyn Processor>> = vec![Box::new(Shout), Box::new(Shout)];
    let run = tokio::spawn(Pipeline::new(settings.clone()).unwrap().run(shards, hooks, async {
        let _ = stop_rx.await;
    }));

    let shouted = sorted_payloads(&consumer(&brokers, &settings.outputs.signals), 2).await;
    assert_eq!(shouted, ["AFTER", "SMALL"], "the shards went on past the large messages");

    let dlq = consumer(&brokers, &settings.outputs.dlq);
    let mut references = HashMap::new();
    while references.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(30), dlq.recv()).await.expect("dlq in time").unwrap();
        assert!(m.payload().is_none_or(<[u8]>::is_empty), "a reference carries no bytes");
        let headers = headers_of(&m);
        references.insert(headers["gavel.source.size"].clone(), headers);
    }
    let output = &references["1502"];
    // Its 1,502 bytes of key and value plus the 22 of its content-type header.
    assert!(output["gavel.error"].contains("output to risk.signals is 1524 bytes"), "{:?}", output["gavel.error"]);
    assert_eq!(output["gavel.source.topic"], "in");
    let input = &references["6002"];
    assert!(input["gavel.error"].contains("over kafka.max_input_bytes"), "{:?}", input["gavel.error"]);
    assert_eq!(seen.0.lock().unwrap().len(), 2);

    stop_tx.send(()).unwrap();
    run.await.unwrap().unwrap();
}
