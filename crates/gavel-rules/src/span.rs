//! Places in text: 1-based line and column (in characters) to and from
//! byte offsets, the one conversion diagnostics, the expression compiler
//! and renderers share. Out-of-range input never panics: it reads as `None`
//! or clamps to the end, as each function says.

/// The text of 1-based line `line`, without its line break.
pub fn line_text(text: &str, line: usize) -> Option<&str> {
    text.lines().nth(line.checked_sub(1)?)
}

/// Byte offset of a 1-based (line, column in characters). A column past
/// the end of its line reads as the line's end (after its `\n`); `None` for
/// line or column 0 or a line past the end.
pub fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return Some(offset + l.char_indices().nth(column.checked_sub(1)?).map_or(l.len(), |(b, _)| b));
        }
        offset += l.len();
    }
    None
}

/// 1-based (line, column in characters) of a byte offset; an offset past
/// the end reads as the end. `byte` must fall on a character boundary.
pub fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before, |nl| &before[nl + 1..]).chars().count() + 1;
    (line, column)
}

/// Byte offset of the `chars`-th character; the text's length when there
/// are fewer characters.
pub fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices().nth(chars).map_or(text.len(), |(b, _)| b)
}

/// The byte range `(start, length)` of a [`crate::Diagnostic`]'s place:
/// `len` characters from 1-based (line, column), cut at the end of the
/// line and at least one byte long; `None` when the line does not exist.
/// What a renderer (miette, ariadne) needs to underline it.
pub fn byte_span(text: &str, line: usize, column: usize, len: usize) -> Option<(usize, usize)> {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let start = l.char_indices().nth(column.saturating_sub(1)).map_or(l.len(), |(b, _)| b);
            let end =
                l[start..].char_indices().nth(len.max(1)).map_or(l.trim_end_matches('\n').len(), |(b, _)| start + b);
            return Some((offset + start, end.saturating_sub(start).max(1)));
        }
        offset += l.len();
    }
    None
}

/// The next character boundary after `start` (the end of the character
/// there); the text's length at or past the end.
pub(crate) fn next_char_boundary(text: &str, start: usize) -> usize {
    text[start.min(text.len())..].chars().next().map_or(text.len(), |c| start + c.len_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "ab\nçé x\n\nend";

    #[test]
    fn offsets_and_places_round_trip_on_non_ascii_text() {
        for (byte, _) in TEXT.char_indices() {
            let (line, column) = line_col(TEXT, byte);
            assert_eq!(offset_of(TEXT, line, column), Some(byte), "byte {byte}");
        }
        assert_eq!(line_col(TEXT, 3), (2, 1));
        // `é` starts after the two-byte `ç`: byte 5, column 2.
        assert_eq!(line_col(TEXT, 5), (2, 2));
        assert_eq!(offset_of(TEXT, 2, 3), Some(7));
    }

    #[test]
    fn out_of_range_input_is_clamped_or_none() {
        assert_eq!(line_col(TEXT, 999), (4, 4));
        assert_eq!(offset_of(TEXT, 0, 1), None);
        assert_eq!(offset_of(TEXT, 1, 0), None);
        assert_eq!(offset_of(TEXT, 9, 1), None);
        // A column past the line's end is the start of the next line.
        assert_eq!(offset_of(TEXT, 1, 40), Some(3));
        assert_eq!(line_text(TEXT, 2), Some("çé x"));
        assert_eq!(line_text(TEXT, 0), None);
        assert_eq!(char_to_byte(TEXT, 4), 5);
        assert_eq!(char_to_byte(TEXT, 99), TEXT.len());
        assert_eq!(next_char_boundary(TEXT, 3), 5);
        assert_eq!(next_char_boundary(TEXT, 99), TEXT.len());
    }

    #[test]
    fn byte_spans_stay_inside_their_line() {
        // `é x` is three characters, four bytes.
        assert_eq!(byte_span(TEXT, 2, 2, 3), Some((5, 4)));
        // Cut at the end of the line, never over its `\n`.
        assert_eq!(byte_span(TEXT, 2, 2, 40), Some((5, 4)));
        assert_eq!(byte_span(TEXT, 3, 1, 1), Some((10, 1)));
        assert_eq!(byte_span(TEXT, 1, 1, 0), Some((0, 1)));
        assert_eq!(byte_span(TEXT, 7, 1, 1), None);
    }
}
