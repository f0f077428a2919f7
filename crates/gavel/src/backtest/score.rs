//! Detection quality against ground truth: the [`Truth`] of a recording
//! (read through gavel-recording's typed reader) and the precision and
//! recall per scenario and per rule that a replay scores against it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use gavel_engine::Outcome;
use gavel_model::Event;
use gavel_recording::{TruthRecord, read_truth};
use gavel_rules::Pack;

use super::report::{Detection, LookAlikeScore, RuleScore, ScenarioScore};

/// Ground truth: which scenario each labelled event belongs to, which
/// honest look-alike an unlabelled one is, and the user involved
/// (gavel-recording's ground-truth file; see [`TruthRecord`]).
#[derive(Debug, Default)]
pub struct Truth {
    scenario_of: HashMap<String, String>,
    look_alike_of: HashMap<String, String>,
    users_of: HashMap<String, String>,
}

impl Truth {
    /// Reads a ground-truth file; blank lines are ignored, and the first
    /// line that is not a record is an error naming it.
    pub fn read<R: BufRead>(reader: R) -> gavel_recording::Result<Truth> {
        read_truth(reader).collect()
    }

    /// The scenario `event_id` belongs to (`none` when unlabelled).
    pub(super) fn scenario_of(&self, event_id: &str) -> &str {
        self.scenario_of.get(event_id).map_or(NONE, String::as_str)
    }

    /// The honest look-alike `event_id` is, if the truth names one.
    pub(super) fn look_alike_of(&self, event_id: &str) -> Option<&str> {
        self.look_alike_of.get(event_id).map(String::as_str)
    }

    /// How an event is labelled, for reading: its scenario, and for an
    /// honest look-alike which one (`none (look-alike: household)`).
    pub(super) fn label_of(&self, event_id: &str) -> String {
        match self.look_alike_of(event_id) {
            Some(look_alike) => format!("{NONE} (look-alike: {look_alike})"),
            None => self.scenario_of(event_id).to_string(),
        }
    }

    /// Parses the text of a ground-truth file, as [`Truth::read`] does.
    pub fn parse(text: &str) -> gavel_recording::Result<Truth> {
        Truth::read(text.as_bytes())
    }
}

impl FromIterator<TruthRecord> for Truth {
    /// Later records of an event replace earlier ones; a record without a
    /// `user` keeps the user an earlier one gave.
    fn from_iter<I: IntoIterator<Item = TruthRecord>>(records: I) -> Truth {
        let mut truth = Truth::default();
        for mut record in records {
            if let Some(user) = record.entities.remove("user") {
                truth.users_of.insert(record.event_id.clone(), user);
            }
            match record.look_alike {
                // A look-alike is honest traffic whatever its scenario says.
                Some(look_alike) if record.scenario == NONE => {
                    truth.scenario_of.remove(&record.event_id);
                    truth.look_alike_of.insert(record.event_id, look_alike);
                }
                _ => {
                    truth.look_alike_of.remove(&record.event_id);
                    truth.scenario_of.insert(record.event_id, record.scenario);
                }
            }
        }
        truth
    }
}

/// Accumulates detection quality against ground truth.
pub(super) struct Scoring<'t> {
    truth: &'t Truth,
    /// Per rule: its tags, `-` read as `_`, to match scenario names.
    tags: HashMap<String, Vec<String>>,
    /// Per scenario: (events, flagged).
    events: BTreeMap<String, (u64, u64)>,
    /// Per scenario: users seen, users caught.
    users: BTreeMap<String, (HashSet<String>, HashSet<String>)>,
    /// Per honest look-alike: its events and users, flagged or not.
    look_alikes: BTreeMap<String, Tally>,
    /// Per rule: hits per scenario.
    rules: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per flagged event: its scenario and the rules that fired on it.
    flagged: Vec<(String, Vec<String>)>,
}

/// Events and users of one kind, and those flagged.
#[derive(Default)]
struct Tally {
    events: u64,
    flagged: u64,
    users: HashSet<String>,
    users_flagged: HashSet<String>,
}

impl Tally {
    fn score(&self) -> LookAlikeScore {
        let (users, flagged) = (self.users.len() as u64, self.users_flagged.len() as u64);
        LookAlikeScore {
            events: self.events,
            flagged: self.flagged,
            users,
            users_flagged: flagged,
            share_flagged: ratio(flagged, users),
        }
    }
}

/// `a / b` to four places (0 when `b` is 0).
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { (a as f64 / b as f64 * 1e4).round() / 1e4 }
}

/// The scenario name of unlabelled traffic.
pub(super) const NONE: &str = "none";

impl<'t> Scoring<'t> {
    pub(super) fn new(truth: &'t Truth, pack: &Pack) -> Self {
        // Tags with `-` read as `_`, so that `bid-bot` names `bid_bot`.
        let tags =
            pack.rules.iter().map(|r| (r.id.clone(), r.tags.iter().map(|t| t.replace('-', "_")).collect())).collect();
        Scoring {
            truth,
            tags,
            events: BTreeMap::new(),
            users: BTreeMap::new(),
            look_alikes: BTreeMap::new(),
            rules: BTreeMap::new(),
            flagged: Vec::new(),
        }
    }

    /// Counts one evaluated event against its label.
    pub(super) fn add(&mut self, event: &Event, outcome: &Outcome) {
        for timeout in &outcome.timeouts {
            self.add_one(&timeout.event, &timeout.outcome, false);
        }
        self.add_one(event, outcome, true);
    }

    /// One outcome of `event`: the event's own (counted as an event), or
    /// an absence rule's firing for it (which flags its user and counts
    /// its hits, but is no event of its own).
    fn add_one(&mut self, event: &Event, outcome: &Outcome, own: bool) {
        let scenario = self.truth.scenario_of(&event.event_id);
        let is_flagged = outcome.publishes_signal();
        if own {
            let entry = self.events.entry(scenario.to_string()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(is_flagged);
        }
        let user = || self.truth.users_of.get(&event.event_id).unwrap_or(&event.user_id).clone();
        if scenario != NONE {
            let user = user();
            let (seen, caught) = self.users.entry(scenario.to_string()).or_default();
            if is_flagged {
                caught.insert(user.clone());
            }
            seen.insert(user);
        } else if let Some(look_alike) = self.truth.look_alike_of(&event.event_id) {
            let user = user();
            let tally = self.look_alikes.entry(look_alike.to_string()).or_default();
            if own {
                tally.events += 1;
                tally.flagged += u64::from(is_flagged);
            }
            if is_flagged {
                tally.users_flagged.insert(user.clone());
            }
            tally.users.insert(user);
        }
        for hit in outcome.hits() {
            *self.rules.entry(hit.rule_id.clone()).or_default().entry(scenario.to_string()).or_default() += 1;
        }
        if is_flagged {
            let rules = outcome
                .hits()
                .iter()
                .filter(|h| h.score != 0 && h.mode == gavel_model::pb::RuleMode::Enforce as i32)
                .map(|h| h.rule_id.clone())
                .collect();
            self.flagged.push((scenario.to_string(), rules));
        }
    }

    /// Precision and recall per scenario and per rule.
    pub(super) fn finish(self) -> Detection {
        let rules: BTreeMap<String, RuleScore> = self
            .rules
            .into_iter()
            .map(|(id, by_scenario)| {
                let hits = by_scenario.values().sum();
                let known = |s: &String| s.as_str() != NONE && self.events.contains_key(s);
                let mut targets: Vec<String> =
                    self.tags.get(&id).map(|t| t.iter().filter(|s| known(s)).cloned().collect()).unwrap_or_default();
                if targets.is_empty() {
                    // Most hits wins; ties go to the name first in order, for determinism.
                    targets.extend(
                        by_scenario
                            .iter()
                            .filter(|(s, _)| s.as_str() != NONE)
                            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                            .map(|(s, _)| s.clone()),
                    );
                }
                let on_target = targets.iter().map(|t| by_scenario.get(t).copied().unwrap_or(0)).sum();
                (id, RuleScore { hits, precision: ratio(on_target, hits), by_scenario, targets })
            })
            .collect();
        let mut scenarios = BTreeMap::new();
        for (scenario, (events, flagged)) in &self.events {
            // Events flagged by this scenario's rules, and how many of those
            // are abuse those rules are for (this scenario, or another that
            // a rule targets alongside it): the rest are false alarms.
            let mut by_its_rules = 0;
            let mut correct = 0;
            for (truth, fired) in &self.flagged {
                let its: Vec<&RuleScore> =
                    fired.iter().filter_map(|r| rules.get(r)).filter(|s| s.targets.contains(scenario)).collect();
                if !its.is_empty() {
                    by_its_rules += 1;
                    correct += u64::from(its.iter().any(|s| s.targets.contains(truth)));
                }
            }
            let (users, caught) = self.users.get(scenario).map_or((0, 0), |(s, c)| (s.len() as u64, c.len() as u64));
            scenarios.insert(
                scenario.clone(),
                ScenarioScore {
                    events: *events,
                    flagged: *flagged,
                    recall: ratio(*flagged, *events),
                    users,
                    users_caught: caught,
                    user_recall: ratio(caught, users),
                    precision: ratio(correct, by_its_rules),
                },
            );
        }
        let mut all = Tally::default();
        let mut look_alikes = BTreeMap::new();
        for (name, tally) in self.look_alikes {
            look_alikes.insert(name, tally.score());
            all.events += tally.events;
            all.flagged += tally.flagged;
            all.users.extend(tally.users);
            all.users_flagged.extend(tally.users_flagged);
        }
        let look_alike_total = (!look_alikes.is_empty()).then(|| all.score());
        Detection { scenarios, rules, look_alikes, look_alike_total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_reads_labels_and_users_and_reports_bad_lines() {
        let text = "{\"event_id\":\"e1\",\"scenario\":\"bid_bot\",\"entities\":{\"user\":\"bot-1\",\"ip\":\"1.2.3.4\"}}\n\
                    \n\
                    {\"event_id\":\"e2\",\"scenario\":\"any_name_at_all\"}\n\
                    {\"event_id\":\"e1\",\"scenario\":\"chat_spam\"}\n";
        let truth = Truth::parse(text).unwrap();
        // A later record of an event wins; one without a user keeps the earlier user.
        assert_eq!(truth.scenario_of["e1"], "chat_spam");
        assert_eq!(truth.users_of["e1"], "bot-1");
        assert_eq!(truth.scenario_of["e2"], "any_name_at_all");
        assert!(!truth.users_of.contains_key("e2"));

        let text = "{\"event_id\":\"e3\",\"scenario\":\"none\",\"look_alike\":\"household\",\"entities\":{\"user\":\"u-1\"}}\n";
        let truth = Truth::parse(text).unwrap();
        assert_eq!(truth.scenario_of("e3"), NONE);
        assert_eq!(truth.look_alike_of("e3"), Some("household"));
        assert_eq!(truth.label_of("e3"), "none (look-alike: household)");
        assert_eq!(truth.users_of["e3"], "u-1");

        let err = Truth::parse("{\"event_id\":\"e1\"}\n").unwrap_err();
        assert!(matches!(err, gavel_recording::Error::TruthLine { line: 1, .. }), "{err}");
    }
}
