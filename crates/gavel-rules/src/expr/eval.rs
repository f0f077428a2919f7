//! Evaluating a plan's [`Node`] tree against one [`Activation`]: no
//! allocation on the common paths (constants, lists and maps of the plan
//! are read in place, strings borrowed), CEL's absorbing `&&`/`||`, and
//! cel-go's errors where it has them.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ir::{Activation, ArithOp, Builtin, CmpOp, Conv, EvalError, Node, Quantifier, StrFn, TextForm, ZoneArg};
use super::strings;
use super::time::{self, NANOS, Zone, checked_timestamp, format_duration, format_timestamp};
use super::value::{Value, format_double};

type R<'a> = Result<Value<'a>, EvalError>;

/// The variables in scope during an evaluation, innermost last: the
/// elements of enclosing comprehensions and `cel.bind` values (which may
/// be errors, raised only where read).
pub(crate) type Vars<'a> = Vec<R<'a>>;

fn type_error<T>(what: &str, v: &Value<'_>) -> Result<T, EvalError> {
    Err(EvalError::Type(format!("{what}: unexpected {}", v.type_name())))
}

/// Orders two values of an ordered type; `Ok(None)` when unordered (NaN),
/// an error for types CEL does not order against each other.
pub(crate) fn order(a: &Value<'_>, b: &Value<'_>) -> Result<Option<Ordering>, EvalError> {
    Ok(match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
        _ => match numeric_order(a, b) {
            Some(ord) => ord,
            None => {
                return Err(EvalError::Type(format!("no ordering between {} and {}", a.type_name(), b.type_name())));
            }
        },
    })
}

/// Orders two numbers of any numeric types by value; `None` when either is
/// not a number, `Some(None)` for NaN.
fn numeric_order(a: &Value<'_>, b: &Value<'_>) -> Option<Option<Ordering>> {
    Some(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Uint(x), Value::Uint(y)) => Some(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Uint(y)) => Some(i128::from(*x).cmp(&i128::from(*y))),
        (Value::Uint(x), Value::Int(y)) => Some(i128::from(*x).cmp(&i128::from(*y))),
        (Value::Int(x), Value::Double(y)) => cmp_int_double(i128::from(*x), *y),
        (Value::Uint(x), Value::Double(y)) => cmp_int_double(i128::from(*x), *y),
        (Value::Double(x), Value::Int(y)) => cmp_int_double(i128::from(*y), *x).map(Ordering::reverse),
        (Value::Double(x), Value::Uint(y)) => cmp_int_double(i128::from(*y), *x).map(Ordering::reverse),
        _ => return None,
    })
}

/// An integer against a double as cel-go compares them: the integer
/// converted to the nearest double (so `2^63 - 1` equals `2^63.0`).
fn cmp_int_double(i: i128, d: f64) -> Option<Ordering> {
    // Out of range, the converted integer stays on its side of `d`, so the
    // range checks cel-go makes first agree with converting.
    (i as f64).partial_cmp(&d)
}

/// CEL equality: numbers by value whatever their types, lists element by
/// element, maps entry by entry in any order, `false` across other types.
pub(crate) fn equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Timestamp(x), Value::Timestamp(y)) => x == y,
        (Value::Duration(x), Value::Duration(y)) => x == y,
        (Value::List(x), Value::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equals(a, b)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| map_get(y, k).is_some_and(|w| equals(v, w)))
        }
        (Value::Optional(x), Value::Optional(y)) => match (x, y) {
            (None, None) => true,
            (Some(x), Some(y)) => equals(x, y),
            _ => false,
        },
        _ => numeric_order(a, b) == Some(Some(Ordering::Equal)),
    }
}

/// The value under `key`, keys compared as CEL does (`1`, `1u` and `1.0`
/// are one key).
pub(crate) fn map_get<'v, 'x>(entries: &'v [(Value<'x>, Value<'x>)], key: &Value<'_>) -> Option<&'v Value<'x>> {
    entries.iter().find(|(k, _)| equals(k, key)).map(|(_, v)| v)
}

/// Where `key` is in `container`: `Ok(None)` for a list index past the end
/// or a map key it does not have, an error for a key of the wrong kind.
fn find<'v, 'x>(container: &'v Value<'x>, key: &Value<'_>) -> Result<Option<&'v Value<'x>>, EvalError> {
    match container {
        Value::List(items) => {
            let index = match *key {
                Value::Int(i) => i,
                Value::Uint(u) => i64::try_from(u).unwrap_or(i64::MAX),
                Value::Double(d) if d.fract() == 0.0 && d.abs() < 9e18 => d as i64,
                Value::Double(d) => return Err(EvalError::Invalid(format!("unsupported list index {d}"))),
                ref other => return type_error("list index", other),
            };
            Ok(usize::try_from(index).ok().and_then(|i| items.get(i)))
        }
        Value::Map(entries) => Ok(map_get(entries, key)),
        other => type_error("index", other),
    }
}

/// `container[key]` (an error when absent) or, when `optional`,
/// `container[?key]`; on an optional container the result is optional.
fn resolve<'v, 'x, 'a>(
    container: &'v Value<'x>,
    key: &Value<'_>,
    optional: bool,
    take: &dyn Fn(&'v Value<'x>) -> Value<'a>,
) -> R<'a> {
    match container {
        Value::Optional(None) => Ok(Value::Optional(None)),
        Value::Optional(Some(inner)) => resolve(inner, key, true, take),
        _ => match find(container, key)? {
            Some(v) if optional => Ok(Value::Optional(Some(Box::new(take(v))))),
            Some(v) => Ok(take(v)),
            None if optional => Ok(Value::Optional(None)),
            None if matches!(container, Value::List(_)) => Err(EvalError::Index(key_text(key))),
            None => Err(EvalError::NoSuchKey(key_text(key))),
        },
    }
}

fn key_text(key: &Value<'_>) -> String {
    match key {
        Value::Str(s) => format!("'{s}'"),
        other => other.to_json_string(),
    }
}

/// The elements a comprehension ranges over: a list's elements or a map's
/// keys, read in place when the range is a constant or a pack list.
enum Items<'a> {
    Values(std::slice::Iter<'a, Value<'static>>),
    Keys(std::slice::Iter<'a, (Value<'static>, Value<'static>)>),
    Named(std::slice::Iter<'a, String>),
    Owned(std::vec::IntoIter<Value<'a>>),
    OwnedKeys(std::vec::IntoIter<(Value<'a>, Value<'a>)>),
}

impl<'a> Iterator for Items<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        match self {
            Items::Values(it) => it.next().map(borrow),
            Items::Keys(it) => it.next().map(|(k, _)| borrow(k)),
            Items::Named(it) => it.next().map(|s| Value::Str(Cow::Borrowed(s.as_str()))),
            Items::Owned(it) => it.next(),
            Items::OwnedKeys(it) => it.next().map(|(k, _)| k),
        }
    }
}

fn items<'a>(range: &'a Node, act: &dyn Activation<'a>, vars: &mut Vars<'a>) -> Result<Items<'a>, EvalError> {
    Ok(match range {
        Node::Const(Value::List(values)) => Items::Values(values.iter()),
        Node::Const(Value::Map(entries)) => Items::Keys(entries.iter()),
        Node::NamedList(list) => Items::Named(list.items.iter()),
        other => match other.eval(act, vars)? {
            Value::List(values) => Items::Owned(values.into_iter()),
            Value::Map(entries) => Items::OwnedKeys(entries.into_iter()),
            v => return type_error("comprehension range", &v),
        },
    })
}

fn string<'a>(node: &'a Node, act: &dyn Activation<'a>, vars: &mut Vars<'a>) -> Result<Cow<'a, str>, EvalError> {
    match node.eval(act, vars)? {
        Value::Str(s) => Ok(s),
        v => type_error("string argument", &v),
    }
}

fn int<'a>(node: &'a Node, act: &dyn Activation<'a>, vars: &mut Vars<'a>) -> Result<i64, EvalError> {
    match node.eval(act, vars)? {
        Value::Int(i) => Ok(i),
        v => type_error("int argument", &v),
    }
}

/// A part of a string, borrowed when the string is.
fn substr<'a>(s: Cow<'a, str>, part: impl FnOnce(&str) -> Result<&str, EvalError>) -> Result<Cow<'a, str>, EvalError> {
    match s {
        Cow::Borrowed(b) => part(b).map(Cow::Borrowed),
        Cow::Owned(o) => Ok(Cow::Owned(part(&o)?.to_string())),
    }
}

impl Node {
    // One arm per plan node: the interpreter reads best as one match, and
    // a call per arm would cost the event path an indirection for nothing.
    pub(crate) fn eval<'a>(&'a self, act: &dyn Activation<'a>, vars: &mut Vars<'a>) -> R<'a> {
        match self {
            Node::Const(v) => Ok(borrow(v)),
            Node::Error(e) => Err(e.clone()),
            Node::Slot(slot) => Ok(act.field(*slot)),
            Node::FeatureAt { feature, key } => match key.eval(act, vars)? {
                Value::Str(key) => Ok(act.feature_at(*feature, &key)),
                v => type_error("of", &v),
            },
            Node::Has(slot) => Ok(Value::Bool(act.has(*slot))),
            Node::OptSlot { present, slot } => {
                Ok(Value::Optional(present.iter().all(|p| act.has(*p)).then(|| Box::new(act.field(*slot)))))
            }
            Node::Var(depth) => {
                vars.get(*depth).cloned().unwrap_or_else(|| Err(EvalError::Type("unbound variable".into())))
            }
            Node::Not(a) => match a.eval(act, vars)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                v => type_error("!", &v),
            },
            Node::Neg(a) => match a.eval(act, vars)? {
                Value::Int(i) => i.checked_neg().map(Value::Int).ok_or(EvalError::Overflow),
                Value::Double(d) => Ok(Value::Double(-d)),
                Value::Duration(d) => d.checked_neg().map(Value::Duration).ok_or(EvalError::Range("duration")),
                v => type_error("-", &v),
            },
            Node::And(a, b) => match a.eval(act, vars) {
                Ok(Value::Bool(false)) => Ok(Value::Bool(false)),
                Ok(Value::Bool(true)) => b.eval(act, vars),
                left => match b.eval(act, vars) {
                    Ok(Value::Bool(false)) => Ok(Value::Bool(false)),
                    _ => left,
                },
            },
            Node::Or(a, b) => match a.eval(act, vars) {
                Ok(Value::Bool(true)) => Ok(Value::Bool(true)),
                Ok(Value::Bool(false)) => b.eval(act, vars),
                left => match b.eval(act, vars) {
                    Ok(Value::Bool(true)) => Ok(Value::Bool(true)),
                    _ => left,
                },
            },
            Node::Cond(c, t, f) => match c.eval(act, vars)? {
                Value::Bool(true) => t.eval(act, vars),
                Value::Bool(false) => f.eval(act, vars),
                v => type_error("?:", &v),
            },
            Node::Cmp(op, a, b) => {
                let (x, y) = (a.eval(act, vars)?, b.eval(act, vars)?);
                Ok(Value::Bool(match op {
                    CmpOp::Eq => equals(&x, &y),
                    CmpOp::Ne => !equals(&x, &y),
                    op => {
                        let ord = order(&x, &y)?;
                        match op {
                            CmpOp::Lt => ord == Some(Ordering::Less),
                            CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                            CmpOp::Gt => ord == Some(Ordering::Greater),
                            _ => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                        }
                    }
                }))
            }
            Node::Arith(op, a, b) => arith(*op, a.eval(act, vars)?, b.eval(act, vars)?),
            Node::InList(item, list) => match item.eval(act, vars)? {
                Value::Str(s) => Ok(Value::Bool(list.contains(&s))),
                v => type_error("in", &v),
            },
            Node::InLabels(item, entity) => match item.eval(act, vars)? {
                Value::Str(s) => Ok(Value::Bool(act.has_label(*entity, &s))),
                v => type_error("in", &v),
            },
            Node::Labels(_) => Err(EvalError::Type("labels.<entity> may only follow `in`".into())),
            Node::InValues(item, candidates) => {
                // As cel-go, the list is built whole first: an element that
                // fails fails the test, even after a match; constants cannot.
                let needle = item.eval(act, vars)?;
                let mut found = false;
                for (i, candidate) in candidates.iter().enumerate() {
                    let hit = match candidate {
                        Node::Const(v) => equals(&needle, v),
                        other => equals(&needle, &other.eval(act, vars)?),
                    };
                    if hit && candidates[i + 1..].iter().all(|c| matches!(c, Node::Const(_))) {
                        return Ok(Value::Bool(true));
                    }
                    found |= hit;
                }
                Ok(Value::Bool(found))
            }
            Node::In(item, container) => {
                let needle = item.eval(act, vars)?;
                let inside = |c: &Value<'_>| match c {
                    Value::List(values) => Ok(values.iter().any(|v| equals(&needle, v))),
                    Value::Map(entries) => Ok(map_get(entries, &needle).is_some()),
                    other => type_error("in", other),
                };
                match &**container {
                    Node::Const(c) => inside(c),
                    other => inside(&other.eval(act, vars)?),
                }
                .map(Value::Bool)
            }
            Node::List(items) => {
                Ok(Value::List(items.iter().map(|i| i.eval(act, vars)).collect::<Result<Vec<_>, _>>()?))
            }
            Node::Map(entries) => {
                let mut out: Vec<(Value<'a>, Value<'a>)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let (key, value) = (k.eval(act, vars)?, v.eval(act, vars)?);
                    if map_get(&out, &key).is_some() {
                        return Err(EvalError::Invalid(format!("repeated map key {}", key_text(&key))));
                    }
                    out.push((key, value));
                }
                Ok(Value::Map(out))
            }
            Node::NamedList(list) => {
                Ok(Value::List(list.items.iter().map(|s| Value::Str(Cow::Borrowed(s.as_str()))).collect()))
            }
            Node::Index(c, k) | Node::OptIndex(c, k) => {
                let optional = matches!(self, Node::OptIndex(..));
                let key = k.eval(act, vars)?;
                match &**c {
                    Node::Const(container) => resolve(container, &key, optional, &borrow),
                    other => {
                        let container = other.eval(act, vars)?;
                        resolve(&container, &key, optional, &|v| v.clone())
                    }
                }
            }
            Node::OrValue(o, default) => match o.eval(act, vars)? {
                Value::Optional(Some(v)) => Ok(*v),
                Value::Optional(None) => default.eval(act, vars),
                v => type_error("orValue", &v),
            },
            Node::OptOr(o, other) => match o.eval(act, vars)? {
                v @ Value::Optional(Some(_)) => Ok(v),
                Value::Optional(None) => other.eval(act, vars),
                v => type_error("or", &v),
            },
            Node::Str(f, a, b) => {
                let (Value::Str(x), Value::Str(y)) = (a.eval(act, vars)?, b.eval(act, vars)?) else {
                    return Err(EvalError::Type("string function on non-strings".into()));
                };
                Ok(Value::Bool(match f {
                    StrFn::Contains => x.contains(y.as_ref()),
                    StrFn::StartsWith => x.starts_with(y.as_ref()),
                    StrFn::EndsWith => x.ends_with(y.as_ref()),
                }))
            }
            Node::Matches(a, re) => match a.eval(act, vars)? {
                Value::Str(s) => Ok(Value::Bool(re.is_match(&s))),
                v => type_error("matches", &v),
            },
            Node::ContainsAny { text, list, ascii_case_insensitive } => match text.eval(act, vars)? {
                Value::Str(s) => Ok(Value::Bool(list.occurs_in(&s, *ascii_case_insensitive))),
                v => type_error("contains", &v),
            },
            Node::LowerAscii(a) => match a.eval(act, vars)? {
                Value::Str(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => {
                    Ok(Value::Str(Cow::Owned(s.to_ascii_lowercase())))
                }
                v @ Value::Str(_) => Ok(v),
                v => type_error("lowerAscii", &v),
            },
            Node::Size(a) => match a.eval(act, vars)? {
                Value::Str(s) => Ok(Value::Int(s.chars().count() as i64)),
                Value::List(items) => Ok(Value::Int(items.len() as i64)),
                Value::Map(entries) => Ok(Value::Int(entries.len() as i64)),
                v => type_error("size", &v),
            },
            Node::Convert(conv, a) => convert(*conv, a.eval(act, vars)?),
            Node::Call(f, args) => call(*f, args, act, vars),
            Node::Format { pieces, text, args } => {
                let text = string(text, act, vars)?;
                let args = match args.eval(act, vars)? {
                    Value::List(values) => values,
                    v => return type_error("format arguments", &v),
                };
                let parsed;
                let pieces = match pieces {
                    Some(p) => &p[..],
                    None => {
                        parsed = strings::parse_format(&text).map_err(EvalError::Invalid)?;
                        &parsed[..]
                    }
                };
                strings::format(pieces, &args).map(|s| Value::Str(Cow::Owned(s)))
            }
            Node::TimeGetter(part, t, zone) => {
                let t = match t.eval(act, vars)? {
                    Value::Timestamp(t) => t,
                    v => return type_error("timestamp getter", &v),
                };
                let zone = match zone {
                    ZoneArg::Fixed(z) => *z,
                    ZoneArg::Dynamic(z) => {
                        let name = string(z, act, vars)?;
                        Zone::parse(&name).ok_or_else(|| EvalError::Invalid(format!("unknown time zone '{name}'")))?
                    }
                };
                part.of_timestamp(t, zone).map(Value::Int).ok_or(EvalError::Range("timestamp"))
            }
            Node::DurationGetter(part, d) => match d.eval(act, vars)? {
                Value::Duration(d) => Ok(Value::Int(part.of_duration(d))),
                v => type_error("duration getter", &v),
            },
            Node::Quantifier { kind, range, body } => {
                let mut error = None;
                let mut count = 0usize;
                for item in items(range, act, vars)? {
                    vars.push(Ok(item));
                    let result = body.eval(act, vars);
                    vars.pop();
                    match (kind, result) {
                        (Quantifier::All, Ok(Value::Bool(false))) => return Ok(Value::Bool(false)),
                        (Quantifier::Exists, Ok(Value::Bool(true))) => return Ok(Value::Bool(true)),
                        (Quantifier::ExistsOne, Ok(Value::Bool(true))) => count += 1,
                        (_, Ok(Value::Bool(_))) => {}
                        (Quantifier::ExistsOne, Err(e)) => return Err(e),
                        (_, Err(e)) => error = Some(e),
                        (_, Ok(v)) => return type_error("predicate", &v),
                    }
                }
                if let Some(e) = error {
                    return Err(e);
                }
                Ok(Value::Bool(match kind {
                    Quantifier::All => true,
                    Quantifier::Exists => false,
                    Quantifier::ExistsOne => count == 1,
                }))
            }
            Node::MapFilter { range, filter, transform } => {
                let mut out = Vec::new();
                for item in items(range, act, vars)? {
                    vars.push(Ok(item));
                    let keep = match filter.as_deref().map(|f| f.eval(act, vars)) {
                        None | Some(Ok(Value::Bool(true))) => Ok(true),
                        Some(Ok(Value::Bool(false))) => Ok(false),
                        Some(Ok(v)) => type_error("predicate", &v),
                        Some(Err(e)) => Err(e),
                    };
                    let mapped = match (&keep, transform) {
                        (Ok(true), Some(t)) => Some(t.eval(act, vars)),
                        _ => None,
                    };
                    let item = vars.pop();
                    match (keep?, mapped, item) {
                        (false, ..) => {}
                        (true, Some(value), _) => out.push(value?),
                        // `filter` keeps the element itself.
                        (true, None, Some(Ok(item))) => out.push(item),
                        (true, None, _) => return Err(EvalError::Type("filter lost its element".into())),
                    }
                }
                Ok(Value::List(out))
            }
            Node::Bind { init, body } => {
                let value = init.eval(act, vars);
                vars.push(value);
                let result = body.eval(act, vars);
                vars.pop();
                result
            }
        }
    }
}

/// `s.folded()` / `s.numerals()`: of an event field, as the activation
/// keeps it for the event where it does; otherwise computed here.
fn text_form<'a>(args: &'a [Node], act: &dyn Activation<'a>, vars: &mut Vars<'a>, form: TextForm) -> R<'a> {
    if let [Node::Slot(slot)] = args
        && let Some(kept) = act.text_form(*slot, form)
    {
        return Ok(Value::Str(Cow::Owned(kept)));
    }
    let [s] = args else { return Err(EvalError::Type(format!("{form:?}: one argument"))) };
    Ok(Value::Str(Cow::Owned(form.of(&string(s, act, vars)?))))
}

fn call<'a>(f: Builtin, args: &'a [Node], act: &dyn Activation<'a>, vars: &mut Vars<'a>) -> R<'a> {
    let arg = |i: usize| args.get(i).ok_or_else(|| EvalError::Type(format!("{f:?}: missing argument")));
    let text = |s: String| Ok(Value::Str(Cow::Owned(s)));
    match f {
        Builtin::CharAt => {
            let s = string(arg(0)?, act, vars)?;
            text(strings::char_at(&s, int(arg(1)?, act, vars)?)?)
        }
        Builtin::IndexOf | Builtin::LastIndexOf => {
            let s = string(arg(0)?, act, vars)?;
            let sub = string(arg(1)?, act, vars)?;
            let from = match args.get(2) {
                Some(n) => Some(int(n, act, vars)?),
                None => None,
            };
            let at = match (f, from) {
                (Builtin::IndexOf, from) => strings::index_of(&s, &sub, from.unwrap_or(0))?,
                (_, Some(from)) => strings::last_index_of_from(&s, &sub, from)?,
                (_, None) => strings::last_index_of(&s, &sub)?,
            };
            Ok(Value::Int(at))
        }
        Builtin::Replace => {
            let s = string(arg(0)?, act, vars)?;
            let (old, new) = (string(arg(1)?, act, vars)?, string(arg(2)?, act, vars)?);
            let n = match args.get(3) {
                Some(n) => int(n, act, vars)?,
                None => -1,
            };
            Ok(Value::Str(strings::replace(s, &old, &new, n)))
        }
        Builtin::Split => {
            let s = string(arg(0)?, act, vars)?;
            let sep = string(arg(1)?, act, vars)?;
            let n = match args.get(2) {
                Some(n) => int(n, act, vars)?,
                None => -1,
            };
            Ok(Value::List(match s {
                Cow::Borrowed(b) => strings::split(b, &sep, n),
                Cow::Owned(o) => strings::split(&o, &sep, n).into_iter().map(Value::into_static).collect(),
            }))
        }
        Builtin::Substring => {
            let s = string(arg(0)?, act, vars)?;
            let start = int(arg(1)?, act, vars)?;
            let end = match args.get(2) {
                Some(n) => Some(int(n, act, vars)?),
                None => None,
            };
            substr(s, |s| strings::substring(s, start, end)).map(Value::Str)
        }
        Builtin::Trim => substr(string(arg(0)?, act, vars)?, |s| Ok(s.trim())).map(Value::Str),
        Builtin::UpperAscii => match string(arg(0)?, act, vars)? {
            s if s.bytes().any(|b| b.is_ascii_lowercase()) => text(s.to_ascii_uppercase()),
            s => Ok(Value::Str(s)),
        },
        Builtin::Reverse => text(strings::reverse(&string(arg(0)?, act, vars)?)),
        Builtin::Quote => text(strings::quote(&string(arg(0)?, act, vars)?)),
        Builtin::Skeleton => text(super::text::skeleton(&string(arg(0)?, act, vars)?)),
        Builtin::Folded => text_form(args, act, vars, TextForm::Folded),
        Builtin::Numerals => text_form(args, act, vars, TextForm::Numerals),
        Builtin::Join => {
            let list = match arg(0)?.eval(act, vars)? {
                Value::List(values) => values,
                v => return type_error("join", &v),
            };
            let sep = match args.get(1) {
                Some(s) => string(s, act, vars)?,
                None => Cow::Borrowed(""),
            };
            let mut out = String::new();
            for (i, v) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(&sep);
                }
                match v {
                    Value::Str(s) => out.push_str(s),
                    other => return type_error("join", other),
                }
            }
            text(out)
        }
        Builtin::Greatest | Builtin::Least => {
            // One list argument, or the arguments themselves.
            let values = match args {
                [one] => match one.eval(act, vars)? {
                    Value::List(values) => values,
                    v => vec![v],
                },
                many => many.iter().map(|a| a.eval(act, vars)).collect::<Result<Vec<_>, _>>()?,
            };
            let mut values = values.into_iter();
            let Some(mut best) = values.next() else {
                return Err(EvalError::Invalid(format!(
                    "math.{}: empty list",
                    if f == Builtin::Greatest { "greatest" } else { "least" }
                )));
            };
            // As cel-go: keep the current value only when strictly better
            // (so a NaN met later wins, one met first loses).
            let keep = if f == Builtin::Greatest { Ordering::Greater } else { Ordering::Less };
            for v in values {
                if numeric_order(&best, &v).flatten() != Some(keep) {
                    best = v;
                }
            }
            Ok(best)
        }
        Builtin::SetsContains | Builtin::SetsIntersects | Builtin::SetsEquivalent => {
            let list = |i: usize, vars: &mut Vars<'a>| match arg(i)?.eval(act, vars)? {
                Value::List(values) => Ok(values),
                v => type_error("sets", &v),
            };
            let (a, b) = (list(0, vars)?, list(1, vars)?);
            let within = |x: &[Value<'_>], y: &[Value<'_>]| x.iter().all(|v| y.iter().any(|w| equals(v, w)));
            Ok(Value::Bool(match f {
                Builtin::SetsContains => within(&b, &a),
                Builtin::SetsIntersects => a.iter().any(|v| b.iter().any(|w| equals(v, w))),
                _ => within(&a, &b) && within(&b, &a),
            }))
        }
        Builtin::OptionalOf => Ok(Value::Optional(Some(Box::new(arg(0)?.eval(act, vars)?)))),
        Builtin::OptionalOfNonZero => {
            let v = arg(0)?.eval(act, vars)?;
            let zero = match &v {
                Value::Null | Value::Bool(false) | Value::Int(0) | Value::Uint(0) => true,
                Value::Double(d) => *d == 0.0,
                Value::Str(s) => s.is_empty(),
                Value::Timestamp(t) => *t == 0,
                Value::Duration(d) => *d == 0,
                Value::List(items) => items.is_empty(),
                Value::Map(entries) => entries.is_empty(),
                Value::Optional(o) => o.is_none(),
                _ => false,
            };
            Ok(Value::Optional((!zero).then(|| Box::new(v))))
        }
        Builtin::HasValue => match arg(0)?.eval(act, vars)? {
            Value::Optional(o) => Ok(Value::Bool(o.is_some())),
            v => type_error("hasValue", &v),
        },
        Builtin::OptionalValue => match arg(0)?.eval(act, vars)? {
            Value::Optional(Some(v)) => Ok(*v),
            Value::Optional(None) => Err(EvalError::NoValue),
            v => type_error("value", &v),
        },
    }
}

/// A value borrowed from a constant in the plan (no string copy).
pub(crate) fn borrow<'a>(v: &'a Value<'static>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        Value::List(items) => Value::List(items.iter().map(borrow).collect()),
        Value::Map(entries) => Value::Map(entries.iter().map(|(k, v)| (borrow(k), borrow(v))).collect()),
        Value::Optional(o) => Value::Optional(o.as_deref().map(|v| Box::new(borrow(v)))),
        other => other.clone(),
    }
}

fn arith<'a>(op: ArithOp, a: Value<'a>, b: Value<'a>) -> R<'a> {
    use ArithOp::*;
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => match op {
            Add => x.checked_add(y).ok_or(EvalError::Overflow),
            Sub => x.checked_sub(y).ok_or(EvalError::Overflow),
            Mul => x.checked_mul(y).ok_or(EvalError::Overflow),
            Div if y == 0 => Err(EvalError::DivisionByZero),
            Div => x.checked_div(y).ok_or(EvalError::Overflow),
            Rem if y == 0 => Err(EvalError::DivisionByZero),
            Rem => x.checked_rem(y).ok_or(EvalError::Overflow),
        }
        .map(Value::Int),
        (Value::Uint(x), Value::Uint(y)) => match op {
            Add => x.checked_add(y).ok_or(EvalError::Overflow),
            Sub => x.checked_sub(y).ok_or(EvalError::Overflow),
            Mul => x.checked_mul(y).ok_or(EvalError::Overflow),
            Div | Rem if y == 0 => Err(EvalError::DivisionByZero),
            Div => Ok(x / y),
            Rem => Ok(x % y),
        }
        .map(Value::Uint),
        (Value::Double(x), Value::Double(y)) => Ok(Value::Double(match op {
            Add => x + y,
            Sub => x - y,
            Mul => x * y,
            Div => x / y,
            Rem => return Err(EvalError::Type("% on double".into())),
        })),
        (Value::Str(x), Value::Str(y)) if op == Add => Ok(Value::Str(Cow::Owned(format!("{x}{y}")))),
        (Value::List(mut x), Value::List(y)) if op == Add => {
            x.extend(y);
            Ok(Value::List(x))
        }
        (Value::Timestamp(t), Value::Duration(d)) | (Value::Duration(d), Value::Timestamp(t)) if op == Add => {
            checked_timestamp(t + i128::from(d)).map(Value::Timestamp).ok_or(EvalError::Range("timestamp"))
        }
        (Value::Timestamp(t), Value::Duration(d)) if op == Sub => {
            checked_timestamp(t - i128::from(d)).map(Value::Timestamp).ok_or(EvalError::Range("timestamp"))
        }
        (Value::Timestamp(x), Value::Timestamp(y)) if op == Sub => {
            i64::try_from(x - y).map(Value::Duration).map_err(|_| EvalError::Range("duration"))
        }
        (Value::Duration(x), Value::Duration(y)) if op == Add => {
            x.checked_add(y).map(Value::Duration).ok_or(EvalError::Range("duration"))
        }
        (Value::Duration(x), Value::Duration(y)) if op == Sub => {
            x.checked_sub(y).map(Value::Duration).ok_or(EvalError::Range("duration"))
        }
        (a, _) => type_error("arithmetic", &a),
    }
}

fn convert<'a>(conv: Conv, v: Value<'a>) -> R<'a> {
    let bad = |what: String| Err(EvalError::Conversion(what));
    match (conv, v) {
        (Conv::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (Conv::Bool, Value::Str(s)) => match s.as_ref() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Value::Bool(false)),
            _ => bad("bool() of a string that is not true or false".into()),
        },
        (Conv::Int, Value::Int(i)) => Ok(Value::Int(i)),
        (Conv::Int, Value::Uint(u)) => i64::try_from(u).map(Value::Int).or_else(|_| bad(format!("int({u}u)"))),
        (Conv::Int, Value::Double(d)) => {
            // Doubles in (-2^63, 2^63) truncate; anything else does not fit.
            if d.is_finite() && d > -9.223_372_036_854_776e18 && d < 9.223_372_036_854_776e18 {
                Ok(Value::Int(d.trunc() as i64))
            } else {
                bad(format!("int({d})"))
            }
        }
        (Conv::Int, Value::Str(s)) => {
            s.parse().map(Value::Int).or_else(|_| bad("int() of a non-integer string".into()))
        }
        // In range by construction: years 1 to 9999 are ±3e11 seconds.
        (Conv::Int, Value::Timestamp(t)) => Ok(Value::Int(t.div_euclid(NANOS) as i64)),
        (Conv::Uint, Value::Uint(u)) => Ok(Value::Uint(u)),
        (Conv::Uint, Value::Int(i)) => u64::try_from(i).map(Value::Uint).or_else(|_| bad(format!("uint({i})"))),
        (Conv::Uint, Value::Double(d)) => {
            if d.is_finite() && d > -1.0 && d < 1.844_674_407_370_955_2e19 {
                Ok(Value::Uint(d.trunc() as u64))
            } else {
                bad(format!("uint({d})"))
            }
        }
        // Go's ParseUint takes no sign; Rust's would take `+`.
        (Conv::Uint, Value::Str(s)) if !s.starts_with('+') => {
            s.parse().map(Value::Uint).or_else(|_| bad("uint() of a non-integer string".into()))
        }
        (Conv::Uint, Value::Str(_)) => bad("uint() of a non-integer string".into()),
        (Conv::Double, Value::Double(d)) => Ok(Value::Double(d)),
        (Conv::Double, Value::Int(i)) => Ok(Value::Double(i as f64)),
        (Conv::Double, Value::Uint(u)) => Ok(Value::Double(u as f64)),
        (Conv::Double, Value::Str(s)) => {
            s.parse().map(Value::Double).or_else(|_| bad("double() of a non-number".into()))
        }
        (Conv::String, Value::Str(s)) => Ok(Value::Str(s)),
        (Conv::String, Value::Int(i)) => Ok(Value::Str(Cow::Owned(i.to_string()))),
        (Conv::String, Value::Uint(u)) => Ok(Value::Str(Cow::Owned(u.to_string()))),
        (Conv::String, Value::Double(d)) => Ok(Value::Str(Cow::Owned(format_double(d)))),
        (Conv::String, Value::Bool(b)) => Ok(Value::Str(Cow::Borrowed(if b { "true" } else { "false" }))),
        (Conv::String, Value::Timestamp(t)) => Ok(Value::Str(Cow::Owned(format_timestamp(t)))),
        (Conv::String, Value::Duration(d)) => Ok(Value::Str(Cow::Owned(format_duration(d)))),
        (Conv::Duration, Value::Duration(d)) => Ok(Value::Duration(d)),
        (Conv::Duration, Value::Str(s)) => time::parse_duration(&s)
            .map(Value::Duration)
            .map_or_else(|| bad("duration() needs e.g. \"90s\", \"1h30m\", \"-1.5s\"".into()), Ok),
        (Conv::Timestamp, Value::Timestamp(t)) => Ok(Value::Timestamp(t)),
        (Conv::Timestamp, Value::Int(secs)) => {
            checked_timestamp(i128::from(secs) * NANOS).map(Value::Timestamp).ok_or(EvalError::Range("timestamp"))
        }
        (Conv::Timestamp, Value::Str(s)) => time::parse_timestamp(&s).map(Value::Timestamp).map_or_else(
            || bad("timestamp() needs RFC 3339 between years 1 and 9999, e.g. \"2026-11-20T19:04:05Z\"".into()),
            Ok,
        ),
        (_, v) => type_error("conversion", &v),
    }
}
