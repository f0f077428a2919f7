//! Diagnostics as T&S ops see them, snapshotted: each small broken pack is
//! compiled and every diagnostic rendered as `file:line:col: message`, the
//! source line and a caret line under the offending text. A change in
//! wording or place shows up as a snapshot diff (`cargo insta review`).

use gavel_rules::{Diagnostic, Pack, RulesError};

/// A rule on `bid_placed` with `when` as given, for expression cases.
fn rule_when(when: &str) -> String {
    format!(
        "version: \"t\"\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: {when}\n    score: 1\n"
    )
}

fn cases() -> Vec<(&'static str, String)> {
    vec![
        ("yaml_syntax", "version: \"t\"\nrules: [\n  - id: r\n".into()),
        ("unknown_top_level_field", "version: \"t\"\nrulez: []\n".into()),
        (
            "unknown_rule_field",
            "version: \"t\"\nrules:\n  - id: r\n    descripton: d\n    on: [bid_placed]\n    when: \"true\"\n    score: 1\n"
                .into(),
        ),
        (
            "unknown_event_kind_did_you_mean",
            "version: \"t\"\nrules:\n  - id: r\n    description: d\n    on: [bid_place]\n    when: \"true\"\n    score: 1\n"
                .into(),
        ),
        ("type_error", rule_when("event.bid_placed.amount.amount_minor + 1.5 > 3")),
        ("unknown_field_did_you_mean", rule_when("event.bid_placed.ammount.currency == \"USD\"")),
        ("unknown_feature", rule_when("features.bids_per_user > 3")),
        ("unknown_list", rule_when("event.user_id in lists.blocked")),
        ("unknown_label_entity", rule_when("\"'bot' in labels.card\"")),
        ("unknown_function_did_you_mean", rule_when("event.user_id.startWith(\"u\")")),
        ("parse_error", rule_when("event.user_id == ")),
        (
            "error_in_folded_block_scalar",
            rule_when(">-\n      event.user_id != \"\" &&\n        event.bid_placed.amount.amount_minor > \"100\""),
        ),
        (
            "bad_window_and_aggregate",
            "version: \"t\"\nfeatures:\n  - name: f\n    on: [bid_placed]\n    key: event.user_id\n    window: 10y\n    aggregate: median\n"
                .into(),
        ),
        (
            "bad_action",
            "version: \"t\"\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: \"true\"\n    score: 1\n    actions:\n      - type: ban_forever\n        target: user\n      - type: hold_order\n        target: order\n"
                .into(),
        ),
        (
            "bad_mode_and_labels",
            "version: \"t\"\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: \"true\"\n    score: 1\n    mode: loud\n    labels:\n      - add: bot\n        entity: card\n        ttl: 1h\n      - remove: bot\n        entity: user\n        ttl: 1h\n"
                .into(),
        ),
        (
            "bad_test_expectations",
            "version: \"t\"\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: \"true\"\n    score: 1\ntests:\n  - name: t\n    steps:\n      - event: { eventId: e1, userId: u1, bidPlaced: {} }\n        expect: { fires: [rr], decision: deny, actions: [nope] }\n"
                .into(),
        ),
        ("no_version", "rules: []\n".into()),
    ]
}

/// `file:line:col: message`, then the source line and carets under the
/// diagnostic's text (nothing more for a whole-file diagnostic).
fn render(text: &str, d: &Diagnostic) -> String {
    let mut out = format!("{d}\n");
    if let Some(line) = gavel_rules::span::line_text(text, d.line) {
        out.push_str(&format!(
            "  | {line}\n  | {}{}\n",
            " ".repeat(d.column.saturating_sub(1)),
            "^".repeat(d.len.max(1))
        ));
    }
    out
}

#[test]
fn diagnostics_match_their_snapshots() {
    for (name, text) in cases() {
        let rendered = match Pack::compile([("pack.yaml", text.as_str())]) {
            Ok(_) => panic!("case `{name}` compiled"),
            Err(RulesError::Invalid(diagnostics)) => {
                diagnostics.iter().map(|d| render(&text, d)).collect::<Vec<_>>().join("\n")
            }
        };
        insta::assert_snapshot!(name, rendered);
    }
}
