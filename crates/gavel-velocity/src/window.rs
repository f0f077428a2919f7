//! [`Window`]: one windowed aggregate per key, the velocity store's general
//! form, and the generic [`Table`] behind it and [`crate::CountWindow`].
//!
//! A `Table<K>` joins the sharded key map, the bucket arithmetic and one
//! aggregate kind `K`; `Window` picks the table for its [`Aggregate`] at
//! construction and checks each [`Input`] against it. This module does not
//! store anything itself: cells live in `aggregate`/`distinct`, keys in
//! `map`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Aggregate;
use crate::aggregate::{self, Agg, Input, Sample};
use crate::distinct::{self, DistinctState};
use crate::map::{ShardedMap, Value};
use crate::ring::{self, Ring};
use crate::{BUCKETS, MAX_WINDOW_MS, Result, VelocityError};

/// Shards a window's key table is split into unless configured otherwise.
pub const DEFAULT_SHARDS: usize = 64;

/// How to build a [`Window`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowConfig {
    /// What the window computes per key.
    pub aggregate: Aggregate,
    /// Window length in milliseconds, 1 ms to [`MAX_WINDOW_MS`] (30 days).
    /// Buckets are `window_ms / 60` wide, rounded up.
    pub window_ms: u64,
    /// At most this many keys (rounded up to a multiple of `shards`); `None`
    /// for no cap. Keys are spread over the shards by hash and each shard
    /// holds its share, `max_keys / shards` rounded up. When a new key
    /// arrives at a full shard, the shard first evicts its least recently
    /// active sixteenth (at least one key): the keys whose newest bucket is
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

/// Where an event or a reading falls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    /// Bucket index: time divided by the bucket width, rounded down.
    index: i64,
    /// The time itself.
    t_ms: i64,
    /// Offset of the time in its bucket.
    offset: u32,
    bucket_ms: i64,
}

impl At {
    fn new(t_ms: i64, bucket_ms: i64) -> At {
        At {
            index: t_ms.div_euclid(bucket_ms),
            t_ms,
            // 0 <= offset < bucket_ms <= 30 days / 60, which fits in u32.
            offset: t_ms.rem_euclid(bucket_ms) as u32,
            bucket_ms,
        }
    }

    /// The last millisecond of bucket `index`.
    fn end_of(index: i64, bucket_ms: i64) -> At {
        let start = index.saturating_mul(bucket_ms);
        At::new(start.saturating_add(bucket_ms - 1), bucket_ms)
    }
}

/// One aggregate kind as a table sees it.
pub(crate) trait Kind: Send + Sync + 'static {
    /// A key's state.
    type State: Value + Send + Sync + fmt::Debug;
    /// What an event brings.
    type In: Copy;
    /// The reading of an empty window.
    const EMPTY: Option<f64>;
    /// An empty state whose newest bucket is `index`.
    fn new_state(index: i64) -> Self::State;
    /// The newest bucket index.
    fn head(state: &Self::State) -> i64;
    /// Moves the head forward to `index` (no-op if not newer).
    fn advance(state: &mut Self::State, index: i64);
    /// True when no bucket holds anything.
    fn is_empty(state: &Self::State) -> bool;
    /// Adds an event whose bucket lies in the ring and answers `record`.
    fn record(state: &mut Self::State, at: At, input: Self::In) -> Option<f64>;
    /// The reading of the window ending at `at`.
    fn read(state: &Self::State, at: At) -> Option<f64>;
}

impl<C: smallvec::Array> Value for Ring<C> {
    fn heap_bytes(&self) -> usize {
        Ring::heap_bytes(self)
    }

    fn recency(&self) -> i64 {
        self.head()
    }
}

impl<A: Agg> Kind for A {
    type State = Ring<A::Cells>;
    type In = f64;
    const EMPTY: Option<f64> = A::AGGREGATE.empty_value();

    fn new_state(index: i64) -> Self::State {
        Ring::new(index)
    }

    fn head(state: &Self::State) -> i64 {
        state.head()
    }

    fn advance(state: &mut Self::State, index: i64) {
        state.advance(index);
    }

    fn is_empty(state: &Self::State) -> bool {
        state.is_empty()
    }

    fn record(state: &mut Self::State, at: At, value: f64) -> Option<f64> {
        let before = A::ANSWER_BEFORE.then(|| <A as Kind>::read(state, at));
        A::add(state.cell_mut(at.index, || A::IDENTITY), Sample { offset: at.offset, value });
        before.unwrap_or_else(|| <A as Kind>::read(state, at))
    }

    fn read(state: &Self::State, at: At) -> Option<f64> {
        A::read(state.span(ring::window_ages(state.head(), at.index)), at.bucket_ms, at.t_ms)
    }
}

/// [`Aggregate::Distinct`] as a table kind.
#[derive(Debug)]
pub(crate) struct Distinct;

impl Kind for Distinct {
    type State = DistinctState;
    /// The item's hash.
    type In = u64;
    const EMPTY: Option<f64> = Aggregate::Distinct.empty_value();

    fn new_state(index: i64) -> Self::State {
        DistinctState::new(index)
    }

    fn head(state: &Self::State) -> i64 {
        state.head()
    }

    fn advance(state: &mut Self::State, index: i64) {
        state.advance(index);
    }

    fn is_empty(state: &Self::State) -> bool {
        state.is_empty()
    }

    fn record(state: &mut Self::State, at: At, hash: u64) -> Option<f64> {
        state.add(at.index, hash);
        Some(state.count(at.index) as f64)
    }

    fn read(state: &Self::State, at: At) -> Option<f64> {
        Some(state.count(at.index) as f64)
    }
}

/// What recording one event did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outcome {
    /// The reading `record` answers with.
    pub(crate) value: Option<f64>,
    /// The event was older than its key's window and changed nothing.
    pub(crate) too_late: bool,
}

/// Keys to states of one aggregate kind, with the window's clock rules.
#[derive(Debug)]
pub(crate) struct Table<K: Kind> {
    window_ms: u64,
    bucket_ms: i64,
    max_keys: Option<usize>,
    map: ShardedMap<K::State>,
    too_late: AtomicU64,
    evicted_by_cap: AtomicU64,
    kind: PhantomData<fn() -> K>,
}

impl<K: Kind> Table<K> {
    /// A table for `config` (whose aggregate the caller has matched to `K`).
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
            window_ms,
            // window_ms <= 30 days, so the width fits in i64.
            bucket_ms: window_ms.div_ceil(BUCKETS as u64) as i64,
            max_keys: config.max_keys,
            map: ShardedMap::new(config.shards, config.max_keys),
            too_late: AtomicU64::new(0),
            evicted_by_cap: AtomicU64::new(0),
            kind: PhantomData,
        })
    }

    pub(crate) fn window_ms(&self) -> u64 {
        self.window_ms
    }

    pub(crate) fn bucket_ms(&self) -> u64 {
        self.bucket_ms as u64
    }

    pub(crate) fn max_keys(&self) -> Option<usize> {
        self.max_keys
    }

    /// Records one event: one hash, one shard lock, one probe.
    pub(crate) fn record(&self, key: &str, t_ms: i64, input: K::In) -> Outcome {
        let at = At::new(t_ms, self.bucket_ms);
        let (outcome, evicted) = self.map.upsert(
            key,
            || K::new_state(at.index),
            |state| {
                let head = K::head(state);
                if ring::too_late(head, at.index) {
                    return Outcome { value: K::read(state, At::end_of(head, self.bucket_ms)), too_late: true };
                }
                K::advance(state, at.index);
                Outcome { value: K::record(state, at, input), too_late: false }
            },
        );
        if evicted > 0 {
            self.evicted_by_cap.fetch_add(evicted as u64, Ordering::Relaxed);
        }
        if outcome.too_late {
            self.too_late.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// The reading of `key`'s window ending at `t_ms`.
    pub(crate) fn read(&self, key: &str, t_ms: i64) -> Option<f64> {
        let at = At::new(t_ms, self.bucket_ms);
        self.map.get(key, |state| K::read(state, at)).unwrap_or(K::EMPTY)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.map.get(key, |_| ()).is_some()
    }

    /// Moves every key's head to `now_ms` and drops those left empty.
    pub(crate) fn evict_idle(&self, now_ms: i64) -> usize {
        let index = now_ms.div_euclid(self.bucket_ms);
        self.map.retain(|state| {
            K::advance(state, index);
            !K::is_empty(state)
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
}

/// The table of each aggregate.
#[derive(Debug)]
enum Tables {
    Count(Table<aggregate::Count>),
    Sum(Table<aggregate::Sum>),
    Min(Table<aggregate::Min>),
    Max(Table<aggregate::Max>),
    Avg(Table<aggregate::Avg>),
    Distinct(Table<Distinct>),
    FirstSeen(Table<aggregate::FirstSeen>),
    LastSeen(Table<aggregate::LastSeen>),
    Since(Table<aggregate::Since>),
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
        }
    };
}

/// One windowed aggregate per key, in event time.
///
/// Every key has a sparse ring of [`BUCKETS`] buckets of `window / 60`
/// (rounded up to a millisecond), ending at the newest bucket the key has
/// seen. An event counts if its bucket lies in the window ending at that
/// head, however late it arrives; otherwise it is counted in
/// [`Window::too_late_total`] and changes nothing. Reading at `t_ms` covers
/// the buckets in the window ending at `t_ms`'s bucket that the ring still
/// holds (a reading at bucket resolution: the whole of `t_ms`'s bucket is
/// included). Memory per key is bounded whatever the event rate: one cell
/// per non-empty bucket.
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

    /// The bucket width in milliseconds: the resolution of the window's edge.
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
    /// An event older than the key's window changes nothing, is counted in
    /// [`Window::too_late_total`] and returns the key's current aggregate (as
    /// read at the last millisecond of its newest bucket).
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
            _ => return Err(mismatch()),
        };
        Ok(outcome.value)
    }

    /// The aggregate of `key` over the window ending at `t_ms`, without
    /// recording. An unknown key or an empty window reads as
    /// [`Aggregate::empty_value`]: `Some(0.0)` for count, sum and distinct,
    /// `None` for the others.
    pub fn read(&self, key: &str, t_ms: i64) -> Option<f64> {
        with_table!(&self.tables, t => t.read(key, t_ms))
    }

    /// True when the window holds state for `key` (it may be empty until the
    /// next [`Window::evict_idle`]).
    pub fn contains(&self, key: &str) -> bool {
        with_table!(&self.tables, t => t.contains(key))
    }

    /// Moves every key's window forward to `now_ms` and drops the keys left
    /// with nothing in it. Returns how many keys were dropped. Takes each
    /// shard's lock in turn (never all at once); O(keys).
    ///
    /// Like a record at `now_ms`, this makes later events older than
    /// `now_ms - window` too late for the keys it keeps.
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

    /// Events ignored because they were older than their key's window.
    pub fn too_late_total(&self) -> u64 {
        with_table!(&self.tables, t => t.too_late_total())
    }

    /// Keys evicted because their shard reached its share of the cap.
    pub fn evicted_by_cap_total(&self) -> u64 {
        with_table!(&self.tables, t => t.evicted_by_cap_total())
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
        assert_eq!(last.record("k", 1_100, Input::None), Ok(Some(1_234.0)), "same bucket");
        assert_eq!(last.record("k", 999, Input::None), Ok(Some(999.0)), "an earlier bucket");
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
