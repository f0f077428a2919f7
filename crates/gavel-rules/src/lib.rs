//! Gavel rule packs: the YAML pack format, the condition compiler and the
//! diagnostics T&S ops see when a pack is wrong.
//!
//! A pack is a directory of YAML files. [`Pack::compile`] takes their text
//! (never a path: this crate does no I/O) and returns either a compiled
//! [`Pack`] ready for the engine or every error found, each with the file,
//! line and column it points at.
//!
//! What a pack can say today: windowed `count` features keyed by an envelope
//! field (`user`, `device`, `ip`), and rules whose condition compares one
//! feature with a number (`features.bids_per_user_10s > 8`). The CEL
//! expression language replaces this condition form without changing the
//! compiled [`Pack`] the engine sees.

mod compile;
pub mod expr;
mod format;

pub use compile::{Aggregate, CmpOp, Condition, Feature, KeyField, Pack, Rule, RuleMode};

/// One problem in a pack, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line; 0 when the problem has no single place.
    pub line: usize,
    /// 1-based column; 0 when the problem has no single place.
    pub column: usize,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

/// Errors from compiling a pack.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The pack has errors; every one found is listed.
    #[error("rule pack has {} error(s):\n{}", .0.len(), render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Result alias for this crate.
pub type Result<T, E = RulesError> = std::result::Result<T, E>;
