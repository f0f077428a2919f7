//! The functions and operators rule expressions may call, as a table: one
//! row per CEL function name set and call shape, each with the small
//! function that type-checks and builds its node. Adding a function is
//! adding a row (and, if it needs one, a node in `ir.rs`).

use std::sync::Arc;

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr};
use regex::Regex;

use super::{Compiler, Reported, Typed};
use crate::expr::ir::{ArithOp, CmpOp, Conv, Node, StrFn};
use crate::expr::names::nearest;
use crate::expr::value::{Type, Value};

/// The call shapes a row accepts.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `f(a, …)`: no receiver and this many arguments.
    Global(usize),
    /// `x.f(a, …)`: a receiver and this many arguments.
    Method(usize),
    /// `f(x, …)` or `x.f(…)`: this many operands, the receiver included.
    Either(usize),
    /// Any shape: the row reports its own error.
    Any,
}

impl Shape {
    fn fits(self, call: &CallExpr) -> bool {
        let (receiver, args) = (call.target.is_some(), call.args.len());
        match self {
            Shape::Global(n) => !receiver && args == n,
            Shape::Method(n) => receiver && args == n,
            Shape::Either(n) => args + usize::from(receiver) == n,
            Shape::Any => true,
        }
    }
}

/// One row: the CEL names it compiles, the shape it accepts, and how.
struct Function {
    names: &'static [&'static str],
    shape: Shape,
    /// Compiles a call whose name and shape match. Every `expect` in these
    /// functions unwraps an argument or receiver the shape guarantees.
    compile: fn(&mut Compiler<'_>, u64, &CallExpr) -> Typed,
}

/// Macros the parser expands before the compiler sees them; named here so
/// a typo of them gets a hint.
const MACROS: [&str; 2] = ["exists", "all"];

/// Every function and operator, by CEL name.
static FUNCTIONS: &[Function] = &[
    Function { names: &["_&&_", "_||_"], shape: Shape::Global(2), compile: logic },
    Function { names: &["_?_:_"], shape: Shape::Global(3), compile: conditional },
    Function { names: &["!_"], shape: Shape::Global(1), compile: not },
    Function { names: &["-_"], shape: Shape::Global(1), compile: negate },
    Function { names: &["_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_"], shape: Shape::Global(2), compile: compare },
    Function { names: &["_+_", "_-_", "_*_", "_/_", "_%_"], shape: Shape::Global(2), compile: arithmetic },
    Function { names: &["@in"], shape: Shape::Global(2), compile: membership },
    Function { names: &["_[_]", "_[?_]", "_?._"], shape: Shape::Any, compile: indexing },
    Function { names: &["size"], shape: Shape::Either(1), compile: size },
    Function { names: &["contains", "startsWith", "endsWith"], shape: Shape::Method(1), compile: string_predicate },
    Function { names: &["matches"], shape: Shape::Either(2), compile: matches },
    Function { names: &["lowerAscii"], shape: Shape::Method(0), compile: lower_ascii },
    Function {
        names: &["int", "uint", "double", "string", "duration", "timestamp"],
        shape: Shape::Global(1),
        compile: convert,
    },
    Function { names: &["has"], shape: Shape::Any, compile: has },
];

impl Compiler<'_> {
    /// Compiles a call by the row for its name and shape.
    pub(super) fn call(&mut self, id: u64, call: &CallExpr) -> Typed {
        let name = call.func_name.as_str();
        match FUNCTIONS.iter().find(|f| f.names.contains(&name) && f.shape.fits(call)) {
            Some(f) => (f.compile)(self, id, call),
            None => {
                let known: Vec<&str> = FUNCTIONS
                    .iter()
                    .flat_map(|f| f.names.iter().copied())
                    .filter(|n| n.starts_with(|c: char| c.is_ascii_alphabetic()))
                    .chain(MACROS)
                    .collect();
                let hint = nearest(name, &known).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                Err(self.error(id, format!("unknown function or wrong arguments: `{name}`{hint}")))
            }
        }
    }
}

/// `a && b`, `a || b`, folded with CEL's absorbing semantics.
fn logic(c: &mut Compiler<'_>, _id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let ((a, at), (b, bt)) = two_args(c, call)?;
    for (t, arg) in [(&at, &call.args[0]), (&bt, &call.args[1])] {
        if *t != Type::Bool {
            return Err(c.error(arg.id, format!("`{}` needs bool operands, not {t}", &name[1..3])));
        }
    }
    // Constant folding with CEL's absorbing semantics.
    let is = |n: &Node, v: bool| matches!(n, Node::Const(Value::Bool(x)) if *x == v);
    let node = if name == "_&&_" {
        if is(&a, false) || is(&b, false) {
            Node::Const(Value::Bool(false))
        } else if is(&a, true) {
            b
        } else if is(&b, true) {
            a
        } else {
            Node::And(Box::new(a), Box::new(b))
        }
    } else if is(&a, true) || is(&b, true) {
        Node::Const(Value::Bool(true))
    } else if is(&a, false) {
        b
    } else if is(&b, false) {
        a
    } else {
        Node::Or(Box::new(a), Box::new(b))
    };
    Ok((node, Type::Bool))
}

/// `c ? t : f`.
fn conditional(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let mut parts = c.args(&call.args)?;
    let (f, ft) = parts.pop().expect("three args");
    let (t, tt) = parts.pop().expect("three args");
    let (cond, ct) = parts.pop().expect("three args");
    if ct != Type::Bool {
        return Err(c.error(call.args[0].id, format!("the condition of `?:` must be bool, not {ct}")));
    }
    if tt != ft {
        return Err(c.error(id, format!("the branches of `?:` have different types: {tt} and {ft}")));
    }
    match cond {
        Node::Const(Value::Bool(true)) => Ok((t, tt)),
        Node::Const(Value::Bool(false)) => Ok((f, ft)),
        cond => Ok((Node::Cond(Box::new(cond), Box::new(t), Box::new(f)), tt)),
    }
}

/// `!a`.
fn not(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let (a, t) = c.args(&call.args)?.pop().expect("one arg");
    if t != Type::Bool {
        return Err(c.error(id, format!("`!` needs a bool, not {t}")));
    }
    c.fold(id, Node::Not(Box::new(a)), Type::Bool)
}

/// `-a`.
fn negate(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let (a, t) = c.args(&call.args)?.pop().expect("one arg");
    if !matches!(t, Type::Int | Type::Double | Type::Duration) {
        return Err(c.error(id, format!("cannot negate {t}")));
    }
    c.fold(id, Node::Neg(Box::new(a)), t)
}

/// `==`, `!=`, `<`, `<=`, `>`, `>=`.
fn compare(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let ((a, at), (b, bt)) = two_args(c, call)?;
    let op = match name {
        "_==_" => CmpOp::Eq,
        "_!=_" => CmpOp::Ne,
        "_<_" => CmpOp::Lt,
        "_<=_" => CmpOp::Le,
        "_>_" => CmpOp::Gt,
        _ => CmpOp::Ge,
    };
    let comparable = (at.is_numeric() && bt.is_numeric())
        || (matches!(op, CmpOp::Eq | CmpOp::Ne) && (at == Type::Null || bt == Type::Null))
        || (at == bt
            && match op {
                CmpOp::Eq | CmpOp::Ne => !matches!(at, Type::Message),
                _ => matches!(at, Type::String | Type::Bool | Type::Timestamp | Type::Duration),
            });
    if !comparable {
        return Err(c.error(id, format!("cannot compare {at} with {bt}")));
    }
    c.fold(id, Node::Cmp(op, Box::new(a), Box::new(b)), Type::Bool)
}

/// `+`, `-`, `*`, `/`, `%`.
fn arithmetic(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let ((a, at), (b, bt)) = two_args(c, call)?;
    let op = match name {
        "_+_" => ArithOp::Add,
        "_-_" => ArithOp::Sub,
        "_*_" => ArithOp::Mul,
        "_/_" => ArithOp::Div,
        _ => ArithOp::Rem,
    };
    let ty = match (op, &at, &bt) {
        (ArithOp::Rem, Type::Int, Type::Int) | (ArithOp::Rem, Type::Uint, Type::Uint) => Some(at.clone()),
        (ArithOp::Rem, ..) => None,
        (_, x, y) if x == y && x.is_numeric() => Some(at.clone()),
        (ArithOp::Add, Type::String, Type::String) => Some(Type::String),
        (ArithOp::Add, Type::List(x), Type::List(y)) if x == y => Some(at.clone()),
        (ArithOp::Add, Type::Timestamp, Type::Duration) | (ArithOp::Add, Type::Duration, Type::Timestamp) => {
            Some(Type::Timestamp)
        }
        (ArithOp::Add | ArithOp::Sub, Type::Duration, Type::Duration) => Some(Type::Duration),
        (ArithOp::Sub, Type::Timestamp, Type::Timestamp) => Some(Type::Duration),
        (ArithOp::Sub, Type::Timestamp, Type::Duration) => Some(Type::Timestamp),
        _ => None,
    };
    let Some(ty) = ty else {
        let hint = if at.is_numeric() && bt.is_numeric() {
            " (CEL does not mix numeric types: convert with int(), uint() or double())"
        } else {
            ""
        };
        return Err(c.error(id, format!("no operator `{}` for {at} and {bt}{hint}", &name[1..2])));
    };
    c.fold(id, Node::Arith(op, Box::new(a), Box::new(b)), ty)
}

/// `x in list`, `x in lists.name`, `x in labels.entity`, `x in {k: v}` (keys).
fn membership(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    // `x in {k: v, ...}` tests the keys: compile the keys as a list.
    let keys;
    let args: &[IdedExpr] = match &call.args[1].expr {
        Expr::Map(map) => {
            let list = map
                .entries
                .iter()
                .filter_map(|entry| match &entry.expr {
                    EntryExpr::MapEntry(m) => Some(m.key.clone()),
                    EntryExpr::StructField(_) => None,
                })
                .collect();
            let list = IdedExpr { id: call.args[1].id, expr: Expr::List(cel::common::ast::ListExpr::new(list)) };
            keys = [call.args[0].clone(), list];
            &keys
        }
        _ => &call.args,
    };
    let mut parts = c.args(args)?;
    let (list, lt) = parts.pop().expect("two args");
    let (item, it) = parts.pop().expect("two args");
    let Type::List(elem) = lt else {
        return Err(c.error(call.args[1].id, format!("`in` needs a list or map, not {lt}")));
    };
    if !(*elem == it || *elem == Type::Null || (elem.is_numeric() && it.is_numeric())) {
        return Err(c.error(id, format!("`in` looks for {it} in a list of {elem}")));
    }
    match list {
        Node::NamedList(named) => c.fold(id, Node::InList(Box::new(item), named), Type::Bool),
        Node::Labels(entity) => Ok((Node::InLabels(Box::new(item), entity), Type::Bool)),
        Node::List(items) => c.fold(id, Node::InValues(Box::new(item), items), Type::Bool),
        Node::Const(Value::List(values)) => {
            let items = values.into_iter().map(Node::Const).collect();
            c.fold(id, Node::InValues(Box::new(item), items), Type::Bool)
        }
        _ => Err(c.error(call.args[1].id, "`in` needs a list literal or a pack list")),
    }
}

/// `a[i]` and optional selection: not supported.
fn indexing(c: &mut Compiler<'_>, id: u64, _call: &CallExpr) -> Typed {
    Err(c.error(id, "indexing is not supported in rules"))
}

/// `size(x)` / `x.size()`.
fn size(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let target = &call.target;
    let arg = target.as_deref().unwrap_or_else(|| call.args.first().expect("one arg"));
    let (a, t) = c.expr(arg)?;
    match (&a, &t) {
        (Node::NamedList(l), _) => Ok((Node::Const(Value::Int(l.items.len() as i64)), Type::Int)),
        (Node::List(items), _) => Ok((Node::Const(Value::Int(items.len() as i64)), Type::Int)),
        (_, Type::String | Type::List(_)) => c.fold(id, Node::Size(Box::new(a)), Type::Int),
        _ => Err(c.error(id, format!("size() takes a string or list, not {t}"))),
    }
}

/// `s.contains(t)`, `s.startsWith(t)`, `s.endsWith(t)`.
fn string_predicate(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let target = call.target.as_deref().expect("a method row has a receiver");
    let (t, tt) = c.expr(target)?;
    let (a, at) = c.expr(&call.args[0])?;
    if tt != Type::String || at != Type::String {
        return Err(c.error(id, format!("{name}() works on strings, not {tt} and {at}")));
    }
    let f = match name {
        "contains" => StrFn::Contains,
        "startsWith" => StrFn::StartsWith,
        _ => StrFn::EndsWith,
    };
    c.fold(id, Node::Str(f, Box::new(t), Box::new(a)), Type::Bool)
}

/// `matches(s, re)` / `s.matches(re)` with a constant pattern, compiled once.
fn matches(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let target = &call.target;
    let (text_expr, pattern_expr) = match target {
        Some(t) => (&**t, &call.args[0]),
        None => (&call.args[0], &call.args[1]),
    };
    let (text, tt) = c.expr(text_expr)?;
    let (pattern, _) = c.expr(pattern_expr)?;
    if tt != Type::String {
        return Err(c.error(text_expr.id, format!("matches() works on strings, not {tt}")));
    }
    let Node::Const(Value::Str(p)) = pattern else {
        return Err(c.error(pattern_expr.id, "matches() needs a constant string pattern"));
    };
    match Regex::new(&p) {
        Ok(re) => c.fold(id, Node::Matches(Box::new(text), Arc::new(re)), Type::Bool),
        Err(e) => {
            // The regex crate draws its own caret on several lines; keep the reason.
            let text = e.to_string();
            let reason = text.lines().last().unwrap_or_default().trim_start_matches("error: ").to_string();
            Err(c.error(pattern_expr.id, format!("invalid regular expression: {reason}")))
        }
    }
}

/// `s.lowerAscii()`.
fn lower_ascii(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let target = call.target.as_deref().expect("a method row has a receiver");
    let (t, tt) = c.expr(target)?;
    if tt != Type::String {
        return Err(c.error(id, format!("lowerAscii() works on strings, not {tt}")));
    }
    c.fold(id, Node::LowerAscii(Box::new(t)), Type::String)
}

/// `int()`, `uint()`, `double()`, `string()`, `duration()`, `timestamp()`.
fn convert(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let (a, t) = c.args(&call.args)?.pop().expect("one arg");
    let (conv, ty) = match (name, &t) {
        ("int", Type::Int | Type::Uint | Type::Double | Type::String | Type::Timestamp) => (Conv::Int, Type::Int),
        ("uint", Type::Int | Type::Uint | Type::Double | Type::String) => (Conv::Uint, Type::Uint),
        ("double", Type::Int | Type::Uint | Type::Double | Type::String) => (Conv::Double, Type::Double),
        (
            "string",
            Type::Int | Type::Uint | Type::Double | Type::String | Type::Bool | Type::Timestamp | Type::Duration,
        ) => (Conv::String, Type::String),
        ("duration", Type::String | Type::Duration) => (Conv::Duration, Type::Duration),
        ("timestamp", Type::String | Type::Timestamp | Type::Int) => (Conv::Timestamp, Type::Timestamp),
        _ => return Err(c.error(id, format!("no conversion {name}({t})"))),
    };
    c.fold(id, Node::Convert(conv, Box::new(a)), ty)
}

/// `has()` on anything but a field (a field is a select, handled there).
fn has(c: &mut Compiler<'_>, id: u64, _call: &CallExpr) -> Typed {
    Err(c.error(id, "has() takes a field (e.g. has(event.device_id))"))
}

/// A compiled operand and its type.
type TypedNode = (Node, Type);

/// Both operands of a binary operator, compiled (the row's shape fixes two).
fn two_args(c: &mut Compiler<'_>, call: &CallExpr) -> Result<(TypedNode, TypedNode), Reported> {
    let mut parts = c.args(&call.args)?;
    let b = parts.pop().expect("two args");
    let a = parts.pop().expect("two args");
    Ok((a, b))
}
