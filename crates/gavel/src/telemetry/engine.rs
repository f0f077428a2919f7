//! The engine's metrics: per-event handles for the processor
//! ([`EventMetrics`]), what a pack load or reload publishes
//! ([`pack_loaded`], [`reloaded`]), the velocity and label store's
//! size after each maintenance sweep ([`store_swept`]), warm-up and
//! readiness.
//!
//! Handles are registered once and kept, so the event path neither formats
//! label values nor looks a metric up by name.

use std::collections::HashMap;

use gavel_engine::Engine;
use gavel_model::EventKind;
use gavel_model::pb::{ActionType, Decision, RuleMode};
use metrics::{Counter, counter, gauge};

use crate::telemetry::names;

/// One processor's metric handles, registered on first use (after the
/// recorder is installed).
pub struct EventMetrics {
    evaluated: Vec<Counter>,
    /// Per decision, at [`Decision::index`].
    verdicts: Vec<Counter>,
    /// Per action type, at [`ActionType::index`].
    actions: Vec<Counter>,
    signals: Counter,
    shadow_signals: Counter,
    /// Per rule id: enforce hits, shadow hits, evaluation errors. Grows when
    /// a reloaded pack brings new rules.
    rules: HashMap<String, [Counter; 3]>,
}

impl std::fmt::Debug for EventMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventMetrics").field("rules", &self.rules.len()).finish_non_exhaustive()
    }
}

impl Default for EventMetrics {
    fn default() -> Self {
        EventMetrics {
            evaluated: EventKind::ALL.iter().map(|k| counter!(names::EVENTS_EVALUATED, "kind" => k.as_str())).collect(),
            verdicts: Decision::ALL.iter().map(|d| counter!(names::VERDICTS, "decision" => d.as_str())).collect(),
            actions: ActionType::ALL.iter().map(|t| counter!(names::ACTIONS, "type" => t.as_str())).collect(),
            signals: counter!(names::SIGNALS),
            shadow_signals: counter!(names::SHADOW_SIGNALS),
            rules: HashMap::new(),
        }
    }
}

impl EventMetrics {
    fn rule(&mut self, id: &str) -> &[Counter; 3] {
        if !self.rules.contains_key(id) {
            let handles = [
                counter!(names::RULE_HITS, "rule" => id.to_string(), "mode" => RuleMode::Enforce.as_str()),
                counter!(names::RULE_HITS, "rule" => id.to_string(), "mode" => RuleMode::Shadow.as_str()),
                counter!(names::RULE_ERRORS, "rule" => id.to_string()),
            ];
            self.rules.insert(id.to_string(), handles);
        }
        &self.rules[id]
    }

    /// Counts an evaluated event of `kind` and its decision.
    pub fn evaluated(&mut self, kind: EventKind, decision: Decision) {
        self.evaluated[kind.index()].increment(1);
        self.verdicts[decision.index()].increment(1);
    }

    /// Counts a rule hit.
    pub fn rule_hit(&mut self, rule: &str, shadow: bool) {
        self.rule(rule)[usize::from(shadow)].increment(1);
    }

    /// Counts a rule whose condition failed to evaluate.
    pub fn rule_failed(&mut self, rule: &str) {
        self.rule(rule)[2].increment(1);
    }

    /// Counts a published signal.
    pub fn signal(&self) {
        self.signals.increment(1);
    }

    /// Counts a signal published on the shadow topic.
    pub fn shadow_signal(&self) {
        self.shadow_signals.increment(1);
    }

    /// Counts a published action.
    pub fn action(&self, action_type: i32) {
        self.actions[ActionType::from_i32_or_unspecified(action_type).index()].increment(1);
    }
}

/// Publishes the pack `engine` runs as the one in force: its info series
/// at 1 (and `previous`'s at 0), its rule count, and a series per rule at
/// zero, so a rule that never fires or fails shows as 0, not as missing.
/// Counts a successful reload when `previous` is given.
pub fn pack_loaded(engine: &Engine, previous: Option<&Engine>) {
    if let Some(was) = previous.map(Engine::pack) {
        gauge!(names::RULES_PACK_INFO, "version" => was.version.clone(), "hash" => was.hash.clone()).set(0.0);
    }
    let pack = engine.pack();
    gauge!(names::RULES_PACK_INFO, "version" => pack.version.clone(), "hash" => pack.hash.clone()).set(1.0);
    gauge!(names::RULES_ACTIVE).set(pack.rules.len() as f64);
    for rule in &pack.rules {
        counter!(names::RULE_HITS, "rule" => rule.id.clone(), "mode" => rule.mode.as_str()).increment(0);
        counter!(names::RULE_ERRORS, "rule" => rule.id.clone()).increment(0);
    }
}

/// Stamps when the last reload of its result finished.
pub fn reload_finished(at_ms: i64, ok: bool) {
    gauge!(names::RULES_LAST_RELOAD, "result" => if ok { "success" } else { "failure" }).set(at_ms as f64 / 1e3);
}

/// Counts a reload attempt: `success` (whether or not the pack changed)
/// or `failure` (the pack was rejected and the old one kept serving).
pub fn reloaded(ok: bool) {
    counter!(names::RULES_RELOADS, "result" => if ok { "success" } else { "failure" }).increment(1);
}

/// After a maintenance sweep that evicted `evicted` keys: the store's size
/// per feature, its cap evictions, too-late events and (`recent`
/// features) items dropped at the per-key bound, labelled entities, the
/// sequence rules' keys and the absence rules' timers.
pub fn store_swept(engine: &Engine, evicted: usize) {
    counter!(names::VELOCITY_EVICTED).increment(evicted as u64);
    for (feature, window) in engine.pack().features.iter().zip(engine.windows()) {
        gauge!(names::VELOCITY_KEYS, "feature" => feature.name.clone()).set(window.len() as f64);
        gauge!(names::VELOCITY_BYTES, "feature" => feature.name.clone()).set(window.bytes() as f64);
        counter!(names::VELOCITY_CAP_EVICTIONS, "feature" => feature.name.clone())
            .absolute(window.evicted_by_cap_total());
        counter!(names::VELOCITY_TOO_LATE, "feature" => feature.name.clone()).absolute(window.too_late_total());
        if feature.aggregate == gavel_model::Aggregate::Recent {
            counter!(names::VELOCITY_ITEMS_DROPPED, "feature" => feature.name.clone())
                .absolute(window.dropped_by_bound_total());
        }
    }
    gauge!(names::LABELS).set(engine.labels().len() as f64);
    gauge!(names::SEQUENCE_KEYS).set(engine.sequence_keys() as f64);
    let timers = engine.timer_counts();
    gauge!(names::TIMERS_PENDING).set(timers.pending as f64);
    for (outcome, n) in
        [("armed", timers.armed), ("fired", timers.fired), ("cancelled", timers.cancelled), ("refused", timers.refused)]
    {
        counter!(names::TIMERS, "outcome" => outcome).absolute(n);
    }
}

/// Counts one message replayed by warm-up.
pub fn warmup_message() {
    counter!(names::WARMUP_MESSAGES).increment(1);
}

/// Sets the readiness gauge.
pub fn ready(ready: bool) {
    gauge!(names::READY).set(if ready { 1.0 } else { 0.0 });
}
