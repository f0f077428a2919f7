//! Pending timers of absence rules (`wait:`), in event time.
//!
//! A timer belongs to a *lane*, the input partition its arming event came
//! from, and fires once that lane's clock (the latest event time it has
//! seen) reaches its deadline. Each lane's clock only moves forward, so
//! timers fire in one order for one partition's log, however often it is
//! replayed. A cancelling event may come from any lane.
//!
//! Every timer pending in a lane has a deadline after that lane's clock: a
//! timer is fired as soon as its lane's clock reaches it, and one armed by
//! a late event whose deadline has already passed fires at once. So an
//! event whose lane's clock stays before the earliest deadline of all lanes
//! fires nothing and takes no lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use dashmap::DashMap;
use gavel_model::Event;
use gavel_model::pb::FeatureValue;

/// Timers held at most; past it a new timer is refused and counted.
/// Each holds its arming event (a few hundred bytes).
pub const MAX_PENDING_TIMERS: usize = 1 << 18;

/// A timer waiting for its deadline.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub lane: u64,
    pub armed_at: i64,
    pub deadline: i64,
    /// The event that armed it: the fired rule's actions and labels are
    /// computed from it, as if it fired on that event.
    pub event: Event,
    /// The features the rule's condition read when it armed.
    pub features: Vec<FeatureValue>,
}

/// A timer's identity: its rule and key.
type TimerKey = (Box<str>, Box<str>);

#[derive(Debug, Default)]
struct Inner {
    pending: HashMap<TimerKey, Pending>,
    /// Pending timers by lane and deadline, then identity.
    due: BTreeSet<(u64, i64, TimerKey)>,
    /// How many pending timers have each deadline: the earliest is the
    /// first key.
    deadlines: BTreeMap<i64, u32>,
}

impl Inner {
    fn insert(&mut self, id: TimerKey, pending: Pending) {
        self.due.insert((pending.lane, pending.deadline, id.clone()));
        *self.deadlines.entry(pending.deadline).or_default() += 1;
        self.pending.insert(id, pending);
    }

    fn remove(&mut self, id: &TimerKey) -> Option<Pending> {
        let pending = self.pending.remove(id)?;
        self.due.remove(&(pending.lane, pending.deadline, id.clone()));
        if let Some(n) = self.deadlines.get_mut(&pending.deadline) {
            *n -= 1;
            if *n == 0 {
                self.deadlines.remove(&pending.deadline);
            }
        }
        Some(pending)
    }
}

/// Counts for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TimerCounts {
    /// Timers pending now.
    pub pending: u64,
    /// Timers armed.
    pub armed: u64,
    /// Timers that fired at their deadline.
    pub fired: u64,
    /// Timers an event cancelled in time.
    pub cancelled: u64,
    /// Timers refused because [`MAX_PENDING_TIMERS`] were pending.
    pub refused: u64,
}

/// The pending timers of every absence rule, shared by all shards.
#[derive(Debug)]
pub(crate) struct Timers {
    inner: Mutex<Inner>,
    /// Each lane's clock: the latest event time it has seen.
    clocks: DashMap<u64, AtomicI64>,
    /// The earliest pending deadline of all lanes; `i64::MAX` when none.
    next_due: AtomicI64,
    armed: AtomicU64,
    fired: AtomicU64,
    cancelled: AtomicU64,
    refused: AtomicU64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            inner: Mutex::default(),
            clocks: DashMap::new(),
            next_due: AtomicI64::new(i64::MAX),
            armed: AtomicU64::new(0),
            fired: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

impl Timers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding it leaves whole entries: keep going.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves `lane`'s clock to `t` (if later) and takes every timer of
    /// that lane whose deadline the clock reached, earliest first; no lock
    /// unless some deadline of any lane is reached.
    pub fn advance(&self, lane: u64, t: i64) -> Vec<(Box<str>, Pending)> {
        let now = match self.clocks.get(&lane) {
            Some(clock) => clock.fetch_max(t, Ordering::AcqRel).max(t),
            None => self
                .clocks
                .entry(lane)
                .or_insert_with(|| AtomicI64::new(i64::MIN))
                .fetch_max(t, Ordering::AcqRel)
                .max(t),
        };
        if now < self.next_due.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut inner = self.lock();
        let due: Vec<TimerKey> = inner
            .due
            .range((lane, i64::MIN, (Box::from(""), Box::from("")))..)
            .take_while(|(l, d, _)| *l == lane && *d <= now)
            .map(|(_, _, id)| id.clone())
            .collect();
        let mut fired = Vec::with_capacity(due.len());
        for id in due {
            if let Some(pending) = inner.remove(&id) {
                fired.push((id.0, pending));
            }
        }
        self.refresh(&inner);
        self.fired.fetch_add(fired.len() as u64, Ordering::Relaxed);
        fired
    }

    /// Arms a timer for `rule` and `key` unless one is pending (the first
    /// deadline stands). Returns the timer back when its deadline is at or
    /// before its lane's clock already (a late event): it fires now.
    pub fn arm(&self, rule: &str, key: &str, pending: Pending) -> Option<Pending> {
        let mut inner = self.lock();
        let id: TimerKey = (Box::from(rule), Box::from(key));
        if inner.pending.contains_key(&id) {
            return None;
        }
        self.armed.fetch_add(1, Ordering::Relaxed);
        if self.clocks.get(&pending.lane).is_some_and(|clock| pending.deadline <= clock.load(Ordering::Acquire)) {
            self.fired.fetch_add(1, Ordering::Relaxed);
            return Some(pending);
        }
        if inner.pending.len() >= MAX_PENDING_TIMERS {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        inner.insert(id, pending);
        self.refresh(&inner);
        None
    }

    /// Cancels the timer of `rule` and `key` if an event at `t` is in
    /// time for it: at or after its arming, before its deadline.
    pub fn cancel(&self, rule: &str, key: &str, t: i64) -> bool {
        let mut inner = self.lock();
        let id: TimerKey = (Box::from(rule), Box::from(key));
        let Some(p) = inner.pending.get(&id) else { return false };
        if t < p.armed_at || t >= p.deadline {
            return false;
        }
        inner.remove(&id);
        self.refresh(&inner);
        self.cancelled.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Drops the timers whose rule `keep` rejects (a reload that removed
    /// or changed the rule's wait).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut inner = self.lock();
        let dropped: Vec<TimerKey> = inner.pending.keys().filter(|(rule, _)| !keep(rule)).cloned().collect();
        for id in &dropped {
            inner.remove(id);
        }
        self.refresh(&inner);
    }

    /// The counts for the metrics.
    pub fn counts(&self) -> TimerCounts {
        TimerCounts {
            pending: self.lock().pending.len() as u64,
            armed: self.armed.load(Ordering::Relaxed),
            fired: self.fired.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn refresh(&self, inner: &Inner) {
        let next = inner.deadlines.keys().next().copied().unwrap_or(i64::MAX);
        self.next_due.store(next, Ordering::Release);
    }
}
