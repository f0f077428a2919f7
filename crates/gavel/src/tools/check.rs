//! `gavel check`: compiles a pack directory and prints its warnings and a
//! one-line summary, or every diagnostic with file:line:col and a caret
//! under the offending text. Warnings fail the check only when denied
//! (`--deny-warnings`, for CI).

use std::path::Path;

use gavel_rules::{RuleMode, RulesError};

use crate::tools::pack::PackFiles;

/// What `gavel check` found.
#[derive(Debug)]
pub enum Checked {
    /// The pack compiles, and its warnings (if any) are allowed.
    Ok {
        /// The rendered warnings; empty when there are none.
        warnings: String,
        /// The summary line.
        summary: String,
    },
    /// The pack does not compile, or has warnings and they are denied:
    /// the rendered diagnostics and a count line.
    Invalid(String),
}

/// Checks the pack in `dir`; with `deny_warnings`, a warning fails it as
/// an error would. Fails only when the directory cannot be read.
pub fn check(dir: &Path, deny_warnings: bool) -> anyhow::Result<Checked> {
    let files = PackFiles::read(dir)?;
    Ok(match files.compile() {
        Ok(pack) if deny_warnings && !pack.warnings.is_empty() => Checked::Invalid(format!(
            "{}{} warning(s) in {}, denied by --deny-warnings",
            files.render(&pack.warnings),
            pack.warnings.len(),
            dir.display()
        )),
        Ok(pack) => {
            let shadow = pack.rules.iter().filter(|r| r.mode == RuleMode::Shadow).count();
            let warned = match pack.warnings.len() {
                0 => String::new(),
                n => format!(", {n} warning(s)"),
            };
            Checked::Ok {
                warnings: files.render(&pack.warnings),
                summary: format!(
                    "ok: pack {} ({}): {} lists, {} features, {} rules ({shadow} in shadow mode){warned}",
                    pack.version,
                    pack.hash,
                    pack.lists.len(),
                    pack.features.len(),
                    pack.rules.len()
                ),
            }
        }
        Err(RulesError::Invalid(diags)) => {
            Checked::Invalid(format!("{}{} error(s) in {}", files.render(&diags), diags.len(), dir.display()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `text` as a one-file pack in a fresh directory.
    fn check_text(name: &str, text: &str, deny_warnings: bool) -> Checked {
        let dir = std::env::temp_dir().join(format!("gavel-check-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pack.yaml"), text).unwrap();
        let result = check(&dir, deny_warnings).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn shipped_pack_checks_without_warnings_and_a_broken_one_lists_its_errors() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let Checked::Ok { warnings, summary } = check(&dir, true).unwrap() else {
            panic!("the shipped pack must check, warnings denied")
        };
        assert!(summary.starts_with("ok: pack "), "{summary}");
        assert!(warnings.is_empty(), "{warnings}");

        let broken = "version: x\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: event.nope > 1\n    score: 1\n";
        let Checked::Invalid(text) = check_text("broken", broken, false) else {
            panic!("a broken pack must not check")
        };
        assert!(text.contains("pack.yaml:6:11: error[E002]: unknown field `event.nope`"), "{text}");
        assert!(text.contains("1 error(s) in"), "{text}");
    }

    #[test]
    fn warnings_are_printed_and_fail_only_when_denied() {
        let pack = "version: x\nrules:\n  - id: r\n    description: d\n    on: [password_changed]\n    when: \"'recent_new_device' in labels.user\"\n    score: 1\n";
        let Checked::Ok { warnings, summary } = check_text("warn", pack, false) else { panic!("warnings are allowed") };
        assert!(warnings.contains("pack.yaml:6:12: warning[W001]: label `recent_new_device`"), "{warnings}");
        assert!(summary.ends_with(", 1 warning(s)"), "{summary}");
        let Checked::Invalid(text) = check_text("deny", pack, true) else { panic!("denied warnings fail") };
        assert!(text.contains("warning[W001]"), "{text}");
        assert!(text.contains("1 warning(s) in ") && text.ends_with("denied by --deny-warnings"), "{text}");
    }
}
