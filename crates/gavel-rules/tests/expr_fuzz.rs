//! Fuzzing the expression compiler and evaluator: nothing a rule author
//! writes, and no value an event carries, may panic.
//!
//! Inputs are arbitrary text (non-ASCII included) and expressions built
//! from a grammar of the CEL gavel supports, over the real event schema,
//! then mutated (characters inserted, deleted, duplicated, cut). Each is
//! compiled as a rule on every event kind would be (the pack's own
//! environment, through [`gavel_rules::compile_expression`]); every plan
//! that compiles is evaluated against events with arbitrary field values
//! (extreme numbers, NaN, strings shaped like timestamps and durations with
//! stray non-ASCII characters, unset fields, missing features). Errors are
//! fine; a panic fails the test.
//!
//! `GAVEL_FUZZ_CASES` sets how many inputs run (default 256, so
//! `cargo test` stays fast); `GAVEL_FUZZ_SECONDS`, if set, stops earlier
//! once that much time has passed; `GAVEL_FUZZ_VERBOSE=1` prints every
//! input that does not compile, with the first error. The test prints how
//! many inputs ran, compiled and were evaluated.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gavel_model::EventKind;
use gavel_model::schema::{EVENT_FIELDS, FieldType};
use gavel_rules::expr::{Activation, StringList, Type, Value};
use gavel_rules::{FEATURE_SLOT_BASE, KIND_SLOT, compile_expression};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The features the fuzzed expressions may read, one per aggregate type.
fn features() -> Vec<(String, Type)> {
    vec![
        ("bids".into(), Type::Int),
        ("spend".into(), Type::Double),
        ("first_seen".into(), Type::Timestamp),
        ("since_last".into(), Type::Duration),
    ]
}

/// Names an expression may use: every event field, the features, a list
/// and a label set.
fn names() -> Vec<String> {
    let mut names: Vec<String> = EVENT_FIELDS.iter().map(|f| format!("event.{}", f.path)).collect();
    names.push("event.kind".into());
    names.extend(features().into_iter().map(|(n, _)| format!("features.{n}")));
    names.extend(["lists.words".into(), "labels.user".into(), "x".into(), "y".into()]);
    names
}

/// Strings with a shape gavel parses (timestamps, durations, zones,
/// format strings, numbers), often with a stray character in them.
fn tricky_string() -> BoxedStrategy<String> {
    let shaped = prop_oneof![
        Just("2026-11-20T19:04:05+0é00".to_string()),
        Just("2026-11-20T19:04:05.123456789Z".to_string()),
        Just("0001-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59.999999999Z".to_string()),
        Just("1h2m3.5s".to_string()),
        Just("-1.5s".to_string()),
        Just("9223372036854775807ns".to_string()),
        Just("2µs".to_string()),
        Just("America/New_York".to_string()),
        Just("+05:30".to_string()),
        Just("-99999999999:99".to_string()),
        Just("%s %d %.3f %e %x %o %b %%".to_string()),
        Just("%.999999999999f".to_string()),
        Just("18446744073709551616".to_string()),
        Just("true".to_string()),
        Just("".to_string()),
    ];
    (shaped, "\\PC{0,3}", 0usize..40, any::<bool>())
        .prop_map(|(s, noise, at, mutate)| {
            if !mutate {
                return s;
            }
            let at = s.char_indices().map(|(i, _)| i).nth(at).unwrap_or(s.len());
            format!("{}{noise}{}", &s[..at], &s[at..])
        })
        .boxed()
}

/// A literal of some CEL type.
fn literal() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        (-3i64..3).prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|u| format!("{u}u")),
        any::<f64>().prop_map(|d| format!("{d:?}")),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("1e308".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        tricky_string().prop_map(|s| format!("{s:?}")),
        "\\PC{0,8}".prop_map(|s| format!("'{}'", s.replace(['\'', '\\'], ""))),
        tricky_string().prop_map(|s| format!("timestamp({s:?})")),
        tricky_string().prop_map(|s| format!("duration({s:?})")),
        Just("optional.none()".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
    ]
    .boxed()
}

/// Expressions from a grammar of the supported subset (and some of what it
/// does not support), well-typed or not.
fn expression() -> BoxedStrategy<String> {
    let names = names();
    let leaf = prop_oneof![3 => literal(), 4 => proptest::sample::select(names)];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let binary = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in"];
        let methods0 = ["size", "trim", "upperAscii", "lowerAscii", "reverse", "hasValue", "value", "join", "getHours"];
        let methods1 = [
            "contains",
            "startsWith",
            "endsWith",
            "matches",
            "charAt",
            "indexOf",
            "lastIndexOf",
            "split",
            "substring",
            "join",
            "format",
            "orValue",
            "or",
            "getFullYear",
            "getMonth",
            "getDate",
            "getDayOfMonth",
            "getDayOfWeek",
            "getDayOfYear",
            "getMinutes",
            "getSeconds",
            "getMilliseconds",
        ];
        let methods2 = ["replace", "indexOf", "lastIndexOf", "split", "substring"];
        let functions1 = [
            "size",
            "int",
            "uint",
            "double",
            "string",
            "timestamp",
            "duration",
            "bool",
            "dyn",
            "has",
            "type",
            "optional.of",
            "optional.ofNonZeroValue",
            "strings.quote",
            "math.greatest",
            "math.least",
        ];
        let macros = ["all", "exists", "exists_one", "map", "filter"];
        prop_oneof![
            (inner.clone(), proptest::sample::select(binary.to_vec()), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, t, f)| format!("({c} ? {t} : {f})")),
            (inner.clone(), proptest::sample::select(methods0.to_vec())).prop_map(|(r, m)| format!("{r}.{m}()")),
            (inner.clone(), proptest::sample::select(methods1.to_vec()), inner.clone())
                .prop_map(|(r, m, a)| format!("{r}.{m}({a})")),
            (inner.clone(), proptest::sample::select(methods2.to_vec()), inner.clone(), inner.clone())
                .prop_map(|(r, m, a, b)| format!("{r}.{m}({a}, {b})")),
            (proptest::sample::select(functions1.to_vec()), inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("math.greatest({a}, {b})")),
            (inner.clone(), proptest::sample::select(macros.to_vec()), inner.clone())
                .prop_map(|(r, m, p)| format!("{r}.{m}(x, {p})")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(r, p, f)| format!("{r}.map(y, {p}, {f})")),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(", "))),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(|entries| {
                let entries: Vec<String> = entries.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", entries.join(", "))
            }),
            (inner.clone(), inner.clone()).prop_map(|(c, k)| format!("{c}[{k}]")),
            (inner.clone(), inner.clone()).prop_map(|(c, k)| format!("{c}[?{k}]")),
            (inner.clone(), "[a-z_]{1,8}").prop_map(|(c, f)| format!("{c}.?{f}")),
            (inner.clone(), "[a-z_]{1,8}").prop_map(|(c, f)| format!("{c}.{f}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("cel.bind(x, {a}, {b})")),
            (inner.clone(), tricky_string()).prop_map(|(t, z)| format!("{t}.getHours({z:?})")),
            (tricky_string(), proptest::collection::vec(inner, 0..3))
                .prop_map(|(f, args)| format!("{f:?}.format([{}])", args.join(", "))),
        ]
    })
    .boxed()
}

/// The static types the typed grammar builds expressions of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Time,
    Dur,
    IntList,
    StrList,
    StrIntMap,
    OptInt,
}

const TYPES: [Ty; 11] = [
    Ty::Bool,
    Ty::Int,
    Ty::Uint,
    Ty::Double,
    Ty::Str,
    Ty::Time,
    Ty::Dur,
    Ty::IntList,
    Ty::StrList,
    Ty::StrIntMap,
    Ty::OptInt,
];

/// The event fields of one schema type.
fn fields_of(ty: FieldType) -> Vec<String> {
    EVENT_FIELDS.iter().filter(|f| f.ty == ty).map(|f| format!("event.{}", f.path)).collect()
}

/// Expressions of type `ty` with nothing below them.
fn typed_leaf(ty: Ty) -> BoxedStrategy<String> {
    // A field of the type, or where the schema has none, a literal of it.
    let pick = |mut names: Vec<String>| {
        if names.is_empty() {
            let literal = match ty {
                Ty::Bool => "false",
                Ty::Uint => "0u",
                Ty::Double => "0.0",
                Ty::Str => "''",
                Ty::Time => "timestamp(0)",
                _ => "0",
            };
            names.push(literal.to_string());
        }
        proptest::sample::select(names).boxed()
    };
    let string_literal = tricky_string().prop_map(|s| format!("{s:?}")).boxed();
    match ty {
        Ty::Bool => prop_oneof![
            Just("true".to_string()),
            pick(fields_of(FieldType::Bool)),
            pick(EVENT_FIELDS.iter().map(|f| format!("has(event.{})", f.path)).collect()),
            Just("'vip' in labels.user".to_string()),
        ]
        .boxed(),
        Ty::Int => prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            (-3i64..5).prop_map(|i| i.to_string()),
            pick(fields_of(FieldType::Int)),
            Just("features.bids".to_string()),
        ]
        .boxed(),
        Ty::Uint => prop_oneof![any::<u64>().prop_map(|u| format!("{u}u")), pick(fields_of(FieldType::Uint))].boxed(),
        Ty::Double => prop_oneof![
            any::<f64>().prop_map(|d| format!("{d:?}")),
            Just("double('NaN')".to_string()),
            pick(fields_of(FieldType::Double)),
            Just("features.spend".to_string()),
        ]
        .boxed(),
        Ty::Str => {
            prop_oneof![string_literal, pick(fields_of(FieldType::String)), Just("event.kind".to_string())].boxed()
        }
        Ty::Time => prop_oneof![
            pick(fields_of(FieldType::Timestamp)),
            Just("features.first_seen".to_string()),
            Just("timestamp('2026-11-20T19:04:05Z')".to_string()),
        ]
        .boxed(),
        Ty::Dur => prop_oneof![Just("features.since_last".to_string()), Just("duration('1h30m')".to_string())].boxed(),
        Ty::IntList => prop_oneof![Just("[1, 2, 3]".to_string()), Just("[]".to_string())].boxed(),
        Ty::StrList => prop_oneof![Just("['a', 'é', '']".to_string()), Just("lists.words".to_string())].boxed(),
        Ty::StrIntMap => Just("{'a': 1, 'é': 2}".to_string()).boxed(),
        Ty::OptInt => prop_oneof![Just("optional.of(1)".to_string()), Just("optional.none()".to_string())].boxed(),
    }
}

/// Fills `template`'s `{T}` holes (`{I}` int, `{S}` string, …) with
/// expressions from `sub`.
fn fill(template: &'static str, sub: &HashMap<Ty, BoxedStrategy<String>>) -> BoxedStrategy<String> {
    const HOLES: [(&str, Ty); 11] = [
        ("{B}", Ty::Bool),
        ("{I}", Ty::Int),
        ("{U}", Ty::Uint),
        ("{D}", Ty::Double),
        ("{S}", Ty::Str),
        ("{T}", Ty::Time),
        ("{P}", Ty::Dur),
        ("{L}", Ty::IntList),
        ("{SL}", Ty::StrList),
        ("{M}", Ty::StrIntMap),
        ("{O}", Ty::OptInt),
    ];
    // (start, length, type) of each hole, in order.
    let mut holes: Vec<(usize, usize, Ty)> = HOLES
        .iter()
        .flat_map(|(hole, ty)| template.match_indices(hole).map(move |(at, h)| (at, h.len(), *ty)))
        .collect();
    holes.sort_by_key(|(at, ..)| *at);
    let parts: Vec<BoxedStrategy<String>> = holes.iter().map(|(_, _, ty)| sub[ty].clone()).collect();
    parts
        .prop_map(move |values| {
            let mut out = String::new();
            let mut done = 0;
            for ((at, len, _), value) in holes.iter().zip(values) {
                out.push_str(&template[done..*at]);
                out.push_str(&value);
                done = at + len;
            }
            out.push_str(&template[done..]);
            out
        })
        .boxed()
}

/// How `ty` is built from smaller expressions: templates with typed holes.
fn templates(ty: Ty) -> &'static [&'static str] {
    match ty {
        Ty::Bool => &[
            "({I} < {I})",
            "({S} == {S})",
            "({D} >= {I})",
            "({T} < {T})",
            "({P} > {P})",
            "({U} == {I})",
            "({B} && {B})",
            "({B} || {B})",
            "!{B}",
            "{S}.contains({S})",
            "{S}.startsWith({S})",
            "{S}.matches('^[a-z]+$')",
            "({I} in {L})",
            "({S} in {M})",
            "({S} in lists.words)",
            "lists.words.exists(w, {S}.contains(w))",
            "{L}.exists(x, x > {I})",
            "{L}.all(x, x != {I})",
            "{L}.exists_one(x, x == {I})",
            "{O}.hasValue()",
            "{M}.exists(k, k == {S})",
            "({L} == {L})",
            "({M} != {M})",
            "({B} ? {B} : {B})",
            "(event.kind == {S})",
        ],
        Ty::Int => &[
            "({I} + {I})",
            "({I} - {I})",
            "({I} * {I})",
            "({I} / {I})",
            "({I} % {I})",
            "size({S})",
            "size({L})",
            "size({M})",
            "{S}.indexOf({S})",
            "{S}.lastIndexOf({S}, {I})",
            "int({D})",
            "int({S})",
            "int({T})",
            "int({U})",
            "{T}.getHours({S})",
            "{T}.getDayOfWeek('Europe/Paris')",
            "{T}.getFullYear('-09:30')",
            "{P}.getMinutes()",
            "({B} ? {I} : {I})",
            "{L}[{I}]",
            "{M}[{S}]",
            "{O}.orValue({I})",
            "math.greatest({I}, {I})",
            "math.least({L})",
            "cel.bind(v, {I}, v * {I})",
            "{O}.value()",
        ],
        Ty::Uint => &["({U} + {U})", "({U} / {U})", "({U} % {U})", "uint({I})", "uint({D})", "uint({S})"],
        Ty::Double => &["({D} * {D})", "({D} / {D})", "({D} - {D})", "double({I})", "double({S})", "-{D}"],
        Ty::Str => &[
            "({S} + {S})",
            "{S}.trim()",
            "{S}.upperAscii()",
            "{S}.lowerAscii()",
            "{S}.substring({I}, {I})",
            "{S}.substring({I})",
            "{S}.replace({S}, {S})",
            "{S}.replace({S}, {S}, {I})",
            "{S}.charAt({I})",
            "string({I})",
            "string({D})",
            "string({T})",
            "string({P})",
            "string({U})",
            "{SL}.join({S})",
            "'%s-%d'.format([{S}, {I}])",
            "'%.3f %e %x'.format([{D}, {D}, {S}])",
            "{S}.format([{D}, {I}])",
            "({B} ? {S} : {S})",
            "{SL}[{I}]",
            "strings.quote({S})",
            "{S}.reverse()",
        ],
        Ty::Time => &["({T} + {P})", "({T} - {P})", "timestamp({I})", "timestamp({S})"],
        Ty::Dur => &["({T} - {T})", "({P} + {P})", "duration({S})", "-{P}"],
        Ty::IntList => &[
            "[{I}, {I}]",
            "{L}.map(x, x * {I})",
            "{L}.filter(x, x > {I})",
            "({L} + {L})",
            "{L}.map(x, x > {I}, x - 1)",
            "{M}.map(k, size(k))",
            "{SL}.map(s, size(s))",
        ],
        Ty::StrList => {
            &["[{S}, {S}]", "{S}.split({S})", "{S}.split({S}, {I})", "{SL}.filter(x, x != {S})", "{M}.map(k, k)"]
        }
        Ty::StrIntMap => &["{{S}: {I}, 'k': {I}}", "{'a': {I}}"],
        Ty::OptInt => &["{M}[?{S}]", "optional.of({I})", "{L}[?{I}]", "{O}.or({O})", "{M}.?k"],
    }
}

/// Well-typed expressions of every type, up to `depth` levels deep.
fn typed(depth: usize) -> HashMap<Ty, BoxedStrategy<String>> {
    let mut level: HashMap<Ty, BoxedStrategy<String>> = TYPES.iter().map(|t| (*t, typed_leaf(*t))).collect();
    for _ in 0..depth {
        let below = level.clone();
        level = TYPES
            .iter()
            .map(|t| {
                let built: Vec<BoxedStrategy<String>> = templates(*t).iter().map(|tpl| fill(tpl, &below)).collect();
                let composed = proptest::strategy::Union::new(built).boxed();
                (*t, prop_oneof![1 => below[t].clone(), 3 => composed].boxed())
            })
            .collect();
    }
    level
}

/// An edit to an expression's text.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Duplicate(usize, usize),
    Cut(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let chars = prop_oneof![
        proptest::sample::select(vec![
            '(', ')', '[', ']', '{', '}', '.', '?', ',', ':', '\'', '"', '\\', 'é', '\0', '\u{FFFF}', ' '
        ]),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), chars).prop_map(|(at, c)| Edit::Insert(at, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 1usize..12).prop_map(|(at, len)| Edit::Duplicate(at, len)),
        any::<usize>().prop_map(Edit::Cut),
    ]
}

/// `text` with `edits` applied at character positions.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let len = chars.len().max(1);
        match *e {
            Edit::Insert(at, c) => chars.insert(at % (chars.len() + 1), c),
            Edit::Delete(at) if !chars.is_empty() => {
                chars.remove(at % len);
            }
            Edit::Duplicate(at, n) if !chars.is_empty() => {
                let start = at % len;
                let piece: Vec<char> = chars[start..(start + n).min(chars.len())].to_vec();
                chars.splice(start..start, piece);
            }
            Edit::Cut(at) => chars.truncate(at % (chars.len() + 1)),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// One input: the expression's text.
fn input() -> impl Strategy<Value = String> {
    let typed = typed(3);
    let well_typed = proptest::strategy::Union::new(vec![
        typed[&Ty::Bool].clone(),
        typed[&Ty::Bool].clone(),
        typed[&Ty::Int].clone(),
        typed[&Ty::Str].clone(),
        typed[&Ty::Time].clone(),
        typed[&Ty::IntList].clone(),
        typed[&Ty::OptInt].clone(),
    ])
    .boxed();
    // Deep nesting and long chains, closed or not.
    let pieces = vec!["(", "[", "{1: ", "1 + ", "event.", "!", "-", "[1].map(x, ", "{'a': 1}.?a.", "x[", "true && "];
    let deep = (proptest::sample::select(pieces), 0usize..3000, any::<bool>()).prop_map(|(piece, n, close)| {
        let mut text = piece.repeat(n);
        text.push('1');
        if close {
            let closing: String = piece
                .chars()
                .rev()
                .filter_map(|c| match c {
                    '(' => Some(')'),
                    '[' => Some(']'),
                    '{' => Some('}'),
                    _ => None,
                })
                .collect();
            text.push_str(&closing.repeat(n));
        }
        text
    });
    prop_oneof![
        1 => deep,
        1 => any::<String>(),
        1 => "\\PC{0,60}",
        2 => expression(),
        2 => (expression(), proptest::collection::vec(edit(), 1..4)).prop_map(|(e, edits)| mutate(&e, &edits)),
        6 => well_typed.clone(),
        2 => (well_typed, proptest::collection::vec(edit(), 1..3)).prop_map(|(e, edits)| mutate(&e, &edits)),
    ]
}

/// The raw material of one event's field values.
#[derive(Debug, Clone)]
struct Seed {
    int: i64,
    double: f64,
    text: String,
    set: bool,
}

fn seed() -> impl Strategy<Value = Seed> {
    let int = prop_oneof![any::<i64>(), -2i64..3, Just(i64::MIN), Just(i64::MAX)];
    let double = prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(1e300)];
    let text = prop_oneof![tricky_string(), "\\PC{0,12}", Just("bid_placed".to_string())];
    (int, double, text, any::<bool>()).prop_map(|(int, double, text, set)| Seed { int, double, text, set })
}

/// An event whose every slot reads a value of its schema type made from
/// the slot's seed; features are missing (null) when their seed says so.
struct FuzzEvent {
    seeds: Vec<Seed>,
    features: Vec<(String, Type)>,
}

impl FuzzEvent {
    fn seed(&self, slot: u32) -> &Seed {
        &self.seeds[slot as usize % self.seeds.len()]
    }
}

impl<'a> Activation<'a> for &'a FuzzEvent {
    fn field(&self, slot: u32) -> Value<'a> {
        let s = self.seed(slot);
        let text = || Value::Str(Cow::Borrowed(s.text.as_str()));
        if slot == KIND_SLOT {
            return text();
        }
        if let Some(def) = EVENT_FIELDS.get(slot as usize) {
            return match def.ty {
                FieldType::Bool => Value::Bool(s.set),
                FieldType::Int => Value::Int(s.int),
                FieldType::Uint => Value::Uint(s.int as u64),
                FieldType::Double => Value::Double(s.double),
                FieldType::String => text(),
                FieldType::Timestamp => Value::Timestamp(i128::from(s.int)),
                FieldType::Message => Value::Null,
            };
        }
        let feature = slot.checked_sub(FEATURE_SLOT_BASE).and_then(|f| self.features.get(f as usize));
        match feature.map(|(_, t)| t) {
            _ if !s.set => Value::Null,
            Some(Type::Int) => Value::Int(s.int),
            Some(Type::Double) => Value::Double(s.double),
            Some(Type::Timestamp) => Value::Timestamp(i128::from(s.int.saturating_mul(1_000_000))),
            Some(Type::Duration) => Value::Duration(s.int),
            _ => Value::Null,
        }
    }

    fn has(&self, slot: u32) -> bool {
        self.seed(slot).set
    }

    fn has_label(&self, _entity: u32, label: &str) -> bool {
        label.len().is_multiple_of(2)
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn compiling_and_evaluating_never_panics() {
    let cases = env_number("GAVEL_FUZZ_CASES").unwrap_or(256).max(1) as u32;
    let deadline = env_number("GAVEL_FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let verbose = std::env::var_os("GAVEL_FUZZ_VERBOSE").is_some();
    let kinds: Vec<EventKind> = EventKind::ALL.to_vec();
    let features = features();
    let words = StringList::new("words", vec!["gift card".into(), "wire".into(), "é".into()]).unwrap();
    let lists = vec![Arc::new(words)];
    let (ran, compiled, evaluated) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let started = Instant::now();
    // Batches, so a time budget can stop the run between them.
    let batch = 256u32;
    while ran.get() < u64::from(cases) && deadline.is_none_or(|d| Instant::now() < d) {
        let n = batch.min(cases - ran.get() as u32);
        let config = Config { cases: n, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        let strategy = (input(), proptest::collection::vec(seed(), 1..6), proptest::collection::vec(seed(), 1..4));
        let result = runner.run(&strategy, |(source, events, more)| {
            ran.set(ran.get() + 1);
            let plan = match compile_expression(&source, &kinds, &features, &lists) {
                Ok(plan) => plan,
                Err(errors) => {
                    if verbose {
                        println!("rejected `{source}`: {}", errors[0].message);
                    }
                    return Ok(());
                }
            };
            compiled.set(compiled.get() + 1);
            let _ = plan.warnings();
            for seeds in [events, more] {
                let event = FuzzEvent { seeds, features: features.clone() };
                let _ = plan.eval(&&event);
                evaluated.set(evaluated.get() + 1);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
    println!(
        "expression fuzz: {} inputs, {} compiled, {} evaluations, in {:.1}s",
        ran.get(),
        compiled.get(),
        evaluated.get(),
        started.elapsed().as_secs_f64()
    );
    assert!(ran.get() > 0);
}
