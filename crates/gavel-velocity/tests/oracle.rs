//! Every aggregate against an exact oracle: a plain list of the events that
//! counted, filtered by the same bucket rule the store documents, over
//! random streams with out-of-order times, window edges, idle eviction and
//! the key cap.

use std::collections::HashMap;

use gavel_velocity::{
    Aggregate, BUCKETS, CountWindow, DISTINCT_RELATIVE_ERROR, Input, MAX_WINDOW_MS, Recorded, Window, WindowConfig,
};
use proptest::prelude::*;

const KEYS: [&str; 4] = ["a", "b", "c", "a-key-that-is-longer-than-twenty-four-bytes"];
const SPAN: i64 = BUCKETS as i64;

/// One event that counted.
#[derive(Debug, Clone, Copy)]
struct Event {
    key: usize,
    t: i64,
    value: f64,
    item: u32,
}

/// The store's documented semantics, spelled out on a list.
#[derive(Debug)]
struct Oracle {
    bucket_ms: i64,
    /// Newest bucket per key held.
    heads: HashMap<usize, i64>,
    events: Vec<Event>,
}

impl Oracle {
    fn new(bucket_ms: u64) -> Self {
        Oracle { bucket_ms: bucket_ms as i64, heads: HashMap::new(), events: Vec::new() }
    }

    fn bucket(&self, t: i64) -> i64 {
        t.div_euclid(self.bucket_ms)
    }

    /// The events of `key` in the window ending at `t` that its ring holds.
    fn window(&self, key: usize, t: i64) -> Vec<Event> {
        let Some(&head) = self.heads.get(&key) else {
            return Vec::new();
        };
        let idx = self.bucket(t);
        self.events
            .iter()
            .filter(|e| {
                let b = self.bucket(e.t);
                e.key == key && b <= idx && b > idx - SPAN && b > head - SPAN
            })
            .copied()
            .collect()
    }

    /// Records `e`; false when it is too late.
    fn record(&mut self, e: Event) -> bool {
        let idx = self.bucket(e.t);
        let head = self.heads.entry(e.key).or_insert(idx);
        if idx <= *head - SPAN {
            return false;
        }
        *head = (*head).max(idx);
        self.events.push(e);
        true
    }

    /// The time a too-late event of `key` reads at: the end of its head.
    fn head_end(&self, key: usize) -> i64 {
        (self.heads[&key] + 1) * self.bucket_ms - 1
    }

    fn evict_idle(&mut self, now: i64) -> usize {
        let idx = self.bucket(now);
        let mut dropped = Vec::new();
        for (&key, head) in &mut self.heads {
            *head = (*head).max(idx);
            let h = *head;
            let bucket_ms = self.bucket_ms;
            if !self.events.iter().any(|e| e.key == key && e.t.div_euclid(bucket_ms) > h - SPAN) {
                dropped.push(key);
            }
        }
        for key in &dropped {
            self.forget(*key);
        }
        dropped.len()
    }

    fn forget(&mut self, key: usize) {
        self.heads.remove(&key);
        self.events.retain(|e| e.key != key);
    }
}

/// What `aggregate` reads over `events` at time `t`.
fn expected(aggregate: Aggregate, events: &[Event], t: i64) -> Option<f64> {
    let n = events.len();
    let values = events.iter().map(|e| e.value);
    let times = events.iter().map(|e| e.t);
    match aggregate {
        Aggregate::Count => Some(n as f64),
        Aggregate::Sum => Some(values.sum::<f64>() + 0.0),
        Aggregate::Min => values.reduce(f64::min),
        Aggregate::Max => values.reduce(f64::max),
        Aggregate::Avg => (n > 0).then(|| values.sum::<f64>() / n as f64),
        Aggregate::Distinct => {
            let mut items: Vec<u32> = events.iter().map(|e| e.item).collect();
            items.sort_unstable();
            items.dedup();
            Some(items.len() as f64)
        }
        Aggregate::FirstSeen => times.min().map(|t| t as f64),
        Aggregate::LastSeen => times.max().map(|t| t as f64),
        Aggregate::Since => times.max().map(|last| (t - last).max(0) as f64),
    }
}

fn input(aggregate: Aggregate, e: &Event, item: &str) -> Input<'static> {
    match aggregate.input() {
        gavel_velocity::InputKind::None => Input::None,
        gavel_velocity::InputKind::Number => Input::Number(e.value),
        // Leaked once per distinct item name: a test-only convenience.
        gavel_velocity::InputKind::Item => Input::Item(Box::leak(item.to_owned().into_boxed_str())),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Record { key: usize, t: i64, value: i32, item: u32 },
    Read { key: usize, t: i64 },
    EvictIdle { now: i64 },
}

fn op(items: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..KEYS.len(), -5_000i64..20_000, -50i32..50, 0..items)
            .prop_map(|(key, t, value, item)| Op::Record { key, t, value, item }),
        2 => (0..KEYS.len(), -5_000i64..25_000).prop_map(|(key, t)| Op::Read { key, t }),
        1 => (-5_000i64..25_000).prop_map(|now| Op::EvictIdle { now }),
    ]
}

fn window_ms() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..200, 200u64..6_000, Just(60_000), Just(MAX_WINDOW_MS)]
}

/// Runs `ops` through one window per aggregate and checks every answer.
fn check_all(window_ms: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let windows: Vec<Window> = Aggregate::ALL.iter().map(|&a| Window::new(a, window_ms).unwrap()).collect();
    let count = CountWindow::new(window_ms).unwrap();
    let mut oracle = Oracle::new(windows[0].bucket_ms());
    let names: Vec<String> = (0..200).map(|i| format!("item-{i}")).collect();
    let mut too_late = 0;
    for op in ops {
        match *op {
            Op::Record { key, t, value, item } => {
                let e = Event { key, t, value: f64::from(value), item };
                let before = oracle.window(key, t);
                let counted = oracle.record(e);
                too_late += u64::from(!counted);
                let after = oracle.window(key, t);
                for w in &windows {
                    let a = w.aggregate();
                    let got = w.record(KEYS[key], t, input(a, &e, &names[item as usize])).unwrap();
                    let want = if !counted {
                        let end = oracle.head_end(key);
                        expected(a, &oracle.window(key, end), end)
                    } else if a == Aggregate::Since {
                        expected(a, &before, t)
                    } else {
                        expected(a, &after, t)
                    };
                    prop_assert_eq!(got, want, "{} record {:?}", a, op);
                }
                let n = count.record(KEYS[key], t);
                let want = expected(Aggregate::Count, &after, t).unwrap() as u64;
                if counted {
                    prop_assert_eq!(n, Recorded::Counted(want));
                } else {
                    prop_assert!(matches!(n, Recorded::TooLate(_)));
                }
            }
            Op::Read { key, t } => {
                let events = oracle.window(key, t);
                for w in &windows {
                    let a = w.aggregate();
                    prop_assert_eq!(w.read(KEYS[key], t), expected(a, &events, t), "{} read {:?}", a, op);
                }
                prop_assert_eq!(count.count(KEYS[key], t), events.len() as u64);
            }
            Op::EvictIdle { now } => {
                let dropped = oracle.evict_idle(now);
                for w in &windows {
                    prop_assert_eq!(w.evict_idle(now), dropped, "{} evict_idle({})", w.aggregate(), now);
                    prop_assert_eq!(w.len(), oracle.heads.len());
                }
                prop_assert_eq!(count.evict_idle(now), dropped);
            }
        }
    }
    for w in &windows {
        prop_assert_eq!(w.too_late_total(), too_late);
        prop_assert_eq!(w.len(), oracle.heads.len());
    }
    prop_assert_eq!(count.too_late_total(), too_late);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Few items per key: `distinct` stays in its exact tier.
    #[test]
    fn every_aggregate_matches_the_oracle(
        window_ms in window_ms(),
        ops in proptest::collection::vec(op(12), 1..300),
    ) {
        check_all(window_ms, &ops)?;
    }

    /// Up to 100 items per key: `distinct` moves to sketches, which hold
    /// these 100 fixed items exactly (their encoded hashes do not collide).
    #[test]
    fn every_aggregate_matches_the_oracle_past_the_exact_tier(
        window_ms in window_ms(),
        ops in proptest::collection::vec(op(100), 1..400),
    ) {
        check_all(window_ms, &ops)?;
    }

    /// With a cap, the evicted keys are the least recent ones, the counter
    /// says how many, and the keys left still match the oracle.
    #[test]
    fn the_cap_evicts_least_recent_keys(
        cap in 1usize..4,
        ops in proptest::collection::vec((0usize..12, 0i64..30_000), 1..200),
    ) {
        let w = Window::with_config(WindowConfig::new(Aggregate::Count, 1_000).shards(1).max_keys(cap)).unwrap();
        let mut oracle = Oracle::new(w.bucket_ms());
        let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
        let mut evicted_total = 0;
        for (key, t) in ops {
            let e = Event { key, t, value: 0.0, item: 0 };
            let counted = oracle.record(e);
            let got = w.record(&keys[key], t, Input::None).unwrap();
            let gone: Vec<usize> = oracle.heads.keys().copied().filter(|k| !w.contains(&keys[*k])).collect();
            let kept: Vec<usize> = oracle.heads.keys().copied().filter(|k| *k != key && !gone.contains(k)).collect();
            if let (Some(newest_gone), Some(oldest_kept)) = (
                gone.iter().map(|k| oracle.heads[k]).max(),
                kept.iter().map(|k| oracle.heads[k]).min(),
            ) {
                prop_assert!(newest_gone <= oldest_kept, "evicted a key newer than one kept");
            }
            prop_assert!(!gone.contains(&key), "the new key is never the one evicted");
            evicted_total += gone.len() as u64;
            for k in gone {
                oracle.forget(k);
            }
            let want = if counted { t } else { oracle.head_end(key) };
            prop_assert_eq!(got, expected(Aggregate::Count, &oracle.window(key, want), want));
            prop_assert!(w.len() <= cap);
            prop_assert_eq!(w.len(), oracle.heads.len());
            prop_assert_eq!(w.evicted_by_cap_total(), evicted_total);
        }
    }
}

#[test]
fn window_edges_move_a_bucket_at_a_time() {
    // 60 s window: 1 s buckets. An event at 0.5 s leaves when the reading
    // time's bucket reaches 60.
    let w = Window::new(Aggregate::Count, 60_000).unwrap();
    w.record("k", 500, Input::None).unwrap();
    assert_eq!(w.read("k", 59_999), Some(1.0));
    assert_eq!(w.read("k", 60_000), Some(0.0));
    // Windows that do not divide by 60 round the bucket up.
    let odd = Window::new(Aggregate::Count, 61).unwrap();
    assert_eq!(odd.bucket_ms(), 2);
    let tiny = Window::new(Aggregate::Count, 1).unwrap();
    assert_eq!(tiny.bucket_ms(), 1);
    tiny.record("k", 7, Input::None).unwrap();
    assert_eq!(tiny.read("k", 66), Some(1.0), "60 one-millisecond buckets");
    assert_eq!(tiny.read("k", 67), Some(0.0));
}

#[test]
fn distinct_stays_within_its_error_bound_at_large_cardinalities() {
    let w = Window::new(Aggregate::Distinct, 3_600_000).unwrap();
    for n in [1_000u64, 20_000, 200_000] {
        let key = format!("device-{n}");
        let mut got = None;
        for i in 0..n {
            // Spread over the hour, each item twice.
            let t = (i * 3_600_000 / n) as i64;
            let item = format!("card-{}", i / 2 + n);
            got = w.record(&key, t, Input::Item(&item)).unwrap();
        }
        let exact = n.div_ceil(2) as f64;
        let got = got.unwrap();
        let err = (got - exact).abs() / exact;
        assert!(err <= 3.0 * DISTINCT_RELATIVE_ERROR, "{n}: {got} vs {exact}");
        assert_eq!(w.read(&key, 3_599_999), Some(got));
    }
}

#[test]
fn replaying_history_rebuilds_the_same_state() {
    let events: Vec<(usize, i64, f64)> =
        (0..500).map(|i| (i % 3, (i as i64 * 7_919) % 50_000, (i % 13) as f64)).collect();
    let live = Window::new(Aggregate::Sum, 60_000).unwrap();
    for &(k, t, v) in &events {
        live.record(KEYS[k], t, Input::Number(v)).unwrap();
    }
    // Warm-up: the same events in another order, answers discarded.
    let warm = Window::new(Aggregate::Sum, 60_000).unwrap();
    let mut sorted = events.clone();
    sorted.sort_by_key(|e| e.1);
    for &(k, t, v) in &sorted {
        let _ = warm.record(KEYS[k], t, Input::Number(v));
    }
    for key in &KEYS[..3] {
        assert_eq!(live.read(key, 50_000), warm.read(key, 50_000));
    }
}
