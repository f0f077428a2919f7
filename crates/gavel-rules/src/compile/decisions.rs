//! The `decisions` section: the default score thresholds and overrides
//! per event kind.

use gavel_model::EventKind;

use super::{PackCompiler, Source};
use crate::format::ThresholdsDef;
use crate::{Decisions, Diagnostic, Thresholds};

impl From<ThresholdsDef> for Thresholds {
    fn from(t: ThresholdsDef) -> Self {
        Thresholds { review: t.review, challenge: t.challenge, block: t.block }
    }
}

impl PackCompiler {
    /// The decision table, reporting a second file that sets it.
    pub(super) fn decisions(&mut self, parsed: &[Source<'_>]) -> Decisions {
        let mut decisions = Decisions::default();
        let mut set = false;
        for src in parsed {
            let Some(def) = &src.file.decisions else { continue };
            if set {
                self.diags.push(Diagnostic::whole(src.name, "`decisions` is set in more than one file"));
            }
            set = true;
            let default = Thresholds { review: def.review, challenge: def.challenge, block: def.block };
            if !(default.review <= default.challenge && default.challenge <= default.block) {
                self.diags
                    .push(Diagnostic::whole(src.name, "decisions: thresholds must satisfy review ≤ challenge ≤ block"));
            }
            decisions.default = default;
            for (kind, t) in &def.by_kind {
                match EventKind::from_name(kind) {
                    Some(k) => decisions.by_kind[k.index()] = Some(t.value.into()),
                    None => self.at(src, t, format!("unknown event kind `{kind}`")),
                }
            }
        }
        decisions
    }
}
