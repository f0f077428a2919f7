//! [`Diagnostic`]: one problem in a pack with its file, line, column and
//! length, placed exactly even inside a folded YAML scalar. Rendering with
//! a source excerpt is the caller's (the binary draws it with miette).

use crate::{expr, span};

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
    /// What is wrong, and what would be right.
    pub message: String,
}

impl Diagnostic {
    /// A problem with a whole file (or pack), not one place in it.
    pub fn whole(file: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { file: file.to_string(), line: 0, column: 0, len: 0, message: message.into() }
    }

    /// A problem at a YAML node.
    pub(crate) fn at_location(file: &str, text: &str, at: &serde_saphyr::Location, message: String) -> Diagnostic {
        let (line, column) = (at.line() as usize, at.column() as usize);
        let len = span::line_text(text, line)
            .map(|l| l.chars().skip(column.saturating_sub(1)).take_while(|c| !c.is_whitespace()).count())
            .unwrap_or(1)
            .max(1);
        Diagnostic { file: file.to_string(), line, column, len, message }
    }

    /// A problem inside an expression held by a YAML scalar at `at`: finds
    /// the expression's text in the file so the place is exact, falling back
    /// to the scalar's start when the scalar was folded.
    pub(crate) fn in_expression(
        file: &str,
        text: &str,
        at: &serde_saphyr::Location,
        expr: &str,
        error: &expr::CompileError,
    ) -> Diagnostic {
        let fallback = || Diagnostic::at_location(file, text, at, error.message.clone());
        let Some(scalar_start) = span::offset_of(text, at.line() as usize, at.column() as usize) else {
            return fallback();
        };
        // Which line of the expression, and which byte in it.
        let before = &expr[..error.start.min(expr.len())];
        let expr_line = before.matches('\n').count();
        let col_in_line = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1);
        let mut pos = scalar_start;
        for (i, line) in expr.split('\n').enumerate() {
            let trimmed = line.trim_start();
            let Some(found) = (if trimmed.is_empty() { Some(0) } else { text[pos..].find(trimmed) }) else {
                return fallback();
            };
            let line_start = pos + found;
            if i == expr_line {
                let indent = line.len() - trimmed.len();
                let byte = line_start + col_in_line.saturating_sub(indent);
                let (line, column) = span::line_col(text, byte);
                let len = expr[error.start.min(expr.len())..error.end.min(expr.len())].chars().count().max(1);
                return Diagnostic { file: file.to_string(), line, column, len, message: error.message.clone() };
            }
            pos = line_start + trimmed.len();
        }
        fallback()
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

pub(crate) fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n")
}
