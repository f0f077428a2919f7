//! Criterion benchmarks of the in-process pipeline: decode (protobuf and
//! JSON), engine evaluation with the shipped pack, the whole decode →
//! evaluate → encode path per event over a simulated mix, rule-pack
//! compilation, then per event kind (decode in both encodings, evaluate)
//! and encode per output type, and the chat text normal forms against
//! `lowerAscii` on the simulated chat.
//!
//! Every timed pass starts from a fresh engine (built, and where stated
//! warmed, outside the timing), so velocity windows hold what a live stream
//! would and rule hit rates stay those of the simulated traffic.
//!
//! Run: `cargo bench -p gavel-benches --bench pipeline`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gavel_benches::{encoded_events, shipped_pack};
use gavel_engine::Engine;
use gavel_model::{Encoding, Event, decode, encode_protobuf};
use gavel_rules::Pack;
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
    let pack = shipped_pack();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("decode_evaluate_encode/protobuf", |b| {
        b.iter_batched(
            || Engine::new(pack.clone()),
            |engine| {
                for bytes in &events {
                    let event = decode(Encoding::Protobuf, bytes).expect("simulated events decode");
                    let outcome = engine.evaluate(&event, None, 0).expect("simulated events evaluate");
                    if let Some(signal) = outcome.signal() {
                        black_box(encode_protobuf(signal));
                    }
                    for action in &outcome.actions {
                        black_box(encode_protobuf(action));
                    }
                }
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Times `evaluate` over the second half of `events` on an engine for
/// `pack` warmed with the first half.
fn warmed_evaluation(b: &mut criterion::Bencher<'_>, pack: &Pack, events: &[Event]) {
    let (warm, timed) = events.split_at(events.len() / 2);
    b.iter_batched(
        || {
            let engine = Engine::new(pack.clone());
            for event in warm {
                engine.warm(event, None).expect("simulated events warm");
            }
            engine
        },
        |engine| {
            for event in timed {
                black_box(engine.evaluate(event, None, 0).ok());
            }
            engine
        },
        BatchSize::PerIteration,
    )
}

fn rules(c: &mut Criterion) {
    let files = gavel_benches::synthetic_pack_files(1_000);
    let mut group = c.benchmark_group("rules");
    group.sample_size(10);
    group.bench_function("compile_1000_rule_pack", |b| {
        b.iter(|| Pack::compile(files.iter().map(|(n, t)| (n.as_str(), t.as_str()))).expect("compiles"))
    });
    group.finish();

    // Evaluation per event after warm-up, with the shipped pack and with its
    // features only: the difference, divided by the rules an event meets on
    // average (printed below), is the cost of one rule.
    let events: Vec<Event> = encoded_events(2 * EVENTS, Encoding::Protobuf)
        .iter()
        .map(|b| decode(Encoding::Protobuf, b).expect("simulated events decode"))
        .collect();
    let pack = shipped_pack();
    let mut features_only = pack.clone();
    features_only.rules.clear();
    let mut group = c.benchmark_group("per_event");
    group.throughput(Throughput::Elements(EVENTS as u64));
    // With GAVEL_BENCH_BASELINE_RULES=<pack dir> (e.g. an older commit's
    // `rules/`), that pack is measured in the same run, alternating, for a
    // before/after ratio.
    let baseline = std::env::var_os("GAVEL_BENCH_BASELINE_RULES")
        .map(|dir| gavel::tools::pack::load(std::path::Path::new(&dir)).expect("the baseline pack compiles"));
    for round in 0..if baseline.is_some() { 2 } else { 1 } {
        let suffix = if baseline.is_some() { format!("/round{round}") } else { String::new() };
        if let Some(baseline) = &baseline {
            group.bench_function(format!("baseline_pack_after_warm_up{suffix}"), |b| {
                warmed_evaluation(b, baseline, &events)
            });
        }
        group.bench_function(format!("shipped_pack_after_warm_up{suffix}"), |b| warmed_evaluation(b, &pack, &events));
    }
    group.bench_function("shipped_features_only_after_warm_up", |b| warmed_evaluation(b, &features_only, &events));
    group.finish();

    let timed = &events[EVENTS..];
    let per_event =
        |count: &dyn Fn(&Event) -> usize| timed.iter().map(count).sum::<usize>() as f64 / timed.len() as f64;
    let kind = |e: &Event| e.kind().expect("simulated events have a kind");
    println!(
        "shipped pack: {} rules, {} features; an event of this mix meets {:.2} rules and feeds {:.2} features on average",
        pack.rules.len(),
        pack.features.len(),
        per_event(&|e| pack.rules.iter().filter(|r| r.on.contains(&kind(e))).count()),
        per_event(&|e| pack.features.iter().filter(|f| f.on.contains(&kind(e))).count()),
    );
}

/// Per event kind: decode (both encodings) and evaluate on an engine warmed
/// with the mix, then encode of each output type. Short measurements: one
/// row per kind is the point, not the last percent.
fn per_kind(c: &mut Criterion) {
    let events: Vec<Event> = encoded_events(2 * EVENTS, Encoding::Protobuf)
        .iter()
        .map(|b| decode(Encoding::Protobuf, b).expect("simulated events decode"))
        .collect();
    let (warm, timed) = events.split_at(EVENTS);
    let warm = &warm[EVENTS - 10_000..];
    let pack = shipped_pack();
    let mut kinds: Vec<gavel_model::EventKind> = timed.iter().filter_map(Event::kind).collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    let mut group = c.benchmark_group("kind");
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    for kind in kinds {
        let mine: Vec<&Event> = timed.iter().filter(|e| e.kind() == Some(kind)).take(2_000).collect();
        let protobuf: Vec<Vec<u8>> = mine.iter().map(|e| encode_protobuf(*e)).collect();
        let json: Vec<Vec<u8>> = mine.iter().map(|e| gavel_model::encode_json(*e).expect("encodes")).collect();
        group.throughput(Throughput::Elements(mine.len() as u64));
        group.bench_function(format!("decode_protobuf/{}", kind.as_str()), |b| {
            b.iter(|| protobuf.iter().for_each(|p| drop(black_box(decode(Encoding::Protobuf, p)))))
        });
        group.bench_function(format!("decode_json/{}", kind.as_str()), |b| {
            b.iter(|| json.iter().for_each(|p| drop(black_box(decode(Encoding::Json, p)))))
        });
        group.bench_function(format!("evaluate/{}", kind.as_str()), |b| {
            b.iter_batched(
                || {
                    let engine = Engine::new(pack.clone());
                    warm.iter().for_each(|e| drop(engine.warm(e, None)));
                    engine
                },
                |engine| {
                    for event in &mine {
                        black_box(engine.evaluate(event, None, 0).ok());
                    }
                    engine
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();

    // Encode of each output type, over what the mix produces.
    let engine = Engine::new(pack);
    let outcomes: Vec<(Event, gavel_engine::Outcome)> =
        events.iter().filter_map(|e| engine.evaluate(e, None, 0).ok().map(|o| (e.clone(), o))).collect();
    let signals: Vec<_> = outcomes.iter().filter_map(|(_, o)| o.signal().cloned()).collect();
    let actions: Vec<_> = outcomes.iter().flat_map(|(_, o)| o.actions.clone()).collect();
    let verdicts: Vec<_> = outcomes.iter().take(10_000).map(|(e, o)| engine.verdict(e, o, 0)).collect();
    let mut group = c.benchmark_group("encode");
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    group.throughput(Throughput::Elements(signals.len() as u64));
    group.bench_function("signal", |b| b.iter(|| signals.iter().for_each(|s| drop(black_box(encode_protobuf(s))))));
    group.throughput(Throughput::Elements(actions.len() as u64));
    group.bench_function("action", |b| b.iter(|| actions.iter().for_each(|a| drop(black_box(encode_protobuf(a))))));
    group.throughput(Throughput::Elements(verdicts.len() as u64));
    group.bench_function("verdict", |b| b.iter(|| verdicts.iter().for_each(|v| drop(black_box(encode_protobuf(v))))));
    group.finish();
}

/// `folded()`, `numerals()` and `skeleton()` beside `lowerAscii()` on the
/// simulated chat messages (mostly ASCII, with emoji and a few spelled or
/// non-ASCII ones), per message.
fn text_forms(c: &mut Criterion) {
    use gavel_model::pb::event::Payload;
    use gavel_rules::expr::text;
    let texts: Vec<String> = encoded_events(EVENTS * 4, Encoding::Protobuf)
        .iter()
        .filter_map(|b| match decode(Encoding::Protobuf, b).expect("simulated events decode").payload {
            Some(Payload::ChatMessageSent(m)) => Some(m.text),
            _ => None,
        })
        .take(5_000)
        .collect();
    let mut group = c.benchmark_group("text");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("lower_ascii", |b| {
        b.iter(|| texts.iter().for_each(|t| drop(black_box(t.to_ascii_lowercase()))))
    });
    group.bench_function("folded", |b| b.iter(|| texts.iter().for_each(|t| drop(black_box(text::folded(t))))));
    group.bench_function("numerals", |b| b.iter(|| texts.iter().for_each(|t| drop(black_box(text::numerals(t))))));
    group.bench_function("skeleton", |b| b.iter(|| texts.iter().for_each(|t| drop(black_box(text::skeleton(t))))));
    group.finish();
}

/// The benchmarks, in a private module: `criterion_group!` writes an
/// undocumented public function.
mod group {
    use super::*;
    criterion_group!(benches, decoding, pipeline, rules, per_kind, text_forms);
}
criterion_main!(group::benches);
