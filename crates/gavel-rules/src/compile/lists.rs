//! The `lists` section: inline items and list files beside the pack, built
//! into [`StringList`]s once.

use std::collections::HashSet;
use std::sync::Arc;

use super::{PackCompiler, Source};
use crate::diagnostic::code;
use crate::expr::StringList;

impl PackCompiler {
    /// Every list the pack declares, in file order.
    pub(super) fn lists(&mut self, parsed: &[Source<'_>], files: &[(&str, &str)]) -> Vec<Arc<StringList>> {
        let mut lists = Vec::new();
        let mut seen = HashSet::new();
        for src in parsed {
            for def in &src.file.lists {
                if !seen.insert(def.name.value.clone()) {
                    self.at(code::DUPLICATE, src, &def.name, format!("duplicate list `{}`", def.name.value));
                    continue;
                }
                let mut items = def.items.clone();
                if let Some(file) = &def.file {
                    let wanted = sibling_path(src.name, &file.value);
                    match files.iter().find(|(n, _)| *n == wanted || n.ends_with(&format!("/{}", file.value))) {
                        Some((_, text)) => items.extend(list_entries(text)),
                        None => {
                            self.at(
                                code::MISSING,
                                src,
                                file,
                                format!("list file `{}` not found beside the pack", file.value),
                            );
                            continue;
                        }
                    }
                }
                match StringList::new(def.name.value.clone(), items) {
                    Ok(list) => lists.push(Arc::new(list)),
                    Err(e) => self.at(code::BAD_VALUE, src, &def.name, format!("list `{}`: {e}", def.name.value)),
                }
            }
        }
        lists
    }
}

/// `name` relative to the directory of `yaml`.
fn sibling_path(yaml: &str, name: &str) -> String {
    match yaml.rfind('/') {
        Some(i) => format!("{}/{name}", &yaml[..i]),
        None => name.to_string(),
    }
}

/// Entries of a list file: one per line, or the first CSV column; blank
/// lines and `#` comments skipped.
fn list_entries(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.split(',').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
}
