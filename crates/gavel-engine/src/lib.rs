//! Gavel's engine: `evaluate(event) -> Outcome`.
//!
//! The engine binds a compiled rule [`Pack`] to the velocity store its
//! features live in. For each event it updates the features the event's
//! kind feeds, evaluates the rules that apply to that kind, sums the
//! enforcing rules' scores into a decision, and returns an [`Outcome`]: the
//! rule hits, the [`RiskSignal`] (when any rule fired), the [`Verdict`] and
//! the [`AutoAction`]s, each action with a deterministic id so a replayed
//! event produces the same id.
//!
//! It does no I/O, runs no async code and never reads the machine's clock:
//! event time comes from the event (or the caller's fallback) and the
//! decision time is passed in. One `Engine` is shared by every shard; its
//! methods take `&self`.
//!
//! A rule whose condition fails at run time (see `gavel_rules::expr`) does
//! not fire; the failure is counted per rule ([`Engine::rule_errors`]).

mod activation;
mod sequences;
mod timers;
mod watermark;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use gavel_model::pb::{self, AutoAction, Decision, FeatureValue, RiskSignal, RuleHit, Verdict};
use gavel_model::{EntityRef, EntityType, Event, EventKind, Fnv128, event_time_ms, timestamp_from_ms};
use gavel_rules::expr::Value;
use gavel_rules::{Feature, LabelEntity, Pack, RuleMode};
use gavel_velocity::{Input, LabelStore, Window, WindowConfig};

use crate::activation::EventActivation;
pub use crate::sequences::STEP_OCCURRENCES;
use crate::sequences::{Occurrence, Sequences};
pub use crate::timers::{MAX_PENDING_TIMERS, TimerCounts};
use crate::timers::{Pending, Timers};
use crate::watermark::Watermark;

/// Errors from evaluating one event. Each is about the event, not the engine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The event has no payload, so no kind to route by.
    #[error("event has no payload")]
    NoPayload,
    /// Neither the event nor its transport carries a time.
    #[error("event has no occurred_at and no fallback timestamp")]
    NoEventTime,
}

/// Result alias for this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// What the engine decided about one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The event's kind.
    pub kind: EventKind,
    /// The event time used, in milliseconds since the epoch.
    pub event_time_ms: i64,
    /// Sum of the enforcing hits' scores.
    pub score: i32,
    /// The decision for that score.
    pub decision: Decision,
    /// Every hit, enforcing and shadow, as a signal; present when any rule
    /// fired. Whether it is published is [`Outcome::publishes_signal`]'s.
    hits: Option<RiskSignal>,
    /// Auto-actions requested by enforcing hits, after cooldowns.
    pub actions: Vec<AutoAction>,
    /// Actions enforcing hits requested that a cooldown held back (the same
    /// target got the same action less than the cooldown ago): not
    /// published as actions, listed in the verdict so that "suppressed"
    /// and "not triggered" differ.
    pub suppressed: Vec<AutoAction>,
    /// Ids of rules whose condition failed to evaluate on this event.
    pub failed_rules: Vec<String>,
    /// Absence rules whose wait ended with this event: each fires as an
    /// outcome of its own, for its arming event (see [`timeout_event_id`]).
    /// Nothing when this is itself such an outcome.
    pub timeouts: Vec<Timeout>,
}

/// An absence rule firing at the end of its wait.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeout {
    /// The event that armed it.
    pub event: Event,
    /// What it decided, at its deadline, under [`timeout_event_id`].
    pub outcome: Outcome,
}

impl Outcome {
    /// Every rule that fired, enforcing and shadow.
    pub fn hits(&self) -> &[RuleHit] {
        self.hits.as_ref().map_or(&[], |s| &s.hits)
    }

    /// Whether this event publishes a risk signal: the one definition the
    /// processor, `gavel replay`, the demo and the tests share.
    ///
    /// An event publishes when an enforcing rule with a non-zero score fired
    /// or an action was requested. Shadow hits never decide it (a shadow
    /// rule changes nothing downstream), and neither do enforcing rules of
    /// score 0 without actions, which only keep books (set labels). A
    /// published signal still lists every hit, shadow ones included.
    pub fn publishes_signal(&self) -> bool {
        !self.actions.is_empty() || self.hits().iter().any(|h| h.score != 0 && h.mode == pb::RuleMode::Enforce as i32)
    }

    /// The signal to publish, when [`Outcome::publishes_signal`].
    pub fn signal(&self) -> Option<&RiskSignal> {
        self.hits.as_ref().filter(|_| self.publishes_signal())
    }

    /// The signal, owned, when [`Outcome::publishes_signal`].
    pub fn into_signal(self) -> Option<RiskSignal> {
        if self.publishes_signal() { self.hits } else { None }
    }

    /// The hits of shadow rules only.
    pub fn shadow_hits(&self) -> impl Iterator<Item = &RuleHit> {
        self.hits().iter().filter(|h| h.mode == pb::RuleMode::Shadow as i32)
    }

    /// Every hit as a signal, for the shadow topic: present when a shadow
    /// rule fired, whether or not the event publishes on its own.
    pub fn shadow_signal(&self) -> Option<&RiskSignal> {
        self.hits.as_ref().filter(|_| self.shadow_hits().next().is_some())
    }
}

/// A compiled pack bound to its velocity store.
#[derive(Debug)]
pub struct Engine {
    pack: Arc<Pack>,
    windows: Vec<Arc<Window>>,
    /// Entity labels set by rules; shared with successors across reloads.
    labels: Arc<LabelStore>,
    /// For each event kind (by `EventKind::index`), the features it updates.
    features_by_kind: Vec<Vec<usize>>,
    /// For each event kind, the rules that apply to it.
    rules_by_kind: Vec<Vec<usize>>,
    /// Last emission time (event ms) per (action identity, target), for
    /// cooldowns; shared with successors across reloads.
    cooldowns: Arc<DashMap<(u64, Box<str>), i64>>,
    /// Per rule, per action: the action's identity in `cooldowns`.
    action_keys: Vec<Vec<u64>>,
    /// Cooldown length by action identity, for pruning.
    cooldown_ms: std::collections::HashMap<u64, u64>,
    rule_errors: Vec<AtomicU64>,
    pack_label: String,
    /// The pending timers of absence rules, when the pack has any; shared
    /// with successors whose rule keeps the same wait.
    timers: Option<Arc<Timers>>,
    /// For each event kind, the absence rules it can cancel.
    cancels_by_kind: Vec<Vec<usize>>,
    /// The recorded steps of sequence rules, when the pack has any; shared
    /// with successors whose rule keeps the same sequence.
    sequences: Option<Arc<Sequences>>,
    /// For each event kind, the (rule, step) pairs of sequences it can be.
    steps_by_kind: Vec<Vec<(usize, usize)>>,
    /// Each lane's event-time clock, which state is evicted at
    /// ([`Engine::sweep`]); shared with successors.
    watermark: Arc<Watermark>,
}

impl Engine {
    /// Builds an engine with an empty store for `pack`.
    pub fn new(pack: Pack) -> Engine {
        Engine::build(Arc::new(pack), None)
    }

    /// Builds an engine for `pack` that keeps the state of `previous` for
    /// every feature whose definition did not change (same name, kinds,
    /// key, filter, window and aggregate), every label, and the cooldowns of
    /// every unchanged action: one whose rule id, type, target, target id
    /// expression and cooldown are the same (a rule's condition or score
    /// may change without re-arming its actions). A changed action starts
    /// with no cooldowns.
    pub fn succeed(previous: &Engine, pack: Pack) -> Engine {
        Engine::build(Arc::new(pack), Some(previous))
    }

    fn build(pack: Arc<Pack>, previous: Option<&Engine>) -> Engine {
        let windows = pack
            .features
            .iter()
            .map(|f| {
                let kept = previous.and_then(|p| {
                    p.pack.features.iter().position(|old| same_definition(old, f)).map(|i| Arc::clone(&p.windows[i]))
                });
                // The rule compiler only accepts windows in the store's range.
                kept.unwrap_or_else(|| {
                    let config = WindowConfig::new(f.aggregate, f.window_ms).max_keys(f.max_keys);
                    Arc::new(Window::with_config(config).expect("windows and caps are validated"))
                })
            })
            .collect();
        let mut features_by_kind = vec![Vec::new(); EventKind::ALL.len()];
        for (i, feature) in pack.features.iter().enumerate() {
            for kind in &feature.on {
                features_by_kind[kind.index()].push(i);
            }
        }
        let mut rules_by_kind = vec![Vec::new(); EventKind::ALL.len()];
        for (i, rule) in pack.rules.iter().enumerate() {
            for kind in &rule.on {
                rules_by_kind[kind.index()].push(i);
            }
        }
        let rule_errors = pack.rules.iter().map(|_| AtomicU64::new(0)).collect();
        let pack_label = pack.version.clone();
        let labels = previous.map_or_else(|| Arc::new(LabelStore::new()), |p| Arc::clone(&p.labels));
        let action_keys: Vec<Vec<u64>> = pack.rules.iter().map(action_identities).collect();
        let cooldown_ms: std::collections::HashMap<u64, u64> = pack
            .rules
            .iter()
            .zip(&action_keys)
            .flat_map(|(rule, keys)| rule.actions.iter().zip(keys).map(|(a, &k)| (k, a.cooldown_ms)))
            .collect();
        let cooldowns = previous.map_or_else(|| Arc::new(DashMap::new()), |p| Arc::clone(&p.cooldowns));
        cooldowns.retain(|(key, _), _| cooldown_ms.contains_key(key));
        let mut cancels_by_kind = vec![Vec::new(); EventKind::ALL.len()];
        for (i, rule) in pack.rules.iter().enumerate() {
            for kind in rule.wait.iter().flat_map(|w| &w.unless) {
                cancels_by_kind[kind.index()].push(i);
            }
        }
        let timers = pack.rules.iter().any(|r| r.wait.is_some()).then(|| {
            let kept = previous.and_then(|p| p.timers.as_ref().map(Arc::clone));
            let timers = kept.unwrap_or_default();
            // A timer lives on only where its rule waits as it did.
            let old = previous.map(|p| &p.pack);
            timers.retain(|id| {
                let wait_of = |pack: &Pack| pack.rules.iter().find(|r| r.id == id).and_then(|r| r.wait.clone());
                match (old.and_then(|p| wait_of(p)), wait_of(&pack)) {
                    (Some(before), Some(now)) => before.same_as(&now),
                    _ => false,
                }
            });
            timers
        });
        let mut steps_by_kind = vec![Vec::new(); EventKind::ALL.len()];
        for (i, rule) in pack.rules.iter().enumerate() {
            for (s, step) in rule.after.iter().flat_map(|a| a.steps.iter().enumerate()) {
                for kind in &step.on {
                    steps_by_kind[kind.index()].push((i, s));
                }
            }
        }
        let sequences = pack.rules.iter().any(|r| r.after.is_some()).then(|| {
            let kept = previous.and_then(|p| p.sequences.as_ref().map(Arc::clone));
            let sequences = kept.unwrap_or_default();
            let old = previous.map(|p| &p.pack);
            sequences.retain_rules(|id| {
                let after_of = |pack: &Pack| pack.rules.iter().find(|r| r.id == id).and_then(|r| r.after.clone());
                match (old.and_then(|p| after_of(p)), after_of(&pack)) {
                    (Some(before), Some(now)) => before.same_as(&now),
                    _ => false,
                }
            });
            sequences
        });
        let watermark = previous.map_or_else(Arc::default, |p| Arc::clone(&p.watermark));
        Engine {
            pack,
            windows,
            labels,
            features_by_kind,
            rules_by_kind,
            cooldowns,
            action_keys,
            cooldown_ms,
            rule_errors,
            pack_label,
            timers,
            cancels_by_kind,
            sequences,
            steps_by_kind,
            watermark,
        }
    }

    /// The pack in force.
    pub fn pack(&self) -> &Pack {
        &self.pack
    }

    /// The windows, in pack feature order (for gauges).
    pub fn windows(&self) -> &[Arc<Window>] {
        &self.windows
    }

    /// Run-time evaluation failures per rule, in pack rule order.
    pub fn rule_errors(&self) -> impl Iterator<Item = (&str, u64)> {
        self.pack.rules.iter().zip(&self.rule_errors).map(|(r, n)| (r.id.as_str(), n.load(Ordering::Relaxed)))
    }

    /// Updates features for `event` and evaluates the rules that apply.
    /// `fallback_time_ms` (the Kafka timestamp) is used when the event has no
    /// `occurred_at`; `decided_at_ms` is stamped on the outputs.
    pub fn evaluate(&self, event: &Event, fallback_time_ms: Option<i64>, decided_at_ms: i64) -> Result<Outcome> {
        self.evaluate_in(0, event, fallback_time_ms, decided_at_ms)
    }

    /// [`Engine::evaluate`] for an event of input *lane* `lane`: one input
    /// partition, whose event times are the clock absence rules' timers of
    /// that lane run on (see [`lane_of`]). A timer whose deadline the
    /// lane's clock reaches with this event fires first, in
    /// [`Outcome::timeouts`].
    pub fn evaluate_in(
        &self,
        lane: u64,
        event: &Event,
        fallback_time_ms: Option<i64>,
        decided_at_ms: i64,
    ) -> Result<Outcome> {
        let kind = event.kind().ok_or(EngineError::NoPayload)?;
        let t = event_time_ms(event).or(fallback_time_ms).ok_or(EngineError::NoEventTime)?;
        self.watermark.advance(lane, t);
        let mut timeouts = Vec::new();
        if let Some(timers) = &self.timers {
            for (rule_id, pending) in timers.advance(lane, t) {
                timeouts.extend(self.fire(&rule_id, pending, decided_at_ms));
            }
        }
        let values = self.update_features(event, kind, t);
        let activation = EventActivation::new(self, event, kind, t, &values);
        if let Some(timers) = &self.timers {
            self.cancel_timers(timers, kind, &activation, t);
        }

        let mut hits = Vec::new();
        let mut score = 0i32;
        let mut actions = Vec::new();
        let mut suppressed = Vec::new();
        let mut failed_rules = Vec::new();
        let mut fired_enforcing = Vec::new();
        for &r in &self.rules_by_kind[kind.index()] {
            let rule = &self.pack.rules[r];
            match rule.when.eval_bool(&activation) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => {
                    self.rule_errors[r].fetch_add(1, Ordering::Relaxed);
                    failed_rules.push(rule.id.clone());
                    continue;
                }
            }
            let steps = match (&rule.after, &self.sequences) {
                (Some(after), Some(sequences)) => match self.sequence_matched(sequences, rule, after, &activation, t) {
                    Some(steps) => Some(steps),
                    None => continue,
                },
                _ => None,
            };
            let features: Vec<FeatureValue> = rule
                .reads
                .iter()
                .map(|&f| FeatureValue {
                    name: self.pack.features[f].name.clone(),
                    value: activation.feature(f).unwrap_or(f64::NAN),
                })
                .collect();
            if let (Some(wait), Some(timers)) = (&rule.wait, &self.timers) {
                // An absence rule arms here and fires later, unless cancelled.
                let Ok(Value::Str(key)) = wait.key.eval(&activation) else { continue };
                if key.is_empty() {
                    continue;
                }
                let deadline = t.saturating_add(wait.for_ms as i64);
                let pending = Pending { lane, armed_at: t, deadline, event: event.clone(), features };
                if let Some(late) = timers.arm(&rule.id, &key, pending) {
                    timeouts.extend(self.fire(&rule.id, late, decided_at_ms));
                }
                continue;
            }
            if rule.mode == RuleMode::Enforce {
                score = score.saturating_add(rule.score);
                fired_enforcing.push(r);
                for (a, action) in rule.actions.iter().enumerate() {
                    match self.action(r, a, action, &activation, &event.event_id, t, decided_at_ms, &features) {
                        Some(Requested::Emitted(out)) => actions.push(out),
                        Some(Requested::Suppressed(out)) => suppressed.push(out),
                        None => {}
                    }
                }
            }
            let mut explanation = explain(&rule.description, &features);
            if let Some(steps) = steps {
                explanation.push_str(&steps);
            }
            hits.push(RuleHit {
                rule_id: rule.id.clone(),
                score: rule.score,
                mode: rule.mode.proto() as i32,
                explanation,
                features,
            });
        }

        // A step counts for later events, not for the one it is.
        if let Some(sequences) = &self.sequences {
            self.record_steps(sequences, kind, event, &activation, t);
        }
        // Labels change after every rule has seen the event as it arrived.
        for r in fired_enforcing {
            self.apply_labels(&self.pack.rules[r], event, &activation, t);
        }
        let decision = self.pack.decisions.decide(kind, score);
        let hits = (!hits.is_empty()).then(|| self.signal(&event.event_id, kind, event, score, hits, decided_at_ms, t));
        Ok(Outcome { kind, event_time_ms: t, score, decision, hits, actions, suppressed, failed_rules, timeouts })
    }

    /// The signal of `hits` on the event `event_id` (of `event`'s user) at `t`.
    #[allow(clippy::too_many_arguments)]
    fn signal(
        &self,
        event_id: &str,
        kind: EventKind,
        event: &Event,
        score: i32,
        hits: Vec<RuleHit>,
        decided_at_ms: i64,
        t: i64,
    ) -> RiskSignal {
        RiskSignal {
            event_id: event_id.to_string(),
            event_kind: kind.as_str().to_string(),
            entity: Some(EntityRef { r#type: EntityType::User as i32, id: event.user_id.clone() }),
            score,
            hits,
            pack_version: self.pack_label.clone(),
            decided_at: Some(timestamp_from_ms(decided_at_ms)),
            event_time: Some(timestamp_from_ms(t)),
            pack_hash: self.pack.hash.clone(),
            decision: self.pack.decisions.decide(kind, score) as i32,
        }
    }

    /// Whether `rule`'s sequence is complete at this event: `Some` with the
    /// steps that made it, for the explanation (" after a e1, then b e2").
    fn sequence_matched(
        &self,
        sequences: &Sequences,
        rule: &gavel_rules::Rule,
        after: &gavel_rules::Sequence,
        activation: &EventActivation<'_, '_>,
        t: i64,
    ) -> Option<String> {
        let Ok(Value::Str(key)) = after.key.eval(activation) else { return None };
        if key.is_empty() {
            return None;
        }
        let found = sequences.matched(&rule.id, &key, after, t)?;
        let joint = if after.any_order { ", and " } else { ", then " };
        let named: Vec<String> = found.iter().map(|o| format!("{} {}", o.kind.as_str(), o.event_id)).collect();
        Some(format!(" after {}", named.join(joint)))
    }

    /// Records `event` as each sequence step its kind can be, where the
    /// step's filter holds and its key is set.
    fn record_steps(
        &self,
        sequences: &Sequences,
        kind: EventKind,
        event: &Event,
        activation: &EventActivation<'_, '_>,
        t: i64,
    ) {
        for &(r, s) in &self.steps_by_kind[kind.index()] {
            let rule = &self.pack.rules[r];
            let Some(after) = &rule.after else { continue };
            let step = &after.steps[s];
            if let Some(filter) = &step.filter
                && !filter.eval_bool(activation).unwrap_or(false)
            {
                continue;
            }
            let Ok(Value::Str(key)) = step.key.eval(activation) else { continue };
            if key.is_empty() {
                continue;
            }
            let occurrence = Occurrence { t, kind, event_id: event.event_id.as_str().into() };
            sequences.record(&rule.id, &key, after.steps.len(), s, after.within_ms, occurrence);
        }
    }

    /// Cancels the timers an event of `kind` at `t` is in time for.
    fn cancel_timers(&self, timers: &Timers, kind: EventKind, activation: &EventActivation<'_, '_>, t: i64) {
        for &r in &self.cancels_by_kind[kind.index()] {
            let rule = &self.pack.rules[r];
            let Some(wait) = &rule.wait else { continue };
            if let Some(filter) = &wait.filter
                && !filter.eval_bool(activation).unwrap_or(false)
            {
                continue;
            }
            if let Ok(Value::Str(key)) = wait.matches.eval(activation)
                && !key.is_empty()
            {
                timers.cancel(&rule.id, &key, t);
            }
        }
    }

    /// The outcome of absence rule `rule_id` firing at the deadline of
    /// `pending`: as if it fired on the arming event at that time, under
    /// the event id [`timeout_event_id`]. `None` when the rule is gone.
    fn fire(&self, rule_id: &str, pending: Pending, decided_at_ms: i64) -> Option<Timeout> {
        let r = self.pack.rules.iter().position(|r| r.id == rule_id)?;
        let rule = &self.pack.rules[r];
        let wait = rule.wait.as_ref()?;
        let event = &pending.event;
        let kind = event.kind()?;
        let t = pending.deadline;
        let activation = EventActivation::new(self, event, kind, t, &[]);
        let event_id = timeout_event_id(&event.event_id, &rule.id);
        let features = pending.features.clone();
        let (mut actions, mut suppressed, mut score) = (Vec::new(), Vec::new(), 0);
        if rule.mode == RuleMode::Enforce {
            score = rule.score;
            for (a, action) in rule.actions.iter().enumerate() {
                match self.action(r, a, action, &activation, &event_id, t, decided_at_ms, &features) {
                    Some(Requested::Emitted(out)) => actions.push(out),
                    Some(Requested::Suppressed(out)) => suppressed.push(out),
                    None => {}
                }
            }
            self.apply_labels(rule, event, &activation, t);
        }
        let waited = format!(
            "{} (no {} within {} of {})",
            rule.description,
            wait.unless.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or "),
            gavel_rules::format_duration(wait.for_ms),
            event.event_id
        );
        let hit = RuleHit {
            rule_id: rule.id.clone(),
            score: rule.score,
            mode: rule.mode.proto() as i32,
            explanation: explain(&waited, &features),
            features,
        };
        let decision = self.pack.decisions.decide(kind, score);
        let hits = Some(self.signal(&event_id, kind, event, score, vec![hit], decided_at_ms, t));
        let outcome = Outcome {
            kind,
            event_time_ms: t,
            score,
            decision,
            hits,
            actions,
            suppressed,
            failed_rules: Vec::new(),
            timeouts: Vec::new(),
        };
        Some(Timeout { event: pending.event, outcome })
    }

    /// Keys holding recorded sequence steps, over all sequence rules.
    pub fn sequence_keys(&self) -> usize {
        self.sequences.as_ref().map_or(0, |s| s.len())
    }

    /// The absence rules' timer counts; all zero when the pack has none.
    pub fn timer_counts(&self) -> TimerCounts {
        self.timers.as_ref().map(|t| t.counts()).unwrap_or_default()
    }

    /// The verdict for an evaluated event. Built on demand: most deployments
    /// publish signals and actions only.
    pub fn verdict(&self, event: &Event, outcome: &Outcome, decided_at_ms: i64) -> Verdict {
        Verdict {
            event_id: event.event_id.clone(),
            event_kind: outcome.kind.as_str().to_string(),
            entity: Some(EntityRef { r#type: EntityType::User as i32, id: event.user_id.clone() }),
            decision: outcome.decision as i32,
            score: outcome.score,
            rule_ids: outcome
                .hits()
                .iter()
                .filter(|h| h.mode == pb::RuleMode::Enforce as i32)
                .map(|h| h.rule_id.clone())
                .collect(),
            pack_version: self.pack_label.clone(),
            decided_at: Some(timestamp_from_ms(decided_at_ms)),
            pack_hash: self.pack.hash.clone(),
            event_time: Some(timestamp_from_ms(outcome.event_time_ms)),
            suppressed_actions: outcome.suppressed.clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn action(
        &self,
        rule: usize,
        index: usize,
        action: &gavel_rules::Action,
        activation: &EventActivation<'_, '_>,
        event_id: &str,
        t: i64,
        decided_at_ms: i64,
        features: &[FeatureValue],
    ) -> Option<Requested> {
        let target = match action.id.eval(activation) {
            Ok(Value::Str(s)) if !s.is_empty() => s.into_owned(),
            _ => return None,
        };
        let mut held = false;
        if action.cooldown_ms > 0 {
            let key = (self.action_keys[rule][index], Box::from(target.as_str()));
            let mut last = self.cooldowns.entry(key).or_insert(i64::MIN);
            held = *last != i64::MIN && t.saturating_sub(*last) < action.cooldown_ms as i64 && t >= *last;
            if !held {
                *last = t;
            }
        }
        let rule_def = &self.pack.rules[rule];
        let kind = action.kind as i32;
        let built = AutoAction {
            action_id: action_id(&rule_def.id, kind, action.target as i32, &target, event_id),
            r#type: kind,
            target: Some(EntityRef { r#type: action.target as i32, id: target }),
            rule_id: rule_def.id.clone(),
            reason: rule_def.description.clone(),
            source_event_id: event_id.to_string(),
            created_at: Some(timestamp_from_ms(decided_at_ms)),
            expires_at: action.expires_ms.map(|ms| timestamp_from_ms(t.saturating_add(ms as i64))),
            pack_version: self.pack_label.clone(),
            features: features.to_vec(),
            pack_hash: self.pack.hash.clone(),
        };
        Some(if held { Requested::Suppressed(built) } else { Requested::Emitted(built) })
    }

    /// Replays `event` for its effect on state only: features, the labels
    /// rules set and action cooldowns, exactly as [`Engine::evaluate`] would
    /// leave them, with the outcome dropped. Warm-up after a restart replays
    /// past events through this, so neither a velocity count nor a label nor
    /// a cooldown starts from zero.
    pub fn warm(&self, event: &Event, fallback_time_ms: Option<i64>) -> Result<()> {
        self.warm_in(0, event, fallback_time_ms)
    }

    /// [`Engine::warm`] for an event of input lane `lane`: absence rules'
    /// timers are armed, cancelled and fired (the firing dropped, as it was
    /// published when the event was first processed) on that lane's clock.
    pub fn warm_in(&self, lane: u64, event: &Event, fallback_time_ms: Option<i64>) -> Result<()> {
        self.evaluate_in(lane, event, fallback_time_ms, 0).map(drop)
    }

    /// Evicts what has expired as of the event-time watermark: the earliest
    /// clock among the lanes whose events moved since the last sweep
    /// (`watermark.rs`), never the wall clock, so the same log gives the
    /// same state whenever it is processed. Returns the velocity keys
    /// evicted; none when no lane moved.
    pub fn sweep(&self) -> usize {
        self.watermark.sweep().map_or(0, |t| self.maintain(t))
    }

    /// Drops idle keys, lapsed cooldowns and sequence steps out of their
    /// window as of event time `now_ms`. Returns the number of velocity
    /// keys evicted.
    pub fn maintain(&self, now_ms: i64) -> usize {
        self.cooldowns.retain(|(key, _), last| {
            self.cooldown_ms.get(key).is_some_and(|&ms| now_ms.saturating_sub(*last) < ms as i64)
        });
        self.labels.evict_expired(now_ms);
        if let Some(sequences) = &self.sequences {
            let within_of = |id: &str| {
                self.pack.rules.iter().find(|r| r.id == id).and_then(|r| r.after.as_ref()).map(|a| a.within_ms)
            };
            sequences.evict(now_ms, within_of);
        }
        self.windows.iter().map(|w| w.evict_idle(now_ms)).sum()
    }

    /// The label store rules read and write.
    pub fn labels(&self) -> &LabelStore {
        &self.labels
    }

    /// Applies a fired enforcing rule's label operations.
    fn apply_labels(&self, rule: &gavel_rules::Rule, event: &Event, activation: &EventActivation<'_, '_>, t: i64) {
        for op in &rule.labels {
            let computed;
            let id = match &op.id {
                Some(plan) => match plan.eval(activation) {
                    Ok(Value::Str(s)) => {
                        computed = s.into_owned();
                        computed.as_str()
                    }
                    _ => continue,
                },
                None => op.entity.id_of(event),
            };
            if id.is_empty() {
                continue;
            }
            let key = label_key(op.entity, id);
            match op.ttl_ms {
                Some(ttl) => self.labels.set(&key, &op.label, t, ttl),
                None => {
                    self.labels.remove(&key, &op.label, t);
                }
            }
        }
    }

    /// Records the event in every feature its kind feeds and returns each
    /// feature's reading for this event: `None` for features it does not
    /// feed, `Some(None)` for a fed feature with no value (an empty min, a
    /// first `since`).
    fn update_features(&self, event: &Event, kind: EventKind, t: i64) -> Vec<Option<Option<f64>>> {
        let mut values = vec![None; self.pack.features.len()];
        let activation = EventActivation::new(self, event, kind, t, &[]);
        for &f in &self.features_by_kind[kind.index()] {
            let feature = &self.pack.features[f];
            let counts = match &feature.filter {
                Some(filter) => filter.eval_bool(&activation).unwrap_or(false),
                None => true,
            };
            let reading = match feature.key.eval(&activation) {
                Ok(Value::Str(key)) if !key.is_empty() => {
                    let input = match &feature.value {
                        None => Some(Input::None),
                        Some(plan) => match plan.eval(&activation) {
                            Ok(Value::Int(i)) => Some(Input::Number(i as f64)),
                            Ok(Value::Uint(u)) => Some(Input::Number(u as f64)),
                            Ok(Value::Double(d)) if d.is_finite() => Some(Input::Number(d)),
                            Ok(Value::Str(item)) => {
                                // Borrow checker: the item lives as long as this match arm.
                                let recorded = if counts {
                                    self.windows[f].record(&key, t, Input::Item(&item)).ok().flatten()
                                } else {
                                    self.windows[f].read(&key, t)
                                };
                                values[f] = Some(recorded);
                                continue;
                            }
                            _ => None,
                        },
                    };
                    match input {
                        Some(input) if counts => self.windows[f].record(&key, t, input).ok().flatten(),
                        _ => self.windows[f].read(&key, t),
                    }
                }
                _ => feature.aggregate.empty_value(),
            };
            values[f] = Some(reading);
        }
        values
    }

    /// The current values of features `features` for the keys `event` gives
    /// them, as of `t_ms`, without recording anything: for explanations.
    pub fn read_features(&self, features: &[usize], event: &Event, t_ms: i64) -> Vec<(String, Option<f64>)> {
        let Some(kind) = event.kind() else { return Vec::new() };
        let activation = EventActivation::new(self, event, kind, t_ms, &[]);
        features.iter().map(|&f| (self.pack.features[f].name.clone(), self.peek(f, &activation, t_ms))).collect()
    }

    /// The value of feature `f` for `event` without recording it: the
    /// reading for the key computed from this event.
    fn peek(&self, f: usize, activation: &EventActivation<'_, '_>, t: i64) -> Option<f64> {
        match self.pack.features[f].key.eval(activation) {
            Ok(Value::Str(key)) if !key.is_empty() => self.windows[f].read(&key, t),
            _ => self.pack.features[f].aggregate.empty_value(),
        }
    }

    /// The key feature `f` has for the event of `activation`; `None` when
    /// its key expression gives none (an empty or unset field).
    fn key_of(&self, f: usize, activation: &EventActivation<'_, '_>) -> Option<String> {
        match self.pack.features[f].key.eval(activation) {
            Ok(Value::Str(key)) if !key.is_empty() => Some(key.into_owned()),
            _ => None,
        }
    }
}

/// An action a rule requested: published, or held back by its cooldown.
enum Requested {
    Emitted(AutoAction),
    Suppressed(AutoAction),
}

/// The identity of each of `rule`'s actions across pack versions: a hash
/// of the rule id and the action's type, target, target id expression and
/// cooldown, plus its position among identical actions of the rule.
fn action_identities(rule: &gavel_rules::Rule) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    let mut seen = Vec::with_capacity(rule.actions.len());
    rule.actions
        .iter()
        .map(|action| {
            let mut h = std::hash::DefaultHasher::new();
            (rule.id.as_str(), action.kind as i32, action.target as i32, action.id.source(), action.cooldown_ms)
                .hash(&mut h);
            let base = h.finish();
            let twins = seen.iter().filter(|&&b| b == base).count();
            seen.push(base);
            twins.hash(&mut h);
            h.finish()
        })
        .collect()
}

/// "description (a = 1, b = 2)": a hit's explanation, the features its
/// rule read with their values.
fn explain(description: &str, features: &[FeatureValue]) -> String {
    if features.is_empty() {
        return description.to_string();
    }
    use std::fmt::Write as _;
    let mut text = String::with_capacity(description.len() + 32 * features.len());
    text.push_str(description);
    for (i, f) in features.iter().enumerate() {
        let _ = write!(text, "{}{} = {}", if i == 0 { " (" } else { ", " }, f.name, f.value);
    }
    text.push(')');
    text
}

/// The event id an absence rule fires under: its arming event's id and
/// the rule's, so a replay fires it under the same id and its actions get
/// the same [`action_id`]s.
pub fn timeout_event_id(arming_event_id: &str, rule_id: &str) -> String {
    format!("{arming_event_id}/{rule_id}/timeout")
}

/// The lane of input partition `partition` of `topic`, for
/// [`Engine::evaluate_in`].
pub fn lane_of(topic: &str, partition: i32) -> u64 {
    let mut h = gavel_model::Fnv64::new();
    h.write(topic.as_bytes()).write(&[0xff]).write(&partition.to_le_bytes());
    h.finish()
}

/// The label store key of an entity: `user:u-1`, `device:d-9`.
pub(crate) fn label_key(entity: LabelEntity, id: &str) -> String {
    format!("{}:{id}", entity.name())
}

fn same_definition(a: &Feature, b: &Feature) -> bool {
    a.name == b.name
        && a.on == b.on
        && a.window_ms == b.window_ms
        && a.aggregate == b.aggregate
        && a.key.source() == b.key.source()
        && a.filter.as_ref().map(|p| p.source()) == b.filter.as_ref().map(|p| p.source())
        && a.value.as_ref().map(|p| p.source()) == b.value.as_ref().map(|p| p.source())
        && a.max_keys == b.max_keys
}

/// A deterministic id for an action: the same rule, action type, target and
/// source event always give the same id (128-bit FNV-1a, hex).
pub fn action_id(rule_id: &str, action_type: i32, target_type: i32, target: &str, event_id: &str) -> String {
    let mut h = Fnv128::new();
    // Each field is followed by 0xff, a byte no UTF-8 text contains.
    for field in [
        rule_id.as_bytes(),
        &action_type.to_le_bytes(),
        &target_type.to_le_bytes(),
        target.as_bytes(),
        event_id.as_bytes(),
    ] {
        h.write(field).write(&[0xff]);
    }
    h.hex()
}

#[cfg(test)]
mod tests;
