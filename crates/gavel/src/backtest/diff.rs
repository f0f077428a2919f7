//! The comparison with a baseline pack over the same events: which rules
//! hit a different number of events, which decisions changed (with the
//! first few changed events explained), which events only one pack flags,
//! and how the actions requested change by type. With ground truth, each
//! changed event's label: the events only one pack flags per scenario
//! (`none`: false alarms gained or lost), and the baseline's detection
//! quality to set beside the replayed pack's.

use std::collections::{BTreeMap, BTreeSet};

use gavel_engine::Outcome;
use gavel_model::Event;
use gavel_model::pb::RuleMode;

use super::report::{Detection, Diff, Example, Report};
use super::score::Truth;

/// How many changed events a diff explains.
const EXAMPLES: usize = 5;

/// Accumulates the per-event differences between the two packs.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    decisions_changed: BTreeMap<String, u64>,
    flagged_changed: (u64, u64),
    flagged_changed_by_truth: BTreeMap<String, (u64, u64)>,
    examples: Vec<Example>,
}

impl Comparison {
    /// Compares the baseline's outcome for `event` with the replayed pack's;
    /// `truth` labels the changes.
    pub(super) fn add(&mut self, event: &Event, before: &Outcome, after: &Outcome, truth: Option<&Truth>) {
        let label = truth.map(|t| t.scenario_of(&event.event_id));
        let changed = match (before.publishes_signal(), after.publishes_signal()) {
            (true, false) => Some((1, 0)),
            (false, true) => Some((0, 1)),
            _ => None,
        };
        if let Some((lost, gained)) = changed {
            self.flagged_changed.0 += lost;
            self.flagged_changed.1 += gained;
            if let Some(label) = label {
                let by = self.flagged_changed_by_truth.entry(label.to_string()).or_default();
                by.0 += lost;
                by.1 += gained;
            }
        }
        if before.decision == after.decision {
            return;
        }
        let key = format!("{} → {}", before.decision.as_str(), after.decision.as_str());
        *self.decisions_changed.entry(key).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(Example {
                event_id: event.event_id.clone(),
                kind: after.kind.as_str().to_string(),
                baseline: (before.decision.as_str().to_string(), before.score),
                replayed: (after.decision.as_str().to_string(), after.score),
                baseline_rules: fired(before),
                replayed_rules: fired(after),
                truth: truth.map(|t| t.label_of(&event.event_id)),
            });
        }
    }

    /// The diff of `report` (the replayed pack's) against `baseline`, the
    /// baseline pack's report over the same events, and its detection
    /// quality where there is ground truth.
    pub(super) fn finish(self, report: &Report, baseline: Report, truth: Option<Detection>) -> Diff {
        let ids: BTreeSet<&String> = report.rules.keys().chain(baseline.rules.keys()).collect();
        let rules_changed = ids
            .into_iter()
            .filter_map(|id| {
                let a = baseline.rules.get(id).map_or(0, |r| r.hits);
                let b = report.rules.get(id).map_or(0, |r| r.hits);
                (a != b).then(|| (id.clone(), (a, b)))
            })
            .collect();
        let types: BTreeSet<&String> = report.actions.keys().chain(baseline.actions.keys()).collect();
        let actions_changed = types
            .into_iter()
            .filter_map(|t| {
                let a = baseline.actions.get(t).copied().unwrap_or(0);
                let b = report.actions.get(t).copied().unwrap_or(0);
                (a != b).then(|| (t.clone(), (a, b)))
            })
            .collect();
        Diff {
            pack: baseline.pack,
            rules_changed,
            decisions_changed: self.decisions_changed,
            flagged_changed: self.flagged_changed,
            actions_changed,
            flagged_changed_by_truth: truth.as_ref().map(|_| self.flagged_changed_by_truth),
            examples: self.examples,
            truth,
        }
    }
}

/// The rules that fired, each with its score and the features it read.
fn fired(outcome: &Outcome) -> Vec<String> {
    outcome
        .hits()
        .iter()
        .map(|h| {
            let features: Vec<String> = h.features.iter().map(|f| format!("{}={}", f.name, f.value)).collect();
            let shadow = if h.mode == RuleMode::Shadow as i32 { " (shadow)" } else { "" };
            format!("{} +{}{shadow} [{}]", h.rule_id, h.score, features.join(", "))
        })
        .collect()
}
