//! From CEL source to a typed [`Plan`]: parse with the `cel` crate, resolve
//! names against an [`Env`], check types, fold constants, pre-build regexes
//! and keyword automata.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SelectExpr};
use cel::parser::Parser;
use regex::Regex;

use super::eval::{ArithOp, CmpOp, Conv, EvalError, StrFn};
use super::value::{Type, Value, parse_duration, parse_timestamp};
use super::{Plan, eval};

/// A named list of strings from a rule pack, with the structures that make
/// `x in lists.name` O(1) and keyword scans one pass.
#[derive(Debug)]
pub struct StringList {
    /// The list's name.
    pub name: String,
    /// Entries, in file order.
    pub items: Vec<String>,
    set: HashSet<String>,
    matcher: AhoCorasick,
    matcher_ci: AhoCorasick,
}

impl StringList {
    /// Builds a list and its matchers.
    pub fn new(name: impl Into<String>, items: Vec<String>) -> Result<Self, String> {
        let set = items.iter().cloned().collect();
        let matcher = AhoCorasick::new(&items).map_err(|e| e.to_string())?;
        let matcher_ci =
            AhoCorasick::builder().ascii_case_insensitive(true).build(&items).map_err(|e| e.to_string())?;
        Ok(StringList { name: name.into(), items, set, matcher, matcher_ci })
    }

    /// Exact membership.
    pub fn contains(&self, item: &str) -> bool {
        self.set.contains(item)
    }

    /// Whether any entry occurs in `text`.
    pub fn occurs_in(&self, text: &str, ascii_case_insensitive: bool) -> bool {
        if self.items.iter().any(String::is_empty) {
            return true;
        }
        let matcher = if ascii_case_insensitive { &self.matcher_ci } else { &self.matcher };
        matcher.is_match(text)
    }
}

/// What a qualified name means in an environment.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A value read from the activation's slot.
    Field {
        /// Slot number passed to [`super::Activation::field`].
        slot: u32,
        /// Its static type.
        ty: Type,
    },
    /// A named string list.
    List(Arc<StringList>),
    /// The labels set on one of the event's entities (`labels.user`), by
    /// entity number; usable only on the right of `in`.
    Labels(u32),
    /// A namespace: the name needs more segments.
    Namespace,
}

/// The names an expression may use.
pub trait Env {
    /// Resolves a qualified name (`["event", "bid_placed", "amount"]`). On
    /// failure returns a message saying what is wrong, naming the nearest
    /// valid name where there is one.
    fn resolve(&self, segments: &[&str]) -> Result<Resolved, String>;
}

/// One compile error, as byte offsets into the expression source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// First byte of the offending text.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// What is wrong.
    pub message: String,
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
    fn is_const(&self) -> bool {
        matches!(self, Node::Const(_) | Node::Error(_))
    }

    fn children(&self) -> Vec<&Node> {
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

    fn contains_labels(&self) -> bool {
        matches!(self, Node::Labels(_)) || self.children().into_iter().any(Node::contains_labels)
    }

    /// True when the node reads comprehension variable `depth` or deeper.
    fn uses_var_from(&self, depth: usize) -> bool {
        match self {
            Node::Var(d) => *d >= depth,
            other => other.children().into_iter().any(|c| c.uses_var_from(depth)),
        }
    }
}

/// Compiles `source` against `env`. Returns the plan, or every error found.
pub fn compile(source: &str, env: &dyn Env) -> Result<Plan, Vec<CompileError>> {
    let (expr, info) = Parser::new().parse_with_source_info(source).map_err(|errors| {
        errors
            .errors
            .iter()
            .map(|e| {
                let start = line_col_to_offset(source, e.pos.0, e.pos.1);
                CompileError { start, end: next_char_boundary(source, start), message: clean_parse_message(&e.msg) }
            })
            .collect::<Vec<_>>()
    })?;
    let mut compiler = Compiler { env, source, info, scopes: Vec::new(), errors: Vec::new() };
    match compiler.expr(&expr) {
        Ok((Node::Error(e), _)) if compiler.errors.is_empty() => Err(vec![CompileError {
            start: 0,
            end: source.len(),
            message: format!("this expression always fails: {e}"),
        }]),
        Ok((node, _)) if compiler.errors.is_empty() && node.contains_labels() => Err(vec![CompileError {
            start: source.find("labels.").unwrap_or(0),
            end: source.len(),
            message: "labels.<entity> may only be used as `'label' in labels.<entity>`".into(),
        }]),
        Ok((node, ty)) if compiler.errors.is_empty() => Ok(Plan { node, ty, source: source.to_string() }),
        _ => {
            if compiler.errors.is_empty() {
                compiler.errors.push(CompileError {
                    start: 0,
                    end: source.len(),
                    message: "invalid expression".into(),
                });
            }
            Err(compiler.errors)
        }
    }
}

fn clean_parse_message(msg: &str) -> String {
    msg.replace("<EOF>", "end of expression")
}

fn line_col_to_offset(source: &str, line: isize, col: isize) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i as isize + 1 == line {
            let chars = (col - 1).max(0) as usize;
            return offset + l.char_indices().nth(chars).map_or(l.len(), |(b, _)| b);
        }
        offset += l.len();
    }
    source.len()
}

fn next_char_boundary(source: &str, start: usize) -> usize {
    source[start.min(source.len())..].chars().next().map_or(source.len(), |c| start + c.len_utf8())
}

struct Compiler<'e> {
    env: &'e dyn Env,
    source: &'e str,
    info: cel::common::ast::SourceInfo,
    /// Comprehension variables in scope, outermost first.
    scopes: Vec<(String, Type)>,
    errors: Vec<CompileError>,
}

/// Marks a subexpression that already reported its error.
struct Reported;

type Typed = Result<(Node, Type), Reported>;

impl Compiler<'_> {
    fn span(&self, id: u64) -> (usize, usize) {
        // cel offsets count characters; diagnostics want bytes.
        match self.info.offset_for(id) {
            Some((start, stop)) => {
                let to_byte =
                    |chars: u32| self.source.char_indices().nth(chars as usize).map_or(self.source.len(), |(b, _)| b);
                let (s, e) = (to_byte(start), to_byte(stop.max(start) + 1));
                (s, e.max(s + 1).min(self.source.len()))
            }
            None => (0, self.source.len()),
        }
    }

    /// An error about a whole qualified name `a.b.c` (from `a` to the end).
    fn name_error(&mut self, e: &IdedExpr, message: impl Into<String>) -> Reported {
        let mut root = e;
        while let Expr::Select(s) = &root.expr {
            root = &s.operand;
        }
        let (start, _) = self.span(root.id);
        let rest = &self.source[start..];
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len());
        self.errors.push(CompileError { start, end: start + len.max(1), message: message.into() });
        Reported
    }

    fn error(&mut self, id: u64, message: impl Into<String>) -> Reported {
        let (start, end) = self.span(id);
        self.errors.push(CompileError { start, end, message: message.into() });
        Reported
    }

    /// Folds a node whose children are all constants.
    fn fold(&mut self, id: u64, node: Node, ty: Type) -> Typed {
        let foldable = !matches!(
            node,
            Node::Slot(_)
                | Node::Has(_)
                | Node::Var(_)
                | Node::Labels(_)
                | Node::InLabels(..)
                | Node::Comprehension { .. }
        ) && node.children().iter().all(|c| c.is_const());
        if !foldable || node.is_const() {
            return Ok((node, ty));
        }
        let _ = id;
        match node.eval(&eval::NoActivation, &mut Vec::new()) {
            Ok(value) => Ok((Node::Const(value.into_static()), ty)),
            Err(e) => Ok((Node::Error(e), ty)),
        }
    }

    fn expr(&mut self, e: &IdedExpr) -> Typed {
        match &e.expr {
            Expr::Literal(LiteralValue::Bytes(_)) => Err(self.error(e.id, "bytes literals are not supported in rules")),
            Expr::Literal(lit) => Ok(literal(lit)),
            Expr::Ident(name) => self.name(e, &[name.as_str()]),
            Expr::Select(select) => self.select(e, select),
            Expr::Call(call) => {
                let before = self.errors.len();
                let result = self.call(e.id, call);
                // Errors about the call itself (not its arguments) cover the
                // whole call, e.g. both sides of a comparison.
                if self.errors.len() == before + 1 && self.info.offset_for(e.id).is_some() {
                    let own = self.span(e.id);
                    let (start, end) = full_span(&self.info, self.source, e);
                    let last = &mut self.errors[before];
                    if (last.start, last.end) == own {
                        last.start = start;
                        last.end = end;
                    }
                }
                result
            }
            Expr::List(list) => {
                if !list.optional_indices.is_empty() {
                    return Err(self.error(e.id, "optional list elements are not supported"));
                }
                let mut items = Vec::new();
                let mut elem: Option<Type> = None;
                let mut failed = false;
                for item in &list.elements {
                    match self.expr(item) {
                        Ok((node, ty)) => {
                            if let Some(t) = &elem
                                && *t != ty
                            {
                                return Err(self.error(item.id, format!("list mixes {t} and {ty}")));
                            }
                            elem = Some(ty);
                            items.push(node);
                        }
                        Err(Reported) => failed = true,
                    }
                }
                if failed {
                    return Err(Reported);
                }
                let ty = Type::List(Box::new(elem.unwrap_or(Type::Null)));
                self.fold(e.id, Node::List(items), ty)
            }
            Expr::Map(_) => Err(self.error(e.id, "map values are not supported (a map literal may only follow `in`)")),
            Expr::Comprehension(c) => self.comprehension(e.id, c),
            Expr::Struct(_) => Err(self.error(e.id, "message literals are not supported in rules")),
            Expr::Unspecified => Err(self.error(e.id, "empty expression")),
        }
    }

    fn name(&mut self, e: &IdedExpr, segments: &[&str]) -> Typed {
        if let [single] = segments
            && let Some(depth) = self.scopes.iter().rposition(|(n, _)| n == single)
        {
            return Ok((Node::Var(depth), self.scopes[depth].1.clone()));
        }
        match self.env.resolve(segments) {
            Ok(Resolved::Field { slot, ty }) => Ok((Node::Slot(slot), ty)),
            Ok(Resolved::List(list)) => Ok((Node::NamedList(list), Type::List(Box::new(Type::String)))),
            Ok(Resolved::Labels(entity)) => Ok((Node::Labels(entity), Type::List(Box::new(Type::String)))),
            Ok(Resolved::Namespace) => {
                Err(self.name_error(e, format!("`{}` is a namespace, not a value", segments.join("."))))
            }
            Err(message) => Err(self.name_error(e, message)),
        }
    }

    fn select(&mut self, e: &IdedExpr, select: &SelectExpr) -> Typed {
        let Some(segments) = qualified(e) else {
            return Err(self.error(e.id, "field selection is supported on names only (e.g. event.user_id)"));
        };
        if select.test {
            return match self.env.resolve(&segments) {
                Ok(Resolved::Field { slot, .. }) => Ok((Node::Has(slot), Type::Bool)),
                Ok(_) => Err(self.name_error(e, "has() takes a field (e.g. has(event.device_id))")),
                Err(message) => Err(self.name_error(e, message)),
            };
        }
        if self.scopes.iter().any(|(n, _)| n == segments[0]) {
            return Err(self.name_error(e, format!("`{}` has no fields", segments[0])));
        }
        self.name(e, &segments)
    }

    fn comprehension(&mut self, id: u64, c: &ComprehensionExpr) -> Typed {
        let macro_kind = match (&c.accu_init.expr, &c.loop_step.expr) {
            (Expr::Literal(LiteralValue::Boolean(b)), Expr::Call(step)) if step.args.len() == 2 => {
                match (*b.inner(), step.func_name.as_str()) {
                    (false, "_||_") => Some((false, &step.args[1])),
                    (true, "_&&_") => Some((true, &step.args[1])),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((all, predicate)) = macro_kind else {
            return Err(self.error(id, "only the exists() and all() macros are supported"));
        };
        if c.iter_var2.is_some() {
            return Err(self.error(id, "two-variable comprehensions are not supported"));
        }
        let (range, range_ty) = self.expr(&c.iter_range)?;
        let Type::List(elem) = range_ty else {
            return Err(self.error(c.iter_range.id, format!("exists()/all() need a list, not {range_ty}")));
        };
        let depth = self.scopes.len();
        self.scopes.push((c.iter_var.clone(), (*elem).clone()));
        let body = self.expr(predicate);
        self.scopes.pop();
        let (body, body_ty) = body?;
        if body_ty != Type::Bool {
            return Err(self.error(predicate.id, format!("the predicate must be bool, not {body_ty}")));
        }
        // `lists.k.exists(w, text.contains(w))` is one Aho-Corasick pass.
        if !all
            && let Node::NamedList(list) = &range
            && let Node::Str(StrFn::Contains, text, needle) = &body
            && matches!(**needle, Node::Var(d) if d == depth)
            && !text.uses_var_from(depth)
        {
            let (text, ci) = match &**text {
                Node::LowerAscii(inner) if list.items.iter().all(|i| !i.bytes().any(|b| b.is_ascii_uppercase())) => {
                    ((**inner).clone(), true)
                }
                other => (other.clone(), false),
            };
            return Ok((
                Node::ContainsAny { text: Box::new(text), list: Arc::clone(list), ascii_case_insensitive: ci },
                Type::Bool,
            ));
        }
        let node = Node::Comprehension { range: Box::new(range), body: Box::new(body), all };
        Ok((node, Type::Bool))
    }

    fn args(&mut self, args: &[IdedExpr]) -> Result<Vec<(Node, Type)>, Reported> {
        let mut out = Vec::new();
        let mut failed = false;
        for a in args {
            match self.expr(a) {
                Ok(t) => out.push(t),
                Err(Reported) => failed = true,
            }
        }
        if failed { Err(Reported) } else { Ok(out) }
    }

    fn call(&mut self, id: u64, call: &CallExpr) -> Typed {
        // Every `expect` below follows a match arm that fixed the number of
        // arguments, so the values it unwraps exist.
        let name = call.func_name.as_str();
        match (name, &call.target, call.args.len()) {
            ("_&&_" | "_||_", None, 2) => {
                let mut parts = self.args(&call.args)?;
                let (b, bt) = parts.pop().expect("two args");
                let (a, at) = parts.pop().expect("two args");
                for (t, arg) in [(&at, &call.args[0]), (&bt, &call.args[1])] {
                    if *t != Type::Bool {
                        return Err(self.error(arg.id, format!("`{}` needs bool operands, not {t}", &name[1..3])));
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
            ("_?_:_", None, 3) => {
                let mut parts = self.args(&call.args)?;
                let (f, ft) = parts.pop().expect("three args");
                let (t, tt) = parts.pop().expect("three args");
                let (c, ct) = parts.pop().expect("three args");
                if ct != Type::Bool {
                    return Err(self.error(call.args[0].id, format!("the condition of `?:` must be bool, not {ct}")));
                }
                if tt != ft {
                    return Err(self.error(id, format!("the branches of `?:` have different types: {tt} and {ft}")));
                }
                match c {
                    Node::Const(Value::Bool(true)) => Ok((t, tt)),
                    Node::Const(Value::Bool(false)) => Ok((f, ft)),
                    c => Ok((Node::Cond(Box::new(c), Box::new(t), Box::new(f)), tt)),
                }
            }
            ("!_", None, 1) => {
                let (a, t) = self.args(&call.args)?.pop().expect("one arg");
                if t != Type::Bool {
                    return Err(self.error(id, format!("`!` needs a bool, not {t}")));
                }
                self.fold(id, Node::Not(Box::new(a)), Type::Bool)
            }
            ("-_", None, 1) => {
                let (a, t) = self.args(&call.args)?.pop().expect("one arg");
                if !matches!(t, Type::Int | Type::Double | Type::Duration) {
                    return Err(self.error(id, format!("cannot negate {t}")));
                }
                self.fold(id, Node::Neg(Box::new(a)), t)
            }
            ("_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_", None, 2) => {
                let mut parts = self.args(&call.args)?;
                let (b, bt) = parts.pop().expect("two args");
                let (a, at) = parts.pop().expect("two args");
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
                    return Err(self.error(id, format!("cannot compare {at} with {bt}")));
                }
                self.fold(id, Node::Cmp(op, Box::new(a), Box::new(b)), Type::Bool)
            }
            ("_+_" | "_-_" | "_*_" | "_/_" | "_%_", None, 2) => {
                let mut parts = self.args(&call.args)?;
                let (b, bt) = parts.pop().expect("two args");
                let (a, at) = parts.pop().expect("two args");
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
                    (ArithOp::Add, Type::Timestamp, Type::Duration)
                    | (ArithOp::Add, Type::Duration, Type::Timestamp) => Some(Type::Timestamp),
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
                    return Err(self.error(id, format!("no operator `{}` for {at} and {bt}{hint}", &name[1..2])));
                };
                self.fold(id, Node::Arith(op, Box::new(a), Box::new(b)), ty)
            }
            ("@in", None, 2) => {
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
                        let list =
                            IdedExpr { id: call.args[1].id, expr: Expr::List(cel::common::ast::ListExpr::new(list)) };
                        keys = [call.args[0].clone(), list];
                        &keys
                    }
                    _ => &call.args,
                };
                let mut parts = self.args(args)?;
                let (list, lt) = parts.pop().expect("two args");
                let (item, it) = parts.pop().expect("two args");
                let Type::List(elem) = lt else {
                    return Err(self.error(call.args[1].id, format!("`in` needs a list or map, not {lt}")));
                };
                if !(*elem == it || *elem == Type::Null || (elem.is_numeric() && it.is_numeric())) {
                    return Err(self.error(id, format!("`in` looks for {it} in a list of {elem}")));
                }
                match list {
                    Node::NamedList(named) => self.fold(id, Node::InList(Box::new(item), named), Type::Bool),
                    Node::Labels(entity) => Ok((Node::InLabels(Box::new(item), entity), Type::Bool)),
                    Node::List(items) => self.fold(id, Node::InValues(Box::new(item), items), Type::Bool),
                    Node::Const(Value::List(values)) => {
                        let items = values.into_iter().map(Node::Const).collect();
                        self.fold(id, Node::InValues(Box::new(item), items), Type::Bool)
                    }
                    _ => Err(self.error(call.args[1].id, "`in` needs a list literal or a pack list")),
                }
            }
            ("_[_]" | "_[?_]" | "_?._", ..) => Err(self.error(id, "indexing is not supported in rules")),
            ("size", target, n) if n + usize::from(target.is_some()) == 1 => {
                let arg = target.as_deref().unwrap_or_else(|| call.args.first().expect("one arg"));
                let (a, t) = self.expr(arg)?;
                match (&a, &t) {
                    (Node::NamedList(l), _) => Ok((Node::Const(Value::Int(l.items.len() as i64)), Type::Int)),
                    (Node::List(items), _) => Ok((Node::Const(Value::Int(items.len() as i64)), Type::Int)),
                    (_, Type::String | Type::List(_)) => self.fold(id, Node::Size(Box::new(a)), Type::Int),
                    _ => Err(self.error(id, format!("size() takes a string or list, not {t}"))),
                }
            }
            ("contains" | "startsWith" | "endsWith", Some(target), 1) => {
                let (t, tt) = self.expr(target)?;
                let (a, at) = self.expr(&call.args[0])?;
                if tt != Type::String || at != Type::String {
                    return Err(self.error(id, format!("{name}() works on strings, not {tt} and {at}")));
                }
                let f = match name {
                    "contains" => StrFn::Contains,
                    "startsWith" => StrFn::StartsWith,
                    _ => StrFn::EndsWith,
                };
                self.fold(id, Node::Str(f, Box::new(t), Box::new(a)), Type::Bool)
            }
            ("matches", target, n) if n + usize::from(target.is_some()) == 2 => {
                let (text_expr, pattern_expr) = match target {
                    Some(t) => (&**t, &call.args[0]),
                    None => (&call.args[0], &call.args[1]),
                };
                let (text, tt) = self.expr(text_expr)?;
                let (pattern, _) = self.expr(pattern_expr)?;
                if tt != Type::String {
                    return Err(self.error(text_expr.id, format!("matches() works on strings, not {tt}")));
                }
                let Node::Const(Value::Str(p)) = pattern else {
                    return Err(self.error(pattern_expr.id, "matches() needs a constant string pattern"));
                };
                match Regex::new(&p) {
                    Ok(re) => self.fold(id, Node::Matches(Box::new(text), Arc::new(re)), Type::Bool),
                    Err(e) => {
                        // The regex crate draws its own caret on several lines; keep the reason.
                        let text = e.to_string();
                        let reason = text.lines().last().unwrap_or_default().trim_start_matches("error: ").to_string();
                        Err(self.error(pattern_expr.id, format!("invalid regular expression: {reason}")))
                    }
                }
            }
            ("lowerAscii", Some(target), 0) => {
                let (t, tt) = self.expr(target)?;
                if tt != Type::String {
                    return Err(self.error(id, format!("lowerAscii() works on strings, not {tt}")));
                }
                self.fold(id, Node::LowerAscii(Box::new(t)), Type::String)
            }
            ("int" | "uint" | "double" | "string" | "duration" | "timestamp", None, 1) => {
                let (a, t) = self.args(&call.args)?.pop().expect("one arg");
                let (conv, ty) = match (name, &t) {
                    ("int", Type::Int | Type::Uint | Type::Double | Type::String | Type::Timestamp) => {
                        (Conv::Int, Type::Int)
                    }
                    ("uint", Type::Int | Type::Uint | Type::Double | Type::String) => (Conv::Uint, Type::Uint),
                    ("double", Type::Int | Type::Uint | Type::Double | Type::String) => (Conv::Double, Type::Double),
                    (
                        "string",
                        Type::Int
                        | Type::Uint
                        | Type::Double
                        | Type::String
                        | Type::Bool
                        | Type::Timestamp
                        | Type::Duration,
                    ) => (Conv::String, Type::String),
                    ("duration", Type::String | Type::Duration) => (Conv::Duration, Type::Duration),
                    ("timestamp", Type::String | Type::Timestamp | Type::Int) => (Conv::Timestamp, Type::Timestamp),
                    _ => return Err(self.error(id, format!("no conversion {name}({t})"))),
                };
                self.fold(id, Node::Convert(conv, Box::new(a)), ty)
            }
            ("has", ..) => Err(self.error(id, "has() takes a field (e.g. has(event.device_id))")),
            _ => {
                let known = [
                    "size",
                    "contains",
                    "startsWith",
                    "endsWith",
                    "matches",
                    "lowerAscii",
                    "int",
                    "uint",
                    "double",
                    "string",
                    "duration",
                    "timestamp",
                    "has",
                    "exists",
                    "all",
                ];
                let hint = nearest(name, &known).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                Err(self.error(id, format!("unknown function or wrong arguments: `{name}`{hint}")))
            }
        }
    }
}

/// The nearest candidate by edit distance, if close enough to be a typo.
pub fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min()
        .map(|(_, c)| c)
}

/// The byte span covering an expression and all its subexpressions.
fn full_span(info: &cel::common::ast::SourceInfo, source: &str, e: &IdedExpr) -> (usize, usize) {
    fn walk(info: &cel::common::ast::SourceInfo, e: &IdedExpr, lo: &mut u32, hi: &mut u32) {
        if let Some((s, t)) = info.offset_for(e.id) {
            *lo = (*lo).min(s);
            *hi = (*hi).max(t);
        }
        match &e.expr {
            Expr::Call(c) => {
                c.target.iter().for_each(|t| walk(info, t, lo, hi));
                c.args.iter().for_each(|a| walk(info, a, lo, hi));
            }
            Expr::Select(s) => walk(info, &s.operand, lo, hi),
            Expr::List(l) => l.elements.iter().for_each(|x| walk(info, x, lo, hi)),
            _ => {}
        }
    }
    let (mut lo, mut hi) = (u32::MAX, 0);
    walk(info, e, &mut lo, &mut hi);
    let to_byte = |chars: u32| source.char_indices().nth(chars as usize).map_or(source.len(), |(b, _)| b);
    let start = to_byte(lo);
    let mut end = to_byte(hi.saturating_add(1)).max(start + 1).min(source.len());
    // Include the rest of a trailing name or literal.
    end += source[end..]
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\'' || c == '"'))
        .unwrap_or(source.len() - end);
    (start, end)
}

fn qualified(e: &IdedExpr) -> Option<Vec<&str>> {
    let mut segments = Vec::new();
    let mut cur = e;
    loop {
        match &cur.expr {
            Expr::Ident(name) => {
                segments.push(name.as_str());
                segments.reverse();
                return Some(segments);
            }
            Expr::Select(s) => {
                segments.push(s.field.as_str());
                cur = &s.operand;
                if let Expr::Select(inner) = &cur.expr
                    && inner.test
                {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

fn literal(lit: &LiteralValue) -> (Node, Type) {
    let (value, ty) = match lit {
        LiteralValue::Boolean(b) => (Value::Bool(*b.inner()), Type::Bool),
        LiteralValue::Int(i) => (Value::Int(*i.inner()), Type::Int),
        LiteralValue::UInt(u) => (Value::Uint(*u.inner()), Type::Uint),
        LiteralValue::Double(d) => (Value::Double(*d.inner()), Type::Double),
        LiteralValue::String(s) => (Value::Str(Cow::Owned(s.inner().to_string())), Type::String),
        // Rejected by `Compiler::expr` before it gets here.
        LiteralValue::Bytes(_) => (Value::Null, Type::Null),
        LiteralValue::Null => (Value::Null, Type::Null),
    };
    (Node::Const(value), ty)
}

/// Parses the string argument of `duration()` / `timestamp()`.
pub(crate) fn parse_duration_str(text: &str) -> Option<i64> {
    parse_duration(text)
}

/// Parses the string argument of `timestamp()`.
pub(crate) fn parse_timestamp_str(text: &str) -> Option<i64> {
    parse_timestamp(text)
}
