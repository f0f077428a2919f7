//! [`LookAlike`]: the honest behaviours of normal traffic that resemble
//! abuse, labelled in the ground truth so that a backtest can say how many
//! honest look-alike users a pack flags, not only how many normal events.

use std::fmt;

/// An honest behaviour that a rule written for abuse could mistake for it.
/// Each names the scenario it resembles; `market.rs` and `actors.rs`
/// generate them, and [`SimEvent::look_alike`](crate::SimEvent) marks the
/// events that show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookAlike {
    /// A couple or a family on one tablet and one card: their bids and
    /// payments (like a shill ring's shared device, a shared card).
    Household,
    /// A winner whose card declines and who retries it after topping up
    /// (like a non-paying bidder's declines, a card tester's).
    RetriedDecline,
    /// A winner whose first card declines and who pays with another (like
    /// a card tester's second card).
    SecondCard,
    /// A winner whose card declines and who does not pay this time (one
    /// episode of what a non-paying bidder does every time).
    UnpaidDecline,
    /// A buyer who disputes one order (like a chargeback abuser).
    HonestChargeback,
    /// A buyer who mistypes their password three or more times, sometimes
    /// resetting it (like credential stuffing on one account).
    TypoStreak,
    /// A login from the buyer's other device (like a takeover's new
    /// device).
    SecondDevice,
    /// A buyer who changes their email and then logs in from a new phone
    /// (like a takeover's credential change and new device).
    EmailThenNewPhone,
    /// A new seller who sets up a payout method at sign-up (like a risky
    /// new seller).
    NewSellerSetup,
    /// An established seller who changes payout method and asks for a
    /// payout (like a takeover's payout change).
    PayoutMethodChange,
    /// Chat that names another app, a number or a site innocently (like an
    /// off-platform scam).
    ChatMention,
    /// Two buyers fighting over one lot, each bidding again as soon as the
    /// other does (like a shill bidding up a lot, or a fast bot).
    BiddingDuel,
}

impl LookAlike {
    /// Every look-alike, in declaration order.
    pub const ALL: [LookAlike; 12] = [
        LookAlike::Household,
        LookAlike::RetriedDecline,
        LookAlike::SecondCard,
        LookAlike::UnpaidDecline,
        LookAlike::HonestChargeback,
        LookAlike::TypoStreak,
        LookAlike::SecondDevice,
        LookAlike::EmailThenNewPhone,
        LookAlike::NewSellerSetup,
        LookAlike::PayoutMethodChange,
        LookAlike::ChatMention,
        LookAlike::BiddingDuel,
    ];

    /// The look-alike's name in ground-truth files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            LookAlike::Household => "household",
            LookAlike::RetriedDecline => "retried_decline",
            LookAlike::SecondCard => "second_card",
            LookAlike::UnpaidDecline => "unpaid_decline",
            LookAlike::HonestChargeback => "honest_chargeback",
            LookAlike::TypoStreak => "typo_streak",
            LookAlike::SecondDevice => "second_device",
            LookAlike::EmailThenNewPhone => "email_then_new_phone",
            LookAlike::NewSellerSetup => "new_seller_setup",
            LookAlike::PayoutMethodChange => "payout_method_change",
            LookAlike::ChatMention => "chat_mention",
            LookAlike::BiddingDuel => "bidding_duel",
        }
    }
}

impl fmt::Display for LookAlike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_no_scenario_uses_them() {
        let mut names: Vec<_> = LookAlike::ALL.iter().map(|l| l.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LookAlike::ALL.len());
        for name in names {
            assert!(crate::Scenario::parse(name).is_none(), "{name}");
            assert_ne!(name, "none");
        }
    }
}
