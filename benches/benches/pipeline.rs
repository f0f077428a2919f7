//! Criterion benchmarks of the in-process pipeline: decode (protobuf and
//! JSON), engine evaluation with the shipped pack, and the whole
//! decode → evaluate → encode path per event, over a simulated mix.
//!
//! Run: `cargo bench -p gavel-benches --bench pipeline`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gavel_benches::{encoded_events, shipped_pack};
use gavel_engine::Engine;
use gavel_model::{Encoding, decode, encode_protobuf};
use std::hint::black_box;

const EVENTS: usize = 50_000;

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let events = encoded_events(EVENTS, encoding);
        group.throughput(Throughput::Elements(EVENTS as u64));
        group.bench_function(encoding.as_str(), |b| {
            b.iter(|| {
                for bytes in &events {
                    black_box(decode(encoding, bytes).ok());
                }
            })
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let events = encoded_events(EVENTS, Encoding::Protobuf);
    let engine = Engine::new(shipped_pack());
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("decode_evaluate_encode/protobuf", |b| {
        b.iter(|| {
            for bytes in &events {
                let event = decode(Encoding::Protobuf, bytes).expect("simulated events decode");
                let outcome = engine.evaluate(&event, None, 0).expect("simulated events evaluate");
                if let Some(signal) = outcome.signal {
                    black_box(encode_protobuf(&signal));
                }
            }
        })
    });
    let decoded: Vec<_> = events.iter().map(|b| decode(Encoding::Protobuf, b).unwrap()).collect();
    group.bench_function("evaluate", |b| {
        b.iter(|| {
            for event in &decoded {
                black_box(engine.evaluate(event, None, 0).ok());
            }
        })
    });
    group.finish();
}

fn rules(c: &mut Criterion) {
    let files = gavel_benches::synthetic_pack_files(1_000);
    let mut group = c.benchmark_group("rules");
    group.sample_size(10);
    group.bench_function("compile_1000_rule_pack", |b| {
        b.iter(|| gavel_rules::Pack::compile(files.iter().map(|(n, t)| (n.as_str(), t.as_str()))).expect("compiles"))
    });
    group.finish();

    // Evaluation cost per rule: each shipped rule's condition alone, on the
    // events of its kinds, features pre-warmed by a first pass.
    let events: Vec<_> = encoded_events(EVENTS, Encoding::Protobuf)
        .iter()
        .map(|b| decode(Encoding::Protobuf, b).expect("simulated events decode"))
        .collect();
    let mut group = c.benchmark_group("per_event");
    group.throughput(Throughput::Elements(EVENTS as u64));
    let engine = Engine::new(shipped_pack());
    for event in &events {
        engine.warm(event, None).expect("simulated events warm");
    }
    group.bench_function("shipped_pack_evaluate_after_warm_up", |b| {
        b.iter(|| {
            for event in &events {
                black_box(engine.evaluate(event, None, 0).ok());
            }
        })
    });
    // The same with no rules: the difference, divided by the rules an event
    // meets on average (printed below), is the cost of one rule.
    let mut features_only = shipped_pack();
    features_only.rules.clear();
    let bare = Engine::new(features_only);
    for event in &events {
        bare.warm(event, None).expect("simulated events warm");
    }
    group.bench_function("shipped_features_only_after_warm_up", |b| {
        b.iter(|| {
            for event in &events {
                black_box(bare.evaluate(event, None, 0).ok());
            }
        })
    });
    group.finish();
    let pack = shipped_pack();
    let rules_met: usize = events
        .iter()
        .map(|e| {
            let kind = e.kind().expect("simulated events have a kind");
            pack.rules.iter().filter(|r| r.on.contains(&kind)).count()
        })
        .sum();
    println!(
        "shipped pack: {} rules, {} features; an event of this mix meets {:.2} rules and feeds {:.2} features on average",
        pack.rules.len(),
        pack.features.len(),
        rules_met as f64 / events.len() as f64,
        events
            .iter()
            .map(|e| {
                let kind = e.kind().expect("simulated events have a kind");
                pack.features.iter().filter(|f| f.on.contains(&kind)).count()
            })
            .sum::<usize>() as f64
            / events.len() as f64
    );
}

criterion_group!(benches, decoding, pipeline, rules);
criterion_main!(benches);
