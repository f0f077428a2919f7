//! `gavel test`: runs a pack's rule tests (inline `tests:` and
//! `tests/*.yaml`) and prints one line per test, failures beneath.

use std::path::Path;

use gavel_engine::testing::{TestReport, run_tests};
use gavel_rules::RulesError;

use crate::tools::pack::PackFiles;

/// Runs the rule tests of the pack in `dir`; returns the printed table and
/// whether every test passed. A pack that does not compile fails with its
/// diagnostics.
pub fn test_pack(dir: &Path) -> anyhow::Result<(String, bool)> {
    let files = PackFiles::read(dir)?;
    let pack = files.compile().map_err(|RulesError::Invalid(d)| crate::error::bad_input(files.render(&d)))?;
    let reports = run_tests(&pack);
    Ok((table(&reports), reports.iter().all(TestReport::passed)))
}

fn table(reports: &[TestReport]) -> String {
    let mut out = String::new();
    let width = reports.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    out.push_str(&format!("{:<6} {:<width$}  {:>6}  place\n", "result", "test", "events"));
    for r in reports {
        let result = if r.passed() { "ok" } else { "FAIL" };
        out.push_str(&format!("{result:<6} {:<width$}  {:>6}  {}\n", r.name, r.events, r.place));
        for failure in &r.failures {
            out.push_str(&format!("         - {failure}\n"));
        }
    }
    let failed = reports.iter().filter(|r| !r.passed()).count();
    out.push_str(&format!("\n{} passed, {failed} failed\n", reports.len() - failed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_pack_tests_pass() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let (table, ok) = test_pack(&dir).unwrap();
        assert!(ok, "{table}");
        assert!(table.contains(" passed, 0 failed"), "{table}");
    }
}
