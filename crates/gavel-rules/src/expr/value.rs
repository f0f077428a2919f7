//! Static types and run-time values of rule expressions.

use std::borrow::Cow;

use super::time::{format_duration, format_timestamp};

/// A static type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `null_type`; also the element type of an empty list or map literal,
    /// which fits any other.
    Null,
    /// `bool`.
    Bool,
    /// `int` (64-bit signed).
    Int,
    /// `uint` (64-bit unsigned).
    Uint,
    /// `double`.
    Double,
    /// `string`.
    String,
    /// `google.protobuf.Timestamp`.
    Timestamp,
    /// `google.protobuf.Duration`.
    Duration,
    /// A list whose elements have one type.
    List(Box<Type>),
    /// A map from keys of one type (`bool`, `int`, `uint` or `string`) to
    /// values of one type.
    Map(Box<Type>, Box<Type>),
    /// `optional_type`: a value that may be absent.
    Optional(Box<Type>),
    /// A message (only `has()` applies).
    Message,
}

impl Type {
    /// True for `int`, `uint` and `double`.
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Uint | Type::Double)
    }

    /// The one type values of `self` and `other` can share in a list, a
    /// map or the branches of `?:`: the same type, where an empty literal's
    /// `null` element type fits any other.
    pub(crate) fn unify(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (a, b) if a == b => Some(a.clone()),
            (Type::List(a), Type::List(b)) => Some(Type::List(Box::new(a.unify_element(b)?))),
            (Type::Optional(a), Type::Optional(b)) => Some(Type::Optional(Box::new(a.unify_element(b)?))),
            (Type::Map(ak, av), Type::Map(bk, bv)) => {
                Some(Type::Map(Box::new(ak.unify_element(bk)?), Box::new(av.unify_element(bv)?)))
            }
            _ => None,
        }
    }

    /// [`Type::unify`], where `null` (an empty literal's element type, or
    /// `optional.none()`'s) fits any type.
    pub(crate) fn unify_element(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (Type::Null, t) | (t, Type::Null) => Some(t.clone()),
            (a, b) => a.unify(b),
        }
    }

    /// Whether `==` may compare values of these types: equal types, numbers
    /// with numbers (CEL compares them by value), anything with `null`, and
    /// collections whose elements may be compared so.
    pub(crate) fn equatable(&self, other: &Type) -> bool {
        match (self, other) {
            (Type::Message, _) | (_, Type::Message) => false,
            (Type::Null, _) | (_, Type::Null) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (Type::List(a), Type::List(b)) | (Type::Optional(a), Type::Optional(b)) => a.equatable(b),
            (Type::Map(ak, av), Type::Map(bk, bv)) => ak.equatable(bk) && av.equatable(bv),
            (a, b) => a == b,
        }
    }

    /// Whether `<` and friends order values of these types.
    pub(crate) fn ordered(&self, other: &Type) -> bool {
        (self.is_numeric() && other.is_numeric())
            || (self == other && matches!(self, Type::String | Type::Bool | Type::Timestamp | Type::Duration))
    }

    /// Whether a map key may have this type.
    pub(crate) fn is_key(&self) -> bool {
        matches!(self, Type::Bool | Type::Int | Type::Uint | Type::String)
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::Null => f.write_str("null"),
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::Duration => f.write_str("duration"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Map(k, v) => write!(f, "map({k}, {v})"),
            Type::Optional(t) => write!(f, "optional({t})"),
            Type::Message => f.write_str("message"),
        }
    }
}

/// A run-time value. Strings borrow from the event where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// A `bool`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A `uint`.
    Uint(u64),
    /// A `double`.
    Double(f64),
    /// A `string`.
    Str(Cow<'a, str>),
    /// Nanoseconds since the Unix epoch, in CEL's range (years 1 to 9999).
    Timestamp(i128),
    /// Nanoseconds.
    Duration(i64),
    /// A list.
    List(Vec<Value<'a>>),
    /// A map: entries in the order written, keys distinct.
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// An optional value: `optional.of(v)` or `optional.none()`.
    Optional(Option<Box<Value<'a>>>),
}

impl Value<'_> {
    /// The value's type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Double(_) => "double",
            Value::Str(_) => "string",
            Value::Timestamp(_) => "timestamp",
            Value::Duration(_) => "duration",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Optional(_) => "optional",
        }
    }

    /// A copy that owns its strings.
    pub fn into_static(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Uint(u) => Value::Uint(u),
            Value::Double(d) => Value::Double(d),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Timestamp(t) => Value::Timestamp(t),
            Value::Duration(d) => Value::Duration(d),
            Value::List(items) => Value::List(items.into_iter().map(Value::into_static).collect()),
            Value::Map(entries) => {
                Value::Map(entries.into_iter().map(|(k, v)| (k.into_static(), v.into_static())).collect())
            }
            Value::Optional(v) => Value::Optional(v.map(|v| Box::new(v.into_static()))),
        }
    }

    /// The value as a JSON value, for tools (`gavel eval`, test reports):
    /// timestamps and durations as CEL's strings, map keys as strings, an
    /// absent optional as `null`.
    pub fn to_json_string(&self) -> String {
        match self {
            Value::Null | Value::Optional(None) => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Uint(u) => u.to_string(),
            Value::Double(d) if d.is_finite() => format!("{d:?}"),
            Value::Double(d) => format!("\"{d}\""),
            Value::Str(s) => format!("{s:?}"),
            Value::Timestamp(t) => format!("\"{}\"", format_timestamp(*t)),
            Value::Duration(d) => format!("\"{}\"", format_duration(*d)),
            Value::List(items) => {
                format!("[{}]", items.iter().map(Value::to_json_string).collect::<Vec<_>>().join(","))
            }
            Value::Map(entries) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Value::Str(s) => format!("{s:?}"),
                            other => format!("\"{}\"", other.to_json_string()),
                        };
                        format!("{key}:{}", v.to_json_string())
                    })
                    .collect();
                format!("{{{}}}", entries.join(","))
            }
            Value::Optional(Some(v)) => v.to_json_string(),
        }
    }
}

impl<'a> From<gavel_model::schema::FieldValue<'a>> for Value<'a> {
    fn from(field: gavel_model::schema::FieldValue<'a>) -> Self {
        use gavel_model::schema::FieldValue;
        match field {
            FieldValue::Bool(b) => Value::Bool(b),
            FieldValue::Int(i) => Value::Int(i),
            FieldValue::Uint(u) => Value::Uint(u),
            FieldValue::Double(d) => Value::Double(d),
            FieldValue::Str(s) => Value::Str(Cow::Borrowed(s)),
            FieldValue::Timestamp(t) => Value::Timestamp(i128::from(t)),
            // Never read: a message is only tested (`has()`), and its
            // comparisons with null fold at compile time.
            FieldValue::Message => Value::Null,
        }
    }
}

/// Formats a double as cel-go's `string()` does (Go's `%g`): the shortest
/// digits that read back the same, in exponent form below 1e-4 or from
/// 1e6 (`"1e+06"`, `"-0.0045"`), and `NaN`, `+Inf`, `-Inf`.
pub(crate) fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    // `{:e}` is the shortest round-trip mantissa and its exponent.
    let exp_form = format!("{d:e}");
    let Some((mantissa, exp)) = exp_form.split_once('e') else { return exp_form };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        // Display is the shortest round-trip digits without an exponent.
        format!("{d}")
    } else {
        format_exponent(mantissa, exp)
    }
}

/// `mantissa` and `exp` as Go writes them: `e`, a sign, two digits or more.
pub(crate) fn format_exponent(mantissa: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_format_as_go_g() {
        for (d, text) in [
            (123.456, "123.456"),
            (-4.5e-3, "-0.0045"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e100, "1e+100"),
            (-0.0, "-0"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(format_double(d), text);
        }
    }

    #[test]
    fn types_unify_through_empty_literals() {
        let list = |t| Type::List(Box::new(t));
        assert_eq!(list(Type::Null).unify(&list(Type::Int)), Some(list(Type::Int)));
        assert_eq!(Type::Null.unify(&Type::Int), None);
        assert!(list(Type::Int).equatable(&list(Type::Double)));
        assert!(!list(Type::Int).equatable(&list(Type::String)));
        assert!(!Type::Message.equatable(&Type::Null));
    }
}
