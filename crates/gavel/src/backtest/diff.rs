//! The comparison with a baseline pack over the same events: which rules
//! hit a different number of events, which decisions changed (with the
//! first few changed events explained), and which events only one pack
//! flags.

use std::collections::{BTreeMap, BTreeSet};

use gavel_engine::Outcome;
use gavel_model::Event;
use gavel_model::pb::RuleMode;

use super::report::{Diff, Example, Report};

/// How many changed events a diff explains.
const EXAMPLES: usize = 5;

/// Accumulates the per-event differences between the two packs.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    decisions_changed: BTreeMap<String, u64>,
    flagged_changed: (u64, u64),
    examples: Vec<Example>,
}

impl Comparison {
    /// Compares the baseline's outcome for `event` with the replayed pack's.
    pub(super) fn add(&mut self, event: &Event, before: &Outcome, after: &Outcome) {
        match (before.publishes_signal(), after.publishes_signal()) {
            (true, false) => self.flagged_changed.0 += 1,
            (false, true) => self.flagged_changed.1 += 1,
            _ => {}
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
            });
        }
    }

    /// The diff of `report` (the replayed pack's) against `baseline`, the
    /// baseline pack's report over the same events.
    pub(super) fn finish(self, report: &Report, baseline: Report) -> Diff {
        let ids: BTreeSet<&String> = report.rules.keys().chain(baseline.rules.keys()).collect();
        let rules_changed = ids
            .into_iter()
            .filter_map(|id| {
                let a = baseline.rules.get(id).map_or(0, |r| r.hits);
                let b = report.rules.get(id).map_or(0, |r| r.hits);
                (a != b).then(|| (id.clone(), (a, b)))
            })
            .collect();
        Diff {
            pack: baseline.pack,
            rules_changed,
            decisions_changed: self.decisions_changed,
            flagged_changed: self.flagged_changed,
            examples: self.examples,
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
