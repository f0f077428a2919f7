//! How scammers write a message so that a plain keyword list misses it:
//! letters spaced out or dotted, Cyrillic look-alikes, full-width
//! characters, digits for letters. Half of the scam messages go out as
//! written; the other half in one of five disguises, chosen from the seed
//! and the message's sequence number so the main random stream (and every
//! other scenario) is unchanged.

/// One disguise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disguise {
    AsWritten,
    /// The longest word with spaces between its letters: `v e n m o`.
    Spaced,
    /// The longest word with dots between its letters: `v.e.n.m.o`.
    Dotted,
    /// Latin letters replaced by their Cyrillic look-alikes throughout.
    Cyrillic,
    /// The whole message in full-width forms: `ｖｅｎｍｏ`.
    FullWidth,
    /// `a`, `e`, `o` in the longest word written `4`, `3`, `0`.
    Digits,
}

impl Disguise {
    /// The disguise of message `seq` under `seed`: deterministic, half of
    /// them as written.
    pub(crate) fn pick(seed: u64, seq: u64) -> Disguise {
        match mix(seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 10 {
            0 => Disguise::Spaced,
            1 => Disguise::Dotted,
            2 => Disguise::Cyrillic,
            3 => Disguise::FullWidth,
            4 => Disguise::Digits,
            _ => Disguise::AsWritten,
        }
    }

    /// `text` in this disguise.
    pub(crate) fn apply(self, text: &str) -> String {
        match self {
            Disguise::AsWritten => text.to_string(),
            Disguise::Spaced => in_longest_word(text, |w| join_letters(w, " ")),
            Disguise::Dotted => in_longest_word(text, |w| join_letters(w, ".")),
            Disguise::Cyrillic => text.chars().map(cyrillic).collect(),
            Disguise::FullWidth => text.chars().map(full_width).collect(),
            Disguise::Digits => in_longest_word(text, |w| {
                w.chars()
                    .map(|c| match c.to_ascii_lowercase() {
                        'a' => '4',
                        'e' => '3',
                        'o' => '0',
                        _ => c,
                    })
                    .collect()
            }),
        }
    }
}

/// SplitMix64's finaliser: a well-spread 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `text` with its longest all-letter word (the first of equals) rewritten.
fn in_longest_word(text: &str, rewrite: impl Fn(&str) -> String) -> String {
    let longest = text
        .split(' ')
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic()))
        .fold("", |best, w| if w.len() > best.len() { w } else { best });
    if longest.is_empty() {
        return text.to_string();
    }
    text.replacen(longest, &rewrite(longest), 1)
}

fn join_letters(word: &str, separator: &str) -> String {
    word.chars().map(String::from).collect::<Vec<_>>().join(separator)
}

/// The Cyrillic letter that looks like `c`, or `c`.
fn cyrillic(c: char) -> char {
    match c {
        'a' => 'а',
        'c' => 'с',
        'e' => 'е',
        'o' => 'о',
        'p' => 'р',
        'x' => 'х',
        'y' => 'у',
        'A' => 'А',
        'C' => 'С',
        'E' => 'Е',
        'O' => 'О',
        'P' => 'Р',
        other => other,
    }
}

/// The full-width form of a printable ASCII character, a space as an
/// ideographic space.
fn full_width(c: char) -> char {
    match c {
        ' ' => '\u{3000}',
        '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xff01).unwrap_or(c),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_disguise_rewrites_as_described() {
        let text = "cheaper if you pay me on Venmo";
        assert_eq!(Disguise::AsWritten.apply(text), text);
        assert_eq!(Disguise::Spaced.apply(text), "c h e a p e r if you pay me on Venmo");
        assert_eq!(Disguise::Dotted.apply("pay me on Venmo"), "pay me on V.e.n.m.o");
        assert_eq!(Disguise::Cyrillic.apply("Venmo"), "Vеnmо");
        assert_eq!(Disguise::FullWidth.apply("Venmo 1"), "Ｖｅｎｍｏ\u{3000}１");
        assert_eq!(Disguise::Digits.apply("pay me on Venmo"), "pay me on V3nm0");
        assert_eq!(Disguise::Spaced.apply("415 555"), "415 555", "no word to space");
    }

    #[test]
    fn half_go_out_as_written_and_every_disguise_is_used() {
        let picks: Vec<Disguise> = (0..10_000).map(|seq| Disguise::pick(7, seq)).collect();
        let plain = picks.iter().filter(|d| **d == Disguise::AsWritten).count();
        assert!((4_500..5_500).contains(&plain), "{plain}");
        for d in [Disguise::Spaced, Disguise::Dotted, Disguise::Cyrillic, Disguise::FullWidth, Disguise::Digits] {
            assert!(picks.contains(&d), "{d:?}");
        }
        assert_eq!(Disguise::pick(7, 42), Disguise::pick(7, 42));
    }
}
