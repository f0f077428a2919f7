//! Exactly-once mode (`outputs.exactly_once = true`), proved the way a
//! downstream reader would see it: the `gavel` binary as a child process
//! against a real Apache Kafka broker, SIGKILLed at random points (a seeded
//! RNG) twenty times while events keep coming, each kill followed by a
//! restart, then one last run to completion. A `read_committed` consumer of
//! every output topic must see every input event's verdict exactly once,
//! and no signal or action twice.
//!
//! Static membership (`kafka.instance_id`) gives a restarted process its
//! partitions back at once and its shards their transactional ids, so it
//! aborts what the killed one left open instead of waiting for the broker's
//! transaction timeout. `GAVEL_LONG_TESTS=1` runs 20,000 events and 50
//! kills. The figures go to stderr (`cargo test -- --nocapture`).

mod support;

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use support::{Gavel, Setup, collect_committed, eventually, exclusive, long, produce, producer, shared_brokers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_twenty_times_it_loses_and_repeats_nothing() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let started = Instant::now();
    let (events, kills, rate) = if long() { (20_000u64, 50, 400) } else { (4_000, 20, 100) };
    let setup = Setup::new(&brokers, "eo", 4).await;
    let seen = collect_committed(&setup);
    let (config, admin) = setup.config("gavel", Some("gavel-eo"), 1);
    // The support config ends in its `[outputs]` section.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("exactly_once = true\n");
    std::fs::write(&config, text).unwrap();
    let log = setup.dir.join("gavel.log");

    let writer = producer(&brokers);
    let input = setup.input.clone();
    let producing = tokio::spawn(async move { produce(&writer, &input, 0, events, rate, 300).await });

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
    let mut ready_ms = Vec::new();
    for kill in 0..kills {
        let gavel = &mut Gavel::start(&config, admin, &log);
        // Every fourth kill lands before the process is ready (joining,
        // initialising transactions or warming up), the others while live.
        if kill % 4 != 3 {
            let ready = gavel.until_ready(Duration::from_secs(30)).await;
            let ready = ready.unwrap_or_else(|| panic!("not ready after restart {kill}\n{}", gavel.log_tail()));
            ready_ms.push(ready.as_millis());
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..1_500))).await;
        gavel.kill();
    }
    let mut gavel = Gavel::start(&config, admin, &log);
    producing.await.unwrap();
    let all_in = eventually(Duration::from_secs(90), || seen.lock().unwrap().verdicts.len() as u64 >= events).await;
    // Anything committed twice would have shown by now; give it a moment more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(gavel.until_ready(Duration::from_secs(30)).await.is_some(), "not ready\n{}", gavel.log_tail());
    let (status, _) = gavel.terminate(Duration::from_secs(20)).expect("exits within its shutdown bound");

    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let transactional = logged.matches("transactional producer ready").count();
    let seen = seen.lock().unwrap();
    let expected = |id: &str| id.strip_prefix("ev-").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n < events);
    let lost = (0..events).filter(|n| !seen.verdicts.contains_key(&format!("ev-{n}"))).count();
    let strangers = seen.verdicts.keys().filter(|id| !expected(id)).count();
    let duplicates = seen.duplicates();
    ready_ms.sort_unstable();
    eprintln!(
        "exactly-once kill loop: {events} events, {kills} SIGKILLs, {lost} lost, {duplicates} duplicated outputs \
         ({} verdicts, {} signals, {} actions read committed), restarts ready after {ready_ms:?} ms, \
         {transactional} transactional producers started, {:.1} s in all",
        seen.verdicts.values().sum::<u32>(),
        seen.signals.values().sum::<u32>(),
        seen.actions.values().sum::<u32>(),
        started.elapsed().as_secs_f64()
    );
    // One shard, so one transactional producer per start whose shard got
    // it ready before the kill (a kill just after `/readyz` may come
    // first): most of the starts that became ready.
    assert!(
        transactional * 2 > ready_ms.len() + 1,
        "exactly-once mode was not in force: {transactional} transactional producers for {} ready starts",
        ready_ms.len() + 1
    );
    assert!(all_in, "only {} of {events} events got a verdict\n{}", seen.verdicts.len(), gavel.log_tail());
    assert_eq!(lost, 0, "events without a verdict");
    assert_eq!(strangers, 0, "verdicts for events never produced");
    let repeated: Vec<_> = [&seen.verdicts, &seen.signals, &seen.actions]
        .iter()
        .flat_map(|m| m.iter().filter(|(_, n)| **n > 1))
        .take(5)
        .collect();
    assert_eq!(duplicates, 0, "outputs seen more than once, e.g. {repeated:?}");
    assert!(!seen.actions.is_empty(), "the pack's rule never fired: the action check proves nothing");
    assert!(status.success(), "SIGTERM exit status {status}\n{}", gavel.log_tail());
}
