//! Rule expressions: CEL syntax, parsed by the `cel` crate, compiled by
//! gavel into a typed evaluation [`Plan`].
//!
//! Compilation resolves every name against an [`Env`] (for rules: the event
//! schema, the pack's features and lists), checks types statically, folds
//! constants, and builds regexes, keyword automata and format strings once.
//! Evaluation walks the plan against an [`Activation`] (one event and its
//! feature values) without allocating on the common paths: strings are
//! borrowed from the event, numbers are unboxed, constant lists and maps are
//! read in place, and `&&`/`||`/`?:` short-circuit.
//!
//! # What compiles
//!
//! The CEL standard library as cel-go has it, less bytes, `type()` and
//! messages as values: `bool`, `int`, `uint`, `double`, `string`,
//! `timestamp`, `duration`, lists, maps (`{'US': 1}[event.country]`,
//! `k in m`, `size(m)`), the macros `all`, `exists`, `exists_one`, `map`
//! (2 and 3 arguments), `filter`; list and map indexing; `dyn(x)` (which
//! is `x`: gavel still types it). Extensions: the strings extension
//! (`charAt`, `indexOf`, `lastIndexOf`, `lowerAscii`, `upperAscii`,
//! `replace`, `split`, `substring`, `trim`, `reverse`, `join`, `format`,
//! `strings.quote`), the timestamp getters with an optional time zone
//! (`getHours("America/New_York")`, `getDayOfWeek("+05:30")`, …) and the
//! duration getters, optional values (`event.?a.b`, `m[?k]`, `m.?k`,
//! `optional.of`/`ofNonZeroValue`/`none`, `orValue`, `or`, `hasValue`,
//! `value`), `cel.bind(x, init, body)`, `math.greatest`/`math.least`. And
//! gavel's own text normal forms ([`text`]): `s.folded()`, `s.numerals()`,
//! `s.skeleton()`. Anything else is a compile error naming the construct.
//!
//! Types are static, as cel-go's checker has them, with two differences: a
//! list or map holds one type (`[1, 'a']` is an error, not `list(dyn)`), and
//! numbers of different types compare by value (`1 == 1u`, `2 < 2.5`) but
//! do not mix in arithmetic. A case cel-go would accept and gavel cannot
//! type is a compile error, never a different answer.
//!
//! # Fields, presence and null
//!
//! Unset event fields read as their proto3 default (`""`, `0`, `false`,
//! the epoch) as in CEL; `has(event.x)` tests presence (for a scalar
//! without presence: a non-default value). Reading a field of another
//! event kind's payload (a rule `on` several kinds) reads the default too,
//! and `has()` is false; a rule on one kind cannot name another kind's
//! fields at all. A message-typed field is never null, as in CEL: unset,
//! it reads as an empty message, so `event.payment_attempted.card == null`
//! is always `false` and `!= null` always `true` (the compiler folds them
//! and warns, `W004`, pointing at `has()`). `event.?a.b` is an optional:
//! present when `a` is set, holding `a.b` then.
//!
//! # Run-time errors
//!
//! Static typing rules out most errors. What remains follows cel-go: integer
//! overflow, division or modulo by zero, a conversion that does not fit or
//! parse, a timestamp outside years 1 to 9999 or a duration outside ±292
//! years, a list index out of range, a missing map key, a repeated map key,
//! `value()` of `optional.none()`, a strings-extension index out of range,
//! an unknown time zone. The error propagates, except that `a && b` is
//! `false` when either side is `false`, `a || b` is `true` when either side
//! is `true`, and `all`/`exists` absorb errors the same way, whatever the
//! other side did. A rule whose condition ends in an error does not fire;
//! the engine counts it per rule.
//!
//! # Warnings
//!
//! A plan carries [`CompileWarning`]s with stable codes: `W003` a field
//! with a closed set of values ([`Env::known_values`], e.g. `event.kind`)
//! compared with a constant outside it; `W004` a comparison that is
//! constant (`msg == null`, `u >= 0u` on a `uint`, `size(x) < 0`); `W007` a
//! constant or a list entry searched for in `folded()` or `numerals()`
//! text that is not in that form itself.
//!
//! Files: `names.rs` (the [`Env`] names resolve against, errors and
//! warnings), `compile.rs` and its function table `compile/calls.rs`,
//! `ir.rs` (the plan tree, shared by compiler and evaluator, which do not
//! import each other), `eval.rs`, `value.rs` (types and values), `time.rs`
//! (timestamps, durations, time zones), `strings.rs` (the strings
//! extension and `format`) and `text.rs` (the text normal forms).

mod compile;
mod eval;
mod ir;
mod names;
mod strings;
pub mod text;
mod time;
mod value;

#[cfg(test)]
mod tests;

pub use compile::compile;
pub use ir::{Activation, EvalError, TextForm};
pub use names::{CompileError, CompileWarning, Env, Resolved, StringList, nearest};
pub use value::{Type, Value};

use ir::Node;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Plan {
    node: Node,
    ty: Type,
    source: String,
    warnings: Vec<CompileWarning>,
    /// How deep the plan's tree is: evaluation recurses that deep.
    depth: usize,
}

/// Plans up to this deep evaluate on the caller's stack as it is.
const SHALLOW: usize = 24;
/// Stack a level of evaluation may take (debug builds' frames are large).
const STACK_PER_LEVEL: usize = 32 * 1024;

impl Plan {
    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression's static type.
    pub fn ty(&self) -> &Type {
        &self.ty
    }

    /// What the compiler warned about (the plan is valid all the same).
    pub fn warnings(&self) -> &[CompileWarning] {
        &self.warnings
    }

    /// Evaluates against `activation`.
    pub fn eval<'a>(&'a self, activation: &dyn Activation<'a>) -> Result<Value<'a>, EvalError> {
        let mut vars = Vec::new();
        if self.depth <= SHALLOW {
            return self.node.eval(activation, &mut vars);
        }
        // A deep plan (rare: compile caps the depth) checks that the stack
        // has room for it, and moves to a new one if it has not.
        let needed = self.depth * STACK_PER_LEVEL;
        stacker::maybe_grow(needed, needed, || self.node.eval(activation, &mut vars))
    }

    /// Evaluates a `bool` plan.
    pub fn eval_bool<'a>(&'a self, activation: &dyn Activation<'a>) -> Result<bool, EvalError> {
        match self.eval(activation)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::Type(format!("expected bool, got {}", other.type_name()))),
        }
    }

    /// Whether the expression reads a feature for another key than the
    /// event's (`features.x.of(key)`).
    pub fn reads_other_keys(&self) -> bool {
        self.node.reads_other_keys()
    }

    /// The constant value, if the whole expression folded to one.
    pub fn constant(&self) -> Option<&Value<'static>> {
        match &self.node {
            Node::Const(v) => Some(v),
            _ => None,
        }
    }
}
