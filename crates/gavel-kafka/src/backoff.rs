//! Exponential backoff for sending an output again: 50 ms, doubling each
//! attempt, capped at 5 s.
//!
//! The schedule is a pure function ([`Backoff::delay`]); only
//! [`Backoff::wait`] sleeps. There is no give-up: an output is never
//! dropped, so the caller retries until the broker takes it.

use std::time::Duration;

/// First delay.
const FIRST: Duration = Duration::from_millis(50);
/// Longest delay.
const CAP: Duration = Duration::from_secs(5);

/// Exponential backoff from 50 ms to 5 s, for one record's retries.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// Retries so far.
    attempts: u32,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry).
    pub fn delay(attempt: u32) -> Duration {
        // 2^7 × 50 ms already passes the cap; clamping the exponent keeps
        // the shift from overflowing however long the outage lasts.
        FIRST.saturating_mul(1 << attempt.min(7)).min(CAP)
    }

    /// The delay before the next retry, counting it.
    pub fn next_delay(&mut self) -> Duration {
        let delay = Self::delay(self.attempts);
        self.attempts = self.attempts.saturating_add(1);
        delay
    }

    /// Sleeps for [`Self::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_50_ms_and_cap_at_5_s() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..10).map(|_| backoff.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]);
    }

    #[test]
    fn a_long_outage_neither_overflows_nor_passes_the_cap() {
        assert_eq!(Backoff::delay(u32::MAX), CAP);
        let mut backoff = Backoff { attempts: u32::MAX };
        assert_eq!(backoff.next_delay(), CAP);
        assert_eq!(backoff.next_delay(), CAP, "the attempt count saturates");
    }
}
