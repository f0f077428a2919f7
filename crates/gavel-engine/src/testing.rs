//! Running a pack's rule tests: each test replays its steps, in event time,
//! through a fresh engine for the pack and checks the expectations on each
//! step's last outcome. Failures say what was expected, what happened, and
//! the values of the features the rules in question read.

use gavel_model::pb::ActionType;
use gavel_model::timestamp_from_ms;
use gavel_rules::{Expect, Pack, TestCase};

use crate::{Engine, Outcome};

/// Event time at which every test starts: 2026-01-01T00:00:00Z.
pub const TEST_START_MS: i64 = 1_767_225_600_000;

/// The result of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// The test's name.
    pub name: String,
    /// Where it is defined.
    pub place: String,
    /// Events sent.
    pub events: usize,
    /// Empty when the test passed.
    pub failures: Vec<String>,
}

impl TestReport {
    /// True when every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every test of `pack`.
pub fn run_tests(pack: &Pack) -> Vec<TestReport> {
    pack.tests.iter().map(|test| run_test(pack, test)).collect()
}

fn run_test(pack: &Pack, test: &TestCase) -> TestReport {
    let engine = Engine::new(pack.clone());
    let mut failures = Vec::new();
    let mut sent = 0;
    for (s, step) in test.steps.iter().enumerate() {
        let mut last = None;
        for r in 0..step.repeat {
            let t = TEST_START_MS + (step.at_ms + step.every_ms * u64::from(r)) as i64;
            let mut event = step.event.clone();
            if event.occurred_at.is_none() || step.repeat > 1 {
                event.occurred_at = Some(timestamp_from_ms(t));
            }
            if event.event_id.is_empty() || step.repeat > 1 {
                event.event_id = format!("test-{s}-{r}");
            }
            sent += 1;
            match engine.evaluate(&event, Some(t), t) {
                Ok(outcome) => last = Some((event, outcome)),
                Err(e) => failures.push(format!("step {} ({}): {e}", s + 1, step.place)),
            }
        }
        if let (Some(expect), Some((event, outcome))) = (&step.expect, &last) {
            for problem in check(expect, outcome) {
                let facts = explain(&engine, expect, event, outcome);
                failures.push(format!("step {} ({}): {problem}{facts}", s + 1, step.place));
            }
        }
    }
    TestReport { name: test.name.clone(), place: test.place.clone(), events: sent, failures }
}

fn check(expect: &Expect, outcome: &Outcome) -> Vec<String> {
    let fired: Vec<&str> = outcome.hits().iter().map(|h| h.rule_id.as_str()).collect();
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
        let got: Vec<ActionType> =
            outcome.actions.iter().map(|a| ActionType::from_i32_or_unspecified(a.r#type)).collect();
        if &got != actions {
            let names = |v: &[ActionType]| v.iter().map(|a| a.as_str_name()).collect::<Vec<_>>();
            problems.push(format!("expected actions {:?}, got {:?}", names(actions), names(&got)));
        }
    }
    problems
}

/// The values the rules named in the expectation read, and their conditions.
fn explain(engine: &Engine, expect: &Expect, event: &gavel_model::Event, outcome: &Outcome) -> String {
    let mut lines = Vec::new();
    for id in expect.fires.iter().chain(&expect.not_fires) {
        let Some(rule) = engine.pack().rules.iter().find(|r| &r.id == id) else { continue };
        let values: Vec<String> = engine
            .read_features(&rule.reads, event, outcome.event_time_ms)
            .into_iter()
            .map(|(name, value)| match value {
                Some(v) => format!("features.{name} = {v}"),
                None => format!("features.{name} = null (no data)"),
            })
            .collect();
        let mode = if rule.mode == gavel_rules::RuleMode::Shadow { " (shadow)" } else { "" };
        lines.push(format!("\n      `{id}`{mode} when: {}", rule.when.source()));
        if !values.is_empty() {
            lines.push(format!("\n        read: {}", values.join(", ")));
        }
    }
    lines.concat()
}
