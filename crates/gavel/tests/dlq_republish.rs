//! `gavel dlq republish` against a real broker: a dry run produces nothing
//! and reports what it would send; a filtered run sends exactly the
//! selected records back to their source with their key and bytes and a
//! `gavel.republished.from` header; references and foreign records are
//! skipped and reported; payload bytes never reach the report.

mod support;

use std::process::Command;
use std::time::Duration;

use gavel_kafka::create_topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Message};

/// A record read back: key, value, headers in order.
type Record = (Vec<u8>, Vec<u8>, Vec<(String, String)>);

/// Every record now on `topic` (partition 0).
fn read_all(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("dlq-reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (out.len() as i64) < high && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.key().unwrap_or_default().to_vec(), m.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    out
}

fn republish(config: &std::path::Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["dlq", "republish", "--config"])
        .arg(config)
        .args(extra)
        .env("GAVEL_LOG", "warn")
        .output()
        .expect("run gavel dlq republish");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_go_back_to_their_source_after_a_dry_run() {
    let Some(brokers) = support::shared_brokers() else { return };
    let setup = support::Setup::new(&brokers, "dlq", 1).await;
    let other = format!("{}-other", setup.input);
    create_topics(&setup.settings(), &[other.as_str()], 1).await.unwrap();

    let producer = support::producer(&brokers);
    let dead = |source: &str, offset: usize, reason: &str| {
        OwnedHeaders::new()
            .insert(Header { key: "gavel.source.topic", value: Some(source) })
            .insert(Header { key: "gavel.source.partition", value: Some("0") })
            .insert(Header { key: "gavel.source.offset", value: Some(offset.to_string().as_str()) })
            .insert(Header { key: "gavel.source.encoding", value: Some("json") })
            .insert(Header { key: "gavel.error", value: Some(reason) })
    };
    let secret = b"{\"chatMessageSent\":{\"text\":\"4111111111111111 CANARY\"}";
    // 0-2: from the input, undecodable; 3: from the other topic; 4: a
    // reference; 5: a record gavel did not write.
    for n in 0..3 {
        let value = [&secret[..], format!("-{n}").as_bytes()].concat();
        let record = FutureRecord::to(&setup.outputs.dlq).key("alice").payload(&value).headers(dead(
            &setup.input,
            n,
            "invalid JSON at line 1 column 9: EOF",
        ));
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    let record =
        FutureRecord::to(&setup.outputs.dlq).key("bob").payload("x").headers(dead(&other, 7, "event has no payload"));
    producer.send(record, Duration::from_secs(10)).await.unwrap();
    let reference = dead(&setup.input, 9, "message of 2000000 bytes is over kafka.max_input_bytes (1000000)")
        .insert(Header { key: "gavel.source.size", value: Some("2000000") });
    let record = FutureRecord::<str, [u8]>::to(&setup.outputs.dlq).payload(&[]).headers(reference);
    producer.send(record, Duration::from_secs(10)).await.unwrap();
    producer
        .send(FutureRecord::<str, str>::to(&setup.outputs.dlq).payload("stray"), Duration::from_secs(10))
        .await
        .unwrap();

    let (config, _) = setup.config("dlq", None, 1);

    let dry = republish(&config, &["--dry-run"]);
    assert!(dry.contains("read 6 record(s)"), "{dry}");
    assert!(dry.contains("would re-publish 4"), "{dry}");
    assert!(dry.contains(&format!("to {}: 3", setup.input)), "{dry}");
    assert!(dry.contains(&format!("to {other}: 1")), "{dry}");
    assert!(dry.contains("skipped 1 reference(s)"), "{dry}");
    assert!(dry.contains(&format!("{}/0/9 (2000000 bytes)", setup.input)), "{dry}");
    assert!(dry.contains("skipped 1 record(s) without gavel.source.topic"), "{dry}");
    assert!(dry.contains("resume with --from-offset 6"), "{dry}");
    assert!(!dry.contains("CANARY") && !dry.contains("4111"), "payload bytes never printed: {dry}");
    assert!(read_all(&brokers, &setup.input).is_empty(), "a dry run produces nothing");

    let done = republish(&config, &["--source-topic", &setup.input, "--reason-contains", "invalid JSON"]);
    assert!(done.contains("re-published 3"), "{done}");
    let back = read_all(&brokers, &setup.input);
    assert_eq!(back.len(), 3, "exactly the selected records: {done}");
    for (n, (key, value, headers)) in back.iter().enumerate() {
        assert_eq!(key, b"alice");
        assert_eq!(value, &[&secret[..], format!("-{n}").as_bytes()].concat());
        let from: Vec<_> = headers.iter().filter(|(k, _)| k == gavel_kafka::REPUBLISHED_FROM).collect();
        assert_eq!(from.len(), 1);
        assert_eq!(from[0].1, format!("{}/0/{n}", setup.outputs.dlq));
    }
    assert!(read_all(&brokers, &other).is_empty(), "the filter left the other topic's record");

    // A resumed run past the end reads nothing.
    let resumed = republish(&config, &["--from-offset", "6"]);
    assert!(resumed.contains("read 0 record(s)"), "{resumed}");
}
