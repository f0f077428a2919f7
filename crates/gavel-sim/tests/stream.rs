//! The stream's contract, at several rates and seeds: the simulator yields
//! as many events as asked, each well-formed (a payload, a time, an acting
//! account, an id numbered in order, a topic of the default layout); event
//! time starts at `start_ms`, never goes back and advances `1 / rate` per
//! event; every scenario is present; and a seed gives the same stream
//! every time.
//!
//! (This file replaces a throughput printout that asserted nothing; speed
//! is the benchmarks' business.)

use std::collections::BTreeSet;

use gavel_model::event_time_ms;
use gavel_sim::{MARKETPLACE_TOPICS, Scenario, SimConfig, SimEvent, Simulator, topic_for};

const EVENTS: usize = 60_000;

fn config(seed: u64, rate: f64) -> SimConfig {
    SimConfig { seed, rate_per_sec: rate, live_shows: SimConfig::shows_for_rate(rate), ..SimConfig::default() }
}

#[test]
fn every_rate_and_seed_gives_a_well_formed_stream() {
    for (seed, rate) in [(7, 5_000.0), (1, 1_000.0), (42, 20_000.0)] {
        let config = config(seed, rate);
        let events: Vec<SimEvent> = Simulator::new(config.clone()).take(EVENTS).collect();
        assert_eq!(events.len(), EVENTS, "seed {seed}, rate {rate}");
        let mut last = config.start_ms;
        let mut scenarios = BTreeSet::new();
        for (i, e) in events.iter().enumerate() {
            let what = format!("seed {seed}, rate {rate}, event {i}");
            assert_eq!(e.event.event_id, format!("sim-{seed}-{}", i + 1), "{what}");
            assert!(!e.event.user_id.is_empty(), "{what}");
            let kind = e.event.kind().unwrap_or_else(|| panic!("{what}: no payload"));
            assert!(MARKETPLACE_TOPICS.contains(&topic_for(kind)), "{what}");
            let t = event_time_ms(&e.event).unwrap_or_else(|| panic!("{what}: no time"));
            assert!(t >= last, "{what}: event time went back from {last} to {t}");
            last = t;
            scenarios.extend(e.scenario);
        }
        // The i-th event is at start + i / rate, give or take the
        // rounding that adding `1 / rate` up in floating point gathers.
        let expected = config.start_ms + (EVENTS as f64 * 1_000.0 / rate) as i64;
        assert!((last - expected).abs() < 10, "seed {seed}, rate {rate}: last event at {last}, expected {expected}");
        let missing: Vec<_> = Scenario::ALL.into_iter().filter(|s| !scenarios.contains(s)).collect();
        assert!(missing.is_empty(), "seed {seed}, rate {rate}: no events of {missing:?}");
    }
}

#[test]
fn a_seed_gives_the_same_stream_and_another_seed_another() {
    let run = |seed| Simulator::new(config(seed, 5_000.0)).take(EVENTS).collect::<Vec<_>>();
    let a = run(11);
    assert!(a == run(11), "two runs of seed 11 differ");
    let b = run(12);
    assert_ne!(a.iter().map(|e| &e.event).collect::<Vec<_>>(), b.iter().map(|e| &e.event).collect::<Vec<_>>());
}
