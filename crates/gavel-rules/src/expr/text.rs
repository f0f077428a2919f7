//! Text normalisation for chat and names: the forms a keyword list or a
//! contact-detail pattern should read, whatever a scammer wrote.
//!
//! - [`skeleton`] is Unicode TR39's skeleton, for comparing two strings
//!   ("are these names confusable?"): every character replaced by its
//!   prototype. It is not meant to be read (`m` becomes `rn`).
//! - [`folded`] is for keyword lists. Each character is decomposed
//!   (NFKD: full-width, ligatures, mathematical and circled letters), accents
//!   are dropped, a non-ASCII character whose TR39 prototype is ASCII becomes
//!   that prototype (Cyrillic `о` → `o`, Greek `ν` → `v`), invisible
//!   characters go, and letters are lowercased. Inside a word that has at
//!   least one letter, the look-alikes `0 1 3 4 5 7 @ $` read as
//!   `o i e a s t a s`. `&` reads `and`. Separators and punctuation become one space, and a
//!   run of three or more one-character words is joined (`v e n m o`,
//!   `t.e.l.e.g.r.a.m` → `venmo`, `telegram`). ASCII letters are never
//!   replaced by other letters, so the result stays readable lowercase.
//! - [`numerals`] is for phone numbers. Characters fold as above; a digit
//!   word (`zero` … `nine`), a word of digits with `o`, `l` or `i` among
//!   them (`555l2o4`), and `oh` or `o` next to another such word read as
//!   digits, and digit words separated only by separators or punctuation
//!   join into one run: `five five five, 12 34` → `5551234`. Other words
//!   are kept as [`folded`] would write them (without the look-alikes).
//!
//! All three are linear in the text. ASCII input, the common case, never
//! reaches the Unicode tables.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// `s.skeleton()`: the TR39 skeleton of `s`.
pub fn skeleton(s: &str) -> String {
    unicode_security::skeleton(s).collect()
}

/// Appends `c` folded: `&` as the word `and`, NFKD, accents dropped, a non-ASCII character whose
/// TR39 prototype is ASCII replaced by it, invisible characters dropped,
/// lowercased.
fn fold_char(c: char, out: &mut String) {
    if c == '&' {
        out.push_str(" and ");
        return;
    }
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    for d in std::iter::once(c).nfkd() {
        if d.is_ascii() {
            out.push(d.to_ascii_lowercase());
        } else if !is_combining_mark(d) {
            let mut buf = [0u8; 4];
            let one: &str = d.encode_utf8(&mut buf);
            let prototype = unicode_security::skeleton(one);
            // Invisible characters have an empty skeleton.
            let mut ascii = [0u8; 8];
            let mut len = 0;
            let mut all_ascii = true;
            for p in prototype {
                if !p.is_ascii() || len == ascii.len() {
                    all_ascii = false;
                    break;
                }
                ascii[len] = p as u8;
                len += 1;
            }
            if all_ascii {
                out.extend(ascii[..len].iter().map(|b| b.to_ascii_lowercase() as char));
            } else {
                out.extend(d.to_lowercase());
            }
        }
    }
}

/// `s` with every character folded (see [`fold_char`]).
fn fold_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// The look-alike a character stands for inside a word with letters.
fn look_alike(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '@' => 'a',
        '$' => 's',
        _ => return None,
    })
}

/// A character that belongs to a word of folded text.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '@' || c == '$'
}

/// The words of already folded text, by `is_word`, as byte ranges.
fn words(s: &str, is_word: fn(char) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (is_word(c), start) {
            (true, None) => start = Some(i),
            (false, Some(b)) => {
                out.push((b, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(b) = start {
        out.push((b, s.len()));
    }
    out
}

/// Whether a word is one character long.
fn single(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some() && chars.next().is_none()
}

/// Joins `words` with single spaces, except that a run of three or more
/// one-character words is written as one word. `write` appends a word.
fn join_words(text: &str, words: &[(usize, usize)], out: &mut String, write: impl Fn(&str, &mut String)) {
    let mut joined = String::new();
    let mut i = 0;
    while i < words.len() {
        let run = words[i..].iter().take_while(|&&(a, b)| single(&text[a..b])).count();
        if !out.is_empty() {
            out.push(' ');
        }
        if run >= 3 {
            joined.clear();
            joined.extend(words[i..i + run].iter().map(|&(a, b)| &text[a..b]));
            write(&joined, out);
            i += run;
        } else {
            let (a, b) = words[i];
            write(&text[a..b], out);
            i += 1;
        }
    }
}

/// `s.folded()`: the form keyword lists match (see the module docs).
pub fn folded(s: &str) -> String {
    let text = fold_chars(s);
    let spans = words(&text, word_char);
    let mut out = String::with_capacity(text.len());
    join_words(&text, &spans, &mut out, |word, out| {
        let has_letter = word.chars().any(char::is_alphabetic);
        for c in word.chars() {
            match look_alike(c) {
                Some(l) if has_letter => out.push(l),
                // `$50`, `@`: no letter to read them as.
                _ if c == '@' || c == '$' => {}
                _ => out.push(c),
            }
        }
    });
    out
}

/// The digit a spelled-out digit word stands for.
fn digit_word(word: &str) -> Option<char> {
    const WORDS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    WORDS.iter().position(|w| *w == word).map(|d| (b'0' + d as u8) as char)
}

/// What a word of folded text is to [`numerals`].
#[derive(Clone, Copy, PartialEq)]
enum Numeric {
    /// Not a number.
    No,
    /// Digits, maybe with `o`/`l`/`i` among them, or a digit word.
    Yes,
    /// `oh` or `o`: zero next to another number, a word otherwise.
    Zero,
}

fn numeric(word: &str) -> Numeric {
    if word == "oh" || word == "o" {
        return Numeric::Zero;
    }
    if digit_word(word).is_some() {
        return Numeric::Yes;
    }
    let digits = word.bytes().any(|b| b.is_ascii_digit());
    if digits && word.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'o' | b'l' | b'i')) {
        Numeric::Yes
    } else {
        Numeric::No
    }
}

/// Appends the digits a numeric word stands for.
fn write_digits(word: &str, out: &mut String) {
    if let Some(d) = digit_word(word) {
        out.push(d);
        return;
    }
    if word == "oh" || word == "o" {
        out.push('0');
        return;
    }
    for b in word.bytes() {
        out.push(match b {
            b'o' => '0',
            b'l' | b'i' => '1',
            d => d as char,
        });
    }
}

/// `s.numerals()`: the form contact-detail patterns match (see the module
/// docs).
pub fn numerals(s: &str) -> String {
    let text = fold_chars(s);
    let spans = words(&text, char::is_alphanumeric);
    let mut kinds: Vec<Numeric> = spans.iter().map(|&(a, b)| numeric(&text[a..b])).collect();
    // A zero beside a number is a number (`five oh oh`, `oh five`); any
    // other is a word.
    for i in 1..kinds.len() {
        if kinds[i] == Numeric::Zero && kinds[i - 1] == Numeric::Yes {
            kinds[i] = Numeric::Yes;
        }
    }
    for i in (1..kinds.len()).rev() {
        if kinds[i - 1] == Numeric::Zero && kinds[i] == Numeric::Yes {
            kinds[i - 1] = Numeric::Yes;
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for (&(a, b), kind) in spans.iter().zip(&kinds) {
        let word = &text[a..b];
        let number = *kind == Numeric::Yes;
        let continues_a_number = number && in_number;
        if !out.is_empty() && !continues_a_number {
            out.push(' ');
        }
        if number {
            write_digits(word, &mut out);
        } else {
            out.push_str(word);
        }
        in_number = number;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_is_tr39s() {
        assert_eq!(skeleton("pаypal"), skeleton("paypal"), "Cyrillic а");
        assert_eq!(skeleton("m"), "rn");
        assert_ne!(skeleton("venmo"), skeleton("venom"));
    }

    #[test]
    fn folded_reads_confusables_and_width_as_ascii() {
        assert_eq!(folded("Pay on VЕNMО"), "pay on venmo", "Cyrillic Е and О");
        assert_eq!(folded("ｖｅｎｍｏ"), "venmo", "full-width");
        assert_eq!(folded("𝐯𝐞𝐧𝐦𝐨"), "venmo", "mathematical bold");
        assert_eq!(folded("ⓥⓔⓝⓜⓞ"), "venmo", "circled");
        assert_eq!(folded("vеnmо"), "venmo");
        assert_eq!(folded("νenmo"), "venmo", "Greek nu");
        assert_eq!(folded("café crème"), "cafe creme", "accents");
        assert_eq!(folded("ven\u{200b}mo"), "venmo", "zero-width space");
        assert_eq!(folded("ven\u{ad}mo"), "venmo", "soft hyphen");
    }

    #[test]
    fn folded_joins_spaced_out_letters() {
        assert_eq!(folded("pay me on v e n m o"), "pay me on venmo");
        assert_eq!(folded("t.e.l.e.g.r.a.m me"), "telegram me");
        assert_eq!(folded("w-h-a-t-s-a-p-p"), "whatsapp");
        assert_eq!(folded("c  a  s  h   app"), "cash app");
        assert_eq!(folded("v_e_n_m_o!!"), "venmo");
        // Two one-letter words stay words.
        assert_eq!(folded("a b test"), "a b test");
        assert_eq!(folded("I am a buyer"), "i am a buyer");
    }

    #[test]
    fn folded_reads_look_alikes_only_in_words_with_letters() {
        assert_eq!(folded("V3NM0"), "venmo");
        assert_eq!(folded("c@$h app"), "cash app");
        assert_eq!(folded("te1egram"), "teiegram", "1 reads as i");
        assert_eq!(folded("z3ll3"), "zelle");
        assert_eq!(folded("bid $50 at 7 pm"), "bid 50 at 7 pm");
        assert_eq!(folded("card 4242"), "card 4242");
        assert_eq!(folded("v 3 n m 0"), "venmo", "spaced look-alikes join, then read");
        assert_eq!(folded("paypal f&f, friends & family"), "paypal f and f friends and family");
    }

    #[test]
    fn folded_is_idempotent_and_keeps_honest_text() {
        for s in
            ["Great show tonight!", "Does this come with the box?", "i collect vintage cards", "pay me on v e n m o"]
        {
            let once = folded(s);
            assert_eq!(folded(&once), once, "{s}");
        }
        assert_eq!(folded("Great show tonight!"), "great show tonight");
        assert_eq!(folded(""), "");
        assert_eq!(folded(" ... "), "");
    }

    #[test]
    fn numerals_read_spelled_and_spread_out_digits() {
        assert_eq!(numerals("call 555 123 4567"), "call 5551234567");
        assert_eq!(numerals("+1 (555) 123-4567"), "15551234567");
        assert_eq!(numerals("five five five one two three four"), "5551234");
        assert_eq!(numerals("FIVE five 5 oh one"), "55501");
        assert_eq!(numerals("text 555l2o4"), "text 5551204");
        assert_eq!(numerals("５５５ １２３"), "555123", "full-width digits");
        assert_eq!(numerals("five oh oh"), "500");
        // The README's examples.
        assert_eq!(numerals("four one five 555 oh one 4 two"), "4155550142");
        assert_eq!(folded("ｃａｓｈ　ａｐｐ"), "cash app", "full-width, ideographic space");
        assert_eq!(folded("Pay on V 3 N M 0"), "pay on venmo");
    }

    #[test]
    fn numerals_leave_words_alone() {
        assert_eq!(numerals("oh nice, one more"), "oh nice 1 more");
        assert_eq!(numerals("no phone here"), "no phone here");
        assert_eq!(numerals("o"), "o");
        assert_eq!(numerals("lot 12 sold"), "lot 12 sold");
        assert_eq!(numerals(""), "");
    }

    #[test]
    fn arbitrary_text_never_panics() {
        for s in ["\u{0}", "\u{10ffff}", "ǅ", "ﷺ", "İstanbul", "ß", "日本語 テキスト", "🙂🙂 1 2 3"] {
            let _ = (folded(s), numerals(s), skeleton(s));
        }
    }
}
