//! Rule expressions: CEL syntax, parsed by the `cel` crate, compiled by
//! gavel into a typed evaluation [`Plan`].
//!
//! Compilation resolves every name against an [`Env`] (for rules: the event
//! schema, the pack's features and lists), checks types statically, folds
//! constants, and builds regexes and keyword automata once. Evaluation walks
//! the plan against an [`Activation`] (one event and its feature values)
//! without allocating on the common paths: strings are borrowed from the
//! event, numbers are unboxed, and `&&`/`||`/`?:` short-circuit.
//!
//! # Run-time errors
//!
//! Static typing rules out most errors. What remains — integer overflow,
//! division or modulo by zero, a conversion that does not fit, a timestamp
//! out of range — follows CEL: the error propagates, except that `a && b`
//! is `false` when either side is `false` and `a || b` is `true` when either
//! side is `true`, whatever the other side did. A rule whose condition ends
//! in an error does not fire; the engine counts it per rule.
//!
//! Unset event fields read as their proto3 default (`""`, `0`, `false`,
//! the epoch) as in CEL; use `has(event.x)` to test presence.
//!
//! Files: `names.rs` (the [`Env`] names resolve against), `compile.rs` and
//! its function table `compile/calls.rs`, `ir.rs` (the plan tree, shared by
//! compiler and evaluator, which do not import each other), `eval.rs`,
//! `value.rs`.

mod compile;
mod eval;
mod ir;
mod names;
mod value;

pub use compile::compile;
pub use ir::{Activation, EvalError};
pub use names::{CompileError, Env, Resolved, StringList, nearest};
pub use value::{Type, Value};

use ir::Node;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Plan {
    node: Node,
    ty: Type,
    source: String,
}

impl Plan {
    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression's static type.
    pub fn ty(&self) -> &Type {
        &self.ty
    }

    /// Evaluates against `activation`.
    pub fn eval<'a>(&'a self, activation: &dyn Activation<'a>) -> Result<Value<'a>, EvalError> {
        let mut vars = Vec::new();
        self.node.eval(activation, &mut vars)
    }

    /// Evaluates a `bool` plan.
    pub fn eval_bool<'a>(&'a self, activation: &dyn Activation<'a>) -> Result<bool, EvalError> {
        match self.eval(activation)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::Type(format!("expected bool, got {}", other.type_name()))),
        }
    }

    /// The constant value, if the whole expression folded to one.
    pub fn constant(&self) -> Option<&Value<'static>> {
        match &self.node {
            Node::Const(v) => Some(v),
            _ => None,
        }
    }
}
