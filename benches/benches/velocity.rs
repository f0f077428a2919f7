//! The velocity store: updates per second (one thread, two in parallel),
//! eviction cost per key, and memory per active key checked two ways.
//!
//! Throughput runs under criterion. Memory is a table printed once at the
//! end: each case runs in a fresh child process (this binary, re-run with
//! `GAVEL_VELOCITY_MEM_CASE` set) so that its resident-set growth, read from
//! `/proc/self/statm`, is not muddied by an earlier case's freed memory, and
//! is set against the store's own `bytes()` estimate. The memory table is
//! skipped in `--test` and `--list` runs.

use std::fmt::Write as _;
use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput};
use gavel_velocity::{Aggregate, Input, Window, WindowConfig};

/// Distinct keys the throughput benches draw from.
const KEYS: usize = 100_000;
/// Events per iteration of a throughput bench (per thread).
const BATCH: usize = 100_000;
const WINDOW_MS: u64 = 60_000;
const CHILD_ENV: &str = "GAVEL_VELOCITY_MEM_CASE";

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

/// A cheap deterministic stream of key indices.
fn picks(n: usize, seed: u64) -> Vec<u32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) % KEYS as u64) as u32
        })
        .collect()
}

/// Records `picks` into `w`, one millisecond apart from `t0`; returns the
/// last answer so nothing is optimised away.
fn feed(w: &Window, keys: &[String], picks: &[u32], t0: i64, input: impl Fn(usize) -> Input<'static>) -> Option<f64> {
    let mut last = None;
    for (i, &k) in picks.iter().enumerate() {
        last = w.record(&keys[k as usize], t0 + i as i64, input(i)).ok().flatten();
    }
    last
}

/// What each event of a throughput case brings.
type InputOf = fn(usize) -> Input<'static>;

const ITEMS: [&str; 8] = ["card-0", "card-1", "card-2", "card-3", "card-4", "card-5", "card-6", "card-7"];

fn record(c: &mut Criterion) {
    let keys = keys(KEYS);
    let picks_a = picks(BATCH, 1);
    let picks_b = picks(BATCH, 2);
    let mut group = c.benchmark_group("velocity/record");

    group.throughput(Throughput::Elements(BATCH as u64));
    let cases: [(Aggregate, InputOf); 3] = [
        (Aggregate::Count, |_| Input::None),
        (Aggregate::Sum, |i| Input::Number((i % 100) as f64)),
        (Aggregate::Distinct, |i| Input::Item(ITEMS[i % ITEMS.len()])),
    ];
    for (aggregate, input) in cases {
        let w = Window::new(aggregate, WINDOW_MS).expect("valid window");
        let mut t0 = 0;
        group.bench_function(format!("{aggregate}/1-thread"), |b| {
            b.iter(|| {
                t0 += BATCH as i64;
                black_box(feed(&w, &keys, &picks_a, t0, input))
            })
        });
    }

    // Two threads on one window: drawing from the same keys, and from
    // disjoint halves (as when partitions are keyed by the same entity).
    group.throughput(Throughput::Elements(2 * BATCH as u64));
    let half = |picks: &[u32], upper: bool| -> Vec<u32> {
        picks.iter().map(|&k| k % (KEYS as u32 / 2) + if upper { KEYS as u32 / 2 } else { 0 }).collect()
    };
    let disjoint = (half(&picks_a, false), half(&picks_b, true));
    for (name, a, b) in [("shared", &picks_a, &picks_b), ("disjoint", &disjoint.0, &disjoint.1)] {
        let w = Window::new(Aggregate::Count, WINDOW_MS).expect("valid window");
        let mut t0 = 0;
        group.bench_function(format!("count/2-threads-{name}-keys"), |bench| {
            bench.iter(|| {
                t0 += BATCH as i64;
                std::thread::scope(|s| {
                    let ta = s.spawn(|| feed(&w, &keys, a, t0, |_| Input::None));
                    let tb = s.spawn(|| feed(&w, &keys, b, t0, |_| Input::None));
                    black_box((ta.join().ok(), tb.join().ok()))
                })
            })
        });
    }

    // New keys arriving at a full capped window: every record evicts
    // (amortised: a sixteenth of a shard at a time).
    group.throughput(Throughput::Elements(BATCH as u64));
    let capped =
        Window::with_config(WindowConfig::new(Aggregate::Count, WINDOW_MS).max_keys(KEYS / 10)).expect("valid window");
    let mut t0 = 0;
    group.bench_function("count/1-thread-capped-new-keys", |b| {
        b.iter(|| {
            t0 += BATCH as i64;
            let picks: Vec<u32> = (0..BATCH as u32).collect();
            black_box(feed(&capped, &keys, &picks, t0, |_| Input::None))
        })
    });
    group.finish();
}

fn evict(c: &mut Criterion) {
    let keys = keys(KEYS);
    let mut group = c.benchmark_group("velocity/evict_idle");
    group.throughput(Throughput::Elements(KEYS as u64));
    let filled = || {
        let w = Window::new(Aggregate::Count, WINDOW_MS).expect("valid window");
        for (i, k) in keys.iter().enumerate() {
            let _ = w.record(k, i as i64, Input::None);
        }
        w
    };
    group.bench_function("drop-every-key", |b| {
        b.iter_batched(filled, |w| black_box(w.evict_idle(10 * WINDOW_MS as i64)), BatchSize::LargeInput)
    });
    let w = filled();
    group.bench_function("keep-every-key", |b| b.iter(|| black_box(w.evict_idle(KEYS as i64))));
    group.finish();
}

/// Resident set size of this process in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// One memory case, run in a child: `aggregate:keys:buckets_per_key`.
/// Prints `bytes_estimate rss_delta fill_ms`.
fn child(case: &str) {
    let mut parts = case.split(':');
    let (Some(aggregate), Some(Ok(n)), Some(Ok(buckets))) = (
        parts.next().and_then(Aggregate::from_name),
        parts.next().map(str::parse::<usize>),
        parts.next().map(str::parse::<i64>),
    ) else {
        eprintln!("bad case {case:?}");
        std::process::exit(2);
    };
    let before = rss();
    let start = Instant::now();
    let w = Window::new(aggregate, WINDOW_MS).expect("valid window");
    let bucket_ms = w.bucket_ms() as i64;
    let mut key = String::new();
    for b in 0..buckets {
        for i in 0..n {
            key.clear();
            let _ = write!(key, "user-{i}");
            let input = match aggregate.input() {
                gavel_velocity::InputKind::None => Input::None,
                gavel_velocity::InputKind::Number => Input::Number(i as f64),
                gavel_velocity::InputKind::Item => Input::Item(ITEMS[i % ITEMS.len()]),
            };
            let _ = w.record(&key, b * bucket_ms, input);
        }
    }
    let fill_ms = start.elapsed().as_millis();
    let after = rss();
    println!("{} {} {}", w.bytes(), after.saturating_sub(before), fill_ms);
    black_box(&w);
}

fn mem_available() -> usize {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn memory_table() {
    let Ok(exe) = std::env::current_exe() else {
        println!("memory: cannot find this executable to re-run");
        return;
    };
    println!();
    println!("velocity memory per active key (window {WINDOW_MS} ms, 60 buckets, keys `user-N`)");
    println!(
        "{:<10} {:>11} {:>13} {:>14} {:>14} {:>14} {:>10}",
        "aggregate", "keys", "buckets/key", "bytes()/key", "RSS Δ/key", "bytes() total", "fill s"
    );
    let cases: &[(&str, usize, i64)] = &[
        ("count", 1_000_000, 1),
        ("count", 1_000_000, 4),
        ("count", 1_000_000, 60),
        ("sum", 1_000_000, 1),
        ("sum", 1_000_000, 60),
        ("avg", 1_000_000, 1),
        ("distinct", 1_000_000, 1),
        ("count", 10_000_000, 1),
    ];
    for &(aggregate, n, buckets) in cases {
        // Leave room for the table's growth spike and the parent.
        let need = n * 600;
        if mem_available() < need {
            println!("{aggregate:<10} {n:>11} {buckets:>13}  skipped: needs ~{} MiB free", need >> 20);
            continue;
        }
        let out = Command::new(&exe).env(CHILD_ENV, format!("{aggregate}:{n}:{buckets}")).output();
        let line = out.as_ref().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        let nums: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if let [bytes, rss, ms] = nums[..] {
            println!(
                "{aggregate:<10} {n:>11} {buckets:>13} {:>14.1} {:>14.1} {:>14} {:>10.1}",
                bytes / n as f64,
                rss / n as f64,
                bytes as u64,
                ms / 1000.0
            );
        } else {
            println!("{aggregate:<10} {n:>11} {buckets:>13}  failed: {out:?}");
        }
    }
}

fn main() {
    if let Ok(case) = std::env::var(CHILD_ENV) {
        child(&case);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    record(&mut c);
    evict(&mut c);
    c.final_summary();
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--test" || a == "--list") {
        memory_table();
    }
}
