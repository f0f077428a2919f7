//! Messages too large to write anywhere, on a real broker: a 1.5 MB
//! undecodable input (its dead-letter copy is over the producer's 1 MB
//! limit) and a valid chat event whose id is 1.2 MB (its verdict is) are
//! dead-lettered as references, and the events after them are scored: the
//! shard does not stop.

mod support;

use std::time::Duration;

use gavel_model::pb::ChatMessageSent;
use gavel_model::{Event, Payload, encode_json, timestamp_from_ms};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_input_and_a_huge_output_are_dead_lettered_as_references_and_the_shard_goes_on() {
    let Some(brokers) = support::shared_brokers() else { return };
    let setup = support::Setup::new(&brokers, "huge", 1).await;
    // The input topic takes records up to 3 MB, as a topic fed by a careless
    // producer might; gavel's own output topics keep the 1 MB default.
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let alter = AlterConfig::new(ResourceSpecifier::Topic(&setup.input)).set("max.message.bytes", "3000000");
    for result in admin.alter_configs(&[alter], &AdminOptions::new()).await.unwrap() {
        result.expect("input topic takes 3 MB records");
    }
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &brokers).set("message.max.bytes", "3000000").create().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let garbage = vec![b'#'; 1_500_000];
    let huge_id = Event {
        event_id: "x".repeat(1_200_000),
        occurred_at: Some(timestamp_from_ms(now)),
        user_id: "u-huge".into(),
        payload: Some(Payload::ChatMessageSent(ChatMessageSent {
            show_id: "sh1".into(),
            text: "hello".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let huge_id = encode_json(&huge_id).unwrap();
    for payload in [garbage.as_slice(), huge_id.as_slice()] {
        producer.send(FutureRecord::to(&setup.input).key("k").payload(payload), Duration::from_secs(30)).await.unwrap();
    }
    let after = support::bid(1, "u-after");
    producer
        .send(FutureRecord::to(&setup.input).key("u-after").payload(&after), Duration::from_secs(10))
        .await
        .unwrap();

    // Inputs up to 2 MB are decoded, so the 1.2 MB event is scored and its
    // verdict is what cannot be written.
    let (config, admin_addr) = setup.config("gavel", None, 1);
    let mut gavel = support::Gavel::start_with_env(
        &config,
        admin_addr,
        &setup.dir.join("gavel.log"),
        &[("GAVEL__KAFKA__MAX_INPUT_BYTES", "2000000")],
    );
    let seen = support::collect(&setup);
    let scored =
        support::eventually(Duration::from_secs(90), || seen.lock().unwrap().verdicts.contains_key("ev-1")).await;
    assert!(scored, "the event after the huge ones got no verdict: the shard stopped\n{}", gavel.log_tail());

    let dlq: StreamConsumer = support::reader_config(&brokers, "huge-reader").create().unwrap();
    dlq.subscribe(&[setup.outputs.dlq.as_str()]).unwrap();
    let mut references = Vec::new();
    while references.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(60), dlq.recv()).await.expect("references in time").unwrap();
        assert!(m.payload().is_none_or(<[u8]>::is_empty), "a reference carries no bytes");
        let header = |name: &str| {
            m.headers()
                .and_then(|h| h.iter().find(|h| h.key == name))
                .map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                .unwrap_or_default()
        };
        references.push((header("gavel.source.offset"), header("gavel.source.size"), header("gavel.error")));
    }
    references.sort();
    eprintln!("oversized: {references:?}");
    assert_eq!(references[0].0, "0");
    assert_eq!(references[0].1, "1500001", "key and value of the garbage");
    assert_eq!(references[1].0, "1");
    assert!(references[1].2.contains("over the producer's limit"), "{references:?}");
    assert!(gavel.metric("gavel_outputs_oversized_total").unwrap_or(0.0) >= 2.0);
    let (status, _) = gavel.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");
    assert!(status.success(), "SIGTERM exit {status}\n{}", gavel.log_tail());
}
