//! [`Window`]: one windowed aggregate per key, the velocity store's general
//! form, and the generic [`Table`] behind it and [`crate::CountWindow`].
//!
//! A `Table<S>` joins the sharded key map, the window's clock rules (what
//! is too late, what a reading covers) and one kind of key [`State`]; each
//! state is a value that takes events and answers readings, `Tiered` for
//! every aggregate but `distinct`, `DistinctState` for that one. `Window`
//! picks the table for its [`Aggregate`] at construction and checks each
//! [`Input`] against it. This module does not store anything itself: events
//! and cells live in `tier`/`ring`/`distinct`, keys in `map`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Aggregate;
use crate::aggregate::{self, Input};
use crate::distinct::{self, DistinctState};
use crate::map::{ShardedMap, Value};
use crate::recent::RecentState;
use crate::ring::Clock;
use crate::tier::Tiered;
use crate::{MAX_WINDOW_MS, Result, VelocityError};

/// Shards a window's key table is split into unless configured otherwise.
pub const DEFAULT_SHARDS: usize = 64;

/// How to build a [`Window`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowConfig {
    /// What the window computes per key.
    pub aggregate: Aggregate,
    /// Window length in milliseconds, 1 ms to [`MAX_WINDOW_MS`] (30 days).
    /// A reading at `t` covers `(t − window_ms, t]`; buckets, for keys past
    /// [`crate::EXACT_EVENTS`], are `window_ms / 60` wide, rounded up.
    pub window_ms: u64,
    /// At most this many keys (rounded up to a multiple of `shards`); `None`
    /// for no cap. Keys are spread over the shards by hash and each shard
    /// holds its share, `max_keys / shards` rounded up. When a new key
    /// arrives at a full shard, the shard first evicts its least recently
    /// active sixteenth (at least one key): the keys whose newest event is
    /// oldest, ties broken arbitrarily. One pass over the shard per batch,
    /// so the cost is amortised to a few slot visits per new key. Evicted
    /// keys are counted in [`Window::evicted_by_cap_total`]; an evicted key
    /// that comes back starts from empty.
    pub max_keys: Option<usize>,
    /// Number of independently locked shards: a power of two from 1 to
    /// 1024. More shards, less contention between threads.
    pub shards: usize,
}

impl WindowConfig {
    /// A window of `window_ms` computing `aggregate`, uncapped, with
    /// [`DEFAULT_SHARDS`] shards.
    pub fn new(aggregate: Aggregate, window_ms: u64) -> Self {
        WindowConfig { aggregate, window_ms, max_keys: None, shards: DEFAULT_SHARDS }
    }

    /// The same, holding at most `max_keys` keys.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = Some(max_keys);
        self
    }

    /// The same, with `shards` shards.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }
}

/// What a key keeps for one kind of aggregate: the events of the two
/// windows ending at its newest time, in whatever form answers readings.
/// The table decides which events are too late and where a reading falls;
/// a state only adds, forgets and reads.
pub(crate) trait State: Default + Send + Sync + fmt::Debug + 'static {
    /// What an event brings.
    type In<'a>: Copy;
    /// The reading of an empty window.
    const EMPTY: Option<f64>;
    /// `record` answers with the reading before the event instead of after.
    const ANSWER_BEFORE: bool;
    /// Forgets what a key whose newest time is now `newest` no longer keeps.
    fn advance(&mut self, clock: &Clock, newest: i64);
    /// True when nothing is kept.
    fn is_empty(&self) -> bool;
    /// Adds an event at `t_ms`, which is not too late for a key whose
    /// newest time is `newest` (already advanced to). Returns how many
    /// items the state's own bound dropped to make room (only `recent` has
    /// one).
    fn add(&mut self, clock: &Clock, newest: i64, t_ms: i64, input: Self::In<'_>) -> usize;
    /// The reading of the window ending at `t_ms`, which is not too late.
    fn read(&self, clock: &Clock, t_ms: i64) -> Option<f64>;
    /// Bytes of heap blocks the state owns.
    fn heap_bytes(&self) -> usize;
}

/// One key's state and the newest time it has moved to.
#[derive(Debug)]
pub(crate) struct Keyed<S> {
    /// The newest event time seen, or the latest `evict_idle` time if later.
    newest: i64,
    state: S,
}

impl<S: State> Keyed<S> {
    /// The reading at `t_ms`, or at the newest time if `t_ms` is too late.
    fn read(&self, clock: &Clock, t_ms: i64) -> Option<f64> {
        self.state.read(clock, if clock.too_late(self.newest, t_ms) { self.newest } else { t_ms })
    }

    /// Moves the newest time forward to `t_ms` (no-op if not newer).
    fn advance(&mut self, clock: &Clock, t_ms: i64) {
        if t_ms > self.newest {
            self.newest = t_ms;
            self.state.advance(clock, t_ms);
        }
    }
}

impl<S: State> Value for Keyed<S> {
    fn heap_bytes(&self) -> usize {
        self.state.heap_bytes()
    }

    fn recency(&self) -> i64 {
        self.newest
    }
}

/// What recording one event did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outcome {
    /// The reading `record` answers with.
    pub(crate) value: Option<f64>,
    /// The event was a window or more older than its key's newest and
    /// changed nothing.
    pub(crate) too_late: bool,
    /// Items the key's own bound dropped to make room for this one.
    pub(crate) dropped: usize,
}

/// Keys to states of one kind, with the window's clock rules.
#[derive(Debug)]
pub(crate) struct Table<S: State> {
    clock: Clock,
    max_keys: Option<usize>,
    map: ShardedMap<Keyed<S>>,
    too_late: AtomicU64,
    evicted_by_cap: AtomicU64,
    dropped_by_bound: AtomicU64,
}

impl<S: State> Table<S> {
    /// A table for `config` (whose aggregate the caller has matched to `S`).
    pub(crate) fn new(config: &WindowConfig) -> Result<Self> {
        let window_ms = config.window_ms;
        if window_ms == 0 || window_ms > MAX_WINDOW_MS {
            return Err(VelocityError::WindowOutOfRange(window_ms));
        }
        if !config.shards.is_power_of_two() || config.shards > 1024 {
            return Err(VelocityError::BadShardCount(config.shards));
        }
        if config.max_keys == Some(0) {
            return Err(VelocityError::ZeroKeyCap);
        }
        Ok(Table {
            clock: Clock::new(window_ms),
            max_keys: config.max_keys,
            map: ShardedMap::new(config.shards, config.max_keys),
            too_late: AtomicU64::new(0),
            evicted_by_cap: AtomicU64::new(0),
            dropped_by_bound: AtomicU64::new(0),
        })
    }

    pub(crate) fn window_ms(&self) -> u64 {
        // Positive: checked at construction.
        self.clock.window_ms() as u64
    }

    pub(crate) fn bucket_ms(&self) -> u64 {
        self.clock.bucket_ms() as u64
    }

    pub(crate) fn max_keys(&self) -> Option<usize> {
        self.max_keys
    }

    /// Records one event: one hash, one shard lock, one probe.
    pub(crate) fn record(&self, key: &str, t_ms: i64, input: S::In<'_>) -> Outcome {
        let clock = &self.clock;
        let (outcome, evicted) = self.map.upsert(
            key,
            || Keyed { newest: t_ms, state: S::default() },
            |keyed| {
                if clock.too_late(keyed.newest, t_ms) {
                    return Outcome { value: keyed.state.read(clock, keyed.newest), too_late: true, dropped: 0 };
                }
                keyed.advance(clock, t_ms);
                let before = S::ANSWER_BEFORE.then(|| keyed.state.read(clock, t_ms));
                let dropped = keyed.state.add(clock, keyed.newest, t_ms, input);
                let value = before.unwrap_or_else(|| keyed.state.read(clock, t_ms));
                Outcome { value, too_late: false, dropped }
            },
        );
        if outcome.dropped > 0 {
            self.dropped_by_bound.fetch_add(outcome.dropped as u64, Ordering::Relaxed);
        }
        if evicted > 0 {
            self.evicted_by_cap.fetch_add(evicted as u64, Ordering::Relaxed);
        }
        if outcome.too_late {
            self.too_late.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// The reading of `key`'s window ending at `t_ms` (at its newest time if
    /// `t_ms` is too late for it).
    pub(crate) fn read(&self, key: &str, t_ms: i64) -> Option<f64> {
        self.map.get(key, |keyed| keyed.read(&self.clock, t_ms)).unwrap_or(S::EMPTY)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.map.get(key, |_| ()).is_some()
    }

    /// Runs `f` on `key`'s state and the time a reading at `t_ms` reads
    /// it at (the key's newest if `t_ms` is too late for it).
    pub(crate) fn inspect<R>(&self, key: &str, t_ms: i64, f: impl FnOnce(&S, &Clock, i64) -> R) -> Option<R> {
        self.map.get(key, |keyed| {
            let t = if self.clock.too_late(keyed.newest, t_ms) { keyed.newest } else { t_ms };
            f(&keyed.state, &self.clock, t)
        })
    }

    /// Moves every key's newest time to `now_ms` and drops those left with
    /// nothing kept.
    pub(crate) fn evict_idle(&self, now_ms: i64) -> usize {
        self.map.retain(|keyed| {
            keyed.advance(&self.clock, now_ms);
            !keyed.state.is_empty()
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.map.bytes()
    }

    pub(crate) fn too_late_total(&self) -> u64 {
        self.too_late.load(Ordering::Relaxed)
    }

    pub(crate) fn evicted_by_cap_total(&self) -> u64 {
        self.evicted_by_cap.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped_by_bound_total(&self) -> u64 {
        self.dropped_by_bound.load(Ordering::Relaxed)
    }
}

/// The table of each aggregate.
#[derive(Debug)]
enum Tables {
    Count(Table<Tiered<aggregate::Count>>),
    Sum(Table<Tiered<aggregate::Sum>>),
    Min(Table<Tiered<aggregate::Min>>),
    Max(Table<Tiered<aggregate::Max>>),
    Avg(Table<Tiered<aggregate::Avg>>),
    Distinct(Table<DistinctState>),
    FirstSeen(Table<Tiered<aggregate::FirstSeen>>),
    LastSeen(Table<Tiered<aggregate::LastSeen>>),
    Since(Table<Tiered<aggregate::Since>>),
    Recent(Table<RecentState>),
}

/// Runs `$body` with `$t` bound to whichever table `$tables` holds.
macro_rules! with_table {
    ($tables:expr, $t:ident => $body:expr) => {
        match $tables {
            Tables::Count($t) => $body,
            Tables::Sum($t) => $body,
            Tables::Min($t) => $body,
            Tables::Max($t) => $body,
            Tables::Avg($t) => $body,
            Tables::Distinct($t) => $body,
            Tables::FirstSeen($t) => $body,
            Tables::LastSeen($t) => $body,
            Tables::Since($t) => $body,
            Tables::Recent($t) => $body,
        }
    };
}

/// One windowed aggregate per key, in event time.
///
/// A reading at `t_ms` covers the key's events in `(t_ms − window, t_ms]`:
/// an event exactly the window older than `t_ms` is out, one a millisecond
/// younger is in. Exact while the key holds at most [`crate::EXACT_EVENTS`]
/// events; a key that goes past that keeps its events in buckets of
/// `window / 60` ([`Window::bucket_ms`]) until it holds none, and a reading
/// covers every bucket the window overlaps: it still counts every event of
/// the window, and may count ones
/// up to a bucket older than the window's start and, for a reading earlier
/// than the key's newest event, up to a bucket after `t_ms`.
///
/// Events may come in any order. An event a window or more older than its
/// key's newest is too late: it changes nothing, is counted in
/// [`Window::too_late_total`], and reads the key's window ending at its
/// newest event, as does any reading at such a time. Any other late event
/// counts and reads its own full window: a key keeps the two windows
/// ending at its newest event. Memory per key is bounded whatever the event
/// rate: `EXACT_EVENTS` events, or 121 buckets.
///
/// Shared by all shard threads through `&self` (`Send + Sync`); each
/// `record` takes one shard lock, never a global one.
#[derive(Debug)]
pub struct Window {
    aggregate: Aggregate,
    tables: Tables,
}

impl Window {
    /// A window of `window_ms` computing `aggregate` per key, uncapped.
    pub fn new(aggregate: Aggregate, window_ms: u64) -> Result<Window> {
        Window::with_config(WindowConfig::new(aggregate, window_ms))
    }

    /// A window built from `config`.
    pub fn with_config(config: WindowConfig) -> Result<Window> {
        let c = &config;
        let tables = match config.aggregate {
            Aggregate::Count => Tables::Count(Table::new(c)?),
            Aggregate::Sum => Tables::Sum(Table::new(c)?),
            Aggregate::Min => Tables::Min(Table::new(c)?),
            Aggregate::Max => Tables::Max(Table::new(c)?),
            Aggregate::Avg => Tables::Avg(Table::new(c)?),
            Aggregate::Distinct => Tables::Distinct(Table::new(c)?),
            Aggregate::FirstSeen => Tables::FirstSeen(Table::new(c)?),
            Aggregate::LastSeen => Tables::LastSeen(Table::new(c)?),
            Aggregate::Since => Tables::Since(Table::new(c)?),
            Aggregate::Recent => Tables::Recent(Table::new(c)?),
        };
        Ok(Window { aggregate: config.aggregate, tables })
    }

    /// What the window computes.
    pub fn aggregate(&self) -> Aggregate {
        self.aggregate
    }

    /// The window length in milliseconds.
    pub fn window_ms(&self) -> u64 {
        with_table!(&self.tables, t => t.window_ms())
    }

    /// The bucket width in milliseconds: how far past the window's edges a
    /// reading of a key with more than [`crate::EXACT_EVENTS`] events may
    /// reach.
    pub fn bucket_ms(&self) -> u64 {
        with_table!(&self.tables, t => t.bucket_ms())
    }

    /// The key cap, if any (see [`WindowConfig::max_keys`]).
    pub fn max_keys(&self) -> Option<usize> {
        with_table!(&self.tables, t => t.max_keys())
    }

    /// Records one event of `key` at event time `t_ms` and returns the
    /// aggregate over the window ending at `t_ms`, this event included
    /// (for `since`: the gap to the key's previous event in the window).
    ///
    /// An event a window or more older than the key's newest changes
    /// nothing, is counted in [`Window::too_late_total`] and returns the
    /// aggregate of the window ending at the key's newest event.
    ///
    /// `input` must be the kind [`Aggregate::input`] names, and numbers must
    /// be finite; otherwise nothing is recorded and an error says why.
    pub fn record(&self, key: &str, t_ms: i64, input: Input<'_>) -> Result<Option<f64>> {
        let mismatch = || VelocityError::InputMismatch {
            aggregate: self.aggregate,
            expected: self.aggregate.input(),
            got: input.kind(),
        };
        if let Input::Number(x) = input
            && !x.is_finite()
        {
            return Err(if self.aggregate.input() == input.kind() {
                VelocityError::NotFinite(self.aggregate)
            } else {
                mismatch()
            });
        }
        let outcome = match (&self.tables, input) {
            (Tables::Count(t), Input::None) => t.record(key, t_ms, 0.0),
            (Tables::FirstSeen(t), Input::None) => t.record(key, t_ms, 0.0),
            (Tables::LastSeen(t), Input::None) => t.record(key, t_ms, 0.0),
            (Tables::Since(t), Input::None) => t.record(key, t_ms, 0.0),
            (Tables::Sum(t), Input::Number(x)) => t.record(key, t_ms, x),
            (Tables::Min(t), Input::Number(x)) => t.record(key, t_ms, x),
            (Tables::Max(t), Input::Number(x)) => t.record(key, t_ms, x),
            (Tables::Avg(t), Input::Number(x)) => t.record(key, t_ms, x),
            (Tables::Distinct(t), Input::Item(item)) => t.record(key, t_ms, distinct::item_hash(item)),
            (Tables::Recent(t), Input::Item(item)) => t.record(key, t_ms, item),
            _ => return Err(mismatch()),
        };
        Ok(outcome.value)
    }

    /// The aggregate of `key` over the window ending at `t_ms`, without
    /// recording (over the window ending at the key's newest event when
    /// `t_ms` is a window or more older). An unknown key or an empty window
    /// reads as
    /// [`Aggregate::empty_value`]: `Some(0.0)` for count, sum and distinct,
    /// `None` for the others.
    pub fn read(&self, key: &str, t_ms: i64) -> Option<f64> {
        with_table!(&self.tables, t => t.read(key, t_ms))
    }

    /// The items of a `recent` window's `key` seen in the window ending at
    /// `t_ms` (ending at the key's newest event when `t_ms` is a window or
    /// more older), the most recently seen first. Empty for an unknown key
    /// and for every other aggregate.
    pub fn members(&self, key: &str, t_ms: i64) -> Vec<String> {
        match &self.tables {
            Tables::Recent(t) => t.inspect(key, t_ms, |s, clock, t| s.members(clock, t)).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Whether a `recent` window's `key` saw `item` in the window ending at
    /// `t_ms` (as [`Window::members`] reads it). False for every other
    /// aggregate.
    pub fn has_member(&self, key: &str, t_ms: i64, item: &str) -> bool {
        match &self.tables {
            Tables::Recent(t) => t.inspect(key, t_ms, |s, clock, t| s.contains(clock, t, item)).unwrap_or(false),
            _ => false,
        }
    }

    /// True when the window holds state for `key` (it may be empty until the
    /// next [`Window::evict_idle`]).
    pub fn contains(&self, key: &str) -> bool {
        with_table!(&self.tables, t => t.contains(key))
    }

    /// Moves every key's newest time forward to `now_ms` and drops the keys
    /// left with nothing a reading could see: no event in the two windows
    /// ending at `now_ms`. Returns how many keys were dropped. Takes each
    /// shard's lock in turn (never all at once); O(keys).
    ///
    /// Like a record at `now_ms`, this makes later events a window or more
    /// older than `now_ms` too late for the keys it keeps. A dropped key
    /// that comes back starts from empty.
    pub fn evict_idle(&self, now_ms: i64) -> usize {
        with_table!(&self.tables, t => t.evict_idle(now_ms))
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        with_table!(&self.tables, t => t.len())
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held: the key tables (at their capacity, free slots
    /// included), the heap blocks of long keys and of spilled or sketched
    /// states, each counted as glibc malloc sizes it. O(shards), for gauges.
    pub fn bytes(&self) -> usize {
        with_table!(&self.tables, t => t.bytes()) + size_of::<Self>()
    }

    /// Events ignored because they were a window or more older than their
    /// key's newest.
    pub fn too_late_total(&self) -> u64 {
        with_table!(&self.tables, t => t.too_late_total())
    }

    /// Keys evicted because their shard reached its share of the cap.
    pub fn evicted_by_cap_total(&self) -> u64 {
        with_table!(&self.tables, t => t.evicted_by_cap_total())
    }

    /// Items dropped because their key held as many as it may (`recent`:
    /// [`crate::RECENT_MAX_ITEMS`]); always 0 for other aggregates.
    pub fn dropped_by_bound_total(&self) -> u64 {
        with_table!(&self.tables, t => t.dropped_by_bound_total())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_configs() {
        assert_eq!(Window::new(Aggregate::Sum, 0).err(), Some(VelocityError::WindowOutOfRange(0)));
        assert!(Window::new(Aggregate::Sum, MAX_WINDOW_MS).is_ok());
        assert!(Window::new(Aggregate::Sum, MAX_WINDOW_MS + 1).is_err());
        let c = WindowConfig::new(Aggregate::Count, 1_000);
        assert_eq!(Window::with_config(c.clone().shards(3)).err(), Some(VelocityError::BadShardCount(3)));
        assert_eq!(Window::with_config(c.clone().max_keys(0)).err(), Some(VelocityError::ZeroKeyCap));
        assert!(Window::with_config(c.shards(1).max_keys(1)).is_ok());
    }

    #[test]
    fn rejects_wrong_inputs_without_recording() {
        let w = Window::new(Aggregate::Sum, 1_000).unwrap();
        assert!(matches!(w.record("k", 0, Input::None), Err(VelocityError::InputMismatch { .. })));
        assert_eq!(w.record("k", 0, Input::Number(f64::NAN)), Err(VelocityError::NotFinite(Aggregate::Sum)));
        assert!(w.is_empty());
        let d = Window::new(Aggregate::Distinct, 1_000).unwrap();
        assert!(d.record("k", 0, Input::Number(f64::INFINITY)).is_err());
        assert!(d.record("k", 0, Input::Number(1.0)).is_err());
        assert!(d.is_empty());
    }

    #[test]
    fn each_aggregate_reads_as_documented() {
        let w = |a| Window::new(a, 60_000).unwrap();
        let sum = w(Aggregate::Sum);
        assert_eq!(sum.read("k", 0), Some(0.0));
        assert_eq!(sum.record("k", 1_000, Input::Number(2.5)), Ok(Some(2.5)));
        assert_eq!(sum.record("k", 2_000, Input::Number(-1.0)), Ok(Some(1.5)));
        assert_eq!(sum.read("k", 61_500), Some(-1.0));

        let min = w(Aggregate::Min);
        assert_eq!(min.read("k", 0), None);
        min.record("k", 1_000, Input::Number(3.0)).unwrap();
        assert_eq!(min.record("k", 2_000, Input::Number(5.0)), Ok(Some(3.0)));
        let max = w(Aggregate::Max);
        max.record("k", 1_000, Input::Number(3.0)).unwrap();
        assert_eq!(max.record("k", 2_000, Input::Number(5.0)), Ok(Some(5.0)));
        let avg = w(Aggregate::Avg);
        assert_eq!(avg.read("k", 0), None);
        avg.record("k", 1_000, Input::Number(3.0)).unwrap();
        assert_eq!(avg.record("k", 2_000, Input::Number(5.0)), Ok(Some(4.0)));

        let first = w(Aggregate::FirstSeen);
        first.record("k", 1_234, Input::None).unwrap();
        assert_eq!(first.record("k", 5_000, Input::None), Ok(Some(1_234.0)));
        let last = w(Aggregate::LastSeen);
        last.record("k", 1_234, Input::None).unwrap();
        assert_eq!(last.record("k", 1_100, Input::None), Ok(Some(1_100.0)), "a late event reads its own window");
        assert_eq!(last.record("k", 999, Input::None), Ok(Some(999.0)));
        assert_eq!(last.read("k", 30_000), Some(1_234.0));

        let since = w(Aggregate::Since);
        assert_eq!(since.record("k", 1_000, Input::None), Ok(None), "no previous event");
        assert_eq!(since.record("k", 4_500, Input::None), Ok(Some(3_500.0)));
        assert_eq!(since.read("k", 10_000), Some(5_500.0));
        assert_eq!(since.read("k", 70_000), None, "the window has emptied");

        let distinct = w(Aggregate::Distinct);
        assert_eq!(distinct.read("k", 0), Some(0.0));
        distinct.record("k", 1_000, Input::Item("card-a")).unwrap();
        distinct.record("k", 2_000, Input::Item("card-b")).unwrap();
        assert_eq!(distinct.record("k", 3_000, Input::Item("card-a")), Ok(Some(2.0)));
    }

    #[test]
    fn too_late_events_change_nothing() {
        let w = Window::new(Aggregate::Sum, 10_000).unwrap();
        w.record("k", 100_000, Input::Number(1.0)).unwrap();
        assert_eq!(w.record("k", 95_000, Input::Number(2.0)), Ok(Some(2.0)));
        assert_eq!(w.record("k", 80_000, Input::Number(4.0)), Ok(Some(3.0)));
        assert_eq!(w.too_late_total(), 1);
        assert_eq!(w.read("k", 100_000), Some(3.0));
    }

    #[test]
    fn cap_evicts_the_least_recent_keys() {
        // One shard, so the cap is exact: 32 keys, evicting 2 at a time.
        let w = Window::with_config(WindowConfig::new(Aggregate::Count, 60_000).shards(1).max_keys(32)).unwrap();
        for i in 0..32 {
            w.record(&format!("k{i}"), i * 1_000, Input::None).unwrap();
        }
        assert_eq!((w.len(), w.evicted_by_cap_total()), (32, 0));
        // k0 is touched again, so k1 and k2 are now the least recent.
        w.record("k0", 40_000, Input::None).unwrap();
        w.record("new", 41_000, Input::None).unwrap();
        assert_eq!(w.evicted_by_cap_total(), 2);
        assert_eq!(w.len(), 31);
        assert!(w.contains("k0") && w.contains("new") && w.contains("k3"));
        assert!(!w.contains("k1") && !w.contains("k2"));
        assert_eq!(w.read("k1", 41_000), Some(0.0));
        assert_eq!(w.read("k0", 41_000), Some(2.0));
    }

    #[test]
    fn shared_between_threads_without_losing_updates() {
        fn shared<T: Send + Sync>() {}
        shared::<Window>();
        shared::<crate::CountWindow>();
        shared::<crate::LabelStore>();
        let w = Window::new(Aggregate::Count, 60_000).unwrap();
        std::thread::scope(|s| {
            for thread in 0..2 {
                let w = &w;
                s.spawn(move || {
                    for i in 0..10_000 {
                        w.record(&format!("k{}", i % 100), thread * 10 + i % 7, Input::None).unwrap();
                    }
                });
            }
        });
        let total: f64 = (0..100).map(|k| w.read(&format!("k{k}"), 100).unwrap()).sum();
        assert_eq!(total, 20_000.0);
        assert_eq!(w.len(), 100);
        let debug = format!("{w:?}");
        assert!(!debug.contains("k1"), "Debug shows sizes, never keys: {debug}");
    }

    #[test]
    fn bytes_follow_keys() {
        let w = Window::new(Aggregate::Count, 60_000).unwrap();
        let empty = w.bytes();
        for i in 0..1_000 {
            w.record(&format!("user-{i}"), 0, Input::None).unwrap();
        }
        let full = w.bytes();
        assert!(full > empty + 1_000 * 64, "{empty} → {full}");
        assert!(full < empty + 1_000 * 256, "{empty} → {full}");
        // A long key and a spilled ring own heap blocks.
        w.record("a-key-that-is-longer-than-twenty-four-bytes", 0, Input::None).unwrap();
        for t in 0..60 {
            w.record("busy", t * 1_000, Input::None).unwrap();
        }
        assert!(w.bytes() > full);
        assert_eq!(w.evict_idle(1_000_000), 1_002);
        assert!(w.bytes() < full);
    }
}
