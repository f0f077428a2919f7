//! The abuse scenarios: one generator per [`Scenario`], each drawn at its
//! share of events by [`Simulator::inject`].
//!
//! Some scenarios act on the live marketplace (bots, shill rings and
//! non-paying bidders bid on the shows' lots; spam and scams land in their
//! chats); the rest play a script planned when a campaign starts (a
//! takeover, a chargeback spree, a risky new seller, a shared card), one
//! step per draw. Every event an abuser causes is labelled; the account
//! owner's own login before a takeover is not.
//!
//! The numbers below are chosen against the shipped pack's thresholds
//! (`rules/*.yaml`) at the default rate; the crate docs list which rules
//! each scenario is meant to cross.

use std::collections::VecDeque;

use gavel_model::Payload;
use gavel_model::pb::{
    AccountCreated, Card, ChargebackFiled, ChatMessageSent, EmailChanged, ListingCreated, ListingFormat, LoginFailed,
    LoginSucceeded, PasswordChanged, PaymentAttempted, PaymentAuthorized, PaymentDeclined, ShowEnded, ShowStarted,
};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::actors::{self, Actor};
use crate::market::{CATEGORIES, Leader, usd};
use crate::{Scenario, SimConfig, SimEvent, Simulator};

mod disguise;
mod scripts;

use disguise::Disguise;

const SCAM_CHAT: &[&str] = &[
    "cheaper if you pay me on Venmo",
    "DM me for the real price",
    "send it with Zelle and I ship today",
    "text me, paypal friends and family only",
    "pay with Cash App $cardking and skip the fees",
    "call me 415 555 0142 for a better deal",
    // Spelled to dodge plain keyword lists; the pack reads it in `folded()` form.
    "v e n m o me and I ship first",
];
/// Scam accounts, each on its own device.
const SCAMMERS: usize = 20;
const SPAM_CHAT: &[&str] = &[
    "🔥 FREE PACKS giveaway at www.packz-drop.example 🔥",
    "selling PSA 10s cheap, call 415 555 0199",
    "follow my page for 50% off kicks https://kicks-deals.example/live",
    "bulk lots wholesale, whatsapp +44 7700 900123",
];
/// Endings that make each spam message near-same rather than identical.
const SPAM_ENDINGS: &[&str] = &["", " !!", " 🔥", " ‼️", " 💯"];
/// Card-testing rings: a few devices, each cycling through many cards.
const CARD_TESTERS: usize = 3;
const ATTACKER_COUNTRIES: &[&str] = &["RO", "VN", "NG", "BR", "ID", "UA"];
const THROWAWAY_DOMAINS: &[&str] = &["mailinator.com", "guerrillamail.com", "proton.me", "tutanota.com"];
const CHARGEBACK_REASONS: &[&str] = &["merchandise_not_received", "not_as_described", "unrecognized_charge"];
const NEW_SELLER_COUNTRIES: &[&str] = &["US", "US", "GB", "NG", "VN"];

/// One step of a scripted campaign.
#[derive(Debug, Clone)]
struct Planned {
    actor: Actor,
    payload: Payload,
    scenario: Option<Scenario>,
}

impl Planned {
    fn labelled(actor: &Actor, payload: Payload, scenario: Scenario) -> Planned {
        Planned { actor: actor.clone(), payload, scenario: Some(scenario) }
    }
}

/// The scenarios played from a script planned when a campaign starts.
#[derive(Debug, Clone, Copy)]
enum Script {
    Takeover,
    Chargebacks,
    NewSeller,
    SharedCard,
}

/// A shill ring: a seller's alternate accounts on the seller's device.
#[derive(Debug, Clone)]
struct Ring {
    /// The show slot the ring works, while it holds show `show_id`.
    slot: usize,
    show_id: u64,
    seller: usize,
    accounts: Vec<String>,
    remaining: u32,
}

#[derive(Debug, Clone)]
struct Spammer {
    actor: Actor,
    text: &'static str,
    sent: usize,
    remaining: u32,
}

/// The state of every running campaign.
#[derive(Debug)]
pub(crate) struct Campaigns {
    /// Campaigns started so far: numbers the accounts of new ones.
    started: u64,
    rings: Vec<Option<Ring>>,
    spammers: Vec<Option<Spammer>>,
    /// Failed charges of lots non-paying bidders won, in order.
    owed: VecDeque<Planned>,
    takeover: VecDeque<Planned>,
    chargebacks: VecDeque<Planned>,
    new_seller: VecDeque<Planned>,
    shared_card: VecDeque<Planned>,
}

impl Campaigns {
    pub(crate) fn new(config: &SimConfig) -> Campaigns {
        Campaigns {
            started: 0,
            rings: vec![None; config.shill_rings.max(1)],
            spammers: vec![None; config.chat_spammers.max(1)],
            owed: VecDeque::new(),
            takeover: VecDeque::new(),
            chargebacks: VecDeque::new(),
            new_seller: VecDeque::new(),
            shared_card: VecDeque::new(),
        }
    }

    /// The show in slot `from` moved to slot `to` (the show in `to`
    /// ended and nothing replaced it): rings working it follow it.
    pub(crate) fn show_moved(&mut self, from: usize, to: usize) {
        for ring in self.rings.iter_mut().flatten() {
            if ring.slot == from {
                ring.slot = to;
            }
        }
    }

    fn next_campaign(&mut self) -> u64 {
        self.started += 1;
        self.started
    }
}

/// The account id of non-paying bidder `k`.
pub(crate) fn non_payer_user(k: usize) -> String {
    format!("npb-{k}")
}

fn non_payer(k: usize) -> Actor {
    Actor {
        user: non_payer_user(k),
        device: format!("npbdev-{k}"),
        ip: actors::residential_ip(5_000_000 + k),
        country: "US",
    }
}

impl Simulator {
    /// The next event of `scenario`.
    pub(crate) fn inject(&mut self, scenario: Scenario) -> SimEvent {
        match scenario {
            Scenario::BidBot => self.bot_bid(),
            Scenario::OffPlatformScam => self.scam_chat(),
            Scenario::CardTesting => self.card_test(),
            Scenario::ShillRing => self.shill_bid(),
            Scenario::ChatSpam => self.spam_chat(),
            Scenario::NonPayingBidder => self.non_paying_bidder(),
            Scenario::AccountTakeover => self.scripted(Script::Takeover),
            Scenario::ChargebackAbuser => self.scripted(Script::Chargebacks),
            Scenario::RiskyNewSeller => self.scripted(Script::NewSeller),
            Scenario::SharedCard => self.scripted(Script::SharedCard),
        }
    }

    /// The next step of `script`, planning a new campaign when the last one
    /// is done.
    fn scripted(&mut self, script: Script) -> SimEvent {
        if self.script(script).is_empty() {
            let plan = match script {
                Script::Takeover => self.plan_takeover(),
                Script::Chargebacks => self.plan_chargebacks(),
                Script::NewSeller => self.plan_new_seller(),
                Script::SharedCard => self.plan_shared_card(),
            };
            *self.script(script) = plan;
        }
        // Every plan has steps, and the script was refilled when empty.
        let step = self.script(script).pop_front().expect("plans are never empty");
        self.emit(&step.actor, step.payload, step.scenario)
    }

    fn script(&mut self, script: Script) -> &mut VecDeque<Planned> {
        match script {
            Script::Takeover => &mut self.abuse.takeover,
            Script::Chargebacks => &mut self.abuse.chargebacks,
            Script::NewSeller => &mut self.abuse.new_seller,
            Script::SharedCard => &mut self.abuse.shared_card,
        }
    }

    /// A bot bid on a random show's lot: bots never stop to think, so at
    /// the default share each bot bids about a dozen times a second.
    fn bot_bid(&mut self) -> SimEvent {
        let bot = self.rng.random_range(0..self.config.bid_bots.max(1));
        let s = self.rng.random_range(0..self.shows.len());
        let bid = self.raise(s, 100);
        let actor = Actor {
            user: format!("bot-{bot}"),
            device: format!("botdev-{bot}"),
            ip: format!("198.51.100.{}", 10 + bot % 240),
            country: "US",
        };
        self.emit(&actor, Payload::BidPlaced(bid), Some(Scenario::BidBot))
    }

    fn scam_chat(&mut self) -> SimEvent {
        let s = self.rng.random_range(0..self.shows.len());
        let scammer = self.rng.random_range(0..SCAMMERS);
        let seq = self.next_seq();
        let text = SCAM_CHAT[self.rng.random_range(0..SCAM_CHAT.len())];
        let message = ChatMessageSent {
            message_id: format!("m-{seq}"),
            show_id: format!("sh-{}", self.shows[s].id),
            text: Disguise::pick(self.config.seed, seq).apply(text),
        };
        let actor = Actor {
            user: format!("scam-{scammer}"),
            device: format!("scamdev-{scammer}"),
            ip: actors::residential_ip(3_000_000 + scammer),
            country: "US",
        };
        self.emit(&actor, Payload::ChatMessageSent(message), Some(Scenario::OffPlatformScam))
    }

    /// A small attempt with a fresh card, mostly declined right after.
    fn card_test(&mut self) -> SimEvent {
        let tester = self.rng.random_range(0..CARD_TESTERS);
        let n = self.id();
        let bin = if self.rng.random_bool(0.7) { "411111" } else { actors::bin(n as usize) };
        let card = Some(Card { fingerprint: format!("fp-test-{n}"), bin: bin.into(), country: "BR".into() });
        let amount = usd(self.rng.random_range(50..400));
        let (payment_id, order_id) = (format!("p-ct-{n}"), format!("o-ct-{n}"));
        let attempt = PaymentAttempted {
            payment_id: payment_id.clone(),
            order_id: order_id.clone(),
            amount: amount.clone(),
            card: card.clone(),
            seller_id: String::new(),
        };
        let actor = Actor {
            user: format!("ct-{tester}-{}", n % 7),
            device: format!("ctdev-{tester}"),
            ip: format!("203.0.113.{}", 10 + tester),
            country: "BR",
        };
        let attempt = self.emit(&actor, Payload::PaymentAttempted(attempt), Some(Scenario::CardTesting));
        if self.rng.random_bool(0.85) {
            let declined = PaymentDeclined { payment_id, order_id, amount, card, decline_code: "do_not_honor".into() };
            let follow = self.emit(&actor, Payload::PaymentDeclined(declined), Some(Scenario::CardTesting));
            self.queued.push_back(follow);
        }
        attempt
    }

    /// A shill bid: one of a ring's accounts, on the ring seller's device
    /// and network, bids up the lot of the show the ring works (now and
    /// then somewhere else, to look like a buyer). Rings never win; they
    /// dissolve after their bids and a new ring forms on another show.
    fn shill_bid(&mut self) -> SimEvent {
        let r = self.rng.random_range(0..self.abuse.rings.len());
        let alive = match &self.abuse.rings[r] {
            Some(ring) => ring.remaining > 0 && self.shows.get(ring.slot).is_some_and(|s| s.id == ring.show_id),
            None => false,
        };
        if !alive {
            if let Some(old) = self.abuse.rings[r].take()
                && let Some(show) = self.shows.get_mut(old.slot)
                && show.id == old.show_id
            {
                show.ringed = false;
            }
            let mut slot = self.rng.random_range(0..self.shows.len());
            for _ in 0..16 {
                if !self.shows[slot].ringed {
                    break;
                }
                slot = self.rng.random_range(0..self.shows.len());
            }
            self.shows[slot].ringed = true;
            let n = self.abuse.next_campaign();
            let size = self.rng.random_range(3..=5);
            self.abuse.rings[r] = Some(Ring {
                slot,
                show_id: self.shows[slot].id,
                seller: self.shows[slot].seller,
                accounts: (0..size).map(|k| format!("shill-{n}-{k}")).collect(),
                remaining: self.rng.random_range(40..=80),
            });
        }
        // Just made sure the ring exists.
        let ring = self.abuse.rings[r].as_mut().expect("ring formed above");
        ring.remaining -= 1;
        let (ring_slot, seller) = (ring.slot, ring.seller);
        let user = ring.accounts[self.rng.random_range(0..ring.accounts.len())].clone();
        let slot = if self.rng.random_bool(0.05) { self.rng.random_range(0..self.shows.len()) } else { ring_slot };
        let closed = self.shows[slot].lot.ends_at_ms <= self.now_ms as i64;
        if closed {
            self.close_lot(slot);
        }
        let bid = self.raise(slot, 100);
        let actor = Actor { user, ..actors::seller(seller) };
        let event = self.emit(&actor, Payload::BidPlaced(bid), Some(Scenario::ShillRing));
        if closed { self.after_queued(event) } else { event }
    }

    /// One message of a spammer: the same text, give or take an ending,
    /// into a random show, until the account has sent its lot.
    fn spam_chat(&mut self) -> SimEvent {
        let r = self.rng.random_range(0..self.abuse.spammers.len());
        if self.abuse.spammers[r].as_ref().is_none_or(|s| s.remaining == 0) {
            let n = self.abuse.next_campaign() as usize;
            self.abuse.spammers[r] = Some(Spammer {
                actor: Actor {
                    user: format!("spam-{n}"),
                    device: format!("spamdev-{n}"),
                    ip: actors::residential_ip(4_000_000 + n),
                    country: "US",
                },
                text: SPAM_CHAT[self.rng.random_range(0..SPAM_CHAT.len())],
                sent: 0,
                remaining: self.rng.random_range(150..=300),
            });
        }
        let s = self.rng.random_range(0..self.shows.len());
        let show_id = format!("sh-{}", self.shows[s].id);
        let message_id = format!("m-{}", self.next_seq());
        // Just made sure the spammer exists.
        let spammer = self.abuse.spammers[r].as_mut().expect("spammer set above");
        spammer.remaining -= 1;
        spammer.sent += 1;
        let text = format!("{}{}", spammer.text, SPAM_ENDINGS[spammer.sent % SPAM_ENDINGS.len()]);
        let actor = spammer.actor.clone();
        let message = ChatMessageSent { message_id, show_id, text };
        self.emit(&actor, Payload::ChatMessageSent(message), Some(Scenario::ChatSpam))
    }

    /// A non-paying bidder's next step: a failed charge of a lot they won,
    /// if one is owed; otherwise a jump bid in a lot's last seconds that
    /// wins it (the room stops bidding, so the lot closes with them as
    /// winner).
    fn non_paying_bidder(&mut self) -> SimEvent {
        if let Some(step) = self.abuse.owed.pop_front() {
            return self.emit(&step.actor, step.payload, step.scenario);
        }
        // Snipe: of a few lots, the one closest to its end that is not
        // already taken.
        let now = self.now_ms as i64;
        let mut s = self.rng.random_range(0..self.shows.len());
        for _ in 0..8 {
            let c = self.rng.random_range(0..self.shows.len());
            let (lot, best) = (&self.shows[c].lot, &self.shows[s].lot);
            let open = !lot.frozen && lot.ends_at_ms > now + 1_000;
            let best_open = !best.frozen && best.ends_at_ms > now + 1_000;
            if open && (!best_open || lot.ends_at_ms < best.ends_at_ms) {
                s = c;
            }
        }
        let closed = self.shows[s].lot.ends_at_ms <= now;
        if closed {
            self.close_lot(s);
        }
        let k = self.rng.random_range(0..self.config.non_paying_bidders.max(1));
        let jump = 100 * self.rng.random_range(25..=100);
        let bid = self.raise(s, jump);
        let lot = &mut self.shows[s].lot;
        lot.leader = Some(Leader::NonPayer(k));
        lot.frozen = true;
        let event = self.emit(&non_payer(k), Payload::BidPlaced(bid), Some(Scenario::NonPayingBidder));
        if closed { self.after_queued(event) } else { event }
    }

    /// Non-paying bidder `k` won `order_id`: the charge at close and its
    /// retries all fail, 2 or 3 of them.
    pub(crate) fn owe(&mut self, k: usize, seller: usize, order_id: String, price: i64) {
        let actor = non_payer(k);
        let card = Card { fingerprint: format!("fp-npb-{k}"), bin: actors::bin(k).into(), country: "US".into() };
        for _ in 0..self.rng.random_range(2..=3) {
            let payment_id = format!("p-{}", self.id());
            let attempted = PaymentAttempted {
                payment_id: payment_id.clone(),
                order_id: order_id.clone(),
                amount: usd(price),
                card: Some(card.clone()),
                seller_id: format!("s-{seller}"),
            };
            let code = if self.rng.random_bool(0.7) { "insufficient_funds" } else { "do_not_honor" };
            let declined = PaymentDeclined {
                payment_id,
                order_id: order_id.clone(),
                amount: usd(price),
                card: Some(card.clone()),
                decline_code: code.into(),
            };
            let scenario = Scenario::NonPayingBidder;
            self.abuse.owed.push_back(Planned::labelled(&actor, Payload::PaymentAttempted(attempted), scenario));
            self.abuse.owed.push_back(Planned::labelled(&actor, Payload::PaymentDeclined(declined), scenario));
        }
    }
}
