//! The YAML shape of a pack file, as serde sees it. Unknown keys are errors.
//! Fields holding expressions are `Spanned` so diagnostics can point into them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// One YAML file of a pack.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackFile {
    /// The pack's version, stamped on every output. Exactly one file sets it.
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    #[serde(default)]
    pub lists: Vec<ListDef>,
    #[serde(default)]
    pub features: Vec<FeatureDef>,
    #[serde(default)]
    pub rules: Vec<RuleDef>,
    #[serde(default)]
    pub decisions: Option<DecisionsDef>,
    #[serde(default)]
    pub tests: Vec<TestDef>,
}

/// A rule test: events in order, with expectations on outcomes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestDef {
    pub name: Spanned<String>,
    pub steps: Vec<StepDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepDef {
    /// Event time as an offset from the test's start (e.g. `90s`); defaults
    /// to one second after the previous step.
    #[serde(default)]
    pub at: Option<Spanned<String>>,
    /// The event, in the proto3 JSON mapping (camelCase or snake_case).
    pub event: Spanned<serde_json::Value>,
    /// Send the event this many times (default 1), `every` apart.
    #[serde(default)]
    pub repeat: Option<u32>,
    #[serde(default)]
    pub every: Option<Spanned<String>>,
    /// Expectations on the outcome of the step's last event.
    #[serde(default)]
    pub expect: Option<ExpectDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectDef {
    /// Rules that must fire (enforce or shadow).
    #[serde(default)]
    pub fires: Vec<Spanned<String>>,
    /// Rules that must not fire.
    #[serde(default)]
    pub not_fires: Vec<Spanned<String>>,
    /// `allow`, `review`, `challenge` or `block`.
    #[serde(default)]
    pub decision: Option<Spanned<String>>,
    /// Exactly these action types, in order (e.g. `[block_bid]`, `[]`).
    #[serde(default)]
    pub actions: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub score: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListDef {
    pub name: Spanned<String>,
    /// Entries given inline.
    #[serde(default)]
    pub items: Vec<String>,
    /// Or a file beside the pack: one entry per line (`#` comments, blank
    /// lines ignored), or the first column of a CSV.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeatureDef {
    pub name: Spanned<String>,
    /// Event kinds that update the feature.
    pub on: Spanned<Vec<String>>,
    /// Expression giving the key the feature is grouped by.
    pub key: Spanned<String>,
    /// Only events for which this expression is true are counted.
    #[serde(default, rename = "where")]
    pub filter: Option<Spanned<String>>,
    /// What each event contributes: a number for sum/min/max/avg, a string
    /// for distinct.
    #[serde(default)]
    pub value: Option<Spanned<String>>,
    /// Window length, e.g. `10s`, `5m`, `1h`, `30d`.
    pub window: Spanned<String>,
    pub aggregate: Spanned<String>,
    /// Keys held at most; past it the least recently active are evicted.
    #[serde(default)]
    pub max_keys: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionDef {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// The entity acted on: user, device, ip, or another type with `id`.
    pub target: Spanned<String>,
    /// Expression for the target's id; defaults by target type.
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    /// No repeat of this action on the same target within this long.
    #[serde(default)]
    pub cooldown: Option<Spanned<String>>,
    /// How long the action lasts (e.g. a chat mute); unset for no expiry.
    #[serde(default)]
    pub expires: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDef {
    pub id: Spanned<String>,
    pub description: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub on: Spanned<Vec<String>>,
    pub when: Spanned<String>,
    /// Added to the event's score when the rule fires (enforce mode): 0 to 100.
    pub score: Spanned<i32>,
    #[serde(default)]
    pub actions: Vec<ActionDef>,
    #[serde(default)]
    pub labels: Vec<LabelDef>,
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Fire only if nothing cancels the rule within a time: absence.
    #[serde(default)]
    pub wait: Option<Spanned<WaitDef>>,
    /// Fire only after these steps happened to the same key: a sequence.
    #[serde(default)]
    pub after: Option<Spanned<SequenceDef>>,
}

/// `after:` of a rule: earlier events of the same key, within a time, in
/// the order written (or any order), that must precede the rule's event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SequenceDef {
    pub within: Spanned<String>,
    /// On every step's events and the rule's own.
    pub key: Spanned<String>,
    /// `given` (default) or `any`.
    #[serde(default)]
    pub order: Option<Spanned<String>>,
    pub steps: Spanned<Vec<SequenceStepDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SequenceStepDef {
    pub on: Spanned<Vec<String>>,
    #[serde(default, rename = "where")]
    pub filter: Option<Spanned<String>>,
}

/// `wait:` of a rule: when `when` holds, the rule waits `for` in event
/// time for an event of an `unless` kind whose `match` equals the `key`
/// (and whose `where` holds); it fires at the deadline if none came.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitDef {
    #[serde(rename = "for")]
    pub within: Spanned<String>,
    pub unless: Spanned<Vec<String>>,
    /// On the rule's own event: what a cancelling event must match.
    pub key: Spanned<String>,
    /// On the cancelling event.
    #[serde(rename = "match")]
    pub matches: Spanned<String>,
    #[serde(default, rename = "where")]
    pub filter: Option<Spanned<String>>,
}

/// A label a rule adds (with a TTL) or removes on one of the event's entities.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelDef {
    #[serde(default)]
    pub add: Option<Spanned<String>>,
    #[serde(default)]
    pub remove: Option<Spanned<String>>,
    /// `user`, `device` or `ip`.
    pub entity: Spanned<String>,
    /// Expression for the entity's id when it is not the event's own (e.g.
    /// `event.auction_closed.winner_id` to label the winner as a user).
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    #[serde(default)]
    pub ttl: Option<Spanned<String>>,
}

fn enabled() -> bool {
    true
}

/// Score thresholds. A verdict is the highest level whose threshold the
/// event's score reaches; below all of them it is `allow`. Each is 1 to
/// 1000, and review ≤ challenge ≤ block (an equal pair skips the lower
/// level).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThresholdsDef {
    pub review: Spanned<i32>,
    pub challenge: Spanned<i32>,
    pub block: Spanned<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionsDef {
    pub review: Spanned<i32>,
    pub challenge: Spanned<i32>,
    pub block: Spanned<i32>,
    /// Per event kind overrides.
    #[serde(default)]
    pub by_kind: BTreeMap<String, Spanned<ThresholdsDef>>,
}
