//! Replay equals production: simulated marketplace traffic goes through
//! `gavel run` with the shipped pack on the real broker, and the actions it
//! publishes are exactly those the engine gives when the same events are
//! evaluated in the same order in memory, as `gavel replay` and `gavel
//! test` do. Every primitive the pack uses — windows, distinct counts,
//! recent sets read for another key (`features.x.of(key)`), text normal
//! forms, labels, cooldowns, absence rules' timers, sequences — is evaluated in event
//! time, so where it runs must not change what it decides.
//!
//! One input partition: the order the in-memory run uses is then the order
//! the consumer sees. (Several partitions interleave differently from run
//! to run; features keyed by anything but the message key then depend on
//! that interleaving.)

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use gavel_engine::Engine;
use gavel_model::pb::{AuctionClosed, BidPlaced, ListingCreated, LoginSucceeded, PasswordChanged, PayoutMethodChanged};
use gavel_model::{Event, Payload, encode_json, event_time_ms, timestamp_from_ms};
use gavel_sim::{SimConfig, Simulator};
use rdkafka::producer::FutureRecord;
use support::{Gavel, Setup, collect, eventually, exclusive, producer, shared_brokers};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_publishes_exactly_the_actions_an_in_memory_replay_gives() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let setup = Setup::new(&brokers, "replay-prod", 1).await;
    setup.use_shipped_pack();
    // The absence rule enforcing, so its firing shows as an action.
    let payments = setup.dir.join("pack/payments.yaml");
    let text = std::fs::read_to_string(&payments).unwrap();
    let enforced = text.replacen("    score: 30\n    mode: shadow\n", "    score: 30\n", 1);
    assert_ne!(text, enforced, "winner_never_paid is in shadow mode in the shipped pack");
    std::fs::write(&payments, enforced).unwrap();
    let mut events: Vec<_> = Simulator::new(SimConfig::default()).take(EVENTS).map(|s| s.event).collect();
    // The simulator's first shill ring comes later than this; one linked
    // pair goes in the middle so the keyed read is exercised on every run.
    let at = event_time_ms(&events[EVENTS / 2]).unwrap();
    events.insert(
        EVENTS / 2,
        linked("rp-alt", Payload::BidPlaced(BidPlaced { seller_id: "rp-seller".into(), ..Default::default() }), at),
    );
    events.insert(EVENTS / 2, linked("rp-seller", Payload::ListingCreated(ListingCreated::default()), at));
    // A winner who never pays, and an event a day after the last one: the
    // absence rule's deadline passes on the partition's clock.
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
    events.push(linked("rp-clock", Payload::LoginSucceeded(LoginSucceeded::default()), last + 86_400_000));

    // What the engine decides in memory, in the topic's order.
    let pack = gavel::tools::pack::load(&setup.dir.join("pack")).unwrap();
    let engine = Engine::new(pack);
    let mut expected = BTreeSet::new();
    for event in &events {
        let outcome = engine.evaluate(event, None, 0).unwrap();
        let timeouts = outcome.timeouts.iter().map(|t| &t.outcome);
        for action in timeouts.chain([&outcome]).flat_map(|o| &o.actions) {
            expected.insert((action.action_id.clone(), action.source_event_id.clone(), action.rule_id.clone()));
        }
    }
    let rules: BTreeSet<&str> = expected.iter().map(|(_, _, rule)| rule.as_str()).collect();
    assert!(rules.contains("bidder_shares_seller_device"), "the run exercises keyed reads: {rules:?}");
    assert!(rules.contains("winner_never_paid"), "the run exercises an absence rule: {rules:?}");
    assert!(rules.contains("takeover_sequence"), "the run exercises a sequence rule: {rules:?}");
    assert!(rules.len() >= 6, "the run exercises many rules: {rules:?}");

    let seen = collect(&setup);
    let (config, admin) = setup.config("gavel", None, 2);
    let gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    assert!(gavel.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", gavel.log_tail());
    let writer = producer(&brokers);
    for chunk in events.chunks(1_000) {
        let sends = chunk.iter().map(|event| {
            let payload = encode_json(event).unwrap();
            let writer = &writer;
            let topic = &setup.input;
            async move {
                let record = FutureRecord::to(topic).key(&event.user_id).payload(&payload);
                writer.send(record, Duration::from_secs(30)).await.unwrap();
            }
        });
        // In order: one partition, one producer, sends in flight keep
        // their order (idempotence is on in the test producer).
        futures::future::join_all(sends).await;
    }
    let all_decided =
        eventually(Duration::from_secs(120), || seen.lock().unwrap().verdicts.len() >= events.len()).await;
    assert!(all_decided, "{} of {} verdicts\n{}", seen.lock().unwrap().verdicts.len(), events.len(), gavel.log_tail());
    // Actions are produced before the verdict of their event is; give the
    // reader a moment to catch up with the last ones.
    let matched = eventually(Duration::from_secs(20), || seen.lock().unwrap().actions.len() >= expected.len()).await;
    let published: BTreeSet<_> = seen.lock().unwrap().actions.iter().cloned().collect();
    let missing: Vec<_> = expected.difference(&published).take(5).collect();
    let extra: Vec<_> = published.difference(&expected).take(5).collect();
    assert!(
        matched && missing.is_empty() && extra.is_empty(),
        "{} actions expected, {} published; missing {missing:?}, extra {extra:?}",
        expected.len(),
        published.len()
    );
    eprintln!(
        "{} events: {} actions from {} rules, identical in memory and through the broker",
        events.len(),
        expected.len(),
        rules.len()
    );
}
