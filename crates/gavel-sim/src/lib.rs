//! Synthetic live-shopping marketplace traffic, with labelled abuse.
//!
//! Start at [`Simulator`], an iterator of [`SimEvent`]s, and [`SimConfig`],
//! whose field docs are the reference for every knob.
//!
//! **Normal traffic** (`market.rs`): sellers run shows of about 30 minutes
//! of event time to heavy-tailed audiences (a buyer watches at most a few
//! at once); lots are auctioned in
//! seconds-long bidding wars among a show's viewers; winners' saved cards
//! are charged at close (a few percent declined, most of those retried);
//! a few orders are refunded or, rarely, disputed; viewers chat; buyers log
//! in, now and then after mistyping their password or from their other
//! device; accounts sign up, a few as new sellers; sellers ask for payouts.
//! Normal traffic holds the honest near-misses a real marketplace has, so
//! that precision measured against the ground truth is not trivially 1.0,
//! each a [`LookAlike`] whose events the ground truth labels (scenario
//! `none`, plus the look-alike's name) so a backtest can count the honest
//! look-alike users a pack flags:
//!
//! | look-alike | what the honest users do | resembles |
//! |---|---|---|
//! | `household` | two or three buyers on one device, IP and card (every 25th pair, a few triples) | shill ring, shared card |
//! | `retried_decline` | a winner's card declines; they top up and it goes through | non-paying bidder |
//! | `second_card` | a winner's card declines; they pay with their other card | card testing |
//! | `unpaid_decline` | a winner's card declines (once, or again on retry) and they do not pay this time | non-paying bidder |
//! | `honest_chargeback` | one disputed order | chargeback abuser |
//! | `typo_streak` | three or more mistyped passwords, sometimes a reset | credential stuffing |
//! | `second_device` | a login from the buyer's laptop | account takeover |
//! | `email_then_new_phone` | an email change, then a login from a phone the account never used | account takeover |
//! | `new_seller_setup` | a new seller setting up a payout method at sign-up | risky new seller |
//! | `payout_method_change` | an established seller's payout to a method just changed | account takeover, risky new seller |
//! | `chat_mention` | an order number, an app named in passing, a grading-site link | off-platform scam |
//! | `bidding_duel` | two buyers fighting over one lot for minutes (one lot in 200) | shill ring, bid bot |
//!
//! **Abuse** (`abuse.rs`): each [`Scenario`] is drawn at its own share of
//! events; each draw emits the next step of one of that scenario's running
//! campaigns (starting a new one when none has steps left), so a scenario's
//! share of the stream is its configured share whatever its campaigns look
//! like. Every event an abuser causes carries its scenario, and
//! [`write_truth_line`] writes its ground truth. What each scenario does, and
//! the rules of the shipped pack (`rules/*.yaml`) it is built to cross:
//!
//! | scenario | share field (default) | behaviour | rules |
//! |---|---|---|---|
//! | `bid_bot` | `bid_bot_share` (1 %) | `bid_bots` accounts bidding several times a second across shows | `bid_bot_velocity`, `bid_bot_sustained`, `bid_bot_device_velocity` |
//! | `off_platform_scam` | `scam_chat_share` (0.1 %) | chat naming payment apps, "DM me", phone numbers; half disguised (letters spaced out or dotted, Cyrillic look-alikes, full-width, digits for letters: `abuse/disguise.rs`) | `off_platform_payment_chat`, `private_deal_in_chat`, `contact_details_in_chat` |
//! | `card_testing` | `card_testing_share` (0.2 %, plus ~85 % of that in declines) | small attempts with a fresh card each from a few devices, mostly declined | `card_testing_small_attempts`, `card_testing_declines`, `card_testing_many_cards`, `declines_pile_up_on_account`, `test_card_bin` |
//! | `shill_ring` | `shill_ring_share` (0.2 %) | `shill_rings` rings of 3–5 alt accounts on their seller's device bidding up that seller's lots | `multi_account_device`, `shill_bidding` |
//! | `account_takeover` | `account_takeover_share` (0.2 %) | 45–60 failed logins over many accounts from one IP, 10–12 on the victim, success from a new device abroad, reset password, new email, new payout method, then a payout or a $500+ purchase; the owner's own earlier login is unlabelled | every rule in `accounts.yaml` |
//! | `chat_spam` | `chat_spam_share` (0.2 %) | `chat_spammers` accounts repeating one link or phone number into many shows, several a second | `chat_flood`, `chat_spam_across_shows`, `contact_details_in_chat` |
//! | `non_paying_bidder` | `non_paying_bidder_share` (0.1 %) | `non_paying_bidders` accounts jump-bidding in a lot's last seconds to win it, then 2–3 declined charges per win (the close, labelled too, adds about a seventh) | `auction_winner`, `non_paying_bidder` |
//! | `chargeback_abuser` | `chargeback_abuser_share` (0.05 %) | 4–7 purchases, then chargebacks on at least 3 and most of them | `chargeback_abuse`, `chargeback_ratio` |
//! | `risky_new_seller` | `risky_new_seller_share` (0.1 %) | sign-up, payout method, a show with 5–8 listings of $1,000–3,000, a second payout method, a payout | `risky_new_seller_listing`, `new_seller_payout_change`, `payout_method_churn` |
//! | `shared_card` | `shared_card_share` (0.1 %) | one card paying for 5–9 accounts, 12 or more attempts | `shared_card_accounts`, `shared_card_velocity` |
//!
//! Thresholds are crossed at the default rate (5,000 events/s). Lower rates
//! stretch a campaign over more event time: at 1,000 events/s all but
//! `bid_bot_device_velocity` still fire (each bot bids 150 times a minute,
//! not 200); far lower rates leave the short windows (10 s to 10 min)
//! uncrossed.
//!
//! **Timelines.** In the default [`Timeline::Compressed`], event time
//! advances by `1 / rate` per event from a given start: 300,000 events are
//! one busy minute, so windows of an hour or more stay nearly empty.
//! [`Timeline::Days`] is marketplace time (`days.rs`, `gavel sim
//! --duration 3d`): normal traffic arrives as a Poisson process whose rate
//! follows the hour of the day (evenings five times busier than dawn), and
//! each scenario runs on its own clock in episodes (a few a day, by
//! [`SimConfig::episodes_per_day`]) at a pace drawn from the seed, from the
//! compressed default's down to steps minutes or hours apart, so the same
//! attacks come slower, in bursts or spread over days. Either way the same
//! seed and config give the same events, byte for byte.
//!
//! **Recordings** (the event files and ground truth that `gavel sim` writes
//! and `gavel replay` reads) are gavel-recording's format, not this
//! crate's: events go through its writers as they are, and
//! [`SimEvent::truth`] builds an event's ground-truth record from
//! [`SimEvent::entities`] (`truth.rs`).
//!
//! **Invariant:** the generator does no I/O, reads no clock and spawns
//! nothing. [`write_truth_line`] writes to whatever `std::io` writer its
//! caller passes in; opening files is the binary's business.

mod abuse;
mod actors;
mod days;
mod error;
mod look_alike;
mod market;
mod scenario;
mod topics;
mod truth;

use std::collections::VecDeque;

use gavel_model::{Event, Payload, timestamp_from_ms};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::actors::Actor;
pub use days::{REFERENCE_RATE, Timeline, rate_weight};
pub use error::{Error, Result};
pub use look_alike::LookAlike;
pub use scenario::Scenario;
pub use topics::{MARKETPLACE_TOPICS, topic_for};
pub use truth::write_truth_line;

/// One generated event and, for injected abuse, its scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// The event.
    pub event: Event,
    /// Which scenario produced it; `None` for normal traffic.
    pub scenario: Option<Scenario>,
    /// For normal traffic that resembles abuse, which honest behaviour it
    /// is; `None` otherwise (always `None` when `scenario` is set).
    pub look_alike: Option<LookAlike>,
}

/// Simulator parameters. Shares are fractions of all events (0.01 = 1 %).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed: the same seed and config give the same events.
    pub seed: u64,
    /// Events per second of event time; in [`Timeline::Days`], normal
    /// events per second on the day's average.
    pub rate_per_sec: f64,
    /// How event time advances: compressed (the default) or marketplace
    /// time.
    pub timeline: Timeline,
    /// In [`Timeline::Days`], abuse episodes each scenario starts a day,
    /// on average.
    pub episodes_per_day: f64,
    /// Event time of the first event, in milliseconds since the epoch.
    pub start_ms: i64,
    /// Number of buyer accounts. A buyer watches at most a few shows at
    /// once; with far fewer buyers than live audience seats (about 180 a
    /// show), each one is busier than people are and per-account rules see
    /// more honest near-misses cross.
    pub buyers: usize,
    /// Number of seller accounts (live shows pick their seller from these).
    pub sellers: usize,
    /// Shows live at once. About one bid per show per second keeps bidding
    /// wars at a human pace: pass [`SimConfig::shows_for_rate`].
    pub live_shows: usize,
    /// Share of payments the issuer declines (normal traffic).
    pub decline_rate: f64,
    /// Share of authorized normal orders the buyer honestly disputes
    /// (one chargeback, never a pattern).
    pub chargeback_rate: f64,
    /// Share of authorized normal orders refunded.
    pub refund_rate: f64,
    /// Share of all events that are bid-bot bids.
    pub bid_bot_share: f64,
    /// Number of bot accounts.
    pub bid_bots: usize,
    /// Share of all events that are scam messages in chat.
    pub scam_chat_share: f64,
    /// Share of all events that are card-testing attempts; about 85 % of
    /// attempts are followed by a decline, labelled too.
    pub card_testing_share: f64,
    /// Share of all events that are shill-ring bids.
    pub shill_ring_share: f64,
    /// Shill rings bidding at once; each is 3–5 accounts working for one
    /// seller for 40–80 bids, then a new ring forms.
    pub shill_rings: usize,
    /// Share of all events that are account-takeover steps (credential
    /// stuffing, the takeover, what the attacker does with the account).
    pub account_takeover_share: f64,
    /// Share of all events that are spam chat messages.
    pub chat_spam_share: f64,
    /// Spammer accounts flooding at once; each sends 150–300 messages, then
    /// a new account takes over.
    pub chat_spammers: usize,
    /// Share of all events that are a non-paying bidder's winning bids and
    /// failed payments (their auction closes come on top, about one per
    /// seven of these).
    pub non_paying_bidder_share: f64,
    /// Number of non-paying bidder accounts.
    pub non_paying_bidders: usize,
    /// Share of all events that are a chargeback abuser's purchases and
    /// chargebacks.
    pub chargeback_abuser_share: f64,
    /// Share of all events that are steps of risky new sellers (sign-up,
    /// listings, payout changes, payouts).
    pub risky_new_seller_share: f64,
    /// Share of all events that are payments with a card shared by many
    /// accounts.
    pub shared_card_share: f64,
}

impl SimConfig {
    /// The number of live shows that gives about one bid per show per second
    /// at `rate_per_sec` events per second.
    pub fn shows_for_rate(rate_per_sec: f64) -> usize {
        ((rate_per_sec * market::BID_SHARE) as usize).max(4)
    }

    /// The configured share of events drawn for `scenario`.
    pub fn share(&self, scenario: Scenario) -> f64 {
        match scenario {
            Scenario::BidBot => self.bid_bot_share,
            Scenario::OffPlatformScam => self.scam_chat_share,
            Scenario::CardTesting => self.card_testing_share,
            Scenario::ShillRing => self.shill_ring_share,
            Scenario::AccountTakeover => self.account_takeover_share,
            Scenario::ChatSpam => self.chat_spam_share,
            Scenario::NonPayingBidder => self.non_paying_bidder_share,
            Scenario::ChargebackAbuser => self.chargeback_abuser_share,
            Scenario::RiskyNewSeller => self.risky_new_seller_share,
            Scenario::SharedCard => self.shared_card_share,
        }
    }

    /// The share field of `scenario`, to set it by scenario.
    pub fn share_mut(&mut self, scenario: Scenario) -> &mut f64 {
        match scenario {
            Scenario::BidBot => &mut self.bid_bot_share,
            Scenario::OffPlatformScam => &mut self.scam_chat_share,
            Scenario::CardTesting => &mut self.card_testing_share,
            Scenario::ShillRing => &mut self.shill_ring_share,
            Scenario::AccountTakeover => &mut self.account_takeover_share,
            Scenario::ChatSpam => &mut self.chat_spam_share,
            Scenario::NonPayingBidder => &mut self.non_paying_bidder_share,
            Scenario::ChargebackAbuser => &mut self.chargeback_abuser_share,
            Scenario::RiskyNewSeller => &mut self.risky_new_seller_share,
            Scenario::SharedCard => &mut self.shared_card_share,
        }
    }

    /// Multiplies every scenario's share by `factor` (0 gives normal
    /// traffic only). Shares that would sum past 1 crowd out normal
    /// traffic first, then the scenarios last in [`Scenario::ALL`].
    pub fn scale_fraud(&mut self, factor: f64) {
        for scenario in Scenario::ALL {
            *self.share_mut(scenario) *= factor.max(0.0);
        }
    }

    /// This config with every scenario's share set to zero: normal traffic
    /// only.
    pub fn without_abuse(mut self) -> SimConfig {
        self.scale_fraud(0.0);
        self
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 7,
            rate_per_sec: 5_000.0,
            timeline: Timeline::Compressed,
            episodes_per_day: 4.0,
            start_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            buyers: 500_000,
            sellers: 10_000,
            live_shows: SimConfig::shows_for_rate(5_000.0),
            decline_rate: 0.04,
            chargeback_rate: 0.002,
            refund_rate: 0.005,
            bid_bot_share: 0.01,
            bid_bots: 4,
            scam_chat_share: 0.001,
            card_testing_share: 0.002,
            shill_ring_share: 0.002,
            shill_rings: 6,
            account_takeover_share: 0.002,
            chat_spam_share: 0.002,
            chat_spammers: 3,
            non_paying_bidder_share: 0.001,
            non_paying_bidders: 200,
            chargeback_abuser_share: 0.0005,
            risky_new_seller_share: 0.001,
            shared_card_share: 0.001,
        }
    }
}

/// The traffic generator. See the crate docs.
#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    rng: ChaCha8Rng,
    now_ms: f64,
    step_ms: f64,
    seq: u64,
    next_id: u64,
    shows: Vec<market::Show>,
    /// How many live shows' audiences each buyer is in.
    watching: Vec<u8>,
    /// Follow-ups of normal traffic (and auction closes), emitted before
    /// anything new is drawn.
    queued: VecDeque<SimEvent>,
    /// Cumulative share edges, one per scenario in [`Scenario::ALL`] order.
    edges: [f64; Scenario::ALL.len()],
    abuse: abuse::Campaigns,
    /// In [`Timeline::Days`]: when the next normal event happens, and the
    /// scenarios' own clocks.
    next_normal_ms: f64,
    clocks: Option<days::AbuseClocks>,
}

impl Simulator {
    /// A simulator with `config`.
    pub fn new(config: SimConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let clocks = (config.timeline == Timeline::Days).then(|| days::AbuseClocks::new(&config, &mut rng));
        let step_ms = 1_000.0 / config.rate_per_sec.max(0.001);
        let mut edges = [0.0; Scenario::ALL.len()];
        let mut edge = 0.0;
        for (i, scenario) in Scenario::ALL.into_iter().enumerate() {
            edge += config.share(scenario).clamp(0.0, 1.0);
            edges[i] = edge;
        }
        let mut sim = Simulator {
            now_ms: config.start_ms as f64,
            step_ms,
            rng,
            seq: 0,
            next_id: 0,
            shows: Vec::new(),
            watching: vec![0; config.buyers],
            queued: VecDeque::new(),
            edges,
            abuse: abuse::Campaigns::new(&config),
            next_normal_ms: config.start_ms as f64,
            clocks,
            config,
        };
        for _ in 0..sim.config.live_shows.max(1) {
            let show = sim.new_show();
            sim.shows.push(show);
        }
        sim
    }

    /// Current event time in milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now_ms as i64
    }

    /// The config this simulator runs.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The sequence number the next enveloped event gets (bid and message
    /// ids are derived from it).
    fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Wraps `payload` in an envelope from `actor` at the current time.
    fn emit(&mut self, actor: &Actor, payload: Payload, scenario: Option<Scenario>) -> SimEvent {
        self.seq += 1;
        let event = Event {
            event_id: format!("sim-{}-{}", self.config.seed, self.seq),
            occurred_at: Some(timestamp_from_ms(self.now_ms as i64)),
            user_id: actor.user.clone(),
            device_id: Some(actor.device.clone()),
            ip: Some(actor.ip.clone()),
            session_id: None,
            country: Some(actor.country.into()),
            payload: Some(payload),
        };
        SimEvent { event, scenario, look_alike: None }
    }

    /// Queues `event` behind whatever is queued and returns the first queued
    /// event, so that `event` keeps its place after earlier follow-ups.
    fn after_queued(&mut self, event: SimEvent) -> SimEvent {
        self.queued.push_back(event);
        // Just pushed: the queue is not empty.
        let mut first = self.queued.pop_front().expect("queue holds the event just pushed");
        // In marketplace time a follow-up can wait behind abuse draws:
        // it happens now, like every follow-up.
        first.event.occurred_at = Some(timestamp_from_ms(self.now_ms as i64));
        first
    }

    fn generate(&mut self) -> SimEvent {
        let roll: f64 = rand::Rng::random(&mut self.rng);
        match self.edges.iter().position(|&edge| roll < edge) {
            Some(i) => self.inject(Scenario::ALL[i]),
            None => self.normal(),
        }
    }
}

impl Iterator for Simulator {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        if self.clocks.is_some() {
            return Some(self.next_in_marketplace_time());
        }
        self.now_ms += self.step_ms;
        Some(self.queued_or(Simulator::generate))
    }
}

impl Simulator {
    /// A queued follow-up, stamped now (follow-ups happen when they come
    /// out, not when they were planned), or else a fresh event from `draw`.
    fn queued_or(&mut self, draw: fn(&mut Simulator) -> SimEvent) -> SimEvent {
        match self.queued.pop_front() {
            Some(mut queued) => {
                queued.event.occurred_at = Some(timestamp_from_ms(self.now_ms as i64));
                queued
            }
            None => draw(self),
        }
    }

    /// The next event in [`Timeline::Days`]: the abuse draw due first, if
    /// it comes before the next normal event, else that normal event (or a
    /// queued follow-up in its place).
    fn next_in_marketplace_time(&mut self) -> SimEvent {
        let due = self.clocks.as_ref().and_then(days::AbuseClocks::due);
        if let Some((i, at)) = due
            && at < self.next_normal_ms
        {
            self.now_ms = self.now_ms.max(at);
            if let Some(clocks) = self.clocks.as_mut() {
                clocks.advance(i, &self.config, &mut self.rng);
            }
            return self.inject(Scenario::ALL[i]);
        }
        self.now_ms = self.now_ms.max(self.next_normal_ms);
        let per_ms = self.config.rate_per_sec.max(0.001) * rate_weight(self.now_ms) / 1_000.0;
        self.next_normal_ms = self.now_ms + days::gap_ms(&mut self.rng, per_ms);
        match self.start_wanted_show() {
            Some(started) => self.after_queued(started),
            None => self.queued_or(Simulator::normal),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use gavel_model::EventKind;

    use super::*;

    #[test]
    fn same_seed_same_events() {
        let a: Vec<_> = Simulator::new(SimConfig::default()).take(2_000).collect();
        let b: Vec<_> = Simulator::new(SimConfig::default()).take(2_000).collect();
        assert_eq!(a, b);
        let c: Vec<_> = Simulator::new(SimConfig { seed: 8, ..SimConfig::default() }).take(2_000).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn mix_looks_like_a_marketplace() {
        let config = SimConfig::default();
        let mut kinds: HashMap<EventKind, usize> = HashMap::new();
        let mut normal: HashMap<EventKind, usize> = HashMap::new();
        let mut scenarios: HashMap<&str, usize> = HashMap::new();
        let mut last = 0;
        for e in Simulator::new(config.clone()).take(100_000) {
            let kind = e.event.kind().unwrap();
            *kinds.entry(kind).or_default() += 1;
            match e.scenario {
                Some(scenario) => *scenarios.entry(scenario.as_str()).or_default() += 1,
                None => *normal.entry(kind).or_default() += 1,
            }
            let t = gavel_model::event_time_ms(&e.event).unwrap();
            assert!(t >= last, "event time never goes back");
            last = t;
        }
        let bids = kinds[&EventKind::BidPlaced];
        assert!(bids > 50_000 && bids < 70_000, "bids: {bids}");
        assert!(kinds[&EventKind::ChatMessageSent] > 15_000);
        assert!(kinds[&EventKind::AuctionClosed] > 100);
        assert!(normal[&EventKind::PaymentDeclined] > 0);
        assert!(normal[&EventKind::PaymentAuthorized] > normal[&EventKind::PaymentDeclined] * 5, "{normal:?}");
        assert!((500..1_500).contains(&scenarios["bid_bot"]), "{scenarios:?}");
        assert!((50..150).contains(&scenarios["off_platform_scam"]), "{scenarios:?}");
        // Attempts at 0.2 % plus their declines.
        assert!((250..500).contains(&scenarios["card_testing"]), "{scenarios:?}");
        // 100k events at 5k/s span 20 s of event time.
        assert!((last - config.start_ms - 20_000).abs() < 10);
    }

    #[test]
    fn scale_fraud_scales_every_share() {
        let mut config = SimConfig::default();
        config.scale_fraud(2.0);
        for scenario in Scenario::ALL {
            assert_eq!(config.share(scenario), 2.0 * SimConfig::default().share(scenario), "{scenario}");
        }
        *config.share_mut(Scenario::ChatSpam) = 0.5;
        assert_eq!(config.chat_spam_share, 0.5);
    }

    /// Two days of marketplace time at 5 normal events a second.
    fn two_days() -> SimConfig {
        SimConfig {
            rate_per_sec: 5.0,
            live_shows: SimConfig::shows_for_rate(5.0),
            timeline: Timeline::Days,
            ..SimConfig::default()
        }
    }

    #[test]
    fn marketplace_time_spans_days_with_a_daily_rhythm_and_every_scenario() {
        let config = two_days();
        let end = config.start_ms + 2 * 86_400_000;
        let mut by_hour = [0u64; 24];
        let mut scenarios: HashMap<Scenario, usize> = HashMap::new();
        let (mut last, mut n) = (0, 0);
        for e in Simulator::new(config.clone()) {
            let t = gavel_model::event_time_ms(&e.event).unwrap();
            if t >= end {
                break;
            }
            assert!(t >= last, "event time never goes back");
            last = t;
            n += 1;
            by_hour[((t - config.start_ms) / 3_600_000 % 24) as usize] += 1;
            if let Some(scenario) = e.scenario {
                *scenarios.entry(scenario).or_default() += 1;
            }
        }
        // 5 a second for two days, and the abuse on top.
        assert!((800_000..1_000_000).contains(&n), "{n} events");
        assert!(by_hour[20] > 5 * by_hour[4], "{by_hour:?}");
        for scenario in Scenario::ALL {
            assert!(scenarios.get(&scenario).is_some_and(|&k| k > 0), "{scenario} missing: {scenarios:?}");
        }
        let abuse: usize = scenarios.values().sum();
        assert!(abuse < n / 20, "{abuse} abuse events of {n}");
    }

    #[test]
    fn marketplace_time_is_deterministic_by_seed() {
        let a: Vec<_> = Simulator::new(two_days()).take(5_000).collect();
        let b: Vec<_> = Simulator::new(two_days()).take(5_000).collect();
        assert_eq!(a, b);
        let c: Vec<_> = Simulator::new(SimConfig { seed: 8, ..two_days() }).take(5_000).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn without_abuse_is_unlabelled() {
        let config = SimConfig::default().without_abuse();
        assert!(Simulator::new(config).take(20_000).all(|e| e.scenario.is_none()));
    }
}
