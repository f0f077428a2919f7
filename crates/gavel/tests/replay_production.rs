//! Replay equals production: simulated marketplace traffic goes through
//! `gavel run` with the shipped pack on the real broker, and the actions it
//! publishes are exactly those the engine gives when the same events are
//! evaluated in the same order in memory, as `gavel replay` and `gavel
//! test` do. Every primitive the pack uses — windows, distinct counts,
//! recent sets read for another key (`features.x.of(key)`), text normal
//! forms, labels, cooldowns, absence rules' timers, sequences — is evaluated in event
//! time, so where it runs must not change what it decides.
//!
//! With one input partition, the order the in-memory run uses is the
//! topic's. With four, it is the log's order as `kafka.order = "log"`
//! defines it, which the second test computes itself from what the topic
//! holds: each partition's stream time (its largest Kafka timestamp so
//! far), then partition, then offset. Features keyed by anything but the
//! message key depend on that order, and the service, started on the
//! backlog, must apply exactly it.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gavel_engine::Engine;
use gavel_model::pb::{AuctionClosed, BidPlaced, ListingCreated, LoginSucceeded, PasswordChanged, PayoutMethodChanged};
use gavel_model::{Event, Payload, encode_json, event_time_ms, timestamp_from_ms};
use gavel_sim::{SimConfig, Simulator};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};
use support::{Gavel, Seen, Setup, collect, eventually, exclusive, producer, shared_brokers};

const EVENTS: usize = 20_000;

/// An event by `user` on the device `rp-device` at `t_ms`.
fn linked(user: &str, payload: Payload, t_ms: i64) -> Event {
    let mut event = Event {
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: user.into(),
        device_id: Some("rp-device".into()),
        payload: Some(payload),
        ..Default::default()
    };
    event.event_id = format!("{user}-{}-{t_ms}", event.kind().unwrap().as_str());
    event
}

/// The shipped pack in `setup`, its absence rule enforcing so that its
/// firing shows as an action.
fn shipped_pack_enforcing_the_absence_rule(setup: &Setup) -> Engine {
    setup.use_shipped_pack();
    let payments = setup.dir.join("pack/payments.yaml");
    let text = std::fs::read_to_string(&payments).unwrap();
    let enforced = text.replacen("    score: 30\n    mode: shadow\n", "    score: 30\n", 1);
    assert_ne!(text, enforced, "winner_never_paid is in shadow mode in the shipped pack");
    std::fs::write(&payments, enforced).unwrap();
    Engine::new(gavel::tools::pack::load(&setup.dir.join("pack")).unwrap())
}

/// Simulated traffic with a keyed read, an absence rule's deadline and a
/// sequence placed in it.
fn scenario() -> Vec<Event> {
    let mut events: Vec<_> = Simulator::new(SimConfig::default()).take(EVENTS).map(|s| s.event).collect();
    // The simulator's first shill ring comes later than this; one linked
    // pair goes in the middle so the keyed read is exercised on every run.
    let at = event_time_ms(&events[EVENTS / 2]).unwrap();
    events.insert(
        EVENTS / 2,
        linked("rp-alt", Payload::BidPlaced(BidPlaced { seller_id: "rp-seller".into(), ..Default::default() }), at),
    );
    events.insert(EVENTS / 2, linked("rp-seller", Payload::ListingCreated(ListingCreated::default()), at));
    // A winner who never pays, and the seller back a day after the last
    // event: the absence rule's deadline passes on the clock of the
    // seller's partition, where the auction closed.
    let close = AuctionClosed { winner_id: "rp-ghost".into(), ..Default::default() };
    events.insert(EVENTS / 2, linked("rp-seller", Payload::AuctionClosed(close), at));
    // An account taken over in the order the label chain does not see:
    // the password reset first, then a login on a new device, then the
    // payout change (a sequence rule).
    let mut home = linked("rp-owner", Payload::LoginSucceeded(LoginSucceeded::default()), at - 1);
    home.device_id = Some("rp-home".into());
    let takeover = [
        home,
        linked("rp-owner", Payload::PasswordChanged(PasswordChanged { via_reset: true }), at),
        linked("rp-owner", Payload::LoginSucceeded(LoginSucceeded::default()), at + 1),
        linked("rp-owner", Payload::PayoutMethodChanged(PayoutMethodChanged::default()), at + 2),
    ];
    let middle = EVENTS / 2 + 3;
    events.splice(middle..middle, takeover);
    let last = event_time_ms(events.last().unwrap()).unwrap();
    events.push(linked("rp-seller", Payload::LoginSucceeded(LoginSucceeded::default()), last + 86_400_000));
    events
}

/// Actions as `(action id, source event id, rule id)`.
type Actions = BTreeSet<(String, String, String)>;

/// The actions `engine` gives for `events`, each evaluated in its input
/// lane with its Kafka timestamp as the fallback time, in the order given.
fn in_memory<'a>(engine: &Engine, events: impl IntoIterator<Item = (u64, &'a Event, Option<i64>)>) -> Actions {
    let mut expected = BTreeSet::new();
    for (lane, event, timestamp_ms) in events {
        let outcome = engine.evaluate_in(lane, event, timestamp_ms, 0).unwrap();
        let timeouts = outcome.timeouts.iter().map(|t| &t.outcome);
        for action in timeouts.chain([&outcome]).flat_map(|o| &o.actions) {
            expected.insert((action.action_id.clone(), action.source_event_id.clone(), action.rule_id.clone()));
        }
    }
    expected
}

/// Checks that `expected` has actions of every primitive under test.
fn exercises_every_primitive(expected: &Actions) {
    let rules: BTreeSet<&str> = expected.iter().map(|(_, _, rule)| rule.as_str()).collect();
    assert!(rules.contains("bidder_shares_seller_device"), "the run exercises keyed reads: {rules:?}");
    assert!(rules.contains("winner_never_paid"), "the run exercises an absence rule: {rules:?}");
    assert!(rules.contains("takeover_sequence"), "the run exercises a sequence rule: {rules:?}");
    assert!(rules.len() >= 6, "the run exercises many rules: {rules:?}");
}

/// Writes `events` to `topic`, keyed by user, in order: sends in flight
/// keep their order within a partition (idempotence is on in the test
/// producer), and each record's Kafka timestamp is a millisecond after
/// the one before, from now, so the log's order across partitions is the
/// order written.
async fn write(brokers: &str, topic: &str, events: &[Event]) {
    let writer = producer(brokers);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    for (c, chunk) in events.chunks(1_000).enumerate() {
        let sends = chunk.iter().enumerate().map(|(i, event)| {
            let payload = encode_json(event).unwrap();
            let writer = &writer;
            let timestamp = now + (c * 1_000 + i) as i64;
            async move {
                let record = FutureRecord::to(topic).key(&event.user_id).payload(&payload).timestamp(timestamp);
                writer.send(record, Duration::from_secs(30)).await.unwrap();
            }
        });
        futures::future::join_all(sends).await;
    }
}

/// Waits for `events` verdicts and `expected` actions from `gavel` and
/// checks that exactly the expected actions were published.
async fn publishes_exactly(gavel: &Gavel, seen: &Arc<Mutex<Seen>>, events: usize, expected: &Actions) {
    let all_decided = eventually(Duration::from_secs(120), || seen.lock().unwrap().verdicts.len() >= events).await;
    assert!(all_decided, "{} of {events} verdicts\n{}", seen.lock().unwrap().verdicts.len(), gavel.log_tail());
    // Actions are produced before the verdict of their event is; give the
    // reader a moment to catch up with the last ones.
    let matched = eventually(Duration::from_secs(20), || seen.lock().unwrap().actions.len() >= expected.len()).await;
    let published: Actions = seen.lock().unwrap().actions.iter().cloned().collect();
    let missing: Vec<_> = expected.difference(&published).take(5).collect();
    let extra: Vec<_> = published.difference(expected).take(5).collect();
    assert!(
        matched && missing.is_empty() && extra.is_empty(),
        "{} actions expected, {} published; missing {missing:?}, extra {extra:?}",
        expected.len(),
        published.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_publishes_exactly_the_actions_an_in_memory_replay_gives() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let setup = Setup::new(&brokers, "replay-prod", 1).await;
    let engine = shipped_pack_enforcing_the_absence_rule(&setup);
    let events = scenario();
    // What the engine decides in memory, in the topic's order.
    let lane = gavel_engine::lane_of(&setup.input, 0);
    let expected = in_memory(&engine, events.iter().map(|e| (lane, e, None)));
    exercises_every_primitive(&expected);

    let seen = collect(&setup);
    let (config, admin) = setup.config("gavel", None, 2);
    let gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    assert!(gavel.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", gavel.log_tail());
    write(&brokers, &setup.input, &events).await;
    publishes_exactly(&gavel, &seen, events.len(), &expected).await;
    eprintln!("{} events: {} actions, identical in memory and through the broker", events.len(), expected.len());
}

/// Every message of `topic`'s `partitions`, read back from the broker:
/// `(partition, offset, Kafka timestamp, event)`, each partition in offset order.
fn read_back(brokers: &str, topic: &str, partitions: i32) -> Vec<(i32, i64, i64, Event)> {
    let consumer: BaseConsumer = support::reader_config(brokers, "read-back").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        ends.push(consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap().1);
    }
    consumer.assign(&tpl).unwrap();
    let total: i64 = ends.iter().sum();
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (messages.len() as i64) < total && std::time::Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else { continue };
        let event = gavel_model::decode_json(m.payload().unwrap_or_default()).unwrap();
        messages.push((m.partition(), m.offset(), m.timestamp().to_millis().unwrap(), event));
    }
    assert_eq!(messages.len() as i64, total, "read the whole topic back");
    messages.sort_by_key(|(p, o, _, _)| (*p, *o));
    messages
}

/// A message of the log: its key in the log's order (stream time,
/// partition, offset), its lane, its event and its Kafka timestamp.
type Placed<'a> = ((i64, i32, i64), u64, &'a Event, i64);

/// Four partitions and a backlog: the service, started once every event
/// is in the log, publishes exactly what the engine gives in memory when
/// the events go in the log's order, computed here from the topic itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_four_partitions_the_service_applies_the_logs_order() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let setup = Setup::new(&brokers, "replay-order", 4).await;
    let engine = shipped_pack_enforcing_the_absence_rule(&setup);
    let events = scenario();
    write(&brokers, &setup.input, &events).await;

    // The log's order: by the partition's stream time, then partition, then offset.
    let mut log = read_back(&brokers, &setup.input, 4);
    let mut stream = [i64::MIN; 4];
    let mut keyed: Vec<Placed<'_>> = Vec::with_capacity(log.len());
    for (partition, offset, timestamp, event) in &mut log {
        let stream_ms = &mut stream[*partition as usize];
        *stream_ms = (*stream_ms).max(*timestamp);
        let lane = gavel_engine::lane_of(&setup.input, *partition);
        keyed.push(((*stream_ms, *partition, *offset), lane, event, *timestamp));
    }
    keyed.sort_by_key(|(key, ..)| *key);
    let expected = in_memory(&engine, keyed.iter().map(|(_, lane, event, ts)| (*lane, *event, Some(*ts))));
    exercises_every_primitive(&expected);
    // The same events one partition after another give other answers, or
    // the comparison proves nothing about the order.
    let mut by_partition: Vec<_> = keyed.clone();
    by_partition.sort_by_key(|((_, partition, offset), ..)| (*partition, *offset));
    let engine_again = shipped_pack_enforcing_the_absence_rule(&setup);
    let partition_order =
        in_memory(&engine_again, by_partition.iter().map(|(_, lane, event, ts)| (*lane, *event, Some(*ts))));
    let differs = expected.symmetric_difference(&partition_order).count();
    assert!(differs > 0, "partition by partition gives the same actions: the order is not under test");

    let seen = collect(&setup);
    let (config, admin) = setup.config("gavel", None, 1);
    let gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    publishes_exactly(&gavel, &seen, events.len(), &expected).await;
    let broken = gavel.metric("gavel_input_order_broken_total");
    eprintln!(
        "{} events over 4 partitions: {} actions in the log's order, identical in memory and through the broker \
         (partition by partition would differ by {differs}); order broken {broken:?}",
        events.len(),
        expected.len()
    );
}
