//! [`Diagnostic`]: one problem in a pack with its severity, stable code,
//! file, line, column and length, placed exactly even inside a folded or
//! quoted YAML scalar. The codes are listed once, in [`CODES`]. Rendering
//! with a source excerpt is the caller's (the binary draws it with miette).

use crate::{expr, span};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The pack is rejected.
    Error,
    /// The pack compiles, but something in it is almost certainly not what
    /// its author meant. `--deny-warnings` turns these into failures.
    Warning,
}

impl Severity {
    /// `error` or `warning`, as printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// The stable code of each kind of problem. Codes are never reused for a
/// different problem; README "Rule packs" lists them.
pub(crate) mod code {
    /// The file is not YAML, or not the pack's shape (unknown key, wrong type).
    pub const YAML: &str = "E001";
    /// An expression does not compile (syntax, unknown name, type).
    pub const EXPRESSION: &str = "E002";
    /// An unknown name outside expressions: event kind, aggregate, action,
    /// target, mode, label entity, decision, rule named by a test.
    pub const UNKNOWN_NAME: &str = "E003";
    /// Something defined or set twice.
    pub const DUPLICATE: &str = "E004";
    /// A value out of range or malformed: duration, score, threshold,
    /// `max_keys`, a label entry.
    pub const BAD_VALUE: &str = "E005";
    /// Something required is missing: `version`, a list file, a `value`, an `id`.
    pub const MISSING: &str = "E006";
    /// A test event does not decode or names a field events do not have.
    pub const TEST_EVENT: &str = "E007";
    /// A label is tested but no rule of the pack sets it.
    pub const LABEL_NEVER_SET: &str = "W001";
    /// A feature no enabled rule reads.
    pub const FEATURE_NEVER_READ: &str = "W002";
    /// `event.kind` compared with a value that is not an event kind.
    pub const UNKNOWN_KIND_VALUE: &str = "W003";
    /// A comparison whose result is the same for every event.
    pub const CONSTANT_COMPARISON: &str = "W004";
    /// A rule that can never fire because of the kinds that feed what it reads.
    pub const NEVER_FIRES: &str = "W005";
    /// A pack with no enabled rules: every event is allowed.
    pub const NO_RULES: &str = "W006";
    /// A keyword searched for in `folded()` or `numerals()` text that is
    /// not in that form itself, so it can never be found.
    pub const NOT_NORMAL_FORM: &str = "W007";
}

/// Every code with its severity and what it means, for documentation and
/// tools.
pub const CODES: &[(&str, Severity, &str)] = &[
    (code::YAML, Severity::Error, "not YAML, or not the pack's shape (unknown key, wrong type)"),
    (code::EXPRESSION, Severity::Error, "an expression does not compile (syntax, unknown name, type)"),
    (
        code::UNKNOWN_NAME,
        Severity::Error,
        "an unknown event kind, aggregate, action, target, mode, entity, decision or rule",
    ),
    (code::DUPLICATE, Severity::Error, "defined or set twice"),
    (
        code::BAD_VALUE,
        Severity::Error,
        "a value out of range or malformed (duration, score, threshold, max_keys, label)",
    ),
    (code::MISSING, Severity::Error, "something required is missing (version, list file, value, id)"),
    (code::TEST_EVENT, Severity::Error, "a test event does not decode or names an unknown field"),
    (code::LABEL_NEVER_SET, Severity::Warning, "a label is tested but no rule sets it"),
    (code::FEATURE_NEVER_READ, Severity::Warning, "a feature no enabled rule reads"),
    (code::UNKNOWN_KIND_VALUE, Severity::Warning, "`event.kind` compared with a value that is no event kind"),
    (code::CONSTANT_COMPARISON, Severity::Warning, "a comparison that is the same for every event"),
    (code::NEVER_FIRES, Severity::Warning, "a rule that can never fire: what it reads is never fed where it runs"),
    (
        code::NO_RULES,
        Severity::Warning,
        "the pack has no enabled rules, so it allows every event; `gavel run` refuses it unless `allow_empty_pack = true`",
    ),
    (
        code::NOT_NORMAL_FORM,
        Severity::Warning,
        "a keyword searched for in `folded()` or `numerals()` text is not in that form, so it never matches",
    ),
];

/// One problem in a pack, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line; 0 when the problem has no single place.
    pub line: usize,
    /// 1-based column; 0 when the problem has no single place.
    pub column: usize,
    /// Length in characters of the offending text (at least 1).
    pub len: usize,
    /// Error or warning.
    pub severity: Severity,
    /// The stable code (`E002`, `W001`, …; see [`CODES`]).
    pub code: &'static str,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl Diagnostic {
    /// A problem with a whole file (or pack), not one place in it.
    pub fn whole(file: &str, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_string(),
            line: 0,
            column: 0,
            len: 0,
            severity: severity_of(code),
            code,
            message: message.into(),
        }
    }

    /// A problem at 1-based (line, column), one character long.
    pub(crate) fn at_place(file: &str, line: usize, column: usize, code: &'static str, message: String) -> Diagnostic {
        Diagnostic { file: file.to_string(), line, column, len: 1, severity: severity_of(code), code, message }
    }

    /// A problem at a YAML node: the length runs to the end of the word
    /// there (a flow collection's `,` `]` `}` end it too).
    pub(crate) fn at_location(
        file: &str,
        text: &str,
        at: &serde_saphyr::Location,
        code: &'static str,
        message: String,
    ) -> Diagnostic {
        let (line, column) = (at.line() as usize, at.column() as usize);
        let len = span::line_text(text, line)
            .map(|l| {
                l.chars()
                    .skip(column.saturating_sub(1))
                    .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}'))
                    .count()
            })
            .unwrap_or(1)
            .max(1);
        Diagnostic { file: file.to_string(), line, column, len, severity: severity_of(code), code, message }
    }

    /// A problem inside an expression held by a YAML scalar at `at`: the
    /// expression's bytes `error.start..error.end` placed in the file,
    /// whatever the scalar's style (plain, quoted, `|`, `>`, with or
    /// without chomping, over several lines); the scalar's start when the
    /// text cannot be matched.
    pub(crate) fn in_expression(
        file: &str,
        text: &str,
        at: &serde_saphyr::Location,
        expr: &str,
        code: &'static str,
        error: &expr::CompileError,
    ) -> Diagnostic {
        let placed = span::offset_of(text, at.line() as usize, at.column() as usize)
            .and_then(|start| scalar_offset(text, start, expr, error.start));
        let Some(byte) = placed else {
            return Diagnostic::at_location(file, text, at, code, error.message.clone());
        };
        let (line, column) = span::line_col(text, byte);
        let (start, end) = (floor_char(expr, error.start), floor_char(expr, error.end.max(error.start)));
        let len = expr[start..end].chars().count().max(1);
        Diagnostic {
            file: file.to_string(),
            line,
            column,
            len,
            severity: severity_of(code),
            code,
            message: error.message.clone(),
        }
    }

    /// True for an error, false for a warning.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

fn severity_of(code: &str) -> Severity {
    if code.starts_with('W') { Severity::Warning } else { Severity::Error }
}

/// The largest character boundary of `text` at or before `i`.
fn floor_char(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// How the scalar starting at a byte of the file is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
}

/// The byte of the file where byte `target` of the scalar's value `value`
/// was written, the scalar starting at byte `start` of `text`. Walks value
/// and file together: a run of whitespace in the value (a folded line
/// break, kept indentation) matches a run in the file, indentation the
/// value does not keep is skipped, and quoted scalars' escapes (`\"`,
/// `\n`, `\u00e9`, `''`, an escaped line break) stand for what they mean.
/// `None` when the file does not spell the value (the caller falls back).
fn scalar_offset(text: &str, start: usize, value: &str, target: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut j = start;
    let style = match bytes.get(j) {
        Some(b'|' | b'>') => {
            // The header (`>-`, `|2+`, a comment) ends its line.
            j = text[j..].find('\n').map_or(text.len(), |nl| j + nl + 1);
            Style::Block
        }
        Some(b'"') => {
            j += 1;
            Style::DoubleQuoted
        }
        Some(b'\'') => {
            j += 1;
            Style::SingleQuoted
        }
        _ => Style::Plain,
    };
    let target = floor_char(value, target);
    for (vb, c) in value.char_indices() {
        loop {
            let f = text[j..].chars().next()?;
            if style == Style::DoubleQuoted && f == '\\' {
                let next = text[j + 1..].chars().next()?;
                if next == '\n' || next == '\r' {
                    // An escaped line break: nothing in the value.
                    j += 1;
                    while let Some(w) = text[j..].chars().next().filter(|w| w.is_whitespace()) {
                        j += w.len_utf8();
                    }
                    continue;
                }
                if vb >= target {
                    return Some(j);
                }
                let hex = match next {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 0,
                };
                j += 1 + next.len_utf8();
                j = text[j..].char_indices().nth(hex).map_or(text.len(), |(b, _)| j + b);
                break;
            }
            if style == Style::SingleQuoted && c == '\'' && text[j..].starts_with("''") {
                if vb >= target {
                    return Some(j);
                }
                j += 2;
                break;
            }
            if f == c || (c.is_whitespace() && f.is_whitespace()) {
                if vb >= target {
                    return Some(j);
                }
                j += f.len_utf8();
                break;
            }
            if f.is_whitespace() {
                // Indentation or a line break the value folded away.
                j += f.len_utf8();
                continue;
            }
            if c.is_whitespace() {
                // Whitespace the value has and the file does not spell here
                // (a folded line break already matched): it takes no room.
                if vb >= target {
                    return Some(j);
                }
                break;
            }
            return None;
        }
    }
    // `target` is the value's end.
    Some(j)
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (severity, code) = (self.severity.as_str(), self.code);
        if self.line == 0 {
            write!(f, "{}: {severity}[{code}]: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {severity}[{code}]: {}", self.file, self.line, self.column, self.message)
        }
    }
}

pub(crate) fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct W {
        w: serde_saphyr::Spanned<String>,
    }

    /// Where the value's first `b` was written, as (line, column), with the
    /// value and place the YAML parser gives the scalar.
    fn place_of_b(text: &str) -> Option<(usize, usize)> {
        let w: W = serde_saphyr::from_str(text).expect("valid YAML");
        let start = span::offset_of(text, w.w.referenced.line() as usize, w.w.referenced.column() as usize)?;
        let target = w.w.value.find('b').expect("b in the value");
        scalar_offset(text, start, &w.w.value, target).map(|b| span::line_col(text, b))
    }

    #[test]
    fn every_scalar_style_maps_value_bytes_to_their_place() {
        let cases: &[(&str, (usize, usize))] = &[
            ("w: >-\n  a &&\n  b > 'x'\n", (3, 3)),
            ("w: >\n  a &&\n  b > 'x'\n", (3, 3)),
            ("w: |\n  a &&\n  b > 'x'\n", (3, 3)),
            ("w: |-\n  a &&\n  b > 'x'\n", (3, 3)),
            ("w: >-  # a comment\n  a &&\n\n      b > 'x'\n", (4, 7)),
            ("w: >2-\n    a &&\n   b > 'x'\n", (3, 4)),
            ("w: a &&\n   b > 'x'\n", (2, 4)),
            ("w: a &&\n\n   é > 'x' || b\n", (3, 15)),
            ("w: \"a &&\n   \\\"é\\\" \\u00e9 \\\n b > 'x'\"\n", (3, 2)),
            ("w: 'a &&\n   ''é'' b > ''x'''\n", (2, 10)),
        ];
        for (text, want) in cases {
            assert_eq!(place_of_b(text), Some(*want), "{text:?}");
        }
    }

    #[test]
    fn a_value_the_file_does_not_spell_has_no_place() {
        assert_eq!(scalar_offset("w: abc\n", 3, "abd", 2), None);
        // Past the file's end.
        assert_eq!(scalar_offset("w: ab", 3, "abc", 2), None);
        assert_eq!(scalar_offset("w: ab", 3, "ab", 2), Some(5));
    }

    #[test]
    fn codes_are_unique_and_severity_follows_the_letter() {
        let mut seen = std::collections::HashSet::new();
        for (code, severity, _) in CODES {
            assert!(seen.insert(code), "{code} twice");
            assert_eq!(severity_of(code), *severity, "{code}");
        }
    }

    #[test]
    fn readme_lists_every_code() {
        let readme = include_str!("../../../README.md");
        for (code, _, _) in CODES {
            assert!(readme.contains(&format!("`{code}`")), "README \"Rule packs\" does not list {code}");
        }
    }
}
