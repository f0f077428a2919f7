//! From CEL source to a typed [`Plan`]: parse with the `cel` crate, resolve
//! names against an [`Env`], check types, fold constants, pre-build regexes
//! and keyword automata. Function calls are compiled by the table in
//! `calls.rs`; the tree built is `ir.rs`.
//!
//! The parser expands the macros (`all`, `exists`, `exists_one`, `map`,
//! `filter`) into comprehensions with an accumulator; [`Compiler::comprehension`]
//! recognises each by the shape of its accumulator and step and builds one
//! node for it. Optional syntax (`.?`, `[?k]`) is enabled; `a.?b` arrives
//! as a call of `_?._`.

mod calls;

use std::borrow::Cow;
use std::sync::Arc;

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SelectExpr};
use cel::parser::Parser;

use super::Plan;
use super::ir::{Builtin, NoActivation, Node, Quantifier, StrFn};
use super::names::{CompileError, CompileWarning, Env, Resolved, nearest};
use super::value::{Type, Value};
use crate::span::{char_to_byte, next_char_boundary, offset_of};

/// The longest expression source compiled, in bytes.
const MAX_SOURCE: usize = 64 * 1024;
/// The deepest expression tree compiled (cel-go's parser limit): the plan
/// is evaluated recursively, on whatever stack the caller has.
const MAX_DEPTH: usize = 250;
/// The stack parsing and compiling run on. Both recurse once per nesting
/// level, and the generated parser's frames are large (about 100 KB a
/// level in debug builds), so they get a stack of their own: no text a
/// rule author writes may overflow the caller's.
const STACK: usize = 64 * 1024 * 1024;

/// Compiles `source` against `env`. Returns the plan, or every error found.
pub fn compile(source: &str, env: &dyn Env) -> Result<Plan, Vec<CompileError>> {
    if source.len() > MAX_SOURCE {
        return Err(vec![CompileError {
            start: 0,
            end: source.len(),
            message: format!("this expression is longer than {MAX_SOURCE} bytes; put long lists in the pack's `lists`"),
        }]);
    }
    stacker::maybe_grow(STACK, STACK, || compile_on_this_stack(source, env))
}

fn compile_on_this_stack(source: &str, env: &dyn Env) -> Result<Plan, Vec<CompileError>> {
    let parsed = Parser::new().enable_optional_syntax(true).parse_with_source_info(source);
    let (expr, info) = parsed.map_err(|errors| {
        errors
            .errors
            .iter()
            .map(|e| {
                let start = line_col_to_offset(source, e.pos.0, e.pos.1);
                CompileError { start, end: next_char_boundary(source, start), message: clean_parse_message(&e.msg) }
            })
            .collect::<Vec<_>>()
    })?;
    if depth(&expr) > MAX_DEPTH {
        return Err(vec![CompileError {
            start: 0,
            end: source.len(),
            message: format!("this expression nests more than {MAX_DEPTH} levels deep"),
        }]);
    }
    let mut compiler = Compiler {
        env,
        source,
        info,
        scopes: Vec::new(),
        normal_forms: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
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
        Ok((node, ty)) if compiler.errors.is_empty() => {
            let depth = node.depth();
            Ok(Plan { node, ty, source: source.to_string(), warnings: compiler.warnings, depth })
        }
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

/// The depth of the expression tree, counted without recursing.
fn depth(root: &IdedExpr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        let mut children: Vec<&IdedExpr> = Vec::new();
        match &e.expr {
            Expr::Call(c) => children.extend(c.target.as_deref().into_iter().chain(&c.args)),
            Expr::Select(s) => children.push(&s.operand),
            Expr::List(l) => children.extend(&l.elements),
            Expr::Map(cel::common::ast::MapExpr { entries })
            | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => {
                for entry in entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(m) => children.extend([&m.key, &m.value]),
                        EntryExpr::StructField(f) => children.push(&f.value),
                    }
                }
            }
            Expr::Comprehension(c) => {
                children.extend([&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]);
            }
            Expr::Literal(_) | Expr::Ident(_) | Expr::Unspecified => {}
        }
        stack.extend(children.into_iter().map(|c| (c, d + 1)));
    }
    deepest
}

fn clean_parse_message(msg: &str) -> String {
    msg.replace("<EOF>", "end of expression")
}

/// Byte offset of the parser's 1-based (line, column in characters);
/// out-of-range places read as the end of the source.
fn line_col_to_offset(source: &str, line: isize, col: isize) -> usize {
    let line = usize::try_from(line).unwrap_or(0);
    let column = usize::try_from(col.max(1)).unwrap_or(1);
    offset_of(source, line, column).unwrap_or(source.len())
}

/// The compiler's state for one expression.
struct Compiler<'e> {
    env: &'e dyn Env,
    source: &'e str,
    info: cel::common::ast::SourceInfo,
    /// Variables in scope (comprehension elements, `cel.bind` names),
    /// outermost first; a variable's index here is its depth at run time.
    scopes: Vec<(String, Type)>,
    /// `cel.bind` names bound to a text normal form (`folded()`,
    /// `numerals()`), by depth, so W007 sees through the name.
    normal_forms: Vec<(usize, Builtin)>,
    errors: Vec<CompileError>,
    warnings: Vec<CompileWarning>,
}

/// Marks a subexpression that already reported its error.
pub(super) struct Reported;

/// A compiled expression and its type.
pub(super) type TypedNode = (Node, Type);

pub(super) type Typed = Result<TypedNode, Reported>;

/// A message's only uses, for errors about it used as a value.
const MESSAGE_USE: &str = "a message can only be tested for presence, e.g. has(event.payment_attempted.card)";

impl Compiler<'_> {
    fn span(&self, id: u64) -> (usize, usize) {
        // cel offsets count characters; diagnostics want bytes.
        match self.info.offset_for(id) {
            Some((start, stop)) => {
                let to_byte = |chars: u32| char_to_byte(self.source, chars as usize);
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

    /// A warning covering all of `e`.
    fn warn(&mut self, e: &IdedExpr, code: &'static str, message: String) {
        let (start, end) = full_span(&self.info, self.source, e);
        self.warnings.push(CompileWarning { start, end, code, message });
    }

    /// Records that the `cel.bind` name about to be pushed holds `init`.
    pub(super) fn bind_normal_form(&mut self, init: &Node) {
        if let Node::Call(f @ (Builtin::Folded | Builtin::Numerals), _) = init {
            self.normal_forms.push((self.scopes.len(), *f));
        }
    }

    /// Forgets the normal form of the `cel.bind` name just popped.
    pub(super) fn unbind_normal_form(&mut self) {
        let depth = self.scopes.len();
        self.normal_forms.retain(|(d, _)| *d < depth);
    }

    /// `W007`: the constants `needles`, searched for in `text`, that
    /// `text`'s normal form (`folded()`, `numerals()`) would never contain.
    pub(super) fn check_normal_form<'n>(
        &mut self,
        e: &IdedExpr,
        text: &Node,
        needles: impl IntoIterator<Item = &'n str>,
    ) {
        let builtin = match text {
            Node::Call(f, _) => Some(*f),
            Node::Var(d) => self.normal_forms.iter().rev().find(|(depth, _)| depth == d).map(|(_, f)| *f),
            _ => None,
        };
        let (name, form): (&str, fn(&str) -> String) = match builtin {
            Some(Builtin::Folded) => ("folded", super::text::folded),
            Some(Builtin::Numerals) => ("numerals", super::text::numerals),
            _ => return,
        };
        let wrong: Vec<String> = needles
            .into_iter()
            .filter_map(|n| {
                let normal = form(n);
                (normal != n).then(|| format!("`{n}` (write `{normal}`)"))
            })
            .collect();
        if let Some(first) = wrong.first() {
            let more = if wrong.len() > 1 { format!(" and {} more", wrong.len() - 1) } else { String::new() };
            self.warn(e, "W007", format!("{name}() text never contains {first}{more}"));
        }
    }

    /// The source text of `e`, for messages.
    fn text_of(&self, e: &IdedExpr) -> &str {
        let (start, end) = full_span(&self.info, self.source, e);
        self.source[start..end].trim()
    }

    /// Folds a node that reads nothing from the event or from variables
    /// bound outside it: evaluates it now, keeping a failure as an error
    /// node so it surfaces only if evaluation reaches it.
    fn fold(&mut self, node: Node, ty: Type) -> Typed {
        let depth = self.scopes.len();
        if node.is_const() || node.reads_activation() || node.uses_var_below(depth) {
            return Ok((node, ty));
        }
        // Variables below `depth` are never read (checked above); these
        // stand in for them so inner variables keep their depths.
        let mut vars = vec![Ok(Value::Null); depth];
        match node.eval(&NoActivation, &mut vars) {
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
                    return Err(self.error(e.id, "optional list elements (`[?x]`) are not supported"));
                }
                let mut items = Vec::new();
                let mut elem: Option<Type> = None;
                let mut failed = false;
                for item in &list.elements {
                    match self.value(item) {
                        Ok((node, ty)) => {
                            elem = match elem {
                                None => Some(ty),
                                Some(t) => match t.unify(&ty) {
                                    Some(u) => Some(u),
                                    None => return Err(self.error(item.id, format!("list mixes {t} and {ty}"))),
                                },
                            };
                            items.push(node);
                        }
                        Err(Reported) => failed = true,
                    }
                }
                if failed {
                    return Err(Reported);
                }
                self.fold(Node::List(items), Type::List(Box::new(elem.unwrap_or(Type::Null))))
            }
            Expr::Map(map) => self.map_literal(map),
            Expr::Comprehension(c) => self.comprehension(e.id, c),
            Expr::Struct(_) => Err(self.error(e.id, "message literals are not supported in rules")),
            Expr::Unspecified => Err(self.error(e.id, "empty expression")),
        }
    }

    /// An expression used as a value (a list or map element, a branch, a
    /// bound variable): anything but a message.
    fn value(&mut self, e: &IdedExpr) -> Typed {
        let (node, ty) = self.expr(e)?;
        if ty == Type::Message {
            return Err(self.error(e.id, format!("`{}` is a message; {MESSAGE_USE}", self.text_of(e))));
        }
        Ok((node, ty))
    }

    fn map_literal(&mut self, map: &cel::common::ast::MapExpr) -> Typed {
        let mut types: Option<(Type, Type)> = None;
        let mut entries = Vec::new();
        let mut failed = false;
        for entry in &map.entries {
            let EntryExpr::MapEntry(m) = &entry.expr else {
                return Err(self.error(entry.id, "message fields are not supported in rules"));
            };
            if m.optional {
                return Err(self.error(entry.id, "optional map entries (`{?k: v}`) are not supported"));
            }
            let (key, value) = (self.value(&m.key), self.value(&m.value));
            let (Ok((k, kt)), Ok((v, vt))) = (key, value) else {
                failed = true;
                continue;
            };
            if !kt.is_key() {
                return Err(self.error(m.key.id, format!("a map key must be bool, int, uint or string, not {kt}")));
            }
            types = match types {
                None => Some((kt, vt)),
                Some((key_ty, _)) if key_ty != kt => {
                    return Err(self.error(m.key.id, format!("map mixes {key_ty} and {kt} keys")));
                }
                Some((key_ty, value_ty)) => match value_ty.unify(&vt) {
                    Some(u) => Some((key_ty, u)),
                    None => return Err(self.error(m.value.id, format!("map mixes {value_ty} and {vt} values"))),
                },
            };
            entries.push((k, v));
        }
        if failed {
            return Err(Reported);
        }
        let (key_ty, value_ty) = types.unwrap_or((Type::Null, Type::Null));
        self.fold(Node::Map(entries), Type::Map(Box::new(key_ty), Box::new(value_ty)))
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

    /// Whether `name` is a variable in scope.
    pub(super) fn in_scope(&self, name: &str) -> bool {
        self.scopes.iter().any(|(n, _)| n == name)
    }

    fn select(&mut self, e: &IdedExpr, select: &SelectExpr) -> Typed {
        if let Some(result) = self.event_path(e) {
            return result;
        }
        let segments = qualified(e).filter(|s| !self.in_scope(s[0]));
        if select.test {
            return match segments.map(|s| (self.env.resolve(&s), s)) {
                Some((Ok(Resolved::Field { slot, .. }), _)) => Ok((Node::Has(slot), Type::Bool)),
                Some((Ok(_), _)) => Err(self.name_error(e, "has() takes a field (e.g. has(event.device_id))")),
                Some((Err(message), _)) => Err(self.name_error(e, message)),
                // `has(m.k)` on a map value tests for the key.
                None => {
                    let (map, ty) = self.expr(&select.operand)?;
                    match ty {
                        Type::Map(k, _) if *k == Type::String => {
                            let key = Node::Const(Value::Str(Cow::Owned(select.field.clone())));
                            self.fold(Node::In(Box::new(key), Box::new(map)), Type::Bool)
                        }
                        other => Err(self.error(e.id, format!("has() takes a field or a map key, not a {other}"))),
                    }
                }
            };
        }
        if let Some(segments) = segments {
            return self.name(e, &segments);
        }
        // A field of a map value: `m.k` is `m['k']`.
        let (map, ty) = self.expr(&select.operand)?;
        let key = Node::Const(Value::Str(Cow::Owned(select.field.clone())));
        self.index_by(e.id, (map, ty), (key, Type::String), false)
    }

    /// `e` as a path into the event with optional steps (`event.?a.b`,
    /// `event.a.?b`): present when every optionally selected prefix is set.
    /// `None` when `e` is not such a path.
    fn event_path(&mut self, e: &IdedExpr) -> Option<Typed> {
        let mut steps = Vec::new();
        let mut cur = e;
        loop {
            match &cur.expr {
                Expr::Select(s) if !s.test => {
                    steps.push((s.field.as_str(), false));
                    cur = &s.operand;
                }
                Expr::Call(c) if c.func_name == "_?._" && c.target.is_none() && c.args.len() == 2 => {
                    let Expr::Literal(LiteralValue::String(field)) = &c.args[1].expr else { return None };
                    steps.push((field.inner(), true));
                    cur = &c.args[0];
                }
                Expr::Ident(root) if !self.in_scope(root) => {
                    steps.push((root.as_str(), false));
                    break;
                }
                _ => return None,
            }
        }
        if !steps.iter().any(|(_, optional)| *optional) {
            return None;
        }
        steps.reverse();
        let names: Vec<&str> = steps.iter().map(|(n, _)| *n).collect();
        if !matches!(self.env.resolve(&names[..1]), Ok(Resolved::Namespace)) {
            return None;
        }
        let mut present = Vec::new();
        for (i, (_, optional)) in steps.iter().enumerate() {
            if *optional {
                match self.env.resolve(&names[..=i]) {
                    Ok(Resolved::Field { slot, .. }) => present.push(slot),
                    Ok(_) => {
                        return Some(Err(self.error(e.id, format!("`{}` is not a field", names[..=i].join(".")))));
                    }
                    Err(message) => return Some(Err(self.error(e.id, message))),
                }
            }
        }
        Some(match self.env.resolve(&names) {
            Ok(Resolved::Field { slot, ty }) => {
                Ok((Node::OptSlot { present: present.into(), slot }, Type::Optional(Box::new(ty))))
            }
            Ok(_) => Err(self.error(e.id, format!("`{}` is not a field", names.join(".")))),
            Err(message) => Err(self.error(e.id, message)),
        })
    }

    /// `container[key]`, or `container[?key]` when `optional`.
    fn index_by(&mut self, id: u64, (c, ct): (Node, Type), (k, kt): (Node, Type), optional: bool) -> Typed {
        let (inner, wrapped) = match ct {
            Type::Optional(inner) => (*inner, true),
            other => (other, false),
        };
        let elem = match &inner {
            Type::List(elem) if kt.is_numeric() => (**elem).clone(),
            Type::Map(key, value) if key.equatable(&kt) && kt != Type::Null => (**value).clone(),
            Type::List(_) => return Err(self.error(id, format!("a list index must be a number, not {kt}"))),
            Type::Map(key, _) => return Err(self.error(id, format!("this map has {key} keys, not {kt}"))),
            other => return Err(self.error(id, format!("cannot index a {other}"))),
        };
        let (node, ty) = if optional || wrapped {
            let node =
                if optional { Node::OptIndex(Box::new(c), Box::new(k)) } else { Node::Index(Box::new(c), Box::new(k)) };
            (node, Type::Optional(Box::new(elem)))
        } else {
            (Node::Index(Box::new(c), Box::new(k)), elem)
        };
        self.fold(node, ty)
    }

    fn comprehension(&mut self, id: u64, c: &ComprehensionExpr) -> Typed {
        let Some(shape) = macro_shape(c) else {
            return Err(self.error(id, "this comprehension is not one of all, exists, exists_one, map or filter"));
        };
        if c.iter_var2.is_some() {
            return Err(self.error(id, "two-variable comprehensions are not supported"));
        }
        let (range, range_ty) = self.expr(&c.iter_range)?;
        let elem = match range_ty {
            Type::List(elem) => *elem,
            Type::Map(key, _) => *key,
            other => {
                return Err(self.error(c.iter_range.id, format!("{} needs a list or a map, not {other}", shape.name())));
            }
        };
        let depth = self.scopes.len();
        self.scopes.push((c.iter_var.clone(), elem.clone()));
        let compiled = self.macro_parts(&shape);
        self.scopes.pop();
        let (predicate, transform) = compiled?;
        let (range, body) = (Box::new(range), predicate.map(Box::new));
        match shape {
            MacroShape::Quantifier(kind, _) => {
                let body = body.expect("a quantifier has a predicate");
                // `lists.k.exists(w, text.contains(w))` is one Aho-Corasick pass.
                if kind == Quantifier::Exists
                    && let Node::NamedList(list) = &*range
                    && let Node::Str(StrFn::Contains, text, needle) = &*body
                    && matches!(**needle, Node::Var(d) if d == depth)
                    && !text.uses_var_from(depth)
                {
                    self.check_normal_form(&c.iter_range, text, list.items.iter().map(String::as_str));
                    let (text, ci) = match &**text {
                        Node::LowerAscii(inner)
                            if list.items.iter().all(|i| !i.bytes().any(|b| b.is_ascii_uppercase())) =>
                        {
                            ((**inner).clone(), true)
                        }
                        other => (other.clone(), false),
                    };
                    return Ok((
                        Node::ContainsAny { text: Box::new(text), list: Arc::clone(list), ascii_case_insensitive: ci },
                        Type::Bool,
                    ));
                }
                self.fold(Node::Quantifier { kind, range, body }, Type::Bool)
            }
            MacroShape::Map { .. } => {
                let (transform, ty) = match transform {
                    Some((t, ty)) => (Some(Box::new(t)), ty),
                    None => (None, elem),
                };
                self.fold(Node::MapFilter { range, filter: body, transform }, Type::List(Box::new(ty)))
            }
        }
    }

    /// The predicate (bool) and the transform of a macro, compiled with
    /// its element variable in scope.
    fn macro_parts(&mut self, shape: &MacroShape<'_>) -> Result<(Option<Node>, Option<TypedNode>), Reported> {
        let (predicate, transform) = match shape {
            MacroShape::Quantifier(_, p) => (Some(*p), None),
            MacroShape::Map { filter, transform } => (*filter, *transform),
        };
        let predicate = match predicate {
            Some(p) => {
                let (node, ty) = self.expr(p)?;
                if ty != Type::Bool {
                    return Err(self.error(p.id, format!("the predicate must be bool, not {ty}")));
                }
                Some(node)
            }
            None => None,
        };
        let transform = match transform {
            Some(t) => Some(self.value(t)?),
            None => None,
        };
        Ok((predicate, transform))
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

    /// `W003`: `e` reads a field with a closed set of values and `value` is
    /// a constant string outside it.
    fn check_known_value(&mut self, field: &IdedExpr, value: &Node, whole: &IdedExpr) {
        let Node::Const(Value::Str(v)) = value else { return };
        let Some(segments) = qualified(field) else { return };
        if self.in_scope(segments[0]) {
            return;
        }
        let Some(known) = self.env.known_values(&segments) else { return };
        if known.iter().any(|k| k == v.as_ref()) {
            return;
        }
        let refs: Vec<&str> = known.iter().map(String::as_str).collect();
        let what = match segments.as_slice() {
            ["event", "kind"] => "event kind".to_string(),
            _ => format!("value of `{}`", segments.join(".")),
        };
        let hint = match nearest(v, &refs) {
            Some(n) => format!("; did you mean `{n}`?"),
            None if refs.len() <= 8 => format!(" (expected {})", refs.join(", ")),
            None => String::new(),
        };
        self.warn(whole, "W003", format!("no {what} `{v}`{hint}"));
    }
}

/// A macro the compiler recognises, by the shape the parser expands it to.
enum MacroShape<'e> {
    /// `all`, `exists`, `exists_one` with their predicate.
    Quantifier(Quantifier, &'e IdedExpr),
    /// `map(x, f)`, `map(x, p, f)`, `filter(x, p)` (no transform: the
    /// element itself).
    Map { filter: Option<&'e IdedExpr>, transform: Option<&'e IdedExpr> },
}

impl MacroShape<'_> {
    fn name(&self) -> &'static str {
        match self {
            MacroShape::Quantifier(Quantifier::All, _) => "all()",
            MacroShape::Quantifier(Quantifier::Exists, _) => "exists()",
            MacroShape::Quantifier(Quantifier::ExistsOne, _) => "exists_one()",
            MacroShape::Map { transform: None, .. } => "filter()",
            MacroShape::Map { .. } => "map()",
        }
    }
}

/// Which macro `c` is, from its accumulator's start and its step (see the
/// `cel` crate's `parser/macros.rs`):
/// - `all`: `true`, `accu && p`; `exists`: `false`, `accu || p`;
/// - `exists_one`: `0`, `p ? accu + 1 : accu`;
/// - `map(x, f)`: `[]`, `accu + [f]`; `map(x, p, f)`: `[]`,
///   `p ? accu + [f] : accu`; `filter(x, p)`: the same with `f` being `x`.
fn macro_shape(c: &ComprehensionExpr) -> Option<MacroShape<'_>> {
    let accu = c.accu_var.as_str();
    let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == accu);
    let call = as_call;
    // `accu + [f]`: the `f`.
    fn appended<'e>(e: &'e IdedExpr, accu: &str) -> Option<&'e IdedExpr> {
        let add = as_call(e).filter(|a| a.func_name == "_+_" && a.args.len() == 2)?;
        match (&add.args[0].expr, &add.args[1].expr) {
            (Expr::Ident(n), Expr::List(l)) if n == accu && l.elements.len() == 1 && l.optional_indices.is_empty() => {
                Some(&l.elements[0])
            }
            _ => None,
        }
    }
    let append = |e| appended(e, accu);
    let step = call(&c.loop_step)?;
    match (&c.accu_init.expr, step.func_name.as_str(), step.args.as_slice()) {
        (Expr::Literal(LiteralValue::Boolean(b)), "_&&_", [a, p]) if *b.inner() && is_accu(a) => {
            Some(MacroShape::Quantifier(Quantifier::All, p))
        }
        (Expr::Literal(LiteralValue::Boolean(b)), "_||_", [a, p]) if !*b.inner() && is_accu(a) => {
            Some(MacroShape::Quantifier(Quantifier::Exists, p))
        }
        (Expr::Literal(LiteralValue::Int(zero)), "_?_:_", [p, add, a]) if *zero.inner() == 0 && is_accu(a) => {
            let add = call(add).filter(|x| x.func_name == "_+_" && x.args.len() == 2 && is_accu(&x.args[0]))?;
            matches!(add.args[1].expr, Expr::Literal(LiteralValue::Int(ref one)) if *one.inner() == 1)
                .then_some(MacroShape::Quantifier(Quantifier::ExistsOne, p))
        }
        (Expr::List(init), _, _) if init.elements.is_empty() => {
            if let Some(f) = append(&c.loop_step) {
                return Some(MacroShape::Map { filter: None, transform: Some(f) });
            }
            let [p, appended, a] = step.args.as_slice() else { return None };
            if step.func_name != "_?_:_" || !is_accu(a) {
                return None;
            }
            let f = append(appended)?;
            let is_element = matches!(&f.expr, Expr::Ident(n) if *n == c.iter_var);
            Some(MacroShape::Map { filter: Some(p), transform: (!is_element).then_some(f) })
        }
        _ => None,
    }
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
            Expr::Map(m) => m.entries.iter().for_each(|entry| {
                if let EntryExpr::MapEntry(m) = &entry.expr {
                    walk(info, &m.key, lo, hi);
                    walk(info, &m.value, lo, hi);
                }
            }),
            Expr::Comprehension(c) => {
                walk(info, &c.iter_range, lo, hi);
                walk(info, &c.loop_step, lo, hi);
            }
            _ => {}
        }
    }
    let (mut lo, mut hi) = (u32::MAX, 0);
    walk(info, e, &mut lo, &mut hi);
    if lo == u32::MAX {
        return (0, source.len());
    }
    let to_byte = |chars: u32| char_to_byte(source, chars as usize);
    let start = to_byte(lo);
    let mut end = to_byte(hi.saturating_add(1)).max(start + 1).min(source.len());
    // Include the rest of a trailing name or literal.
    end += source[end..]
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\'' || c == '"'))
        .unwrap_or(source.len() - end);
    (start.min(end), end)
}

/// `a.b.c` as its segments, when `e` is a plain qualified name.
pub(super) fn qualified(e: &IdedExpr) -> Option<Vec<&str>> {
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

/// The global call (no receiver) `e` is, if it is one.
fn as_call(e: &IdedExpr) -> Option<&CallExpr> {
    match &e.expr {
        Expr::Call(c) if c.target.is_none() => Some(c),
        _ => None,
    }
}
