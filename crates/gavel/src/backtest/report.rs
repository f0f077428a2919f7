//! What a replay reports: the [`Report`] types, serialized as the stable
//! JSON of `gavel replay --json` (every map ordered, field order fixed), and
//! their rendering as the readable table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gavel_rules::Pack;
use serde::Serialize;

use super::score::NONE;

/// What a replay found. Every map is ordered, so the JSON is stable.
#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    /// The pack replayed.
    pub pack: PackId,
    /// Events evaluated.
    pub events: u64,
    /// Records without an event time or payload, not evaluated.
    pub skipped: u64,
    /// Events the engine rejected (e.g. no usable time), per reason.
    pub rejected: BTreeMap<String, u64>,
    /// Events flagged (a signal would be published).
    pub flagged: u64,
    /// Decisions per event kind.
    pub decisions: BTreeMap<String, BTreeMap<String, u64>>,
    /// Hits per rule, enforcing and shadow, with the rule's mode.
    pub rules: BTreeMap<String, RuleHits>,
    /// Actions requested, by type.
    pub actions: BTreeMap<String, u64>,
    /// Events per score band (the enforcing score sum).
    pub scores: BTreeMap<String, u64>,
    /// The comparison with `--baseline`, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Diff>,
    /// Detection quality against `--truth`, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<Detection>,
}

/// A pack's identity.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PackId {
    /// `version:` from the pack.
    pub version: String,
    /// Content hash.
    pub hash: String,
}

impl PackId {
    /// The identity of `pack`.
    pub(super) fn of(pack: &Pack) -> PackId {
        PackId { version: pack.version.clone(), hash: pack.hash.clone() }
    }
}

/// One rule's hits.
#[derive(Debug, Serialize, PartialEq, Eq, Default, Clone)]
pub struct RuleHits {
    /// `enforce` or `shadow`.
    pub mode: String,
    /// Events it fired on.
    pub hits: u64,
}

/// How the replayed pack differs from the baseline on the same events.
#[derive(Debug, Serialize, PartialEq)]
pub struct Diff {
    /// The baseline pack.
    pub pack: PackId,
    /// Rules whose hit count differs: (baseline hits, hits). A rule only in
    /// one pack has 0 in the other.
    pub rules_changed: BTreeMap<String, (u64, u64)>,
    /// Events whose decision differs, by `baseline → replayed` decision.
    pub decisions_changed: BTreeMap<String, u64>,
    /// Events flagged by one pack only: (baseline only, replayed only).
    pub flagged_changed: (u64, u64),
    /// Action types requested a different number of times: (baseline,
    /// replayed).
    pub actions_changed: BTreeMap<String, (u64, u64)>,
    /// With ground truth: the events flagged by one pack only, by their
    /// scenario (`none`: unlabelled, so a false alarm lost or gained).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged_changed_by_truth: Option<BTreeMap<String, (u64, u64)>>,
    /// The first few events whose decision changed, explained.
    pub examples: Vec<Example>,
    /// With ground truth: the baseline's detection quality, to set beside
    /// the replayed pack's (`Report::truth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<Detection>,
}

/// One event whose decision changed.
#[derive(Debug, Serialize, PartialEq)]
pub struct Example {
    /// The event.
    pub event_id: String,
    /// Its kind.
    pub kind: String,
    /// Baseline decision and score.
    pub baseline: (String, i32),
    /// Replayed decision and score.
    pub replayed: (String, i32),
    /// Rules that fired in the baseline, with the features they read.
    pub baseline_rules: Vec<String>,
    /// Rules that fired in the replayed pack, with the features they read.
    pub replayed_rules: Vec<String>,
    /// With ground truth: the event's scenario (`none`: unlabelled;
    /// `none (look-alike: household)`: an honest look-alike).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
}

/// Precision and recall against ground truth.
#[derive(Debug, Serialize, PartialEq)]
pub struct Detection {
    /// Per scenario (plus `none` for unlabelled traffic).
    pub scenarios: BTreeMap<String, ScenarioScore>,
    /// Per rule that fired: which scenarios its hits fell on.
    pub rules: BTreeMap<String, RuleScore>,
    /// Per honest look-alike the truth names (`household`,
    /// `second_card`, …): how many of its users the pack flags. Their
    /// events are also counted in `scenarios["none"]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub look_alikes: BTreeMap<String, LookAlikeScore>,
    /// Every honest look-alike together (a user counted once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub look_alike_total: Option<LookAlikeScore>,
}

/// How many users of one kind of honest look-alike a pack flags.
#[derive(Debug, Serialize, PartialEq)]
pub struct LookAlikeScore {
    /// Events labelled with it.
    pub events: u64,
    /// Of those, flagged (false alarms).
    pub flagged: u64,
    /// Users with at least one such event.
    pub users: u64,
    /// Users with at least one such event flagged.
    pub users_flagged: u64,
    /// `users_flagged / users`.
    pub share_flagged: f64,
}

/// How well one scenario is caught.
#[derive(Debug, Serialize, PartialEq)]
pub struct ScenarioScore {
    /// Its events.
    pub events: u64,
    /// Of those, flagged.
    pub flagged: u64,
    /// `flagged / events`.
    pub recall: f64,
    /// Users in the scenario, and those with at least one flagged event.
    pub users: u64,
    /// Users caught.
    pub users_caught: u64,
    /// `users_caught / users`.
    pub user_recall: f64,
    /// Of the events flagged by the rules that target this scenario, the
    /// share that are abuse those rules target (this scenario, or another
    /// one a rule is also for); the rest are false alarms.
    pub precision: f64,
}

/// Where one rule's hits fell.
#[derive(Debug, Serialize, PartialEq)]
pub struct RuleScore {
    /// Hits (enforcing or shadow).
    pub hits: u64,
    /// Hits per scenario (`none`: unlabelled traffic).
    pub by_scenario: BTreeMap<String, u64>,
    /// The scenarios it is for: those its tags name (`bid-bot` names
    /// `bid_bot`), or else the labelled scenario it hits most.
    pub targets: Vec<String>,
    /// Share of its hits on events of its targets.
    pub precision: f64,
}

impl Report {
    /// The report as a readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "pack {} ({})", self.pack.version, self.pack.hash);
        let _ = writeln!(
            out,
            "{} events replayed, {} flagged ({:.2}%), {} skipped, {} rejected\n",
            self.events,
            self.flagged,
            100.0 * self.flagged as f64 / self.events.max(1) as f64,
            self.skipped,
            self.rejected.values().sum::<u64>()
        );
        self.write_counts(&mut out);
        if let Some(diff) = &self.baseline {
            diff.write_table(&mut out, self.truth.as_ref());
        }
        if let Some(truth) = &self.truth {
            truth.write_table(&mut out);
        }
        out
    }

    /// Rule hits, actions, decisions by kind and score bands.
    fn write_counts(&self, out: &mut String) {
        let _ = writeln!(out, "{:<34} {:>8} {:>10}", "rule", "mode", "hits");
        let mut rules: Vec<_> = self.rules.iter().collect();
        rules.sort_by(|a, b| b.1.hits.cmp(&a.1.hits).then(a.0.cmp(b.0)));
        for (id, r) in rules {
            let _ = writeln!(out, "{id:<34} {:>8} {:>10}", r.mode, r.hits);
        }
        let _ = writeln!(out, "\n{:<34} {:>10}", "action", "count");
        for (action, n) in &self.actions {
            let _ = writeln!(out, "{action:<34} {n:>10}");
        }
        let _ = writeln!(
            out,
            "\n{:<22} {:>10} {:>10} {:>10} {:>10}",
            "decisions by kind", "allow", "review", "challenge", "block"
        );
        for (kind, by) in &self.decisions {
            let n = |d: &str| by.get(d).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{kind:<22} {:>10} {:>10} {:>10} {:>10}",
                n("allow"),
                n("review"),
                n("challenge"),
                n("block")
            );
        }
        let _ = writeln!(out, "\n{:<10} {:>10}", "score", "events");
        let mut bands: Vec<_> = self.scores.iter().collect();
        bands.sort_by_key(|(band, _)| band.split(['-', '+']).next().and_then(|n| n.parse::<i32>().ok()).unwrap_or(0));
        for (band, n) in bands {
            let _ = writeln!(out, "{band:<10} {n:>10}");
        }
    }
}

impl Diff {
    /// The comparison with the baseline, as table lines; `now` is the
    /// replayed pack's detection quality, set beside the baseline's.
    fn write_table(&self, out: &mut String, now: Option<&Detection>) {
        let _ = writeln!(out, "\nagainst baseline {} ({})", self.pack.version, self.pack.hash);
        if self.rules_changed.is_empty() && self.decisions_changed.is_empty() {
            let _ = writeln!(out, "  no difference: every rule hit the same events and every decision is the same");
        }
        for (rule, (before, after)) in &self.rules_changed {
            let _ = writeln!(out, "  rule {rule:<30} {before:>8} → {after:<8} ({:+})", *after as i64 - *before as i64);
        }
        for (change, n) in &self.decisions_changed {
            let _ = writeln!(out, "  decision {change:<28} {n:>8} events");
        }
        for (action, (before, after)) in &self.actions_changed {
            let _ =
                writeln!(out, "  action {action:<28} {before:>8} → {after:<8} ({:+})", *after as i64 - *before as i64);
        }
        let _ = writeln!(
            out,
            "  flagged only by the baseline: {}, only now: {}",
            self.flagged_changed.0, self.flagged_changed.1
        );
        for (scenario, (lost, gained)) in self.flagged_changed_by_truth.iter().flatten() {
            let what = if scenario == NONE { "unlabelled (false alarms)" } else { scenario.as_str() };
            let _ = writeln!(out, "    {what:<30} only by the baseline: {lost:>6}, only now: {gained:>6}");
        }
        for e in &self.examples {
            let truth = e.truth.as_ref().map(|t| format!(", truth: {t}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  e.g. {} ({}{truth}): {} {} → {} {}",
                e.event_id, e.kind, e.baseline.0, e.baseline.1, e.replayed.0, e.replayed.1
            );
            let _ = writeln!(
                out,
                "       before: {}",
                if e.baseline_rules.is_empty() { "-".into() } else { e.baseline_rules.join("; ") }
            );
            let _ = writeln!(
                out,
                "       now:    {}",
                if e.replayed_rules.is_empty() { "-".into() } else { e.replayed_rules.join("; ") }
            );
        }
        if let (Some(before), Some(now)) = (&self.truth, now) {
            let _ = writeln!(
                out,
                "\n  {:<22} {:>17} {:>17} {:>17}",
                "scenario: baseline → now", "recall", "users caught", "precision"
            );
            for (s, b) in &before.scenarios {
                let Some(a) = now.scenarios.get(s) else { continue };
                if s == NONE {
                    let _ = writeln!(out, "  {s:<22} flagged {:>8} → {:<8}", b.flagged, a.flagged);
                    continue;
                }
                let _ = writeln!(
                    out,
                    "  {s:<22} {:>8.3} → {:<6.3} {:>8} → {:<6} {:>8.3} → {:<6.3}",
                    b.recall, a.recall, b.users_caught, a.users_caught, b.precision, a.precision
                );
            }
        }
    }
}

impl Detection {
    /// Precision and recall per scenario and per rule, as table lines.
    fn write_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n{:<22} {:>9} {:>9} {:>8} {:>7} {:>7} {:>8} {:>10}",
            "scenario", "events", "flagged", "recall", "users", "caught", "u.recall", "precision"
        );
        for (s, v) in &self.scenarios {
            if s == NONE {
                let _ = writeln!(
                    out,
                    "{:<22} {:>9} {:>9}   (unlabelled traffic: flagged = false positives)",
                    s, v.events, v.flagged
                );
                continue;
            }
            let _ = writeln!(
                out,
                "{s:<22} {:>9} {:>9} {:>8.3} {:>7} {:>7} {:>8.3} {:>10.3}",
                v.events, v.flagged, v.recall, v.users, v.users_caught, v.user_recall, v.precision
            );
        }
        if let Some(total) = &self.look_alike_total {
            let _ = writeln!(
                out,
                "\n{:<22} {:>9} {:>9} {:>7} {:>7} {:>8}",
                "honest look-alike", "events", "flagged", "users", "flagged", "share"
            );
            for (name, v) in self.look_alikes.iter().chain([(&"all".to_string(), total)]) {
                let _ = writeln!(
                    out,
                    "{name:<22} {:>9} {:>9} {:>7} {:>7} {:>8.3}",
                    v.events, v.flagged, v.users, v.users_flagged, v.share_flagged
                );
            }
        }
        let _ = writeln!(out, "\n{:<34} {:>8} {:>30} {:>10}", "rule", "hits", "targets", "precision");
        for (rule, v) in &self.rules {
            let targets = if v.targets.is_empty() { "-".to_string() } else { v.targets.join(",") };
            let _ = writeln!(out, "{rule:<34} {:>8} {targets:>30} {:>10.3}", v.hits, v.precision);
        }
    }
}
