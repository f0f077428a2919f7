//! Differential tests: gavel's compiled plans against the `cel` crate's
//! interpreter, the reference, on generated well-typed expressions over the
//! subset gavel supports. Both must agree on the value, or both must fail.

use std::borrow::Cow;
use std::sync::Arc;

use gavel_rules::expr::{Activation, Env, Resolved, Type, Value, compile};
use proptest::prelude::*;

/// Variables: x int, y double, u uint, s string, b bool.
#[derive(Debug)]
struct Vars {
    x: i64,
    y: f64,
    u: u64,
    s: String,
    b: bool,
}

struct VarEnv;

impl Env for VarEnv {
    fn resolve(&self, segments: &[&str]) -> Result<Resolved, String> {
        let (slot, ty) = match segments {
            ["x"] => (0, Type::Int),
            ["y"] => (1, Type::Double),
            ["u"] => (2, Type::Uint),
            ["s"] => (3, Type::String),
            ["b"] => (4, Type::Bool),
            _ => return Err(format!("unknown name {}", segments.join("."))),
        };
        Ok(Resolved::Field { slot, ty })
    }
}

impl<'a> Activation<'a> for &'a Vars {
    fn field(&self, slot: u32) -> Value<'a> {
        match slot {
            0 => Value::Int(self.x),
            1 => Value::Double(self.y),
            2 => Value::Uint(self.u),
            3 => Value::Str(Cow::Borrowed(&self.s)),
            _ => Value::Bool(self.b),
        }
    }
    fn has(&self, _slot: u32) -> bool {
        true
    }
}

fn leaf_int() -> BoxedStrategy<String> {
    prop_oneof![
        (-20i64..20).prop_map(|i| i.to_string()),
        Just("x".to_string()),
        Just("9223372036854775807".to_string()),
    ]
    .boxed()
}

fn int_expr() -> impl Strategy<Value = String> {
    leaf_int().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/", "%"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            (bool_leaf(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
            Just("size(s)".to_string()),
            double_leaf().prop_map(|d| format!("int({d})")),
        ]
    })
}

fn double_leaf() -> BoxedStrategy<String> {
    prop_oneof![
        (-100i32..100, 0u8..4).prop_map(|(i, f)| format!("{i}.{}", f * 25)),
        Just("y".to_string()),
        Just("double(x)".to_string()),
    ]
    .boxed()
}

fn double_expr() -> impl Strategy<Value = String> {
    double_leaf().prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("-({a})")),
        ]
    })
}

fn uint_expr() -> impl Strategy<Value = String> {
    prop_oneof![(0u64..50).prop_map(|u| format!("{u}u")), Just("u".to_string())].prop_recursive(3, 12, 2, |inner| {
        (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/", "%"]), inner)
            .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
    })
}

fn string_expr() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["'abc'", "'Venmo me'", "''", "'héllo'", "'ab'"]).prop_map(str::to_string),
        Just("s".to_string()),
    ]
    .prop_recursive(2, 8, 2, |inner| (inner.clone(), inner).prop_map(|(a, b)| format!("({a} + {b})")))
}

fn bool_leaf() -> BoxedStrategy<String> {
    prop_oneof![Just("true".to_string()), Just("false".to_string()), Just("b".to_string())].boxed()
}

fn bool_expr() -> impl Strategy<Value = String> {
    let cmp = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
    prop_oneof![
        bool_leaf(),
        (int_expr(), cmp.clone(), int_expr()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        (double_expr(), cmp.clone(), double_expr()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        (uint_expr(), cmp.clone(), uint_expr()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        (string_expr(), cmp, string_expr()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        (string_expr(), prop::sample::select(vec!["contains", "startsWith", "endsWith"]), string_expr())
            .prop_map(|(a, f, b)| format!("{a}.{f}({b})")),
        string_expr().prop_map(|a| format!("{a}.matches('^[a-v]+')")),
        int_expr().prop_map(|a| format!("({a} in [1, 2, 3, x])")),
        string_expr().prop_map(|a| format!("({a} in ['abc', 'ab', s])")),
        int_expr().prop_map(|a| format!("[1, 5, x].exists(i, i > {a})")),
        int_expr().prop_map(|a| format!("[1, 5, x].all(i, i != {a})")),
    ]
    .prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(vec!["&&", "||"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone(), inner).prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
}

fn any_expr() -> impl Strategy<Value = String> {
    prop_oneof![4 => bool_expr(), 2 => int_expr(), 1 => double_expr(), 1 => uint_expr(), 1 => string_expr()]
}

fn vars() -> impl Strategy<Value = Vars> {
    (
        -5i64..5,
        prop::sample::select(vec![0.0, 1.5, -2.25, 1e300]),
        0u64..4,
        prop::sample::select(vec!["abc", "", "Venmo", "zz top"]),
        any::<bool>(),
    )
        .prop_map(|(x, y, u, s, b)| Vars { x, y, u, s: s.to_string(), b })
}

/// The reference result, in gavel's terms; `None` for an error.
fn reference(source: &str, vars: &Vars) -> Option<Value<'static>> {
    reference_result(source, vars).ok()
}

/// The reference result, or its error message.
fn reference_result(source: &str, vars: &Vars) -> Result<Value<'static>, String> {
    let program = cel::Program::compile(source).map_err(|e| e.to_string())?;
    let mut context = cel::Context::default();
    context.add_variable_from_value("x", vars.x);
    context.add_variable_from_value("y", vars.y);
    context.add_variable_from_value("u", vars.u);
    context.add_variable_from_value("s", vars.s.clone());
    context.add_variable_from_value("b", vars.b);
    match program.execute(&context).map_err(|e| format!("{e:?}"))? {
        cel::Value::Int(i) => Ok(Value::Int(i)),
        cel::Value::UInt(u) => Ok(Value::Uint(u)),
        cel::Value::Float(f) => Ok(Value::Double(f)),
        cel::Value::Bool(b) => Ok(Value::Bool(b)),
        cel::Value::String(s) => Ok(Value::Str(Cow::Owned(s.to_string()))),
        other => panic!("reference returned an unexpected value {other:?} for {source}"),
    }
}

fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => (x.is_nan() && y.is_nan()) || x == y,
        _ => a == b,
    }
}

proptest! {
    // A fixed seed keeps CI deterministic; set PROPTEST_RNG_SEED to explore
    // others. (Random seeds also find the known NaN divergence below when
    // another error on the other side of `&&`/`||` masks it.)
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            ProptestConfig::default().rng_seed
        } else {
            proptest::test_runner::RngSeed::Fixed(20_261_122)
        },
        ..ProptestConfig::default()
    })]

    #[test]
    fn compiled_plans_agree_with_the_reference_interpreter(source in any_expr(), vars in vars()) {
        let plan = compile(&source, &VarEnv);
        let plan = match plan {
            Ok(plan) => plan,
            Err(errors) => {
                // Constant subexpressions that always fail are rejected at
                // compile time; the reference must fail on them too.
                prop_assert!(errors.iter().all(|e| e.message.contains("always fails")), "{source}: {errors:?}");
                prop_assert!(reference(&source, &vars).is_none(), "{source}: reference succeeded, gavel rejected it");
                return Ok(());
            }
        };
        let ours = plan.eval(&&vars).ok().map(Value::into_static);
        let theirs = reference_result(&source, &vars);
        // Known divergence: the reference fails ordering comparisons with a
        // NaN operand (NoSuchOverload); CEL defines them as false, as gavel does.
        prop_assume!(!matches!(&theirs, Err(e) if e.contains("NoSuchOverload") && e.contains("double")));
        // The same divergence, masked: with NaN on one side of `&&`/`||` and
        // another error on the other, CEL's commutative logic lets gavel's
        // `false` decide while the reference reports the other error.
        // (NaN comes only from a double division.)
        prop_assume!(!(ours.is_some() && theirs.is_err() && source.contains(" / ") && source.contains('.')));
        let theirs = theirs.ok();
        match (&ours, &theirs) {
            (Some(a), Some(b)) => prop_assert!(same(a, b), "{source}: gavel {a:?}, reference {b:?}"),
            (None, None) => {}
            _ => prop_assert!(false, "{source}: gavel {ours:?}, reference {theirs:?}"),
        }
    }
}

#[test]
fn named_lists_use_sets_and_automata() {
    let list = Arc::new(gavel_rules::expr::StringList::new("pay_apps", vec!["venmo".into(), "zelle".into()]).unwrap());
    struct ListEnv(Arc<gavel_rules::expr::StringList>);
    impl Env for ListEnv {
        fn resolve(&self, segments: &[&str]) -> Result<Resolved, String> {
            match segments {
                ["lists", "pay_apps"] => Ok(Resolved::List(Arc::clone(&self.0))),
                ["s"] => Ok(Resolved::Field { slot: 3, ty: Type::String }),
                _ => Err("unknown".into()),
            }
        }
    }
    let env = ListEnv(list);
    let vars = Vars { x: 0, y: 0.0, u: 0, s: "DM me on VENMO".into(), b: false };
    let scan = compile("lists.pay_apps.exists(k, s.lowerAscii().contains(k))", &env).unwrap();
    assert_eq!(scan.eval(&&vars).unwrap(), Value::Bool(true));
    let member = compile("s in lists.pay_apps", &env).unwrap();
    assert_eq!(member.eval(&&vars).unwrap(), Value::Bool(false));
    let size = compile("size(lists.pay_apps)", &env).unwrap();
    assert_eq!(size.constant(), Some(&Value::Int(2)));
}
