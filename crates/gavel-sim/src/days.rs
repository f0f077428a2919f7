//! Marketplace time ([`Timeline::Days`]): normal traffic follows a daily
//! rhythm, and each abuse scenario runs on its own clock, in episodes at a
//! pace of its own, instead of at a fixed share of events.
//!
//! **Rhythm.** The configured rate is the day's average; the rate of the
//! moment is that times the hour's weight in [`HOURLY`] (quiet before
//! dawn, busiest in the evening, when most shows run), and the gap to the
//! next normal event is exponential at that rate, so traffic arrives as a
//! Poisson process rather than on a fixed beat.
//!
//! **Abuse episodes.** A scenario starts an episode at exponential gaps of
//! a day over [`SimConfig::episodes_per_day`] on average. An episode is a
//! fixed number of the scenario's draws ([`EPISODE_DRAWS`]: a bot spree, a
//! ring or two, a takeover, a chargeback spree), each the next step of one
//! of its campaigns exactly as in the compressed timeline, at exponential
//! gaps. The pace of an episode is drawn from the seed, log-uniform
//! between the scenario's slowest and fastest variants in [`PACE`]; the
//! fastest is the share's pace at [`REFERENCE_RATE`] (the compressed
//! default, the pace the campaigns were first written at), the slowest
//! stretches the same steps over minutes or hours. A campaign an episode
//! leaves unfinished goes on in the scenario's next episode, hours later:
//! takeovers and chargeback sprees that span days come out of that.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::{Scenario, SimConfig};

/// The compressed timeline's default rate, events per second: a share of
/// it is a scenario's fastest pace.
pub const REFERENCE_RATE: f64 = 5_000.0;

/// Relative traffic in each hour of the day (UTC, the marketplace's own
/// clock), normalised to a mean of 1 by [`rate_weight`].
const HOURLY: [f64; 24] = [
    0.55, 0.40, 0.30, 0.22, 0.20, 0.22, 0.30, 0.45, 0.60, 0.70, 0.80, 0.90, //
    1.00, 1.05, 1.10, 1.15, 1.25, 1.40, 1.60, 1.85, 2.00, 1.90, 1.50, 0.95,
];

const DAY_MS: f64 = 86_400_000.0;

/// Draws in one episode of each scenario, in [`Scenario::ALL`] order.
const EPISODE_DRAWS: [u32; Scenario::ALL.len()] = [
    400, // bid_bot: a spree of every bot
    12,  // off_platform_scam: a scammer working a few shows
    60,  // card_testing: a batch of cards
    120, // shill_ring: two rings' worth of bids
    70,  // account_takeover: about one takeover
    300, // chat_spam: one or two spammers' runs
    24,  // non_paying_bidder: a few wins and their failed charges
    10,  // chargeback_abuser: about one spree
    12,  // risky_new_seller: about one seller
    15,  // shared_card: about one card
];

/// (slowest, fastest) pace of each scenario's episodes, as a multiple of
/// its share of [`REFERENCE_RATE`], in [`Scenario::ALL`] order. Each floor
/// keeps the abuse what the scenario describes: a bot still bids faster
/// than people, a spammer still floods; the scripted scenarios may crawl.
const PACE: [(f64, f64); Scenario::ALL.len()] = [
    (0.3, 1.0),    // bid_bot: 3.75 to 12.5 bids a second across 4 bots
    (0.001, 1.0),  // off_platform_scam
    (0.05, 1.0),   // card_testing: a card every 2 s at the slowest
    (0.05, 1.0),   // shill_ring
    (0.0005, 1.0), // account_takeover: up to about four hours per takeover
    (0.2, 1.0),    // chat_spam: still two messages a second
    (0.002, 1.0),  // non_paying_bidder
    (0.0002, 1.0), // chargeback_abuser: up to hours between disputes
    (0.0005, 1.0), // risky_new_seller
    (0.002, 1.0),  // shared_card
];

/// How event time advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timeline {
    /// One step of `1 / rate` per event, abuse at its share of events:
    /// a minute of a busy marketplace, the shape the short windows of the
    /// pack see.
    #[default]
    Compressed,
    /// Marketplace time: a daily rhythm and abuse on its own clocks (the
    /// module docs of `days.rs`, and the crate docs).
    Days,
}

/// The weight of the hour `ms` falls in, so that the mean over a day is 1.
pub fn rate_weight(ms: f64) -> f64 {
    let mean = HOURLY.iter().sum::<f64>() / HOURLY.len() as f64;
    let hour = (ms.rem_euclid(DAY_MS) / 3_600_000.0) as usize;
    HOURLY[hour.min(23)] / mean
}

/// An exponential gap, in ms, at `per_ms` events a millisecond.
pub(crate) fn gap_ms(rng: &mut ChaCha8Rng, per_ms: f64) -> f64 {
    let u: f64 = rng.random();
    // 1 - u is in (0, 1]: its logarithm is finite.
    -(1.0 - u).ln() / per_ms.max(1e-12)
}

/// One scenario's clock.
#[derive(Debug, Clone)]
struct ScenarioClock {
    next_ms: f64,
    left: u32,
    /// Draws a millisecond in the current episode.
    per_ms: f64,
}

/// The abuse clocks of a marketplace-time run.
#[derive(Debug, Clone)]
pub(crate) struct AbuseClocks {
    clocks: Vec<ScenarioClock>,
}

impl AbuseClocks {
    pub(crate) fn new(config: &SimConfig, rng: &mut ChaCha8Rng) -> AbuseClocks {
        let start = config.start_ms as f64;
        let clocks = Scenario::ALL
            .iter()
            .map(|&scenario| {
                let mut clock = ScenarioClock { next_ms: f64::INFINITY, left: 0, per_ms: 0.0 };
                if config.share(scenario) > 0.0 && config.episodes_per_day > 0.0 {
                    clock.next_ms = start + gap_ms(rng, config.episodes_per_day / DAY_MS);
                }
                clock
            })
            .collect();
        AbuseClocks { clocks }
    }

    /// The scenario due first and when, if any is.
    pub(crate) fn due(&self) -> Option<(usize, f64)> {
        self.clocks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.next_ms.is_finite())
            .min_by(|a, b| a.1.next_ms.total_cmp(&b.1.next_ms))
            .map(|(i, c)| (i, c.next_ms))
    }

    /// Scenario `i` drew at its due time: schedules its next draw, or the
    /// start of its next episode.
    pub(crate) fn advance(&mut self, i: usize, config: &SimConfig, rng: &mut ChaCha8Rng) {
        let scenario = Scenario::ALL[i];
        let clock = &mut self.clocks[i];
        let now = clock.next_ms;
        if clock.left == 0 {
            // Starting an episode: pick its pace.
            let (slow, fast) = PACE[i];
            let pace = (slow.ln() + rng.random::<f64>() * (fast.ln() - slow.ln())).exp();
            clock.per_ms = config.share(scenario) * REFERENCE_RATE * pace / 1_000.0;
            clock.left = EPISODE_DRAWS[i];
        }
        clock.left -= 1;
        clock.next_ms = if clock.left == 0 {
            now + gap_ms(rng, config.episodes_per_day / DAY_MS)
        } else {
            now + gap_ms(rng, clock.per_ms)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hourly_weights_average_one_and_peak_in_the_evening() {
        let mean: f64 = (0..24).map(|h| rate_weight(h as f64 * 3_600_000.0)).sum::<f64>() / 24.0;
        assert!((mean - 1.0).abs() < 1e-9, "{mean}");
        let evening = rate_weight(20.5 * 3_600_000.0);
        let dawn = rate_weight(4.5 * 3_600_000.0);
        assert!(evening > 5.0 * dawn, "{evening} vs {dawn}");
    }

    #[test]
    fn gaps_average_the_inverse_rate() {
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        let n = 20_000;
        let mean = (0..n).map(|_| gap_ms(&mut rng, 0.01)).sum::<f64>() / n as f64;
        assert!((mean - 100.0).abs() < 5.0, "{mean}");
    }
}
