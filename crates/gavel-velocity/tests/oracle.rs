//! Every aggregate against a naive oracle: a plain list of every event that
//! counted, kept for good, over random streams with out-of-order and late
//! times, times on and next to the window's edges (exactly one or two
//! windows, a millisecond either side, a bucket either side), idle eviction
//! and the key cap.
//!
//! The oracle also follows which keys are past `EXACT_EVENTS` (for
//! `distinct`, `DISTINCT_EXACT_ITEMS`) and which events the store still
//! holds, so that it knows what a bucketed reading covers. At a time `t`
//! (or at the key's newest time, when `t` is a window or more older) every
//! reading must be:
//!
//! - for a key at or below the limit, the aggregate of exactly the events
//!   in `(t − w, t]`;
//! - past it, the aggregate of the held events in the buckets the window
//!   overlaps, and those must include every event in `(t − w, t]` and none
//!   outside `(t − w − b, t + b)` (`b` the bucket width); `distinct`, whose
//!   sketches are fed one occurrence in a few, lies between the two counts.

use std::collections::HashMap;

use gavel_velocity::{
    Aggregate, CountWindow, DISTINCT_EXACT_ITEMS, DISTINCT_RELATIVE_ERROR, EXACT_EVENTS, Input, InputKind,
    MAX_WINDOW_MS, RECENT_MAX_ITEMS, Recorded, Window, WindowConfig,
};
use proptest::prelude::*;

const KEYS: [&str; 4] = ["a", "b", "c", "a-key-that-is-longer-than-twenty-four-bytes"];

/// One event that counted.
#[derive(Debug, Clone, Copy)]
struct Event {
    id: usize,
    t: i64,
    value: f64,
    item: u32,
}

/// What the oracle knows of one key.
#[derive(Debug)]
struct Key {
    newest: i64,
    /// Past the exact limit since the key last held nothing.
    bucketed: bool,
    /// Every event that counted, never pruned.
    counted: Vec<Event>,
    /// The events the store still holds.
    held: Vec<Event>,
}

/// The events a reading covers, three ways.
#[derive(Debug, Default)]
struct Covered {
    /// The time the reading is at.
    at: i64,
    bucketed: bool,
    /// Every counted event in `(at − w, at]`.
    truth: Vec<Event>,
    /// What the store must have read: `truth` for an exact key, the held
    /// events of the window's buckets for a bucketed one.
    read: Vec<Event>,
    /// Every counted event in `(at − w − b, at + b)`.
    bound: Vec<Event>,
}

/// The store's documented semantics, spelled out on lists.
#[derive(Debug)]
struct Oracle {
    window: i64,
    bucket_ms: i64,
    /// Following `distinct`'s limit (items) rather than the others' (events).
    distinct: bool,
    keys: HashMap<usize, Key>,
}

impl Oracle {
    fn new(window_ms: u64, bucket_ms: u64, distinct: bool) -> Self {
        Oracle { window: window_ms as i64, bucket_ms: bucket_ms as i64, distinct, keys: HashMap::new() }
    }

    /// Bucket `i` holds `(i·b, (i+1)·b]`.
    fn bucket(&self, t: i64) -> i64 {
        (t - 1).div_euclid(self.bucket_ms)
    }

    fn too_late(&self, key: usize, t: i64) -> bool {
        self.keys.get(&key).is_some_and(|k| t <= k.newest - self.window)
    }

    /// Moves `key` (created if new) to `to`, forgetting what it no longer
    /// holds: two windows back, by exact time or by whole buckets.
    fn advance(&mut self, key: usize, to: i64) {
        let (window, oldest) = (self.window, self.bucket(to - 2 * self.window + 1));
        let bucket_ms = self.bucket_ms;
        let k = self.keys.entry(key).or_insert(Key { newest: to, bucketed: false, counted: vec![], held: vec![] });
        if to <= k.newest {
            return;
        }
        k.newest = to;
        if k.bucketed {
            k.held.retain(|e| (e.t - 1).div_euclid(bucket_ms) >= oldest);
            k.bucketed = !k.held.is_empty();
        } else {
            k.held.retain(|e| e.t > to - 2 * window);
        }
    }

    /// Records `e` for `key`, which has been advanced to it; false when too
    /// late.
    fn record(&mut self, key: usize, e: Event) -> bool {
        if self.too_late(key, e.t) {
            return false;
        }
        self.advance(key, e.t);
        let distinct = self.distinct;
        let k = self.keys.get_mut(&key).expect("advanced");
        let full = if distinct {
            let mut items: Vec<u32> = k.held.iter().map(|h| h.item).collect();
            items.sort_unstable();
            items.dedup();
            !items.contains(&e.item) && items.len() >= DISTINCT_EXACT_ITEMS
        } else {
            k.held.len() >= EXACT_EVENTS
        };
        k.bucketed |= full;
        k.held.push(e);
        k.counted.push(e);
        true
    }

    /// What a reading of `key` at `t` covers.
    fn covered(&self, key: usize, t: i64) -> Covered {
        let Some(k) = self.keys.get(&key) else {
            return Covered { at: t, ..Covered::default() };
        };
        let (w, b) = (self.window, self.bucket_ms);
        let at = if t <= k.newest - w { k.newest } else { t };
        let pick = |list: &[Event], keep: &dyn Fn(i64) -> bool| list.iter().filter(|e| keep(e.t)).copied().collect();
        let truth: Vec<Event> = pick(&k.counted, &|x| at - w < x && x <= at);
        let read = if k.bucketed {
            let (lo, hi) = (self.bucket(at - w + 1), self.bucket(at));
            pick(&k.held, &|x| (lo..=hi).contains(&self.bucket(x)))
        } else {
            truth.clone()
        };
        let bound = pick(&k.counted, &|x| at - w - b < x && x < at + b);
        Covered { at, bucketed: k.bucketed, truth, read, bound }
    }

    fn evict_idle(&mut self, now: i64) -> usize {
        let keys: Vec<usize> = self.keys.keys().copied().collect();
        let mut dropped = 0;
        for key in keys {
            self.advance(key, now);
            if self.keys[&key].held.is_empty() {
                self.keys.remove(&key);
                dropped += 1;
            }
        }
        dropped
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
        Aggregate::Distinct | Aggregate::Recent => Some(distinct(events) as f64),
        Aggregate::FirstSeen => times.min().map(|t| t as f64),
        Aggregate::LastSeen => times.max().map(|t| t as f64),
        Aggregate::Since => times.max().map(|last| (t - last).max(0) as f64),
    }
}

fn distinct(events: &[Event]) -> usize {
    let mut items: Vec<u32> = events.iter().map(|e| e.item).collect();
    items.sort_unstable();
    items.dedup();
    items.len()
}

/// Checks `got`, a `recent` window's reading, against the items of the
/// window: exactly them while the per-key bound has never bitten, at most
/// them (and at most the bound) once it has.
fn check_recent(w: &Window, got: Option<f64>, c: &Covered, what: &str) -> Result<(), TestCaseError> {
    let truth = distinct(&c.truth) as f64;
    let got = got.unwrap_or(-1.0);
    if w.dropped_by_bound_total() == 0 {
        prop_assert_eq!(got, truth, "recent {}", what);
    } else {
        prop_assert!(0.0 <= got && got <= truth && got <= RECENT_MAX_ITEMS as f64, "recent {what}: {got} > {truth}");
    }
    Ok(())
}

/// Checks `got`, `aggregate`'s reading, against what the oracle says it
/// covers (`at` is the time a `since` gap is measured from).
fn check(aggregate: Aggregate, got: Option<f64>, c: &Covered, what: &str) -> Result<(), TestCaseError> {
    let ids = |list: &[Event]| list.iter().map(|e| e.id).collect::<Vec<_>>();
    let (truth, read, bound) = (ids(&c.truth), ids(&c.read), ids(&c.bound));
    prop_assert!(truth.iter().all(|i| read.contains(i)), "{what}: a reading misses an event of its window");
    prop_assert!(read.iter().all(|i| bound.contains(i)), "{what}: a reading reaches past the bound");
    if c.bucketed && aggregate == Aggregate::Distinct {
        let got = got.unwrap_or(-1.0);
        prop_assert!(
            distinct(&c.truth) as f64 <= got && got <= distinct(&c.read) as f64,
            "{what}: {got} outside {}..={}",
            distinct(&c.truth),
            distinct(&c.read)
        );
    } else {
        prop_assert_eq!(
            got,
            expected(aggregate, &c.read, c.at),
            "{} ({})",
            what,
            if c.bucketed { "bucketed" } else { "exact" }
        );
    }
    Ok(())
}

fn input(aggregate: Aggregate, e: &Event, item: &'static str) -> Input<'static> {
    match aggregate.input() {
        InputKind::None => Input::None,
        InputKind::Number => Input::Number(e.value),
        InputKind::Item => Input::Item(item),
    }
}

/// Where a time lies from its base: on the window's edges or those of a
/// second window behind it, a millisecond and a bucket either side:
/// `windows · w + millis + buckets · b`.
#[derive(Debug, Clone, Copy)]
struct Edge {
    windows: i64,
    millis: i64,
    buckets: i64,
}

impl Edge {
    fn resolve(self, w: i64, b: i64) -> i64 {
        self.windows * w + self.millis + self.buckets * b
    }
}

fn edge() -> impl Strategy<Value = Edge> {
    let windows = prop_oneof![1 => Just(-2i64), 2 => Just(-1), 3 => Just(0), 1 => Just(1)];
    (windows, -1i64..=1, -1i64..=1).prop_map(|(windows, millis, buckets)| Edge { windows, millis, buckets })
}

/// A time: absolute; somewhere around a key's newest (mostly inside its
/// window, sometimes too late, sometimes ahead); on an edge from a key's
/// newest; or on an edge from an earlier event's time.
#[derive(Debug, Clone, Copy)]
enum When {
    At(i64),
    /// The key's newest plus `permille / 1000` of the window.
    Near(usize, i64),
    FromNewest(usize, Edge),
    FromEvent(usize, Edge),
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        1 => (-5_000i64..25_000).prop_map(When::At),
        6 => (key(), -1_050i64..=50).prop_map(|(k, p)| When::Near(k, p)),
        2 => (key(), edge()).prop_map(|(k, e)| When::FromNewest(k, e)),
        2 => (any::<usize>(), edge()).prop_map(|(i, e)| When::FromEvent(i, e)),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Record { key: usize, when: When, value: i32, item: u32 },
    Read { key: usize, when: When },
    EvictIdle { when: When },
}

/// A key, the first one as often as the three others together, so that it
/// goes past the exact limit in most long streams.
fn key() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 3 => 1..KEYS.len()]
}

fn op(items: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (key(), when(), -50i32..50, 0..items)
            .prop_map(|(key, when, value, item)| Op::Record { key, when, value, item }),
        4 => (key(), when()).prop_map(|(key, when)| Op::Read { key, when }),
        1 => when().prop_map(|when| Op::EvictIdle { when }),
    ]
}

fn window_ms() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..200, 200u64..6_000, Just(60_000), Just(599_999), Just(MAX_WINDOW_MS)]
}

/// Runs `ops` through one window per aggregate and checks every answer.
fn check_all(window_ms: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let windows: Vec<Window> = Aggregate::ALL.iter().map(|&a| Window::new(a, window_ms).unwrap()).collect();
    let count = CountWindow::new(window_ms).unwrap();
    let b = windows[0].bucket_ms();
    let mut events = Oracle::new(window_ms, b, false);
    let mut items = Oracle::new(window_ms, b, true);
    let names: Vec<&'static str> = (0..200).map(|i| &*Box::leak(format!("item-{i}").into_boxed_str())).collect();
    let mut times: Vec<i64> = Vec::new();
    let mut too_late = 0;
    let (w, b_ms) = (window_ms as i64, b as i64);
    let resolve = |when: When, oracle: &Oracle, times: &[i64]| {
        let newest = |k: usize| oracle.keys.get(&k).map_or(0, |k| k.newest);
        match when {
            When::At(t) => t,
            When::Near(k, permille) => newest(k) + (i128::from(w) * i128::from(permille) / 1_000) as i64,
            When::FromNewest(k, e) => newest(k) + e.resolve(w, b_ms),
            When::FromEvent(i, e) => times.get(i % times.len().max(1)).copied().unwrap_or(0) + e.resolve(w, b_ms),
        }
    };
    for (id, op) in ops.iter().enumerate() {
        match *op {
            Op::Record { key, when, value, item } => {
                let t = resolve(when, &events, &times);
                times.push(t);
                let e = Event { id, t, value: f64::from(value), item };
                let what = format!("record {:?} at {t}", op);
                let late = events.too_late(key, t);
                too_late += u64::from(late);
                if !late {
                    events.advance(key, t);
                    items.advance(key, t);
                }
                let before = (events.covered(key, t), items.covered(key, t));
                prop_assert_eq!(events.record(key, e), !late);
                prop_assert_eq!(items.record(key, e), !late);
                let after = (events.covered(key, t), items.covered(key, t));
                for w in &windows {
                    let a = w.aggregate();
                    let got = w.record(KEYS[key], t, input(a, &e, names[item as usize])).unwrap();
                    let (c_events, c_items) = if a == Aggregate::Since && !late { &before } else { &after };
                    if a == Aggregate::Recent {
                        check_recent(w, got, c_items, &what)?;
                        continue;
                    }
                    check(a, got, if a == Aggregate::Distinct { c_items } else { c_events }, &format!("{a} {what}"))?;
                }
                let n = count.record(KEYS[key], t);
                let want = after.0.read.len() as u64;
                prop_assert_eq!(n, if late { Recorded::TooLate(want) } else { Recorded::Counted(want) }, "{}", what);
            }
            Op::Read { key, when } => {
                let t = resolve(when, &events, &times);
                let what = format!("read {:?} at {t}", op);
                let (c_events, c_items) = (events.covered(key, t), items.covered(key, t));
                for w in &windows {
                    let a = w.aggregate();
                    if a == Aggregate::Recent {
                        check_recent(w, w.read(KEYS[key], t), &c_items, &what)?;
                        let members = w.members(KEYS[key], t);
                        prop_assert_eq!(members.len() as f64, w.read(KEYS[key], t).unwrap_or(0.0));
                        continue;
                    }
                    let c = if a == Aggregate::Distinct { &c_items } else { &c_events };
                    check(a, w.read(KEYS[key], t), c, &format!("{a} {what}"))?;
                }
                prop_assert_eq!(count.count(KEYS[key], t), c_events.read.len() as u64);
            }
            Op::EvictIdle { when } => {
                let now = resolve(when, &events, &times);
                let dropped = events.evict_idle(now);
                prop_assert_eq!(items.evict_idle(now), dropped, "both forget the same keys");
                for w in &windows {
                    prop_assert_eq!(w.evict_idle(now), dropped, "{} evict_idle({})", w.aggregate(), now);
                    prop_assert_eq!(w.len(), events.keys.len());
                }
                prop_assert_eq!(count.evict_idle(now), dropped);
            }
        }
    }
    for w in &windows {
        prop_assert_eq!(w.too_late_total(), too_late);
        prop_assert_eq!(w.len(), events.keys.len());
    }
    prop_assert_eq!(count.too_late_total(), too_late);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Few items per key: `distinct` stays in its exact tier; the other
    /// aggregates go past `EXACT_EVENTS` when a window is long.
    #[test]
    fn every_aggregate_matches_the_oracle(
        window_ms in window_ms(),
        ops in proptest::collection::vec(op(12), 1..300),
    ) {
        check_all(window_ms, &ops)?;
    }

    /// Few events per key: every key stays exact.
    #[test]
    fn every_aggregate_is_exact_for_small_keys(
        window_ms in window_ms(),
        ops in proptest::collection::vec(op(12), 1..EXACT_EVENTS),
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

    /// Events that are never too late, replayed in another order, give the
    /// same readings: warm-up need not follow the live order.
    #[test]
    fn replaying_in_any_order_rebuilds_the_same_readings(
        window_ms in window_ms(),
        events in proptest::collection::vec((0..KEYS.len(), 0u64..1_000_000, -50i32..50, 0u32..DISTINCT_EXACT_ITEMS as u32), 1..120),
        reads in proptest::collection::vec((0..KEYS.len(), 0u64..1_200_000), 1..40),
        rotate in any::<proptest::sample::Index>(),
    ) {
        // Every time within one window of the first: none is ever too late.
        let span = |x: u64| (x % window_ms) as i64;
        let mut shuffled = events.clone();
        let n = shuffled.len();
        shuffled.rotate_left(rotate.index(n));
        shuffled.reverse();
        for a in Aggregate::ALL {
            let live = Window::new(a, window_ms).unwrap();
            let warm = Window::new(a, window_ms).unwrap();
            for (w, order) in [(&live, &events), (&warm, &shuffled)] {
                for &(k, t, v, item) in order {
                    let item = format!("item-{item}");
                    let e = Event { id: 0, t: span(t), value: f64::from(v), item: 0 };
                    w.record(KEYS[k], e.t, match a.input() {
                        InputKind::None => Input::None,
                        InputKind::Number => Input::Number(e.value),
                        InputKind::Item => Input::Item(&item),
                    }).unwrap();
                }
            }
            prop_assert_eq!(live.too_late_total() + warm.too_late_total(), 0);
            for &(k, t) in &reads {
                let t = (t % (2 * window_ms + 2)) as i64 - 1;
                prop_assert_eq!(live.read(KEYS[k], t), warm.read(KEYS[k], t), "{} at {}", a, t);
            }
        }
    }

    /// With a cap, the evicted keys are the least recent ones, the counter
    /// says how many, and the keys left still match the oracle.
    #[test]
    fn the_cap_evicts_least_recent_keys(
        cap in 1usize..4,
        ops in proptest::collection::vec((0usize..12, 0i64..30_000), 1..200),
    ) {
        let w = Window::with_config(WindowConfig::new(Aggregate::Count, 1_000).shards(1).max_keys(cap)).unwrap();
        let mut oracle = Oracle::new(1_000, w.bucket_ms(), false);
        let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
        let mut evicted_total = 0;
        for (id, (key, t)) in ops.into_iter().enumerate() {
            let e = Event { id, t, value: 0.0, item: 0 };
            let got = w.record(&keys[key], t, Input::None).unwrap();
            // A key the cap evicts is gone before the new one's event.
            let gone: Vec<usize> = oracle.keys.keys().copied().filter(|k| !w.contains(&keys[*k])).collect();
            let kept: Vec<usize> = oracle.keys.keys().copied().filter(|k| *k != key && !gone.contains(k)).collect();
            if let (Some(newest_gone), Some(oldest_kept)) = (
                gone.iter().map(|k| oracle.keys[k].newest).max(),
                kept.iter().map(|k| oracle.keys[k].newest).min(),
            ) {
                prop_assert!(newest_gone <= oldest_kept, "evicted a key newer than one kept");
            }
            prop_assert!(!gone.contains(&key), "the new key is never the one evicted");
            evicted_total += gone.len() as u64;
            for k in gone {
                oracle.keys.remove(&k);
            }
            oracle.record(key, e);
            let c = oracle.covered(key, t);
            check(Aggregate::Count, got, &c, &format!("record {key} at {t}"))?;
            prop_assert!(w.len() <= cap);
            prop_assert_eq!(w.len(), oracle.keys.len());
            prop_assert_eq!(w.evicted_by_cap_total(), evicted_total);
        }
    }
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
