//! Unit tests of the expression compiler and evaluator against a small
//! event-like environment: the CEL that compiles now, its values and
//! errors as cel-go gives them, and the warnings.

use std::borrow::Cow;

use super::*;

/// `event.kind`, a few typed fields, a message with a nested message, and
/// a feature, in slots 0 to 9.
struct TestEnv;

const FIELDS: &[(&str, u32, Type)] = &[
    ("event.kind", 0, Type::String),
    ("event.user_id", 1, Type::String),
    ("event.amount", 2, Type::Int),
    ("event.count", 3, Type::Uint),
    ("event.score", 4, Type::Double),
    ("event.at", 5, Type::Timestamp),
    ("event.payment_attempted", 6, Type::Message),
    ("event.payment_attempted.card", 7, Type::Message),
    ("event.payment_attempted.card.last4", 8, Type::String),
    ("features.since", 9, Type::Duration),
    ("event.zone", 10, Type::String),
];

impl Env for TestEnv {
    fn resolve(&self, segments: &[&str]) -> Result<Resolved, String> {
        let name = segments.join(".");
        if let Some((_, slot, ty)) = FIELDS.iter().find(|(n, ..)| *n == name) {
            return Ok(Resolved::Field { slot: *slot, ty: ty.clone() });
        }
        if FIELDS.iter().any(|(n, ..)| n.starts_with(&format!("{name}."))) {
            return Ok(Resolved::Namespace);
        }
        Err(format!("unknown name `{name}`"))
    }

    fn known_values(&self, segments: &[&str]) -> Option<Vec<String>> {
        (segments == ["event", "kind"]).then(|| vec!["bid_placed".into(), "payment_attempted".into()])
    }

    fn feature(&self, segments: &[&str]) -> Option<(u32, Type)> {
        (segments == ["features", "devices"]).then(|| (3, Type::List(Box::new(Type::String))))
    }
}

/// A payment attempt with a card, for user `u1`, amount 500.
struct Event {
    card: bool,
}

impl<'a> Activation<'a> for Event {
    fn field(&self, slot: u32) -> Value<'a> {
        match slot {
            0 => Value::Str(Cow::Borrowed("payment_attempted")),
            1 => Value::Str(Cow::Borrowed("u1")),
            2 => Value::Int(500),
            3 => Value::Uint(7),
            4 => Value::Double(0.5),
            // 2009-02-13T23:31:30Z.
            5 => Value::Timestamp(1_234_567_890_000_000_000),
            8 => Value::Str(Cow::Borrowed(if self.card { "4242" } else { "" })),
            9 => Value::Duration(90_000_000_000),
            10 => Value::Str(Cow::Borrowed("Asia/Tokyo")),
            _ => Value::Null,
        }
    }
    fn has(&self, slot: u32) -> bool {
        match slot {
            7 | 8 => self.card,
            _ => true,
        }
    }
    /// Feature 3 (`features.devices`) of key `s1` holds two devices; any
    /// other key has none.
    fn feature_at(&self, feature: u32, key: &str) -> Value<'a> {
        match (feature, key) {
            (3, "s1") => Value::List(vec![Value::Str(Cow::Borrowed("d1")), Value::Str(Cow::Borrowed("d2"))]),
            (3, _) => Value::List(Vec::new()),
            _ => Value::Null,
        }
    }
}

fn plan(source: &str) -> Plan {
    compile(source, &TestEnv).unwrap_or_else(|e| panic!("`{source}` does not compile: {e:?}"))
}

fn eval(source: &str) -> Result<Value<'static>, EvalError> {
    let plan = plan(source);
    let event = Event { card: true };
    plan.eval(&event).map(Value::into_static)
}

fn value(source: &str) -> Value<'static> {
    eval(source).unwrap_or_else(|e| panic!("`{source}` failed: {e}"))
}

fn json(source: &str) -> String {
    value(source).to_json_string()
}

fn is_true(source: &str) {
    assert_eq!(value(source), Value::Bool(true), "{source}");
}

fn compile_error(source: &str) -> String {
    match compile(source, &TestEnv) {
        Ok(_) => panic!("`{source}` compiles"),
        Err(errors) => errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; "),
    }
}

#[test]
fn message_fields_are_never_null() {
    for (source, always) in [
        ("event.payment_attempted.card != null", true),
        ("event.payment_attempted.card == null", false),
        ("null == event.payment_attempted", false),
    ] {
        let plan = plan(source);
        assert_eq!(plan.constant(), Some(&Value::Bool(always)), "{source}");
        let [warning] = plan.warnings() else { panic!("{source}: {:?}", plan.warnings()) };
        assert_eq!(warning.code, "W004");
        assert!(warning.message.contains(&format!("always {always}")), "{}", warning.message);
        assert!(warning.message.contains("has(event.payment_attempted"), "{}", warning.message);
        assert_eq!((warning.start, warning.end), (0, source.len()), "{source}");
    }
    // Either way the card is set or not, the folded answer is CEL's.
    let plan = plan("event.payment_attempted.card != null && has(event.payment_attempted.card)");
    assert_eq!(plan.eval(&Event { card: true }), Ok(Value::Bool(true)));
    assert_eq!(plan.eval(&Event { card: false }), Ok(Value::Bool(false)));
    assert!(compile_error("event.payment_attempted.card == event.payment_attempted.card").contains("has("));
    assert!(compile_error("[event.payment_attempted]").contains("message"));
}

#[test]
fn unset_scalars_read_their_default_and_has_tests_presence() {
    let plan = plan("event.payment_attempted.card.last4 == '' && !has(event.payment_attempted.card.last4)");
    assert_eq!(plan.eval(&Event { card: false }), Ok(Value::Bool(true)));
    assert!(plan.warnings().is_empty());
}

#[test]
fn unknown_kinds_are_warned_about() {
    let plan = plan("event.kind == 'bid_place'");
    let [warning] = plan.warnings() else { panic!("{:?}", plan.warnings()) };
    assert_eq!(warning.code, "W003");
    assert_eq!(warning.message, "no event kind `bid_place`; did you mean `bid_placed`?");
    let plan = super::compile("event.kind in ['bid_placed', 'refund']", &TestEnv).unwrap();
    assert_eq!(plan.warnings().len(), 1);
    assert!(plan.warnings()[0].message.contains("expected bid_placed, payment_attempted"));
    assert!(super::compile("'payment_attempted' == event.kind", &TestEnv).unwrap().warnings().is_empty());
}

#[test]
fn other_constant_comparisons_are_warned_about() {
    for (source, always) in
        [("event.count >= 0u", true), ("size(event.user_id) < 0", false), ("0 > size(event.user_id)", false)]
    {
        let plan = plan(source);
        assert_eq!(plan.constant(), Some(&Value::Bool(always)), "{source}");
        assert_eq!(plan.warnings()[0].code, "W004", "{source}");
    }
    for source in ["0 <= event.amount", "event.amount >= 0", "event.score < 0.0", "0u < event.count"] {
        let plan = plan(source);
        assert!(plan.constant().is_none() && plan.warnings().is_empty(), "{source}");
    }
}

#[test]
fn macros() {
    assert_eq!(json("[1, 2, 3].map(x, x * 2)"), "[2,4,6]");
    assert_eq!(json("[1, 2, 3].map(x, x > 1, x * 10)"), "[20,30]");
    assert_eq!(json("[1, 2, 3, 4].filter(x, x % 2 == 0)"), "[2,4]");
    assert_eq!(json("{'a': 1, 'b': 2}.map(k, k + k)"), r#"["aa","bb"]"#);
    is_true("[1, 2, 3].exists_one(x, x == 2)");
    is_true("![1, 2, 2].exists_one(x, x == 2)");
    is_true("{'a': 1}.all(k, k == 'a')");
    is_true("[event.amount, 2].map(x, x + 1) == [501, 3]");
    is_true("[[1, 2], [3]].map(l, l.map(x, x * 2)) == [[2, 4], [6]]");
    is_true("['a', 'b'].filter(x, x == event.user_id).size() == 0");
    assert!(matches!(eval("[2, event.amount - 500].map(x, 4 / x)"), Err(EvalError::DivisionByZero)));
    assert!(matches!(eval("[event.amount - 500, 2].exists_one(x, 4 / x == 2)"), Err(EvalError::DivisionByZero)));
    // The element that fails does not matter when another one decides.
    is_true("[event.amount - 500, 2].exists(x, 4 / x == 2)");
    // A constant comprehension folds.
    assert_eq!(plan("[1, 2, 3].filter(x, x > 1)").constant(), Some(&Value::List(vec![Value::Int(2), Value::Int(3)])));
}

#[test]
fn lists_and_maps() {
    assert_eq!(value("[7, 8, 9][1]"), Value::Int(8));
    assert_eq!(value("[7, 8, 9][2u]"), Value::Int(9));
    assert!(matches!(eval("[7, 8, 9][event.amount]"), Err(EvalError::Index(_))));
    assert!(matches!(eval("[7, 8, 9][-1 + event.amount - 500]"), Err(EvalError::Index(_))));
    assert_eq!(value("{'u1': 'gold', 'u2': 'silver'}[event.user_id]"), Value::Str("gold".into()));
    assert!(matches!(eval("{'u2': 1}[event.user_id]"), Err(EvalError::NoSuchKey(_))));
    assert_eq!(value("{1: 'one', 2: 'two'}[1u]"), Value::Str("one".into()));
    is_true("event.user_id in {'u1': 1}");
    is_true("!('u3' in {'u1': 1})");
    is_true("size({'a': 1, 'b': 2}) == 2");
    is_true("{'a': 1, 'b': 2} == {'b': 2, 'a': 1}");
    is_true("{'a': 1}.a == 1");
    is_true("has({'a': 1}.a) && !has({'a': 1}.b)");
    is_true("{'m': {'n': event.amount}}['m']['n'] == 500");
    is_true("[] + [1] == [1]");
    is_true("[1] == [1.0]");
    assert!(matches!(eval("{event.user_id: 1, 'u1': 2}"), Err(EvalError::Invalid(_))));
    // A failing element fails `in`, even after a match (cel-go builds the list first).
    assert!(eval("1 in [1, event.amount / 0]").is_err());
    assert!(compile_error("[1, 'a']").contains("list mixes int and string"));
    assert!(compile_error("{1: 'a', 'b': 'c'}").contains("map mixes int and string keys"));
    assert!(compile_error("[1, 2]['a']").contains("a list index must be a number"));
    assert!(compile_error("[?event.amount]").contains("not supported"));
}

#[test]
fn strings_extension() {
    assert_eq!(value("'hello'.charAt(1)"), Value::Str("e".into()));
    assert_eq!(value("'hello mellow'.indexOf('ello', 2)"), Value::Int(7));
    assert_eq!(value("'hello mellow'.lastIndexOf('ello')"), Value::Int(7));
    assert_eq!(json("'a,b,c'.split(',')"), r#"["a","b","c"]"#);
    assert_eq!(json("'a,b,c'.split(',', 2)"), r#"["a","b,c"]"#);
    assert_eq!(value("'hello hello'.replace('he', 'we', 1)"), Value::Str("wello hello".into()));
    assert_eq!(value("'  \\ttrim\\n '.trim()"), Value::Str("trim".into()));
    assert_eq!(value("'TacoCÆt'.upperAscii()"), Value::Str("TACOCÆT".into()));
    assert_eq!(value("'TacoCÆt'.lowerAscii()"), Value::Str("tacocÆt".into()));
    assert_eq!(value("'tacocat'.substring(4)"), Value::Str("cat".into()));
    assert_eq!(value("['a', 'b'].join('-')"), Value::Str("a-b".into()));
    assert_eq!(value("[].join()"), Value::Str("".into()));
    assert_eq!(value("'abc'.reverse()"), Value::Str("cba".into()));
    assert_eq!(value("strings.quote('a\"b')"), Value::Str("\"a\\\"b\"".into()));
    assert_eq!(
        value("'%s spent %d (%.2f)'.format([event.user_id, event.amount, 5.0])"),
        Value::Str("u1 spent 500 (5.00)".into())
    );
    assert_eq!(value("'%e %x %o %b'.format([2.5, 255, 8, 5])"), Value::Str("2.500000e+00 ff 10 101".into()));
    assert!(matches!(eval("'tacocat'.substring(2, size(event.user_id) - 1)"), Err(EvalError::Invalid(_))));
    assert!(matches!(eval("event.user_id.charAt(3)"), Err(EvalError::Index(_))));
    // A format string that does not fit its arguments is caught at compile time.
    assert!(compile_error("'%d'.format(['a'])").contains("%d cannot format a string"));
    assert!(compile_error("'%s %s'.format(['a'])").contains("2 clause(s) for 1 argument(s)"));
    assert!(compile_error("'%q'.format([1])").contains("unrecognized formatting clause"));
    // Trimming a borrowed string borrows.
    let plan = plan("event.user_id.trim()");
    let event = Event { card: true };
    assert!(matches!(plan.eval(&event), Ok(Value::Str(Cow::Borrowed("u1")))));
}

#[test]
fn timestamp_and_duration_getters() {
    assert_eq!(value("event.at.getFullYear()"), Value::Int(2009));
    assert_eq!(value("event.at.getMonth()"), Value::Int(1));
    assert_eq!(value("event.at.getDate()"), Value::Int(13));
    assert_eq!(value("event.at.getDayOfMonth()"), Value::Int(12));
    assert_eq!(value("event.at.getDayOfWeek()"), Value::Int(5));
    assert_eq!(value("event.at.getDayOfYear()"), Value::Int(43));
    assert_eq!(value("event.at.getHours()"), Value::Int(23));
    assert_eq!(value("event.at.getHours('America/New_York')"), Value::Int(18));
    assert_eq!(value("event.at.getHours('+05:30')"), Value::Int(5));
    assert_eq!(value("event.at.getDate('Australia/Sydney')"), Value::Int(14));
    assert_eq!(value("event.at.getMinutes('Asia/Kathmandu')"), Value::Int(16));
    assert_eq!(value("event.at.getHours(event.zone)"), Value::Int(8));
    assert_eq!(value("event.at.getSeconds()"), Value::Int(30));
    assert_eq!(value("timestamp('2009-02-13T23:31:20.123456789Z').getMilliseconds()"), Value::Int(123));
    assert_eq!(value("features.since.getMinutes()"), Value::Int(1));
    assert_eq!(value("features.since.getSeconds()"), Value::Int(90));
    assert_eq!(value("duration('1h30m').getHours()"), Value::Int(1));
    assert_eq!(value("duration('-90s').getMinutes()"), Value::Int(-1));
    assert!(compile_error("event.at.getHours('Mars/Olympus')").contains("unknown time zone"));
    assert!(compile_error("features.since.getDayOfWeek()").contains("works on a timestamp"));
}

#[test]
fn optionals() {
    assert_eq!(value("event.?payment_attempted.card.last4.orValue('none')"), Value::Str("4242".into()));
    let plan = plan("event.payment_attempted.?card.last4.orValue('none')");
    assert_eq!(plan.eval(&Event { card: false }), Ok(Value::Str("none".into())));
    assert_eq!(plan.eval(&Event { card: true }), Ok(Value::Str("4242".into())));
    is_true("event.?payment_attempted.?card.hasValue()");
    is_true("{'a': 1}[?'b'].orValue(0) == 0");
    is_true("{'a': 1}.?a.value() == 1");
    is_true("{'a': {'b': 2}}.?a.b.orValue(0) == 2");
    is_true("{'a': {'b': 2}}.?x.b.orValue(0) == 0");
    is_true("[1, 2][?5].orValue(9) == 9");
    is_true("!optional.none().hasValue()");
    is_true("optional.of(1).or(optional.of(2)).value() == 1");
    is_true("optional.none().or(optional.of(2)).value() == 2");
    is_true("!optional.ofNonZeroValue('').hasValue()");
    is_true("optional.of(event.amount) == optional.of(500)");
    assert!(matches!(eval("{'a': 1}[?event.user_id].value()"), Err(EvalError::NoValue)));
}

#[test]
fn bind_and_math() {
    is_true("cel.bind(x, event.amount * 2, x + x == 2000)");
    is_true("cel.bind(a, 1, cel.bind(b, a + 1, [a, b].map(x, x * b))) == [2, 4]");
    // An unused failing value does not fail the expression.
    is_true("cel.bind(x, event.amount / 0, true)");
    assert!(eval("cel.bind(x, event.amount / 0, x > 1)").is_err());
    assert_eq!(value("math.greatest(1, event.amount, 3)"), Value::Int(500));
    assert_eq!(value("math.least([3.5, event.score])"), Value::Double(0.5));
    assert_eq!(value("math.greatest(7u)"), Value::Uint(7));
    assert!(matches!(eval("math.greatest([event.amount].filter(x, x > 1000))"), Err(EvalError::Invalid(_))));
    assert!(compile_error("math.greatest(1, 2.5)").contains("numbers of one type"));
}

#[test]
fn sets_and_keyed_feature_reads() {
    is_true("sets.contains([1, 2, 3], [3, 1])");
    is_true("sets.contains([1], [])");
    is_true("!sets.contains([1, 2], [2, 4])");
    is_true("sets.intersects(['a', 'b'], ['c', 'b'])");
    is_true("!sets.intersects(['a'], [])");
    is_true("sets.equivalent([1, 1, 2], [2, 1])");
    is_true("!sets.equivalent([1, 2], [1])");
    // A feature of another key: the seller's devices.
    is_true("'d2' in features.devices.of('s1')");
    is_true("!('d1' in features.devices.of(event.user_id))");
    is_true("size(features.devices.of('s' + '1')) == 2");
    is_true("sets.intersects(features.devices.of('s1'), ['d9', 'd1'])");
    // `of` reads only a feature, with a string key.
    assert!(compile_error("event.user_id.of('s1')").contains("of() reads a feature for another key"));
    assert!(compile_error("features.nothing.of('s1')").contains("of() reads a feature for another key"));
    assert!(compile_error("cel.bind(features, {'devices': []}, features.devices.of('s1')) == []").contains("of()"));
    assert!(compile_error("features.devices.of(event.amount)").contains("a feature's key is a string, not int"));
    assert!(compile_error("sets.contains([1])").contains("sets.contains"));
}

#[test]
fn timestamps_parse_without_panicking() {
    // The input that panicked the hand-written parser.
    assert!(compile_error("timestamp('2026-11-20T19:04:05+0é00') > event.at").contains("invalid timestamp literal"));
    assert!(compile_error("event.at - duration('5 minutes') > event.at").contains("invalid duration literal"));
    struct Text(&'static str);
    impl<'a> Activation<'a> for Text {
        fn field(&self, _slot: u32) -> Value<'a> {
            Value::Str(Cow::Borrowed(self.0))
        }
        fn has(&self, _slot: u32) -> bool {
            true
        }
    }
    let plan = plan("timestamp(event.user_id)");
    for text in ["2026-11-20T19:04:05+0é00", "2026-11-20T19:04:05+é", "é", "2026-11-20T19:04:05.é"] {
        assert!(matches!(plan.eval(&Text(text)), Err(EvalError::Conversion(_))), "{text}");
    }
    assert_eq!(
        value("string(timestamp('0001-01-01T00:00:00Z') + duration('1.5s'))"),
        Value::Str("0001-01-01T00:00:01.5Z".into())
    );
    assert!(matches!(
        eval("timestamp('9999-12-31T23:59:59Z') + duration(string(event.amount) + 's')"),
        Err(EvalError::Range(_))
    ));
}

#[test]
fn conversions_follow_cel_go() {
    assert_eq!(value("string(1e6)"), Value::Str("1e+06".into()));
    assert_eq!(value("string(duration('1h'))"), Value::Str("3600s".into()));
    is_true("bool('TRUE') && !bool('f')");
    assert!(eval("uint('+5' + event.user_id)").is_err());
    assert_eq!(value("dyn(event.amount) == 500u"), Value::Bool(true));
}

#[test]
fn unsupported_constructs_say_so() {
    assert!(compile_error("type(1) == int").contains("type() and type values are not supported"));
    assert!(compile_error("b'x' == b'x'").contains("bytes"));
    assert!(compile_error("{?'a': optional.of(1)}").contains("optional map entries"));
    assert!(compile_error("[1].sortBy(x, x)").contains("unknown function"));
}

#[test]
fn deep_or_long_inputs_do_not_overflow_the_stack() {
    let long = |piece: &str, n: usize| piece.repeat(n);
    for source in [
        long("(", 100_000) + "1",
        long("[", 20_000),
        format!("{}1{}", long("(", 5_000), long(")", 5_000)),
        long("-", 20_000) + "1",
        long("!", 20_000) + "true",
        long("event.", 10_000) + "amount",
        long("1 + ", 10_000) + "1",
        long("true && ", 10_000) + "true",
        long("[1].map(x, ", 2_000) + "x",
        long("{1: ", 20_000) + "1",
    ] {
        // Unary chains fold away (`--1` is `1`); the rest are too deep.
        let compiled = compile(&source, &TestEnv);
        assert!(compiled.is_err() || source.starts_with(['-', '!']), "{}", &source[..40]);
    }
    // As deep as compiles: evaluated on the test thread's own stack.
    let n = 240;
    let deep = long("event.amount + ", n) + "1";
    assert_eq!(value(&deep), Value::Int(n as i64 * 500 + 1));
    let nested = format!("{}event.amount{}", long("(1 + ", 90), long(")", 90));
    assert_eq!(value(&nested), Value::Int(590));
    assert!(compile_error(&(long("event.amount + ", 300) + "1")).contains("more than 250 levels"));
}

#[test]
fn the_pack_environment_knows_the_event_kinds() {
    use gavel_model::EventKind;
    let kinds = [EventKind::BidPlaced];
    let plan = crate::compile_expression("event.kind == 'bid_place'", &kinds, &[], &[]).unwrap();
    let [warning] = plan.warnings() else { panic!("{:?}", plan.warnings()) };
    assert_eq!(
        (warning.code, warning.message.as_str()),
        ("W003", "no event kind `bid_place`; did you mean `bid_placed`?")
    );
    let plan = crate::compile_expression("event.kind == 'payment_attempted'", &kinds, &[], &[]).unwrap();
    assert!(plan.warnings().is_empty());
}

#[test]
fn text_normal_forms_compile_fold_and_evaluate() {
    assert_eq!(plan("'Pay on V 3 N M 0'.folded() == 'pay on venmo'").constant(), Some(&Value::Bool(true)));
    assert_eq!(plan("'five five five 1234'.numerals()").constant(), Some(&Value::Str(Cow::Borrowed("5551234"))));
    assert_eq!(plan("'pаypal'.skeleton() == 'paypal'.skeleton()").constant(), Some(&Value::Bool(true)));
    let plan = plan("event.user_id.folded() == 'ui' && event.user_id.numerals() == 'u1'");
    assert_eq!(plan.eval(&Event { card: false }), Ok(Value::Bool(true)));
    assert!(plan.warnings().is_empty(), "{:?}", plan.warnings());
    assert!(compile_error("event.amount.folded()").contains("works on a string"));
    assert!(compile_error("event.user_id.folded(1)").contains("folded"));
}

#[test]
fn keywords_not_in_the_normal_form_are_warned_about() {
    let source = "event.user_id.folded().contains('Cash App')";
    let plan = plan(source);
    let [warning] = plan.warnings() else { panic!("{:?}", plan.warnings()) };
    assert_eq!(warning.code, "W007");
    assert_eq!(warning.message, "folded() text never contains `Cash App` (write `cash app`)");
    assert_eq!(&source[warning.start..warning.end], "'Cash App'");
    let numerals = super::compile("event.user_id.numerals().contains('555-1234')", &TestEnv).unwrap();
    let [warning] = numerals.warnings() else { panic!("{:?}", numerals.warnings()) };
    assert!(warning.message.contains("write `5551234`"), "{}", warning.message);
    let bound =
        super::compile("cel.bind(t, event.user_id.folded(), t.contains('Pay Me') || t.contains('x'))", &TestEnv)
            .unwrap();
    let [warning] = bound.warnings() else { panic!("{:?}", bound.warnings()) };
    assert!(warning.message.contains("write `pay me`"), "{}", warning.message);
    for fine in [
        "event.user_id.folded().contains('cash app')",
        "event.user_id.contains('Cash App')",
        "cel.bind(t, event.user_id, t.contains('Cash App'))",
        "cel.bind(t, event.user_id.folded(), [1].exists(t, t > 0)) || event.user_id.contains('Cash App')",
    ] {
        assert!(super::compile(fine, &TestEnv).unwrap().warnings().is_empty(), "{fine}");
    }
}
