//! The same log gives the same answers: under `kafka.order = "log"` (the
//! default) the `gavel` binary, run against a real Apache Kafka broker over
//! one input log of four partitions, publishes the same actions (by
//! `action_id`) and the same decision for every event in two fault-free
//! runs and in a run SIGKILLed at random points, for a pack whose state is
//! keyed by user, device, IP, card and seller — state every partition but
//! the user's feeds, whose values depend on the order partitions are
//! applied in. Under `kafka.state = "replicated"`, one, three, three with
//! a SIGKILL and three with a late joiner publish the same.
//!
//! `GAVEL_LONG_TESTS=1` runs more events and kills, and adds a run under
//! `kafka.order = "arrival"` on two shards, reported beside the others (not
//! asserted: how fetches interleave is up to the broker).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gavel_model::pb::{BidPlaced, Card, Money, PaymentAttempted};
use gavel_model::{Event, Payload, encode_json, timestamp_from_ms};
use rand::{Rng, SeedableRng};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::{Gavel, Setup, collect, collect_committed, eventually, exclusive, long, producer, shared_brokers};

/// Device, IP, card and seller state that events of every partition feed,
/// and user state that one partition does: counts over windows that both
/// fill and slide within the run, and cooldowns that lapse many times, so
/// which event crosses a threshold or comes first after a cooldown depends
/// on the order partitions are applied in.
const PACK: &str = r#"
version: "determinism-1"
features:
  - name: bids_per_device_1h
    on: [bid_placed]
    key: event.device_id
    where: has(event.device_id)
    window: 1h
    aggregate: count
  - name: bidders_per_device_1h
    on: [bid_placed]
    key: event.device_id
    where: has(event.device_id)
    value: event.user_id
    window: 1h
    aggregate: distinct
  - name: bids_per_seller_2s
    on: [bid_placed]
    key: event.bid_placed.seller_id
    window: 2s
    aggregate: count
  - name: bids_per_user_5s
    on: [bid_placed]
    key: event.user_id
    window: 5s
    aggregate: count
  - name: users_per_ip_1h
    on: [bid_placed]
    key: event.ip
    where: has(event.ip)
    value: event.user_id
    window: 1h
    aggregate: distinct
  - name: bids_per_ip_1s
    on: [bid_placed]
    key: event.ip
    where: has(event.ip)
    window: 1s
    aggregate: count
  - name: users_per_card_1h
    on: [payment_attempted]
    key: event.payment_attempted.card.fingerprint
    value: event.user_id
    window: 1h
    aggregate: distinct
rules:
  - id: crowded_device
    description: one device bidding for many accounts
    on: [bid_placed]
    when: has(event.device_id) && features.bids_per_device_1h >= 25 && features.bidders_per_device_1h >= 5
    score: 40
    actions:
      - type: send_to_review
        target: device
        cooldown: 700ms
  - id: seller_rush
    description: a rush of bids on one seller's lots
    on: [bid_placed]
    when: features.bids_per_seller_2s >= 900
    score: 30
    actions:
      - type: send_to_review
        target: user
        id: event.bid_placed.seller_id
        cooldown: 300ms
  - id: bidding_burst
    description: one account bidding in a burst
    on: [bid_placed]
    when: features.bids_per_user_5s >= 12
    score: 20
    actions:
      - type: send_to_review
        target: user
        cooldown: 2s
  - id: crowded_ip
    description: one address bidding for many accounts in a rush
    on: [bid_placed]
    when: has(event.ip) && features.users_per_ip_1h >= 20 && features.bids_per_ip_1s >= 90
    score: 30
    actions:
      - type: send_to_review
        target: ip
        id: event.ip
        cooldown: 400ms
  - id: shared_card
    description: one card paying for many accounts
    on: [payment_attempted]
    when: features.users_per_card_1h >= 8
    score: 50
    actions:
      - type: send_to_review
        target: card
        id: event.payment_attempted.card.fingerprint
        cooldown: 250ms
"#;

/// Event `n` by one of 600 users (the message key, so users spread over
/// the partitions): every fourth a payment attempt with one of 17 shared
/// cards, the others bids from one of 13 shared devices and 23 shared
/// addresses on one of 5 sellers' lots.
fn bid(n: u64) -> (String, Vec<u8>) {
    let user = format!("u{}", n % 600);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let amount = Some(Money { amount_minor: 1_000, currency: "USD".into() });
    let payload = if n % 4 == 3 {
        Payload::PaymentAttempted(PaymentAttempted {
            payment_id: format!("pay-{n}"),
            order_id: format!("o-{n}"),
            amount,
            card: Some(Card { fingerprint: format!("card-{}", (n * 11) % 17), ..Default::default() }),
            seller_id: format!("s{}", n % 5),
        })
    } else {
        Payload::BidPlaced(BidPlaced {
            bid_id: format!("bid-{n}"),
            listing_id: format!("l{}", n % 40),
            show_id: "sh1".into(),
            seller_id: format!("s{}", n % 5),
            amount,
        })
    };
    let event = Event {
        event_id: format!("ev-{n}"),
        occurred_at: Some(timestamp_from_ms(now)),
        user_id: user.clone(),
        device_id: Some(format!("dev-{}", (n * 7) % 13)),
        ip: Some(format!("10.0.0.{}", (n * 5) % 23)),
        payload: Some(payload),
        ..Default::default()
    };
    (user, encode_json(&event).unwrap())
}

/// Writes `events` bids to `topic` at `rate` a second, keyed by user.
async fn write_log(producer: &FutureProducer, topic: &str, events: u64, rate: u64) {
    let started = std::time::Instant::now();
    let mut pending = Vec::new();
    for n in 0..events {
        let (user, payload) = bid(n);
        let record = FutureRecord::to(topic).key(&user).payload(&payload);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
        let due = started + Duration::from_secs_f64((n + 1) as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    for delivery in pending {
        delivery.await.expect("delivery not canceled").expect("delivered");
    }
}

/// What one run published: each action id with its source event and rule,
/// and each event's decision and score.
#[derive(Debug, PartialEq, Eq)]
struct Answers {
    actions: BTreeSet<(String, String, String)>,
    decisions: BTreeMap<String, (i32, i32)>,
}

impl Answers {
    /// What `seen` holds, as sets to compare.
    fn of(seen: &support::Seen) -> Answers {
        Answers {
            actions: seen.actions.iter().cloned().collect(),
            decisions: seen.decisions.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

/// One run over `input` as group `name`, with `shards` (one: log order;
/// more: arrival order), killed `kills` times at random points before it
/// is left to finish; returns what it published.
async fn run(brokers: &str, input: &str, name: &str, shards: usize, kills: usize, events: u64) -> Answers {
    let mut setup = Setup::new(brokers, name, 1).await;
    setup.input = input.to_string();
    std::fs::write(setup.dir.join("pack/pack.yaml"), PACK).unwrap();
    let seen = collect(&setup);
    let (config, admin) = setup.config(name, None, shards);
    let log = setup.dir.join("gavel.log");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(kills as u64 + 11);
    for _ in 0..kills {
        let gavel = &mut Gavel::start(&config, admin, &log);
        gavel.until_ready(Duration::from_secs(60)).await.expect("ready");
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..2_000))).await;
        gavel.kill();
    }
    let mut gavel = Gavel::start(&config, admin, &log);
    let all_in = eventually(Duration::from_secs(180), || seen.lock().unwrap().verdicts.len() as u64 >= events).await;
    assert!(all_in, "{name}: {} of {events} verdicts\n{}", seen.lock().unwrap().verdicts.len(), gavel.log_tail());
    let broken = gavel.metric("gavel_input_order_broken_total");
    gavel.terminate(Duration::from_secs(20)).expect("exits");
    let seen = seen.lock().unwrap();
    let answers = Answers::of(&seen);
    eprintln!(
        "{name}: {shards} shard(s), {kills} SIGKILLs, {} verdicts, {} actions ({} distinct), order broken {broken:?}",
        seen.verdicts_total(),
        seen.actions.len(),
        answers.actions.len()
    );
    answers
}

/// What happens to a replicated group during its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing.
    None,
    /// The first instance is SIGKILLed once a tenth of the verdicts are in,
    /// and never restarted.
    KillOne,
    /// The last instance starts once a third of the verdicts are in: it
    /// catches up from the log, then joins and takes partitions over.
    LateJoiner,
    /// `KillOne` in exactly-once mode: a `read_committed` reader sees every
    /// output once.
    KillOneExactlyOnce,
}

/// One run over `input` as group `name` of `instances` processes under
/// `kafka.state = "replicated"`, each with its own admin port, through
/// `fault` (the survivors' time to ready again after a kill is reported).
/// Returns what the group published.
async fn run_replicated(
    brokers: &str,
    input: &str,
    name: &str,
    instances: usize,
    fault: Fault,
    events: u64,
) -> Answers {
    let exactly_once = fault == Fault::KillOneExactlyOnce;
    let kill_one = fault == Fault::KillOne || exactly_once;
    let mut setup = Setup::new(brokers, name, 1).await;
    setup.input = input.to_string();
    setup.kafka_extra = "state = \"replicated\"".into();
    if exactly_once {
        setup.outputs_extra = "exactly_once = true".into();
    }
    std::fs::write(setup.dir.join("pack/pack.yaml"), PACK).unwrap();
    let seen = collect(&setup);
    let committed = exactly_once.then(|| collect_committed(&setup));
    let start = |i: usize| {
        let id = format!("{name}-{i}");
        let (config, admin) = setup.config(&id, exactly_once.then_some(id.as_str()), 1);
        Gavel::start(&config, admin, &setup.dir.join(format!("gavel-{i}.log")))
    };
    let first = if fault == Fault::LateJoiner { instances - 1 } else { instances };
    let mut members: Vec<Gavel> = (0..first).map(start).collect();
    if fault == Fault::LateJoiner {
        let third =
            eventually(Duration::from_secs(60), || seen.lock().unwrap().verdicts.len() as u64 >= events / 3).await;
        assert!(third, "{name}: a third of the verdicts before the last instance starts");
        members.push(start(instances - 1));
    }
    for member in &members {
        member
            .until_ready(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("{name}: ready\n{}", member.log_tail()));
    }
    if kill_one {
        let tenth =
            eventually(Duration::from_secs(60), || seen.lock().unwrap().verdicts.len() as u64 >= events / 10).await;
        assert!(tenth, "{name}: a tenth of the verdicts before the kill");
        let rebalances: Vec<f64> =
            members[1..].iter().map(|m| m.metric("gavel_kafka_rebalances_total").unwrap_or(0.0)).collect();
        let killed_at = std::time::Instant::now();
        let at_kill = seen.lock().unwrap().verdicts.len();
        members[0].kill();
        let survivors = &members[1..];
        // The group notices after the session timeout and rebalances; the
        // survivors' state already holds every partition.
        let rebalanced = eventually(Duration::from_secs(60), || {
            survivors
                .iter()
                .zip(&rebalances)
                .any(|(m, &before)| m.metric("gavel_kafka_rebalances_total").unwrap_or(0.0) > before)
        })
        .await;
        let noticed = killed_at.elapsed();
        let ready = eventually(Duration::from_secs(60), || survivors.iter().all(Gavel::ready)).await;
        assert!(rebalanced && ready, "{name}: survivors rebalanced and ready\n{}", survivors[0].log_tail());
        eprintln!(
            "{name}: SIGKILL of one of {instances} at {at_kill} of {events} verdicts; the group rebalanced {:.1} s \
             later and the survivors were ready {:.2} s after that",
            noticed.as_secs_f64(),
            (killed_at.elapsed() - noticed).as_secs_f64()
        );
    }
    let all_in = eventually(Duration::from_secs(180), || seen.lock().unwrap().verdicts.len() as u64 >= events).await;
    let alive: Vec<&Gavel> = members.iter().skip(usize::from(kill_one)).collect();
    assert!(all_in, "{name}: {} of {events} verdicts\n{}", seen.lock().unwrap().verdicts.len(), alive[0].log_tail());
    let broken: f64 = alive.iter().filter_map(|m| m.metric("gavel_input_order_broken_total")).sum();
    if let Some(committed) = &committed {
        // The dead member's open transaction aborts when it times out.
        let all =
            eventually(Duration::from_secs(120), || committed.lock().unwrap().verdicts.len() as u64 >= events).await;
        let committed = committed.lock().unwrap();
        assert!(all, "{name}: {} of {events} verdicts read committed", committed.verdicts.len());
        assert_eq!(committed.duplicates(), 0, "{name}: read committed, every output once");
        let ids: BTreeSet<String> = committed.actions.keys().cloned().collect();
        let seen_ids: BTreeSet<String> = seen.lock().unwrap().actions.iter().map(|(id, _, _)| id.clone()).collect();
        assert_eq!(ids, seen_ids, "{name}: the committed actions are the published ones");
        eprintln!("{name}: read committed: {} verdicts, {} actions, 0 duplicates", committed.verdicts.len(), ids.len());
    }
    for member in members.iter_mut().skip(usize::from(kill_one)) {
        member.terminate(Duration::from_secs(20)).expect("exits");
    }
    let seen = seen.lock().unwrap();
    let answers = Answers::of(&seen);
    eprintln!(
        "{name}: {instances} replicated instance(s), {} verdicts, {} actions ({} distinct), order broken {broken}",
        seen.verdicts_total(),
        seen.actions.len(),
        answers.actions.len()
    );
    answers
}

/// How many action ids one run has that the other has not, both ways.
fn differing(a: &Answers, b: &Answers) -> usize {
    a.actions.symmetric_difference(&b.actions).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_log_gives_the_same_actions_in_every_run_and_after_kills() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let (events, kills) = if long() { (40_000u64, 6) } else { (12_000, 3) };
    let base = Setup::new(&brokers, "determinism", 4).await;
    // The log is written before any run starts: every run reads the same one.
    write_log(&producer(&brokers), &base.input, events, 3_000).await;

    let first = run(&brokers, &base.input, "first", 1, 0, events).await;
    let second = run(&brokers, &base.input, "second", 1, 0, events).await;
    let killed = run(&brokers, &base.input, "killed", 1, kills, events).await;
    let rules: BTreeSet<&str> = first.actions.iter().map(|(_, _, rule)| rule.as_str()).collect();
    eprintln!(
        "log order: {} actions from rules {rules:?}; second run differs by {}, killed run by {}",
        first.actions.len(),
        differing(&first, &second),
        differing(&first, &killed)
    );
    if long() {
        let arrival = run(&brokers, &base.input, "arrival", 2, 0, events).await;
        eprintln!(
            "arrival order on two shards differs from the log order's run by {} actions",
            differing(&first, &arrival)
        );
    }
    assert_eq!(rules.len(), 5, "every rule fires, or the comparison proves little: {rules:?}");
    assert_eq!(first.decisions.len() as u64, events);
    assert_eq!(first, second, "two fault-free runs over one log gave different answers");
    assert_eq!(first, killed, "a run with SIGKILLs gave different answers from a fault-free one");
}

/// Under `kafka.state = "replicated"` one, two or three instances in one
/// group publish exactly what one instance publishes, and a SIGKILL of one
/// of three loses nothing: the survivors, already warm, publish its
/// partitions from the group's committed offsets, after the outputs they
/// held for it; an instance that starts late catches up from the log
/// before it joins, and takes partitions over warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_instances_give_one_instances_answers_at_any_count_and_after_a_kill() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let events = if long() { 40_000u64 } else { 12_000 };
    let base = Setup::new(&brokers, "replicated", 4).await;
    write_log(&producer(&brokers), &base.input, events, 4_000).await;

    let single = run(&brokers, &base.input, "single", 1, 0, events).await;
    let one = run_replicated(&brokers, &base.input, "one", 1, Fault::None, events).await;
    let three = run_replicated(&brokers, &base.input, "three", 3, Fault::None, events).await;
    let killed = run_replicated(&brokers, &base.input, "three-killed", 3, Fault::KillOne, events).await;
    let late = run_replicated(&brokers, &base.input, "three-late", 3, Fault::LateJoiner, events).await;
    let eos = run_replicated(&brokers, &base.input, "three-killed-eos", 3, Fault::KillOneExactlyOnce, events).await;
    let two =
        if long() { Some(run_replicated(&brokers, &base.input, "two", 2, Fault::None, events).await) } else { None };
    eprintln!(
        "one instance (owned): {} actions; replicated: one differs by {}, three by {}, three with a kill by {}, \
         three with a late joiner by {}, exactly-once with a kill by {}",
        single.actions.len(),
        differing(&single, &one),
        differing(&single, &three),
        differing(&single, &killed),
        differing(&single, &late),
        differing(&single, &eos)
    );
    let rules: BTreeSet<&str> = single.actions.iter().map(|(_, _, rule)| rule.as_str()).collect();
    assert_eq!(rules.len(), 5, "every rule, keyed by user, device, IP, card and seller, fires: {rules:?}");
    assert_eq!(single.decisions.len() as u64, events);
    assert_eq!(single, one, "one replicated instance differs from one owning instance");
    assert_eq!(single, three, "three replicated instances differ from one");
    assert_eq!(single, killed, "three replicated instances, one SIGKILLed, differ from one");
    assert_eq!(single, late, "three replicated instances, one joining late, differ from one");
    assert_eq!(single, eos, "three replicated exactly-once instances, one SIGKILLed, differ from one");
    if let Some(two) = two {
        assert_eq!(single, two, "two replicated instances differ from one");
    }
}

/// A replicated member reads input partitions created while it runs: the
/// group gives them to it, and it publishes their events too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_member_reads_partitions_added_while_it_runs() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use rdkafka::client::DefaultClientContext;

    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let mut setup = Setup::new(&brokers, "added", 2).await;
    setup.kafka_extra = "state = \"replicated\"".into();
    let seen = collect(&setup);
    // The group notices new partitions at its metadata refresh.
    let (config, admin) = setup.config_with("added", None, 1, "\"topic.metadata.refresh.interval.ms\" = \"1000\"");
    let gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    gavel.until_ready(Duration::from_secs(60)).await.expect("ready");
    support::produce(&producer(&brokers), &setup.input, 0, 1_000, 2_000, 200).await;
    let first = eventually(Duration::from_secs(60), || seen.lock().unwrap().verdicts.len() >= 1_000).await;
    assert!(first, "the first 1,000 verdicts\n{}", gavel.log_tail());

    let client: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let added = client.create_partitions(&[NewPartitions::new(&setup.input, 4)], &AdminOptions::new()).await.unwrap();
    assert!(added.iter().all(Result::is_ok), "{added:?}");
    // A new producer sees the four partitions.
    support::produce(&producer(&brokers), &setup.input, 1_000, 3_000, 2_000, 200).await;
    let all = eventually(Duration::from_secs(90), || seen.lock().unwrap().verdicts.len() >= 3_000).await;
    assert!(all, "{} of 3,000 verdicts\n{}", seen.lock().unwrap().verdicts.len(), gavel.log_tail());
    let log = std::fs::read_to_string(setup.dir.join("gavel.log")).unwrap();
    assert!(log.contains("new input partitions: reading them into state too"), "{}", gavel.log_tail());
}
