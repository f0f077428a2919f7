//! `gavel check`: compiles a pack directory and prints a one-line summary,
//! or every diagnostic with file:line:col and a caret under the offending
//! text.

use std::path::Path;

use gavel_rules::{RuleMode, RulesError};

use crate::tools::pack::PackFiles;

/// What `gavel check` found: the summary line for a pack that compiles, or
/// the rendered diagnostics of one that does not.
#[derive(Debug)]
pub enum Checked {
    /// The pack compiles; the line to print.
    Ok(String),
    /// The pack does not compile; rendered diagnostics and a count line.
    Invalid(String),
}

/// Checks the pack in `dir`. Fails only when the directory cannot be read.
pub fn check(dir: &Path) -> anyhow::Result<Checked> {
    let files = PackFiles::read(dir)?;
    Ok(match files.compile() {
        Ok(pack) => {
            let shadow = pack.rules.iter().filter(|r| r.mode == RuleMode::Shadow).count();
            Checked::Ok(format!(
                "ok: pack {} ({}): {} lists, {} features, {} rules ({shadow} in shadow mode)",
                pack.version,
                pack.hash,
                pack.lists.len(),
                pack.features.len(),
                pack.rules.len()
            ))
        }
        Err(RulesError::Invalid(diags)) => {
            Checked::Invalid(format!("{}{} error(s) in {}", files.render(&diags), diags.len(), dir.display()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_pack_checks_and_a_broken_one_lists_its_errors() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let Checked::Ok(line) = check(&dir).unwrap() else { panic!("the shipped pack must check") };
        assert!(line.starts_with("ok: pack "), "{line}");

        let broken = std::env::temp_dir().join(format!("gavel-check-{}", std::process::id()));
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::write(
            broken.join("pack.yaml"),
            "version: x\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: event.nope > 1\n    score: 1\n",
        )
        .unwrap();
        let result = check(&broken).unwrap();
        std::fs::remove_dir_all(&broken).unwrap();
        let Checked::Invalid(text) = result else { panic!("a broken pack must not check") };
        assert!(text.contains("pack.yaml:6:"), "{text}");
        assert!(text.contains("error(s) in"), "{text}");
    }
}
