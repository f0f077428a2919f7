//! Static types and run-time values of rule expressions.

use std::borrow::Cow;

/// A static type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `null_type`.
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
    /// A message (only `has()` applies).
    Message,
}

impl Type {
    /// True for `int`, `uint` and `double`.
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Uint | Type::Double)
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
    /// Nanoseconds since the Unix epoch.
    Timestamp(i64),
    /// Nanoseconds.
    Duration(i64),
    /// A list.
    List(Vec<Value<'a>>),
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
        }
    }

    /// The value as a JSON value, for tools (`gavel eval`, test reports).
    pub fn to_json_string(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Uint(u) => u.to_string(),
            Value::Double(d) if d.is_finite() => format!("{d:?}"),
            Value::Double(d) => format!("\"{d}\""),
            Value::Str(s) => format!("{s:?}"),
            Value::Timestamp(t) => format!("\"{}\"", format_timestamp(*t)),
            Value::Duration(d) => format!("\"{}s\"", *d as f64 / 1e9),
            Value::List(items) => {
                format!("[{}]", items.iter().map(Value::to_json_string).collect::<Vec<_>>().join(","))
            }
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
            FieldValue::Timestamp(t) => Value::Timestamp(t),
            FieldValue::Message => Value::Null,
        }
    }
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC.
pub(crate) fn format_timestamp(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if sub == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{sub:09}Z")
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 timestamp (`2026-11-20T19:04:05.250Z`, offsets allowed)
/// to nanoseconds since the epoch.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = frac[..digits].parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Parses a CEL duration string (`1h30m`, `-1.5s`, `250ms`) to nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (scale, len) = if rest.starts_with("ms") {
            (1e6, 2)
        } else if rest.starts_with("us") {
            (1e3, 2)
        } else if rest.starts_with("µs") {
            (1e3, "µs".len())
        } else if rest.starts_with("ns") {
            (1.0, 2)
        } else if rest.starts_with('h') {
            (3.6e12, 1)
        } else if rest.starts_with('m') {
            (6e10, 1)
        } else if rest.starts_with('s') {
            (1e9, 1)
        } else {
            return None;
        };
        total += value * scale;
        rest = &rest[len..];
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for text in
            ["1970-01-01T00:00:00Z", "2026-11-20T19:04:05.250000000Z", "1900-01-01T00:00:00Z", "2000-02-29T23:59:59Z"]
        {
            let nanos = parse_timestamp(text).unwrap();
            assert_eq!(format_timestamp(nanos), text);
        }
        // Nanoseconds in an i64 span the years 1677 to 2262.
        assert!(parse_timestamp("0001-01-01T00:00:00Z").is_none());
        assert_eq!(parse_timestamp("2026-11-20T19:04:05.25+01:00"), parse_timestamp("2026-11-20T18:04:05.25Z"));
        assert!(parse_timestamp("2026-13-01T00:00:00Z").is_none());
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("-1.5s"), Some(-1_500_000_000));
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("0s"), Some(0));
        assert!(parse_duration("5 minutes").is_none());
        assert!(parse_duration("").is_none());
    }
}
