//! The runtime's promises, proved the way an SRE would see them: the
//! `gavel` binary run as a child process against a real Apache Kafka broker.
//!
//! - killed with SIGKILL at random points and restarted, it loses no event,
//!   and a replayed event's action carries the same id;
//! - a broker restart mid-stream is ridden out without a gavel restart, and
//!   consumer lag returns to 0;
//! - two processes in one group split the partitions, and stopping one
//!   hands its partitions to the other with nothing lost;
//! - under a pack with a feature keyed by device, two members splitting
//!   the partitions are not ready and say which state would undercount,
//!   and the one left owning them all is ready;
//! - after a restart a velocity feature has its pre-restart value, so a rule
//!   needing that history still fires;
//! - a static member (`kafka.instance_id`) killed and restarted with the
//!   same id takes its partitions straight back, without a rebalance of
//!   the others;
//! - a lost broker turns `/readyz` and `gavel_ready` not ready within three
//!   lag probes, and ready again once it is back;
//! - a member that owns no partition while messages wait and nobody
//!   commits is not ready (an idle standby is), and ready again once it
//!   gets the partition;
//! - twenty SIGKILLs spread over two members of one group end with every
//!   input offset committed within a bound derived from the settings;
//! - a group that never committed starts live at the end of the log after
//!   warming up from history, emitting nothing for the past, unless
//!   `kafka.first_start = "earliest"` asks for the replay.
//!
//! Each test's default run is sized to take one to two minutes; `GAVEL_LONG_TESTS=1`
//! runs the long variants (50,000 events, 10 kills). Every test prints its
//! figures on stderr (`cargo test -- --nocapture` shows them).

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use support::{
    Broker, Gavel, SESSION_TIMEOUT, SHUTDOWN_TIMEOUT, Setup, collect, eventually, exclusive, long, produce, producer,
    shared_brokers,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_it_loses_nothing_and_repeats_no_action_id() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let (events, kills, rate) = if long() { (50_000u64, 10, 2_000) } else { (6_000, 3, 1_500) };
    let setup = Setup::new(&brokers, "kill", 4).await;
    let seen = collect(&setup);
    // Dynamic membership: a restarted process joins as a new member and
    // the killed one's partitions move after its 6 s session times out
    // (static membership has its own test below).
    let (config, admin) = setup.config("gavel", None, 1);
    let log = setup.dir.join("gavel.log");

    let writer = producer(&brokers);
    let input = setup.input.clone();
    let producing = tokio::spawn(async move { produce(&writer, &input, 0, events, rate, 700).await });

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut ready_after = Vec::new();
    for kill in 0..kills {
        let gavel = &mut Gavel::start(&config, admin, &log);
        // A random point: every third kill lands before the process is
        // ready (joining or warming up), the others while it is live.
        let early = kill % 3 == 2;
        if !early {
            let ready = gavel.until_ready(Duration::from_secs(30)).await;
            ready_after.push(ready.expect("ready after a restart"));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..2_500))).await;
        gavel.kill();
    }
    let mut gavel = Gavel::start(&config, admin, &log);
    producing.await.unwrap();
    let all_in = eventually(Duration::from_secs(if long() { 300 } else { 120 }), || {
        seen.lock().unwrap().verdicts.len() as u64 >= events
    })
    .await;
    // The graceful path is what is under test: a SIGTERM before the signal
    // handlers exist (the first milliseconds of start-up) just ends the process.
    assert!(gavel.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", gavel.log_tail());
    let (status, took) = gavel.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");

    let seen = seen.lock().unwrap();
    let lost = events - seen.verdicts.len() as u64;
    let duplicates = seen.verdicts_total() - seen.verdicts.len() as u64;
    let mut ids_per_decision: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for (id, source, rule) in &seen.actions {
        ids_per_decision.entry((source.as_str(), rule.as_str())).or_default().push(id.as_str());
    }
    let repeated_actions = seen.actions.len() - ids_per_decision.len();
    let mut ready_ms: Vec<u128> = ready_after.iter().map(Duration::as_millis).collect();
    ready_ms.sort_unstable();
    eprintln!(
        "kill loop: {events} events, {kills} SIGKILLs, {lost} lost, {duplicates} duplicate verdicts, \
         {} actions ({repeated_actions} re-emitted, all with their first id), restarts ready after {ready_ms:?} ms, \
         final SIGTERM exit in {} ms",
        seen.actions.len(),
        took.as_millis()
    );
    assert!(all_in, "only {} of {events} events got a verdict\n{}", seen.verdicts.len(), gavel.log_tail());
    assert_eq!(lost, 0);
    for ((source, rule), ids) in &ids_per_decision {
        assert!(ids.iter().all(|id| id == &ids[0]), "{rule} on {source} emitted different action ids: {ids:?}");
    }
    assert!(!seen.actions.is_empty(), "the pack's rule never fired: the action check proves nothing");
    assert!(status.success(), "SIGTERM exit status {status}\n{}", gavel.log_tail());
}

/// How long, at most, a restarted process takes from its start to asking
/// to join the group. Not a setting: an allowance (a debug build on two
/// busy cores takes about a second).
const START_UP: Duration = Duration::from_secs(10);

/// The commit interval of at-least-once mode (`auto.commit.interval.ms`
/// in `settings.rs`).
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// How long after the last instance failure every input offset is
/// committed, at most, with the settings the test processes run with, and
/// `backlog` to consume (the README states it):
///
/// - the last membership change comes within `session.timeout.ms` (the
///   dead member expires) plus a successor's start-up (it joins);
/// - the rebalance it starts may first wait for a member still warming up
///   from the rebalance before (`kafka.warmup_timeout`), then for every
///   member to drain what it gives up (`kafka.shutdown_timeout`);
/// - the new owners warm their partitions up (`kafka.warmup_timeout`),
///   consume the backlog and commit (two intervals: one may be in flight).
///
/// Every term is a worst case, so the sum is loose: a healthy run takes a
/// fraction of it. It is a correctness property, not a performance figure.
fn convergence_bound(backlog: Duration) -> Duration {
    let warmup = gavel_kafka::KafkaSettings::new("", "", vec![]).warmup_timeout;
    SESSION_TIMEOUT + START_UP + warmup + SHUTDOWN_TIMEOUT + warmup + backlog + 2 * COMMIT_INTERVAL
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_across_two_members_converge_within_the_bound() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let (kills, rate, chunk) = (20, 400, 100);
    let setup = Setup::new(&brokers, "converge", 4).await;
    let seen = collect(&setup);
    let (config_a, admin_a) = setup.config("a", None, 1);
    let (config_b, admin_b) = setup.config("b", None, 1);
    let (log_a, log_b) = (setup.dir.join("a.log"), setup.dir.join("b.log"));
    let start = |which: usize| match which {
        0 => Gavel::start(&config_a, admin_a, &log_a),
        _ => Gavel::start(&config_b, admin_b, &log_b),
    };
    let mut members = [start(0), start(1)];

    // Input is written all through the kills, up to the last one.
    let writing = Arc::new(AtomicBool::new(true));
    let producing = {
        let (writer, input, writing) = (producer(&brokers), setup.input.clone(), Arc::clone(&writing));
        tokio::spawn(async move {
            let mut written = 0;
            while writing.load(Ordering::Relaxed) {
                produce(&writer, &input, written, written + chunk, rate, 500).await;
                written += chunk;
            }
            written
        })
    };

    // Mostly the first member, every fourth kill the second, each at a
    // random point of its life: every third (and the last) once it is
    // ready, owning and consuming partitions, the others wherever they
    // fall (starting, joining, warming up, consuming).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20);
    let mut killed_ready = 0;
    for kill in 0..kills {
        let which = usize::from(kill % 4 == 3);
        let when_ready = kill % 3 == 0 || kill == kills - 1;
        if when_ready && members[which].until_ready(Duration::from_secs(20)).await.is_some() {
            killed_ready += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..2_500))).await;
        members[which].kill();
        members[which] = start(which);
    }
    let last_kill = Instant::now();
    writing.store(false, Ordering::Relaxed);
    let events = producing.await.unwrap();
    // What the survivors have to catch up on, as the broker says; they
    // consume it at least as fast as it was written.
    let backlog = setup.lag().expect("the group's lag");
    let bound = convergence_bound(Duration::from_secs_f64(backlog.max(0) as f64 / rate as f64));
    // Converged: the group's committed offset is the end offset of every
    // input partition, as the broker says (not gavel's metrics).
    let converged = eventually(bound + Duration::from_secs(30), || setup.lag() == Some(0)).await;
    let took = last_kill.elapsed();
    let all_in = eventually(Duration::from_secs(30), || seen.lock().unwrap().verdicts.len() as u64 >= events).await;
    let verdicts = seen.lock().unwrap().verdicts.len() as u64;
    eprintln!(
        "convergence: {kills} SIGKILLs over two members ({killed_ready} once ready, the last among them), \
         {events} events, {backlog} uncommitted at the last kill; every input offset committed {:.1} s after \
         the last kill (bound {} s); {verdicts} of {events} events with verdicts",
        took.as_secs_f64(),
        bound.as_secs()
    );
    let tails = || format!("{}\n{}", members[0].log_tail(), members[1].log_tail());
    assert!(backlog > 0, "nothing was left to recover at the last kill: the measurement proves nothing");
    assert!(
        converged,
        "offsets not all committed {} s after the last kill (lag {:?})\n{}",
        took.as_secs(),
        setup.lag(),
        tails()
    );
    assert!(
        took <= bound,
        "converged {:.1} s after the last kill, over {} s\n{}",
        took.as_secs_f64(),
        bound.as_secs(),
        tails()
    );
    assert!(all_in, "{verdicts} of {events} events got a verdict\n{}", tails());
    for member in &mut members {
        member.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_is_ridden_out_and_lag_returns_to_zero() {
    let _one_at_a_time = exclusive().await;
    let Some(mut broker) = Broker::start("broker_restart") else { return };
    let brokers = broker.addr();
    let events = if long() { 20_000 } else { 4_000 };
    let setup = Setup::new(&brokers, "restart", 4).await;
    let (config, admin) = setup.config("gavel", None, 2);
    let mut gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    assert!(gavel.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", gavel.log_tail());

    let writer = producer(&brokers);
    let input = setup.input.clone();
    let producing = tokio::spawn(async move { produce(&writer, &input, 0, events, 1_000, 300).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart();
    let back = Instant::now();
    producing.await.unwrap();

    let caught_up = eventually(Duration::from_secs(120), || setup.lag() == Some(0)).await;
    let recovered_in = back.elapsed();
    let errors = gavel.metric("gavel_kafka_client_errors_total").unwrap_or(0.0);
    let seen = collect(&setup);
    let all_in = eventually(Duration::from_secs(60), || seen.lock().unwrap().verdicts.len() as u64 >= events).await;
    let got = seen.lock().unwrap().verdicts.len();
    eprintln!(
        "broker restart: {events} events, broker down 2 s, lag 0 {:.1} s after it came back, \
         {got} events with verdicts, {errors} client errors counted",
        recovered_in.as_secs_f64()
    );
    assert!(gavel.alive(), "gavel died with the broker\n{}", gavel.log_tail());
    assert!(caught_up, "lag {:?} did not return to 0\n{}", setup.lag(), gavel.log_tail());
    assert!(all_in, "{got} of {events} events got a verdict");
    assert!(errors > 0.0, "the outage did not show in gavel_kafka_client_errors_total");
    let (status, _) = gavel.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_broker_turns_it_not_ready_until_the_broker_is_back() {
    let _one_at_a_time = exclusive().await;
    let Some(mut broker) = Broker::start("readiness") else { return };
    let brokers = broker.addr();
    let setup = Setup::new(&brokers, "ready", 2).await;
    let (config, admin) = setup.config("gavel", None, 1);
    // With the tests' 6 s session librdkafka gives the assignment up as
    // lost after 6 s without the coordinator, and that alone turns the
    // instance not ready. A session longer than the lag probe's bound
    // leaves the noticing to the probe, which is what is under test (and
    // what a standby owning nothing, or a long session, relies on).
    let session = Duration::from_secs(60);
    let text = std::fs::read_to_string(&config).unwrap();
    let longer = text.replace(
        &format!("\"session.timeout.ms\" = \"{}\"", SESSION_TIMEOUT.as_millis()),
        &format!("\"session.timeout.ms\" = \"{}\"", session.as_millis()),
    );
    assert_ne!(longer, text);
    std::fs::write(&config, longer).unwrap();
    let mut gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    assert!(gavel.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", gavel.log_tail());
    assert_eq!(gavel.metric("gavel_ready"), Some(1.0));

    // Three failed lag probes in a row mean the broker is lost: probes
    // start every 10 s and give the broker 5 s, so the first failure
    // starts within 10 s of the loss and the third ends 25 s after it.
    let probe_bound = Duration::from_secs(10 + 2 * 10 + 5);
    broker.kill();
    let lost = Instant::now();
    let unready =
        eventually(Duration::from_secs(90), || !gavel.ready() && gavel.metric("gavel_ready") == Some(0.0)).await;
    let unready_after = lost.elapsed();
    assert!(unready, "still ready 90 s after the broker went away\n{}", gavel.log_tail());
    assert!(gavel.alive(), "gavel died with the broker\n{}", gavel.log_tail());

    broker.restart();
    let back = Instant::now();
    let ready_again = gavel.until_ready(Duration::from_secs(90)).await.is_some();
    let ready_after = back.elapsed();
    eprintln!(
        "readiness: not ready {:.1} s after the broker was lost (probe bound {} s, session {} s); \
         ready again {:.1} s after it came back",
        unready_after.as_secs_f64(),
        probe_bound.as_secs(),
        session.as_secs(),
        ready_after.as_secs_f64()
    );
    // Slack for a busy machine's scheduling and the scrape that sees it.
    assert!(
        unready_after <= probe_bound + Duration::from_secs(5),
        "not ready only {:.1} s after the broker was lost\n{}",
        unready_after.as_secs_f64(),
        gavel.log_tail()
    );
    assert!(
        ready_again,
        "not ready {:.1} s after the broker came back\n{}",
        ready_after.as_secs_f64(),
        gavel.log_tail()
    );
    assert_eq!(gavel.metric("gavel_ready"), Some(1.0));
    let (status, _) = gavel.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_owning_nothing_while_nobody_consumes_is_not_ready() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let events = 20;
    let setup = Setup::new(&brokers, "stuck", 1).await;
    let seen = collect(&setup);
    let (config, admin) = setup.config("gavel", None, 1);
    let mut gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    assert!(gavel.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", gavel.log_tail());
    let owned = |g: &Gavel| g.metric("gavel_kafka_partitions_assigned");

    // A member of the same group that takes the only partition and never
    // commits: a wedged peer. Its client id sorts before gavel's
    // ("rdkafka"), so the range assignor gives it the partition.
    let squatting = Arc::new(AtomicBool::new(true));
    let squatter = {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &setup.group)
            .set("client.id", "a-squatter")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", SESSION_TIMEOUT.as_millis().to_string())
            .create()
            .unwrap();
        consumer.subscribe(&[&setup.input]).unwrap();
        let squatting = Arc::clone(&squatting);
        std::thread::spawn(move || {
            while squatting.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            // Leave the group at once rather than after the session timeout.
            consumer.unsubscribe();
            let _ = consumer.poll(Duration::from_millis(500));
        })
    };
    let standby = eventually(Duration::from_secs(60), || owned(&gavel) == Some(0.0) && gavel.ready()).await;
    assert!(
        standby,
        "gavel still owns {:?} partitions, or is not ready owning none\n{}",
        owned(&gavel),
        gavel.log_tail()
    );

    // Messages arrive and nobody consumes them: stuck once three probes in
    // a row (one every 10 s) see them waiting and no committed offset
    // moving since the probe before, so within four probes of their
    // arrival (the first may be the one that sees the offsets first).
    let probe_bound = Duration::from_secs(10 + 3 * 10);
    let writer = producer(&brokers);
    produce(&writer, &setup.input, 0, events, 100, 5).await;
    let waiting = Instant::now();
    let unready =
        eventually(Duration::from_secs(90), || !gavel.ready() && gavel.metric("gavel_ready") == Some(0.0)).await;
    let unready_after = waiting.elapsed();
    assert!(unready, "still ready 90 s into a stuck group\n{}", gavel.log_tail());
    // Slack for a busy machine's scheduling and the scrape that sees it.
    assert!(
        unready_after <= probe_bound + Duration::from_secs(5),
        "not ready only {:.1} s into a stuck group\n{}",
        unready_after.as_secs_f64(),
        gavel.log_tail()
    );
    assert_eq!(owned(&gavel), Some(0.0));

    // The squatter leaves: gavel takes the partition, consumes the backlog
    // and is ready again.
    squatting.store(false, Ordering::Relaxed);
    squatter.join().unwrap();
    let freed = Instant::now();
    let ready_again = eventually(Duration::from_secs(60), || owned(&gavel) == Some(1.0) && gavel.ready()).await;
    let ready_after = freed.elapsed();
    let all_in = eventually(Duration::from_secs(30), || seen.lock().unwrap().verdicts.len() as u64 >= events).await;
    eprintln!(
        "stuck group: not ready {:.1} s after messages waited with nobody consuming (probe bound {} s); ready \
         again owning the partition {:.1} s after the squatter left; {} of {events} events with verdicts",
        unready_after.as_secs_f64(),
        probe_bound.as_secs(),
        ready_after.as_secs_f64(),
        seen.lock().unwrap().verdicts.len()
    );
    assert!(ready_again, "not ready again owning the partition\n{}", gavel.log_tail());
    assert!(all_in, "the backlog was not consumed\n{}", gavel.log_tail());
    let (status, _) = gavel.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_split_the_partitions_and_a_stopped_one_hands_over() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let events = if long() { 20_000 } else { 4_000 };
    let setup = Setup::new(&brokers, "pair", 4).await;
    let seen = collect(&setup);
    let (config_a, admin_a) = setup.config("a", None, 1);
    let (config_b, admin_b) = setup.config("b", None, 1);
    let mut a = Gavel::start(&config_a, admin_a, &setup.dir.join("a.log"));
    let mut b = Gavel::start(&config_b, admin_b, &setup.dir.join("b.log"));
    let owned = |g: &Gavel| g.metric("gavel_kafka_partitions_assigned").unwrap_or(0.0);
    let split = eventually(Duration::from_secs(60), || owned(&a) > 0.0 && owned(&b) > 0.0).await;
    assert!(split, "partitions not split: a {} b {}\n{}\n{}", owned(&a), owned(&b), a.log_tail(), b.log_tail());
    let (split_a, split_b) = (owned(&a), owned(&b));

    let writer = producer(&brokers);
    let input = setup.input.clone();
    let producing = tokio::spawn(async move { produce(&writer, &input, 0, events, 1_000, 300).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, took) = b.terminate(Duration::from_secs(20)).expect("b exits within its shutdown bound");
    assert!(status.success(), "b exit status {status}\n{}", b.log_tail());
    let stopped = Instant::now();
    let took_over = eventually(Duration::from_secs(60), || owned(&a) == 4.0).await;
    let handover = stopped.elapsed();
    producing.await.unwrap();
    let all_in = eventually(Duration::from_secs(120), || seen.lock().unwrap().verdicts.len() as u64 >= events).await;

    let seen = seen.lock().unwrap();
    let duplicates = seen.verdicts_total() - seen.verdicts.len() as u64;
    eprintln!(
        "two processes: split {split_a}+{split_b} of 4 partitions; b stopped by SIGTERM in {} ms; \
         a owned all 4 {:.1} s later; {} of {events} events with verdicts, {duplicates} duplicates",
        took.as_millis(),
        handover.as_secs_f64(),
        seen.verdicts.len()
    );
    assert!(took_over, "a did not take b's partitions\n{}", a.log_tail());
    assert!(all_in, "{} of {events} events got a verdict\n{}", seen.verdicts.len(), a.log_tail());
    assert!(a.alive());
    let (status, _) = a.terminate(Duration::from_secs(20)).expect("a exits within its shutdown bound");
    assert!(status.success());
}

/// A pack whose feature is keyed by device: a member owning only some of
/// the partitions would count only its share of a device's bids.
const DEVICE_PACK: &str = r#"
version: "partial-1"
features:
  - name: accounts_per_device_10m
    on: [bid_placed]
    key: event.device_id
    window: 10m
    aggregate: distinct
    value: event.user_id
rules:
  - id: shared_device
    description: three accounts bidding from one device
    on: [bid_placed]
    when: features.accounts_per_device_10m >= 3
    score: 70
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_splitting_the_partitions_under_a_device_keyed_pack_are_not_ready() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let setup = Setup::new(&brokers, "partial", 4).await;
    std::fs::write(setup.dir.join("pack/pack.yaml"), DEVICE_PACK).unwrap();
    let (config_a, admin_a) = setup.config("a", None, 1);
    let (config_b, admin_b) = setup.config("b", None, 1);
    let mut a = Gavel::start(&config_a, admin_a, &setup.dir.join("a.log"));
    let mut b = Gavel::start(&config_b, admin_b, &setup.dir.join("b.log"));
    let owned = |g: &Gavel| g.metric("gavel_kafka_partitions_assigned").unwrap_or(0.0);
    let exact = |g: &Gavel| g.metric("gavel_state_exact");
    let split = eventually(Duration::from_secs(60), || owned(&a) > 0.0 && owned(&b) > 0.0).await;
    assert!(split, "partitions not split: a {} b {}\n{}\n{}", owned(&a), owned(&b), a.log_tail(), b.log_tail());

    // Each member knows the partition count from its first lag probe.
    let flagged = eventually(Duration::from_secs(30), || exact(&a) == Some(0.0) && exact(&b) == Some(0.0)).await;
    let (split_a, split_b) = (owned(&a), owned(&b));
    assert!(flagged, "not flagged inexact: a {:?} b {:?}\n{}\n{}", exact(&a), exact(&b), a.log_tail(), b.log_tail());
    // Give readiness every chance to come up wrongly.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!a.ready() && !b.ready(), "a member owning part of the partitions passed for ready");
    for g in [&a, &b] {
        let log = std::fs::read_to_string(&g.log).unwrap();
        assert!(log.contains("input partitions, and the pack keeps state that events of any partition feed"), "{log}");
        assert!(log.contains("feature accounts_per_device_10m (keyed by event.device_id)"), "{log}");
    }

    // Alone, a owns every partition: exact, and ready.
    let (status, _) = b.terminate(Duration::from_secs(20)).expect("b exits within its shutdown bound");
    assert!(status.success());
    let stopped = Instant::now();
    let ready = a.until_ready(Duration::from_secs(60)).await;
    eprintln!(
        "partial ownership: split {split_a}+{split_b} of 4 partitions, both not ready; a alone ready {:.1} s after b stopped",
        stopped.elapsed().as_secs_f64()
    );
    assert!(ready.is_some(), "a alone did not become ready\n{}", a.log_tail());
    assert_eq!(owned(&a), 4.0);
    assert_eq!(exact(&a), Some(1.0));
    let (status, _) = a.terminate(Duration::from_secs(20)).expect("a exits within its shutdown bound");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_rule_needing_earlier_history_still_fires() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let setup = Setup::new(&brokers, "warm", 2).await;
    let seen = collect(&setup);
    let (config, admin) = setup.config("gavel", None, 2);
    let log = setup.dir.join("gavel.log");
    let writer = producer(&brokers);

    // Two bids by walt: the rule needs three.
    let mut first = Gavel::start(&config, admin, &log);
    assert!(first.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", first.log_tail());
    produce(&writer, &setup.input, 0, 2, 100, 1).await;
    assert!(eventually(Duration::from_secs(30), || seen.lock().unwrap().verdicts.len() == 2).await);
    let (status, _) = first.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");
    assert!(status.success());
    assert!(seen.lock().unwrap().actions.is_empty());

    // A new process: its store starts empty, warm-up replays the two bids.
    let second = Gavel::start(&config, admin, &log);
    let ready = second.until_ready(Duration::from_secs(60)).await;
    assert!(ready.is_some(), "not ready\n{}", second.log_tail());
    let replayed = second.metric("gavel_warmup_messages_total").unwrap_or(0.0);
    produce(&writer, &setup.input, 2, 3, 100, 1).await;
    let fired = eventually(Duration::from_secs(30), || !seen.lock().unwrap().actions.is_empty()).await;
    eprintln!(
        "warm restart: ready {} ms after start, {replayed} messages replayed, rule fired on the third bid: {fired}",
        ready.unwrap_or_default().as_millis()
    );
    assert_eq!(replayed, 2.0, "warm-up replays exactly the committed history");
    assert!(fired, "the third bid after the restart did not fire fast_bidder\n{}", second.log_tail());
    let actions = &seen.lock().unwrap().actions;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].1, "ev-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_killed_and_restarted_takes_its_partitions_straight_back() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let events = 2_000;
    let setup = Setup::new(&brokers, "static", 4).await;
    let seen = collect(&setup);
    let (config_a, admin_a) = setup.config("a", Some("gavel-a"), 1);
    let (config_b, admin_b) = setup.config("b", Some("gavel-b"), 1);
    let mut a = Gavel::start(&config_a, admin_a, &setup.dir.join("a.log"));
    let mut b = Gavel::start(&config_b, admin_b, &setup.dir.join("b.log"));
    let owned = |g: &Gavel| g.metric("gavel_kafka_partitions_assigned").unwrap_or(0.0);
    let rebalances = |g: &Gavel| g.metric("gavel_kafka_rebalances_total").unwrap_or(-1.0);
    let split = eventually(Duration::from_secs(60), || owned(&a) > 0.0 && owned(&b) > 0.0).await;
    assert!(split, "partitions not split: a {} b {}\n{}\n{}", owned(&a), owned(&b), a.log_tail(), b.log_tail());
    // Let the group settle: both members stable, no rebalance pending.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (owned_a, owned_b) = (owned(&a), owned(&b));
    let a_rebalances = rebalances(&a);

    b.kill();
    let killed = Instant::now();
    let mut b = Gavel::start(&config_b, admin_b, &setup.dir.join("b.log"));
    let back = eventually(Duration::from_secs(20), || owned(&b) == owned_b).await;
    let took = killed.elapsed();
    assert!(back, "b did not get its {owned_b} partitions back\n{}", b.log_tail());

    let writer = producer(&brokers);
    produce(&writer, &setup.input, 0, events, 1_000, 200).await;
    let all_in = eventually(Duration::from_secs(60), || seen.lock().unwrap().verdicts.len() as u64 >= events).await;
    let (a_after, b_rebalances) = (rebalances(&a), rebalances(&b));
    eprintln!(
        "static membership: a {owned_a} + b {owned_b} partitions; b SIGKILLed and restarted with its instance id: \
         its partitions back in {} ms; a's rebalances {a_rebalances} before, {a_after} after; b's {b_rebalances}",
        took.as_millis()
    );
    assert_eq!(a_after, a_rebalances, "the restart of a static member must not rebalance the others\n{}", a.log_tail());
    assert_eq!(owned(&a), owned_a, "a's assignment changed");
    assert!(all_in, "{} of {events} events got a verdict", seen.lock().unwrap().verdicts.len());
    for g in [&mut a, &mut b] {
        let (status, _) = g.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");
        assert!(status.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_warms_up_from_history_and_emits_nothing_for_it() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let setup = Setup::new(&brokers, "first-start", 2).await;
    let seen = collect(&setup);
    let writer = producer(&brokers);
    let log = setup.dir.join("gavel.log");

    // History written before any gavel ran: two bids by one user (the
    // test pack's rule fires on the third).
    produce(&writer, &setup.input, 0, 2, 100, 1).await;
    let (config, admin) = setup.config("gavel", None, 2);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("first_start = \"earliest\""));
    std::fs::write(&config, text.replace("first_start = \"earliest\"", "first_start = \"end\"")).unwrap();

    let mut first = Gavel::start(&config, admin, &log);
    assert!(first.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", first.log_tail());
    let replayed = first.metric("gavel_warmup_messages_total").unwrap_or(0.0);
    produce(&writer, &setup.input, 2, 3, 100, 1).await;
    let fired = eventually(Duration::from_secs(30), || !seen.lock().unwrap().actions.is_empty()).await;
    // Give anything re-emitted for the history time to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = first.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");
    assert!(status.success());
    {
        let seen = seen.lock().unwrap();
        let mut verdicts: Vec<&String> = seen.verdicts.keys().collect();
        verdicts.sort();
        eprintln!("first start at the end: {replayed} messages warmed up, verdicts for {verdicts:?}");
        assert_eq!(replayed, 2.0, "the history was warmed up");
        assert!(fired, "the live bid did not see the two warmed-up ones\n{}", first.log_tail());
        assert_eq!(verdicts, ["ev-2"], "only the live event is scored: nothing re-emitted for the past");
        assert_eq!(seen.actions.len(), 1);
    }

    // A renamed group that asks for the replay consumes and emits the
    // whole history.
    let text = std::fs::read_to_string(&config).unwrap();
    let renamed = text
        .replace(&format!("group_id = \"{}\"", setup.group), &format!("group_id = \"{}-replay\"", setup.group))
        .replace("first_start = \"end\"", "first_start = \"earliest\"");
    assert_ne!(renamed, text);
    std::fs::write(&config, renamed).unwrap();
    let mut second = Gavel::start(&config, admin, &log);
    let replayed_all = eventually(Duration::from_secs(60), || {
        ["ev-0", "ev-1"].iter().all(|id| seen.lock().unwrap().verdicts.contains_key(*id))
    })
    .await;
    second.kill();
    assert!(replayed_all, "first_start = earliest did not replay the history\n{}", second.log_tail());
}
