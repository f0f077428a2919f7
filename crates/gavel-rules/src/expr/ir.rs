//! The plan IR: the typed [`Node`] tree the compiler builds and the
//! evaluator walks, the operators in it, the [`Activation`] a plan reads
//! from and the [`EvalError`]s it can end in. Neither compiling nor
//! evaluating lives here: `compile.rs` and `eval.rs` both build on this.

use std::sync::Arc;

use regex::Regex;

use super::StringList;
use super::strings::FormatPiece;
use super::time::{TimePart, Zone};
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

    /// The normal form `form` of the string field in `slot`, where the
    /// activation keeps them per event, so that every rule reading
    /// `event.x.folded()` shares one computation. `None` (the default):
    /// the evaluator computes it each time.
    fn text_form(&self, _slot: u32, _form: TextForm) -> Option<String> {
        None
    }

    /// Feature number `feature` as read for `key` instead of the key the
    /// event gives it (`features.x.of(key)`), at the event's time, without
    /// recording anything. `null` (the default) where the activation has
    /// no features.
    fn feature_at(&self, _feature: u32, _key: &str) -> Value<'a> {
        Value::Null
    }
}

/// A text normal form an [`Activation`] may keep per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextForm {
    /// `s.folded()`.
    Folded,
    /// `s.numerals()`.
    Numerals,
}

impl TextForm {
    /// `s` in this form.
    pub fn of(self, s: &str) -> String {
        match self {
            TextForm::Folded => super::text::folded(s),
            TextForm::Numerals => super::text::numerals(s),
        }
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
    /// A timestamp or duration outside CEL's range.
    #[error("{0} out of range")]
    Range(&'static str),
    /// A list index outside the list.
    #[error("index out of range: {0}")]
    Index(String),
    /// A map key the map does not have.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// `.value()` of `optional.none()`.
    #[error("optional.none() has no value")]
    NoValue,
    /// A function argument outside what the function accepts (a substring
    /// range, a format clause, a time zone).
    #[error("{0}")]
    Invalid(String),
    /// A value of an unexpected type: an operand whose type the compiler
    /// could not pin down (an element of `[[null], [1]]`), or a compiler bug.
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
    Bool,
    Int,
    Uint,
    Double,
    String,
    Duration,
    Timestamp,
}

/// Functions of fixed arity over already-evaluated arguments (the strings
/// extension, `math.greatest`/`least`, `optional.of`): each is one match
/// arm in `eval.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    /// `s.charAt(i)`.
    CharAt,
    /// `s.indexOf(t)`, `s.indexOf(t, from)`.
    IndexOf,
    /// `s.lastIndexOf(t)`, `s.lastIndexOf(t, from)`.
    LastIndexOf,
    /// `s.replace(old, new)`, `s.replace(old, new, n)`.
    Replace,
    /// `s.split(sep)`, `s.split(sep, n)`.
    Split,
    /// `s.substring(start)`, `s.substring(start, end)`.
    Substring,
    /// `s.trim()`.
    Trim,
    /// `s.upperAscii()`.
    UpperAscii,
    /// `s.reverse()`.
    Reverse,
    /// `s.skeleton()`: the Unicode TR39 skeleton.
    Skeleton,
    /// `s.folded()`: the form keyword lists match (`text.rs`).
    Folded,
    /// `s.numerals()`: the form contact-detail patterns match (`text.rs`).
    Numerals,
    /// `l.join()`, `l.join(sep)`.
    Join,
    /// `strings.quote(s)`.
    Quote,
    /// `math.greatest(…)`: of its arguments, or of one list argument.
    Greatest,
    /// `math.least(…)`.
    Least,
    /// `optional.of(v)`.
    OptionalOf,
    /// `optional.ofNonZeroValue(v)`: absent for a zero value (`0`, `""`,
    /// `false`, an empty list or map, …).
    OptionalOfNonZero,
    /// `o.hasValue()`.
    HasValue,
    /// `o.value()`.
    OptionalValue,
    /// `sets.contains(a, b)`: every element of `b` is in `a`.
    SetsContains,
    /// `sets.intersects(a, b)`: some element is in both.
    SetsIntersects,
    /// `sets.equivalent(a, b)`: the same elements, whatever the order and
    /// repeats.
    SetsEquivalent,
}

/// What a quantifier macro computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quantifier {
    /// `all(x, p)`.
    All,
    /// `exists(x, p)`.
    Exists,
    /// `exists_one(x, p)`.
    ExistsOne,
}

/// A time zone argument: fixed at compile time, or computed.
#[derive(Debug, Clone)]
pub(crate) enum ZoneArg {
    Fixed(Zone),
    Dynamic(Box<Node>),
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
    /// `e.?a.b`: present when every slot in `present` is set, then the
    /// value in `slot`.
    OptSlot {
        present: Box<[u32]>,
        slot: u32,
    },
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
    /// `x in [a, b, …]` on a list literal.
    InValues(Box<Node>, Vec<Node>),
    /// `x in l` on a list value or `k in m` on a map.
    In(Box<Node>, Box<Node>),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    NamedList(Arc<StringList>),
    /// `features.x.of(key)`: feature number `feature` for another key.
    FeatureAt {
        feature: u32,
        key: Box<Node>,
    },
    /// `l[i]`, `m[k]`; on an optional receiver, an optional result.
    Index(Box<Node>, Box<Node>),
    /// `l[?i]`, `m[?k]`, `m.?k`.
    OptIndex(Box<Node>, Box<Node>),
    /// `o.orValue(v)`: `v` is evaluated only when `o` is absent.
    OrValue(Box<Node>, Box<Node>),
    /// `o.or(p)`: `p` is evaluated only when `o` is absent.
    OptOr(Box<Node>, Box<Node>),
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
    Call(Builtin, Vec<Node>),
    /// `s.format(args)`, the format string parsed once when constant.
    Format {
        pieces: Option<Arc<[FormatPiece]>>,
        text: Box<Node>,
        args: Box<Node>,
    },
    /// A timestamp getter (`ts.getHours("Europe/Paris")`).
    TimeGetter(TimePart, Box<Node>, ZoneArg),
    /// A duration getter (`d.getMinutes()`).
    DurationGetter(TimePart, Box<Node>),
    /// `all`, `exists`, `exists_one` over a list or a map's keys; `body`
    /// reads the element as the innermost variable.
    Quantifier {
        kind: Quantifier,
        range: Box<Node>,
        body: Box<Node>,
    },
    /// `map(x, f)`, `map(x, p, f)`, `filter(x, p)`: the elements for which
    /// `filter` holds (all without one), transformed by `transform` (kept
    /// as they are without one).
    MapFilter {
        range: Box<Node>,
        filter: Option<Box<Node>>,
        transform: Option<Box<Node>>,
    },
    /// `cel.bind(x, init, body)`: `body` reads `init` as the innermost
    /// variable.
    Bind {
        init: Box<Node>,
        body: Box<Node>,
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
            | Node::OptSlot { .. }
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
            | Node::Convert(_, a)
            | Node::DurationGetter(_, a) => vec![a],
            Node::FeatureAt { key, .. } => vec![key],
            Node::ContainsAny { text, .. } => vec![text],
            Node::TimeGetter(_, a, zone) => match zone {
                ZoneArg::Fixed(_) => vec![a],
                ZoneArg::Dynamic(z) => vec![a, z],
            },
            Node::And(a, b)
            | Node::Or(a, b)
            | Node::Cmp(_, a, b)
            | Node::Arith(_, a, b)
            | Node::Str(_, a, b)
            | Node::In(a, b)
            | Node::Index(a, b)
            | Node::OptIndex(a, b)
            | Node::OrValue(a, b)
            | Node::OptOr(a, b) => {
                vec![a, b]
            }
            Node::Format { text, args, .. } => vec![text, args],
            Node::Cond(a, b, c) => vec![a, b, c],
            Node::InValues(a, items) => std::iter::once(&**a).chain(items.iter()).collect(),
            Node::List(items) | Node::Call(_, items) => items.iter().collect(),
            Node::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
            Node::Quantifier { range, body, .. } => vec![range, body],
            Node::MapFilter { range, filter, transform } => {
                std::iter::once(&**range).chain(filter.as_deref()).chain(transform.as_deref()).collect()
            }
            Node::Bind { init, body } => vec![init, body],
        }
    }

    /// The depth of the tree below and including this node.
    pub(crate) fn depth(&self) -> usize {
        1 + self.children().into_iter().map(Node::depth).max().unwrap_or(0)
    }

    /// True when the node reads a feature for another key than the
    /// event's (`features.x.of(key)`).
    pub(crate) fn reads_other_keys(&self) -> bool {
        matches!(self, Node::FeatureAt { .. }) || self.children().into_iter().any(Node::reads_other_keys)
    }

    pub(crate) fn contains_labels(&self) -> bool {
        matches!(self, Node::Labels(_)) || self.children().into_iter().any(Node::contains_labels)
    }

    /// True when the node reads variable `depth` or deeper.
    pub(crate) fn uses_var_from(&self, depth: usize) -> bool {
        match self {
            Node::Var(d) => *d >= depth,
            other => other.children().into_iter().any(|c| c.uses_var_from(depth)),
        }
    }

    /// True when the node reads the activation (so cannot be folded).
    pub(crate) fn reads_activation(&self) -> bool {
        matches!(
            self,
            Node::Slot(_)
                | Node::Has(_)
                | Node::OptSlot { .. }
                | Node::Labels(_)
                | Node::InLabels(..)
                | Node::FeatureAt { .. }
        ) || self.children().into_iter().any(Node::reads_activation)
    }

    /// True when the node reads a variable bound outside it, i.e. one of
    /// the `depth` variables in scope where it stands.
    pub(crate) fn uses_var_below(&self, depth: usize) -> bool {
        match self {
            Node::Var(d) => *d < depth,
            other => other.children().into_iter().any(|c| c.uses_var_below(depth)),
        }
    }
}
