//! Engine behaviour on small packs.

use gavel_model::Payload;
use gavel_model::pb::{ActionType, BidPlaced, ChatMessageSent, Money};

use super::*;

const PACK: &str = r#"
version: "t1"
lists:
  - name: pay_apps
    items: [venmo, zelle, "cash app"]
features:
  - name: bids_per_user_10s
    on: [bid_placed]
    key: event.user_id
    window: 10s
    aggregate: count
  - name: bids_per_device_10s
    on: [bid_placed]
    key: event.device_id
    window: 10s
    aggregate: count
  - name: big_bids_per_user_10s
    on: [bid_placed]
    key: event.user_id
    where: event.bid_placed.amount.amount_minor >= 10000
    window: 10s
    aggregate: count
rules:
  - id: bid_bot
    description: bids faster than a person
    on: [bid_placed]
    when: features.bids_per_user_10s > 3
    score: 60
    actions:
      - type: block_bid
        target: user
        cooldown: 1m
  - id: bid_bot_device
    description: device bidding fast
    on: [bid_placed]
    when: features.bids_per_device_10s > 3
    score: 10
    mode: shadow
  - id: off_platform_payment
    description: chat pushes an off-platform payment app
    on: [chat_message_sent]
    when: lists.pay_apps.exists(k, event.chat_message_sent.text.lowerAscii().contains(k))
    score: 40
    actions:
      - type: mute_chat
        target: user
        expires: 1h
  - id: chatty_bidder
    description: chats after bidding a lot
    on: [chat_message_sent]
    when: features.bids_per_user_10s >= 4
    score: 5
  - id: broken_at_runtime
    description: divides by a count that is zero
    on: [chat_message_sent]
    when: 10 / features.big_bids_per_user_10s > 1
    score: 1
decisions:
  review: 30
  challenge: 60
  block: 90
"#;

fn engine() -> Engine {
    Engine::new(Pack::compile([("p.yaml", PACK)]).unwrap())
}

fn bid(user: &str, t_ms: i64, amount: i64) -> Event {
    Event {
        event_id: format!("{user}-{t_ms}"),
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: user.into(),
        device_id: Some("d1".into()),
        payload: Some(Payload::BidPlaced(BidPlaced {
            amount: Some(Money { amount_minor: amount, currency: "USD".into() }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn chat(user: &str, t_ms: i64, text: &str) -> Event {
    Event {
        event_id: format!("chat-{user}-{t_ms}"),
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: user.into(),
        payload: Some(Payload::ChatMessageSent(ChatMessageSent { text: text.into(), ..Default::default() })),
        ..Default::default()
    }
}

#[test]
fn fires_once_the_count_passes_the_threshold() {
    let engine = engine();
    for i in 0..3 {
        let out = engine.evaluate(&bid("u1", 1_000 + i * 100, 100), None, 0).unwrap();
        assert!(out.signal().is_none(), "bid {i} fired early");
        assert_eq!(out.decision, Decision::Allow);
    }
    let out = engine.evaluate(&bid("u1", 1_400, 100), None, 7).unwrap();
    let signal = out.signal().cloned().expect("fourth bid fires");
    assert_eq!(signal.score, 60, "shadow hits add no score");
    assert_eq!(out.decision, Decision::Challenge);
    assert_eq!(signal.decision, Decision::Challenge as i32);
    assert_eq!(signal.hits.len(), 2);
    assert_eq!(signal.hits[0].rule_id, "bid_bot");
    assert_eq!(signal.hits[0].features[0].value, 4.0);
    assert!(signal.hits[0].explanation.contains("bids_per_user_10s = 4"), "{}", signal.hits[0].explanation);
    assert_eq!(signal.hits[1].mode, gavel_model::pb::RuleMode::Shadow as i32);
    assert_eq!(signal.pack_version, "t1");
    assert_eq!(signal.pack_hash.len(), 16);
    assert_eq!(
        engine.verdict(&bid("u1", 1_400, 100), &out, 0).rule_ids,
        ["bid_bot"],
        "shadow rules are not in the verdict"
    );

    assert_eq!(out.actions.len(), 1);
    let action = &out.actions[0];
    assert_eq!(action.r#type, ActionType::BlockBid as i32);
    assert_eq!(action.target.as_ref().unwrap().id, "u1");
    assert_eq!(action.source_event_id, "u1-1400");
    assert_eq!(action.action_id, action_id("bid_bot", action.r#type, EntityType::User as i32, "u1", "u1-1400"));

    // Within the cooldown the rule still fires but the action is not repeated.
    let out = engine.evaluate(&bid("u1", 1_500, 100), None, 0).unwrap();
    assert!(out.signal().is_some());
    assert!(out.actions.is_empty());
    // It is listed as suppressed, in the verdict too: not "not triggered".
    assert_eq!(out.suppressed.len(), 1);
    let held = &out.suppressed[0];
    assert_eq!(held.action_id, action_id("bid_bot", held.r#type, EntityType::User as i32, "u1", "u1-1500"));
    let verdict = engine.verdict(&bid("u1", 1_500, 100), &out, 0);
    assert_eq!(verdict.suppressed_actions, out.suppressed);
    // A suppressed action does not restart the cooldown: a minute after
    // the first one (at 1,400 ms) the action is taken again.
    for t in [61_000, 61_100, 61_200] {
        engine.evaluate(&bid("u1", t, 100), None, 0).unwrap();
    }
    let out = engine.evaluate(&bid("u1", 61_400, 100), None, 0).unwrap();
    assert!(out.suppressed.is_empty());
    assert_eq!(out.actions.len(), 1, "{:?}", out.suppressed);

    // Another user is not affected by u1's count, but shares the device.
    let out = engine.evaluate(&bid("u2", 1_600, 100), None, 0).unwrap();
    assert_eq!(out.hits().iter().map(|h| h.rule_id.as_str()).collect::<Vec<_>>(), ["bid_bot_device"]);
    assert_eq!(out.score, 0);
}

#[test]
fn keyword_lists_and_features_read_from_other_kinds() {
    let engine = engine();
    let out = engine.evaluate(&chat("u9", 1_000, "pay me on VENMO pls"), None, 0).unwrap();
    assert_eq!(out.hits()[0].rule_id, "off_platform_payment");
    assert_eq!(out.actions[0].r#type, ActionType::MuteChat as i32);
    assert_eq!(out.actions[0].expires_at, Some(timestamp_from_ms(1_000 + 3_600_000)));
    assert_eq!(out.decision, Decision::Review);

    for i in 0..4 {
        engine.evaluate(&bid("u9", 2_000 + i, 100), None, 0).unwrap();
    }
    // A chat event reads the bid count for its user without changing it.
    let out = engine.evaluate(&chat("u9", 3_000, "nice card"), None, 0).unwrap();
    assert!(out.hits().iter().any(|h| h.rule_id == "chatty_bidder" && h.features[0].value == 4.0), "{out:?}");
    let out = engine.evaluate(&chat("u9", 3_001, "nice card"), None, 0).unwrap();
    assert!(out.hits().iter().any(|h| h.rule_id == "chatty_bidder" && h.features[0].value == 4.0));
}

#[test]
fn run_time_errors_are_counted_and_do_not_fire() {
    let engine = engine();
    let out = engine.evaluate(&chat("u1", 1_000, "hello"), None, 0).unwrap();
    assert_eq!(out.failed_rules, ["broken_at_runtime"]);
    assert!(out.hits().is_empty());
    let errors: Vec<_> = engine.rule_errors().filter(|(_, n)| *n > 0).collect();
    assert_eq!(errors, [("broken_at_runtime", 1)]);
}

#[test]
fn filters_decide_what_counts() {
    let engine = engine();
    engine.evaluate(&bid("u1", 1_000, 50_000), None, 0).unwrap();
    engine.evaluate(&bid("u1", 1_001, 100), None, 0).unwrap();
    let big = engine.pack().features.iter().position(|f| f.name == "big_bids_per_user_10s").unwrap();
    assert_eq!(engine.windows()[big].read("u1", 1_002), Some(1.0));
}

#[test]
fn warm_up_changes_state_but_emits_nothing() {
    let engine = engine();
    for i in 0..5 {
        engine.warm(&bid("u1", i * 10, 100), None).unwrap();
    }
    let out = engine.evaluate(&bid("u1", 100, 100), None, 0).unwrap();
    assert_eq!(out.hits()[0].features[0].value, 6.0);
    // bid_bot fired during warm-up (4th and 5th bids): its cooldown holds
    // now, so the live hit does not repeat the action.
    assert_eq!(out.hits()[0].rule_id, "bid_bot");
    assert!(out.actions.is_empty(), "cooldown rebuilt by warm-up: {:?}", out.actions);
}

#[test]
fn a_successor_keeps_the_state_of_unchanged_features() {
    let engine = engine();
    for i in 0..3 {
        engine.evaluate(&bid("u1", 1_000 + i, 100), None, 0).unwrap();
    }
    let changed = PACK.replace("key: event.device_id", "key: event.ip");
    let next = Engine::succeed(&engine, Pack::compile([("p.yaml", changed.as_str())]).unwrap());
    let out = next.evaluate(&bid("u1", 1_010, 100), None, 0).unwrap();
    let value = |name: &str| {
        let f = next.pack().features.iter().position(|f| f.name == name).unwrap();
        next.windows()[f].read(if name == "bids_per_user_10s" { "u1" } else { "" }, 1_010).unwrap_or(0.0) as u64
    };
    assert_eq!(value("bids_per_user_10s"), 4, "unchanged feature kept its counts");
    assert!(out.hits().iter().any(|h| h.rule_id == "bid_bot"));
}

#[test]
fn a_successor_keeps_the_cooldowns_of_unchanged_actions() {
    let engine = engine();
    for i in 0..4 {
        engine.evaluate(&bid("u1", 1_000 + i, 100), None, 0).unwrap();
    }
    // The rule's condition and score change, its action does not: the
    // block_bid taken before the swap still holds its cooldown.
    let reworded = PACK.replace(
        "when: features.bids_per_user_10s > 3\n    score: 60",
        "when: features.bids_per_user_10s > 2\n    score: 70",
    );
    assert_ne!(reworded, PACK);
    let next = Engine::succeed(&engine, Pack::compile([("p.yaml", reworded.as_str())]).unwrap());
    let out = next.evaluate(&bid("u1", 1_010, 100), None, 0).unwrap();
    assert!(out.hits().iter().any(|h| h.rule_id == "bid_bot"));
    assert!(out.actions.is_empty(), "cooldown kept across the swap: {:?}", out.actions);

    // A changed action (a longer cooldown) starts afresh.
    let longer = reworded.replace("cooldown: 1m", "cooldown: 2m");
    let third = Engine::succeed(&next, Pack::compile([("p.yaml", longer.as_str())]).unwrap());
    let out = third.evaluate(&bid("u1", 1_020, 100), None, 0).unwrap();
    assert_eq!(out.actions.len(), 1, "a changed action has no cooldown yet");
    // And holds its own from there.
    let out = third.evaluate(&bid("u1", 1_030, 100), None, 0).unwrap();
    assert!(out.actions.is_empty());
    // Maintenance keeps a cooldown until it lapses, then drops it.
    let burst =
        |t: i64| (0..3).map(|i| third.evaluate(&bid("u1", t + i, 100), None, 0).unwrap().actions.len()).sum::<usize>();
    third.maintain(1_020 + 119_000);
    assert_eq!(burst(1_020 + 119_010), 0, "still cooling down");
    third.maintain(1_020 + 121_000);
    assert_eq!(burst(1_020 + 121_010), 1, "the cooldown lapsed");
}

#[test]
fn publishes_signal_ignores_shadow_hits() {
    let engine = engine();
    // u2 bids on u1's device: only the shadow device rule fires.
    for i in 0..4 {
        engine.evaluate(&bid("u1", 1_000 + i, 100), None, 0).unwrap();
    }
    let out = engine.evaluate(&bid("u2", 1_010, 100), None, 0).unwrap();
    assert_eq!(out.hits().len(), 1);
    assert_eq!(out.shadow_hits().count(), 1);
    assert!(!out.publishes_signal());
    assert!(out.signal().is_none());
    assert!(out.shadow_signal().is_some());
    assert_eq!((out.score, out.decision), (0, Decision::Allow));
}

#[test]
fn falls_back_to_transport_time_and_rejects_timeless_events() {
    let engine = engine();
    let mut event = bid("u1", 0, 100);
    event.occurred_at = None;
    assert_eq!(engine.evaluate(&event, None, 0).unwrap_err(), EngineError::NoEventTime);
    assert_eq!(engine.evaluate(&event, Some(42), 0).unwrap().event_time_ms, 42);
    event.payload = None;
    assert_eq!(engine.evaluate(&event, Some(42), 0).unwrap_err(), EngineError::NoPayload);
}

#[test]
fn action_ids_are_deterministic_and_distinct() {
    let a = action_id("r", 1, 1, "u1", "e1");
    assert_eq!(a, action_id("r", 1, 1, "u1", "e1"));
    assert_ne!(a, action_id("r", 1, 1, "u1", "e2"));
    assert_ne!(a, action_id("r", 2, 1, "u1", "e1"));
    assert_ne!(action_id("ab", 1, 1, "c", "e"), action_id("a", 1, 1, "bc", "e"));
    assert_eq!(a.len(), 32);
}

const RICH: &str = r#"
version: "rich"
features:
  - name: users_per_card_1d
    on: [payment_attempted]
    key: event.payment_attempted.card.fingerprint
    value: event.user_id
    window: 1d
    aggregate: distinct
  - name: spend_per_user_1h
    on: [payment_attempted]
    key: event.user_id
    value: event.payment_attempted.amount.amount_minor
    window: 1h
    aggregate: sum
  - name: since_login_failure
    on: [login_failed]
    key: event.user_id
    window: 1h
    aggregate: since
rules:
  - id: shared_card
    description: one card, many accounts
    on: [payment_attempted]
    when: features.users_per_card_1d >= 3
    score: 10
    labels:
      - add: shared_card_user
        entity: user
        ttl: 1h
  - id: big_spender
    description: over $100 in an hour
    on: [payment_attempted]
    when: features.spend_per_user_1h > 10000.0
    score: 10
  - id: labelled_login
    description: login failure by a labelled user
    on: [login_failed]
    when: "'shared_card_user' in labels.user"
    score: 10
  - id: quick_retry
    description: failed again within a minute
    on: [login_failed]
    when: features.since_login_failure != null && features.since_login_failure < duration('1m')
    score: 5
"#;

fn pay(user: &str, card: &str, amount: i64, t_ms: i64) -> Event {
    Event {
        event_id: format!("pay-{user}-{t_ms}"),
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: user.into(),
        payload: Some(Payload::PaymentAttempted(gavel_model::pb::PaymentAttempted {
            amount: Some(Money { amount_minor: amount, currency: "USD".into() }),
            card: Some(gavel_model::pb::Card { fingerprint: card.into(), ..Default::default() }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn login_failed(user: &str, t_ms: i64) -> Event {
    Event {
        event_id: format!("lf-{user}-{t_ms}"),
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: user.into(),
        payload: Some(Payload::LoginFailed(gavel_model::pb::LoginFailed { reason: "bad_password".into() })),
        ..Default::default()
    }
}

#[test]
fn distinct_sum_since_and_labels() {
    let engine = Engine::new(Pack::compile([("p.yaml", RICH)]).unwrap());
    let ids = |out: &Outcome| out.hits().iter().map(|h| h.rule_id.clone()).collect::<Vec<_>>();
    assert!(ids(&engine.evaluate(&pay("a", "card-1", 100, 1_000), None, 0).unwrap()).is_empty());
    engine.evaluate(&pay("b", "card-1", 100, 2_000), None, 0).unwrap();
    // The same user again does not add a distinct user.
    assert!(ids(&engine.evaluate(&pay("b", "card-1", 100, 2_500), None, 0).unwrap()).is_empty());
    let out = engine.evaluate(&pay("c", "card-1", 20_000, 3_000), None, 0).unwrap();
    assert_eq!(ids(&out), ["shared_card", "big_spender"]);
    assert_eq!(out.hits()[0].features[0].value, 3.0);
    assert_eq!(out.hits()[1].features[0].value, 20_000.0);

    // The label set on "c" is visible to c's later events, not to others'.
    assert_eq!(ids(&engine.evaluate(&login_failed("c", 10_000), None, 0).unwrap()), ["labelled_login"]);
    assert!(ids(&engine.evaluate(&login_failed("a", 10_000), None, 0).unwrap()).is_empty());
    // since: null on the first failure, 30 s on the next.
    assert_eq!(ids(&engine.evaluate(&login_failed("a", 40_000), None, 0).unwrap()), ["quick_retry"]);
    assert!(ids(&engine.evaluate(&login_failed("a", 200_000), None, 0).unwrap()).is_empty());
    // Labels expire with their TTL.
    assert!(ids(&engine.evaluate(&login_failed("c", 3_000 + 3_600_001), None, 0).unwrap()).is_empty());
}

#[test]
fn action_id_is_pinned() {
    // Computed by the hand-rolled FNV-1a this crate used before `gavel_model::fnv`.
    assert_eq!(action_id("velocity.bid_burst", 1, 1, "u-1", "evt-1"), "08e10bec15dfe7e58f9d75d219928aa5");
}

const LINKED: &str = r#"
version: "t2"
features:
  - name: devices_of_user_1d
    on: [bid_placed]
    key: event.user_id
    where: has(event.device_id)
    value: event.device_id
    window: 1d
    aggregate: recent
rules:
  - id: linked
    description: the bidder's device is one the seller used
    on: [bid_placed]
    when: >-
      event.user_id != event.bid_placed.seller_id
      && event.device_id in features.devices_of_user_1d.of(event.bid_placed.seller_id)
    score: 40
  - id: many_devices
    description: the user's own set, read without of()
    on: [bid_placed]
    when: size(features.devices_of_user_1d) >= 64
    score: 1
"#;

fn bid_on(user: &str, device: &str, seller: &str, t_ms: i64) -> Event {
    Event {
        event_id: format!("{user}-{device}-{t_ms}"),
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: user.into(),
        device_id: Some(device.into()),
        payload: Some(Payload::BidPlaced(BidPlaced { seller_id: seller.into(), ..Default::default() })),
        ..Default::default()
    }
}

#[test]
fn a_recent_set_read_for_another_key_is_exact_until_its_bound_and_counts_what_it_drops() {
    let engine = Engine::new(Pack::compile([("p.yaml", LINKED)]).unwrap());
    let fired = |e: &Event| -> Vec<String> {
        engine.evaluate(e, None, 0).unwrap().hits().iter().map(|h| h.rule_id.clone()).collect()
    };
    // The seller bids from 64 devices: the set is full, nothing dropped.
    for i in 0..gavel_velocity::RECENT_MAX_ITEMS {
        let hits = fired(&bid_on("seller", &format!("dev-{i}"), "other", 1_000 + i as i64));
        assert_eq!(hits.contains(&"many_devices".to_string()), i + 1 >= 64, "{i}: {hits:?}");
    }
    assert_eq!(engine.windows()[0].dropped_by_bound_total(), 0);
    assert_eq!(fired(&bid_on("alt", "dev-0", "seller", 2_000)), ["linked"]);
    // A 65th device drops the one the seller used least recently, dev-0:
    // alt's bid from dev-0 went to alt's own set, not the seller's.
    fired(&bid_on("seller", "dev-64", "other", 3_000));
    assert_eq!(engine.windows()[0].dropped_by_bound_total(), 1);
    assert!(fired(&bid_on("alt", "dev-0", "seller", 4_000)).is_empty());
    assert_eq!(fired(&bid_on("alt", "dev-1", "seller", 4_001)), ["linked"]);
    assert_eq!(fired(&bid_on("alt", "dev-64", "seller", 4_002)), ["linked"]);
    // A day later the seller's devices have left the window.
    assert!(fired(&bid_on("alt2", "dev-64", "seller", 3_000 + 86_400_000)).is_empty());
}

const WAITING: &str = r#"
version: "t3"
rules:
  - id: never_paid
    description: the winner did not pay within an hour
    on: [auction_closed]
    when: event.auction_closed.winner_id != ""
    wait:
      for: 1h
      unless: [payment_authorized]
      key: event.auction_closed.winner_id
      match: event.user_id
      where: event.payment_authorized.amount.amount_minor > 0
    score: 70
    actions:
      - type: send_to_review
        target: user
        id: event.auction_closed.winner_id
    labels:
      - add: never_paid
        entity: user
        id: event.auction_closed.winner_id
        ttl: 1d
  - id: flagged_bidder
    description: a bidder marked as a non-payer
    on: [bid_placed]
    when: '"never_paid" in labels.user'
    score: 10
"#;

fn waiting() -> Engine {
    Engine::new(Pack::compile([("p.yaml", WAITING)]).unwrap())
}

fn close(winner: &str, t_ms: i64) -> Event {
    Event {
        event_id: format!("close-{winner}-{t_ms}"),
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: "seller".into(),
        payload: Some(Payload::AuctionClosed(gavel_model::pb::AuctionClosed {
            winner_id: winner.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn paid(user: &str, t_ms: i64, amount: i64) -> Event {
    Event {
        event_id: format!("paid-{user}-{t_ms}"),
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: user.into(),
        payload: Some(Payload::PaymentAuthorized(gavel_model::pb::PaymentAuthorized {
            amount: Some(Money { amount_minor: amount, currency: "USD".into() }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

const HOUR: i64 = 3_600_000;

#[test]
fn an_absence_rule_fires_at_its_deadline_as_its_arming_event() {
    let engine = waiting();
    let armed = engine.evaluate(&close("ghost", 1_000), None, 7).unwrap();
    assert!(armed.hits().is_empty() && armed.timeouts.is_empty(), "it waits: {armed:?}");
    // Just before the deadline nothing fires.
    let out = engine.evaluate(&bid("x", 1_000 + HOUR - 1, 1), None, 7).unwrap();
    assert!(out.timeouts.is_empty());
    // At it, the rule fires before the event is evaluated.
    let out = engine.evaluate(&bid("ghost", 1_000 + HOUR, 1), None, 9).unwrap();
    let [fired] = out.timeouts.as_slice() else { panic!("one timeout: {out:?}") };
    assert_eq!(fired.event.event_id, "close-ghost-1000");
    let o = &fired.outcome;
    assert_eq!(o.event_time_ms, 1_000 + HOUR);
    assert_eq!((o.score, o.decision), (70, Decision::Review));
    let signal = o.signal().unwrap();
    assert_eq!(signal.event_id, timeout_event_id("close-ghost-1000", "never_paid"));
    assert!(signal.hits[0].explanation.contains("no payment_authorized within 1h of close-ghost-1000"));
    let [action] = o.actions.as_slice() else { panic!("{o:?}") };
    assert_eq!(action.target.as_ref().unwrap().id, "ghost");
    assert_eq!(action.source_event_id, signal.event_id);
    assert_eq!(
        action.action_id,
        action_id("never_paid", action.r#type, action.target.as_ref().unwrap().r#type, "ghost", &signal.event_id)
    );
    // Its label is set at the deadline: the bid that ended the wait reads it.
    assert!(out.hits().iter().any(|h| h.rule_id == "flagged_bidder"), "{out:?}");
    // Once only.
    assert!(engine.evaluate(&bid("x", 1_000 + 2 * HOUR, 1), None, 0).unwrap().timeouts.is_empty());
    assert_eq!(engine.timer_counts(), TimerCounts { pending: 0, armed: 1, fired: 1, cancelled: 0, refused: 0 });
}

#[test]
fn a_matching_event_before_the_deadline_cancels_and_one_at_it_is_too_late() {
    let engine = waiting();
    engine.evaluate(&close("a", 0), None, 0).unwrap();
    engine.evaluate(&close("b", 0), None, 0).unwrap();
    engine.evaluate(&close("c", 0), None, 0).unwrap();
    // a pays in time; b pays nothing (the filter); c pays at the deadline.
    engine.evaluate(&paid("a", HOUR - 1, 500), None, 0).unwrap();
    engine.evaluate(&paid("b", HOUR - 1, 0), None, 0).unwrap();
    engine.evaluate(&paid("someone", HOUR - 1, 500), None, 0).unwrap();
    let out = engine.evaluate(&paid("c", HOUR, 500), None, 0).unwrap();
    let mut fired: Vec<&str> = out.timeouts.iter().map(|t| t.event.event_id.as_str()).collect();
    fired.sort_unstable();
    assert_eq!(fired, ["close-b-0", "close-c-0"]);
    assert_eq!(engine.timer_counts().cancelled, 1);
}

#[test]
fn each_lane_fires_on_its_own_clock_and_a_late_arming_fires_at_once() {
    let engine = waiting();
    engine.evaluate_in(1, &close("slow-lane", 0), None, 0).unwrap();
    // Another partition far ahead fires nothing of lane 1's.
    let ahead = engine.evaluate_in(2, &bid("x", 5 * HOUR, 1), None, 0).unwrap();
    assert!(ahead.timeouts.is_empty());
    // Lane 2's clock is at 5h: a close from 2h ago there is past its
    // deadline already and fires with the event that armed it.
    let late = engine.evaluate_in(2, &close("late", 3 * HOUR), None, 0).unwrap();
    assert_eq!(late.timeouts.len(), 1, "{late:?}");
    assert_eq!(late.timeouts[0].outcome.event_time_ms, 4 * HOUR);
    let own = engine.evaluate_in(1, &bid("y", HOUR, 1), None, 0).unwrap();
    assert_eq!(own.timeouts.len(), 1);
    assert_eq!(own.timeouts[0].event.event_id, "close-slow-lane-0");
}

#[test]
fn warm_up_rebuilds_pending_timers_and_a_successor_keeps_them_while_the_wait_is_unchanged() {
    // Warm-up replays the close: the timer is pending again, and its
    // firing during warm-up (none here) would be dropped.
    let engine = waiting();
    engine.warm(&close("w", 0), None).unwrap();
    let kept = Engine::succeed(
        &engine,
        Pack::compile([("p.yaml", WAITING.replace("score: 70", "score: 60").as_str())]).unwrap(),
    );
    let out = kept.evaluate(&bid("x", HOUR, 1), None, 0).unwrap();
    assert_eq!(out.timeouts.len(), 1, "a rule whose wait did not change keeps its timers");
    assert_eq!(out.timeouts[0].outcome.score, 60, "and fires as the new pack says");

    let engine = waiting();
    engine.evaluate(&close("w", 0), None, 0).unwrap();
    let changed =
        Engine::succeed(&engine, Pack::compile([("p.yaml", WAITING.replace("for: 1h", "for: 2h").as_str())]).unwrap());
    assert!(
        changed.evaluate(&bid("x", 3 * HOUR, 1), None, 0).unwrap().timeouts.is_empty(),
        "a changed wait starts empty"
    );

    // The same events give the same ids, whichever engine runs them.
    let ids = || {
        let engine = waiting();
        engine.evaluate(&close("z", 0), None, 0).unwrap();
        let out = engine.evaluate(&bid("x", HOUR, 1), None, 0).unwrap();
        out.timeouts[0].outcome.actions[0].action_id.clone()
    };
    assert_eq!(ids(), ids());
}

const SEQUENCED: &str = r#"
version: "t4"
rules:
  - id: chain
    description: a bid after a chat and a login, in that order, within an hour
    on: [bid_placed]
    when: "true"
    after:
      within: 1h
      key: event.user_id
      steps:
        - on: [chat_message_sent]
          where: event.chat_message_sent.text != "ignore me"
        - on: [login_succeeded]
    score: 20
"#;

fn login(user: &str, t_ms: i64) -> Event {
    Event {
        event_id: format!("login-{user}-{t_ms}"),
        occurred_at: Some(timestamp_from_ms(t_ms)),
        user_id: user.into(),
        payload: Some(Payload::LoginSucceeded(gavel_model::pb::LoginSucceeded::default())),
        ..Default::default()
    }
}

#[test]
fn a_sequence_needs_its_steps_in_order_inside_the_window_and_names_them() {
    let in_order = |pack: &str| Engine::new(Pack::compile([("p.yaml", pack)]).unwrap());
    let fires =
        |engine: &Engine, e: &Event| engine.evaluate(e, None, 0).unwrap().hits().first().map(|h| h.explanation.clone());

    let engine = in_order(SEQUENCED);
    engine.evaluate(&chat("u", 0, "hello"), None, 0).unwrap();
    engine.evaluate(&login("u", 1_000), None, 0).unwrap();
    let explanation = fires(&engine, &bid("u", 2_000, 1)).expect("in order");
    assert!(
        explanation.ends_with("after chat_message_sent chat-u-0, then login_succeeded login-u-1000"),
        "{explanation}"
    );
    // The first step exactly an hour before is out of the window.
    assert!(fires(&engine, &bid("u", HOUR, 1)).is_none());
    assert!(fires(&engine, &bid("u", HOUR - 1, 1)).is_some());

    // The other order, a filtered step, or another user: no match.
    let engine = in_order(SEQUENCED);
    engine.evaluate(&login("v", 0), None, 0).unwrap();
    engine.evaluate(&chat("v", 1_000, "hello"), None, 0).unwrap();
    assert!(fires(&engine, &bid("v", 2_000, 1)).is_none(), "login before chat is not the written order");
    engine.evaluate(&chat("w", 0, "ignore me"), None, 0).unwrap();
    engine.evaluate(&login("w", 1_000), None, 0).unwrap();
    assert!(fires(&engine, &bid("w", 2_000, 1)).is_none(), "a step's filter must hold");
    assert!(fires(&engine, &bid("x", 2_000, 1)).is_none());

    // `order: any` takes them either way round.
    let any = SEQUENCED.replace("      key: event.user_id\n", "      key: event.user_id\n      order: any\n");
    let engine = in_order(&any);
    engine.evaluate(&login("v", 0), None, 0).unwrap();
    engine.evaluate(&chat("v", 1_000, "hello"), None, 0).unwrap();
    let explanation = fires(&engine, &bid("v", 2_000, 1)).expect("any order");
    assert!(
        explanation.ends_with("after chat_message_sent chat-v-1000, and login_succeeded login-v-0"),
        "{explanation}"
    );

    // Warm-up rebuilds the steps; a reload keeps them while the sequence
    // is unchanged and starts afresh when it changes.
    let engine = in_order(SEQUENCED);
    engine.warm(&chat("u", 0, "hello"), None).unwrap();
    engine.warm(&login("u", 1_000), None).unwrap();
    let kept = Engine::succeed(
        &engine,
        Pack::compile([("p.yaml", SEQUENCED.replace("score: 20", "score: 30").as_str())]).unwrap(),
    );
    assert!(fires(&kept, &bid("u", 2_000, 1)).is_some());
    assert_eq!(kept.sequence_keys(), 1);
    let changed = Engine::succeed(&kept, Pack::compile([("p.yaml", any.as_str())]).unwrap());
    assert!(fires(&changed, &bid("u", 3_000, 1)).is_none());
    // Maintenance drops keys whose steps left the window.
    changed.evaluate(&login("u", 4_000), None, 0).unwrap();
    assert_eq!(changed.sequence_keys(), 1);
    changed.maintain(10 * HOUR);
    assert_eq!(changed.sequence_keys(), 0);
}

#[test]
fn eviction_follows_the_events_own_time_whenever_the_log_is_processed() {
    let engine = engine();
    let keys = |e: &Engine| e.windows()[0].len();
    // Bids of a year ago, processed now: the sweep reads their time, not
    // the machine's, so nothing of a window still open is forgotten.
    let year_ago = 1_735_689_600_000; // 2025-01-01
    for i in 0..3 {
        engine.evaluate_in(0, &bid("u1", year_ago + i * 1_000, 100), None, 0).unwrap();
    }
    assert_eq!(engine.sweep(), 0);
    assert_eq!(keys(&engine), 1);
    let fourth = engine.evaluate_in(0, &bid("u1", year_ago + 3_000, 100), None, 0).unwrap();
    let signal = fourth.signal().expect("the first three bids still count");
    assert_eq!(signal.hits[0].rule_id, "bid_bot");
    // A second lane a minute behind holds the watermark back while it
    // moves: u1's key stays although lane 0 is a minute past it...
    engine.evaluate_in(1, &bid("u2", year_ago - 60_000, 100), None, 0).unwrap();
    engine.evaluate_in(0, &bid("u3", year_ago + 60_000, 100), None, 0).unwrap();
    assert_eq!(engine.sweep(), 0);
    assert_eq!(keys(&engine), 3);
    assert_eq!(engine.sweep(), 0, "nothing moved");
    // ...and does not once it stops: u1's and u2's keys, idle for two
    // windows of lane 0's time, go.
    engine.evaluate_in(0, &bid("u3", year_ago + 61_000, 100), None, 0).unwrap();
    assert_eq!(engine.sweep(), 2);
    assert_eq!(keys(&engine), 1, "only u3 is left");
}
