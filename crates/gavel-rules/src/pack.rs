//! The compiled pack model: what [`Pack::compile`] returns and the engine
//! runs. Plain data with a few lookups; compiling it is `compile/`, and the
//! slot layout its plans read is `env.rs`.

use std::sync::Arc;

use gavel_model::EventKind;
use gavel_model::pb::{self, ActionType, Decision, EntityType};

use crate::Diagnostic;
use crate::expr::{Plan, StringList};
use crate::tests_def::TestCase;

/// Keys a feature holds at most unless its `max_keys` says otherwise. Idle
/// keys are evicted when their window empties; past the cap the least
/// recently active keys go first, and a counter says so.
pub const DEFAULT_MAX_KEYS: usize = 2_000_000;

/// The key input events are partitioned by (the producers key every
/// input topic by the acting user): state keyed by it lives with the
/// partition of its user's events.
pub const MESSAGE_KEY: &str = "event.user_id";

/// A compiled rule pack, ready for the engine.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The pack's declared version.
    pub version: String,
    /// Hash of every file's name and content: two packs with the same hash
    /// decide identically.
    pub hash: String,
    /// Named lists.
    pub lists: Vec<Arc<StringList>>,
    /// Features, indexed by slot (`FEATURE_SLOT_BASE + index`).
    pub features: Vec<Feature>,
    /// Enabled rules, in file order.
    pub rules: Vec<Rule>,
    /// Score thresholds.
    pub decisions: Decisions,
    /// Rule tests declared in the pack (inline `tests:` and fixture files).
    pub tests: Vec<TestCase>,
    /// What compiles but is almost certainly not meant (a label no rule
    /// sets, a feature no rule reads, …), each a [`Diagnostic`] of
    /// severity warning with its `W` code.
    pub warnings: Vec<Diagnostic>,
}

/// A windowed aggregate the velocity store computes.
#[derive(Debug, Clone)]
pub struct Feature {
    /// Name rules refer to as `features.<name>`.
    pub name: String,
    /// Event kinds that update it.
    pub on: Vec<EventKind>,
    /// The grouping key (a string expression).
    pub key: Plan,
    /// Only events where this is true count.
    pub filter: Option<Plan>,
    /// What each event contributes (sum/min/max/avg: a number; distinct: a string).
    pub value: Option<Plan>,
    /// Keys held at most ([`DEFAULT_MAX_KEYS`] unless the pack says otherwise).
    pub max_keys: usize,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// The aggregate.
    pub aggregate: gavel_model::Aggregate,
}

/// Whether a rule's hits change outcomes: the values of the proto
/// [`pb::RuleMode`] a compiled rule can have (never `Unspecified`), so a
/// `match` over a rule's mode needs no arm for a mode no rule has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleMode {
    /// Scores count and actions are emitted.
    Enforce,
    /// Evaluated and reported only.
    Shadow,
}

impl RuleMode {
    /// The proto value stamped on outputs.
    pub const fn proto(self) -> pb::RuleMode {
        match self {
            RuleMode::Enforce => pb::RuleMode::Enforce,
            RuleMode::Shadow => pb::RuleMode::Shadow,
        }
    }

    /// The mode a proto value names; `None` for `Unspecified`.
    pub const fn from_proto(mode: pb::RuleMode) -> Option<RuleMode> {
        match mode {
            pb::RuleMode::Enforce => Some(RuleMode::Enforce),
            pb::RuleMode::Shadow => Some(RuleMode::Shadow),
            pb::RuleMode::Unspecified => None,
        }
    }

    /// The name used in packs, metric labels and reports (`enforce`, `shadow`).
    pub const fn as_str(self) -> &'static str {
        self.proto().as_str()
    }

    /// The mode named `name` in a pack.
    pub fn from_name(name: &str) -> Option<RuleMode> {
        pb::RuleMode::from_name(name).and_then(RuleMode::from_proto)
    }
}

impl From<RuleMode> for pb::RuleMode {
    fn from(mode: RuleMode) -> pb::RuleMode {
        mode.proto()
    }
}

/// An auto-action a rule requests when it fires.
#[derive(Debug, Clone)]
pub struct Action {
    /// What to do.
    pub kind: ActionType,
    /// The kind of entity acted on.
    pub target: EntityType,
    /// The target's id (a string expression).
    pub id: Plan,
    /// No repeat on the same target within this many ms of event time.
    pub cooldown_ms: u64,
    /// How long the action lasts, if it lapses.
    pub expires_ms: Option<u64>,
}

/// The entities labels can be set on, keyed by the event's own ids: the
/// subset of [`EntityType`] an event carries ids for. The discriminant is
/// the entity number rule plans use (`labels.user` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelEntity {
    /// The acting user (`event.user_id`).
    User = 0,
    /// The device (`event.device_id`).
    Device = 1,
    /// The IP (`event.ip`).
    Ip = 2,
}

impl LabelEntity {
    /// Every label entity, by entity number.
    pub const ALL: [LabelEntity; 3] = [LabelEntity::User, LabelEntity::Device, LabelEntity::Ip];

    /// The entity named `name` (`user`, `device`, `ip`).
    pub fn from_name(name: &str) -> Option<LabelEntity> {
        EntityType::from_name(name).and_then(LabelEntity::from_entity_type)
    }

    /// The label entity for an entity type, if labels can be set on it.
    pub fn from_entity_type(entity: EntityType) -> Option<LabelEntity> {
        LabelEntity::ALL.into_iter().find(|e| e.entity_type() == entity)
    }

    /// The entity numbered `n` (as passed to `Activation::has_label`).
    pub fn from_index(n: u32) -> Option<LabelEntity> {
        LabelEntity::ALL.get(n as usize).copied()
    }

    /// The entity type this is.
    pub const fn entity_type(self) -> EntityType {
        match self {
            LabelEntity::User => EntityType::User,
            LabelEntity::Device => EntityType::Device,
            LabelEntity::Ip => EntityType::Ip,
        }
    }

    /// The name used in packs (the entity type's name).
    pub const fn name(self) -> &'static str {
        self.entity_type().as_str()
    }

    /// The event field holding the entity's id (`user_id`, `device_id`, `ip`).
    pub const fn field(self) -> &'static str {
        match self {
            LabelEntity::User => "user_id",
            LabelEntity::Device => "device_id",
            LabelEntity::Ip => "ip",
        }
    }

    /// The entity's id in `event` (empty when the event lacks it).
    pub fn id_of(self, event: &gavel_model::Event) -> &str {
        match self {
            LabelEntity::User => &event.user_id,
            LabelEntity::Device => event.device_id.as_deref().unwrap_or_default(),
            LabelEntity::Ip => event.ip.as_deref().unwrap_or_default(),
        }
    }
}

/// A label a rule sets or removes when it fires in enforce mode.
#[derive(Debug, Clone)]
pub struct LabelOp {
    /// The label.
    pub label: String,
    /// On which kind of entity.
    pub entity: LabelEntity,
    /// The entity's id, when not the event's own user/device/ip.
    pub id: Option<Plan>,
    /// `Some(ttl_ms)` to set it for that long, `None` to remove it.
    pub ttl_ms: Option<u64>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id, stable across versions; used in outputs and metric labels.
    pub id: String,
    /// What the rule catches, for reviewers.
    pub description: String,
    /// The team or person who answers for the rule.
    pub owner: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Event kinds the rule applies to.
    pub on: Vec<EventKind>,
    /// When it fires.
    pub when: Plan,
    /// Features the condition reads (indices into [`Pack::features`]).
    pub reads: Vec<usize>,
    /// Score added when it fires.
    pub score: i32,
    /// Enforce or shadow.
    pub mode: RuleMode,
    /// Actions requested when it fires in enforce mode.
    pub actions: Vec<Action>,
    /// Labels set or removed when it fires in enforce mode.
    pub labels: Vec<LabelOp>,
    /// For an absence rule, what it waits for; `None` fires on the event.
    pub wait: Option<Wait>,
    /// For a sequence rule, the steps that must come before its event.
    pub after: Option<Sequence>,
}

/// The earlier events a sequence rule needs: for the key its event gives,
/// an event of each step within `within_ms` before it (times in
/// `(t − within, t]`), in the order written unless `any_order`.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// How far back the first step may be, in ms of event time.
    pub within_ms: u64,
    /// Whether the steps may come in any order.
    pub any_order: bool,
    /// The key, on the rule's own event.
    pub key: Plan,
    /// The steps, in order.
    pub steps: Vec<SequenceStep>,
}

/// One step of a [`Sequence`].
#[derive(Debug, Clone)]
pub struct SequenceStep {
    /// The kinds that can be this step.
    pub on: Vec<EventKind>,
    /// The key, on this step's events.
    pub key: Plan,
    /// Which of those events count; all when `None`.
    pub filter: Option<Plan>,
}

impl Sequence {
    /// Whether two sequences are the same definition, so a reload may keep
    /// the steps recorded for one for the other.
    pub fn same_as(&self, other: &Sequence) -> bool {
        self.within_ms == other.within_ms
            && self.any_order == other.any_order
            && self.key.source() == other.key.source()
            && self.steps.len() == other.steps.len()
            && self.steps.iter().zip(&other.steps).all(|(a, b)| {
                a.on == b.on
                    && a.key.source() == b.key.source()
                    && a.filter.as_ref().map(Plan::source) == b.filter.as_ref().map(Plan::source)
            })
    }
}

/// What an absence rule waits for. When its condition holds on an event at
/// `t`, the rule arms a timer for `key`; an event of an `unless` kind at a
/// time in `[t, t + for_ms)` whose `matches` gives the same key (and whose
/// `filter` holds) cancels it; otherwise the rule fires once the event
/// time of the arming event's partition reaches `t + for_ms`.
#[derive(Debug, Clone)]
pub struct Wait {
    /// How long it waits, in ms of event time.
    pub for_ms: u64,
    /// The kinds that can cancel it.
    pub unless: Vec<EventKind>,
    /// The timer's key, on the arming event (a string).
    pub key: Plan,
    /// The key a cancelling event gives (a string).
    pub matches: Plan,
    /// Which events of those kinds cancel; all when `None`.
    pub filter: Option<Plan>,
}

impl Wait {
    /// Whether two waits are the same definition, so a reload may keep
    /// the pending timers of one for the other.
    pub fn same_as(&self, other: &Wait) -> bool {
        self.for_ms == other.for_ms
            && self.unless == other.unless
            && self.key.source() == other.key.source()
            && self.matches.source() == other.matches.source()
            && self.filter.as_ref().map(Plan::source) == other.filter.as_ref().map(Plan::source)
    }
}

/// Score thresholds for one event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Score at which an event goes to review.
    pub review: i32,
    /// Score at which the actor is challenged (step-up).
    pub challenge: i32,
    /// Score at which the event is blocked.
    pub block: i32,
}

/// The pack's decision table.
#[derive(Debug, Clone)]
pub struct Decisions {
    pub(crate) default: Thresholds,
    pub(crate) by_kind: Vec<Option<Thresholds>>,
}

impl Default for Decisions {
    fn default() -> Self {
        Decisions {
            default: Thresholds { review: 50, challenge: 80, block: 100 },
            by_kind: vec![None; EventKind::ALL.len()],
        }
    }
}

impl Decisions {
    /// The decision for an event of `kind` with `score`.
    pub fn decide(&self, kind: EventKind, score: i32) -> Decision {
        let t = self.by_kind[kind.index()].unwrap_or(self.default);
        if score >= t.block {
            Decision::Block
        } else if score >= t.challenge {
            Decision::Challenge
        } else if score >= t.review {
            Decision::Review
        } else {
            Decision::Allow
        }
    }
}

impl Pack {
    /// The longest feature window, rule wait or sequence in milliseconds:
    /// how much history warm-up must replay to rebuild the store, the
    /// pending timers and the sequences' steps.
    pub fn longest_window_ms(&self) -> u64 {
        let waits = self.rules.iter().filter_map(|r| r.wait.as_ref()).map(|w| w.for_ms);
        let sequences = self.rules.iter().filter_map(|r| r.after.as_ref()).map(|s| s.within_ms);
        self.features.iter().map(|f| f.window_ms).chain(waits).chain(sequences).max().unwrap_or(0)
    }

    /// The pack's state that is not keyed by the input's message key
    /// ([`MESSAGE_KEY`]), each named with its key: features, keyed reads
    /// (`features.x.of(key)`), sequences, timers, labels and cooldowns
    /// whose key may come from any input partition. Such state counts the
    /// events of every partition only in a process that owns them all.
    /// Empty when all the pack's state lives with its user's partition.
    pub fn state_beyond_the_message_key(&self) -> Vec<String> {
        let local = |plan: &Plan| plan.source().trim() == MESSAGE_KEY;
        let mut found = Vec::new();
        for f in self.features.iter().filter(|f| !local(&f.key)) {
            found.push(format!("feature {} (keyed by {})", f.name, f.key.source().trim()));
        }
        for rule in &self.rules {
            let id = &rule.id;
            let filters = rule.wait.iter().filter_map(|w| w.filter.as_ref());
            let steps = rule.after.iter().flat_map(|s| s.steps.iter().filter_map(|step| step.filter.as_ref()));
            if std::iter::once(&rule.when).chain(filters).chain(steps).any(Plan::reads_other_keys) {
                found.push(format!("rule {id} (reads a feature for another key)"));
            }
            let sequence_keys =
                rule.after.iter().flat_map(|s| std::iter::once(&s.key).chain(s.steps.iter().map(|s| &s.key)));
            if let Some(key) = sequence_keys.into_iter().find(|k| !local(k)) {
                found.push(format!("rule {id} (sequence keyed by {})", key.source().trim()));
            }
            let wait_keys = rule.wait.iter().flat_map(|w| [&w.key, &w.matches]);
            if let Some(key) = wait_keys.into_iter().find(|k| !local(k)) {
                found.push(format!("rule {id} (timer keyed by {})", key.source().trim()));
            }
            for op in &rule.labels {
                let on_its_user = op.entity == LabelEntity::User && op.id.as_ref().is_none_or(local);
                if !on_its_user {
                    found.push(format!("rule {id} (label {} on a {})", op.label, op.entity.name()));
                }
            }
            for action in rule.actions.iter().filter(|a| a.cooldown_ms > 0 && !local(&a.id)) {
                // Bids, orders, payouts and messages are the event's own:
                // their events share its user's partition.
                let shared = matches!(
                    action.target,
                    EntityType::User
                        | EntityType::Device
                        | EntityType::Ip
                        | EntityType::Card
                        | EntityType::Show
                        | EntityType::Listing
                );
                if shared {
                    found.push(format!(
                        "rule {id} (cooldown of {} keyed by {})",
                        action.kind,
                        action.id.source().trim()
                    ));
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_entities_are_entity_types() {
        for (i, e) in LabelEntity::ALL.into_iter().enumerate() {
            assert_eq!(e as usize, i);
            assert_eq!(LabelEntity::from_index(i as u32), Some(e));
            assert_eq!(LabelEntity::from_name(e.name()), Some(e));
        }
        assert_eq!(LabelEntity::from_name("card"), None);
        assert_eq!(LabelEntity::from_name("unspecified"), None);
    }

    #[test]
    fn rule_modes_are_the_specified_proto_modes() {
        for &m in pb::RuleMode::SPECIFIED {
            let mode = RuleMode::from_proto(m).expect("specified");
            assert_eq!(mode.proto(), m);
            assert_eq!(RuleMode::from_name(m.as_str()), Some(mode));
        }
        assert_eq!(RuleMode::from_name("unspecified"), None);
    }
}
