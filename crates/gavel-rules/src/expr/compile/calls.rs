//! The functions and operators rule expressions may call, as a table: one
//! row per CEL function name set and call shape, each with the small
//! function that type-checks and builds its node. Adding a function is
//! adding a row (and, if it needs one, a node in `ir.rs`).

use std::sync::Arc;

use cel::common::ast::{CallExpr, Expr, IdedExpr};
use regex::Regex;

use super::{Compiler, MESSAGE_USE, Reported, Typed, TypedNode, qualified};
use crate::expr::ir::{ArithOp, Builtin, CmpOp, Conv, Node, StrFn, ZoneArg};
use crate::expr::names::nearest;
use crate::expr::strings::{self, FormatPiece};
use crate::expr::time::{TimePart, Zone};
use crate::expr::value::{Type, Value};

/// The call shapes a row accepts.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `f(a, …)`: no receiver and this many arguments.
    Global(usize),
    /// `x.f(a, …)`: a receiver and this many arguments.
    Method(usize),
    /// `x.f(…)` with a receiver and from `.0` to `.1` arguments.
    Methods(usize, usize),
    /// `f(x, …)` or `x.f(…)`: this many operands, the receiver included.
    Either(usize),
    /// `ns.f(…)` for a row named `ns.f`, `ns` not a variable: the row
    /// checks its arguments.
    Namespace,
    /// Any shape: the row reports its own error.
    Any,
}

impl Shape {
    fn fits(self, call: &CallExpr) -> bool {
        let (receiver, args) = (call.target.is_some(), call.args.len());
        match self {
            Shape::Global(n) => !receiver && args == n,
            Shape::Method(n) => receiver && args == n,
            Shape::Methods(lo, hi) => receiver && (lo..=hi).contains(&args),
            Shape::Either(n) => args + usize::from(receiver) == n,
            Shape::Namespace => false,
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
const MACROS: [&str; 5] = ["exists", "all", "exists_one", "map", "filter"];

const TIME_GETTERS: &[&str] = &[
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

/// Every function and operator, by CEL name.
static FUNCTIONS: &[Function] = &[
    Function { names: &["_&&_", "_||_"], shape: Shape::Global(2), compile: logic },
    Function { names: &["_?_:_"], shape: Shape::Global(3), compile: conditional },
    Function { names: &["!_"], shape: Shape::Global(1), compile: not },
    Function { names: &["-_"], shape: Shape::Global(1), compile: negate },
    Function { names: &["_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_"], shape: Shape::Global(2), compile: compare },
    Function { names: &["_+_", "_-_", "_*_", "_/_", "_%_"], shape: Shape::Global(2), compile: arithmetic },
    Function { names: &["@in"], shape: Shape::Global(2), compile: membership },
    Function { names: &["_[_]", "_[?_]", "_?._"], shape: Shape::Global(2), compile: indexing },
    Function { names: &["size"], shape: Shape::Either(1), compile: size },
    Function { names: &["contains", "startsWith", "endsWith"], shape: Shape::Method(1), compile: string_predicate },
    Function { names: &["matches"], shape: Shape::Either(2), compile: matches },
    Function { names: &["lowerAscii"], shape: Shape::Method(0), compile: lower_ascii },
    Function { names: &["charAt"], shape: Shape::Method(1), compile: string_function },
    Function {
        names: &["indexOf", "lastIndexOf", "split", "substring"],
        shape: Shape::Methods(1, 2),
        compile: string_function,
    },
    Function { names: &["replace"], shape: Shape::Methods(2, 3), compile: string_function },
    Function { names: &["trim", "upperAscii", "reverse"], shape: Shape::Method(0), compile: string_function },
    Function { names: &["skeleton", "folded", "numerals"], shape: Shape::Method(0), compile: string_function },
    Function { names: &["join"], shape: Shape::Methods(0, 1), compile: join },
    Function { names: &["format"], shape: Shape::Method(1), compile: format },
    Function { names: &["strings.quote"], shape: Shape::Namespace, compile: quote },
    Function { names: TIME_GETTERS, shape: Shape::Methods(0, 1), compile: time_getter },
    Function {
        names: &["int", "uint", "double", "string", "duration", "timestamp", "bool"],
        shape: Shape::Global(1),
        compile: convert,
    },
    Function { names: &["dyn"], shape: Shape::Global(1), compile: dyn_ },
    Function { names: &["math.greatest", "math.least"], shape: Shape::Namespace, compile: greatest },
    Function {
        names: &["optional.of", "optional.ofNonZeroValue", "optional.none"],
        shape: Shape::Namespace,
        compile: optional,
    },
    Function { names: &["orValue", "or"], shape: Shape::Method(1), compile: or_value },
    Function { names: &["hasValue", "value"], shape: Shape::Method(0), compile: has_value },
    Function { names: &["cel.bind"], shape: Shape::Namespace, compile: bind },
    Function {
        names: &["sets.contains", "sets.intersects", "sets.equivalent"],
        shape: Shape::Namespace,
        compile: sets,
    },
    Function { names: &["of"], shape: Shape::Method(1), compile: feature_at },
    Function { names: &["type"], shape: Shape::Any, compile: type_of },
    Function { names: &["has"], shape: Shape::Any, compile: has },
];

impl Compiler<'_> {
    /// Compiles a call by the row for its name and shape.
    pub(super) fn call(&mut self, id: u64, call: &CallExpr) -> Typed {
        let name = call.func_name.as_str();
        // `math.greatest(…)` is a call of `greatest` on the name `math`.
        if let Some(Expr::Ident(ns)) = call.target.as_deref().map(|t| &t.expr)
            && !self.in_scope(ns)
        {
            let qualified = format!("{ns}.{name}");
            if let Some(f) =
                FUNCTIONS.iter().find(|f| matches!(f.shape, Shape::Namespace) && f.names.contains(&&*qualified))
            {
                return (f.compile)(self, id, call);
            }
        }
        match FUNCTIONS.iter().find(|f| f.names.contains(&name) && f.shape.fits(call)) {
            Some(f) => (f.compile)(self, id, call),
            None => {
                let known: Vec<&str> = FUNCTIONS
                    .iter()
                    .flat_map(|f| f.names.iter().copied())
                    .filter(|n| n.starts_with(|c: char| c.is_ascii_alphabetic()))
                    .chain(MACROS)
                    .collect();
                let hint = if known.contains(&name) {
                    " (not with these arguments)".to_string()
                } else {
                    nearest(name, &known).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default()
                };
                Err(self.error(id, format!("unknown function or wrong arguments: `{name}`{hint}")))
            }
        }
    }

    /// The receiver and arguments of a method call, compiled.
    fn method_parts(&mut self, call: &CallExpr) -> Result<(TypedNode, Vec<TypedNode>), Reported> {
        let target = call.target.as_deref().expect("a method row has a receiver");
        let receiver = self.expr(target);
        let args = self.args(&call.args);
        Ok((receiver?, args?))
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
    let cond = c.expr(&call.args[0]);
    let t = c.value(&call.args[1]);
    let f = c.value(&call.args[2]);
    let ((cond, ct), (t, tt), (f, ft)) = (cond?, t?, f?);
    if ct != Type::Bool {
        return Err(c.error(call.args[0].id, format!("the condition of `?:` must be bool, not {ct}")));
    }
    let Some(ty) = tt.unify(&ft) else {
        return Err(c.error(id, format!("the branches of `?:` have different types: {tt} and {ft}")));
    };
    match cond {
        Node::Const(Value::Bool(true)) => Ok((t, ty)),
        Node::Const(Value::Bool(false)) => Ok((f, ty)),
        cond => Ok((Node::Cond(Box::new(cond), Box::new(t), Box::new(f)), ty)),
    }
}

/// `!a`.
fn not(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let (a, t) = c.args(&call.args)?.pop().expect("one arg");
    if t != Type::Bool {
        return Err(c.error(id, format!("`!` needs a bool, not {t}")));
    }
    c.fold(Node::Not(Box::new(a)), Type::Bool)
}

/// `-a`.
fn negate(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let (a, t) = c.args(&call.args)?.pop().expect("one arg");
    if !matches!(t, Type::Int | Type::Double | Type::Duration) {
        return Err(c.error(id, format!("cannot negate {t}")));
    }
    c.fold(Node::Neg(Box::new(a)), t)
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
    let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
    // CEL: a message field is never null (unset, it reads as the empty
    // message), so comparing one with null is constant.
    let message_side = match (&at, &bt) {
        (Type::Message, Type::Null) => Some((&a, &call.args[0])),
        (Type::Null, Type::Message) => Some((&b, &call.args[1])),
        _ => None,
    };
    if let Some((node, field)) = message_side
        && equality
    {
        let field_text = c.text_of(field).to_string();
        if !matches!(node, Node::Slot(_) | Node::Var(_)) {
            return Err(c.error(id, format!("`{field_text}` is a message; {MESSAGE_USE}")));
        }
        let always = op == CmpOp::Ne;
        let whole = IdedExpr { id, expr: Expr::Call(call.clone()) };
        let test = if always { format!("has({field_text})") } else { format!("!has({field_text})") };
        c.warn(
            &whole,
            "W004",
            format!(
                "this comparison is always {always}: a message field is never null (unset, it reads as an empty \
                 message); to test whether it is set, write `{test}`"
            ),
        );
        return Ok((Node::Const(Value::Bool(always)), Type::Bool));
    }
    if at == Type::Message || bt == Type::Message {
        return Err(c.error(id, format!("cannot compare {at} with {bt}: {MESSAGE_USE}")));
    }
    let comparable = if equality { at.equatable(&bt) } else { at.ordered(&bt) };
    if !comparable {
        return Err(c.error(id, format!("cannot compare {at} with {bt}")));
    }
    if equality {
        let whole = IdedExpr { id, expr: Expr::Call(call.clone()) };
        c.check_known_value(&call.args[0], &b, &whole);
        c.check_known_value(&call.args[1], &a, &whole);
    }
    if let Some(always) = constant_comparison(op, (&a, &at), (&b, &bt)) {
        let whole = IdedExpr { id, expr: Expr::Call(call.clone()) };
        let text = c.text_of(&whole).to_string();
        c.warn(&whole, "W004", format!("`{text}` is always {always}"));
        return Ok((Node::Const(Value::Bool(always)), Type::Bool));
    }
    c.fold(Node::Cmp(op, Box::new(a), Box::new(b)), Type::Bool)
}

/// A comparison of a field with a constant that holds whatever the field
/// is: a `uint` or a size against 0 (`u >= 0u`, `size(s) < 0`).
fn constant_comparison(op: CmpOp, (a, at): (&Node, &Type), (b, bt): (&Node, &Type)) -> Option<bool> {
    let never_negative = |n: &Node, t: &Type| match n {
        Node::Slot(_) => *t == Type::Uint,
        Node::Size(inner) => matches!(**inner, Node::Slot(_)),
        _ => false,
    };
    let zero = |n: &Node| matches!(n, Node::Const(Value::Int(0) | Value::Uint(0)));
    match op {
        CmpOp::Ge if never_negative(a, at) && zero(b) => Some(true),
        CmpOp::Lt if never_negative(a, at) && zero(b) => Some(false),
        CmpOp::Le if zero(a) && never_negative(b, bt) => Some(true),
        CmpOp::Gt if zero(a) && never_negative(b, bt) => Some(false),
        _ => None,
    }
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
        (ArithOp::Add, Type::List(_), Type::List(_)) => at.unify(&bt),
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
    c.fold(Node::Arith(op, Box::new(a), Box::new(b)), ty)
}

/// `x in list`, `x in lists.name`, `x in labels.entity`, `k in map`.
fn membership(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let ((item, it), (container, ct)) = two_args(c, call)?;
    if it == Type::Message {
        return Err(c.error(call.args[0].id, format!("`{}` is a message; {MESSAGE_USE}", c.text_of(&call.args[0]))));
    }
    let fits = match &ct {
        Type::List(elem) => elem.equatable(&it),
        Type::Map(key, _) => key.equatable(&it),
        other => return Err(c.error(call.args[1].id, format!("`in` needs a list or a map, not {other}"))),
    };
    if !fits {
        let what = match &ct {
            Type::Map(key, _) => format!("a map with {key} keys"),
            Type::List(elem) => format!("a list of {elem}"),
            other => other.to_string(),
        };
        return Err(c.error(id, format!("`in` looks for {it} in {what}")));
    }
    let whole = IdedExpr { id, expr: Expr::Call(call.clone()) };
    match &container {
        Node::Const(Value::List(values)) => {
            for v in values {
                c.check_known_value(&call.args[0], &Node::Const(v.clone()), &whole);
            }
        }
        Node::List(items) => items.iter().for_each(|n| c.check_known_value(&call.args[0], n, &whole)),
        _ => {}
    }
    match container {
        Node::NamedList(named) => c.fold(Node::InList(Box::new(item), named), Type::Bool),
        Node::Labels(entity) => Ok((Node::InLabels(Box::new(item), entity), Type::Bool)),
        Node::List(items) => c.fold(Node::InValues(Box::new(item), items), Type::Bool),
        other => c.fold(Node::In(Box::new(item), Box::new(other)), Type::Bool),
    }
}

/// `a[i]`, `a[?i]` and `a.?f` on values (`.?` on the event's fields is a
/// path, compiled by `Compiler::event_path`).
fn indexing(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    if name == "_?._" {
        let whole = IdedExpr { id, expr: Expr::Call(call.clone()) };
        if let Some(result) = c.event_path(&whole) {
            return result;
        }
    }
    let (container, key) = two_args(c, call)?;
    if name == "_?._" && !matches!(container.1, Type::Map(..) | Type::Optional(_)) {
        return Err(c.error(id, format!("`.?` selects from a map or the event, not a {}", container.1)));
    }
    c.index_by(id, container, key, name != "_[_]")
}

/// `size(x)` / `x.size()`.
fn size(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let target = &call.target;
    let arg = target.as_deref().unwrap_or_else(|| call.args.first().expect("one arg"));
    let (a, t) = c.expr(arg)?;
    match (&a, &t) {
        (Node::NamedList(l), _) => Ok((Node::Const(Value::Int(l.items.len() as i64)), Type::Int)),
        (_, Type::String | Type::List(_) | Type::Map(..)) => c.fold(Node::Size(Box::new(a)), Type::Int),
        _ => Err(c.error(id, format!("size() takes a string, list or map, not {t}"))),
    }
}

/// `s.contains(t)`, `s.startsWith(t)`, `s.endsWith(t)`.
fn string_predicate(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let ((t, tt), mut args) = c.method_parts(call)?;
    let (a, at) = args.pop().expect("one arg");
    if tt != Type::String || at != Type::String {
        return Err(c.error(id, format!("{name}() works on strings, not {tt} and {at}")));
    }
    if let Node::Const(Value::Str(needle)) = &a {
        c.check_normal_form(&call.args[0], &t, [needle.as_ref()]);
    }
    let f = match name {
        "contains" => StrFn::Contains,
        "startsWith" => StrFn::StartsWith,
        _ => StrFn::EndsWith,
    };
    c.fold(Node::Str(f, Box::new(t), Box::new(a)), Type::Bool)
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
    let _ = id;
    match Regex::new(&p) {
        Ok(re) => c.fold(Node::Matches(Box::new(text), Arc::new(re)), Type::Bool),
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
    let ((t, tt), _) = c.method_parts(call)?;
    if tt != Type::String {
        return Err(c.error(id, format!("lowerAscii() works on strings, not {tt}")));
    }
    c.fold(Node::LowerAscii(Box::new(t)), Type::String)
}

/// The strings extension's methods on a string receiver.
fn string_function(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let ((t, tt), args) = c.method_parts(call)?;
    // The argument types after the receiver, and what the call returns.
    let (f, params, ty): (Builtin, &[Type], Type) = match (name, args.len()) {
        ("charAt", _) => (Builtin::CharAt, &[Type::Int], Type::String),
        ("indexOf", 1) => (Builtin::IndexOf, &[Type::String], Type::Int),
        ("indexOf", _) => (Builtin::IndexOf, &[Type::String, Type::Int], Type::Int),
        ("lastIndexOf", 1) => (Builtin::LastIndexOf, &[Type::String], Type::Int),
        ("lastIndexOf", _) => (Builtin::LastIndexOf, &[Type::String, Type::Int], Type::Int),
        ("split", 1) => (Builtin::Split, &[Type::String], Type::List(Box::new(Type::String))),
        ("split", _) => (Builtin::Split, &[Type::String, Type::Int], Type::List(Box::new(Type::String))),
        ("substring", 1) => (Builtin::Substring, &[Type::Int], Type::String),
        ("substring", _) => (Builtin::Substring, &[Type::Int, Type::Int], Type::String),
        ("replace", 2) => (Builtin::Replace, &[Type::String, Type::String], Type::String),
        ("replace", _) => (Builtin::Replace, &[Type::String, Type::String, Type::Int], Type::String),
        ("trim", _) => (Builtin::Trim, &[], Type::String),
        ("upperAscii", _) => (Builtin::UpperAscii, &[], Type::String),
        ("skeleton", _) => (Builtin::Skeleton, &[], Type::String),
        ("folded", _) => (Builtin::Folded, &[], Type::String),
        ("numerals", _) => (Builtin::Numerals, &[], Type::String),
        _ => (Builtin::Reverse, &[], Type::String),
    };
    let got: Vec<&Type> = args.iter().map(|(_, t)| t).collect();
    if tt != Type::String || got.len() != params.len() || got.iter().zip(params).any(|(g, p)| *g != p) {
        let want: Vec<String> = params.iter().map(Type::to_string).collect();
        let have: Vec<String> = got.iter().map(|t| t.to_string()).collect();
        return Err(c.error(
            id,
            format!("{name}({}) works on a string, not {tt}.{name}({})", want.join(", "), have.join(", ")),
        ));
    }
    let nodes = std::iter::once(t).chain(args.into_iter().map(|(n, _)| n)).collect();
    c.fold(Node::Call(f, nodes), ty)
}

/// `l.join()`, `l.join(sep)` on a list of strings.
fn join(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let ((l, lt), args) = c.method_parts(call)?;
    let strings = matches!(&lt, Type::List(e) if matches!(**e, Type::String | Type::Null));
    if !strings || args.iter().any(|(_, t)| *t != Type::String) {
        return Err(c.error(id, format!("join() works on a list of strings with a string separator, not {lt}")));
    }
    let nodes = std::iter::once(l).chain(args.into_iter().map(|(n, _)| n)).collect();
    c.fold(Node::Call(Builtin::Join, nodes), Type::String)
}

/// `strings.quote(s)`.
fn quote(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let mut args = c.args(&call.args)?;
    match (args.pop(), args.is_empty()) {
        (Some((s, Type::String)), true) => c.fold(Node::Call(Builtin::Quote, vec![s]), Type::String),
        _ => Err(c.error(id, "strings.quote() takes one string")),
    }
}

/// `s.format([args])`: with a constant format string its clauses are
/// checked against the arguments here; a list literal's elements may have
/// different types (`"%s is %d".format([name, n])`).
fn format(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let target = call.target.as_deref().expect("a method row has a receiver");
    let text = c.expr(target);
    let arg = &call.args[0];
    let args: Result<(Node, Vec<Type>, bool), Reported> = match &arg.expr {
        Expr::List(list) if list.optional_indices.is_empty() => {
            let mut nodes = Vec::new();
            let mut types = Vec::new();
            let mut failed = false;
            for item in &list.elements {
                match c.value(item) {
                    Ok((n, t)) => {
                        nodes.push(n);
                        types.push(t);
                    }
                    Err(Reported) => failed = true,
                }
            }
            if failed {
                Err(Reported)
            } else {
                c.fold(Node::List(nodes), Type::List(Box::new(Type::Null))).map(|(n, _)| (n, types, true))
            }
        }
        _ => match c.expr(arg) {
            Ok((n, Type::List(elem))) => Ok((n, vec![*elem], false)),
            Ok((_, other)) => Err(c.error(arg.id, format!("format() takes a list of arguments, not {other}"))),
            Err(r) => Err(r),
        },
    };
    let ((text, tt), (args, types, literal)) = (text?, args?);
    if tt != Type::String {
        return Err(c.error(id, format!("format() works on a string, not {tt}")));
    }
    let pieces = match &text {
        Node::Const(Value::Str(s)) => match strings::parse_format(s) {
            Ok(p) => Some(p),
            Err(message) => return Err(c.error(target.id, format!("invalid format string: {message}"))),
        },
        _ => None,
    };
    if let Some(pieces) = &pieces {
        let clauses: Vec<_> = pieces
            .iter()
            .filter_map(|p| match p {
                FormatPiece::Clause(clause) => Some(*clause),
                FormatPiece::Text(_) => None,
            })
            .collect();
        if literal && clauses.len() != types.len() {
            return Err(c.error(
                id,
                format!("the format string has {} clause(s) for {} argument(s)", clauses.len(), types.len()),
            ));
        }
        for (i, clause) in clauses.iter().enumerate() {
            let ty = if literal { &types[i] } else { &types[0] };
            if *ty != Type::Null && !clause.accepts(ty) {
                return Err(c.error(id, format!("{} cannot format a {ty} (argument {})", clause.name(), i + 1)));
            }
        }
    }
    let node = Node::Format { pieces: pieces.map(Arc::from), text: Box::new(text), args: Box::new(args) };
    c.fold(node, Type::String)
}

/// The timestamp getters (`t.getHours()`, `t.getHours("Europe/Paris")`)
/// and the duration getters (`d.getMinutes()`).
fn time_getter(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let part = TimePart::from_name(name).expect("the row lists the getters");
    let ((t, tt), mut args) = c.method_parts(call)?;
    match (tt, args.pop()) {
        (Type::Timestamp, None) => c.fold(Node::TimeGetter(part, Box::new(t), ZoneArg::Fixed(Zone::Utc)), Type::Int),
        (Type::Timestamp, Some((Node::Const(Value::Str(zone)), _))) => match Zone::parse(&zone) {
            Some(z) => c.fold(Node::TimeGetter(part, Box::new(t), ZoneArg::Fixed(z)), Type::Int),
            None => Err(c.error(
                call.args[0].id,
                format!("unknown time zone `{zone}` (expected an IANA name such as \"America/New_York\" or an offset such as \"+05:30\")"),
            )),
        },
        (Type::Timestamp, Some((z, Type::String))) => {
            c.fold(Node::TimeGetter(part, Box::new(t), ZoneArg::Dynamic(Box::new(z))), Type::Int)
        }
        (Type::Duration, None) if part.on_durations() => c.fold(Node::DurationGetter(part, Box::new(t)), Type::Int),
        (Type::Duration, _) if part.on_durations() => Err(c.error(id, format!("{name}() on a duration takes no time zone"))),
        (tt, _) => Err(c.error(id, format!("{name}() works on a timestamp{}, not {tt}", if part.on_durations() { " or a duration" } else { "" }))),
    }
}

/// `int()`, `uint()`, `double()`, `string()`, `duration()`, `timestamp()`, `bool()`.
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
        ("bool", Type::Bool | Type::String) => (Conv::Bool, Type::Bool),
        _ => return Err(c.error(id, format!("no conversion {name}({t})"))),
    };
    let literal = matches!(call.args[0].expr, Expr::Literal(_));
    match c.fold(Node::Convert(conv, Box::new(a)), ty)? {
        // As cel-go's literal validators: a timestamp or duration literal
        // that does not parse is a mistake wherever it stands.
        (Node::Error(e), _) if literal && matches!(conv, Conv::Timestamp | Conv::Duration) => {
            Err(c.error(call.args[0].id, format!("invalid {name} literal: {e}")))
        }
        typed => Ok(typed),
    }
}

/// `dyn(x)`: `x`. Gavel still types `x` statically; mixing types in one
/// list or map stays an error.
fn dyn_(c: &mut Compiler<'_>, _id: u64, call: &CallExpr) -> Typed {
    c.expr(&call.args[0])
}

/// `math.greatest(a, b, …)` and `math.least(…)`: of numbers of one type, or
/// of one list of numbers.
fn greatest(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = if call.func_name == "greatest" { "math.greatest" } else { "math.least" };
    let f = if call.func_name == "greatest" { Builtin::Greatest } else { Builtin::Least };
    let args = c.args(&call.args)?;
    let ty = match args.as_slice() {
        [] => return Err(c.error(id, format!("{name}() needs at least one argument"))),
        [(_, Type::List(elem))] if elem.is_numeric() => (**elem).clone(),
        [(_, t)] if t.is_numeric() => t.clone(),
        [(_, first), rest @ ..] if first.is_numeric() && rest.iter().all(|(_, t)| t == first) => first.clone(),
        _ => {
            let types: Vec<String> = args.iter().map(|(_, t)| t.to_string()).collect();
            return Err(c.error(
                id,
                format!(
                    "{name}() takes numbers of one type or a list of numbers, not ({}); convert with double()",
                    types.join(", ")
                ),
            ));
        }
    };
    let nodes = args.into_iter().map(|(n, _)| n).collect();
    c.fold(Node::Call(f, nodes), ty)
}

/// `sets.contains(a, b)`, `sets.intersects(a, b)`, `sets.equivalent(a, b)`
/// (CEL's sets extension): two lists whose elements compare.
fn sets(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = format!("sets.{}", call.func_name);
    let f = match call.func_name.as_str() {
        "contains" => Builtin::SetsContains,
        "intersects" => Builtin::SetsIntersects,
        _ => Builtin::SetsEquivalent,
    };
    let args = c.args(&call.args)?;
    match args.as_slice() {
        [(_, Type::List(a)), (_, Type::List(b))] if a.equatable(b) => {}
        [(_, a), (_, b)] => {
            return Err(c.error(id, format!("{name}() takes two lists of comparable elements, not {a} and {b}")));
        }
        _ => return Err(c.error(id, format!("{name}() takes two lists"))),
    }
    let nodes = args.into_iter().map(|(n, _)| n).collect();
    c.fold(Node::Call(f, nodes), Type::Bool)
}

/// `features.x.of(key)`: feature `x` as it reads for `key`, a string,
/// instead of the key the event gives it (the devices of the seller of
/// the lot being bid on, rather than of the bidder).
fn feature_at(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let target = call.target.as_deref().expect("a method row has a receiver");
    let feature = qualified(target).filter(|s| !c.in_scope(s[0])).and_then(|s| c.env.feature(&s));
    let Some((feature, ty)) = feature else {
        return Err(c.error(
            id,
            format!("of() reads a feature for another key: `features.<name>.of(key)`, not `{}.of`", c.text_of(target)),
        ));
    };
    let (key, kt) = c.value(&call.args[0])?;
    if kt != Type::String {
        return Err(c.error(call.args[0].id, format!("a feature's key is a string, not {kt}")));
    }
    Ok((Node::FeatureAt { feature, key: Box::new(key) }, ty))
}

/// `optional.of(x)`, `optional.ofNonZeroValue(x)`, `optional.none()`.
fn optional(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    match (name, call.args.as_slice()) {
        ("none", []) => Ok((Node::Const(Value::Optional(None)), Type::Optional(Box::new(Type::Null)))),
        ("of" | "ofNonZeroValue", [x]) => {
            let (x, t) = c.value(x)?;
            let f = if name == "of" { Builtin::OptionalOf } else { Builtin::OptionalOfNonZero };
            c.fold(Node::Call(f, vec![x]), Type::Optional(Box::new(t)))
        }
        _ => Err(c.error(id, format!("wrong arguments for optional.{name}()"))),
    }
}

/// The presence test of an `event.?a.b` path: every optional step set.
fn presence(present: &[u32]) -> Node {
    let mut tests = present.iter().map(|p| Node::Has(*p));
    let first = tests.next().unwrap_or(Node::Const(Value::Bool(true)));
    tests.fold(first, |acc, t| Node::And(Box::new(acc), Box::new(t)))
}

/// `o.orValue(v)`, `o.or(p)`.
fn or_value(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let ((o, ot), mut args) = c.method_parts(call)?;
    let (d, dt) = args.pop().expect("one arg");
    let Type::Optional(inner) = &ot else {
        return Err(c.error(id, format!("{name}() works on an optional, not {ot}")));
    };
    if name == "or" {
        let Some(ty) = ot.unify(&dt) else {
            return Err(c.error(id, format!("or() needs an optional of the same type, not {dt}")));
        };
        return c.fold(Node::OptOr(Box::new(o), Box::new(d)), ty);
    }
    let ty = match inner.unify_element(&dt) {
        Some(t) if t != Type::Message => t,
        _ => return Err(c.error(id, format!("orValue() of an optional({inner}) needs a {inner}, not {dt}"))),
    };
    // `event.?a.b.orValue(v)` reads the field in place.
    if let Node::OptSlot { present, slot } = &o {
        return Ok((Node::Cond(Box::new(presence(present)), Box::new(Node::Slot(*slot)), Box::new(d)), ty));
    }
    c.fold(Node::OrValue(Box::new(o), Box::new(d)), ty)
}

/// `o.hasValue()`, `o.value()`.
fn has_value(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let name = call.func_name.as_str();
    let ((o, ot), _) = c.method_parts(call)?;
    let Type::Optional(inner) = ot else {
        return Err(c.error(id, format!("{name}() works on an optional, not {ot}")));
    };
    match (name, &o) {
        ("hasValue", Node::OptSlot { present, .. }) => Ok((presence(present), Type::Bool)),
        ("hasValue", _) => c.fold(Node::Call(Builtin::HasValue, vec![o]), Type::Bool),
        _ => c.fold(Node::Call(Builtin::OptionalValue, vec![o]), *inner),
    }
}

/// `cel.bind(name, init, body)`: `body` with `name` bound to `init`.
fn bind(c: &mut Compiler<'_>, id: u64, call: &CallExpr) -> Typed {
    let [name, init, body] = call.args.as_slice() else {
        return Err(c.error(id, "cel.bind() takes a name, a value and an expression"));
    };
    let Expr::Ident(name) = &name.expr else {
        return Err(c.error(name.id, "cel.bind() needs a simple name first"));
    };
    let (init, init_ty) = c.value(init)?;
    c.bind_normal_form(&init);
    c.scopes.push((name.clone(), init_ty));
    let body = c.expr(body);
    c.scopes.pop();
    c.unbind_normal_form();
    let (body, ty) = body?;
    c.fold(Node::Bind { init: Box::new(init), body: Box::new(body) }, ty)
}

/// `type(x)`: not supported.
fn type_of(c: &mut Compiler<'_>, id: u64, _call: &CallExpr) -> Typed {
    Err(c.error(id, "type() and type values are not supported in rules"))
}

/// `has()` on anything but a field (a field is a select, handled there).
fn has(c: &mut Compiler<'_>, id: u64, _call: &CallExpr) -> Typed {
    Err(c.error(id, "has() takes a field (e.g. has(event.device_id))"))
}

/// Both operands of a binary operator, compiled (the row's shape fixes two).
fn two_args(c: &mut Compiler<'_>, call: &CallExpr) -> Result<(TypedNode, TypedNode), Reported> {
    let mut parts = c.args(&call.args)?;
    let b = parts.pop().expect("two args");
    let a = parts.pop().expect("two args");
    Ok((a, b))
}
