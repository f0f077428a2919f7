//! The `version` section: exactly one file of the pack sets it.

use super::{PackCompiler, Source};
use crate::diagnostic::code;

impl PackCompiler {
    /// The pack's version, reporting every file that sets it again.
    pub(super) fn version(&mut self, parsed: &[Source<'_>]) -> Option<String> {
        let mut version: Option<String> = None;
        for src in parsed {
            if let Some(v) = &src.file.version {
                if version.is_some() {
                    self.at(code::DUPLICATE, src, v, "`version` is set in more than one file");
                }
                version = Some(v.value.clone());
            }
        }
        version
    }
}
