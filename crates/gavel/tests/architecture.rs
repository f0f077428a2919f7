//! ARCHITECTURE.md's invariants, checked against the source tree so that
//! a change that breaks one fails here, not in review:
//!
//! - the core crates do no I/O, spawn no threads, run no async code and
//!   never read the wall clock (their non-test code names none of the
//!   APIs for it);
//! - dependencies between gavel's crates point one way, as the table in
//!   ARCHITECTURE.md says;
//! - the binary reads the wall clock only in `clock.rs`, and records
//!   metrics only through `telemetry/`;
//! - every source file opens with a `//!` line saying what it is for.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code outside its unit tests: everything before the first
/// `#[cfg(test)]`, where every crate here keeps its tests module.
fn non_test_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end].to_string()
}

fn files_of(crate_dir: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&workspace().join(crate_dir).join("src"), &mut files);
    assert!(!files.is_empty(), "no sources in {crate_dir}");
    files
}

#[test]
fn the_core_crates_do_no_io_spawn_nothing_and_never_read_the_clock() {
    const FORBIDDEN: &[&str] = &[
        "std::fs",
        "std::net",
        "std::thread",
        "std::process",
        "std::io::stdin",
        "std::io::stdout",
        "std::env",
        "tokio",
        "async fn",
        ".await",
        "SystemTime",
        "Instant::now",
        "println!",
        "eprintln!",
    ];
    let mut found = Vec::new();
    for krate in ["crates/gavel-model", "crates/gavel-rules", "crates/gavel-velocity", "crates/gavel-engine"] {
        for file in files_of(krate) {
            let code = non_test_code(&file);
            for (n, line) in code.lines().enumerate() {
                let line = line.split("//").next().unwrap_or("");
                for api in FORBIDDEN {
                    if line.contains(api) {
                        found.push(format!("{}:{}: {api}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "the core must stay pure:\n{}", found.join("\n"));
}

fn gavel_dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join(manifest)).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let mut deps: Vec<String> = table
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().filter(|k| k.starts_with("gavel")).cloned().collect())
        .unwrap_or_default();
    deps.sort();
    deps
}

#[test]
fn dependencies_point_one_way() {
    let allowed: &[(&str, &[&str])] = &[
        ("crates/gavel-model", &[]),
        ("crates/gavel-velocity", &["gavel-model"]),
        ("crates/gavel-rules", &["gavel-model"]),
        ("crates/gavel-engine", &["gavel-model", "gavel-rules", "gavel-velocity"]),
        ("crates/gavel-kafka", &["gavel-model"]),
        ("crates/gavel-recording", &["gavel-model"]),
        ("crates/gavel-sim", &["gavel-model", "gavel-recording"]),
        ("crates/gavel-testkit", &[]),
    ];
    let mut members = Vec::new();
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.path().join("Cargo.toml").is_file() && name != "gavel" {
            members.push(format!("crates/{name}"));
        }
    }
    for member in &members {
        let Some((_, may)) = allowed.iter().find(|(c, _)| c == member) else {
            panic!("{member} is not in ARCHITECTURE.md's dependency table (add it there and here)");
        };
        for dep in gavel_dependencies(&format!("{member}/Cargo.toml")) {
            assert!(may.contains(&dep.as_str()), "{member} must not depend on {dep}");
        }
    }
}

#[test]
fn the_binary_reads_the_clock_in_one_place_and_names_metrics_in_one_room() {
    let root = workspace().join("crates/gavel/src");
    let mut clock = Vec::new();
    let mut metrics = Vec::new();
    for file in files_of("crates/gavel") {
        let relative = file.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        let code = non_test_code(&file);
        if relative != "clock.rs" && code.contains("SystemTime::now") {
            clock.push(relative.clone());
        }
        let records = ["counter!(", "gauge!(", "histogram!("].iter().any(|m| code.contains(m));
        if !relative.starts_with("telemetry/") && records {
            metrics.push(relative);
        }
    }
    assert!(clock.is_empty(), "read the wall clock through crate::clock: {clock:?}");
    assert!(metrics.is_empty(), "record metrics through crate::telemetry: {metrics:?}");
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let mut files = Vec::new();
    for dir in ["crates", "benches"] {
        rust_files(&workspace().join(dir), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "target"))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` opening line:\n{}", missing.join("\n"));
}
