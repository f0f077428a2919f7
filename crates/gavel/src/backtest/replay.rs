//! The replay loop: every recorded event, in order, through the pack (and
//! the baseline pack beside it), each decision stamped at its event's
//! time, tallied per pack and handed to the comparison and the scoring.

use std::collections::BTreeMap;

use gavel_engine::{Engine, Outcome};
use gavel_model::{Encoding, decode};
use gavel_rules::Pack;

use super::diff::Comparison;
use super::recording::Recording;
use super::report::{PackId, Report, RuleHits};
use super::score::{Scoring, Truth};
use gavel_model::pb::ActionType;

/// Replays `recording` through `pack` (and `baseline`, side by side), calling
/// `progress` with the number of events done every few thousand.
pub fn replay(
    recording: &Recording,
    pack: Pack,
    baseline: Option<Pack>,
    truth: Option<&Truth>,
    progress: &mut dyn FnMut(u64),
) -> Report {
    let engine = Engine::new(pack);
    let mut tally = Tally::new(engine.pack());
    let mut base = baseline.map(Engine::new).map(|e| {
        let tally = Tally::new(e.pack());
        let scoring = truth.map(|t| Scoring::new(t, e.pack()));
        (e, tally, scoring)
    });
    let mut comparison = Comparison::default();
    let mut scoring = truth.map(|t| Scoring::new(t, engine.pack()));
    let mut events = 0u64;
    for (i, (t, bytes)) in recording.iter().enumerate() {
        if i % 4096 == 0 {
            progress(i as u64);
        }
        // Encoded by `Recording::new` from a decoded event: it decodes.
        let Ok(event) = decode(Encoding::Protobuf, bytes) else { continue };
        events += 1;
        let outcome = match engine.evaluate(&event, Some(t), t) {
            Ok(o) => o,
            Err(e) => {
                *tally.rejected.entry(e.to_string()).or_default() += 1;
                continue;
            }
        };
        tally.add(&outcome);
        if let Some(scoring) = &mut scoring {
            scoring.add(&event, &outcome);
        }
        let Some((base_engine, base_tally, base_scoring)) = &mut base else { continue };
        let Ok(before) = base_engine.evaluate(&event, Some(t), t) else { continue };
        base_tally.add(&before);
        if let Some(scoring) = base_scoring {
            scoring.add(&event, &before);
        }
        comparison.add(&event, &before, &outcome, truth);
    }
    progress(recording.len() as u64);
    let mut report = tally.into_report(events, recording.skipped);
    if let Some((_, base_tally, base_scoring)) = base {
        let before = base_tally.into_report(events, recording.skipped);
        report.baseline = Some(comparison.finish(&report, before, base_scoring.map(Scoring::finish)));
    }
    report.truth = scoring.map(Scoring::finish);
    report
}

/// Accumulates one pack's results.
struct Tally {
    pack: PackId,
    modes: BTreeMap<String, String>,
    rejected: BTreeMap<String, u64>,
    flagged: u64,
    decisions: BTreeMap<String, BTreeMap<String, u64>>,
    rules: BTreeMap<String, u64>,
    actions: BTreeMap<String, u64>,
    scores: BTreeMap<String, u64>,
}

impl Tally {
    fn new(pack: &Pack) -> Tally {
        let modes = pack
            .rules
            .iter()
            .map(|r| {
                let mode = r.mode.as_str();
                (r.id.clone(), mode.to_string())
            })
            .collect();
        Tally {
            pack: PackId::of(pack),
            modes,
            rejected: BTreeMap::new(),
            flagged: 0,
            decisions: BTreeMap::new(),
            rules: BTreeMap::new(),
            actions: BTreeMap::new(),
            scores: BTreeMap::new(),
        }
    }

    /// One event's outcome, and the rule hits and actions of the absence
    /// rules it ended the wait of (those count no event of their own).
    fn add(&mut self, outcome: &Outcome) {
        for timeout in &outcome.timeouts {
            self.add_hits(&timeout.outcome);
        }
        if outcome.publishes_signal() {
            self.flagged += 1;
        }
        *self
            .decisions
            .entry(outcome.kind.as_str().to_string())
            .or_default()
            .entry(outcome.decision.as_str().to_string())
            .or_default() += 1;
        self.add_hits(outcome);
        *self.scores.entry(score_band(outcome.score).to_string()).or_default() += 1;
    }

    fn add_hits(&mut self, outcome: &Outcome) {
        for hit in outcome.hits() {
            *self.rules.entry(hit.rule_id.clone()).or_default() += 1;
        }
        for action in &outcome.actions {
            *self
                .actions
                .entry(ActionType::from_i32_or_unspecified(action.r#type).as_str().to_string())
                .or_default() += 1;
        }
    }

    fn into_report(self, events: u64, skipped: u64) -> Report {
        let rules = self
            .rules
            .iter()
            .map(|(id, &hits)| {
                let mode = self.modes.get(id).cloned().unwrap_or_default();
                (id.clone(), RuleHits { mode, hits })
            })
            .collect();
        Report {
            pack: self.pack,
            events,
            skipped,
            rejected: self.rejected,
            flagged: self.flagged,
            decisions: self.decisions,
            rules,
            actions: self.actions,
            scores: self.scores,
            baseline: None,
            truth: None,
        }
    }
}

/// Score bands, named so that they sort in order.
fn score_band(score: i32) -> &'static str {
    match score {
        i32::MIN..=0 => "0",
        1..=19 => "1-19",
        20..=39 => "20-39",
        40..=59 => "40-59",
        60..=79 => "60-79",
        80..=99 => "80-99",
        _ => "100+",
    }
}
