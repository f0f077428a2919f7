//! The pack compiler never panics, whatever text it is given: arbitrary
//! text as a pack file, and the shipped pack (`rules/`) with one of its
//! files mutated — lines deleted, duplicated, swapped, moved between
//! files, re-indented; characters deleted, replaced and inserted
//! (non-ASCII, NUL, YAML and CEL punctuation) — compiled as a whole.
//! Bad rule files are normal input: every outcome is `Ok` or a list of
//! diagnostics, each placed inside its file.
//!
//! Cases come from `GAVEL_FUZZ_CASES` (default 200, so a plain `cargo
//! test` stays quick): that many arbitrary texts, and one in four as many
//! mutated packs (each compiles the whole shipped pack, some 15 ms in
//! release mode, where a text takes well under one); `GAVEL_FUZZ_SECONDS`,
//! if set, stops each property earlier once that much time has passed.
//! `scripts/test` runs a bounded longer pass in release mode. Each property prints how many inputs it ran (see
//! it with `--nocapture`). A failure is shrunk to a small input and
//! printed; add it as a case to `tests/diagnostics.rs` once fixed.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gavel_rules::{Pack, RulesError};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

fn cases() -> u32 {
    std::env::var("GAVEL_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(200)
}

/// How long each property may run, if bounded.
fn time_limit() -> Option<Duration> {
    std::env::var("GAVEL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).map(Duration::from_secs_f64)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, max_shrink_iters: 2_000, failure_persistence: None, ..ProptestConfig::default() }
}

/// The shipped pack's files (one level of subdirectories), sorted.
fn shipped() -> Vec<(String, String)> {
    fn read(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("rules/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                read(&path, out);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                out.push((path.display().to_string(), text));
            }
        }
    }
    let mut files = Vec::new();
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"), &mut files);
    files.sort();
    files
}

/// Compiles `files` and checks the outcome is well formed: every
/// diagnostic names one of the files (or the pack) and a place that
/// exists in it.
fn compile_checked(files: &[(String, String)]) {
    let diagnostics = match Pack::compile(files.iter().map(|(n, t)| (n.as_str(), t.as_str()))) {
        Ok(pack) => pack.warnings,
        Err(RulesError::Invalid(diagnostics)) => {
            assert!(!diagnostics.is_empty(), "an invalid pack lists at least one error");
            diagnostics
        }
    };
    for d in diagnostics {
        if d.line == 0 {
            continue;
        }
        let (_, text) = files.iter().find(|(n, _)| *n == d.file).unwrap_or_else(|| panic!("{d}: no such file"));
        // Line 1 of an empty file, or the line after the last one (an error
        // at the end of the input), are places too.
        let lines = text.lines().count().max(1) + 1;
        assert!(d.line <= lines, "{d}: the file has {lines} lines");
        assert!(gavel_rules::byte_span(text, d.line, d.column, d.len).is_some() || d.line == lines, "{d}");
    }
}

/// One change to a file. Indices are taken modulo what they index.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Replaces a line with one from another file of the pack.
    LineFromElsewhere(usize, usize, usize),
    Indent(usize, u8),
    Dedent(usize),
    DeleteChars(usize, u8),
    ReplaceChar(usize, char),
    InsertChar(usize, char),
}

fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        any::<char>(),
        prop::sample::select(vec![
            'é', 'ß', '😀', '\u{0}', '\u{feff}', '\u{2028}', '\t', '\r', '\n', ' ', ':', '-', '#', '{', '}', '[', ']',
            ',', '"', '\'', '|', '>', '&', '*', '!', '%', '@', '`', '\\', '.', '(', ')', '+', '0', '9', 'z',
        ]),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(a, f, b)| Mutation::LineFromElsewhere(a, f, b)),
        (any::<usize>(), 1u8..8).prop_map(|(a, n)| Mutation::Indent(a, n)),
        any::<usize>().prop_map(Mutation::Dedent),
        (any::<usize>(), 1u8..40).prop_map(|(a, n)| Mutation::DeleteChars(a, n)),
        (any::<usize>(), interesting_char()).prop_map(|(a, c)| Mutation::ReplaceChar(a, c)),
        (any::<usize>(), interesting_char()).prop_map(|(a, c)| Mutation::InsertChar(a, c)),
    ]
}

/// Applies `m` to `text`; `files` is the whole pack, for lines from elsewhere.
fn apply(text: &str, m: &Mutation, files: &[(String, String)]) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let n = lines.len();
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *m {
        Mutation::DeleteLine(i) => {
            lines.remove(at(i, n));
        }
        Mutation::DuplicateLine(i) => {
            let line = lines[at(i, n)].clone();
            lines.insert(at(i, n), line);
        }
        Mutation::SwapLines(a, b) => lines.swap(at(a, n), at(b, n)),
        Mutation::LineFromElsewhere(a, f, b) => {
            let other: Vec<&str> = files[at(f, files.len())].1.split('\n').collect();
            lines[at(a, n)] = other[at(b, other.len())].to_string();
        }
        Mutation::Indent(i, k) => {
            let i = at(i, n);
            lines[i] = format!("{}{}", " ".repeat(usize::from(k)), lines[i]);
        }
        Mutation::Dedent(i) => {
            let i = at(i, n);
            lines[i] = lines[i].trim_start().to_string();
        }
        Mutation::DeleteChars(i, k) => {
            let start = at(i, chars.len());
            let end = (start + usize::from(k)).min(chars.len());
            return chars[..start].iter().chain(&chars[end..]).collect();
        }
        Mutation::ReplaceChar(i, c) => {
            let mut chars = chars;
            if !chars.is_empty() {
                let i = at(i, chars.len());
                chars[i] = c;
            }
            return chars.into_iter().collect();
        }
        Mutation::InsertChar(i, c) => {
            let mut chars = chars;
            let i = at(i, chars.len() + 1);
            chars.insert(i, c);
            return chars.into_iter().collect();
        }
    }
    lines.join("\n")
}

/// Text that looks a little like a pack: YAML and CEL punctuation, keys,
/// names and non-ASCII, in arbitrary order.
fn packish_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "version: ",
            "rules:\n",
            "  - id: ",
            "    when: ",
            "    on: [",
            "features:\n",
            "    window: ",
            "decisions:\n",
            "  review: ",
            "tests:\n",
            "    steps:\n",
            "      - event: {",
            "    score: ",
            ">-\n      ",
            "|\n  ",
            "\n",
            "  ",
            "event.",
            "features.",
            "labels.user",
            "lists.",
            " && ",
            " in ",
            "'",
            "\"",
            "timestamp('",
            "duration('",
            "2026-11-20T19:04:05+0é00",
            "10m",
            "-1",
            "1000",
            "9999999999999999999",
            "bid_placed",
            "count",
            "since",
        ])
        .prop_map(str::to_string),
        "[a-z_é😀0-9 .:'\"(){}\\[\\],|>&=!<-]{1,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

/// Runs `test` on `cases` inputs from `strategy`, then prints how many
/// ran; fails (with the smallest failing input proptest finds) on a panic.
fn fuzz<S: Strategy>(what: &str, cases: u32, strategy: S, test: impl Fn(S::Value)) {
    let ran = AtomicUsize::new(0);
    let (start, limit) = (Instant::now(), time_limit());
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&strategy, |input| {
        // Past the time limit the remaining cases are drawn but not run.
        if limit.is_none_or(|l| start.elapsed() < l) {
            ran.fetch_add(1, Ordering::Relaxed);
            test(input);
        }
        Ok(())
    });
    println!("pack_fuzz: {} {what} compiled without a panic", ran.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
}

#[test]
fn arbitrary_text_never_panics() {
    let text = prop_oneof![3 => packish_text(), 1 => any::<String>()];
    fuzz("arbitrary texts", cases(), text, |text| compile_checked(&[("pack.yaml".to_string(), text)]));
}

#[test]
fn mutated_shipped_pack_never_panics() {
    let pristine = shipped();
    compile_checked(&pristine);
    let strategy = (any::<usize>(), prop::collection::vec(mutation(), 1..6));
    fuzz("mutated shipped packs", (cases() / 4).max(1), strategy, |(file, mutations)| {
        let mut files = pristine.clone();
        let f = file % files.len();
        let mut text = files[f].1.clone();
        for m in &mutations {
            text = apply(&text, m, &files);
        }
        files[f].1 = text;
        compile_checked(&files);
    });
}
