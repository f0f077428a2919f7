//! Evaluating a plan's [`Node`] tree against one [`Activation`]: no
//! allocation on the common paths, CEL's absorbing `&&`/`||`.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ir::{Activation, ArithOp, CmpOp, Conv, EvalError, Node, StrFn};
use super::value::{Value, format_timestamp, parse_duration, parse_timestamp};

type R<'a> = Result<Value<'a>, EvalError>;

fn type_error<T>(what: &str, v: &Value<'_>) -> Result<T, EvalError> {
    Err(EvalError::Type(format!("{what}: unexpected {}", v.type_name())))
}

/// Compares two values of comparable types; `None` when unordered (NaN).
pub(crate) fn compare(a: &Value<'_>, b: &Value<'_>) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Uint(x), Value::Uint(y)) => Some(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Uint(y)) => Some(i128::from(*x).cmp(&i128::from(*y))),
        (Value::Uint(x), Value::Int(y)) => Some(i128::from(*x).cmp(&i128::from(*y))),
        (Value::Int(x), Value::Double(y)) => cmp_int_double(i128::from(*x), *y),
        (Value::Uint(x), Value::Double(y)) => cmp_int_double(i128::from(*x), *y),
        (Value::Double(x), Value::Int(y)) => cmp_int_double(i128::from(*y), *x).map(Ordering::reverse),
        (Value::Double(x), Value::Uint(y)) => cmp_int_double(i128::from(*y), *x).map(Ordering::reverse),
        (Value::Str(x), Value::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) | (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::List(x), Value::List(y)) => {
            if x.len() != y.len() {
                return Some(Ordering::Less);
            }
            x.iter().zip(y).all(|(a, b)| compare(a, b) == Some(Ordering::Equal)).then_some(Ordering::Equal)
        }
        _ => None,
    }
}

/// Exact comparison of an integer with a double.
fn cmp_int_double(i: i128, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    if d >= 1.8e19 {
        return Some(Ordering::Less);
    }
    if d <= -9.3e18 {
        return Some(Ordering::Greater);
    }
    let t = d.trunc();
    match i.cmp(&(t as i128)) {
        Ordering::Equal if d > t => Some(Ordering::Less),
        Ordering::Equal if d < t => Some(Ordering::Greater),
        other => Some(other),
    }
}

fn equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    compare(a, b) == Some(Ordering::Equal)
}

impl Node {
    // One arm per plan node: the interpreter reads best as one match, and
    // a call per arm would cost the event path an indirection for nothing.
    pub(crate) fn eval<'a>(&'a self, act: &dyn Activation<'a>, vars: &mut Vec<Value<'a>>) -> R<'a> {
        match self {
            Node::Const(v) => Ok(borrow(v)),
            Node::Error(e) => Err(e.clone()),
            Node::Slot(slot) => Ok(act.field(*slot)),
            Node::Has(slot) => Ok(Value::Bool(act.has(*slot))),
            Node::Var(depth) => Ok(vars[*depth].clone()),
            Node::Not(a) => match a.eval(act, vars)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                v => type_error("!", &v),
            },
            Node::Neg(a) => match a.eval(act, vars)? {
                Value::Int(i) => i.checked_neg().map(Value::Int).ok_or(EvalError::Overflow),
                Value::Double(d) => Ok(Value::Double(-d)),
                Value::Duration(d) => d.checked_neg().map(Value::Duration).ok_or(EvalError::Overflow),
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
                let ord = compare(&x, &y);
                Ok(Value::Bool(match op {
                    CmpOp::Eq => ord == Some(Ordering::Equal),
                    CmpOp::Ne => ord != Some(Ordering::Equal),
                    CmpOp::Lt => ord == Some(Ordering::Less),
                    CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                    CmpOp::Gt => ord == Some(Ordering::Greater),
                    CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
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
            Node::InValues(item, items) => {
                let needle = item.eval(act, vars)?;
                let mut error = None;
                for candidate in items {
                    match candidate.eval(act, vars) {
                        Ok(v) if equals(&needle, &v) => return Ok(Value::Bool(true)),
                        Ok(_) => {}
                        Err(e) => error = Some(e),
                    }
                }
                error.map_or(Ok(Value::Bool(false)), Err)
            }
            Node::List(items) => {
                Ok(Value::List(items.iter().map(|i| i.eval(act, vars)).collect::<Result<Vec<_>, _>>()?))
            }
            Node::NamedList(list) => {
                Ok(Value::List(list.items.iter().map(|s| Value::Str(Cow::Borrowed(s.as_str()))).collect()))
            }
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
                v => type_error("size", &v),
            },
            Node::Convert(conv, a) => convert(*conv, a.eval(act, vars)?),
            Node::Comprehension { range, body, all } => {
                let items = match range.eval(act, vars)? {
                    Value::List(items) => items,
                    v => return type_error("comprehension", &v),
                };
                let mut error = None;
                for item in items {
                    vars.push(item);
                    let result = body.eval(act, vars);
                    vars.pop();
                    match result {
                        Ok(Value::Bool(b)) if b != *all => return Ok(Value::Bool(b)),
                        Ok(_) => {}
                        Err(e) => error = Some(e),
                    }
                }
                error.map_or(Ok(Value::Bool(*all)), Err)
            }
        }
    }
}

/// A value borrowed from a constant in the plan (no string copy).
fn borrow<'a>(v: &'a Value<'static>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        Value::List(items) => Value::List(items.iter().map(borrow).collect()),
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
            t.checked_add(d).map(Value::Timestamp).ok_or(EvalError::Overflow)
        }
        (Value::Timestamp(t), Value::Duration(d)) if op == Sub => {
            t.checked_sub(d).map(Value::Timestamp).ok_or(EvalError::Overflow)
        }
        (Value::Timestamp(x), Value::Timestamp(y)) if op == Sub => {
            x.checked_sub(y).map(Value::Duration).ok_or(EvalError::Overflow)
        }
        (Value::Duration(x), Value::Duration(y)) if op == Add => {
            x.checked_add(y).map(Value::Duration).ok_or(EvalError::Overflow)
        }
        (Value::Duration(x), Value::Duration(y)) if op == Sub => {
            x.checked_sub(y).map(Value::Duration).ok_or(EvalError::Overflow)
        }
        (a, _) => type_error("arithmetic", &a),
    }
}

fn convert<'a>(conv: Conv, v: Value<'a>) -> R<'a> {
    let bad = |what: String| Err(EvalError::Conversion(what));
    match (conv, v) {
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
        (Conv::Int, Value::Timestamp(t)) => Ok(Value::Int(t.div_euclid(1_000_000_000))),
        (Conv::Uint, Value::Uint(u)) => Ok(Value::Uint(u)),
        (Conv::Uint, Value::Int(i)) => u64::try_from(i).map(Value::Uint).or_else(|_| bad(format!("uint({i})"))),
        (Conv::Uint, Value::Double(d)) => {
            if d.is_finite() && d > -1.0 && d < 1.844_674_407_370_955_2e19 {
                Ok(Value::Uint(d.trunc() as u64))
            } else {
                bad(format!("uint({d})"))
            }
        }
        (Conv::Uint, Value::Str(s)) => {
            s.parse().map(Value::Uint).or_else(|_| bad("uint() of a non-integer string".into()))
        }
        (Conv::Double, Value::Double(d)) => Ok(Value::Double(d)),
        (Conv::Double, Value::Int(i)) => Ok(Value::Double(i as f64)),
        (Conv::Double, Value::Uint(u)) => Ok(Value::Double(u as f64)),
        (Conv::Double, Value::Str(s)) => {
            s.parse().map(Value::Double).or_else(|_| bad("double() of a non-number".into()))
        }
        (Conv::String, Value::Str(s)) => Ok(Value::Str(s)),
        (Conv::String, Value::Int(i)) => Ok(Value::Str(Cow::Owned(i.to_string()))),
        (Conv::String, Value::Uint(u)) => Ok(Value::Str(Cow::Owned(u.to_string()))),
        (Conv::String, Value::Double(d)) => Ok(Value::Str(Cow::Owned(d.to_string()))),
        (Conv::String, Value::Bool(b)) => Ok(Value::Str(Cow::Owned(b.to_string()))),
        (Conv::String, Value::Timestamp(t)) => Ok(Value::Str(Cow::Owned(format_timestamp(t)))),
        (Conv::String, Value::Duration(d)) => Ok(Value::Str(Cow::Owned(format!("{}s", d as f64 / 1e9)))),
        (Conv::Duration, Value::Duration(d)) => Ok(Value::Duration(d)),
        (Conv::Duration, Value::Str(s)) => parse_duration(&s)
            .map(Value::Duration)
            .map_or_else(|| bad("duration() needs e.g. \"90s\", \"1h30m\"".into()), Ok),
        (Conv::Timestamp, Value::Timestamp(t)) => Ok(Value::Timestamp(t)),
        (Conv::Timestamp, Value::Int(secs)) => {
            secs.checked_mul(1_000_000_000).map(Value::Timestamp).ok_or(EvalError::Overflow)
        }
        (Conv::Timestamp, Value::Str(s)) => parse_timestamp(&s)
            .map(Value::Timestamp)
            .map_or_else(|| bad("timestamp() needs RFC 3339, e.g. \"2026-11-20T19:04:05Z\"".into()), Ok),
        (_, v) => type_error("conversion", &v),
    }
}
