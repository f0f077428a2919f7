//! The CEL specification's own conformance cases (`../shared/cel-spec/testdata`,
//! or `$GAVEL_CEL_SPEC/testdata`) run against gavel's compiler.
//!
//! Gavel compiles a subset of CEL. Every case is classified:
//! - **pass**: gavel compiles it and gets the expected value (or fails at
//!   run time where the spec expects an evaluation error);
//! - **rejected**: gavel refuses it at compile time (a construct outside the
//!   subset — bytes, `type()`, message literals, lists and maps mixing
//!   types — a static type error where the spec, unchecked, only fails at
//!   run time, or a constant expression that always fails); rejection is
//!   always safe for a rule pack;
//! - **wrong**: gavel compiles it and returns a different value, or a value
//!   where the spec expects an error. This must never happen.
//!
//! Cases that need features the harness does not model are skipped: those
//! with variable `bindings`, a `type_env`, a `container`, checked-only
//! results, or expected values other than scalars, lists and maps
//! (messages, types, bytes). Every file runs, `fields.textproto` and
//! `plumbing.textproto` included, though most of their cases are about the
//! conformance test messages (`TestAllTypes`), which rules never see
//! (rules read gavel's own event schema): those are rejected.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gavel_rules::expr::{Env, Resolved, Value, compile};

/// A parsed text-format protobuf message: fields in order.
#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Message(Vec<(String, Node)>),
}

impl Node {
    fn fields(&self) -> &[(String, Node)] {
        match self {
            Node::Message(f) => f,
            Node::Scalar(_) => &[],
        }
    }
    fn get(&self, key: &str) -> Option<&Node> {
        self.fields().iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.fields().iter().filter(move |(k, _)| k == key).map(|(_, v)| v)
    }
    fn scalar(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(s),
            Node::Message(_) => None,
        }
    }
}

/// A small text-format parser: enough for the conformance files.
struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip(&mut self) {
        while self.pos < self.bytes.len() {
            match self.bytes[self.pos] {
                b' ' | b'\n' | b'\r' | b'\t' | b',' | b';' => self.pos += 1,
                b'#' => {
                    while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn message(&mut self, close: Option<u8>) -> Vec<(String, Node)> {
        let mut fields = Vec::new();
        loop {
            self.skip();
            if self.pos >= self.bytes.len() {
                return fields;
            }
            if Some(self.bytes[self.pos]) == close {
                self.pos += 1;
                return fields;
            }
            let start = self.pos;
            while self.pos < self.bytes.len()
                && (self.bytes[self.pos].is_ascii_alphanumeric() || b"_.[]/".contains(&self.bytes[self.pos]))
            {
                self.pos += 1;
            }
            let key = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
            self.skip();
            if self.bytes.get(self.pos) == Some(&b':') {
                self.pos += 1;
                self.skip();
            }
            let value = self.value();
            fields.push((key, value));
        }
    }

    fn value(&mut self) -> Node {
        match self.bytes[self.pos] {
            b'{' => {
                self.pos += 1;
                Node::Message(self.message(Some(b'}')))
            }
            b'<' => {
                self.pos += 1;
                Node::Message(self.message(Some(b'>')))
            }
            b'[' => {
                // A list of values: keep them as repeated fields named "".
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip();
                    if self.bytes[self.pos] == b']' {
                        self.pos += 1;
                        return Node::Message(items);
                    }
                    items.push((String::new(), self.value()));
                }
            }
            b'"' | b'\'' => {
                let mut out = Vec::new();
                // Adjacent string literals concatenate.
                while self.pos < self.bytes.len() && matches!(self.bytes[self.pos], b'"' | b'\'') {
                    out.extend(self.string());
                    self.skip();
                }
                Node::Scalar(String::from_utf8_lossy(&out).into_owned())
            }
            _ => {
                let start = self.pos;
                while self.pos < self.bytes.len()
                    && !matches!(self.bytes[self.pos], b' ' | b'\n' | b'\r' | b'\t' | b'}' | b'>' | b',' | b']' | b';')
                {
                    self.pos += 1;
                }
                Node::Scalar(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
            }
        }
    }

    fn string(&mut self) -> Vec<u8> {
        let quote = self.bytes[self.pos];
        self.pos += 1;
        let mut out = Vec::new();
        while self.bytes[self.pos] != quote {
            let c = self.bytes[self.pos];
            self.pos += 1;
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let e = self.bytes[self.pos];
            self.pos += 1;
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'v' => out.push(11),
                b'x' | b'X' => {
                    let mut n = 0u32;
                    let mut digits = 0;
                    while digits < 2 && self.bytes[self.pos].is_ascii_hexdigit() {
                        n = n * 16 + (self.bytes[self.pos] as char).to_digit(16).unwrap_or(0);
                        self.pos += 1;
                        digits += 1;
                    }
                    out.push(n as u8);
                }
                b'0'..=b'7' => {
                    let mut n = u32::from(e - b'0');
                    let mut digits = 1;
                    while digits < 3 && (b'0'..=b'7').contains(&self.bytes[self.pos]) {
                        n = n * 8 + u32::from(self.bytes[self.pos] - b'0');
                        self.pos += 1;
                        digits += 1;
                    }
                    out.push(n as u8);
                }
                b'u' | b'U' => {
                    let len = if e == b'u' { 4 } else { 8 };
                    let hex = String::from_utf8_lossy(&self.bytes[self.pos..self.pos + len]).into_owned();
                    self.pos += len;
                    let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).unwrap_or('\u{fffd}');
                    out.extend(c.to_string().bytes());
                }
                other => out.push(other),
            }
        }
        self.pos += 1;
        out
    }
}

/// No names: conformance cases that need variables are skipped.
struct NoNames;

impl Env for NoNames {
    fn resolve(&self, segments: &[&str]) -> Result<Resolved, String> {
        Err(format!("unknown name {}", segments.join(".")))
    }
}

#[derive(Debug, PartialEq)]
enum Expected {
    Value(Value<'static>),
    Error,
}

fn expected(test: &Node) -> Option<Expected> {
    if test.get("eval_error").is_some() {
        return Some(Expected::Error);
    }
    let value = match test.get("value") {
        Some(v) => v,
        // No expectation means `true`.
        None if test.get("typed_result").is_none() => return Some(Expected::Value(Value::Bool(true))),
        None => return None,
    };
    Some(Expected::Value(value_of(value)?))
}

/// A `cel.expr.Value` message as a value: scalars, lists and maps of them.
fn value_of(value: &Node) -> Option<Value<'static>> {
    let (kind, v) = value.fields().first()?;
    let text = || v.scalar();
    Some(match kind.as_str() {
        "bool_value" => Value::Bool(text()? == "true"),
        "int64_value" => Value::Int(text()?.parse().ok()?),
        "uint64_value" => Value::Uint(text()?.parse().ok()?),
        "double_value" => Value::Double(match text()? {
            "inf" | "infinity" => f64::INFINITY,
            "-inf" | "-infinity" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            t => t.parse().ok()?,
        }),
        "string_value" => Value::Str(text()?.to_string().into()),
        "null_value" => Value::Null,
        "list_value" => Value::List(v.all("values").map(value_of).collect::<Option<_>>()?),
        "map_value" => Value::Map(
            v.all("entries")
                .map(|entry| Some((value_of(entry.get("key")?)?, value_of(entry.get("value")?)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// Whether gavel's value is the expected one: same types, NaN equal to
/// itself, lists element by element, maps entry by entry in any order.
fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => (x.is_nan() && y.is_nan()) || x == y,
        (Value::List(x), Value::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(l, w)| same(k, l) && same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn conformance_cases_never_yield_a_wrong_value() {
    let dir = std::env::var("GAVEL_CEL_SPEC")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cel-spec"))
        .join("testdata");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // The spec lives beside the repository, not in it.
        assert!(std::env::var("CI").is_err(), "CEL conformance data not found at {}", dir.display());
        eprintln!("skipping: no CEL conformance data at {}", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut summary: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut wrong = Vec::new();
    // `GAVEL_CEL_VERBOSE=1` lists every rejected case with its error.
    let verbose = std::env::var_os("GAVEL_CEL_VERBOSE").is_some();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".textproto") {
            continue;
        }
        let text = std::fs::read(&path).unwrap();
        let root = Node::Message(Parser { bytes: &text, pos: 0 }.message(None));
        let counts = summary.entry(name.clone()).or_default();
        for section in root.all("section") {
            for test in section.all("test") {
                let skip = ["bindings", "type_env", "container", "check_only", "disable_macros"]
                    .iter()
                    .any(|k| test.get(k).is_some());
                let (Some(expr), Some(want), false) = (test.get("expr").and_then(Node::scalar), expected(test), skip)
                else {
                    counts[3] += 1;
                    continue;
                };
                let test_name = test.get("name").and_then(Node::scalar).unwrap_or_default();
                let plan = match compile(expr, &NoNames) {
                    Ok(plan) => plan,
                    Err(errors) => {
                        if verbose {
                            println!("rejected {name} {test_name}: `{expr}`: {}", errors[0].message);
                        }
                        counts[1] += 1;
                        continue;
                    }
                };
                let got = plan.eval(&NoActivation).map(Value::into_static);
                let ok = match (&want, &got) {
                    (Expected::Error, Err(_)) => true,
                    (Expected::Value(w), Ok(g)) => same(w, g),
                    _ => false,
                };
                if ok {
                    counts[0] += 1;
                } else {
                    counts[2] += 1;
                    wrong.push(format!("{name} {test_name}: `{expr}` expected {want:?}, got {got:?}"));
                }
            }
        }
    }
    println!("{:<24} {:>6} {:>9} {:>6} {:>8}", "file", "pass", "rejected", "wrong", "skipped");
    for (file, [pass, rejected, bad, skipped]) in &summary {
        println!("{file:<24} {pass:>6} {rejected:>9} {bad:>6} {skipped:>8}");
    }
    assert!(wrong.is_empty(), "{} conformance case(s) evaluated wrongly:\n{}", wrong.len(), wrong.join("\n"));
    // Floors from the run that introduced this test: a drop means gavel
    // stopped supporting something it did.
    let passed: usize = summary.values().map(|c| c[0]).sum();
    assert!(passed >= FLOOR_PASSED, "only {passed} conformance cases pass (floor {FLOOR_PASSED})");
}

/// Passing cases when this floor was set (see the test's output).
const FLOOR_PASSED: usize = 751;

struct NoActivation;

impl<'a> gavel_rules::expr::Activation<'a> for NoActivation {
    fn field(&self, _slot: u32) -> Value<'a> {
        Value::Null
    }
    fn has(&self, _slot: u32) -> bool {
        false
    }
}
