//! The plan IR: the typed [`Node`] tree the compiler builds and the
//! evaluator walks, the operators in it, the [`Activation`] a plan reads
//! from and the [`EvalError`]s it can end in. Neither compiling nor
//! evaluating lives here: `compile.rs` and `eval.rs` both build on this.

use std::sync::Arc;

use regex::Regex;

use super::StringList;
use super::value::Value;

/// Values an expression reads: the event's fields, the features, whatever
/// the [`super::Env`] resolved to slots.
pub trait Activation<'a> {
    /// The value in `slot`.
    fn field(&self, slot: u32) -> Value<'a>;
    /// Whether `slot` is set (for `has()`).
    fn has(&self, slot: u32) -> bool;

    /// Whether the event's entity number `entity` carries `label` now.
    fn has_label(&self, _entity: u32, _label: &str) -> bool {
        false
    }
}

/// An activation with nothing in it, for constant folding.
pub(crate) struct NoActivation;

impl<'a> Activation<'a> for NoActivation {
    fn field(&self, _slot: u32) -> Value<'a> {
        Value::Null
    }
    fn has(&self, _slot: u32) -> bool {
        false
    }
}

/// Why an evaluation failed. See the module docs for when these happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Integer overflow.
    #[error("integer overflow")]
    Overflow,
    /// Division or modulo by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A conversion whose input does not fit or does not parse.
    #[error("invalid conversion: {0}")]
    Conversion(String),
    /// A value of an unexpected type (a compiler bug if it ever happens).
    #[error("type error: {0}")]
    Type(String),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// String predicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrFn {
    Contains,
    StartsWith,
    EndsWith,
}

/// Type conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    Int,
    Uint,
    Double,
    String,
    Duration,
    Timestamp,
}

/// A plan node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Value<'static>),
    /// A constant subexpression that always fails; kept so the error only
    /// surfaces if evaluation reaches it (`false && 1/0 == 1` is `false`).
    Error(EvalError),
    Slot(u32),
    Has(u32),
    Var(usize),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    InList(Box<Node>, Arc<StringList>),
    /// `label in labels.<entity>`.
    InLabels(Box<Node>, u32),
    /// `labels.<entity>` before it meets `in`.
    Labels(u32),
    InValues(Box<Node>, Vec<Node>),
    List(Vec<Node>),
    NamedList(Arc<StringList>),
    Str(StrFn, Box<Node>, Box<Node>),
    Matches(Box<Node>, Arc<Regex>),
    ContainsAny {
        text: Box<Node>,
        list: Arc<StringList>,
        ascii_case_insensitive: bool,
    },
    LowerAscii(Box<Node>),
    Size(Box<Node>),
    Convert(Conv, Box<Node>),
    Comprehension {
        range: Box<Node>,
        body: Box<Node>,
        all: bool,
    },
}

impl Node {
    pub(crate) fn is_const(&self) -> bool {
        matches!(self, Node::Const(_) | Node::Error(_))
    }

    pub(crate) fn children(&self) -> Vec<&Node> {
        match self {
            Node::Const(_)
            | Node::Error(_)
            | Node::Slot(_)
            | Node::Has(_)
            | Node::Var(_)
            | Node::NamedList(_)
            | Node::Labels(_) => {
                vec![]
            }
            Node::Not(a)
            | Node::Neg(a)
            | Node::InList(a, _)
            | Node::InLabels(a, _)
            | Node::Matches(a, _)
            | Node::LowerAscii(a)
            | Node::Size(a)
            | Node::Convert(_, a) => vec![a],
            Node::ContainsAny { text, .. } => vec![text],
            Node::And(a, b) | Node::Or(a, b) | Node::Cmp(_, a, b) | Node::Arith(_, a, b) | Node::Str(_, a, b) => {
                vec![a, b]
            }
            Node::Cond(a, b, c) => vec![a, b, c],
            Node::InValues(a, items) => std::iter::once(&**a).chain(items.iter()).collect(),
            Node::List(items) => items.iter().collect(),
            Node::Comprehension { range, body, .. } => vec![range, body],
        }
    }

    pub(crate) fn contains_labels(&self) -> bool {
        matches!(self, Node::Labels(_)) || self.children().into_iter().any(Node::contains_labels)
    }

    /// True when the node reads comprehension variable `depth` or deeper.
    pub(crate) fn uses_var_from(&self, depth: usize) -> bool {
        match self {
            Node::Var(d) => *d >= depth,
            other => other.children().into_iter().any(|c| c.uses_var_from(depth)),
        }
    }
}
