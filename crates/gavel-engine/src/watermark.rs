//! The event-time watermark that state is evicted at: the engine forgets
//! idle keys, lapsed cooldowns, expired labels and old sequence steps as of
//! the event time its inputs have reached, never the machine's clock, so a
//! log processed today and the same log processed next month keep the same
//! state and give the same answers.
//!
//! Each lane (input partition) has a clock, the latest event time it has
//! seen. The watermark is the earliest clock among the lanes that moved
//! since the last sweep: every lane still flowing has reached it, so an
//! event still to come from one of them is, late events aside, no earlier.
//! A lane that stopped (a partition given up in a rebalance, or one with no
//! traffic) does not hold eviction back; when it moves again it counts
//! again.

use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;

/// One lane's clock, and where it stood at the last sweep.
#[derive(Debug)]
struct LaneClock {
    latest: AtomicI64,
    at_last_sweep: AtomicI64,
}

/// Every lane's clock; shared by all shards and by successor engines.
#[derive(Debug, Default)]
pub(crate) struct Watermark {
    lanes: DashMap<u64, LaneClock>,
}

impl Watermark {
    /// Moves `lane`'s clock to `t`, if later.
    pub fn advance(&self, lane: u64, t: i64) {
        match self.lanes.get(&lane) {
            Some(clock) => {
                clock.latest.fetch_max(t, Ordering::Relaxed);
            }
            None => {
                let clock = self.lanes.entry(lane).or_insert_with(|| LaneClock {
                    latest: AtomicI64::new(i64::MIN),
                    at_last_sweep: AtomicI64::new(i64::MIN),
                });
                clock.latest.fetch_max(t, Ordering::Relaxed);
            }
        }
    }

    /// The earliest clock of the lanes that moved since the last call, and
    /// marks them swept; `None` when none moved (nothing new to evict).
    pub fn sweep(&self) -> Option<i64> {
        let mut earliest: Option<i64> = None;
        for clock in self.lanes.iter() {
            let latest = clock.latest.load(Ordering::Relaxed);
            if clock.at_last_sweep.swap(latest, Ordering::Relaxed) != latest {
                earliest = Some(earliest.map_or(latest, |e| e.min(latest)));
            }
        }
        earliest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_earliest_moving_lane_and_a_stopped_lane_does_not_hold_it() {
        let w = Watermark::default();
        assert_eq!(w.sweep(), None, "no lane yet");
        w.advance(0, 1_000);
        w.advance(1, 400);
        w.advance(1, 300);
        assert_eq!(w.sweep(), Some(400), "the slower lane, at its latest");
        assert_eq!(w.sweep(), None, "nothing moved");
        w.advance(0, 2_000);
        assert_eq!(w.sweep(), Some(2_000), "lane 1 stopped: it does not hold eviction at 400");
        w.advance(1, 500);
        w.advance(0, 2_500);
        assert_eq!(w.sweep(), Some(500), "lane 1 moved again: it counts again");
    }
}
