//! [`Scenario`]: the abuse patterns the simulator injects, one per pattern
//! of the shipped rule pack, with the snake_case names ground-truth files
//! and reports use.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A labelled abuse pattern. Each is injected at its own share of traffic
/// (see [`SimConfig`](crate::SimConfig)); the crate docs say what each one
/// looks like and which rules it is built to trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// An account bidding faster than a person.
    BidBot,
    /// Chat pushing buyers to pay or talk off the platform.
    OffPlatformScam,
    /// Bursts of small payment attempts with many cards from one device.
    CardTesting,
    /// A seller's alternate accounts, on the seller's own device, bidding up
    /// that seller's lots.
    ShillRing,
    /// Credential stuffing from one IP, then a takeover: login from a new
    /// device, password and email change, payout change, a purchase.
    AccountTakeover,
    /// The same message flooded into chat across many shows.
    ChatSpam,
    /// An account that wins auctions and never pays.
    NonPayingBidder,
    /// A buyer who disputes most of what they buy.
    ChargebackAbuser,
    /// A days-old seller listing high-value items and churning payout
    /// methods.
    RiskyNewSeller,
    /// One card used by many accounts.
    SharedCard,
}

impl Scenario {
    /// Every scenario, in the order the simulator draws them.
    pub const ALL: [Scenario; 10] = [
        Scenario::BidBot,
        Scenario::OffPlatformScam,
        Scenario::CardTesting,
        Scenario::ShillRing,
        Scenario::AccountTakeover,
        Scenario::ChatSpam,
        Scenario::NonPayingBidder,
        Scenario::ChargebackAbuser,
        Scenario::RiskyNewSeller,
        Scenario::SharedCard,
    ];

    /// The scenario's name in ground-truth files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::BidBot => "bid_bot",
            Scenario::OffPlatformScam => "off_platform_scam",
            Scenario::CardTesting => "card_testing",
            Scenario::ShillRing => "shill_ring",
            Scenario::AccountTakeover => "account_takeover",
            Scenario::ChatSpam => "chat_spam",
            Scenario::NonPayingBidder => "non_paying_bidder",
            Scenario::ChargebackAbuser => "chargeback_abuser",
            Scenario::RiskyNewSeller => "risky_new_seller",
            Scenario::SharedCard => "shared_card",
        }
    }

    /// The scenario named `name` (as [`Scenario::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scenario {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::parse(s).ok_or_else(|| Error::UnknownScenario(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for scenario in Scenario::ALL {
            assert_eq!(scenario.as_str().parse::<Scenario>().unwrap(), scenario);
            assert_eq!(scenario.to_string(), scenario.as_str());
        }
        let mut names: Vec<_> = Scenario::ALL.iter().map(|s| s.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), Scenario::ALL.len());
        let err = "shill".parse::<Scenario>().unwrap_err().to_string();
        assert!(err.contains("shill_ring"), "{err}");
    }
}
