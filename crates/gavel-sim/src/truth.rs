//! The ground truth of simulated traffic: for each labelled [`SimEvent`],
//! the [`TruthRecord`] that says which [`Scenario`] it belongs to and which
//! entities it names ([`SimEvent::entities`]), written through
//! gavel-recording, which owns the file format (see its crate docs). The
//! events themselves go through gavel-recording's writers as they are.

use std::io::Write;

use gavel_model::Payload;
use gavel_recording::{TruthRecord, write_truth};

use crate::{Result, Scenario, SimEvent};

/// Writes the ground-truth line of `event` if it is labelled (abuse, or an
/// honest look-alike); returns whether it wrote one (other normal traffic
/// gets none).
pub fn write_truth_line<W: Write>(w: W, event: &SimEvent) -> Result<bool> {
    let Some(record) = event.truth() else { return Ok(false) };
    write_truth(w, &record)?;
    Ok(true)
}

impl SimEvent {
    /// The ground-truth record of this event; `None` for normal traffic
    /// that is no honest look-alike.
    pub fn truth(&self) -> Option<TruthRecord> {
        let (scenario, look_alike) = match (self.scenario, self.look_alike) {
            (Some(scenario), _) => (scenario.as_str(), None),
            (None, Some(look_alike)) => ("none", Some(look_alike.as_str().to_string())),
            (None, None) => return None,
        };
        Some(TruthRecord {
            event_id: self.event.event_id.clone(),
            scenario: scenario.to_string(),
            look_alike,
            entities: self.entities().into_iter().map(|(kind, id)| (kind.to_string(), id.to_string())).collect(),
        })
    }

    /// The entities this event names, as `(entity type, id)` pairs sorted by
    /// type: what its ground-truth record lists.
    ///
    /// Entity types are the lower-case names of `gavel.v1.EntityType`
    /// (`user`, `device`, `ip`, `card`, `show`, `listing`, `bid`, `order`,
    /// `payout`, `chat_message`), plus `seller` for a shill ring's seller.
    /// The ids are the acting account, its device and IP, and what the
    /// payload references (a payment's card and order, a bid's bid, listing
    /// and show, a chat message and its show); empty ids are left out. For
    /// an `auction_closed` event, whose acting account is the seller, `user`
    /// is the winner and device and IP are left out. In an
    /// `account_takeover` event `user` is the account under attack and
    /// `device` and `ip` are the attacker's.
    pub fn entities(&self) -> Vec<(&'static str, &str)> {
        let event = &self.event;
        let mut out: Vec<(&'static str, &str)> = Vec::new();
        let mut add = |kind: &'static str, id| push_entity(&mut out, kind, id);
        match &event.payload {
            Some(Payload::AuctionClosed(closed)) => {
                add("user", &closed.winner_id);
                add("listing", &closed.listing_id);
                add("show", &closed.show_id);
            }
            payload => {
                add("user", &event.user_id);
                add("device", event.device_id.as_deref().unwrap_or_default());
                add("ip", event.ip.as_deref().unwrap_or_default());
                match payload {
                    Some(Payload::ShowStarted(p)) => add("show", &p.show_id),
                    Some(Payload::ShowEnded(p)) => add("show", &p.show_id),
                    Some(Payload::ListingCreated(p)) => {
                        add("listing", &p.listing_id);
                        add("show", &p.show_id);
                    }
                    Some(Payload::BidPlaced(p)) => {
                        add("bid", &p.bid_id);
                        add("listing", &p.listing_id);
                        add("show", &p.show_id);
                        if self.scenario == Some(Scenario::ShillRing) {
                            add("seller", &p.seller_id);
                        }
                    }
                    Some(Payload::PaymentAttempted(p)) => {
                        add("card", p.card.as_ref().map_or("", |c| &c.fingerprint));
                        add("order", &p.order_id);
                    }
                    Some(Payload::PaymentAuthorized(p)) => {
                        add("card", p.card.as_ref().map_or("", |c| &c.fingerprint));
                        add("order", &p.order_id);
                    }
                    Some(Payload::PaymentDeclined(p)) => {
                        add("card", p.card.as_ref().map_or("", |c| &c.fingerprint));
                        add("order", &p.order_id);
                    }
                    Some(Payload::RefundIssued(p)) => add("order", &p.order_id),
                    Some(Payload::ChargebackFiled(p)) => add("order", &p.order_id),
                    Some(Payload::PayoutRequested(p)) => add("payout", &p.payout_id),
                    Some(Payload::ChatMessageSent(p)) => {
                        add("chat_message", &p.message_id);
                        add("show", &p.show_id);
                    }
                    _ => {}
                }
            }
        }
        out.sort_unstable();
        out
    }
}

fn push_entity<'a>(out: &mut Vec<(&'static str, &'a str)>, kind: &'static str, id: &'a str) {
    if !id.is_empty() {
        out.push((kind, id));
    }
}
