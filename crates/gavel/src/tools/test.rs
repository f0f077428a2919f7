//! `gavel test`: runs a pack's rule tests (inline `tests:` and
//! `tests/*.yaml`) and prints one line per test, failures beneath, after
//! the pack's warnings.
//!
//! Each test replays its steps, in event time, through a fresh engine. A
//! failing step says what was expected and what happened, the step's event
//! time, which rules made up the score, and for each rule the expectation
//! names the feature values it saw when it ran — not values read
//! afterwards, which the step's own event has already moved (a `since`
//! reads 0 once the event is recorded). They are captured by a probe: for
//! every rule, a shadow rule of score 0 on the same kinds, reading the same
//! features, that always fires. Shadow hits change nothing downstream, and
//! probes are left out of every expectation.

use std::path::Path;

use gavel_engine::{Engine, Outcome};
use gavel_model::pb::{ActionType, FeatureValue, RuleHit};
use gavel_model::timestamp_from_ms;
use gavel_rules::expr::Type;
use gavel_rules::{Expect, Pack, Rule, RuleMode, RulesError, TestCase, aggregate_type, compile_expression};

use crate::tools::pack::PackFiles;

/// Event time at which every test starts: 2026-01-01T00:00:00Z.
pub const TEST_START_MS: i64 = 1_767_225_600_000;

/// What `gavel test` found.
#[derive(Debug)]
pub struct Tested {
    /// The pack's warnings, rendered (empty when it has none).
    pub warnings: String,
    /// One line per test, failures beneath, and a count line.
    pub table: String,
    /// Every test passed (and, with `--deny-warnings`, the pack has no warnings).
    pub passed: bool,
}

/// Runs the rule tests of the pack in `dir`. A pack that does not compile
/// fails with its diagnostics; with `deny_warnings`, a pack with warnings
/// runs its tests but does not pass.
pub fn test_pack(dir: &Path, deny_warnings: bool) -> anyhow::Result<Tested> {
    let files = PackFiles::read(dir)?;
    let pack = files.compile().map_err(|RulesError::Invalid(d)| crate::error::bad_input(files.render(&d)))?;
    let reports = run_tests(&pack)?;
    let mut table = table(&reports);
    let denied = deny_warnings && !pack.warnings.is_empty();
    if denied {
        table.push_str(&format!("{} warning(s), denied by --deny-warnings\n", pack.warnings.len()));
    }
    Ok(Tested {
        warnings: files.render(&pack.warnings),
        table,
        passed: !denied && reports.iter().all(TestReport::passed),
    })
}

/// The result of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// The test's name.
    pub name: String,
    /// Where it is defined.
    pub place: String,
    /// Events sent.
    pub events: usize,
    /// Empty when the test passed; each failure may span several lines.
    pub failures: Vec<String>,
}

impl TestReport {
    /// True when every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Prefix of probe rule ids; a pack whose own rule ids start with it (a
/// NUL character, escaped in YAML) is refused.
const PROBE: &str = "\u{0}probe:";

/// Runs every test of `pack`.
pub fn run_tests(pack: &Pack) -> anyhow::Result<Vec<TestReport>> {
    let probed = with_probes(pack)?;
    Ok(pack.tests.iter().map(|test| run_test(&probed, test)).collect())
}

/// `pack` with one probe per rule.
fn with_probes(pack: &Pack) -> anyhow::Result<Pack> {
    let always = compile_expression("true", &[], &[], &[])
        .map_err(|e| anyhow::anyhow!("compiling the probe condition: {e:?}"))?;
    if let Some(rule) = pack.rules.iter().find(|r| r.id.starts_with(PROBE)) {
        anyhow::bail!("rule id {:?} starts with {PROBE:?}, which `gavel test` keeps for itself", rule.id);
    }
    let mut probed = pack.clone();
    probed.rules.extend(pack.rules.iter().map(|rule| Rule {
        id: format!("{PROBE}{}", rule.id),
        description: String::new(),
        owner: None,
        tags: Vec::new(),
        on: rule.on.clone(),
        when: always.clone(),
        reads: rule.reads.clone(),
        score: 0,
        mode: RuleMode::Shadow,
        actions: Vec::new(),
        labels: Vec::new(),
        wait: None,
        after: None,
    }));
    Ok(probed)
}

fn run_test(pack: &Pack, test: &TestCase) -> TestReport {
    let engine = Engine::new(pack.clone());
    let mut failures = Vec::new();
    let mut sent = 0;
    for (s, step) in test.steps.iter().enumerate() {
        let mut last = None;
        for r in 0..step.repeat {
            let t = TEST_START_MS.saturating_add((step.at_ms + step.every_ms * u64::from(r)) as i64);
            let mut event = step.event.clone();
            if event.occurred_at.is_none() || step.repeat > 1 {
                event.occurred_at = Some(timestamp_from_ms(t));
            }
            if event.event_id.is_empty() || step.repeat > 1 {
                event.event_id = format!("test-{s}-{r}");
            }
            sent += 1;
            match engine.evaluate(&event, Some(t), t) {
                Ok(outcome) => last = Some(outcome),
                Err(e) => failures.push(format!("step {} ({}), send {}: {e}", s + 1, step.place, r + 1)),
            }
        }
        if let (Some(expect), Some(outcome)) = (&step.expect, &last) {
            let problems = check(expect, outcome);
            if !problems.is_empty() {
                let when = event_time(outcome.event_time_ms);
                let mut failure =
                    format!("step {} ({}), event time {when}: {}", s + 1, step.place, problems.join("; "));
                failure.push_str(&explain(pack, expect, outcome));
                failures.push(failure);
            }
        }
    }
    TestReport { name: test.name.clone(), place: test.place.clone(), events: sent, failures }
}

/// The hits of the pack's own rules (probes left out).
fn rule_hits(outcome: &Outcome) -> impl Iterator<Item = &RuleHit> {
    outcome.hits().iter().filter(|h| !h.rule_id.starts_with(PROBE))
}

/// Checks `expect` against an event's outcome: its own hits and those of
/// the absence rules whose wait it ended (their actions come first: their
/// deadlines came before the event); the score and decision are the
/// event's own.
fn check(expect: &Expect, outcome: &Outcome) -> Vec<String> {
    let timeouts = || outcome.timeouts.iter().map(|t| &t.outcome);
    let fired: Vec<&str> = timeouts().chain([outcome]).flat_map(rule_hits).map(|h| h.rule_id.as_str()).collect();
    let mut problems = Vec::new();
    for rule in &expect.fires {
        if !fired.contains(&rule.as_str()) {
            problems.push(format!("expected `{rule}` to fire; fired: {fired:?}"));
        }
    }
    for rule in &expect.not_fires {
        if fired.contains(&rule.as_str()) {
            problems.push(format!("expected `{rule}` not to fire; fired: {fired:?}"));
        }
    }
    if let Some(decision) = expect.decision
        && decision != outcome.decision
    {
        problems.push(format!(
            "expected decision {}, got {} (score {})",
            decision.as_str_name(),
            outcome.decision.as_str_name(),
            outcome.score
        ));
    }
    if let Some(score) = expect.score
        && score != outcome.score
    {
        problems.push(format!("expected score {score}, got {}", outcome.score));
    }
    if let Some(actions) = &expect.actions {
        let got: Vec<ActionType> = timeouts()
            .chain([outcome])
            .flat_map(|o| &o.actions)
            .map(|a| ActionType::from_i32_or_unspecified(a.r#type))
            .collect();
        if &got != actions {
            let names = |v: &[ActionType]| v.iter().map(|a| a.as_str_name()).collect::<Vec<_>>();
            problems.push(format!("expected actions {:?}, got {:?}", names(actions), names(&got)));
        }
    }
    problems
}

/// Which rules made up the score, then, for each rule the expectation
/// names, its condition and the values it saw.
fn explain(pack: &Pack, expect: &Expect, outcome: &Outcome) -> String {
    let mut lines = Vec::new();
    let enforcing: Vec<String> = rule_hits(outcome)
        .filter(|h| h.mode == RuleMode::Enforce.proto() as i32)
        .map(|h| format!("`{}` {}", h.rule_id, h.score))
        .collect();
    let shadow: Vec<String> = rule_hits(outcome)
        .filter(|h| h.mode == RuleMode::Shadow.proto() as i32)
        .map(|h| format!("`{}` {}", h.rule_id, h.score))
        .collect();
    let mut score = match enforcing.as_slice() {
        [] => format!("\n           score {}: no enforcing rule fired", outcome.score),
        parts => format!("\n           score {} = {}", outcome.score, parts.join(" + ")),
    };
    if !shadow.is_empty() {
        score.push_str(&format!("; shadow, not counted: {}", shadow.join(", ")));
    }
    lines.push(score);
    let mut named: Vec<&String> = Vec::new();
    for id in expect.fires.iter().chain(&expect.not_fires) {
        if !named.contains(&id) {
            named.push(id);
        }
    }
    for id in named {
        let Some(rule) = pack.rules.iter().find(|r| &r.id == id) else { continue };
        let mode = if rule.mode == RuleMode::Shadow { " (shadow)" } else { "" };
        lines.push(format!("\n           `{id}`{mode} when: {}", rule.when.source()));
        if !rule.on.contains(&outcome.kind) {
            lines.push(format!("\n             does not run on {} events", outcome.kind.as_str()));
            continue;
        }
        if outcome.failed_rules.contains(id) {
            lines.push(
                "\n             its condition failed to evaluate on this event (counted as not firing)".to_string(),
            );
        }
        let probe = format!("{PROBE}{id}");
        let Some(seen) = outcome.hits().iter().find(|h| h.rule_id == probe) else { continue };
        if !seen.features.is_empty() {
            let values: Vec<String> = seen.features.iter().map(|f| feature_value(pack, f)).collect();
            lines.push(format!("\n             saw: {}", values.join(", ")));
        }
    }
    lines.concat()
}

/// `features.name = value` as the rule's condition read it: counts as
/// integers, times as timestamps, `since` as a duration, a recent set as
/// its size, no data as null.
fn feature_value(pack: &Pack, f: &FeatureValue) -> String {
    if f.value.is_nan() {
        return format!("features.{} = null (no data)", f.name);
    }
    let ty = pack.features.iter().find(|p| p.name == f.name).map(|p| aggregate_type(p.aggregate));
    let value = match ty {
        Some(Type::Int) => format!("{}", f.value as i64),
        Some(Type::Timestamp) => event_time(f.value as i64),
        Some(Type::Duration) => duration(f.value as i64),
        Some(Type::List(_)) => format!("{} items", f.value as i64),
        _ => format!("{}", f.value),
    };
    format!("features.{} = {value}", f.name)
}

/// An event time in RFC 3339, with its offset from the test's start.
fn event_time(ms: i64) -> String {
    let rfc3339 = serde_json::to_value(timestamp_from_ms(ms))
        .ok()
        .and_then(|v| v.as_str().map(|t| t.replace("+00:00", "Z")))
        .unwrap_or_else(|| format!("{ms} ms"));
    let offset = ms.saturating_sub(TEST_START_MS);
    if offset >= 0 { format!("{rfc3339} (start + {})", duration(offset)) } else { rfc3339 }
}

/// Milliseconds as `1h2m3s`, `1.5s`, `250ms`, `0s`.
fn duration(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1_000 {
        return format!("{sign}{ms}ms");
    }
    let (d, h, m, s, rest) = (ms / 86_400_000, ms / 3_600_000 % 24, ms / 60_000 % 60, ms / 1_000 % 60, ms % 1_000);
    let mut out = sign.to_string();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    match (s, rest) {
        (0, 0) => {}
        (s, 0) => out.push_str(&format!("{s}s")),
        (s, rest) => out.push_str(&format!("{s}.{}s", format!("{rest:03}").trim_end_matches('0'))),
    }
    out
}

fn table(reports: &[TestReport]) -> String {
    let mut out = String::new();
    let width = reports.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    out.push_str(&format!("{:<6} {:<width$}  {:>6}  place\n", "result", "test", "events"));
    for r in reports {
        let result = if r.passed() { "ok" } else { "FAIL" };
        out.push_str(&format!("{result:<6} {:<width$}  {:>6}  {}\n", r.name, r.events, r.place));
        for failure in &r.failures {
            out.push_str(&format!("         - {failure}\n"));
        }
    }
    let failed = reports.iter().filter(|r| !r.passed()).count();
    out.push_str(&format!("\n{} passed, {failed} failed\n", reports.len() - failed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_pack_tests_pass_without_warnings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let tested = test_pack(&dir, true).unwrap();
        assert!(tested.passed, "{}{}", tested.warnings, tested.table);
        assert!(tested.warnings.is_empty(), "{}", tested.warnings);
        assert!(tested.table.contains(" passed, 0 failed"), "{}", tested.table);
    }

    /// A pack in a fresh directory.
    fn pack_dir(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gavel-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pack.yaml"), text).unwrap();
        dir
    }

    #[test]
    fn a_failure_shows_what_the_rule_saw_the_event_time_and_the_score() {
        // The first bid has no previous one: the rule saw `since` as null.
        // Read after the event was recorded, it would be 0.
        let dir = pack_dir(
            "saw",
            "version: t\nfeatures:\n  - name: gap\n    on: [bid_placed]\n    key: event.user_id\n    window: 1h\n    aggregate: since\n\
             rules:\n  - id: quick\n    description: d\n    on: [bid_placed]\n    when: features.gap != null && features.gap < duration('1s')\n    score: 30\n\
             \x20 - id: any\n    description: d\n    on: [bid_placed]\n    when: 'true'\n    score: 20\n\
             \x20 - id: quiet\n    description: d\n    on: [bid_placed]\n    when: 'true'\n    score: 5\n    mode: shadow\n\
             tests:\n  - name: t\n    steps:\n      - at: 90s\n        event: { userId: u, bidPlaced: {} }\n        expect: { fires: [quick] }\n",
        );
        let tested = test_pack(&dir, false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!tested.passed);
        let table = &tested.table;
        assert!(table.contains("event time 2026-01-01T00:01:30Z (start + 1m30s)"), "{table}");
        assert!(table.contains("expected `quick` to fire; fired: [\"any\", \"quiet\"]"), "{table}");
        assert!(table.contains("score 20 = `any` 20; shadow, not counted: `quiet` 5"), "{table}");
        assert!(table.contains("saw: features.gap = null (no data)"), "{table}");
        assert!(!table.contains("probe"), "probes stay out of reports: {table}");
    }

    #[test]
    fn warnings_are_shown_and_fail_only_when_denied() {
        let dir = pack_dir(
            "warn",
            "version: t\nfeatures:\n  - name: unread\n    on: [bid_placed]\n    key: event.user_id\n    window: 1h\n    aggregate: count\n\
             rules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: 'true'\n    score: 1\n",
        );
        let allowed = test_pack(&dir, false).unwrap();
        let denied = test_pack(&dir, true).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(allowed.passed, "{}", allowed.table);
        assert!(allowed.warnings.contains("warning[W002]: feature `unread` is never read"), "{}", allowed.warnings);
        assert!(!denied.passed);
        assert!(denied.table.contains("1 warning(s), denied by --deny-warnings"), "{}", denied.table);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(250), "250ms");
        assert_eq!(duration(1_500), "1.5s");
        assert_eq!(duration(90_000), "1m30s");
        assert_eq!(duration(86_400_000 + 3_600_000), "1d1h");
        assert_eq!(duration(-2_000), "-2s");
    }
}
