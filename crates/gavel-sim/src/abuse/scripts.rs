//! The scripted scenarios: a takeover, a chargeback spree, a risky new
//! seller and a shared card, each planned in full when its campaign starts
//! and played one step per draw by [`Simulator::inject`]. The live
//! scenarios, which act on the marketplace as it runs, are in the parent
//! module.

use std::collections::VecDeque;

use super::*;

impl Simulator {
    /// An account takeover: the owner's own login (unlabelled), then from
    /// one attacker IP and device, credential stuffing across many accounts
    /// (`credential_stuffing_ip`), a burst on the victim
    /// (`credential_stuffing_account`), a success from the new device in
    /// another country (`new_device_login`), a reset password
    /// (`password_reset_after_failures`, `credentials_changed_after_new_device`),
    /// a new email, a new payout method (`payout_change_after_takeover`)
    /// and the cash-out: a payout for a seller, a $500+ purchase on the
    /// saved card for a buyer (`purchase_after_takeover`).
    pub(super) fn plan_takeover(&mut self) -> VecDeque<Planned> {
        let n = self.abuse.next_campaign() as usize;
        let scenario = Scenario::AccountTakeover;
        let country = ATTACKER_COUNTRIES[self.rng.random_range(0..ATTACKER_COUNTRIES.len())];
        let attacker = |user: String| Actor {
            user,
            device: format!("atodev-{n}"),
            ip: format!("192.0.2.{}", 1 + n % 254),
            country,
        };
        let victim_is_seller = self.rng.random_bool(0.3);
        let (owner, buyer_index) = if victim_is_seller {
            (actors::seller(self.rng.random_range(0..self.config.sellers.max(1))), None)
        } else {
            let b = self.buyer();
            (actors::buyer(b), Some(b))
        };
        let mut plan = VecDeque::new();
        let login = || Payload::LoginSucceeded(LoginSucceeded { method: "password".into(), mfa: false });
        plan.push_back(Planned { actor: owner.clone(), payload: login(), scenario: None });
        for _ in 0..self.rng.random_range(45..=60) {
            let (user, reason) = if self.rng.random_bool(0.3) {
                (format!("u-{}", self.config.buyers * 2 + self.rng.random_range(0..1_000_000)), "unknown_user")
            } else {
                (format!("u-{}", self.buyer()), "bad_password")
            };
            let failed = Payload::LoginFailed(LoginFailed { reason: reason.into() });
            plan.push_back(Planned::labelled(&attacker(user), failed, scenario));
        }
        let hijacked = attacker(owner.user.clone());
        for _ in 0..self.rng.random_range(10..=12) {
            let failed = Payload::LoginFailed(LoginFailed { reason: "bad_password".into() });
            plan.push_back(Planned::labelled(&hijacked, failed, scenario));
        }
        plan.push_back(Planned::labelled(&hijacked, login(), scenario));
        let reset = Payload::PasswordChanged(PasswordChanged { via_reset: true });
        plan.push_back(Planned::labelled(&hijacked, reset, scenario));
        let domain = THROWAWAY_DOMAINS[self.rng.random_range(0..THROWAWAY_DOMAINS.len())];
        let email = Payload::EmailChanged(EmailChanged { new_email_domain: domain.into() });
        plan.push_back(Planned::labelled(&hijacked, email, scenario));
        let method = self.payout_method(country);
        let method_id = method.payout_method_id.clone();
        plan.push_back(Planned::labelled(&hijacked, Payload::PayoutMethodChanged(method), scenario));
        match buyer_index {
            None => {
                let amount = 100 * self.rng.random_range(500..=5_000);
                let payout = self.payout(amount, method_id);
                plan.push_back(Planned::labelled(&hijacked, Payload::PayoutRequested(payout), scenario));
            }
            Some(b) => {
                let (payment_id, order_id) = (format!("p-{}", self.id()), format!("o-ato-{}", self.id()));
                let amount = usd(100 * self.rng.random_range(500..=2_500));
                let card = Some(actors::buyer_card(b));
                let seller = self.rng.random_range(0..self.config.sellers.max(1));
                let attempted = PaymentAttempted {
                    payment_id: payment_id.clone(),
                    order_id: order_id.clone(),
                    amount: amount.clone(),
                    card: card.clone(),
                    seller_id: format!("s-{seller}"),
                };
                let authorized = PaymentAuthorized { payment_id, order_id, amount, card, three_ds: false };
                plan.push_back(Planned::labelled(&hijacked, Payload::PaymentAttempted(attempted), scenario));
                plan.push_back(Planned::labelled(&hijacked, Payload::PaymentAuthorized(authorized), scenario));
            }
        }
        plan
    }

    /// A chargeback abuser: 4–7 purchases, then chargebacks on at least
    /// three and most of them (`chargeback_ratio` from the second,
    /// `chargeback_abuse` from the third).
    pub(super) fn plan_chargebacks(&mut self) -> VecDeque<Planned> {
        let n = self.abuse.next_campaign() as usize;
        let scenario = Scenario::ChargebackAbuser;
        let actor = Actor {
            user: format!("cb-{n}"),
            device: format!("cbdev-{n}"),
            ip: actors::residential_ip(6_000_000 + n),
            country: "US",
        };
        let card = Card { fingerprint: format!("fp-cb-{n}"), bin: actors::bin(n).into(), country: "US".into() };
        let orders = self.rng.random_range(4..=7);
        let mut plan = VecDeque::new();
        let mut bought = Vec::new();
        for _ in 0..orders {
            let (payment_id, order_id) = (format!("p-{}", self.id()), format!("o-cb-{}", self.id()));
            let seller = format!("s-{}", self.rng.random_range(0..self.config.sellers.max(1)));
            let amount = usd(100 * self.rng.random_range(40..400));
            let attempted = PaymentAttempted {
                payment_id: payment_id.clone(),
                order_id: order_id.clone(),
                amount: amount.clone(),
                card: Some(card.clone()),
                seller_id: seller.clone(),
            };
            let authorized = PaymentAuthorized {
                payment_id: payment_id.clone(),
                order_id: order_id.clone(),
                amount: amount.clone(),
                card: Some(card.clone()),
                three_ds: self.rng.random_bool(0.3),
            };
            plan.push_back(Planned::labelled(&actor, Payload::PaymentAttempted(attempted), scenario));
            plan.push_back(Planned::labelled(&actor, Payload::PaymentAuthorized(authorized), scenario));
            bought.push((payment_id, order_id, amount, seller));
        }
        let disputed = self.rng.random_range(3.max(orders * 3 / 5)..=orders);
        for (payment_id, order_id, amount, seller_id) in bought.into_iter().take(disputed) {
            let chargeback = ChargebackFiled {
                chargeback_id: format!("cb-{}", self.id()),
                payment_id,
                order_id,
                amount,
                reason_code: CHARGEBACK_REASONS[self.rng.random_range(0..CHARGEBACK_REASONS.len())].into(),
                seller_id,
            };
            plan.push_back(Planned::labelled(&actor, Payload::ChargebackFiled(chargeback), scenario));
        }
        plan
    }

    /// A risky new seller: signs up, sets a payout method, goes live with
    /// 5–8 listings of $1,000–3,000 (`risky_new_seller_listing` once $5,000
    /// is listed), switches payout method (`new_seller_payout_change`,
    /// `payout_method_churn`) and asks for a payout.
    pub(super) fn plan_new_seller(&mut self) -> VecDeque<Planned> {
        let n = self.abuse.next_campaign() as usize;
        let scenario = Scenario::RiskyNewSeller;
        let country = NEW_SELLER_COUNTRIES[self.rng.random_range(0..NEW_SELLER_COUNTRIES.len())];
        let actor = Actor {
            user: format!("s-new-{n}"),
            device: format!("nsdev-{n}"),
            ip: actors::residential_ip(7_000_000 + n),
            country,
        };
        let mut plan = VecDeque::new();
        let mut step = |payload| plan.push_back(Planned::labelled(&actor, payload, scenario));
        step(Payload::AccountCreated(AccountCreated {
            email_domain: THROWAWAY_DOMAINS[self.rng.random_range(0..THROWAWAY_DOMAINS.len())].into(),
            signup_country: country.into(),
            referral_code: String::new(),
        }));
        step(Payload::LoginSucceeded(LoginSucceeded { method: "password".into(), mfa: false }));
        step(Payload::PayoutMethodChanged(self.payout_method(country)));
        let show_id = format!("sh-{}", self.id());
        let category = CATEGORIES[[0, 1, 5][self.rng.random_range(0..3)]];
        step(Payload::ShowStarted(ShowStarted {
            show_id: show_id.clone(),
            category: category.into(),
            title: "sealed grails, everything must go".into(),
        }));
        let listings = self.rng.random_range(5..=8);
        let mut listed = 0;
        for _ in 0..listings {
            let price = 100 * self.rng.random_range(1_000..=3_000);
            listed += price;
            let auction = self.rng.random_bool(0.5);
            step(Payload::ListingCreated(ListingCreated {
                listing_id: format!("l-{}", self.id()),
                show_id: show_id.clone(),
                category: category.into(),
                format: if auction { ListingFormat::Auction } else { ListingFormat::BuyItNow } as i32,
                start_price: usd(price),
                duration_s: if auction { 60 } else { 0 },
            }));
        }
        let abroad = ATTACKER_COUNTRIES[self.rng.random_range(0..ATTACKER_COUNTRIES.len())];
        let method = self.payout_method(abroad);
        let method_id = method.payout_method_id.clone();
        step(Payload::PayoutMethodChanged(method));
        step(Payload::PayoutRequested(self.payout(listed / 4, method_id)));
        step(Payload::ShowEnded(ShowEnded { show_id, peak_viewers: self.rng.random_range(3..40) }));
        plan
    }

    /// One card paying for 5–9 accounts, each on its own device: 12 or more
    /// attempts in all (`shared_card_velocity` from the tenth,
    /// `shared_card_accounts` from the fifth account), a fifth declined.
    pub(super) fn plan_shared_card(&mut self) -> VecDeque<Planned> {
        let n = self.abuse.next_campaign() as usize;
        let scenario = Scenario::SharedCard;
        let card = Card { fingerprint: format!("fp-shared-{n}"), bin: actors::bin(n).into(), country: "US".into() };
        let accounts: Vec<Actor> = (0..self.rng.random_range(5..=9))
            .map(|j| Actor {
                user: format!("sc-{n}-{j}"),
                device: format!("scdev-{n}-{j}"),
                ip: actors::residential_ip(8_000_000 + n * 16 + j),
                country: "US",
            })
            .collect();
        let mut turns: Vec<usize> = Vec::new();
        for j in 0..accounts.len() {
            turns.extend(std::iter::repeat_n(j, self.rng.random_range(1..=3)));
        }
        while turns.len() < 12 {
            turns.push(self.rng.random_range(0..accounts.len()));
        }
        turns.shuffle(&mut self.rng);
        let mut plan = VecDeque::new();
        for j in turns {
            let (payment_id, order_id) = (format!("p-{}", self.id()), format!("o-sc-{}", self.id()));
            let amount = usd(100 * self.rng.random_range(15..300));
            let attempted = PaymentAttempted {
                payment_id: payment_id.clone(),
                order_id: order_id.clone(),
                amount: amount.clone(),
                card: Some(card.clone()),
                seller_id: format!("s-{}", self.rng.random_range(0..self.config.sellers.max(1))),
            };
            let outcome = if self.rng.random_bool(0.2) {
                Payload::PaymentDeclined(PaymentDeclined {
                    payment_id,
                    order_id,
                    amount,
                    card: Some(card.clone()),
                    decline_code: "do_not_honor".into(),
                })
            } else {
                Payload::PaymentAuthorized(PaymentAuthorized {
                    payment_id,
                    order_id,
                    amount,
                    card: Some(card.clone()),
                    three_ds: false,
                })
            };
            plan.push_back(Planned::labelled(&accounts[j], Payload::PaymentAttempted(attempted), scenario));
            plan.push_back(Planned::labelled(&accounts[j], outcome, scenario));
        }
        plan
    }
}
