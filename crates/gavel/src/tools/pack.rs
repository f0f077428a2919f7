//! Loading a rule pack from disk (the rules crate itself does no I/O),
//! rendering its diagnostics, and the shipped pack embedded in the binary
//! for the demo.

use std::path::{Path, PathBuf};

use anyhow::Context;
use gavel_rules::{Diagnostic, Pack, RulesError};

/// The shipped pack (`rules/`), compiled into the binary so the demo runs
/// from anywhere. A test checks it matches the directory byte for byte.
pub const SHIPPED: &[(&str, &str)] = &[
    ("rules/accounts.yaml", include_str!("../../../../rules/accounts.yaml")),
    ("rules/bidding.yaml", include_str!("../../../../rules/bidding.yaml")),
    ("rules/chat.yaml", include_str!("../../../../rules/chat.yaml")),
    ("rules/lists/contact_asks.txt", include_str!("../../../../rules/lists/contact_asks.txt")),
    ("rules/lists/deal_lures.txt", include_str!("../../../../rules/lists/deal_lures.txt")),
    ("rules/lists/known_sites.txt", include_str!("../../../../rules/lists/known_sites.txt")),
    ("rules/lists/messaging_apps.txt", include_str!("../../../../rules/lists/messaging_apps.txt")),
    ("rules/lists/payment_apps.txt", include_str!("../../../../rules/lists/payment_apps.txt")),
    ("rules/pack.yaml", include_str!("../../../../rules/pack.yaml")),
    ("rules/payments.yaml", include_str!("../../../../rules/payments.yaml")),
    ("rules/sellers.yaml", include_str!("../../../../rules/sellers.yaml")),
    ("rules/tests/accounts.yaml", include_str!("../../../../rules/tests/accounts.yaml")),
    ("rules/tests/bidding.yaml", include_str!("../../../../rules/tests/bidding.yaml")),
    ("rules/tests/chat.yaml", include_str!("../../../../rules/tests/chat.yaml")),
    ("rules/tests/payments.yaml", include_str!("../../../../rules/tests/payments.yaml")),
    ("rules/tests/sellers.yaml", include_str!("../../../../rules/tests/sellers.yaml")),
];

/// Compiles the shipped pack.
pub fn shipped() -> anyhow::Result<Pack> {
    Ok(Pack::compile(SHIPPED.iter().copied())?)
}

/// A pack's files as read from disk: `(path, text)`.
#[derive(Debug, Clone)]
pub struct PackFiles {
    /// The files, sorted by path.
    pub files: Vec<(String, String)>,
}

impl PackFiles {
    /// Reads every file of the pack directory `dir` and of its immediate
    /// subdirectories (list files live in e.g. `lists/`).
    pub fn read(dir: &Path) -> anyhow::Result<PackFiles> {
        let mut files = Vec::new();
        let mut dirs = vec![(dir.to_path_buf(), 0)];
        while let Some((d, depth)) = dirs.pop() {
            for entry in std::fs::read_dir(&d).with_context(|| format!("reading pack directory {}", d.display()))? {
                let path: PathBuf = entry?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                // Hidden entries are not the pack's: editor swap files, and the
                // `..data` / `..<timestamp>` directories of a Kubernetes
                // ConfigMap mount (whose files the top-level links already name).
                if name.starts_with('.') {
                    continue;
                }
                if path.is_dir() {
                    if depth == 0 {
                        dirs.push((path, 1));
                    }
                    continue;
                }
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                files.push((path.display().to_string(), text));
            }
        }
        files.sort();
        if !files.iter().any(|(n, _)| n.ends_with(".yaml") || n.ends_with(".yml")) {
            return Err(crate::error::bad_input(format!("pack directory {} holds no .yaml files", dir.display())));
        }
        Ok(PackFiles { files })
    }

    /// Compiles the files.
    pub fn compile(&self) -> Result<Pack, RulesError> {
        Pack::compile(self.files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }

    /// Renders diagnostics with the offending source line and a caret
    /// under the offending text.
    pub fn render(&self, diagnostics: &[Diagnostic]) -> String {
        render(diagnostics, |name| self.files.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str()))
    }
}

/// Reads and compiles the pack in `dir`, failing with rendered diagnostics.
pub fn load(dir: &Path) -> anyhow::Result<Pack> {
    let files = PackFiles::read(dir)?;
    files.compile().map_err(|RulesError::Invalid(diags)| crate::error::bad_input(files.render(&diags)))
}

/// One diagnostic as miette sees it.
#[derive(Debug)]
pub struct Report {
    message: String,
    source: miette::NamedSource<String>,
    span: Option<miette::SourceSpan>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.span.map(|_| &self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.span.map(|s| Box::new(std::iter::once(miette::LabeledSpan::new_with_span(None, s))) as Box<_>)
    }
}

/// Renders each diagnostic as `file:line:col: severity[code]: message`
/// followed by the source line and an underline, using `source` to find
/// file texts.
pub fn render<'a>(diagnostics: &[Diagnostic], source: impl Fn(&str) -> Option<&'a str>) -> String {
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&format!("{d}\n"));
        let Some(text) = source(&d.file).filter(|_| d.line > 0) else {
            continue;
        };
        let span = gavel_rules::byte_span(text, d.line, d.column, d.len).map(miette::SourceSpan::from);
        let report = Report {
            message: d.message.clone(),
            source: miette::NamedSource::new(d.file.clone(), text.to_string()),
            span,
        };
        let mut rendered = String::new();
        if handler.render_report(&mut rendered, &report).is_ok() {
            // The first line repeats the message; the snippet is what adds.
            for line in rendered.lines().skip(1) {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_pack_matches_the_rules_directory() {
        let embedded = shipped().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let on_disk = load(&dir).unwrap();
        assert_eq!(embedded.hash, on_disk.hash, "the embedded pack differs from rules/: update pack::SHIPPED");
        let files = PackFiles::read(&dir).unwrap();
        assert_eq!(files.files.len(), SHIPPED.len(), "rules/ has files SHIPPED does not list");
        assert!(!embedded.rules.is_empty());
    }

    #[test]
    fn a_configmap_mount_reads_like_the_directory() {
        // The kubelet's layout: the data in `..<timestamp>/`, `..data` linking
        // to it, and one top-level link per file.
        let dir = std::env::temp_dir().join(format!("gavel-cm-{}", std::process::id()));
        let data = dir.join("..2026_11_23_00_00_00.1");
        std::fs::create_dir_all(&data).unwrap();
        let pack = "version: cm\nrules:\n  - id: r\n    description: d\n    on: [bid_placed]\n    when: 'true'\n    score: 1\n";
        std::fs::write(data.join("pack.yaml"), pack).unwrap();
        #[cfg(unix)]
        {
            let _ = std::os::unix::fs::symlink(&data, dir.join("..data"));
            let _ = std::os::unix::fs::symlink(dir.join("..data/pack.yaml"), dir.join("pack.yaml"));
        }
        #[cfg(not(unix))]
        std::fs::write(dir.join("pack.yaml"), pack).unwrap();
        let loaded = load(&dir).unwrap();
        assert_eq!(loaded.version, "cm");
        assert_eq!(loaded.rules.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn renders_a_caret_under_the_error() {
        let text = "rules:\n  - id: x\n    when: event.usr_id == 'a'\n";
        let d = Diagnostic {
            file: "p.yaml".into(),
            line: 3,
            column: 11,
            len: 12,
            severity: gavel_rules::Severity::Error,
            code: "E002",
            message: "unknown field".into(),
        };
        let out = render(&[d], |_| Some(text));
        assert!(out.starts_with("p.yaml:3:11: error[E002]: unknown field\n"), "{out}");
        assert!(out.contains("event.usr_id == 'a'"), "{out}");
        assert!(out.contains("────────────"), "{out}");
    }
}
