//! End to end against a real broker: the test script starts Apache Kafka and sets
//! `GAVEL_TEST_BROKERS`. An ordinary Kafka client produces JSON and protobuf
//! events; gavel must publish the expected `RiskSignal`s to the signals
//! topic, dead-letter a garbage message with its provenance, and commit the
//! input offsets. Topic and group names are random per run.
//!
//! Without `GAVEL_TEST_BROKERS` the test is skipped, except under CI, where
//! a missing broker is a failure.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gavel::runtime::ServeOptions;
use gavel::runtime::reload::Rules;
use gavel::telemetry::Stats;
use gavel_engine::Engine;
use gavel_kafka::{InputTopic, KafkaSettings, OutputTopics, create_topics};
use gavel_model::pb::{BidPlaced, Money, RiskSignal};
use gavel_model::{Encoding, Event, Payload, encode_json, encode_protobuf, timestamp_from_ms};
use gavel_rules::Pack;
use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::sync::atomic::AtomicBool;

const PACK: &str = r#"
version: "e2e-1"
features:
  - name: bids_per_user_10s
    on: [bid_placed]
    key: event.user_id
    window: 10s
    aggregate: count
rules:
  - id: fast_bidder
    description: three bids within ten seconds
    on: [bid_placed]
    when: features.bids_per_user_10s >= 3
    score: 70
"#;

fn bid(user: &str, n: i64) -> Event {
    Event {
        event_id: format!("{user}-bid-{n}"),
        occurred_at: Some(timestamp_from_ms(1_767_225_600_000 + n * 1_000)),
        user_id: user.into(),
        device_id: Some(format!("dev-{user}")),
        payload: Some(Payload::BidPlaced(BidPlaced {
            bid_id: format!("b{n}"),
            listing_id: "l1".into(),
            show_id: "sh1".into(),
            seller_id: "s1".into(),
            amount: Some(Money { amount_minor: 100 * (n + 1), currency: "USD".into() }),
        })),
        ..Default::default()
    }
}

/// Output topic names unique to one test run.
fn outputs_for(prefix: &str) -> OutputTopics {
    OutputTopics {
        signals: format!("{prefix}-signals"),
        actions: format!("{prefix}-actions"),
        verdicts: format!("{prefix}-verdicts"),
        shadow: format!("{prefix}-shadow"),
        dlq: format!("{prefix}-dlq"),
    }
}

fn reader(brokers: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer =
        support::reader_config(brokers, "e2e-reader").set("fetch.wait.max.ms", "5").create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_protobuf_events_become_signals_and_garbage_is_dead_lettered() {
    let Some(brokers) = support::shared_brokers() else { return };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let json_topic = format!("e2e-{run}-chat-json");
    let proto_topic = format!("e2e-{run}-bids-proto");
    let outputs = outputs_for(&format!("e2e-{run}"));
    let group = format!("e2e-gavel-{run}");
    let mut settings = KafkaSettings::new(
        &brokers,
        &group,
        vec![
            InputTopic { name: json_topic.clone(), encoding: Encoding::Json },
            InputTopic { name: proto_topic.clone(), encoding: Encoding::Protobuf },
        ],
    );
    // The events are written before gavel starts: read them all.
    settings.first_start = gavel_kafka::FirstStart::Earliest;
    settings.outputs = outputs.clone();
    let mut topics = vec![json_topic.as_str(), proto_topic.as_str()];
    topics.extend(outputs.all());
    create_topics(&settings, &topics, 1).await.expect("create topics on the broker");

    // An ordinary client produces three protobuf bids by one user, three
    // JSON bids by another, and a message that is neither.
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    for n in 0..3 {
        let pb = encode_protobuf(&bid("alice", n));
        producer.send(FutureRecord::to(&proto_topic).key("alice").payload(&pb), Duration::from_secs(10)).await.unwrap();
        let js = encode_json(&bid("bob", n)).unwrap();
        producer.send(FutureRecord::to(&json_topic).key("bob").payload(&js), Duration::from_secs(10)).await.unwrap();
    }
    producer
        .send(FutureRecord::to(&json_topic).key("mallory").payload("{not json"), Duration::from_secs(10))
        .await
        .unwrap();

    let rules = Rules::new(Engine::new(Pack::compile([("e2e.yaml", PACK)]).unwrap()), None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ready = Arc::new(AtomicBool::new(false));
    let gavel = tokio::spawn(gavel::runtime::serve(
        settings,
        rules,
        Arc::new(Stats::default()),
        ServeOptions::default(),
        ready,
        async {
            let _ = stop_rx.await;
        },
    ));

    // Exactly one signal per user: the third bid crosses the threshold.
    let signals = reader(&brokers, &outputs.signals);
    let mut by_user: HashMap<String, RiskSignal> = HashMap::new();
    while by_user.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(60), signals.recv())
            .await
            .expect("signals arrive within 60 s")
            .unwrap();
        let signal = RiskSignal::decode(m.payload().unwrap()).expect("signals are protobuf RiskSignals");
        let user = signal.entity.as_ref().unwrap().id.clone();
        assert_eq!(m.key(), Some(user.as_bytes()), "signals are keyed by entity");
        assert!(by_user.insert(user.clone(), signal).is_none(), "one signal per user, got a second for {user}");
    }
    for user in ["alice", "bob"] {
        let signal = &by_user[user];
        assert_eq!(signal.event_id, format!("{user}-bid-2"));
        assert_eq!(signal.event_kind, "bid_placed");
        assert_eq!(signal.score, 70);
        assert_eq!(signal.pack_version, "e2e-1");
        assert_eq!(signal.hits.len(), 1);
        assert_eq!(signal.hits[0].rule_id, "fast_bidder");
        assert_eq!(signal.hits[0].features[0].value, 3.0);
    }

    let dlq = reader(&brokers, &outputs.dlq);
    let m = tokio::time::timeout(Duration::from_secs(60), dlq.recv()).await.expect("DLQ record within 60 s").unwrap();
    assert_eq!(m.payload().unwrap(), b"{not json");
    let headers: HashMap<String, String> = m
        .headers()
        .expect("DLQ records carry headers")
        .iter()
        .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
        .collect();
    assert_eq!(headers["gavel.source.topic"], json_topic);
    assert_eq!(headers["gavel.source.partition"], "0");
    assert_eq!(headers["gavel.source.offset"], "3");
    assert!(headers["gavel.error"].contains("invalid JSON"), "{headers:?}");

    stop_tx.send(()).unwrap();
    gavel.await.unwrap().expect("gavel shuts down cleanly");

    // Gavel committed every input offset it acknowledged: 4 JSON, 3 protobuf.
    let check: StreamConsumer =
        ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", &group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&json_topic, 0);
    tpl.add_partition(&proto_topic, 0);
    let committed = check.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    assert_eq!(committed.find_partition(&json_topic, 0).unwrap().offset(), Offset::Offset(4));
    assert_eq!(committed.find_partition(&proto_topic, 0).unwrap().offset(), Offset::Offset(3));
}

const WARM_PACK: &str = r#"
version: "warm-1"
features:
  - name: bids_per_user_1h
    on: [bid_placed]
    key: event.user_id
    window: 1h
    aggregate: count
rules:
  - id: counted
    description: every bid, with the hour's count
    on: [bid_placed]
    when: features.bids_per_user_1h >= 1
    score: 1
"#;

/// A restart must not forget: events before the committed offset and inside
/// the longest window are replayed into the features (and nothing is
/// emitted for them); events older than the window are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_rebuilds_features_from_the_log_without_emitting() {
    let Some(brokers) = support::shared_brokers() else { return };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let input = format!("warm-{run}-bids");
    let outputs = outputs_for(&format!("warm-{run}"));
    let group = format!("warm-gavel-{run}");
    let mut settings =
        KafkaSettings::new(&brokers, &group, vec![InputTopic { name: input.clone(), encoding: Encoding::Protobuf }]);
    settings.first_start = gavel_kafka::FirstStart::Earliest;
    settings.outputs = outputs.clone();
    let mut topics = vec![input.as_str()];
    topics.extend(outputs.all());
    create_topics(&settings, &topics, 1).await.expect("create topics");

    // Four bids two hours ago (outside the 1 h window), five in the last
    // ten minutes; the group has committed all nine.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let times: Vec<i64> =
        (0..4).map(|i| now - 7_200_000 + i * 1_000).chain((0..5).map(|i| now - 600_000 + i * 60_000)).collect();
    for (n, t) in times.iter().enumerate() {
        let mut event = bid("walt", n as i64);
        event.occurred_at = Some(timestamp_from_ms(*t));
        let bytes = encode_protobuf(&event);
        producer
            .send(FutureRecord::to(&input).key("walt").payload(&bytes).timestamp(*t), Duration::from_secs(10))
            .await
            .unwrap();
    }
    let committer: rdkafka::consumer::BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", &group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&input, 0, Offset::Offset(times.len() as i64)).unwrap();
    committer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).expect("commit for the group");
    drop(committer);

    let engine = || Engine::new(Pack::compile([("warm.yaml", WARM_PACK)]).unwrap());
    // Both ways of finding where to start: the broker's offsets-for-times,
    // and the binary search over timestamps used where brokers lack it.
    for by_time in [true, false] {
        let mut settings = settings.clone();
        settings.offsets_for_times = by_time;
        let report = gavel::runtime::warm_up(&settings, &Rules::new(engine(), None)).await.expect("warm-up");
        assert_eq!(report.partitions, 1);
        assert_eq!(report.messages, 5, "only the events inside the window are replayed: {report:?}");
        if !by_time {
            assert_eq!(report.searched, 1, "{report:?}");
        }
    }

    // A fresh start: serve() warms up, then goes live with one new bid,
    // whose count includes the five replayed ones.
    let rules = Rules::new(engine(), None);
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gavel = tokio::spawn(gavel::runtime::serve(
        settings,
        rules,
        Arc::new(Stats::default()),
        ServeOptions::default(),
        ready,
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut live = bid("walt", 99);
    live.occurred_at = Some(timestamp_from_ms(now));
    let bytes = encode_protobuf(&live);
    producer.send(FutureRecord::to(&input).key("walt").payload(&bytes), Duration::from_secs(10)).await.unwrap();

    let signals = reader(&brokers, &outputs.signals);
    let m = tokio::time::timeout(Duration::from_secs(60), signals.recv()).await.expect("a signal").unwrap();
    let signal = RiskSignal::decode(m.payload().unwrap()).unwrap();
    assert_eq!(signal.event_id, "walt-bid-99", "replayed events emit nothing");
    assert_eq!(signal.hits[0].features[0].value, 6.0, "{signal:?}");
    stop_tx.send(()).unwrap();
    gavel.await.unwrap().unwrap();
}
