//! [`CountWindow`]: a sliding count per key over a ring of time buckets.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::{BUCKETS, MAX_WINDOW_MS, Result, VelocityError};

/// The outcome of recording one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The event was counted; the key's count in the window ending at the
    /// event's time, this event included.
    Counted(u64),
    /// The event is older than the window ending at the key's newest event:
    /// it changes nothing. The value is the key's current count.
    TooLate(u64),
}

impl Recorded {
    /// The count the rule should read for this event.
    pub fn value(self) -> u64 {
        match self {
            Recorded::Counted(n) | Recorded::TooLate(n) => n,
        }
    }
}

/// A per-key ring of bucket counts. `head` is the bucket index (event time
/// divided by bucket width) of the newest bucket; the ring holds the
/// `BUCKETS` buckets ending there.
#[derive(Debug)]
struct Ring {
    head: i64,
    counts: [u32; BUCKETS],
}

impl Ring {
    fn new(head: i64) -> Self {
        Ring { head, counts: [0; BUCKETS] }
    }

    fn slot(index: i64) -> usize {
        // rem_euclid of a positive modulus is in 0..BUCKETS.
        index.rem_euclid(BUCKETS as i64) as usize
    }

    /// Moves the head forward to `index`, clearing the buckets that fall out.
    fn advance(&mut self, index: i64) {
        if index <= self.head {
            return;
        }
        let steps = (index - self.head).min(BUCKETS as i64);
        for i in 1..=steps {
            self.counts[Self::slot(self.head + i)] = 0;
        }
        self.head = index;
    }

    /// Sum of the buckets in `(index - BUCKETS, index]` that the ring still holds.
    fn sum_until(&self, index: i64) -> u64 {
        let top = index.min(self.head);
        let bottom = (index - BUCKETS as i64).max(self.head - BUCKETS as i64);
        ((bottom + 1)..=top).map(|i| u64::from(self.counts[Self::slot(i)])).sum()
    }

    fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }
}

/// A sliding-window count per key.
#[derive(Debug)]
pub struct CountWindow {
    window_ms: u64,
    bucket_ms: i64,
    keys: DashMap<Box<str>, Ring>,
    too_late: AtomicU64,
}

impl CountWindow {
    /// A count over `window_ms` milliseconds of event time.
    pub fn new(window_ms: u64) -> Result<Self> {
        if window_ms == 0 || window_ms > MAX_WINDOW_MS {
            return Err(VelocityError::WindowOutOfRange(window_ms));
        }
        // window_ms ≤ 30 days, so the bucket width fits in i64.
        let bucket_ms = window_ms.div_ceil(BUCKETS as u64) as i64;
        Ok(CountWindow { window_ms, bucket_ms, keys: DashMap::new(), too_late: AtomicU64::new(0) })
    }

    /// The window length in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// The bucket width in milliseconds: the resolution of the window's edge.
    pub fn bucket_ms(&self) -> u64 {
        self.bucket_ms as u64
    }

    /// Counts one event for `key` at event time `t_ms` and returns the count
    /// in the window ending at `t_ms`. Touches the key once.
    pub fn record(&self, key: &str, t_ms: i64) -> Recorded {
        let index = t_ms.div_euclid(self.bucket_ms);
        if let Some(mut ring) = self.keys.get_mut(key) {
            return self.record_in(&mut ring, index);
        }
        let mut ring = self.keys.entry(Box::from(key)).or_insert_with(|| Ring::new(index));
        self.record_in(&mut ring, index)
    }

    fn record_in(&self, ring: &mut Ring, index: i64) -> Recorded {
        if index <= ring.head - BUCKETS as i64 {
            self.too_late.fetch_add(1, Ordering::Relaxed);
            return Recorded::TooLate(ring.sum_until(ring.head));
        }
        ring.advance(index);
        let slot = &mut ring.counts[Ring::slot(index)];
        *slot = slot.saturating_add(1);
        Recorded::Counted(ring.sum_until(index))
    }

    /// The count for `key` in the window ending at `t_ms`, without recording.
    pub fn count(&self, key: &str, t_ms: i64) -> u64 {
        let index = t_ms.div_euclid(self.bucket_ms);
        self.keys.get(key).map_or(0, |ring| ring.sum_until(index))
    }

    /// Drops every key whose window, ending at `now_ms`, is empty. Returns how
    /// many keys were dropped.
    pub fn evict_idle(&self, now_ms: i64) -> usize {
        let index = now_ms.div_euclid(self.bucket_ms);
        let before = self.keys.len();
        self.keys.retain(|_, ring| {
            ring.advance(index);
            !ring.is_empty()
        });
        before - self.keys.len()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Events ignored because they were older than their key's window.
    pub fn too_late_total(&self) -> u64 {
        self.too_late.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn counts_within_window_and_forgets_after() {
        let w = CountWindow::new(60_000).unwrap();
        assert_eq!(w.record("u1", 1_000).value(), 1);
        assert_eq!(w.record("u1", 2_000).value(), 2);
        assert_eq!(w.record("u2", 2_000).value(), 1);
        assert_eq!(w.count("u1", 30_000), 2);
        // One full window after the first bucket, it has slid out.
        assert_eq!(w.count("u1", 61_000), 1);
        assert_eq!(w.count("u1", 62_000), 0);
        assert_eq!(w.record("u1", 200_000).value(), 1);
    }

    #[test]
    fn late_events_inside_the_window_count_older_ones_do_not() {
        let w = CountWindow::new(10_000).unwrap();
        w.record("k", 100_000);
        assert_eq!(w.record("k", 95_000), Recorded::Counted(1), "window ending at 95s holds only itself");
        assert_eq!(w.count("k", 100_000), 2);
        assert_eq!(w.record("k", 80_000), Recorded::TooLate(2));
        assert_eq!(w.too_late_total(), 1);
        assert_eq!(w.count("k", 100_000), 2);
    }

    #[test]
    fn idle_keys_are_evicted() {
        let w = CountWindow::new(1_000).unwrap();
        w.record("a", 0);
        w.record("b", 5_000);
        assert_eq!(w.evict_idle(5_500), 1);
        assert_eq!(w.len(), 1);
        assert_eq!(w.evict_idle(10_000), 1);
        assert!(w.is_empty());
    }

    #[test]
    fn rejects_bad_windows() {
        assert!(CountWindow::new(0).is_err());
        assert!(CountWindow::new(MAX_WINDOW_MS + 1).is_err());
        assert!(CountWindow::new(MAX_WINDOW_MS).is_ok());
    }

    proptest! {
        /// Against an oracle that keeps every event: at bucket resolution the
        /// store's count equals the number of events whose bucket lies in the
        /// window's buckets, unless the event arrived after its bucket left
        /// the ring.
        #[test]
        fn matches_an_exact_oracle(
            window_ms in 1u64..5_000,
            events in proptest::collection::vec((0usize..3, 0i64..20_000), 1..200),
        ) {
            let w = CountWindow::new(window_ms).unwrap();
            let b = w.bucket_ms() as i64;
            let keys = ["a", "b", "c"];
            let mut kept: Vec<(usize, i64)> = Vec::new();
            let mut head: [Option<i64>; 3] = [None; 3];
            for (k, t) in events {
                let idx = t.div_euclid(b);
                let h = head[k].get_or_insert(idx);
                let late = idx <= *h - BUCKETS as i64;
                let got = w.record(keys[k], t);
                if !late {
                    *h = (*h).max(idx);
                    kept.push((k, t));
                    let expected = kept.iter()
                        .filter(|(kk, _)| *kk == k)
                        .map(|(_, tt)| tt.div_euclid(b))
                        .filter(|i| *i <= idx && *i > idx - BUCKETS as i64 && *i > *h - BUCKETS as i64)
                        .count() as u64;
                    prop_assert_eq!(got, Recorded::Counted(expected));
                } else {
                    prop_assert!(matches!(got, Recorded::TooLate(_)));
                }
            }
        }
    }
}
