//! Synthetic live-shopping marketplace traffic, with labelled fraud.
//!
//! [`Simulator`] is an iterator of [`SimEvent`]s: sellers run shows, lots are
//! auctioned in seconds-long bidding wars among a show's viewers, winners pay
//! by card (some declined), viewers chat, users log in. Mixed in, at a
//! configurable share of traffic, are bid bots: accounts bidding several
//! times a second at machine-regular intervals, each event labelled with its
//! [`Scenario`] so detection can be measured against ground truth.
//!
//! Event time advances by `1 / rate` per event from a given start, so the
//! same seed and config give the same events, byte for byte. The crate does
//! no I/O; callers send the events wherever they like.

mod topics;

use std::collections::VecDeque;

use gavel_model::pb::{
    AccountCreated, AuctionClosed, BidPlaced, Card, ChatMessageSent, ListingCreated, ListingFormat, LoginFailed,
    LoginSucceeded, Money, PaymentAttempted, PaymentAuthorized, PaymentDeclined, ShowEnded, ShowStarted,
};
use gavel_model::{Event, Payload, timestamp_from_ms};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
pub use topics::{MARKETPLACE_TOPICS, topic_for};

/// A labelled abuse pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// An account bidding faster than a person.
    BidBot,
    /// Chat pushing buyers to pay or talk off the platform.
    OffPlatformScam,
    /// Bursts of small payment attempts with many cards from one device.
    CardTesting,
}

impl Scenario {
    /// The scenario's name in ground-truth files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::BidBot => "bid_bot",
            Scenario::OffPlatformScam => "off_platform_scam",
            Scenario::CardTesting => "card_testing",
        }
    }
}

/// One generated event and, for injected abuse, its scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// The event.
    pub event: Event,
    /// Which scenario produced it; `None` for normal traffic.
    pub scenario: Option<Scenario>,
}

/// Simulator parameters.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed: the same seed and config give the same events.
    pub seed: u64,
    /// Events per second of event time.
    pub rate_per_sec: f64,
    /// Event time of the first event, in milliseconds since the epoch.
    pub start_ms: i64,
    /// Number of buyer accounts.
    pub buyers: usize,
    /// Number of seller accounts.
    pub sellers: usize,
    /// Shows live at once. About one bid per show per second keeps bidding
    /// wars at a human pace: pass [`SimConfig::shows_for_rate`].
    pub live_shows: usize,
    /// Share of all events that are bid-bot bids.
    pub bid_bot_share: f64,
    /// Number of bot accounts.
    pub bid_bots: usize,
    /// Share of payments the issuer declines.
    pub decline_rate: f64,
    /// Share of all events that are scam messages in chat.
    pub scam_chat_share: f64,
    /// Share of all events that are card-testing attempts.
    pub card_testing_share: f64,
}

impl SimConfig {
    /// The number of live shows that gives about one bid per show per second
    /// at `rate_per_sec` events per second.
    pub fn shows_for_rate(rate_per_sec: f64) -> usize {
        ((rate_per_sec * BID_SHARE) as usize).max(4)
    }
}

/// Share of normal traffic that is bids.
const BID_SHARE: f64 = 0.62;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 7,
            rate_per_sec: 5_000.0,
            start_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            buyers: 50_000,
            sellers: 2_000,
            live_shows: SimConfig::shows_for_rate(5_000.0),
            bid_bot_share: 0.01,
            bid_bots: 4,
            decline_rate: 0.04,
            scam_chat_share: 0.001,
            card_testing_share: 0.002,
        }
    }
}

const CATEGORIES: &[&str] = &["trading_cards", "sneakers", "comics", "collectibles", "fashion", "electronics"];
const CHAT: &[&str] = &[
    "is that a first edition?",
    "what size is it",
    "🔥🔥🔥",
    "let's goooo",
    "can you show the back?",
    "how much for shipping",
    "gl everyone",
    "next one please",
];
const DECLINE_CODES: &[&str] = &["insufficient_funds", "expired_card", "do_not_honor"];
const SCAM_CHAT: &[&str] = &[
    "cheaper if you pay me on Venmo",
    "DM me for the real price",
    "send it with Zelle and I ship today",
    "text me, paypal friends and family only",
];
/// Card-testing rings: a few devices, each cycling through many cards.
const CARD_TESTERS: usize = 3;

/// A lot being auctioned in a show.
#[derive(Debug, Clone)]
struct Lot {
    listing_id: u64,
    ends_at_ms: i64,
    price_minor: i64,
    bids: u32,
    leader: Option<usize>,
    /// Indices into the show's audience who are in this bidding war.
    bidders: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Show {
    id: u64,
    seller: usize,
    category: &'static str,
    audience: Vec<usize>,
    lot: Lot,
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
    shows: Vec<Show>,
    queued: VecDeque<SimEvent>,
}

impl Simulator {
    /// A simulator with `config`.
    pub fn new(config: SimConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let step_ms = 1_000.0 / config.rate_per_sec.max(0.001);
        let mut sim = Simulator {
            now_ms: config.start_ms as f64,
            step_ms,
            rng,
            seq: 0,
            next_id: 0,
            shows: Vec::new(),
            queued: VecDeque::new(),
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

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn buyer(&mut self) -> usize {
        self.rng.random_range(0..self.config.buyers.max(1))
    }

    fn new_lot(&mut self, audience_len: usize) -> Lot {
        let duration_ms = self.rng.random_range(5_000..30_000);
        let wars = self.rng.random_range(2..=8.min(audience_len.max(2)));
        let bidders = (0..wars).map(|_| self.rng.random_range(0..audience_len.max(1))).collect();
        Lot {
            listing_id: self.id(),
            ends_at_ms: self.now_ms as i64 + duration_ms,
            price_minor: 100 * self.rng.random_range(1..20),
            bids: 0,
            leader: None,
            bidders,
        }
    }

    fn new_show(&mut self) -> Show {
        let seller = self.rng.random_range(0..self.config.sellers.max(1));
        let viewers = self.rng.random_range(5..60);
        let audience = (0..viewers).map(|_| self.buyer()).collect::<Vec<_>>();
        let lot = self.new_lot(audience.len());
        let category = CATEGORIES[self.rng.random_range(0..CATEGORIES.len())];
        Show { id: self.id(), seller, category, audience, lot }
    }

    fn envelope(&mut self, user: String, device: String, payload: Payload) -> Event {
        self.seq += 1;
        let ip_host = self.rng.random_range(1..255);
        Event {
            event_id: format!("sim-{}-{}", self.config.seed, self.seq),
            occurred_at: Some(timestamp_from_ms(self.now_ms as i64)),
            user_id: user,
            device_id: Some(device),
            ip: Some(format!("198.51.100.{ip_host}")),
            session_id: None,
            country: Some("US".into()),
            payload: Some(payload),
        }
    }

    fn user_event(&mut self, buyer: usize, payload: Payload) -> SimEvent {
        let event = self.envelope(format!("u-{buyer}"), format!("d-{buyer}"), payload);
        SimEvent { event, scenario: None }
    }

    fn seller_event(&mut self, seller: usize, payload: Payload) -> SimEvent {
        let event = self.envelope(format!("s-{seller}"), format!("sd-{seller}"), payload);
        SimEvent { event, scenario: None }
    }

    fn usd(amount_minor: i64) -> Option<Money> {
        Some(Money { amount_minor, currency: "USD".into() })
    }

    /// Closes a show's lot, queues its close, payment and the next listing.
    fn close_lot(&mut self, s: usize) {
        let show = self.shows[s].clone();
        let winner = show.lot.leader.map(|i| show.audience[i]);
        let close = AuctionClosed {
            listing_id: format!("l-{}", show.lot.listing_id),
            show_id: format!("sh-{}", show.id),
            winner_id: winner.map(|w| format!("u-{w}")).unwrap_or_default(),
            final_price: Self::usd(show.lot.price_minor),
            bid_count: show.lot.bids,
            bidder_count: show.lot.bidders.len() as u32,
        };
        let event = self.seller_event(show.seller, Payload::AuctionClosed(close));
        self.queued.push_back(event);
        if let Some(w) = winner {
            let payment_id = format!("p-{}", self.id());
            let order_id = format!("o-{}", show.lot.listing_id);
            let card = Some(Card { fingerprint: format!("fp-{w}"), bin: "424242".into(), country: "US".into() });
            let amount = Self::usd(show.lot.price_minor);
            let attempt = PaymentAttempted {
                payment_id: payment_id.clone(),
                order_id: order_id.clone(),
                amount: amount.clone(),
                card: card.clone(),
                seller_id: format!("s-{}", show.seller),
            };
            let e = self.user_event(w, Payload::PaymentAttempted(attempt));
            self.queued.push_back(e);
            let outcome = if self.rng.random_bool(self.config.decline_rate.clamp(0.0, 1.0)) {
                let code = DECLINE_CODES[self.rng.random_range(0..DECLINE_CODES.len())];
                Payload::PaymentDeclined(PaymentDeclined {
                    payment_id,
                    order_id,
                    amount,
                    card,
                    decline_code: code.into(),
                })
            } else {
                Payload::PaymentAuthorized(PaymentAuthorized { payment_id, order_id, amount, card, three_ds: false })
            };
            let e = self.user_event(w, outcome);
            self.queued.push_back(e);
        }
        let lot = self.new_lot(show.audience.len());
        let listing = ListingCreated {
            listing_id: format!("l-{}", lot.listing_id),
            show_id: format!("sh-{}", show.id),
            category: show.category.into(),
            format: ListingFormat::SuddenDeath as i32,
            start_price: Self::usd(lot.price_minor),
            duration_s: ((lot.ends_at_ms - self.now_ms as i64) / 1000) as u32,
        };
        self.shows[s].lot = lot;
        let e = self.seller_event(show.seller, Payload::ListingCreated(listing));
        self.queued.push_back(e);
    }

    fn bid(&mut self, s: usize) -> SimEvent {
        if self.shows[s].lot.ends_at_ms <= self.now_ms as i64 {
            self.close_lot(s);
            // close_lot queued at least the close and a listing.
            return self.queued.pop_front().expect("close_lot queues events");
        }
        let show = &mut self.shows[s];
        let lot = &mut show.lot;
        let pick = self.rng.random_range(0..lot.bidders.len());
        let bidder = lot.bidders[pick];
        lot.price_minor += 100;
        lot.bids += 1;
        lot.leader = Some(bidder);
        let buyer = show.audience[bidder];
        let bid = BidPlaced {
            bid_id: format!("b-{}", self.seq + 1),
            listing_id: format!("l-{}", lot.listing_id),
            show_id: format!("sh-{}", show.id),
            seller_id: format!("s-{}", show.seller),
            amount: Self::usd(lot.price_minor),
        };
        self.user_event(buyer, Payload::BidPlaced(bid))
    }

    fn bot_bid(&mut self) -> SimEvent {
        let bot = self.rng.random_range(0..self.config.bid_bots.max(1));
        let s = self.rng.random_range(0..self.shows.len());
        let show = &mut self.shows[s];
        show.lot.price_minor += 100;
        show.lot.bids += 1;
        let bid = BidPlaced {
            bid_id: format!("b-{}", self.seq + 1),
            listing_id: format!("l-{}", show.lot.listing_id),
            show_id: format!("sh-{}", show.id),
            seller_id: format!("s-{}", show.seller),
            amount: Self::usd(show.lot.price_minor),
        };
        let event = self.envelope(format!("bot-{bot}"), format!("botdev-{bot}"), Payload::BidPlaced(bid));
        SimEvent { event, scenario: Some(Scenario::BidBot) }
    }

    fn scam_chat(&mut self) -> SimEvent {
        let s = self.rng.random_range(0..self.shows.len());
        let scammer = self.rng.random_range(0..20);
        let message = ChatMessageSent {
            message_id: format!("m-{}", self.seq + 1),
            show_id: format!("sh-{}", self.shows[s].id),
            text: SCAM_CHAT[self.rng.random_range(0..SCAM_CHAT.len())].into(),
        };
        let event =
            self.envelope(format!("scam-{scammer}"), format!("scamdev-{scammer}"), Payload::ChatMessageSent(message));
        SimEvent { event, scenario: Some(Scenario::OffPlatformScam) }
    }

    /// A small attempt with a fresh card, mostly declined right after.
    fn card_test(&mut self) -> SimEvent {
        let tester = self.rng.random_range(0..CARD_TESTERS);
        let n = self.id();
        let card = Some(Card { fingerprint: format!("fp-test-{n}"), bin: "411111".into(), country: "BR".into() });
        let amount = Self::usd(self.rng.random_range(50..400));
        let (payment_id, order_id) = (format!("p-ct-{n}"), format!("o-ct-{n}"));
        let attempt = PaymentAttempted {
            payment_id: payment_id.clone(),
            order_id: order_id.clone(),
            amount: amount.clone(),
            card: card.clone(),
            seller_id: String::new(),
        };
        let user = format!("ct-{tester}-{}", n % 7);
        let device = format!("ctdev-{tester}");
        if self.rng.random_bool(0.85) {
            let declined = PaymentDeclined { payment_id, order_id, amount, card, decline_code: "do_not_honor".into() };
            let mut follow = SimEvent {
                event: self.envelope(user.clone(), device.clone(), Payload::PaymentDeclined(declined)),
                scenario: Some(Scenario::CardTesting),
            };
            follow.event.ip = Some(format!("203.0.113.{}", 10 + tester));
            self.queued.push_back(follow);
        }
        let mut event = self.envelope(user, device, Payload::PaymentAttempted(attempt));
        event.ip = Some(format!("203.0.113.{}", 10 + tester));
        SimEvent { event, scenario: Some(Scenario::CardTesting) }
    }

    fn generate(&mut self) -> SimEvent {
        let roll: f64 = self.rng.random();
        let bots = self.config.bid_bot_share.clamp(0.0, 1.0);
        let scams = bots + self.config.scam_chat_share.clamp(0.0, 1.0);
        let testers = scams + self.config.card_testing_share.clamp(0.0, 1.0);
        if roll < bots {
            return self.bot_bid();
        }
        if roll < scams {
            return self.scam_chat();
        }
        if roll < testers {
            return self.card_test();
        }
        let s = self.rng.random_range(0..self.shows.len());
        let roll: f64 = self.rng.random();
        match roll {
            r if r < BID_SHARE => self.bid(s),
            r if r < 0.87 => {
                let show = &self.shows[s];
                let viewer = show.audience[self.rng.random_range(0..show.audience.len())];
                let message = ChatMessageSent {
                    message_id: format!("m-{}", self.seq + 1),
                    show_id: format!("sh-{}", show.id),
                    text: CHAT[self.rng.random_range(0..CHAT.len())].into(),
                };
                self.user_event(viewer, Payload::ChatMessageSent(message))
            }
            r if r < 0.95 => {
                let buyer = self.buyer();
                self.user_event(
                    buyer,
                    Payload::LoginSucceeded(LoginSucceeded { method: "password".into(), mfa: false }),
                )
            }
            r if r < 0.97 => {
                let buyer = self.buyer();
                self.user_event(buyer, Payload::LoginFailed(LoginFailed { reason: "bad_password".into() }))
            }
            r if r < 0.98 => {
                let buyer = self.buyer();
                let created = AccountCreated {
                    email_domain: "example.com".into(),
                    signup_country: "US".into(),
                    referral_code: String::new(),
                };
                self.user_event(buyer, Payload::AccountCreated(created))
            }
            _ => {
                // A show ends and another starts in its place.
                let old = self.shows[s].clone();
                let fresh = self.new_show();
                let started = ShowStarted {
                    show_id: format!("sh-{}", fresh.id),
                    category: fresh.category.into(),
                    title: "live now".into(),
                };
                let e = self.seller_event(fresh.seller, Payload::ShowStarted(started));
                self.queued.push_back(e);
                self.shows[s] = fresh;
                let ended = ShowEnded { show_id: format!("sh-{}", old.id), peak_viewers: old.audience.len() as u32 };
                self.seller_event(old.seller, Payload::ShowEnded(ended))
            }
        }
    }
}

impl Iterator for Simulator {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        self.now_ms += self.step_ms;
        let event = match self.queued.pop_front() {
            Some(queued) => {
                let mut queued = queued;
                // Queued follow-ups happen now, not when they were planned.
                queued.event.occurred_at = Some(timestamp_from_ms(self.now_ms as i64));
                queued
            }
            None => self.generate(),
        };
        Some(event)
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
        let mut bots = 0;
        let mut scenarios: HashMap<&str, usize> = HashMap::new();
        let mut last = 0;
        for e in Simulator::new(config.clone()).take(100_000) {
            *kinds.entry(e.event.kind().unwrap()).or_default() += 1;
            bots += usize::from(e.scenario == Some(Scenario::BidBot));
            if let Some(scenario) = e.scenario {
                *scenarios.entry(scenario.as_str()).or_default() += 1;
            }
            let t = gavel_model::event_time_ms(&e.event).unwrap();
            assert!(t >= last, "event time never goes back");
            last = t;
        }
        let bids = kinds[&EventKind::BidPlaced];
        assert!(bids > 50_000 && bids < 70_000, "bids: {bids}");
        assert!(kinds[&EventKind::ChatMessageSent] > 15_000);
        assert!(kinds[&EventKind::AuctionClosed] > 100);
        assert!(kinds[&EventKind::PaymentDeclined] > 0);
        assert!(kinds[&EventKind::PaymentAuthorized] > kinds[&EventKind::PaymentDeclined] * 5);
        assert!((500..1_500).contains(&bots), "bot bids: {bots}");
        assert!((50..150).contains(&scenarios["off_platform_scam"]), "{scenarios:?}");
        // Attempts at 0.2 % plus their declines.
        assert!((250..500).contains(&scenarios["card_testing"]), "{scenarios:?}");
        // 100k events at 5k/s span 20 s of event time.
        assert!((last - config.start_ms - 20_000).abs() < 10);
    }
}
