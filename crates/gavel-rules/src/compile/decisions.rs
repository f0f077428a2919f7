//! The `decisions` section: the default score thresholds and overrides
//! per event kind, each checked against the score model — thresholds in
//! [`THRESHOLD_RANGE`], in the order review ≤ challenge ≤ block — with the
//! offending number pointed at.

use std::ops::RangeInclusive;

use gavel_model::EventKind;
use serde_saphyr::Spanned;

use super::{PackCompiler, Source};
use crate::diagnostic::code;
use crate::expr;
use crate::format::ThresholdsDef;
use crate::{Decisions, Diagnostic, Thresholds, span};

/// The scores a rule may add when it fires. A rule of score 0 marks events
/// (it is reported) without moving them towards a decision.
pub const SCORE_RANGE: RangeInclusive<i32> = 0..=100;

/// The values a threshold may take. At least 1, so that a score-0 event
/// (no rule fired) is always allowed; up to 1000, so that a level may ask
/// for several rules to agree (`block: 150`) or be out of reach.
pub const THRESHOLD_RANGE: RangeInclusive<i32> = 1..=1000;

impl PackCompiler {
    /// The decision table, reporting a second file that sets it.
    pub(super) fn decisions(&mut self, parsed: &[Source<'_>]) -> Decisions {
        let mut decisions = Decisions::default();
        let mut set = false;
        for src in parsed {
            let Some(def) = &src.file.decisions else { continue };
            if set {
                self.push(Diagnostic::whole(src.name, code::DUPLICATE, "`decisions` is set in more than one file"));
            }
            set = true;
            let levels = [&def.review, &def.challenge, &def.block];
            if let Some(t) = self.thresholds(src, "decisions", levels) {
                decisions.default = t;
            }
            for (kind, t) in &def.by_kind {
                let Some(k) = EventKind::from_name(kind) else {
                    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                    let hint =
                        expr::nearest(kind, &names).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                    let message = format!("unknown event kind `{kind}` in `by_kind`{hint}");
                    match key_before(src.text, &t.referenced, kind) {
                        Some((line, column)) => {
                            let mut d = Diagnostic::at_place(src.name, line, column, code::UNKNOWN_NAME, message);
                            d.len = kind.chars().count().max(1);
                            self.push(d);
                        }
                        None => self.at(code::UNKNOWN_NAME, src, t, message),
                    }
                    continue;
                };
                let ThresholdsDef { review, challenge, block } = &t.value;
                if let Some(t) = self.thresholds(src, &format!("decisions.by_kind.{kind}"), [review, challenge, block])
                {
                    decisions.by_kind[k.index()] = Some(t);
                }
            }
        }
        decisions
    }

    /// One set of thresholds (`review`, `challenge`, `block`), each in
    /// range and in order; `None` (each problem reported) when not.
    fn thresholds(&mut self, src: &Source<'_>, what: &str, levels: [&Spanned<i32>; 3]) -> Option<Thresholds> {
        const NAMES: [&str; 3] = ["review", "challenge", "block"];
        let mut ok = true;
        for (name, level) in NAMES.iter().zip(levels) {
            if !THRESHOLD_RANGE.contains(&level.value) {
                let (lo, hi) = (THRESHOLD_RANGE.start(), THRESHOLD_RANGE.end());
                let why = if level.value < *lo {
                    " (a threshold of 0 or less would act on events no rule fired on)"
                } else {
                    ""
                };
                self.at(
                    code::BAD_VALUE,
                    src,
                    level,
                    format!("{what}: `{name}: {}` is out of range: thresholds are {lo} to {hi}{why}", level.value),
                );
                ok = false;
            }
        }
        for i in 1..3 {
            let (lower, higher) = (levels[i - 1], levels[i]);
            if ok && higher.value < lower.value {
                self.at(
                    code::BAD_VALUE,
                    src,
                    higher,
                    format!(
                        "{what}: `{}: {}` is below `{}: {}`: thresholds must satisfy review ≤ challenge ≤ block",
                        NAMES[i],
                        higher.value,
                        NAMES[i - 1],
                        lower.value
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(Thresholds { review: levels[0].value, challenge: levels[1].value, block: levels[2].value })
    }
}

/// Where the mapping key `key` is written before the value at `value`:
/// the last `key:` between the start of the value's line (or the line
/// above, for a block mapping) and the value. `None` when not found.
fn key_before(text: &str, value: &serde_saphyr::Location, key: &str) -> Option<(usize, usize)> {
    let end = span::offset_of(text, value.line() as usize, value.column() as usize)?;
    let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    let from = text[..line_start.saturating_sub(1)].rfind('\n').map_or(0, |i| i + 1);
    let at = text[from..end].rmatch_indices(key).map(|(i, _)| from + i).find(|&i| {
        let after = text[i + key.len()..end].trim_start_matches(['"', '\'']);
        after.starts_with(':')
    })?;
    Some(span::line_col(text, at))
}
