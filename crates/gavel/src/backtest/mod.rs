//! `gavel replay`: the backtest. Recorded events run through the same
//! engine code as production, in event-time order, with each decision
//! stamped at its event's time, so the same input and pack always give the
//! same report, byte for byte. With a baseline pack the two run side by
//! side over the same events and the report says what changed; with a
//! ground-truth file it says how well each scenario is caught.
//!
//! An event "is flagged" when gavel would publish a signal for it: an
//! enforcing rule with a non-zero score fired, or an action was requested.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use gavel_engine::{Engine, Outcome};
use gavel_model::pb::RuleMode;
use gavel_model::{Encoding, Event, decode, encode_protobuf, event_time_ms};
use gavel_rules::Pack;
use serde::Serialize;

use crate::telemetry::engine::{action_label, decision_label};

/// The events of a replay, encoded once and ordered by event time, then
/// event id: the same events give the same order however they were read
/// (a file, or a topic's partitions interleaved as they arrived).
#[derive(Debug, Default)]
pub struct Recording {
    events: Vec<(i64, Vec<u8>)>,
    /// Records that had no event time (or no payload) and were skipped.
    pub skipped: u64,
}

impl Recording {
    /// Collects `events` and sorts them by event time.
    pub fn new(events: impl IntoIterator<Item = Event>) -> Recording {
        let mut recording = Recording::default();
        let mut keyed = Vec::new();
        for event in events {
            match event_time_ms(&event).filter(|_| event.kind().is_some()) {
                Some(t) => keyed.push((t, event.event_id.clone(), encode_protobuf(&event))),
                None => recording.skipped += 1,
            }
        }
        // Stable: events with the same time and id keep their input order.
        keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        recording.events = keyed.into_iter().map(|(t, _, bytes)| (t, bytes)).collect();
        recording
    }

    /// Events to replay.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Ground truth: which scenario each labelled event belongs to, and the
/// users involved (JSON Lines: `{"event_id", "scenario", "entities": {"user", …}}`).
#[derive(Debug, Default)]
pub struct Truth {
    scenario_of: HashMap<String, String>,
    users_of: HashMap<String, String>,
}

impl Truth {
    /// Parses a ground-truth file's lines; blank lines are ignored.
    pub fn parse(text: &str) -> anyhow::Result<Truth> {
        let mut truth = Truth::default();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let entry: serde_json::Value =
                serde_json::from_str(line).map_err(|e| anyhow::anyhow!("truth line {}: {e}", n + 1))?;
            let (Some(id), Some(scenario)) = (entry["event_id"].as_str(), entry["scenario"].as_str()) else {
                anyhow::bail!("truth line {}: needs \"event_id\" and \"scenario\"", n + 1);
            };
            truth.scenario_of.insert(id.to_string(), scenario.to_string());
            if let Some(user) = entry["entities"]["user"].as_str() {
                truth.users_of.insert(id.to_string(), user.to_string());
            }
        }
        Ok(truth)
    }
}

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
    fn of(pack: &Pack) -> PackId {
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
    /// The first few events whose decision changed, explained.
    pub examples: Vec<Example>,
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
}

/// Precision and recall against ground truth.
#[derive(Debug, Serialize, PartialEq)]
pub struct Detection {
    /// Per scenario (plus `none` for unlabelled traffic).
    pub scenarios: BTreeMap<String, ScenarioScore>,
    /// Per rule that fired: which scenarios its hits fell on.
    pub rules: BTreeMap<String, RuleScore>,
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
                let mode = if r.mode == gavel_rules::RuleMode::Shadow { "shadow" } else { "enforce" };
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

    fn add(&mut self, outcome: &Outcome) {
        if flagged(outcome) {
            self.flagged += 1;
        }
        *self
            .decisions
            .entry(outcome.kind.as_str().to_string())
            .or_default()
            .entry(decision_label(outcome.decision).to_string())
            .or_default() += 1;
        for hit in outcome.hits() {
            *self.rules.entry(hit.rule_id.clone()).or_default() += 1;
        }
        for action in &outcome.actions {
            *self.actions.entry(action_label(action.r#type).to_string()).or_default() += 1;
        }
        *self.scores.entry(score_band(outcome.score).to_string()).or_default() += 1;
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

/// Whether gavel would publish a signal for this outcome.
pub fn flagged(outcome: &Outcome) -> bool {
    !outcome.actions.is_empty() || outcome.hits().iter().any(|h| h.score != 0 && h.mode != RuleMode::Shadow as i32)
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

/// How many changed events a diff explains.
const EXAMPLES: usize = 5;

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
    let base_engine = baseline.map(Engine::new);
    let mut base_tally = base_engine.as_ref().map(|e| Tally::new(e.pack()));
    let mut decisions_changed: BTreeMap<String, u64> = BTreeMap::new();
    let mut flagged_changed = (0, 0);
    let mut examples = Vec::new();
    let tags: HashMap<String, Vec<String>> = engine
        .pack()
        .rules
        .iter()
        .map(|r| (r.id.clone(), r.tags.iter().map(|t| t.replace('-', "_")).collect()))
        .collect();
    let mut scoring = truth.map(|t| Scoring::new(t, tags));
    let mut events = 0u64;
    for (i, (t, bytes)) in recording.events.iter().enumerate() {
        if i % 4096 == 0 {
            progress(i as u64);
        }
        // Encoded by `Recording::new` from a decoded event: it decodes.
        let Ok(event) = decode(Encoding::Protobuf, bytes) else { continue };
        events += 1;
        let outcome = match engine.evaluate(&event, Some(*t), *t) {
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
        let (Some(base), Some(base_tally)) = (&base_engine, &mut base_tally) else { continue };
        let Ok(before) = base.evaluate(&event, Some(*t), *t) else { continue };
        base_tally.add(&before);
        match (flagged(&before), flagged(&outcome)) {
            (true, false) => flagged_changed.0 += 1,
            (false, true) => flagged_changed.1 += 1,
            _ => {}
        }
        if before.decision != outcome.decision {
            let key = format!("{} → {}", decision_label(before.decision), decision_label(outcome.decision));
            *decisions_changed.entry(key).or_default() += 1;
            if examples.len() < EXAMPLES {
                examples.push(Example {
                    event_id: event.event_id.clone(),
                    kind: outcome.kind.as_str().to_string(),
                    baseline: (decision_label(before.decision).to_string(), before.score),
                    replayed: (decision_label(outcome.decision).to_string(), outcome.score),
                    baseline_rules: fired(&before),
                    replayed_rules: fired(&outcome),
                });
            }
        }
    }
    progress(recording.len() as u64);
    let mut report = tally.into_report(events, recording.skipped);
    if let Some(base_tally) = base_tally {
        let before = base_tally.into_report(events, recording.skipped);
        let ids: std::collections::BTreeSet<&String> = report.rules.keys().chain(before.rules.keys()).collect();
        let rules_changed = ids
            .into_iter()
            .filter_map(|id| {
                let a = before.rules.get(id).map_or(0, |r| r.hits);
                let b = report.rules.get(id).map_or(0, |r| r.hits);
                (a != b).then(|| (id.clone(), (a, b)))
            })
            .collect();
        report.baseline = Some(Diff { pack: before.pack, rules_changed, decisions_changed, flagged_changed, examples });
    }
    report.truth = scoring.map(Scoring::finish);
    report
}

/// Accumulates detection quality against ground truth.
struct Scoring<'t> {
    truth: &'t Truth,
    /// Per rule: its tags, `-` read as `_`, to match scenario names.
    tags: HashMap<String, Vec<String>>,
    /// Per scenario: (events, flagged).
    events: BTreeMap<String, (u64, u64)>,
    /// Per scenario: users seen, users caught.
    users: BTreeMap<String, (HashSet<String>, HashSet<String>)>,
    /// Per rule: hits per scenario.
    rules: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per flagged event: its scenario and the rules that fired on it.
    flagged: Vec<(String, Vec<String>)>,
}

/// The scenario name of unlabelled traffic.
const NONE: &str = "none";

impl<'t> Scoring<'t> {
    fn new(truth: &'t Truth, tags: HashMap<String, Vec<String>>) -> Self {
        Scoring {
            truth,
            tags,
            events: BTreeMap::new(),
            users: BTreeMap::new(),
            rules: BTreeMap::new(),
            flagged: Vec::new(),
        }
    }

    fn add(&mut self, event: &Event, outcome: &Outcome) {
        let scenario = self.truth.scenario_of.get(&event.event_id).map_or(NONE, String::as_str);
        let is_flagged = flagged(outcome);
        let entry = self.events.entry(scenario.to_string()).or_default();
        entry.0 += 1;
        entry.1 += u64::from(is_flagged);
        if scenario != NONE {
            let user = self.truth.users_of.get(&event.event_id).unwrap_or(&event.user_id);
            let (seen, caught) = self.users.entry(scenario.to_string()).or_default();
            seen.insert(user.clone());
            if is_flagged {
                caught.insert(user.clone());
            }
        }
        for hit in outcome.hits() {
            *self.rules.entry(hit.rule_id.clone()).or_default().entry(scenario.to_string()).or_default() += 1;
        }
        if is_flagged {
            let rules = outcome.hits().iter().filter(|h| h.score != 0).map(|h| h.rule_id.clone()).collect();
            self.flagged.push((scenario.to_string(), rules));
        }
    }

    fn finish(self) -> Detection {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { (a as f64 / b as f64 * 1e4).round() / 1e4 };
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
        Detection { scenarios, rules }
    }
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
        if let Some(diff) = &self.baseline {
            let _ = writeln!(out, "\nagainst baseline {} ({})", diff.pack.version, diff.pack.hash);
            if diff.rules_changed.is_empty() && diff.decisions_changed.is_empty() {
                let _ = writeln!(out, "  no difference: every rule hit the same events and every decision is the same");
            }
            for (rule, (before, after)) in &diff.rules_changed {
                let _ =
                    writeln!(out, "  rule {rule:<30} {before:>8} → {after:<8} ({:+})", *after as i64 - *before as i64);
            }
            for (change, n) in &diff.decisions_changed {
                let _ = writeln!(out, "  decision {change:<28} {n:>8} events");
            }
            let _ = writeln!(
                out,
                "  flagged only by the baseline: {}, only now: {}",
                diff.flagged_changed.0, diff.flagged_changed.1
            );
            for e in &diff.examples {
                let _ = writeln!(
                    out,
                    "  e.g. {} ({}): {} {} → {} {}",
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
        }
        if let Some(truth) = &self.truth {
            let _ = writeln!(
                out,
                "\n{:<22} {:>9} {:>9} {:>8} {:>7} {:>7} {:>8} {:>10}",
                "scenario", "events", "flagged", "recall", "users", "caught", "u.recall", "precision"
            );
            for (s, v) in &truth.scenarios {
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
            let _ = writeln!(out, "\n{:<34} {:>8} {:>30} {:>10}", "rule", "hits", "targets", "precision");
            for (rule, v) in &truth.rules {
                let targets = if v.targets.is_empty() { "-".to_string() } else { v.targets.join(",") };
                let _ = writeln!(out, "{rule:<34} {:>8} {targets:>30} {:>10.3}", v.hits, v.precision);
            }
        }
        out
    }
}

/// How events are stored in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// One proto3-JSON event per line.
    Jsonl,
    /// Length-delimited protobuf `Event`s (varint length, then the message).
    Protobuf,
}

impl FileFormat {
    /// The format a file name implies: `.jsonl`/`.json` for JSON Lines,
    /// anything else protobuf.
    pub fn of(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json" | "ndjson") => FileFormat::Jsonl,
            _ => FileFormat::Protobuf,
        }
    }
}

/// `gavel replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Recorded events: JSON Lines (`.jsonl`) or length-delimited protobuf
    /// (other names; see `--format`).
    #[arg(long, conflicts_with = "topic", required_unless_present = "topic")]
    pub input: Option<PathBuf>,
    /// Read this Kafka topic from its beginning to its current end instead.
    #[arg(long)]
    pub topic: Option<String>,
    /// Brokers for `--topic`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// The input's format; by default from the file name, protobuf for a topic.
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// The pack directory to replay.
    #[arg(long)]
    pub rules: PathBuf,
    /// A second pack directory to compare with, over the same events.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Ground truth (JSON Lines from `gavel sim --truth`): adds precision
    /// and recall per scenario and per rule.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Print the report as JSON (stable: same input and packs, same bytes).
    #[arg(long)]
    pub json: bool,
}

/// Runs `gavel replay`: prints the report on stdout, progress and the
/// replay rate on stderr.
pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let pack = crate::tools::pack::load(&args.rules)?;
    let baseline = args.baseline.as_deref().map(crate::tools::pack::load).transpose()?;
    let truth = match &args.truth {
        Some(path) => {
            Some(Truth::parse(&std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)?)
        }
        None => None,
    };
    let read_started = Instant::now();
    let recording = match (&args.input, &args.topic) {
        (Some(path), _) => read_file(path, args.format.unwrap_or_else(|| FileFormat::of(path)))?,
        (None, Some(topic)) => read_kafka(&args.brokers, topic, args.format.unwrap_or(FileFormat::Protobuf))?,
        (None, None) => anyhow::bail!("give --input FILE or --topic TOPIC"),
    };
    let read_secs = read_started.elapsed().as_secs_f64();
    let bar = indicatif::ProgressBar::new(recording.len() as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events  {per_sec}  eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let report = replay(&recording, pack, baseline, truth.as_ref(), &mut |done| bar.set_position(done));
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    let packs = if args.baseline.is_some() { 2 } else { 1 };
    eprintln!(
        "read {} events in {read_secs:.2} s; replayed them through {packs} pack(s) in {secs:.2} s ({:.0} events/s)",
        recording.len(),
        recording.len() as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Reads a recorded file.
pub fn read_file(path: &Path, format: FileFormat) -> anyhow::Result<Recording> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let events: Vec<Event> = match format {
        FileFormat::Jsonl => gavel_sim::output::read_jsonl(reader)
            .enumerate()
            .map(|(n, e)| e.with_context(|| format!("{}: line {}", path.display(), n + 1)))
            .collect::<anyhow::Result<_>>()?,
        FileFormat::Protobuf => gavel_sim::output::read_protobuf_delimited(reader)
            .enumerate()
            .map(|(n, e)| e.with_context(|| format!("{}: record {}", path.display(), n + 1)))
            .collect::<anyhow::Result<_>>()?,
    };
    Ok(Recording::new(events))
}

/// Reads a topic from its beginning to its current end; messages that do
/// not decode are counted as skipped.
fn read_kafka(brokers: &str, topic: &str, format: FileFormat) -> anyhow::Result<Recording> {
    let encoding = match format {
        FileFormat::Jsonl => Encoding::Json,
        FileFormat::Protobuf => Encoding::Protobuf,
    };
    let settings = gavel_kafka::KafkaSettings::new(brokers, format!("gavel-replay-{}", std::process::id()), vec![]);
    let mut events = Vec::new();
    let mut undecodable = 0;
    gavel_kafka::read_topic(&settings, topic, encoding, &mut |input| match decode(input.encoding, input.payload) {
        Ok(event) => events.push(event),
        Err(_) => undecodable += 1,
    })?;
    let mut recording = Recording::new(events);
    recording.skipped += undecodable;
    Ok(recording)
}
