//! Pack compilation: a good pack compiles; a broken one yields one
//! diagnostic per error, each at the right file:line:col.

use gavel_rules::{Diagnostic, Pack, RulesError};

const GOOD: &str = r#"version: "p1"
lists:
  - name: pay_apps
    file: lists/pay_apps.txt
features:
  - name: bids_per_user_10s
    on: [bid_placed]
    key: event.user_id
    window: 10s
    aggregate: count
rules:
  - id: bid_bot
    description: fast bidder
    on: [bid_placed]
    when: features.bids_per_user_10s > 12 && event.bid_placed.amount.currency == "USD"
    score: 60
    actions:
      - type: block_bid
        target: user
        cooldown: 5m
  - id: scam_chat
    description: off-platform payment
    on: [chat_message_sent]
    when: >-
      lists.pay_apps.exists(k, event.chat_message_sent.text.lowerAscii().contains(k))
    score: 40
decisions:
  review: 30
  challenge: 60
  block: 90
  by_kind:
    payment_attempted: { review: 20, challenge: 40, block: 70 }
"#;

const LIST: &str = "# payment apps\nvenmo\nzelle\ncash app\n";

fn errors(text: &str) -> Vec<Diagnostic> {
    match Pack::compile([("rules/pack.yaml", text), ("rules/lists/pay_apps.txt", LIST)]) {
        Ok(_) => panic!("expected errors"),
        Err(RulesError::Invalid(diags)) => diags,
    }
}

#[test]
fn good_pack_compiles() {
    let pack = Pack::compile([("rules/pack.yaml", GOOD), ("rules/lists/pay_apps.txt", LIST)]).unwrap();
    assert_eq!(pack.version, "p1");
    assert_eq!(pack.lists[0].items, ["venmo", "zelle", "cash app"]);
    assert_eq!(pack.rules.len(), 2);
    assert_eq!(pack.rules[0].reads, [0]);
    assert_eq!(pack.rules[0].actions[0].cooldown_ms, 300_000);
    assert_eq!(pack.longest_window_ms(), 10_000);
    let same = Pack::compile([("rules/pack.yaml", GOOD), ("rules/lists/pay_apps.txt", LIST)]).unwrap();
    assert_eq!(pack.hash, same.hash);
    let other = Pack::compile([("rules/pack.yaml", GOOD), ("rules/lists/pay_apps.txt", "venmo\n")]).unwrap();
    assert_ne!(pack.hash, other.hash, "list contents are part of the hash");
}

#[test]
fn every_error_is_reported_at_its_place() {
    let broken = GOOD
        .replace("event.bid_placed.amount.currency", "event.bid_placed.amount.curency")
        .replace("features.bids_per_user_10s > 12", "features.bids_per_user_10s > 'twelve'")
        .replace("contains(k))", "matches('(')) && features.nope > 1")
        .replace("id: scam_chat", "id: bid_bot");
    let diags = errors(&broken);
    let rendered: Vec<String> = diags.iter().map(ToString::to_string).collect();
    let find = |needle: &str| {
        diags
            .iter()
            .find(|d| d.message.contains(needle))
            .unwrap_or_else(|| panic!("no diagnostic mentioning `{needle}` in {rendered:#?}"))
    };

    let typo = find("curency");
    assert!(typo.message.contains("did you mean `event.bid_placed.amount.currency`"), "{}", typo.message);
    let line15 = broken.lines().nth(14).unwrap();
    assert_eq!((typo.line, typo.column), (15, line15.find("event.bid_placed.amount.curency").unwrap() + 1));
    assert_eq!(typo.len, "event.bid_placed.amount.curency".len());

    let types = find("cannot compare int with string");
    assert_eq!((types.line, types.column), (15, 11));

    let dup = find("duplicate rule id `bid_bot`");
    assert_eq!((dup.line, dup.column), (21, 9));
    assert_eq!(diags.len(), 3, "the duplicate rule's own errors are not reported: {rendered:#?}");
}

#[test]
fn errors_inside_folded_expressions_point_into_the_expression() {
    let broken = GOOD.replace("id: scam_chat", "id: scam_chat2").replace("contains(k))", "matches('('))");
    let diags = errors(&broken);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("invalid regular expression"), "{}", diags[0].message);
    let (n, line) = broken.lines().enumerate().find(|(_, l)| l.contains("matches('(')")).unwrap();
    assert_eq!((diags[0].line, diags[0].column), (n + 1, line.find("'('").unwrap() + 1));
}

#[test]
fn structural_errors() {
    let broken = GOOD
        .replace("on: [bid_placed]\n    key", "on: [bid_placd]\n    key")
        .replace("window: 10s", "window: 10x")
        .replace("type: block_bid", "type: ban_forever")
        .replace("cooldown: 5m", "cooldown: 5m\n        colour: red");
    let diags = errors(&broken);
    // Unknown keys stop that file's parse: fix it first, then the rest shows.
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("colour"), "{}", diags[0].message);
    assert_eq!(diags[0].line, 21);

    let broken = broken.replace("\n        colour: red", "");
    let diags = errors(&broken);
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("unknown event kind `bid_placd`; did you mean `bid_placed`?")),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m.contains("10x")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("unknown action `ban_forever`")), "{messages:?}");
    assert!(diags.iter().all(|d| d.line > 0), "{diags:?}");
}

#[test]
fn payload_fields_must_belong_to_the_rules_kinds() {
    let broken = GOOD.replace(
        "lists.pay_apps.exists(k, event.chat_message_sent.text.lowerAscii().contains(k))",
        "event.bid_placed.amount.amount_minor > 100",
    );
    let diags = errors(&broken);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("only set on bid_placed events"), "{}", diags[0].message);
}

#[test]
fn missing_list_file_and_version() {
    let diags = match Pack::compile([("rules/pack.yaml", GOOD)]) {
        Err(RulesError::Invalid(d)) => d,
        Ok(_) => panic!("expected errors"),
    };
    assert!(diags[0].message.contains("lists/pay_apps.txt"), "{diags:?}");
    let no_version = GOOD.replace("version: \"p1\"\n", "");
    let diags = match Pack::compile([("rules/pack.yaml", no_version.as_str()), ("rules/lists/pay_apps.txt", LIST)]) {
        Err(RulesError::Invalid(d)) => d,
        Ok(_) => panic!("expected errors"),
    };
    assert!(diags[0].message.contains("version"));
}

#[test]
fn unknown_features_and_bad_caps_are_reported() {
    let broken = GOOD
        .replace("features.bids_per_user_10s > 12", "features.bids_per_user_10 > 12")
        .replace("aggregate: count\n", "aggregate: count\n    max_keys: 0\n");
    let diags = errors(&broken);
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(diags.len(), 2, "both problems, each once: {messages:?}");
    assert!(messages[0].contains("max_keys must be at least 1"), "{messages:?}");
    assert!(messages[1].contains("unknown feature"), "{messages:?}");
    let broken = GOOD.replace("features.bids_per_user_10s > 12", "features.bids_per_user_10 > 12");
    let diags = errors(&broken);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("did you mean `features.bids_per_user_10s`"), "{}", diags[0].message);
    assert_eq!(diags[0].line, 15);
}

#[test]
fn a_wait_is_checked_where_it_is_written() {
    let with_wait = |wait: &str| {
        GOOD.replace("    score: 40\ndecisions:", &format!("    score: 40\n    wait:\n{wait}\ndecisions:"))
    };
    let good = with_wait(
        "      for: 1d\n      unless: [chat_message_sent]\n      key: event.user_id\n      match: event.user_id\n      where: event.chat_message_sent.text != \"\"",
    );
    let pack = Pack::compile([("rules/pack.yaml", good.as_str()), ("rules/lists/pay_apps.txt", LIST)]).unwrap();
    let wait = pack.rules.iter().find_map(|r| r.wait.as_ref()).unwrap();
    assert_eq!(wait.for_ms, 86_400_000);
    assert_eq!(pack.longest_window_ms(), 86_400_000, "warm-up replays the longest wait");

    let cases = [
        (
            "      for: 1y\n      unless: [chat_message_sent]\n      key: event.user_id\n      match: event.user_id",
            "invalid duration unit",
            28,
        ),
        (
            "      for: 1d\n      unless: [chat_sent]\n      key: event.user_id\n      match: event.user_id",
            "unknown event kind `chat_sent`",
            29,
        ),
        (
            "      for: 1d\n      unless: []\n      key: event.user_id\n      match: event.user_id",
            "needs at least one event kind in `unless`",
            29,
        ),
        (
            "      for: 1d\n      unless: [bid_placed]\n      key: event.user_id\n      match: event.bid_placed.amount.amount_minor",
            "expected string, got int",
            31,
        ),
        (
            "      for: 1d\n      unless: [bid_placed]\n      key: event.user_id\n      match: string(features.bids_per_user_10s)",
            "read the cancelling event, not features",
            31,
        ),
        (
            "      for: 1d\n      unless: [bid_placed]\n      key: 1\n      match: event.user_id",
            "expected string, got int",
            30,
        ),
        (
            "      for: 1d\n      unless: [bid_placed]\n      key: event.user_id\n      match: event.user_id\n      where: event.chat_message_sent.text != \"\"",
            "only set on chat_message_sent events, and this wait runs on [bid_placed]",
            32,
        ),
    ];
    for (wait, message, line) in cases {
        let diags = errors(&with_wait(wait));
        assert_eq!(diags.len(), 1, "{wait}: {diags:?}");
        assert!(diags[0].message.contains(message), "{wait}: {}", diags[0].message);
        assert_eq!(diags[0].line, line, "{wait}: {:?}", diags[0]);
    }
}

#[test]
fn a_sequence_is_checked_where_it_is_written() {
    let with_after = |after: &str| {
        GOOD.replace("    score: 40\ndecisions:", &format!("    score: 40\n    after:\n{after}\ndecisions:"))
    };
    let good = with_after(
        "      within: 1h\n      key: event.user_id\n      order: any\n      steps:\n        - on: [bid_placed]\n          where: features.bids_per_user_10s > 3",
    );
    let pack = Pack::compile([("rules/pack.yaml", good.as_str()), ("rules/lists/pay_apps.txt", LIST)]).unwrap();
    let after = pack.rules.iter().find_map(|r| r.after.as_ref()).unwrap();
    assert!(after.any_order && after.within_ms == 3_600_000 && after.steps.len() == 1);

    let cases = [
        (
            "      within: 1h\n      key: event.user_id\n      order: sometimes\n      steps:\n        - on: [bid_placed]",
            "unknown order `sometimes` (expected given or any)",
            30,
        ),
        ("      within: 1h\n      key: event.user_id\n      steps: []", "at least one step", 30),
        (
            "      within: 1h\n      key: event.user_id\n      steps:\n        - on: [bid_place]",
            "unknown event kind `bid_place`",
            31,
        ),
        (
            "      within: 40d\n      key: event.user_id\n      steps:\n        - on: [bid_placed]",
            "between 1ms and 30d",
            28,
        ),
        (
            "      within: 1h\n      key: event.bid_placed.listing_id\n      steps:\n        - on: [bid_placed]",
            "only set on bid_placed events",
            29,
        ),
        (
            "      within: 1h\n      key: event.user_id\n      steps:\n        - on: [bid_placed]\n          where: event.chat_message_sent.text == \"\"",
            "only set on chat_message_sent",
            32,
        ),
    ];
    for (after, message, line) in cases {
        let diags = errors(&with_after(after));
        assert_eq!(diags.len(), 1, "{after}: {diags:?}");
        assert!(diags[0].message.contains(message), "{after}: {}", diags[0].message);
        assert_eq!(diags[0].line, line, "{after}: {:?}", diags[0]);
    }
}

#[test]
fn state_beyond_the_message_key_names_each_key_from_another_partition() {
    let pack = Pack::compile([("rules/pack.yaml", GOOD), ("rules/lists/pay_apps.txt", LIST)]).unwrap();
    assert!(
        pack.state_beyond_the_message_key().is_empty(),
        "a pack keyed by the user keeps its state with its partition"
    );

    let wider = GOOD
        .replace(
            "features:\n",
            "features:\n  - name: accounts_per_device_1h\n    on: [bid_placed]\n    key: event.device_id\n    window: 1h\n    aggregate: distinct\n    value: event.user_id\n",
        )
        .replace(
            "    when: features.bids_per_user_10s > 12",
            "    when: features.bids_per_user_10s.of(event.bid_placed.seller_id) > 12 && features.bids_per_user_10s > 12",
        )
        .replace(
            "      - type: block_bid\n        target: user\n        cooldown: 5m",
            "      - type: block_bid\n        target: user\n        cooldown: 5m\n      - type: mute_chat\n        target: device\n        cooldown: 1h\n      - type: cancel_bid\n        target: bid\n        id: event.bid_placed.bid_id\n        cooldown: 1h\n    labels:\n      - add: watched\n        entity: ip\n        ttl: 1d",
        );
    let pack = match Pack::compile([("rules/pack.yaml", wider.as_str()), ("rules/lists/pay_apps.txt", LIST)]) {
        Ok(pack) => pack,
        Err(RulesError::Invalid(diags)) => panic!("{diags:?}"),
    };
    assert_eq!(
        pack.state_beyond_the_message_key(),
        [
            "feature accounts_per_device_1h (keyed by event.device_id)",
            "rule bid_bot (reads a feature for another key)",
            "rule bid_bot (label watched on a ip)",
            "rule bid_bot (cooldown of mute_chat keyed by event.device_id)",
        ],
        "a bid's own id is not shared with other partitions"
    );
}
