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

criterion_group!(benches, decoding, pipeline);
criterion_main!(benches);
