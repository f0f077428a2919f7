//! Loading a rule pack from disk (the rules crate itself does no I/O), and
//! the shipped pack embedded in the binary for the demo.

use std::path::Path;

use anyhow::Context;
use gavel_rules::Pack;

/// The shipped pack (`rules/`), compiled into the binary so the demo runs
/// from anywhere.
pub const SHIPPED: &[(&str, &str)] = &[(
    "rules/marketplace.yaml",
    include_str!("../../../rules/marketplace.yaml"),
)];

/// Compiles the shipped pack.
pub fn shipped() -> anyhow::Result<Pack> {
    Ok(Pack::compile(SHIPPED.iter().copied())?)
}

/// Reads every `*.yaml` / `*.yml` file in `dir` (sorted by name) and
/// compiles them as one pack.
pub fn load(dir: &Path) -> anyhow::Result<Pack> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading pack directory {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    if files.is_empty() {
        anyhow::bail!("pack directory {} holds no .yaml files", dir.display());
    }
    Ok(Pack::compile(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_pack_compiles_and_matches_rules_dir() {
        let embedded = shipped().unwrap();
        let on_disk = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")).unwrap();
        assert_eq!(embedded.version, on_disk.version);
        assert_eq!(embedded.rules.len(), on_disk.rules.len());
        assert!(!embedded.rules.is_empty());
    }
}
