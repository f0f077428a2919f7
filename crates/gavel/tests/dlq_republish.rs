//! `gavel dlq republish` against Apache Kafka: a dry run produces nothing
//! and reports counts by destination and reason, references, foreign
//! records and where to resume; a filtered run sends exactly the selected
//! records back to their source partition with their key, bytes,
//! timestamp, carried headers and `gavel.republished.from`; `--since` and
//! `--from-offset` pick the start; unknown topics and an unreachable broker
//! fail fast and clearly; a dead-letter topic written in transactions
//! reads to its end without waiting; and a malformed event dead-lettered
//! by a running gavel, re-published, is dead-lettered again. Payload and
//! key bytes never reach the output.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use gavel_kafka::create_topics;
use gavel_kafka::dead_letter::REPUBLISHED_FROM;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use support::{Gavel, Setup, eventually, exclusive, shared_brokers};

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Record {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Every record now on `topic`, read `read_committed`, by partition then offset.
fn read_all(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("dlq-test-reader-{}", uuid::Uuid::new_v4()))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).unwrap();
    let partitions: Vec<i32> = metadata.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut tpl = TopicPartitionList::new();
    let mut open = Vec::new();
    for &p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout).unwrap();
        if low < high {
            tpl.add_partition_offset(topic, p, Offset::Offset(low)).unwrap();
            open.push(p);
        }
    }
    let mut out = Vec::new();
    if open.is_empty() {
        return out;
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !open.is_empty() {
        assert!(Instant::now() < deadline, "reading {topic} back took over 30 s");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                timestamp: m.timestamp().to_millis(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => open.retain(|&o| o != p),
            _ => {}
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// What one `gavel dlq republish` run gave: exit code, stdout, stderr, time taken.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn gavel_dlq(config: &Path, extra: &[&str]) -> Ran {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["dlq", "republish", "--config"])
        .arg(config)
        .args(extra)
        .env("GAVEL_LOG", "warn")
        .output()
        .expect("run gavel dlq republish");
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// Runs it and expects success.
fn republish(config: &Path, extra: &[&str]) -> String {
    let ran = gavel_dlq(config, extra);
    assert_eq!(ran.code, Some(0), "{extra:?}\n{}\n{}", ran.stdout, ran.stderr);
    ran.stdout
}

/// A config with brokers and the dead-letter topic only, and a pack
/// directory that does not exist: the command needs no more.
fn client_config(setup: &Setup, name: &str) -> PathBuf {
    let path = setup.dir.join(format!("{name}.toml"));
    let text = format!(
        "pack = \"/nonexistent/pack\"\n\n[kafka]\nbrokers = \"{}\"\n\n[outputs]\ndlq = \"{}\"\n",
        setup.brokers, setup.outputs.dlq
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Dead-letter headers as the pipeline writes them.
fn dead(source: &str, partition: i32, offset: i64, reason: &str) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header { key: "gavel.source.topic", value: Some(source) })
        .insert(Header { key: "gavel.source.partition", value: Some(partition.to_string().as_str()) })
        .insert(Header { key: "gavel.source.offset", value: Some(offset.to_string().as_str()) })
        .insert(Header { key: "gavel.source.encoding", value: Some("json") })
        .insert(Header { key: "gavel.error", value: Some(reason) })
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A record written to the dead-letter topic: partition, timestamp, key,
/// value, headers.
type Written = (i32, i64, Option<&'static str>, Vec<u8>, OwnedHeaders);

const CANARY: &[u8] = b"{\"chatMessageSent\":{\"text\":\"4111111111111111 CANARY\"}";
const BAD_JSON: &str = "invalid JSON at line 1 column 9: EOF";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_then_a_filtered_run_sends_exactly_the_selected_records_back() {
    let Some(brokers) = shared_brokers() else { return };
    let _one_at_a_time = exclusive().await;
    let setup = Setup::new(&brokers, "dlq", 2).await;
    let other = format!("{}-other", setup.input);
    create_topics(&setup.settings(), &[other.as_str()], 2).await.unwrap();
    let (input, dlq) = (setup.input.clone(), setup.outputs.dlq.clone());

    // The dead-letter topic, by partition:
    //   0/0, 0/1: from the input's partition 1, bad JSON, key alice, traced
    //   0/2:      from the other topic, no payload, key bob
    //   1/0:      a reference to the input's 0/9, 2 MB
    //   1/1:      from the input's partition 0, bad JSON, key carol
    //   1/2:      a record gavel did not write
    let base = now_ms() - 3_600_000;
    let producer = support::producer(&brokers);
    let value = |n: u8| [CANARY, &[b'-', b'0' + n]].concat();
    let traced = |h: OwnedHeaders| h.insert(Header { key: "traceparent", value: Some("00-0af7651916cd43dd-01") });
    let records: Vec<Written> = vec![
        (0, base, Some("alice"), value(0), traced(dead(&input, 1, 4, BAD_JSON))),
        (0, base + 1_000, Some("alice"), value(1), traced(dead(&input, 1, 5, BAD_JSON))),
        (0, base + 2_000, Some("bob"), value(2), dead(&other, 0, 7, "event has no payload")),
        (
            1,
            base + 500,
            None,
            Vec::new(),
            dead(&input, 0, 9, "message of 2000000 bytes is over kafka.max_input_bytes (1000000)")
                .insert(Header { key: "gavel.source.size", value: Some("2000000") }),
        ),
        (1, base + 1_500, Some("carol"), value(3), dead(&input, 0, 2, BAD_JSON)),
        (1, base + 2_500, None, b"stray".to_vec(), OwnedHeaders::new()),
    ];
    for (partition, timestamp, key, value, headers) in &records {
        let mut record = FutureRecord::<str, [u8]>::to(&dlq).partition(*partition).timestamp(*timestamp).payload(value);
        record = record.headers(headers.clone());
        if let Some(key) = key {
            record = record.key(key);
        }
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    let config = client_config(&setup, "client");

    // A dry run: everything counted, nothing sent, no payload or key printed.
    let dry = republish(&config, &["--dry-run"]);
    for expected in [
        "dry run: nothing produced".to_string(),
        "read 6 record(s)".to_string(),
        "would re-publish 4 ".to_string(),
        format!("to {input}: 3 "),
        format!("to {other}: 1 "),
        format!("reason {BAD_JSON:?}: 3"),
        "reason \"event has no payload\": 1".to_string(),
        "skipped 1 reference(s)".to_string(),
        format!("{input}/0/9 (2000000 bytes)"),
        format!("[{dlq}/1/0]"),
        "skipped 1 record(s) without gavel.source.topic".to_string(),
        format!("last offset read on {dlq}/0: 2"),
        "resume with --from-offset 0:3 --from-offset 1:3".to_string(),
    ] {
        assert!(dry.contains(&expected), "`{expected}` missing from:\n{dry}");
    }
    for secret in ["CANARY", "4111", "alice", "carol", "stray"] {
        assert!(!dry.contains(secret), "key or payload bytes printed ({secret}):\n{dry}");
    }
    assert!(read_all(&brokers, &input).is_empty() && read_all(&brokers, &other).is_empty(), "a dry run sends nothing");

    // --since: the records dead-lettered from base + 1.2 s on (0/2, 1/1, 1/2).
    let since = humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(base as u64 + 1_200));
    let later = republish(&config, &["--dry-run", "--since", &since.to_string()]);
    assert!(later.contains("read 3 record(s)") && later.contains("would re-publish 2 "), "{later}");
    let all = republish(&config, &["--dry-run", "--since", "2h"]);
    assert!(all.contains("read 6 record(s)"), "{all}");
    // --from-offset: a plain offset for every partition, one per partition on top.
    let some = republish(&config, &["--dry-run", "--from-offset", "2", "--from-offset", "1:1"]);
    assert!(some.contains("read 3 record(s)") && some.contains("resume with --from-offset 0:3 --from-offset 1:3"));

    // Clear errors: a destination, a dead-letter topic or a partition that
    // does not exist, a broker that does not answer.
    let dry_missing = republish(&config, &["--dry-run", "--to", "no-such-topic"]);
    assert!(dry_missing.contains("to no-such-topic: 4 ") && dry_missing.contains("does not exist"), "{dry_missing}");
    let missing = gavel_dlq(&config, &["--to", "no-such-topic"]);
    assert_eq!(missing.code, Some(65), "{}\n{}", missing.stdout, missing.stderr);
    assert!(missing.stderr.contains("topic no-such-topic does not exist"), "{}", missing.stderr);
    let no_dlq = gavel_dlq(&config, &["--dry-run", "--dlq", "no-such-dlq"]);
    assert_eq!(no_dlq.code, Some(65), "{}", no_dlq.stderr);
    assert!(no_dlq.stderr.contains("topic no-such-dlq does not exist"), "{}", no_dlq.stderr);
    let no_partition = gavel_dlq(&config, &["--dry-run", "--from-offset", "7:0"]);
    assert_eq!(no_partition.code, Some(65), "{}", no_partition.stderr);
    assert!(no_partition.stderr.contains("has no partition 7"), "{}", no_partition.stderr);
    let port = support::free_port();
    let unreachable = gavel_dlq(&config, &["--dry-run", "--brokers", &format!("127.0.0.1:{port}"), "--timeout", "2s"]);
    assert_eq!(unreachable.code, Some(75), "{}", unreachable.stderr);
    assert!(unreachable.stderr.contains(&format!("from 127.0.0.1:{port}")), "{}", unreachable.stderr);
    assert!(unreachable.took < Duration::from_secs(20), "gave up after {:?}", unreachable.took);
    assert!(read_all(&brokers, &input).is_empty() && read_all(&brokers, &other).is_empty(), "still nothing sent");

    // The filtered run: the input's bad-JSON records, and nothing else.
    let done = republish(&config, &["--source-topic", &input, "--reason-contains", "invalid JSON"]);
    assert!(done.contains("re-published 3 of 3 selected") && done.contains("0 delivery(ies) failed"), "{done}");
    // The other topic's record and the reference (another reason) are left out.
    assert!(done.contains("left out by the filters: 2") && !done.contains("reference"), "{done}");
    let back = read_all(&brokers, &input);
    assert_eq!(back.len(), 3, "exactly the selected records: {back:?}\n{done}");
    // (DLQ record, source partition) of each, in the order read back.
    let expected = [(4, 0, "carol"), (0, 1, "alice"), (1, 1, "alice")];
    for (record, (dlq_record, partition, key)) in back.iter().zip(expected) {
        let (dlq_partition, timestamp, _, value, _) = &records[dlq_record];
        let dlq_offset = if dlq_record < 3 { dlq_record } else { dlq_record - 3 };
        assert_eq!(record.partition, partition, "back to its source partition: {record:?}");
        assert_eq!(record.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(&record.value, value, "the original bytes");
        assert_eq!(record.timestamp, Some(*timestamp), "the dead-letter record's timestamp");
        assert_eq!(record.header(REPUBLISHED_FROM), Some(format!("{dlq}/{dlq_partition}/{dlq_offset}").as_str()));
        let gavels: Vec<_> = record.headers.iter().filter(|(k, _)| k.starts_with("gavel.")).collect();
        assert_eq!(gavels.len(), 1, "no dead-letter headers copied: {record:?}");
        let traced = key == "alice";
        assert_eq!(record.header("traceparent").is_some(), traced, "the input's trace headers go back with it");
    }
    assert!(read_all(&brokers, &other).is_empty(), "the filter left the other topic's record");

    // A run resumed where the last one ended reads nothing.
    let resumed = republish(&config, &["--from-offset", "0:3", "--from-offset", "1:3"]);
    assert!(resumed.contains("read 0 record(s)") && resumed.contains("re-published 0 of 0"), "{resumed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_topic_written_in_transactions_reads_to_its_end_at_once() {
    let Some(brokers) = shared_brokers() else { return };
    let _one_at_a_time = exclusive().await;
    let setup = Setup::new(&brokers, "dlq-txn", 1).await;
    let dlq = setup.outputs.dlq.clone();
    // As exactly-once gavel writes it: records in transactions, one
    // aborted (its retry wrote the record again), each ending in a marker.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", format!("dlq-test-{}", uuid::Uuid::new_v4()))
        .create()
        .unwrap();
    let timeout = Duration::from_secs(10);
    producer.init_transactions(timeout).unwrap();
    for (reason, commit) in [("committed", true), ("aborted", false), ("retried", true)] {
        producer.begin_transaction().unwrap();
        let headers = dead(&setup.input, 0, 1, reason);
        let record = FutureRecord::<str, str>::to(&dlq).key("k").payload("bytes").headers(headers);
        producer.send_result(record).map_err(|(e, _)| e).unwrap();
        if commit {
            producer.commit_transaction(timeout).unwrap();
        } else {
            producer.abort_transaction(timeout).unwrap();
        }
    }
    let config = client_config(&setup, "client");
    let ran = gavel_dlq(&config, &["--dry-run", "--timeout", "15s"]);
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("read 2 record(s)"), "the aborted record is not read:\n{}", ran.stdout);
    assert!(!ran.stdout.contains("aborted"), "{}", ran.stdout);
    assert!(ran.took < Duration::from_secs(10), "it waited for the markers: {:?}\n{}", ran.took, ran.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_dead_lettered_by_gavel_and_re_published_is_dead_lettered_again() {
    let Some(brokers) = shared_brokers() else { return };
    let _one_at_a_time = exclusive().await;
    let setup = Setup::new(&brokers, "dlq-e2e", 1).await;
    let (config, admin) = setup.config("gavel", None, 1);
    let gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    assert!(gavel.until_ready(Duration::from_secs(60)).await.is_some(), "{}", gavel.log_tail());

    let producer = support::producer(&brokers);
    let garbage = b"{\"eventId\": \"ev-1\", \"bidPlaced\": ".to_vec();
    let record = FutureRecord::<str, [u8]>::to(&setup.input).key("mallory").payload(&garbage);
    producer.send(record, Duration::from_secs(10)).await.unwrap();
    let dlq = setup.outputs.dlq.clone();
    let first = eventually(Duration::from_secs(60), || read_all(&brokers, &dlq).len() == 1).await;
    assert!(first, "dead-lettered once: {}", gavel.log_tail());

    let done = republish(&config, &[]);
    assert!(done.contains("re-published 1 of 1 selected"), "{done}");
    let twice = eventually(Duration::from_secs(60), || read_all(&brokers, &dlq).len() == 2).await;
    assert!(twice, "dead-lettered again: {}", gavel.log_tail());

    let inputs = read_all(&brokers, &setup.input);
    assert_eq!(inputs.len(), 2, "the original and its copy");
    assert_eq!(inputs[1].value, garbage);
    assert_eq!(inputs[1].header(REPUBLISHED_FROM), Some(format!("{dlq}/0/0").as_str()));
    let letters = read_all(&brokers, &dlq);
    assert_eq!(letters[1].value, garbage, "the same bytes");
    assert_eq!(letters[1].key.as_deref(), Some(&b"mallory"[..]));
    assert_eq!(letters[1].header("gavel.source.offset"), Some("1"), "this time from the copy's offset");
    assert_eq!(letters[1].header("gavel.error"), letters[0].header("gavel.error"), "for the same reason");

    // The next run, resumed after the first, finds only the new dead letter.
    let dry = republish(&config, &["--dry-run", "--from-offset", "0:1"]);
    assert!(dry.contains("read 1 record(s)") && dry.contains("would re-publish 1 "), "{dry}");
}
