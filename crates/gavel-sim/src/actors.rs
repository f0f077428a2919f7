//! Who acts: the account, device, IP and country behind each simulated
//! event, derived from stable indices so that an account always comes from
//! the same device and network, as real ones mostly do.
//!
//! Buyers live in households: most alone, every 25th pair sharing a device,
//! an IP and a card (a couple on one tablet), and a few households of three.
//! These are the honest near-misses of the multi-account and shared-card
//! rules: a household of three whose members all bid within a day looks,
//! to `multi_account_device`, just like a shill ring.

/// The acting account of an event and where it acts from.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub user: String,
    pub device: String,
    pub ip: String,
    pub country: &'static str,
}

/// Every `PAIR_EVERY`th buyer and the next share a household.
const PAIR_EVERY: usize = 25;
/// Buyers `k * TRIPLE_EVERY + TRIPLE_AT ..+3` share a household of three.
const TRIPLE_EVERY: usize = 1_000;
const TRIPLE_AT: usize = 5;

/// BINs of ordinary cards: none of them is in the pack's test-card list.
const BINS: &[&str] = &["414720", "426684", "517805", "542418", "601100", "455673", "489537", "535310"];

/// The buyer whose device, IP and card buyer `i` shares (`i` itself when
/// living alone).
pub(crate) fn household(i: usize) -> usize {
    let r = i % TRIPLE_EVERY;
    if (TRIPLE_AT..TRIPLE_AT + 3).contains(&r) {
        return i - r + TRIPLE_AT;
    }
    if i % PAIR_EVERY < 2 {
        return i - i % PAIR_EVERY;
    }
    i
}

/// Whether buyer `i` shares a household (a device, an IP and a card) with
/// another buyer.
pub(crate) fn shares_household(i: usize) -> bool {
    household(i) != i || household(i + 1) == i
}

/// A residential-looking address (carrier-grade NAT space) for index `n`.
pub(crate) fn residential_ip(n: usize) -> String {
    format!("100.{}.{}.{}", 64 + (n >> 16) % 64, (n >> 8) & 255, n & 255)
}

/// Buyer `i` on their usual device.
pub(crate) fn buyer(i: usize) -> Actor {
    let home = household(i);
    Actor { user: format!("u-{i}"), device: format!("d-{home}"), ip: residential_ip(home), country: "US" }
}

/// Buyer `i` on the other device they sometimes use (a laptop besides the
/// phone): a new device to the account, but the same home network.
pub(crate) fn buyer_second_device(i: usize) -> Actor {
    Actor { device: format!("d-{i}-2"), ..buyer(i) }
}

/// Buyer `i` on a phone they have just bought: a device the account has
/// never used, on the same home network.
pub(crate) fn buyer_new_phone(i: usize) -> Actor {
    Actor { device: format!("d-{i}-new"), ..buyer(i) }
}

/// Seller `j` on their usual device.
pub(crate) fn seller(j: usize) -> Actor {
    Actor {
        user: format!("s-{j}"),
        device: format!("sd-{j}"),
        ip: format!("172.{}.{}.{}", 16 + (j >> 16) % 16, (j >> 8) & 255, j & 255),
        country: "US",
    }
}

/// Buyer `i`'s saved card: shared with their household.
pub(crate) fn buyer_card(i: usize) -> gavel_model::pb::Card {
    let home = household(i);
    gavel_model::pb::Card { fingerprint: format!("fp-{home}"), bin: bin(home).into(), country: "US".into() }
}

/// Buyer `i`'s other card, their own even in a shared household.
pub(crate) fn buyer_second_card(i: usize) -> gavel_model::pb::Card {
    gavel_model::pb::Card { fingerprint: format!("fp-{i}-2"), bin: bin(i + 3).into(), country: "US".into() }
}

/// An ordinary card BIN for index `n`.
pub(crate) fn bin(n: usize) -> &'static str {
    BINS[n % BINS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn households_are_pairs_and_a_few_triples() {
        assert_eq!(household(0), 0);
        assert_eq!(household(1), 0);
        assert_eq!(household(2), 2);
        assert_eq!(household(26), 25);
        assert_eq!((5..8).map(household).collect::<Vec<_>>(), [5, 5, 5]);
        assert_eq!((1_005..1_008).map(household).collect::<Vec<_>>(), [1_005, 1_005, 1_005]);
        let shared = (0..50_000).filter(|&i| household(i) != i).count();
        assert!(shared < 50_000 / 20, "{shared}");
        assert!(shares_household(0) && shares_household(1) && !shares_household(2));
        assert!((5..8).all(shares_household) && !shares_household(8));
    }
}
