//! From CEL source to a typed [`Plan`]: parse with the `cel` crate, resolve
//! names against an [`Env`], check types, fold constants, pre-build regexes
//! and keyword automata. Function calls are compiled by the table in
//! `calls.rs`; the tree built is `ir.rs`.

mod calls;

use std::borrow::Cow;
use std::sync::Arc;

use cel::common::ast::{ComprehensionExpr, Expr, IdedExpr, LiteralValue, SelectExpr};
use cel::parser::Parser;

use super::Plan;
use super::ir::{NoActivation, Node, StrFn};
use super::names::{CompileError, Env, Resolved};
use super::value::{Type, Value};
use crate::span::{char_to_byte, next_char_boundary, offset_of};

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
    /// Comprehension variables in scope, outermost first.
    scopes: Vec<(String, Type)>,
    errors: Vec<CompileError>,
}

/// Marks a subexpression that already reported its error.
pub(super) struct Reported;

pub(super) type Typed = Result<(Node, Type), Reported>;

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
        match node.eval(&NoActivation, &mut Vec::new()) {
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
    let to_byte = |chars: u32| char_to_byte(source, chars as usize);
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
