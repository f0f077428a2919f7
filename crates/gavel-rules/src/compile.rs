//! Compiling pack files into a [`Pack`]: lists built, expressions compiled
//! against the event schema, features and lists, names resolved to indices,
//! every error collected with its place.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gavel_model::EventKind;
use gavel_model::pb::{ActionType, Decision, EntityType};
use gavel_model::schema::{EVENT_FIELDS, FieldType, field};
use serde_saphyr::Spanned;

use crate::expr::{self, CompileError, Env, Plan, Resolved, StringList, Type, Value};
use crate::format::{ActionDef, ExpectDef, FeatureDef, PackFile, RuleDef, ThresholdsDef};
use crate::tests_def::{Expect, Step, TestCase};
use crate::{Diagnostic, Result, RulesError};

/// Keys a feature holds at most unless its `max_keys` says otherwise. Idle
/// keys are evicted when their window empties; past the cap the least
/// recently active keys go first, and a counter says so.
pub const DEFAULT_MAX_KEYS: usize = 2_000_000;

/// Slot of `event.kind` (the payload kind's name) in rule activations.
pub const KIND_SLOT: u32 = EVENT_FIELDS.len() as u32;
/// Slot of feature 0; feature `i` is at `FEATURE_SLOT_BASE + i`.
pub const FEATURE_SLOT_BASE: u32 = KIND_SLOT + 1;

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
}

/// How a feature aggregates the events in its window. Mirrors the velocity
/// store's aggregates: the rules crate does not depend on the store (see
/// ARCHITECTURE.md), the engine maps one onto the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Number of events (`int`).
    Count,
    /// Sum of `value` (`double`).
    Sum,
    /// Smallest `value` (`double`; null when the window is empty).
    Min,
    /// Largest `value` (`double`; null when empty).
    Max,
    /// Mean of `value` (`double`; null when empty).
    Avg,
    /// Number of distinct `value` strings (`int`; exact while small, then an
    /// estimate, see `gavel_velocity`).
    Distinct,
    /// Time of the oldest event in the window (`timestamp`; null when empty).
    FirstSeen,
    /// Time of the newest event in the window (`timestamp`; null when empty).
    LastSeen,
    /// Time since the key's previous event in the window (`duration`; null
    /// when there was none).
    Since,
}

impl Aggregate {
    /// Every aggregate, by pack name.
    pub const ALL: [(&'static str, Aggregate); 9] = [
        ("count", Aggregate::Count),
        ("sum", Aggregate::Sum),
        ("min", Aggregate::Min),
        ("max", Aggregate::Max),
        ("avg", Aggregate::Avg),
        ("distinct", Aggregate::Distinct),
        ("first_seen", Aggregate::FirstSeen),
        ("last_seen", Aggregate::LastSeen),
        ("since", Aggregate::Since),
    ];

    /// The pack name.
    pub fn name(self) -> &'static str {
        Aggregate::ALL.iter().find(|(_, a)| *a == self).map_or("count", |(n, _)| n)
    }

    /// The type rules read the feature as.
    pub fn output_type(self) -> Type {
        match self {
            Aggregate::Count | Aggregate::Distinct => Type::Int,
            Aggregate::Sum | Aggregate::Min | Aggregate::Max | Aggregate::Avg => Type::Double,
            Aggregate::FirstSeen | Aggregate::LastSeen => Type::Timestamp,
            Aggregate::Since => Type::Duration,
        }
    }

    /// The types the feature's `value` expression may have; empty when the
    /// aggregate takes no value.
    pub fn value_types(self) -> &'static [Type] {
        match self {
            Aggregate::Sum | Aggregate::Min | Aggregate::Max | Aggregate::Avg => &[Type::Int, Type::Uint, Type::Double],
            Aggregate::Distinct => &[Type::String],
            _ => &[],
        }
    }
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
    pub aggregate: Aggregate,
}

/// Whether a rule's hits change outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleMode {
    /// Scores count and actions are emitted.
    Enforce,
    /// Evaluated and reported only.
    Shadow,
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

/// The entities labels can be set on, keyed by the event's own ids.
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
    /// The entity named `name` (`user`, `device`, `ip`).
    pub fn from_name(name: &str) -> Option<LabelEntity> {
        match name {
            "user" => Some(LabelEntity::User),
            "device" => Some(LabelEntity::Device),
            "ip" => Some(LabelEntity::Ip),
            _ => None,
        }
    }

    /// The entity numbered `n` (as passed to `Activation::has_label`).
    pub fn from_index(n: u32) -> Option<LabelEntity> {
        [LabelEntity::User, LabelEntity::Device, LabelEntity::Ip].get(n as usize).copied()
    }

    /// The name used in packs.
    pub fn name(self) -> &'static str {
        match self {
            LabelEntity::User => "user",
            LabelEntity::Device => "device",
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

impl From<ThresholdsDef> for Thresholds {
    fn from(t: ThresholdsDef) -> Self {
        Thresholds { review: t.review, challenge: t.challenge, block: t.block }
    }
}

/// The pack's decision table.
#[derive(Debug, Clone)]
pub struct Decisions {
    default: Thresholds,
    by_kind: Vec<Option<Thresholds>>,
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
    /// Compiles a pack from its files, given as `(path, text)` pairs: the
    /// YAML files (`.yaml`/`.yml`) and any data files lists refer to.
    /// Returns every error found across all files.
    pub fn compile<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Pack> {
        let files: Vec<(&str, &str)> = files.into_iter().collect();
        let mut c = PackCompiler { diags: Vec::new() };
        let mut parsed = Vec::new();
        for (name, text) in &files {
            if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                continue;
            }
            match serde_saphyr::from_str::<Option<PackFile>>(text) {
                Ok(file) => parsed.push(Source { name, text, file: file.unwrap_or_default() }),
                Err(e) => c.diags.push(yaml_diagnostic(name, &e)),
            }
        }
        let version = c.version(&parsed);
        let lists = c.lists(&parsed, &files);
        let list_index: HashMap<String, Arc<StringList>> =
            lists.iter().map(|l| (l.name.clone(), Arc::clone(l))).collect();
        let (features, feature_defs) = c.features(&parsed, &list_index);
        let rules = c.rules(&parsed, &features, &feature_defs, &list_index);
        let decisions = c.decisions(&parsed);
        let tests = c.tests(&parsed, &rules);
        if !c.diags.is_empty() {
            return Err(RulesError::Invalid(c.diags));
        }
        let Some(version) = version else {
            return Err(RulesError::Invalid(vec![Diagnostic::whole("<pack>", "no file sets `version`")]));
        };
        Ok(Pack { version, hash: content_hash(&files), lists, features, rules, decisions, tests })
    }

    /// The longest feature window in milliseconds: how much history warm-up
    /// must replay to rebuild the store.
    pub fn longest_window_ms(&self) -> u64 {
        self.features.iter().map(|f| f.window_ms).max().unwrap_or(0)
    }
}

/// FNV-1a over names (relative to the pack directory) and contents, in name
/// order: a stable content id wherever the pack is loaded from.
fn content_hash(files: &[(&str, &str)]) -> String {
    let dir_of = |n: &str| n.rfind('/').map_or(0, |i| i + 1);
    let common = files.iter().map(|(n, _)| &n[..dir_of(n)]).reduce(|a, b| {
        let mut len = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        len = a[..len].rfind('/').map_or(0, |i| i + 1);
        &a[..len]
    });
    let strip = common.map_or(0, str::len);
    let mut sorted: Vec<(&str, &str)> = files.iter().map(|(n, t)| (&n[strip..], *t)).collect();
    sorted.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, text) in sorted {
        for b in name.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

struct Source<'a> {
    name: &'a str,
    text: &'a str,
    file: PackFile,
}

struct PackCompiler {
    diags: Vec<Diagnostic>,
}

/// Resolves names for one expression: the event fields available on the
/// given kinds, features, lists. Records the features it resolved.
struct PackEnv<'p> {
    kinds: &'p [EventKind],
    what: &'p str,
    features: &'p HashMap<String, (usize, Type)>,
    lists: &'p HashMap<String, Arc<StringList>>,
    reads: RefCell<Vec<usize>>,
}

fn field_type(ty: FieldType) -> Type {
    match ty {
        FieldType::Bool => Type::Bool,
        FieldType::Int => Type::Int,
        FieldType::Uint => Type::Uint,
        FieldType::Double => Type::Double,
        FieldType::String => Type::String,
        FieldType::Timestamp => Type::Timestamp,
        FieldType::Message => Type::Message,
    }
}

fn kinds_list(kinds: &[EventKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

impl Env for PackEnv<'_> {
    fn resolve(&self, segments: &[&str]) -> std::result::Result<Resolved, String> {
        match segments {
            ["event"] | ["features"] | ["lists"] | ["labels"] => Ok(Resolved::Namespace),
            ["labels", entity] => match LabelEntity::from_name(entity) {
                Some(e) => Ok(Resolved::Labels(e as u32)),
                None => Err(format!(
                    "unknown label entity `labels.{entity}` (expected labels.user, labels.device or labels.ip)"
                )),
            },
            ["event", "kind"] => Ok(Resolved::Field { slot: KIND_SLOT, ty: Type::String }),
            ["event", rest @ ..] => {
                let path = rest.join(".");
                let Some((slot, def)) = EVENT_FIELDS.iter().enumerate().find(|(_, f)| f.path == path) else {
                    let candidates: Vec<String> = EVENT_FIELDS
                        .iter()
                        .filter(|f| f.payload.is_none_or(|k| self.kinds.contains(&k)))
                        .map(|f| format!("event.{}", f.path))
                        .collect();
                    return Err(unknown("field", &format!("event.{path}"), &candidates));
                };
                if let Some(kind) = def.payload
                    && !self.kinds.contains(&kind)
                {
                    return Err(format!(
                        "`event.{path}` is only set on {kind} events, and this {} runs on [{}]",
                        self.what,
                        kinds_list(self.kinds)
                    ));
                }
                Ok(Resolved::Field { slot: slot as u32, ty: field_type(def.ty) })
            }
            ["features", name] => match self.features.get(*name) {
                Some((index, ty)) => {
                    self.reads.borrow_mut().push(*index);
                    Ok(Resolved::Field { slot: FEATURE_SLOT_BASE.saturating_add(*index as u32), ty: ty.clone() })
                }
                None => {
                    let names: Vec<String> = self.features.keys().map(|n| format!("features.{n}")).collect();
                    Err(unknown("feature", &format!("features.{name}"), &names))
                }
            },
            ["lists", name] => match self.lists.get(*name) {
                Some(list) => Ok(Resolved::List(Arc::clone(list))),
                None => {
                    let names: Vec<String> = self.lists.keys().map(|n| format!("lists.{n}")).collect();
                    Err(unknown("list", &format!("lists.{name}"), &names))
                }
            },
            other => {
                let name = other.join(".");
                let hint =
                    if field(&name).is_some() { format!("; did you mean `event.{name}`?") } else { String::new() };
                Err(format!("unknown name `{name}` (names start with event., features. or lists.){hint}"))
            }
        }
    }
}

fn unknown(what: &str, name: &str, candidates: &[String]) -> String {
    let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
    match expr::nearest(name, &refs) {
        Some(n) => format!("unknown {what} `{name}`; did you mean `{n}`?"),
        None => format!("unknown {what} `{name}`"),
    }
}

impl PackCompiler {
    fn at<T>(&mut self, src: &Source<'_>, spanned: &Spanned<T>, message: impl Into<String>) {
        self.diags.push(Diagnostic::at_location(src.name, src.text, &spanned.referenced, message.into()));
    }

    fn version(&mut self, parsed: &[Source<'_>]) -> Option<String> {
        let mut version: Option<String> = None;
        for src in parsed {
            if let Some(v) = &src.file.version {
                if version.is_some() {
                    self.at(src, v, "`version` is set in more than one file");
                }
                version = Some(v.value.clone());
            }
        }
        version
    }

    fn lists(&mut self, parsed: &[Source<'_>], files: &[(&str, &str)]) -> Vec<Arc<StringList>> {
        let mut lists = Vec::new();
        let mut seen = HashSet::new();
        for src in parsed {
            for def in &src.file.lists {
                if !seen.insert(def.name.value.clone()) {
                    self.at(src, &def.name, format!("duplicate list `{}`", def.name.value));
                    continue;
                }
                let mut items = def.items.clone();
                if let Some(file) = &def.file {
                    let wanted = sibling_path(src.name, &file.value);
                    match files.iter().find(|(n, _)| *n == wanted || n.ends_with(&format!("/{}", file.value))) {
                        Some((_, text)) => items.extend(list_entries(text)),
                        None => {
                            self.at(src, file, format!("list file `{}` not found beside the pack", file.value));
                            continue;
                        }
                    }
                }
                match StringList::new(def.name.value.clone(), items) {
                    Ok(list) => lists.push(Arc::new(list)),
                    Err(e) => self.at(src, &def.name, format!("list `{}`: {e}", def.name.value)),
                }
            }
        }
        lists
    }

    fn kinds(&mut self, src: &Source<'_>, on: &Spanned<Vec<String>>) -> Option<Vec<EventKind>> {
        let mut kinds = Vec::new();
        let mut ok = true;
        for name in &on.value {
            match EventKind::from_name(name) {
                Some(k) => kinds.push(k),
                None => {
                    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                    let hint =
                        expr::nearest(name, &names).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                    self.at(src, on, format!("unknown event kind `{name}`{hint}"));
                    ok = false;
                }
            }
        }
        if kinds.is_empty() && ok {
            self.at(src, on, "`on` needs at least one event kind");
            ok = false;
        }
        ok.then_some(kinds)
    }

    /// Compiles one expression field, reporting errors at their place in the file.
    fn expression(
        &mut self,
        src: &Source<'_>,
        spanned: &Spanned<String>,
        env: &PackEnv<'_>,
        expected: &[Type],
    ) -> Option<Plan> {
        match expr::compile(&spanned.value, env) {
            Ok(plan) if expected.contains(plan.ty()) => Some(plan),
            Ok(plan) => {
                let want = expected.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ");
                self.expression_error(
                    src,
                    spanned,
                    CompileError {
                        start: 0,
                        end: spanned.value.len(),
                        message: format!("expected {want}, got {}", plan.ty()),
                    },
                );
                None
            }
            Err(errors) => {
                for e in errors {
                    self.expression_error(src, spanned, e);
                }
                None
            }
        }
    }

    fn expression_error(&mut self, src: &Source<'_>, spanned: &Spanned<String>, e: CompileError) {
        let diag = Diagnostic::in_expression(src.name, src.text, &spanned.referenced, &spanned.value, &e);
        self.diags.push(diag);
    }

    fn features(
        &mut self,
        parsed: &[Source<'_>],
        lists: &HashMap<String, Arc<StringList>>,
    ) -> (Vec<Feature>, HashMap<String, (usize, Type)>) {
        let mut features = Vec::new();
        let mut index: HashMap<String, (usize, Type)> = HashMap::new();
        let no_features = HashMap::new();
        for src in parsed {
            for def in &src.file.features {
                if index.contains_key(&def.name.value) {
                    self.at(src, &def.name, format!("duplicate feature `{}`", def.name.value));
                    continue;
                }
                if let Some(feature) = self.feature(src, def, &no_features, lists) {
                    index.insert(feature.name.clone(), (features.len(), feature.aggregate.output_type()));
                    features.push(feature);
                } else {
                    // Register the name so rules reading it are not reported too.
                    index.insert(def.name.value.clone(), (usize::MAX, Type::Int));
                }
            }
        }
        (features, index)
    }

    fn feature(
        &mut self,
        src: &Source<'_>,
        def: &FeatureDef,
        no_features: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Option<Feature> {
        let on = self.kinds(src, &def.on);
        let aggregate = match Aggregate::ALL.iter().find(|(n, _)| *n == def.aggregate.value) {
            Some((_, a)) => Some(*a),
            None => {
                let names: Vec<&str> = Aggregate::ALL.iter().map(|(n, _)| *n).collect();
                self.at(
                    src,
                    &def.aggregate,
                    format!("unknown aggregate `{}` (expected one of {})", def.aggregate.value, names.join(", ")),
                );
                None
            }
        };
        let window_ms = match parse_window(&def.window.value) {
            Ok(ms) => Some(ms),
            Err(e) => {
                self.at(src, &def.window, e);
                None
            }
        };
        let on = on?;
        let env = PackEnv { kinds: &on, what: "feature", features: no_features, lists, reads: RefCell::default() };
        let key = self.expression(src, &def.key, &env, &[Type::String]);
        let filter = match &def.filter {
            Some(f) => Some(self.expression(src, f, &env, &[Type::Bool])?),
            None => None,
        };
        let aggregate = aggregate?;
        let value = match (&def.value, aggregate.value_types()) {
            (Some(v), []) => {
                self.at(src, v, format!("aggregate `{}` takes no `value`", aggregate.name()));
                return None;
            }
            (Some(v), types) => Some(self.expression(src, v, &env, types)?),
            (None, []) => None,
            (None, _) => {
                self.at(src, &def.aggregate, format!("aggregate `{}` needs a `value` expression", aggregate.name()));
                return None;
            }
        };
        let max_keys = match &def.max_keys {
            Some(n) if n.value == 0 => {
                self.at(src, n, "max_keys must be at least 1");
                return None;
            }
            Some(n) => usize::try_from(n.value).unwrap_or(usize::MAX),
            None => DEFAULT_MAX_KEYS,
        };
        Some(Feature {
            name: def.name.value.clone(),
            on,
            key: key?,
            filter,
            value,
            window_ms: window_ms?,
            aggregate,
            max_keys,
        })
    }

    fn rules(
        &mut self,
        parsed: &[Source<'_>],
        features: &[Feature],
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut ids = HashSet::new();
        for src in parsed {
            for def in &src.file.rules {
                if !ids.insert(def.id.value.clone()) {
                    self.at(src, &def.id, format!("duplicate rule id `{}`", def.id.value));
                    continue;
                }
                if let Some(rule) = self.rule(src, def, features, feature_index, lists)
                    && def.enabled
                {
                    rules.push(rule);
                }
            }
        }
        rules
    }

    fn rule(
        &mut self,
        src: &Source<'_>,
        def: &RuleDef,
        features: &[Feature],
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Option<Rule> {
        let on = self.kinds(src, &def.on)?;
        let mode = match def.mode.as_ref().map(|m| m.value.as_str()) {
            None | Some("enforce") => Some(RuleMode::Enforce),
            Some("shadow") => Some(RuleMode::Shadow),
            Some(other) => {
                let m = def.mode.as_ref().expect("mode is set");
                self.at(src, m, format!("unknown mode `{other}` (expected enforce or shadow)"));
                None
            }
        };
        let env = PackEnv { kinds: &on, what: "rule", features: feature_index, lists, reads: RefCell::default() };
        let when = self.expression(src, &def.when, &env, &[Type::Bool]);
        let mut actions = Vec::new();
        for action in &def.actions {
            if let Some(a) = self.action(src, action, &on, feature_index, lists) {
                actions.push(a);
            }
        }
        let mut reads = env.reads.take();
        reads.sort_unstable();
        reads.dedup();
        if reads.contains(&usize::MAX) {
            // A feature that failed to compile: its own error says what to fix.
            return None;
        }
        // A feature read on a kind that does not feed it is looked up by its
        // key, computed from this event: the key must make sense here.
        for &f in &reads {
            let feature = &features[f];
            let foreign: Vec<EventKind> = on.iter().copied().filter(|k| !feature.on.contains(k)).collect();
            if foreign.is_empty() {
                continue;
            }
            let key_env =
                PackEnv { kinds: &foreign, what: "rule", features: feature_index, lists, reads: RefCell::default() };
            let key_source = def_key_source(feature);
            if let Err(errors) = expr::compile(&key_source, &key_env) {
                self.at(
                    src,
                    &def.when,
                    format!(
                        "rule reads `features.{}` on [{}], which do not feed it, and its key cannot be computed there: {}",
                        feature.name,
                        kinds_list(&foreign),
                        errors[0].message
                    ),
                );
            }
        }
        if actions.len() != def.actions.len() {
            return None;
        }
        let mut labels = Vec::new();
        let label_env = PackEnv { kinds: &on, what: "rule", features: feature_index, lists, reads: RefCell::default() };
        for op in &def.labels {
            let id = match &op.id {
                Some(id) => match self.expression(src, id, &label_env, &[Type::String]) {
                    Some(plan) => Some(plan),
                    None => continue,
                },
                None => None,
            };
            let entity = LabelEntity::from_name(&op.entity.value);
            if entity.is_none() {
                self.at(
                    src,
                    &op.entity,
                    format!("unknown label entity `{}` (expected user, device or ip)", op.entity.value),
                );
            }
            let ttl = op.ttl.as_ref().map(|t| parse_window(&t.value).map_err(|e| self.at(src, t, e)));
            match (&op.add, &op.remove, ttl, entity) {
                (Some(label), None, Some(Ok(ttl)), Some(entity)) => {
                    labels.push(LabelOp { label: label.value.clone(), entity, id, ttl_ms: Some(ttl) })
                }
                (Some(label), None, None, _) => self.at(src, label, "adding a label needs a `ttl`"),
                (None, Some(label), None, Some(entity)) => {
                    labels.push(LabelOp { label: label.value.clone(), entity, id, ttl_ms: None })
                }
                (None, Some(label), Some(_), _) => self.at(src, label, "removing a label takes no `ttl`"),
                (Some(label), Some(_), _, _) => self.at(src, label, "a label entry either adds or removes"),
                (None, None, _, _) => self.at(src, &op.entity, "a label entry needs `add` or `remove`"),
                _ => {}
            }
        }
        if labels.len() != def.labels.len() {
            return None;
        }
        Some(Rule {
            id: def.id.value.clone(),
            description: def.description.clone(),
            owner: def.owner.clone(),
            tags: def.tags.clone(),
            on,
            when: when?,
            reads,
            score: def.score,
            mode: mode?,
            actions,
            labels,
        })
    }

    fn action(
        &mut self,
        src: &Source<'_>,
        def: &ActionDef,
        on: &[EventKind],
        features: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Option<Action> {
        let kind = match action_type(&def.kind.value) {
            Some(kind) => Some(kind),
            None => {
                let other = &def.kind.value;
                self.at(src, &def.kind, format!("unknown action `{other}` (expected block_bid, cancel_bid, hold_order, hold_payout, require_step_up, mute_chat, suspend_account or send_to_review)"));
                None
            }
        };
        let (target, default_id) = match def.target.value.as_str() {
            "user" => (EntityType::User, Some("event.user_id")),
            "device" => (EntityType::Device, Some("event.device_id")),
            "ip" => (EntityType::Ip, Some("event.ip")),
            "card" => (EntityType::Card, None),
            "show" => (EntityType::Show, None),
            "listing" => (EntityType::Listing, None),
            "bid" => (EntityType::Bid, None),
            "order" => (EntityType::Order, None),
            "payout" => (EntityType::Payout, None),
            "chat_message" => (EntityType::ChatMessage, None),
            other => {
                self.at(src, &def.target, format!("unknown target `{other}`"));
                return None;
            }
        };
        let env = PackEnv { kinds: on, what: "rule", features, lists, reads: RefCell::default() };
        let id = match (&def.id, default_id) {
            (Some(id), _) => self.expression(src, id, &env, &[Type::String]),
            (None, Some(default)) => expr::compile(default, &env).ok(),
            (None, None) => {
                self.at(src, &def.target, format!("target `{}` needs an `id` expression", def.target.value));
                None
            }
        };
        let duration = |this: &mut Self, d: &Option<Spanned<String>>| match d {
            None => Some(None),
            Some(text) => match parse_window(&text.value) {
                Ok(ms) => Some(Some(ms)),
                Err(e) => {
                    this.at(src, text, e);
                    None
                }
            },
        };
        let cooldown = duration(self, &def.cooldown)?;
        let expires = duration(self, &def.expires)?;
        Some(Action { kind: kind?, target, id: id?, cooldown_ms: cooldown.unwrap_or(0), expires_ms: expires })
    }

    fn decisions(&mut self, parsed: &[Source<'_>]) -> Decisions {
        let mut decisions = Decisions::default();
        let mut set = false;
        for src in parsed {
            let Some(def) = &src.file.decisions else { continue };
            if set {
                self.diags.push(Diagnostic::whole(src.name, "`decisions` is set in more than one file"));
            }
            set = true;
            let default = Thresholds { review: def.review, challenge: def.challenge, block: def.block };
            if !(default.review <= default.challenge && default.challenge <= default.block) {
                self.diags
                    .push(Diagnostic::whole(src.name, "decisions: thresholds must satisfy review ≤ challenge ≤ block"));
            }
            decisions.default = default;
            for (kind, t) in &def.by_kind {
                match EventKind::from_name(kind) {
                    Some(k) => decisions.by_kind[k.index()] = Some(t.value.into()),
                    None => self.at(src, t, format!("unknown event kind `{kind}`")),
                }
            }
        }
        decisions
    }
}

impl PackCompiler {
    fn tests(&mut self, parsed: &[Source<'_>], rules: &[Rule]) -> Vec<TestCase> {
        let mut tests = Vec::new();
        for src in parsed {
            for def in &src.file.tests {
                let place = |at: &serde_saphyr::Location| format!("{}:{}:{}", src.name, at.line(), at.column());
                let mut steps = Vec::new();
                let mut clock = 0u64;
                let mut ok = true;
                for (i, step) in def.steps.iter().enumerate() {
                    let at_ms = match &step.at {
                        Some(at) => match parse_offset(&at.value) {
                            Ok(ms) => ms,
                            Err(e) => {
                                self.at(src, at, e);
                                ok = false;
                                continue;
                            }
                        },
                        None if i == 0 => 0,
                        None => clock + 1_000,
                    };
                    let every_ms = match &step.every {
                        Some(every) => match parse_offset(&every.value) {
                            Ok(ms) => ms,
                            Err(e) => {
                                self.at(src, every, e);
                                ok = false;
                                continue;
                            }
                        },
                        None => 100,
                    };
                    let repeat = step.repeat.unwrap_or(1).max(1);
                    clock = at_ms + every_ms * u64::from(repeat - 1);
                    let event = match serde_json::to_vec(&step.event.value)
                        .map_err(|e| e.to_string())
                        .and_then(|bytes| gavel_model::decode_json(&bytes).map_err(|e| e.to_string()))
                    {
                        Ok(event) => event,
                        Err(e) => {
                            self.at(src, &step.event, format!("test event: {e}"));
                            ok = false;
                            continue;
                        }
                    };
                    let expect = match &step.expect {
                        Some(expect) => match self.expect(src, expect, rules) {
                            Some(e) => Some(e),
                            None => {
                                ok = false;
                                continue;
                            }
                        },
                        None => None,
                    };
                    steps.push(Step { at_ms, event, repeat, every_ms, expect, place: place(&step.event.referenced) });
                }
                if ok {
                    tests.push(TestCase { name: def.name.value.clone(), place: place(&def.name.referenced), steps });
                }
            }
        }
        tests
    }

    fn expect(&mut self, src: &Source<'_>, def: &ExpectDef, rules: &[Rule]) -> Option<Expect> {
        let mut ok = true;
        let mut rule_ids = |this: &mut Self, ids: &[Spanned<String>]| -> Vec<String> {
            for id in ids {
                if !rules.iter().any(|r| r.id == id.value) {
                    let known: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
                    let hint =
                        expr::nearest(&id.value, &known).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                    this.at(src, id, format!("unknown (or disabled) rule `{}`{hint}", id.value));
                    ok = false;
                }
            }
            ids.iter().map(|i| i.value.clone()).collect()
        };
        let fires = rule_ids(self, &def.fires);
        let not_fires = rule_ids(self, &def.not_fires);
        let decision = match &def.decision {
            None => None,
            Some(d) => match d.value.as_str() {
                "allow" => Some(Decision::Allow),
                "review" => Some(Decision::Review),
                "challenge" => Some(Decision::Challenge),
                "block" => Some(Decision::Block),
                other => {
                    self.at(src, d, format!("unknown decision `{other}` (expected allow, review, challenge or block)"));
                    ok = false;
                    None
                }
            },
        };
        let actions = match &def.actions {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for a in list {
                    match action_type(&a.value) {
                        Some(t) => out.push(t),
                        None => {
                            self.at(src, a, format!("unknown action `{}`", a.value));
                            ok = false;
                        }
                    }
                }
                Some(out)
            }
        };
        ok.then_some(Expect { fires, not_fires, decision, actions, score: def.score })
    }
}

/// An offset within a test: like a window, but zero is allowed.
fn parse_offset(text: &str) -> std::result::Result<u64, String> {
    if text.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(0);
    }
    parse_window(text)
}

/// The action type with this pack name.
pub(crate) fn action_type(name: &str) -> Option<ActionType> {
    Some(match name {
        "block_bid" => ActionType::BlockBid,
        "cancel_bid" => ActionType::CancelBid,
        "hold_order" => ActionType::HoldOrder,
        "hold_payout" => ActionType::HoldPayout,
        "require_step_up" => ActionType::RequireStepUp,
        "mute_chat" => ActionType::MuteChat,
        "suspend_account" => ActionType::SuspendAccount,
        "send_to_review" => ActionType::SendToReview,
        _ => return None,
    })
}

/// The slot layout rules are compiled against, from the activation's side:
/// the value of an event-field or `event.kind` slot, or `Err(feature index)`
/// for a feature slot, which only the caller can read.
pub fn event_slot<'a>(
    event: &'a gavel_model::Event,
    kind: EventKind,
    slot: u32,
) -> std::result::Result<Value<'a>, usize> {
    if slot < KIND_SLOT {
        return Ok((EVENT_FIELDS[slot as usize].get)(event).into());
    }
    if slot == KIND_SLOT {
        return Ok(Value::Str(std::borrow::Cow::Borrowed(kind.as_str())));
    }
    Err((slot - FEATURE_SLOT_BASE) as usize)
}

/// Whether an event-field slot is set (`has()`); other slots always are.
pub fn event_slot_is_set(event: &gavel_model::Event, slot: u32) -> bool {
    EVENT_FIELDS.get(slot as usize).is_none_or(|f| (f.has)(event))
}

/// Compiles one expression as a rule on `kinds` would see it, with the given
/// features (name and type, in slot order) and lists: the engine's slot
/// layout, for tools such as `gavel eval`.
pub fn compile_expression(
    source: &str,
    kinds: &[EventKind],
    features: &[(String, Type)],
    lists: &[Arc<StringList>],
) -> std::result::Result<Plan, Vec<CompileError>> {
    let features: HashMap<String, (usize, Type)> =
        features.iter().enumerate().map(|(i, (name, ty))| (name.clone(), (i, ty.clone()))).collect();
    let lists: HashMap<String, Arc<StringList>> = lists.iter().map(|l| (l.name.clone(), Arc::clone(l))).collect();
    let env = PackEnv { kinds, what: "expression", features: &features, lists: &lists, reads: RefCell::default() };
    expr::compile(source, &env)
}

/// The source text of a feature's key, for re-checking it on other kinds.
fn def_key_source(feature: &Feature) -> String {
    feature.key.source().to_string()
}

/// `name` relative to the directory of `yaml`.
fn sibling_path(yaml: &str, name: &str) -> String {
    match yaml.rfind('/') {
        Some(i) => format!("{}/{name}", &yaml[..i]),
        None => name.to_string(),
    }
}

/// Entries of a list file: one per line, or the first CSV column; blank
/// lines and `#` comments skipped.
fn list_entries(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.split(',').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
}

/// Parses `500ms`, `10s`, `5m`, `2h`, `30d`, and sums like `1h30m` or `2d 5m`.
pub(crate) fn parse_window(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let invalid = || format!("invalid duration `{text}` (expected e.g. 10s, 5m, 1h30m, 30d)");
    let mut rest = text;
    let mut ms: u64 = 0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("invalid duration unit in `{text}` (expected ms, s, m, h or d)")),
        };
        rest = rest[unit_len..].trim_start();
        ms = n
            .checked_mul(scale)
            .and_then(|v| ms.checked_add(v))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
    }
    if ms == 0 || ms > 30 * 86_400_000 {
        return Err(format!("duration `{text}` must be between 1ms and 30d"));
    }
    Ok(ms)
}

fn yaml_diagnostic(file: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = error.location().map_or((0, 0), |loc| (loc.line() as usize, loc.column() as usize));
    // The YAML error text carries its own position and source excerpt; keep
    // the message itself (the renderer draws the excerpt).
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.strip_prefix("line ").and_then(|rest| rest.split_once(": ")) {
        Some((_position, message)) => message,
        None => first,
    };
    let message = message.split(" at line ").next().unwrap_or(message).to_string();
    Diagnostic { file: file.to_string(), line, column, len: 1, message }
}
