//! Gavel rule packs: the YAML pack format, the condition compiler and the
//! diagnostics T&S ops see when a pack is wrong.
//!
//! A pack is a directory of YAML files. [`Pack::compile`] takes their text
//! (never a path: this crate does no I/O) and returns either a compiled
//! [`Pack`] ready for the engine or every error found, each with the file,
//! line and column it points at. A pack that compiles may still carry
//! warnings ([`Pack::warnings`]): a label no rule sets, a feature no rule
//! reads, a comparison that is constant. Every diagnostic has a stable
//! code ([`CODES`]).
//!
//! A pack declares named `lists`, windowed `features` (grouped by a key
//! expression), `rules` (a CEL condition, a score, actions, enforce or
//! shadow) and `decisions` (score thresholds). Expressions are CEL, compiled
//! by [`expr`] into typed plans against the event schema.
//!
//! Start at [`Pack::compile`] (`compile/`, one file per pack section). The
//! compiled model is `pack.rs`; `env.rs` is the slot layout plans read
//! from; `diagnostic.rs` and [`span`] place problems in the text;
//! `format.rs` is the YAML shape. Name tables shared with the rest of gavel
//! (action types, decisions, modes, entity types, aggregates) live in
//! `gavel-model`.

mod compile;
mod diagnostic;
mod env;
pub mod expr;
mod format;
mod pack;
pub mod span;
mod tests_def;

pub use compile::{SCORE_RANGE, THRESHOLD_RANGE, aggregate_type, aggregate_value_types, format_duration};
pub use diagnostic::{CODES, Diagnostic, Severity};
pub use env::{FEATURE_SLOT_BASE, KIND_SLOT, compile_expression, event_slot, event_slot_is_set};
/// What a feature computes; defined once in `gavel-model`, re-exported here
/// so `gavel_rules::Aggregate` keeps working.
pub use gavel_model::Aggregate;
pub use pack::{
    Action, DEFAULT_MAX_KEYS, Decisions, Feature, LabelEntity, LabelOp, MESSAGE_KEY, Pack, Rule, RuleMode, Sequence,
    SequenceStep, Thresholds, Wait,
};
pub use span::byte_span;
pub use tests_def::{Expect, Step, TestCase};

use diagnostic::render;

/// Errors from compiling a pack.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The pack has errors; every one found is listed (errors only: a
    /// pack's warnings are reported once it compiles).
    #[error("rule pack has {} error(s):\n{}", .0.len(), render(.0))]
    Invalid(Vec<Diagnostic>),
}

/// Result alias for this crate.
pub type Result<T, E = RulesError> = std::result::Result<T, E>;
