//! [`CountWindow`]: a sliding count per key, the engine's original face of
//! the store. It is a `Table` of the `count` aggregate, so it shares the
//! exact tier, buckets, shards, cap and accounting of [`crate::Window`]; it
//! only answers in integers and says whether an event came too late.

use crate::aggregate::Count;
use crate::tier::Tiered;
use crate::window::{Table, WindowConfig};
use crate::{Aggregate, Result};

/// The outcome of recording one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The event was counted; the key's count in the window ending at the
    /// event's time, this event included.
    Counted(u64),
    /// The event is a window or more older than the key's newest event: it
    /// changes nothing. The value is the count of the window ending at the
    /// key's newest event.
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

/// A sliding-window count per key (see [`crate::Window`] for the clock
/// rules; this is `Window` with [`Aggregate::Count`] and integer answers).
#[derive(Debug)]
pub struct CountWindow {
    table: Table<Tiered<Count>>,
}

/// A count reading back as an integer: counts are sums of `u32`s, below
/// 2^53, so the `f64` holds them exactly.
fn whole(value: Option<f64>) -> u64 {
    value.map_or(0, |v| v as u64)
}

impl CountWindow {
    /// A count over `window_ms` milliseconds of event time, uncapped.
    pub fn new(window_ms: u64) -> Result<Self> {
        CountWindow::with_config(WindowConfig::new(Aggregate::Count, window_ms))
    }

    /// A count built from `config` (its aggregate is ignored: always count).
    pub fn with_config(config: WindowConfig) -> Result<Self> {
        Ok(CountWindow { table: Table::new(&config)? })
    }

    /// The window length in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.table.window_ms()
    }

    /// The bucket width in milliseconds (see [`crate::Window::bucket_ms`]).
    pub fn bucket_ms(&self) -> u64 {
        self.table.bucket_ms()
    }

    /// Counts one event for `key` at event time `t_ms` and returns the count
    /// in the window ending at `t_ms`. Touches the key once.
    pub fn record(&self, key: &str, t_ms: i64) -> Recorded {
        let outcome = self.table.record(key, t_ms, 0.0);
        let n = whole(outcome.value);
        if outcome.too_late { Recorded::TooLate(n) } else { Recorded::Counted(n) }
    }

    /// The count for `key` in the window ending at `t_ms`, without recording
    /// (see [`crate::Window::read`]).
    pub fn count(&self, key: &str, t_ms: i64) -> u64 {
        whole(self.table.read(key, t_ms))
    }

    /// Moves every key to `now_ms` and drops those left with nothing a
    /// reading could see (see [`crate::Window::evict_idle`]). Returns how
    /// many keys were dropped.
    pub fn evict_idle(&self, now_ms: i64) -> usize {
        self.table.evict_idle(now_ms)
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held (see [`crate::Window::bytes`]).
    pub fn bytes(&self) -> usize {
        self.table.bytes() + size_of::<Self>()
    }

    /// Events ignored because they were a window or more older than their
    /// key's newest.
    pub fn too_late_total(&self) -> u64 {
        self.table.too_late_total()
    }

    /// Keys evicted by the cap (see [`WindowConfig::max_keys`]).
    pub fn evicted_by_cap_total(&self) -> u64 {
        self.table.evicted_by_cap_total()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{EXACT_EVENTS, MAX_WINDOW_MS};

    #[test]
    fn counts_within_window_and_forgets_after() {
        let w = CountWindow::new(60_000).unwrap();
        assert_eq!(w.record("u1", 1_000).value(), 1);
        assert_eq!(w.record("u1", 2_000).value(), 2);
        assert_eq!(w.record("u2", 2_000).value(), 1);
        assert_eq!(w.count("u1", 30_000), 2);
        // Exactly one window after the first event, it has slid out.
        assert_eq!(w.count("u1", 60_999), 2);
        assert_eq!(w.count("u1", 61_000), 1);
        assert_eq!(w.count("u1", 62_000), 0);
        assert_eq!(w.record("u1", 200_000).value(), 1);
    }

    #[test]
    fn late_events_inside_the_window_count_older_ones_do_not() {
        let w = CountWindow::new(10_000).unwrap();
        w.record("k", 85_000);
        w.record("k", 100_000);
        assert_eq!(w.record("k", 95_000), Recorded::Counted(1), "(85 000, 95 000]: 85 000 is exactly a window older");
        assert_eq!(w.record("k", 94_000), Recorded::Counted(2), "(84 000, 94 000]: 85 000 is kept for late events");
        assert_eq!(w.count("k", 100_000), 3);
        assert_eq!(w.record("k", 90_000), Recorded::TooLate(3), "exactly a window older than the newest");
        assert_eq!(w.too_late_total(), 1);
        assert_eq!(w.count("k", 100_000), 3);
        assert_eq!(w.count("k", 1_000), 3, "a reading too late for the key reads its newest window");
    }

    #[test]
    fn idle_keys_are_evicted_once_nothing_can_read_them() {
        let w = CountWindow::new(1_000).unwrap();
        w.record("a", 0);
        w.record("b", 5_000);
        assert_eq!(w.evict_idle(5_500), 1);
        assert_eq!(w.len(), 1);
        assert_eq!(w.evict_idle(6_999), 0, "a late event at 6 000 would still see b");
        assert_eq!(w.evict_idle(7_000), 1);
        assert!(w.is_empty());
    }

    #[test]
    fn rejects_bad_windows() {
        assert!(CountWindow::new(0).is_err());
        assert!(CountWindow::new(MAX_WINDOW_MS + 1).is_err());
        assert!(CountWindow::new(MAX_WINDOW_MS).is_ok());
    }

    proptest! {
        /// Few events per key, so every key stays exact: each answer is the
        /// number of counted events of the key in `(t − w, t]`.
        #[test]
        fn matches_an_exact_oracle(
            window_ms in 1u64..5_000,
            events in proptest::collection::vec((0usize..3, 0i64..20_000), 1..EXACT_EVENTS),
        ) {
            let w = CountWindow::new(window_ms).unwrap();
            let window = window_ms as i64;
            let keys = ["a", "b", "c"];
            let mut kept: Vec<(usize, i64)> = Vec::new();
            let mut newest: [Option<i64>; 3] = [None; 3];
            for (k, t) in events {
                let n = newest[k].get_or_insert(t);
                let got = w.record(keys[k], t);
                if t <= *n - window {
                    let at = *n;
                    let expected = kept.iter().filter(|&&(kk, tt)| kk == k && at - window < tt && tt <= at).count();
                    prop_assert_eq!(got, Recorded::TooLate(expected as u64));
                } else {
                    *n = (*n).max(t);
                    kept.push((k, t));
                    let expected = kept.iter().filter(|&&(kk, tt)| kk == k && t - window < tt && tt <= t).count();
                    prop_assert_eq!(got, Recorded::Counted(expected as u64));
                }
            }
        }
    }
}
