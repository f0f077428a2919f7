//! Normal marketplace traffic: shows, sudden-death auctions among a show's
//! viewers, payments at close, chat, logins, sign-ups, account changes and
//! payouts, with the honest near-misses listed in the crate docs.
//!
//! A normal draw picks one of these by its share of normal traffic; a few
//! of them queue follow-ups (an auction's close queues the charge, a typo
//! streak its eventual login), which come out before anything new is drawn.

use gavel_model::Payload;
use gavel_model::pb::{
    AccountCreated, AuctionClosed, BidPlaced, ChargebackFiled, ChatMessageSent, EmailChanged, ListingCreated,
    ListingFormat, LoginFailed, LoginSucceeded, Money, PasswordChanged, PaymentAttempted, PaymentAuthorized,
    PaymentDeclined, PayoutMethodChanged, PayoutRequested, RefundIssued, ShowEnded, ShowStarted,
};
use rand::Rng;

use crate::actors;
use crate::{LookAlike, SimConfig, SimEvent, Simulator, Timeline, rate_weight};

/// Share of normal traffic that is bids.
pub(crate) const BID_SHARE: f64 = 0.62;
/// Cumulative edges of the rest of normal traffic: chat 25 %, logins
/// 11.75 %, typo streaks 0.5 %, sign-ups 0.5 %, account changes 0.1 %,
/// payouts 0.115 %.
const CHAT_EDGE: f64 = 0.87;
const LOGIN_EDGE: f64 = 0.9875;
const TYPO_EDGE: f64 = 0.9925;
const SIGN_UP_EDGE: f64 = 0.9975;
const ACCOUNT_CHANGE_EDGE: f64 = 0.9985;
const PAYOUT_EDGE: f64 = 0.99965;
// The rest (0.035 %): a show ends and another starts. With
// `SimConfig::shows_for_rate` live shows (0.62 × rate), a show runs
// 0.62 / 0.00035 s, about 30 minutes of event time, at any rate.

pub(crate) const CATEGORIES: &[&str] =
    &["trading_cards", "sneakers", "comics", "collectibles", "fashion", "electronics"];
const CHAT: &[&str] = &[
    "is that a first edition?",
    "what size is it",
    "🔥🔥🔥",
    "let's goooo",
    "can you show the back?",
    "how much for shipping",
    "gl everyone",
    "next one please",
    "do you take paypal?",
    "ty! 🙏",
];
/// Honest messages that some chat rules still flag: an order number that
/// looks like a phone number, a payment-app name in passing, a link to the
/// card-grading site. One normal chat message in `NEAR_MISS_EVERY`.
const NEAR_MISS_CHAT: &[&str] = &[
    "order 4417 2290 1183 still says processing?",
    "lol my venmo is empty after this show",
    "graded at www.psacard.com, cert in the pic",
    "is this the one from last week? my number was 12",
    "dm me? no I'll just bid lol",
];
const NEAR_MISS_EVERY: u32 = 1_000;
const DECLINE_CODES: &[&str] = &["insufficient_funds", "expired_card", "do_not_honor"];
const EMAIL_DOMAINS: &[&str] = &["gmail.com", "yahoo.com", "outlook.com", "icloud.com"];
/// Share of a declined winner who retries the charge.
const RETRY_AFTER_DECLINE: f64 = 0.6;
/// Share of those retries made with the buyer's other card rather than
/// the same one after topping up.
const RETRY_WITH_SECOND_CARD: f64 = 0.4;
/// Share of email changes followed by a login from a new phone (the
/// buyer changed both at once).
const EMAIL_THEN_NEW_PHONE: f64 = 0.3;
/// One lot in `DUEL_EVERY` is a duel: two buyers, a lot that runs for
/// minutes, each bidding again as soon as the other leads.
const DUEL_EVERY: u32 = 200;
/// Share of normal logins from the buyer's other device.
const SECOND_DEVICE_LOGIN: f64 = 0.005;
/// Share of sign-ups that are sellers.
const SELLER_SIGN_UP: f64 = 0.02;
/// Share of new sellers who set a payout method right away.
const NEW_SELLER_PAYOUT_SETUP: f64 = 0.3;
/// Audiences a buyer is in at once, at most (give or take a crowded draw).
const MAX_WATCHING: u8 = 3;
/// Share of payouts to a payout method changed right before.
const PAYOUT_METHOD_CHANGE: f64 = 0.01;

/// A lot's current leader.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Leader {
    /// An index into the show's audience.
    Viewer(usize),
    /// A non-paying bidder account (see `abuse.rs`).
    NonPayer(usize),
}

/// A lot being auctioned in a show.
#[derive(Debug, Clone)]
pub(crate) struct Lot {
    pub listing_id: u64,
    pub ends_at_ms: i64,
    pub price_minor: i64,
    pub bids: u32,
    pub leader: Option<Leader>,
    /// Indices into the show's audience who are in this bidding war.
    pub bidders: Vec<usize>,
    /// A jump bid scared the room off: nobody else bids on this lot.
    pub frozen: bool,
    /// Two buyers fight over this lot ([`LookAlike::BiddingDuel`]).
    pub duel: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Show {
    pub id: u64,
    pub seller: usize,
    pub category: &'static str,
    pub audience: Vec<usize>,
    pub lot: Lot,
    /// A shill ring works this show: it does not end under the ring.
    pub ringed: bool,
}

/// `event`, marked as the honest look-alike `look_alike` (if any).
fn looks_like(mut event: SimEvent, look_alike: Option<LookAlike>) -> SimEvent {
    event.look_alike = look_alike;
    event
}

/// [`LookAlike::Household`] for a buyer who shares a device and a card.
fn household(buyer: usize) -> Option<LookAlike> {
    actors::shares_household(buyer).then_some(LookAlike::Household)
}

pub(crate) fn usd(amount_minor: i64) -> Option<Money> {
    Some(Money { amount_minor, currency: "USD".into() })
}

impl Simulator {
    /// A random buyer index.
    pub(crate) fn buyer(&mut self) -> usize {
        self.rng.random_range(0..self.config.buyers.max(1))
    }

    /// A buyer to join a show's audience: people watch a show or two at a
    /// time, so one already in `MAX_WATCHING` audiences is passed over
    /// (within a few draws).
    fn viewer(&mut self) -> usize {
        let mut b = self.buyer();
        for _ in 0..8 {
            if self.watching.get(b).is_none_or(|&n| n < MAX_WATCHING) {
                break;
            }
            b = self.buyer();
        }
        if let Some(n) = self.watching.get_mut(b) {
            *n = n.saturating_add(1);
        }
        b
    }

    pub(crate) fn new_lot(&mut self, audience_len: usize) -> Lot {
        let duel = audience_len >= 2 && self.rng.random_ratio(1, DUEL_EVERY);
        let duration_ms =
            if duel { self.rng.random_range(60_000..180_000) } else { self.rng.random_range(5_000..30_000) };
        // Distinct viewers: nobody outbids themselves.
        let audience_len = audience_len.max(1);
        let wars = if duel { 2 } else { self.rng.random_range(2..=8).min(audience_len) };
        let bidders = rand::seq::index::sample(&mut self.rng, audience_len, wars).into_vec();
        Lot {
            listing_id: self.id(),
            ends_at_ms: self.now_ms as i64 + duration_ms,
            price_minor: 100 * self.rng.random_range(1..20),
            bids: 0,
            leader: None,
            bidders,
            frozen: false,
            duel,
        }
    }

    pub(crate) fn new_show(&mut self) -> Show {
        let seller = self.rng.random_range(0..self.config.sellers.max(1));
        // Heavy-tailed: mostly a few dozen, now and then hundreds or
        // thousands (about 180 on average).
        let viewers = match self.rng.random::<f64>() {
            r if r < 0.7 => self.rng.random_range(5..60),
            r if r < 0.95 => self.rng.random_range(60..500),
            _ => self.rng.random_range(500..3_000),
        };
        let audience = (0..viewers).map(|_| self.viewer()).collect::<Vec<_>>();
        let lot = self.new_lot(audience.len());
        let category = CATEGORIES[self.rng.random_range(0..CATEGORIES.len())];
        Show { id: self.id(), seller, category, audience, lot, ringed: false }
    }

    /// One draw of normal traffic.
    pub(crate) fn normal(&mut self) -> SimEvent {
        let s = self.rng.random_range(0..self.shows.len());
        let roll: f64 = self.rng.random();
        match roll {
            r if r < BID_SHARE => self.bid(s),
            r if r < CHAT_EDGE => self.chat(s),
            r if r < LOGIN_EDGE => self.login(),
            r if r < TYPO_EDGE => self.typo_streak(),
            r if r < SIGN_UP_EDGE => self.sign_up(),
            r if r < ACCOUNT_CHANGE_EDGE => self.account_change(),
            r if r < PAYOUT_EDGE => self.seller_payout(),
            _ => self.show_change(s),
        }
    }

    /// A viewer bids on show `s`'s lot; closes the lot first when its timer
    /// ran out.
    fn bid(&mut self, s: usize) -> SimEvent {
        if self.shows[s].lot.ends_at_ms <= self.now_ms as i64 {
            self.close_lot(s);
            // close_lot queued at least the close and a listing.
            return self.queued.pop_front().expect("close_lot queues events");
        }
        if self.shows[s].lot.frozen {
            return self.chat(s);
        }
        let lot = &self.shows[s].lot;
        let mut pick = self.rng.random_range(0..lot.bidders.len());
        if lot.leader == Some(Leader::Viewer(lot.bidders[pick])) {
            // The leader waits; the next one in the war outbids them.
            pick = (pick + 1) % lot.bidders.len();
        }
        let bidder = lot.bidders[pick];
        let duel = lot.duel;
        let buyer = self.shows[s].audience[bidder];
        let bid = self.raise(s, 100);
        self.shows[s].lot.leader = Some(Leader::Viewer(bidder));
        let event = self.emit(&actors::buyer(buyer), Payload::BidPlaced(bid), None);
        let look_alike = if duel { Some(LookAlike::BiddingDuel) } else { household(buyer) };
        looks_like(event, look_alike)
    }

    /// Raises show `s`'s lot by `by` (minor units): the bid that does it.
    pub(crate) fn raise(&mut self, s: usize, by: i64) -> BidPlaced {
        let seq = self.next_seq();
        let show = &mut self.shows[s];
        show.lot.price_minor += by;
        show.lot.bids += 1;
        BidPlaced {
            bid_id: format!("b-{seq}"),
            listing_id: format!("l-{}", show.lot.listing_id),
            show_id: format!("sh-{}", show.id),
            seller_id: format!("s-{}", show.seller),
            amount: usd(show.lot.price_minor),
        }
    }

    /// Closes show `s`'s lot: queues the close, the winner's charge and the
    /// next listing.
    pub(crate) fn close_lot(&mut self, s: usize) {
        let show = &self.shows[s];
        let lot = &show.lot;
        let winner_buyer = match lot.leader {
            Some(Leader::Viewer(i)) => Some(show.audience[i]),
            _ => None,
        };
        let non_payer = match lot.leader {
            Some(Leader::NonPayer(k)) => Some(k),
            _ => None,
        };
        let winner_id = match (winner_buyer, non_payer) {
            (Some(w), _) => format!("u-{w}"),
            (None, Some(k)) => crate::abuse::non_payer_user(k),
            (None, None) => String::new(),
        };
        let (seller, show_id, category, listing_id, price) =
            (show.seller, show.id, show.category, lot.listing_id, lot.price_minor);
        let audience_len = show.audience.len();
        let close = AuctionClosed {
            listing_id: format!("l-{listing_id}"),
            show_id: format!("sh-{show_id}"),
            winner_id,
            final_price: usd(price),
            bid_count: lot.bids,
            bidder_count: lot.bidders.len() as u32 + u32::from(non_payer.is_some()),
        };
        let scenario = non_payer.map(|_| crate::Scenario::NonPayingBidder);
        let event = self.emit(&actors::seller(seller), Payload::AuctionClosed(close), scenario);
        self.queued.push_back(event);
        let order_id = format!("o-{listing_id}");
        if let Some(w) = winner_buyer {
            self.charge_winner(w, seller, &order_id, price);
        }
        if let Some(k) = non_payer {
            self.owe(k, seller, order_id, price);
        }
        let lot = self.new_lot(audience_len);
        let listing = ListingCreated {
            listing_id: format!("l-{}", lot.listing_id),
            show_id: format!("sh-{show_id}"),
            category: category.into(),
            format: ListingFormat::SuddenDeath as i32,
            start_price: usd(lot.price_minor),
            duration_s: ((lot.ends_at_ms - self.now_ms as i64) / 1000) as u32,
        };
        self.shows[s].lot = lot;
        let event = self.emit(&actors::seller(seller), Payload::ListingCreated(listing), None);
        self.queued.push_back(event);
    }

    /// Queues the charge of winner `w`: declined at `decline_rate`, a
    /// decline retried once most of the time (now and then with their
    /// other card); an authorized order is now and then refunded or
    /// (honestly) disputed. The charge's events carry the look-alike they
    /// make.
    fn charge_winner(&mut self, w: usize, seller: usize, order_id: &str, price: i64) {
        let from = self.queued.len();
        let actor = actors::buyer(w);
        let mut card = actors::buyer_card(w);
        let decline_rate = self.config.decline_rate.clamp(0.0, 1.0);
        let mut declined = false;
        let mut second_card = false;
        let mut disputed = false;
        let mut paid = false;
        for attempt in 0..2 {
            let payment_id = format!("p-{}", self.id());
            let attempted = PaymentAttempted {
                payment_id: payment_id.clone(),
                order_id: order_id.into(),
                amount: usd(price),
                card: Some(card.clone()),
                seller_id: format!("s-{seller}"),
            };
            let event = self.emit(&actor, Payload::PaymentAttempted(attempted), None);
            self.queued.push_back(event);
            if self.rng.random_bool(decline_rate) {
                declined = true;
                let code = DECLINE_CODES[self.rng.random_range(0..DECLINE_CODES.len())];
                let declined = PaymentDeclined {
                    payment_id,
                    order_id: order_id.into(),
                    amount: usd(price),
                    card: Some(card.clone()),
                    decline_code: code.into(),
                };
                let event = self.emit(&actor, Payload::PaymentDeclined(declined), None);
                self.queued.push_back(event);
                if attempt == 0 && self.rng.random_bool(RETRY_AFTER_DECLINE) {
                    if self.rng.random_bool(RETRY_WITH_SECOND_CARD) {
                        card = actors::buyer_second_card(w);
                        second_card = true;
                    }
                    continue;
                }
                break;
            }
            paid = true;
            let authorized = PaymentAuthorized {
                payment_id: payment_id.clone(),
                order_id: order_id.into(),
                amount: usd(price),
                card: Some(card.clone()),
                three_ds: false,
            };
            let event = self.emit(&actor, Payload::PaymentAuthorized(authorized), None);
            self.queued.push_back(event);
            let roll: f64 = self.rng.random();
            if roll < self.config.refund_rate {
                let refund = RefundIssued {
                    refund_id: format!("r-{}", self.id()),
                    payment_id,
                    order_id: order_id.into(),
                    amount: usd(price),
                    reason: "item_damaged".into(),
                };
                let event = self.emit(&actor, Payload::RefundIssued(refund), None);
                self.queued.push_back(event);
            } else if roll < self.config.refund_rate + self.config.chargeback_rate {
                disputed = true;
                let chargeback = ChargebackFiled {
                    chargeback_id: format!("cb-{}", self.id()),
                    payment_id,
                    order_id: order_id.into(),
                    amount: usd(price),
                    reason_code: "merchandise_not_received".into(),
                    seller_id: format!("s-{seller}"),
                };
                let event = self.emit(&actor, Payload::ChargebackFiled(chargeback), None);
                self.queued.push_back(event);
            }
            break;
        }
        let look_alike = match (disputed, declined, paid) {
            (true, _, _) => Some(LookAlike::HonestChargeback),
            (false, true, true) if second_card => Some(LookAlike::SecondCard),
            (false, true, true) => Some(LookAlike::RetriedDecline),
            (false, true, false) => Some(LookAlike::UnpaidDecline),
            (false, false, _) => household(w),
        };
        self.label_queued(from, look_alike);
    }

    /// Marks the events queued from index `from` on as `look_alike`.
    fn label_queued(&mut self, from: usize, look_alike: Option<LookAlike>) {
        for event in self.queued.range_mut(from..) {
            event.look_alike = look_alike;
        }
    }

    /// A viewer of show `s` chats.
    pub(crate) fn chat(&mut self, s: usize) -> SimEvent {
        let show = &self.shows[s];
        let viewer = show.audience[self.rng.random_range(0..show.audience.len())];
        let show_id = format!("sh-{}", show.id);
        let near_miss = self.rng.random_ratio(1, NEAR_MISS_EVERY);
        let text = if near_miss {
            NEAR_MISS_CHAT[self.rng.random_range(0..NEAR_MISS_CHAT.len())]
        } else {
            CHAT[self.rng.random_range(0..CHAT.len())]
        };
        let message = ChatMessageSent { message_id: format!("m-{}", self.next_seq()), show_id, text: text.into() };
        let event = self.emit(&actors::buyer(viewer), Payload::ChatMessageSent(message), None);
        looks_like(event, near_miss.then_some(LookAlike::ChatMention))
    }

    /// A buyer logs in, now and then from their other device (which the
    /// new-device rule notices).
    fn login(&mut self) -> SimEvent {
        let b = self.buyer();
        let second = self.rng.random_bool(SECOND_DEVICE_LOGIN);
        let actor = if second { actors::buyer_second_device(b) } else { actors::buyer(b) };
        let method = if self.rng.random_bool(0.2) { "sso" } else { "password" };
        let mfa = self.rng.random_bool(0.3);
        let event = self.emit(&actor, Payload::LoginSucceeded(LoginSucceeded { method: method.into(), mfa }), None);
        looks_like(event, second.then_some(LookAlike::SecondDevice))
    }

    /// A buyer mistypes their password a few times, sometimes resets it,
    /// and gets in. Mostly one or two failures; rarely five or more and a
    /// reset, which is exactly what `password_reset_after_failures` looks
    /// for.
    fn typo_streak(&mut self) -> SimEvent {
        let b = self.buyer();
        let actor = actors::buyer(b);
        let roll: f64 = self.rng.random();
        let (failures, reset_share) = match roll {
            r if r < 0.5 => (1, 0.02),
            r if r < 0.78 => (2, 0.05),
            r if r < 0.92 => (3, 0.15),
            r if r < 0.998 => (4, 0.3),
            _ => (self.rng.random_range(5..=7), 0.4),
        };
        let failed = || Payload::LoginFailed(LoginFailed { reason: "bad_password".into() });
        let look_alike = (failures >= 3).then_some(LookAlike::TypoStreak);
        let from = self.queued.len();
        let first = looks_like(self.emit(&actor, failed(), None), look_alike);
        for _ in 1..failures {
            let event = self.emit(&actor, failed(), None);
            self.queued.push_back(event);
        }
        if self.rng.random_bool(reset_share) {
            let event = self.emit(&actor, Payload::PasswordChanged(PasswordChanged { via_reset: true }), None);
            self.queued.push_back(event);
        }
        let login = LoginSucceeded { method: "password".into(), mfa: false };
        let event = self.emit(&actor, Payload::LoginSucceeded(login), None);
        self.queued.push_back(event);
        self.label_queued(from, look_alike);
        first
    }

    /// A new account signs up; a few are sellers, who may set up a payout
    /// method and list a few cheap items at once.
    fn sign_up(&mut self) -> SimEvent {
        let n = self.id() as usize;
        let domain = EMAIL_DOMAINS[self.rng.random_range(0..EMAIL_DOMAINS.len())];
        let created = AccountCreated {
            email_domain: domain.into(),
            signup_country: "US".into(),
            referral_code: if self.rng.random_bool(0.2) { format!("ref-{}", n % 97) } else { String::new() },
        };
        if !self.rng.random_bool(SELLER_SIGN_UP) {
            let actor = actors::buyer(self.config.buyers + n);
            return self.emit(&actor, Payload::AccountCreated(created), None);
        }
        let actor = actors::seller(self.config.sellers + n);
        let mut first = self.emit(&actor, Payload::AccountCreated(created), None);
        let from = self.queued.len();
        let setup = self.rng.random_bool(NEW_SELLER_PAYOUT_SETUP);
        if setup {
            let changed = self.payout_method("US");
            let event = self.emit(&actor, Payload::PayoutMethodChanged(changed), None);
            self.queued.push_back(event);
        }
        for _ in 0..self.rng.random_range(1..=3) {
            let listing = ListingCreated {
                listing_id: format!("l-{}", self.id()),
                show_id: String::new(),
                category: CATEGORIES[self.rng.random_range(0..CATEGORIES.len())].into(),
                format: ListingFormat::BuyItNow as i32,
                start_price: usd(100 * self.rng.random_range(5..80)),
                duration_s: 0,
            };
            let event = self.emit(&actor, Payload::ListingCreated(listing), None);
            self.queued.push_back(event);
        }
        if setup {
            first.look_alike = Some(LookAlike::NewSellerSetup);
            self.label_queued(from, first.look_alike);
        }
        first
    }

    /// A signed-in buyer changes their password or email; now and then,
    /// after an email change, they log in from a new phone.
    fn account_change(&mut self) -> SimEvent {
        let b = self.buyer();
        let actor = actors::buyer(b);
        if self.rng.random_bool(0.5) {
            return self.emit(&actor, Payload::PasswordChanged(PasswordChanged { via_reset: false }), None);
        }
        let domain = EMAIL_DOMAINS[self.rng.random_range(0..EMAIL_DOMAINS.len())];
        let changed = self.emit(&actor, Payload::EmailChanged(EmailChanged { new_email_domain: domain.into() }), None);
        if !self.rng.random_bool(EMAIL_THEN_NEW_PHONE) {
            return changed;
        }
        let login = LoginSucceeded { method: "password".into(), mfa: self.rng.random_bool(0.3) };
        let event = self.emit(&actors::buyer_new_phone(b), Payload::LoginSucceeded(login), None);
        self.queued.push_back(looks_like(event, Some(LookAlike::EmailThenNewPhone)));
        looks_like(changed, Some(LookAlike::EmailThenNewPhone))
    }

    /// A new payout destination in `country`.
    pub(crate) fn payout_method(&mut self, country: &str) -> PayoutMethodChanged {
        let n = self.id();
        PayoutMethodChanged {
            payout_method_id: format!("pm-{n}"),
            method_type: if self.rng.random_bool(0.7) { "bank_account" } else { "debit_card" }.into(),
            country: country.into(),
            destination_fingerprint: format!("dest-{n}"),
        }
    }

    /// A payout request of `amount_minor` to `payout_method_id`.
    pub(crate) fn payout(&mut self, amount_minor: i64, payout_method_id: String) -> PayoutRequested {
        PayoutRequested { payout_id: format!("po-{}", self.id()), amount: usd(amount_minor), payout_method_id }
    }

    /// An established seller asks for a payout; now and then to a payout
    /// method they have just changed (once, long after sign-up: no rule
    /// minds).
    fn seller_payout(&mut self) -> SimEvent {
        let seller = self.rng.random_range(0..self.config.sellers.max(1));
        let actor = actors::seller(seller);
        let amount = 100 * self.rng.random_range(50..5_000);
        if !self.rng.random_bool(PAYOUT_METHOD_CHANGE) {
            let payout = self.payout(amount, format!("pm-s-{seller}"));
            return self.emit(&actor, Payload::PayoutRequested(payout), None);
        }
        let changed = self.payout_method("US");
        let payout = self.payout(amount, changed.payout_method_id.clone());
        let look_alike = Some(LookAlike::PayoutMethodChange);
        let first = looks_like(self.emit(&actor, Payload::PayoutMethodChanged(changed), None), look_alike);
        let event = self.emit(&actor, Payload::PayoutRequested(payout), None);
        self.queued.push_back(looks_like(event, look_alike));
        first
    }

    /// Show `s` ends and another starts in its place. A show a shill ring
    /// works does not end: its viewers chat instead.
    fn show_change(&mut self, s: usize) -> SimEvent {
        if self.shows[s].ringed {
            return self.chat(s);
        }
        if self.shows.len() > self.shows_wanted() {
            // Fewer shows run at this hour: this one ends, none replaces it.
            let last = self.shows.len() - 1;
            let old = self.shows.swap_remove(s);
            self.abuse.show_moved(last, s);
            return self.show_ended(old);
        }
        let fresh = self.new_show();
        let old = std::mem::replace(&mut self.shows[s], fresh);
        let first = self.show_ended(old);
        let event = self.show_started(s);
        self.queued.push_back(event);
        first
    }

    /// Live shows wanted now: the configured number, or in marketplace
    /// time the number that keeps bidding wars at a human pace at this
    /// hour's rate (evenings run more shows, not faster ones).
    pub(crate) fn shows_wanted(&self) -> usize {
        match self.config.timeline {
            Timeline::Compressed => self.config.live_shows.max(1),
            Timeline::Days => SimConfig::shows_for_rate(self.config.rate_per_sec * rate_weight(self.now_ms)),
        }
    }

    /// In marketplace time, a show starts when the hour wants more than
    /// run: its start, if one is wanted.
    pub(crate) fn start_wanted_show(&mut self) -> Option<SimEvent> {
        if self.config.timeline != Timeline::Days || self.shows.len() >= self.shows_wanted() {
            return None;
        }
        let show = self.new_show();
        self.shows.push(show);
        Some(self.show_started(self.shows.len() - 1))
    }

    /// `old` ended: its audience leaves, and its end.
    fn show_ended(&mut self, old: Show) -> SimEvent {
        for &b in &old.audience {
            if let Some(n) = self.watching.get_mut(b) {
                *n = n.saturating_sub(1);
            }
        }
        let ended = ShowEnded { show_id: format!("sh-{}", old.id), peak_viewers: old.audience.len() as u32 };
        self.emit(&actors::seller(old.seller), Payload::ShowEnded(ended), None)
    }

    /// The start of the show in slot `s`.
    fn show_started(&mut self, s: usize) -> SimEvent {
        let show = &self.shows[s];
        let started = ShowStarted {
            show_id: format!("sh-{}", show.id),
            category: show.category.into(),
            title: "live now".into(),
        };
        let seller = actors::seller(show.seller);
        self.emit(&seller, Payload::ShowStarted(started), None)
    }
}
