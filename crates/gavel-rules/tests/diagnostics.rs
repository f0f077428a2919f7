//! Diagnostics as T&S ops see them, snapshotted: each small broken (or
//! suspicious) pack is compiled and every diagnostic — its errors, or the
//! warnings of a pack that compiles — rendered as
//! `file:line:col: severity[code]: message`, the source line and a caret
//! line under the offending text. A change in wording or place shows up as
//! a snapshot diff (`cargo insta review`). Below the snapshots, exact
//! places asserted one by one: errors in every YAML scalar style, the
//! rule-range checks, no cascades.

use gavel_rules::{Diagnostic, Pack, RulesError, Severity};

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
        (
            "scores_and_thresholds_out_of_range",
            "version: \"t\"\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: \"true\"\n    score: 1000\n  - id: s\n    description: d\n    on: [bid_placed]\n    when: \"true\"\n    score: -5\ndecisions:\n  review: -1\n  challenge: 60\n  block: 90\n  by_kind:\n    payment_attempted: { review: 30, challenge: 20, block: 80 }\n    bid_place: { review: 30, challenge: 50, block: 80 }\n"
                .into(),
        ),
        (
            "failed_rule_adds_no_test_errors",
            "version: \"t\"\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: event.nope > 1\n    score: 1\n  - id: off\n    description: d\n    on: [bid_placed]\n    when: \"true\"\n    score: 1\n    enabled: false\ntests:\n  - name: t\n    steps:\n      - event: { userId: u1, bidPlaced: {} }\n        expect: { fires: [r] }\n      - event: { userId: u1, bidPlaced: {} }\n        expect: { not_fires: [r, off, rr] }\n"
                .into(),
        ),
        (
            "unknown_field_in_test_event",
            "version: \"t\"\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: event.bid_placed.amount.amount_minor > 100\n    score: 1\ntests:\n  - name: t\n    steps:\n      - event: { userId: u1, bidPlaced: { amount: { amountMinr: 500, currency: USD } } }\n        expect: { fires: [r] }\n      - event:\n          user_id: u1\n          devce_id: d1\n          bid_placed: { amount: { amount_minor: 500 } }\n"
                .into(),
        ),
        (
            "warnings",
            "version: \"t\"\nfeatures:\n  - name: unread\n    on: [bid_placed]\n    key: event.user_id\n    window: 10m\n    aggregate: count\n  - name: per_kind\n    on: [bid_placed]\n    key: event.kind + ':' + event.user_id\n    window: 10m\n    aggregate: count\nrules:\n  - id: tests_a_label_no_rule_sets\n    description: d\n    on: [bid_placed]\n    when: >-\n      event.user_id != '' &&\n      'recent_new_devise' in labels.user\n    score: 10\n  - id: sets_it_in_shadow\n    description: d\n    on: [login_succeeded]\n    when: \"true\"\n    score: 0\n    mode: shadow\n    labels:\n      - { add: shadow_only, entity: user, ttl: 1h }\n  - id: sets_it\n    description: d\n    on: [login_succeeded]\n    when: \"'shadow_only' in labels.user\"\n    score: 0\n    labels:\n      - { add: recent_new_device, entity: user, ttl: 1h }\n  - id: reads_per_kind_elsewhere\n    description: d\n    on: [chat_message_sent]\n    when: features.per_kind >= 3\n    score: 10\n  - id: kind_typo\n    description: d\n    on: [bid_placed]\n    when: event.kind == 'bid_place' || event.user_id == 'u'\n    score: 10\n  - id: null_card\n    description: d\n    on: [payment_attempted]\n    when: event.payment_attempted.card != null\n    score: 10\n"
                .into(),
        ),
    ]
}

/// The same error (`> "100"`, an int compared with a string) on the
/// expression's third line, in every way YAML can write a scalar over
/// several lines: (style, the `when:` value as written).
fn scalar_styles() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "folded_strip",
            ">-\n      event.user_id != \"\" &&\n      has(event.device_id) &&\n      event.bid_placed.amount.amount_minor > \"100\"",
        ),
        (
            "folded_clip",
            ">\n      event.user_id != \"\" &&\n      has(event.device_id) &&\n      event.bid_placed.amount.amount_minor > \"100\"",
        ),
        (
            "literal_clip",
            "|\n      event.user_id != \"\" &&\n      has(event.device_id) &&\n      event.bid_placed.amount.amount_minor > \"100\"",
        ),
        (
            "literal_strip",
            "|-\n      event.user_id != \"\" &&\n      has(event.device_id) &&\n      event.bid_placed.amount.amount_minor > \"100\"",
        ),
        (
            "folded_kept_indent",
            ">-\n      event.user_id != \"\" &&\n        has(event.device_id) &&\n          event.bid_placed.amount.amount_minor > \"100\"",
        ),
        (
            "plain",
            "event.user_id != \"\" &&\n      has(event.device_id) &&\n      event.bid_placed.amount.amount_minor > \"100\"",
        ),
        (
            "double_quoted",
            "\"event.user_id != \\\"\\\" &&\n      has(event.device_id) &&\n      event.bid_placed.amount.amount_minor > \\\"100\\\"\"",
        ),
        (
            "single_quoted",
            "'event.user_id != \"\" &&\n      has(event.device_id) &&\n      event.bid_placed.amount.amount_minor > \"100\"'",
        ),
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

/// Every diagnostic of a pack: its errors, or the warnings of a pack that
/// compiles.
fn diagnostics(text: &str) -> Vec<Diagnostic> {
    match Pack::compile([("pack.yaml", text)]) {
        Ok(pack) => pack.warnings,
        Err(RulesError::Invalid(diagnostics)) => diagnostics,
    }
}

#[test]
fn diagnostics_match_their_snapshots() {
    for (name, text) in cases() {
        let diagnostics = diagnostics(&text);
        assert!(!diagnostics.is_empty(), "case `{name}` compiled without a warning");
        let rendered = diagnostics.iter().map(|d| render(&text, d)).collect::<Vec<_>>().join("\n");
        insta::assert_snapshot!(name, rendered);
    }
}

#[test]
fn errors_point_at_their_own_line_and_column_in_every_scalar_style() {
    for (style, when) in scalar_styles() {
        let text = rule_when(when);
        let diagnostics = diagnostics(&text);
        let [d] = diagnostics.as_slice() else { panic!("{style}: one error expected, got {diagnostics:#?}") };
        assert!(d.message.contains("cannot compare int with string"), "{style}: {d}");
        // The comparison's own line (the expression's third), wherever it starts there.
        let (n, line) = text.lines().enumerate().find(|(_, l)| l.contains("event.bid_placed")).unwrap();
        let column = line.find("event.bid_placed").unwrap() + 1;
        assert_eq!((d.line, d.column), (n + 1, column), "{style}: {d}\n{text}");
        assert_eq!(d.len, "event.bid_placed.amount.amount_minor > \"100\"".len(), "{style}: {d}");
    }
}

#[test]
fn scores_and_thresholds_are_checked_where_they_are_written() {
    let text = &cases().into_iter().find(|(n, _)| *n == "scores_and_thresholds_out_of_range").unwrap().1;
    let places: Vec<(usize, usize, &str)> = diagnostics(text).iter().map(|d| (d.line, d.column, d.code)).collect();
    assert_eq!(
        places,
        [(7, 12, "E005"), (12, 12, "E005"), (14, 11, "E005"), (19, 5, "E003"), (18, 49, "E005")],
        "{:#?}",
        diagnostics(text)
    );
    // The shipped pack's model: 0 to 100 per rule, thresholds 1 to 1000.
    assert_eq!(gavel_rules::SCORE_RANGE, 0..=100);
    assert_eq!(gavel_rules::THRESHOLD_RANGE, 1..=1000);
    let ok = rule_when("\"true\"").replace("score: 1", "score: 100")
        + "decisions: { review: 1, challenge: 1, block: 1000 }\n";
    assert!(Pack::compile([("pack.yaml", ok.as_str())]).is_ok(), "{ok}");
}

#[test]
fn a_rule_that_fails_to_compile_adds_no_errors_to_the_tests_naming_it() {
    let text = &cases().into_iter().find(|(n, _)| *n == "failed_rule_adds_no_test_errors").unwrap().1;
    let diagnostics = diagnostics(text);
    let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages[0].starts_with("unknown field `event.nope`"), "{messages:#?}");
    assert!(messages[1].contains("rule `off` is disabled"), "{messages:#?}");
    assert!(messages[2].contains("unknown rule `rr`; did you mean"), "{messages:#?}");
}

#[test]
fn warnings_do_not_stop_a_pack_and_carry_their_codes() {
    let text = &cases().into_iter().find(|(n, _)| *n == "warnings").unwrap().1;
    let pack = Pack::compile([("pack.yaml", text.as_str())]).expect("warnings do not stop a pack");
    let codes: Vec<&str> = pack.warnings.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["W003", "W004", "W001", "W001", "W002", "W005"], "{:#?}", pack.warnings);
    assert!(pack.warnings.iter().all(|d| d.severity == Severity::Warning));
    assert_eq!((pack.warnings[0].line, pack.warnings[0].column), (44, 11), "{}", pack.warnings[0]);
    assert_eq!((pack.warnings[1].line, pack.warnings[1].column), (49, 11), "{}", pack.warnings[1]);
    let label = pack.warnings[2].to_string();
    assert!(label.starts_with("pack.yaml:19:7: warning[W001]: label `recent_new_devise`"), "{label}");
    assert!(label.contains("did you mean `recent_new_device`?"), "{label}");
    assert!(pack.warnings[3].message.contains("in shadow mode"), "{}", pack.warnings[3]);
    // The shipped pack is clean.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let files = shipped_files(&dir);
    let shipped =
        Pack::compile(files.iter().map(|(n, t)| (n.as_str(), t.as_str()))).expect("the shipped pack compiles");
    assert!(shipped.warnings.is_empty(), "{:#?}", shipped.warnings);
    // It keeps state keyed by more than the user, which only one process
    // owning every input partition counts in full.
    let beyond = shipped.state_beyond_the_message_key();
    for key in ["(keyed by event.device_id)", "(keyed by event.ip)", "(reads a feature for another key)"] {
        assert!(beyond.iter().any(|b| b.contains(key)), "{key} not in {beyond:?}");
    }
}

/// The pack directory's files (one level of subdirectories), as the binary reads them.
fn shipped_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(shipped_files(&path));
        } else {
            files.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    files
}
