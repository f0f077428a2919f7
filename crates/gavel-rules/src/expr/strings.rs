//! CEL's strings extension as cel-go implements it (`ext.Strings`, latest
//! version): `charAt`, `indexOf`, `lastIndexOf`, `replace`, `split`,
//! `substring`, `trim`, `upperAscii`, `reverse`, `join`, `strings.quote`
//! and `format`. Indices count Unicode code points, not bytes. Functions
//! take evaluated arguments and return a value or an [`EvalError`]; the
//! evaluator calls them, the compiler checks their types.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::ir::EvalError;
use super::time::{format_duration, format_timestamp};
use super::value::{Type, Value, format_exponent};

fn out_of_range<T>(index: i64) -> Result<T, EvalError> {
    Err(EvalError::Index(index.to_string()))
}

/// The number of code points in `s`.
fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// The byte offset of code point `index` (`s.len()` at the end).
fn byte_at(s: &str, index: usize) -> usize {
    s.char_indices().nth(index).map_or(s.len(), |(i, _)| i)
}

/// `s.charAt(i)`: the code point at `i`, `""` at the end.
pub(crate) fn char_at(s: &str, index: i64) -> Result<String, EvalError> {
    let len = char_len(s) as i64;
    if !(0..=len).contains(&index) {
        return out_of_range(index);
    }
    Ok(s.chars().nth(index as usize).map(String::from).unwrap_or_default())
}

/// `s.indexOf(sub, from)`: the first code-point index of `sub` at or after
/// `from`, or -1; an empty `sub` is found at `from`.
pub(crate) fn index_of(s: &str, sub: &str, from: i64) -> Result<i64, EvalError> {
    if sub.is_empty() {
        return Ok(from);
    }
    if from < 0 {
        return out_of_range(from);
    }
    if from >= char_len(s) as i64 {
        return Ok(-1);
    }
    let start = byte_at(s, from as usize);
    Ok(match s[start..].find(sub) {
        Some(at) => from + char_len(&s[start..start + at]) as i64,
        None => -1,
    })
}

/// `s.lastIndexOf(sub)`: from the end.
pub(crate) fn last_index_of(s: &str, sub: &str) -> Result<i64, EvalError> {
    let len = char_len(s) as i64;
    if sub.is_empty() {
        return Ok(len);
    }
    last_index_of_from(s, sub, len - 1)
}

/// `s.lastIndexOf(sub, from)`: the last code-point index of `sub` starting
/// at or before `from`, or -1; an empty `sub` is found at `from`.
pub(crate) fn last_index_of_from(s: &str, sub: &str, from: i64) -> Result<i64, EvalError> {
    if sub.is_empty() {
        return Ok(from);
    }
    if from < 0 {
        return out_of_range(from);
    }
    let len = char_len(s) as i64;
    if from >= len {
        return Ok(-1);
    }
    let sub_len = char_len(sub) as i64;
    let last_start = from.min(len - sub_len);
    if last_start < 0 {
        return Ok(-1);
    }
    // A match may start at code point `last_start` at the latest: search
    // the text up to where such a match would end.
    let end = byte_at(s, (last_start + sub_len) as usize);
    Ok(match s[..end].rfind(sub) {
        Some(at) => char_len(&s[..at]) as i64,
        None => -1,
    })
}

/// `s.replace(old, new, n)`: the first `n` occurrences (all when `n` is
/// negative), as Go's `strings.Replace`.
pub(crate) fn replace<'a>(s: Cow<'a, str>, old: &str, new: &str, n: i64) -> Cow<'a, str> {
    if n == 0 || (!old.is_empty() && !s.contains(old)) {
        return s;
    }
    match usize::try_from(n) {
        Ok(n) => Cow::Owned(s.replacen(old, new, n)),
        Err(_) => Cow::Owned(s.replace(old, new)),
    }
}

/// `s.split(sep, n)`: at most `n` pieces (all when `n` is negative, none
/// when it is 0), as Go's `strings.SplitN`; an empty `sep` splits into
/// code points.
pub(crate) fn split<'a>(s: &'a str, sep: &str, n: i64) -> Vec<Value<'a>> {
    let piece = |p: &'a str| Value::Str(Cow::Borrowed(p));
    if n == 0 {
        return Vec::new();
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    if sep.is_empty() {
        let mut out: Vec<Value<'a>> = Vec::new();
        for (i, c) in s.char_indices() {
            if out.len() + 1 == limit {
                out.push(piece(&s[i..]));
                return out;
            }
            out.push(piece(&s[i..i + c.len_utf8()]));
        }
        return out;
    }
    s.splitn(limit, sep).map(piece).collect()
}

/// `s.substring(start, end)`: code points `start..end`.
pub(crate) fn substring(s: &str, start: i64, end: Option<i64>) -> Result<&str, EvalError> {
    let len = char_len(s) as i64;
    if let Some(end) = end
        && start > end
    {
        return Err(EvalError::Invalid(format!("invalid substring range. start: {start}, end: {end}")));
    }
    if !(0..=len).contains(&start) {
        return out_of_range(start);
    }
    let end = match end {
        Some(end) if !(0..=len).contains(&end) => return out_of_range(end),
        Some(end) => end,
        None => len,
    };
    Ok(&s[byte_at(s, start as usize)..byte_at(s, end as usize)])
}

/// `s.reverse()`: the code points in reverse order.
pub(crate) fn reverse(s: &str) -> String {
    s.chars().rev().collect()
}

/// `strings.quote(s)`: `s` in double quotes with CEL's escapes.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The largest precision `%.Nf` and `%.Ne` accept.
const MAX_PRECISION: usize = 100;

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormatPiece {
    /// Text copied as it is (`%%` already turned into `%`).
    Text(String),
    /// A clause consuming the next argument.
    Clause(Clause),
}

/// A formatting clause of `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clause {
    /// `%s`: any value as text.
    Str,
    /// `%d`: an integer (or a double, as its shortest decimal).
    Decimal,
    /// `%f`, `%.Nf`: fixed point, six digits unless given.
    Fixed(usize),
    /// `%e`, `%.Ne`: scientific, six digits unless given.
    Scientific(usize),
    /// `%b`: binary (integers and bools).
    Binary,
    /// `%x`, `%X`: hexadecimal (integers and strings, byte by byte).
    Hex {
        /// `%X`.
        upper: bool,
    },
    /// `%o`: octal.
    Octal,
}

impl Clause {
    /// Whether an argument of static type `ty` fits the clause.
    pub(crate) fn accepts(self, ty: &Type) -> bool {
        match self {
            Clause::Str => !matches!(ty, Type::Optional(_) | Type::Message),
            Clause::Decimal | Clause::Fixed(_) | Clause::Scientific(_) => ty.is_numeric(),
            Clause::Binary => matches!(ty, Type::Bool | Type::Int | Type::Uint),
            Clause::Hex { .. } => matches!(ty, Type::Int | Type::Uint | Type::String),
            Clause::Octal => matches!(ty, Type::Int | Type::Uint),
        }
    }

    /// The clause as written, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Clause::Str => "%s",
            Clause::Decimal => "%d",
            Clause::Fixed(_) => "%f",
            Clause::Scientific(_) => "%e",
            Clause::Binary => "%b",
            Clause::Hex { upper: false } => "%x",
            Clause::Hex { upper: true } => "%X",
            Clause::Octal => "%o",
        }
    }
}

/// Parses a format string into text and clauses.
pub(crate) fn parse_format(text: &str) -> Result<Vec<FormatPiece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        literal.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            literal.push('%');
            rest = after;
            continue;
        }
        let mut precision = None;
        if let Some(after) = rest.strip_prefix('.') {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == after.len() {
                return Err("could not find end of precision specifier".into());
            }
            let p: usize = after[..digits].parse().map_err(|_| "invalid precision in format string".to_string())?;
            if p > MAX_PRECISION {
                return Err(format!("precision {p} exceeds the maximum of {MAX_PRECISION}"));
            }
            precision = Some(p);
            rest = &after[digits..];
        }
        let Some(c) = rest.chars().next() else {
            return Err("unexpected end of format string".into());
        };
        let clause = match c {
            's' => Clause::Str,
            'd' => Clause::Decimal,
            'f' => Clause::Fixed(precision.unwrap_or(6)),
            'e' => Clause::Scientific(precision.unwrap_or(6)),
            'b' => Clause::Binary,
            'x' => Clause::Hex { upper: false },
            'X' => Clause::Hex { upper: true },
            'o' => Clause::Octal,
            other => return Err(format!("unrecognized formatting clause \"{other}\"")),
        };
        rest = &rest[c.len_utf8()..];
        if !literal.is_empty() {
            pieces.push(FormatPiece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(FormatPiece::Clause(clause));
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(FormatPiece::Text(literal));
    }
    Ok(pieces)
}

/// The number of arguments `pieces` consume.
pub(crate) fn clause_count(pieces: &[FormatPiece]) -> usize {
    pieces.iter().filter(|p| matches!(p, FormatPiece::Clause(_))).count()
}

/// `text.format(args)` with `text` parsed into `pieces`.
pub(crate) fn format(pieces: &[FormatPiece], args: &[Value<'_>]) -> Result<String, EvalError> {
    let mut out = String::new();
    let mut next = args.iter();
    for piece in pieces {
        match piece {
            FormatPiece::Text(t) => out.push_str(t),
            FormatPiece::Clause(clause) => {
                let Some(arg) = next.next() else {
                    return Err(EvalError::Invalid(format!(
                        "format: {} clause(s) but {} argument(s)",
                        clause_count(pieces),
                        args.len()
                    )));
                };
                format_clause(*clause, arg, &mut out)?;
            }
        }
    }
    Ok(out)
}

fn clause_error<T>(clause: Clause, v: &Value<'_>) -> Result<T, EvalError> {
    Err(EvalError::Invalid(format!("format: {} cannot format a {}", clause.name(), v.type_name())))
}

/// A double's special values as the format clauses write them.
fn special_double(d: f64) -> Option<&'static str> {
    if d.is_nan() {
        Some("NaN")
    } else if d == f64::INFINITY {
        Some("Infinity")
    } else if d == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// A number as a double, for `%f` and `%e`.
fn as_double(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Uint(u) => Some(*u as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

/// An integer in base 2, 8 or 16, with a sign rather than two's complement.
fn radix(v: &Value<'_>, base: u32, upper: bool) -> Option<String> {
    let (negative, magnitude) = match v {
        Value::Int(i) => (*i < 0, i.unsigned_abs()),
        Value::Uint(u) => (false, *u),
        _ => return None,
    };
    let digits = match (base, upper) {
        (2, _) => format!("{magnitude:b}"),
        (8, _) => format!("{magnitude:o}"),
        (_, false) => format!("{magnitude:x}"),
        (_, true) => format!("{magnitude:X}"),
    };
    Some(if negative { format!("-{digits}") } else { digits })
}

fn format_clause(clause: Clause, v: &Value<'_>, out: &mut String) -> Result<(), EvalError> {
    match clause {
        Clause::Str => format_value(v, out)?,
        Clause::Decimal => match v {
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Uint(u) => out.push_str(&u.to_string()),
            Value::Double(d) => out.push_str(special_double(*d).map_or_else(|| d.to_string(), String::from).as_str()),
            _ => return clause_error(clause, v),
        },
        Clause::Fixed(p) => match as_double(v) {
            Some(d) => match special_double(d) {
                Some(s) => out.push_str(s),
                None => {
                    let _ = write!(out, "{d:.p$}");
                }
            },
            None => return clause_error(clause, v),
        },
        Clause::Scientific(p) => match as_double(v) {
            Some(d) => match special_double(d) {
                Some(s) => out.push_str(s),
                None => {
                    let text = format!("{d:.p$e}");
                    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
                    out.push_str(&format_exponent(mantissa, exp.parse().unwrap_or(0)));
                }
            },
            None => return clause_error(clause, v),
        },
        Clause::Binary => match v {
            Value::Bool(b) => out.push(if *b { '1' } else { '0' }),
            _ => out.push_str(&radix(v, 2, false).map_or_else(|| clause_error(clause, v), Ok)?),
        },
        Clause::Hex { upper } => match v {
            Value::Str(s) => {
                for b in s.bytes() {
                    let _ = if upper { write!(out, "{b:02X}") } else { write!(out, "{b:02x}") };
                }
            }
            _ => out.push_str(&radix(v, 16, upper).map_or_else(|| clause_error(clause, v), Ok)?),
        },
        Clause::Octal => out.push_str(&radix(v, 8, false).map_or_else(|| clause_error(clause, v), Ok)?),
    }
    Ok(())
}

/// A value as `%s` writes it: strings bare, lists and maps with their
/// elements so (map entries sorted by key text), doubles in shortest
/// decimal, timestamps and durations as `string()` gives them.
fn format_value(v: &Value<'_>, out: &mut String) -> Result<(), EvalError> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Double(d) => out.push_str(special_double(*d).map_or_else(|| d.to_string(), String::from).as_str()),
        Value::Str(s) => out.push_str(s),
        Value::Timestamp(t) => out.push_str(&format_timestamp(*t)),
        Value::Duration(d) => out.push_str(&format_duration(*d)),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                format_value(item, out)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let mut texts = Vec::with_capacity(entries.len());
            for (k, val) in entries {
                let (mut key, mut value) = (String::new(), String::new());
                format_value(k, &mut key)?;
                format_value(val, &mut value)?;
                texts.push((key, value));
            }
            texts.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, val)) in texts.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{k}: {val}");
            }
            out.push('}');
        }
        Value::Optional(_) => return clause_error(Clause::Str, v),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value<'_> {
        Value::Str(Cow::Borrowed(v))
    }

    #[test]
    fn indices_count_code_points() {
        assert_eq!(char_at("héllo", 1).unwrap(), "é");
        assert_eq!(char_at("hello", 5).unwrap(), "");
        assert!(char_at("hello", 6).is_err() && char_at("hello", -1).is_err());
        assert_eq!(index_of("hello mellow", "", 0), Ok(0));
        assert_eq!(index_of("hello mellow", "ello", 0), Ok(1));
        assert_eq!(index_of("hello mellow", "jello", 0), Ok(-1));
        assert_eq!(index_of("hello mellow", "", 2), Ok(2));
        assert_eq!(index_of("hello mellow", "ello", 2), Ok(7));
        assert_eq!(index_of("hello mellow", "ello", 20), Ok(-1));
        assert!(index_of("hello", "l", -1).is_err());
        assert_eq!(index_of("ééxé", "x", 1), Ok(2));
        assert_eq!(last_index_of("hello mellow", ""), Ok(12));
        assert_eq!(last_index_of("hello mellow", "ello"), Ok(7));
        assert_eq!(last_index_of("hello mellow", "jello"), Ok(-1));
        assert_eq!(last_index_of_from("hello mellow", "ello", 6), Ok(1));
        assert!(last_index_of_from("hello mellow", "ello", -1).is_err());
        assert_eq!(last_index_of("ééxéx", "x"), Ok(4));
        assert_eq!(last_index_of("ab", "abc"), Ok(-1));
        assert_eq!(substring("tacocat", 4, None), Ok("cat"));
        assert_eq!(substring("tacocat", 0, Some(4)), Ok("taco"));
        assert_eq!(substring("tacoçat", 4, Some(7)), Ok("çat"));
        assert!(substring("tacocat", -1, None).is_err());
        assert!(substring("tacocat", 2, Some(1)).is_err());
        assert!(substring("tacocat", 2, Some(8)).is_err());
        assert_eq!(reverse("añb"), "bña");
    }

    #[test]
    fn split_and_replace_follow_go() {
        let split = |t, sep, n| split(t, sep, n).into_iter().map(|v| v.to_json_string()).collect::<Vec<_>>().join(" ");
        assert_eq!(split("hello hello hello", " ", -1), r#""hello" "hello" "hello""#);
        assert_eq!(split("hello hello hello", " ", 0), "");
        assert_eq!(split("hello hello hello", " ", 1), r#""hello hello hello""#);
        assert_eq!(split("hello hello hello", " ", 2), r#""hello" "hello hello""#);
        assert_eq!(split("abc", "", -1), r#""a" "b" "c""#);
        assert_eq!(split("abc", "", 2), r#""a" "bc""#);
        assert_eq!(split("", ",", -1), r#""""#);
        assert_eq!(split("", "", -1), "");
        assert_eq!(replace(Cow::Borrowed("hello hello"), "he", "we", -1), "wello wello");
        assert_eq!(replace(Cow::Borrowed("hello hello"), "he", "we", 1), "wello hello");
        assert_eq!(replace(Cow::Borrowed("hello hello"), "he", "we", 0), "hello hello");
        assert_eq!(replace(Cow::Borrowed("abc"), "", "-", 2), "-a-bc");
    }

    #[test]
    fn format_follows_cel_go() {
        let f = |text: &str, args: &[Value<'_>]| format(&parse_format(text).unwrap(), args);
        assert_eq!(f("%s and %d", &[s("str"), Value::Int(42)]).unwrap(), "str and 42");
        assert_eq!(f("%%s: %s", &[Value::Double(64.2)]).unwrap(), "%s: 64.2");
        assert_eq!(f("%f", &[Value::Double(3.25)]).unwrap(), "3.250000");
        assert_eq!(f("%.2f", &[Value::Int(2)]).unwrap(), "2.00");
        assert_eq!(f("%e", &[Value::Double(2.5)]).unwrap(), "2.500000e+00");
        assert_eq!(f("%.3e", &[Value::Double(-1234.5)]).unwrap(), "-1.234e+03");
        assert_eq!(f("%b %b", &[Value::Int(5), Value::Bool(true)]).unwrap(), "101 1");
        assert_eq!(f("%x %X %x", &[Value::Int(26), Value::Int(26), Value::Int(-26)]).unwrap(), "1a 1A -1a");
        assert_eq!(f("%x", &[s("Hi")]).unwrap(), "4869");
        assert_eq!(f("%o", &[Value::Uint(30)]).unwrap(), "36");
        assert_eq!(f("%f", &[Value::Double(f64::NAN)]).unwrap(), "NaN");
        let list = Value::List(vec![Value::Int(1), s("a"), Value::Map(vec![(s("b"), s("y")), (s("a"), s("x"))])]);
        assert_eq!(f("%s", &[list]).unwrap(), "[1, a, {a: x, b: y}]");
        assert_eq!(f("%s", &[Value::Duration(6_347_000_000_000)]).unwrap(), "6347s");
        assert!(f("%d", &[s("x")]).is_err());
        assert!(f("%s %s", &[s("x")]).is_err());
        for bad in ["%", "%.2", "%q", "%.f"] {
            assert!(parse_format(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quote_escapes() {
        assert_eq!(quote("a\"b\\\n"), r#""a\"b\\\n""#);
    }
}
