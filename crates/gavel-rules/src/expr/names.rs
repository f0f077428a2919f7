//! What the expression compiler resolves names against: the [`Env`] trait
//! and what a name can mean ([`Resolved`]), the pack's [`StringList`]s, and
//! the [`CompileError`]s and [`CompileWarning`]s it reports.

use std::collections::HashSet;
use std::sync::Arc;

use aho_corasick::AhoCorasick;

use super::value::Type;

/// A named list of strings from a rule pack, with the structures that make
/// `x in lists.name` O(1) and keyword scans one pass.
#[derive(Debug)]
pub struct StringList {
    /// The list's name.
    pub name: String,
    /// Entries, in file order.
    pub items: Vec<String>,
    set: HashSet<String>,
    matcher: AhoCorasick,
    matcher_ci: AhoCorasick,
}

impl StringList {
    /// Builds a list and its matchers.
    pub fn new(name: impl Into<String>, items: Vec<String>) -> Result<Self, String> {
        let set = items.iter().cloned().collect();
        let matcher = AhoCorasick::new(&items).map_err(|e| e.to_string())?;
        let matcher_ci =
            AhoCorasick::builder().ascii_case_insensitive(true).build(&items).map_err(|e| e.to_string())?;
        Ok(StringList { name: name.into(), items, set, matcher, matcher_ci })
    }

    /// Exact membership.
    pub fn contains(&self, item: &str) -> bool {
        self.set.contains(item)
    }

    /// Whether any entry occurs in `text`.
    pub fn occurs_in(&self, text: &str, ascii_case_insensitive: bool) -> bool {
        if self.items.iter().any(String::is_empty) {
            return true;
        }
        let matcher = if ascii_case_insensitive { &self.matcher_ci } else { &self.matcher };
        matcher.is_match(text)
    }
}

/// What a qualified name means in an environment.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A value read from the activation's slot.
    Field {
        /// Slot number passed to [`super::Activation::field`].
        slot: u32,
        /// Its static type.
        ty: Type,
    },
    /// A named string list.
    List(Arc<StringList>),
    /// The labels set on one of the event's entities (`labels.user`), by
    /// entity number; usable only on the right of `in`.
    Labels(u32),
    /// A namespace: the name needs more segments.
    Namespace,
}

/// The names an expression may use.
pub trait Env {
    /// Resolves a qualified name (`["event", "bid_placed", "amount"]`). On
    /// failure returns a message saying what is wrong, naming the nearest
    /// valid name where there is one.
    fn resolve(&self, segments: &[&str]) -> Result<Resolved, String>;

    /// The values a string field can hold, when that is a closed set
    /// (`event.kind`: the kinds the expression runs on). Comparing such a
    /// field with a constant outside the set is warned about (`W003`).
    fn known_values(&self, _segments: &[&str]) -> Option<Vec<String>> {
        None
    }

    /// The feature a qualified name (`["features", "x"]`) names, as its
    /// number for [`super::Activation::feature_at`] and the type it reads
    /// as, for `features.x.of(key)`. `None` where the name is not a
    /// feature (the default: environments without features).
    fn feature(&self, _segments: &[&str]) -> Option<(u32, Type)> {
        None
    }
}

/// One compile error, as byte offsets into the expression source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// First byte of the offending text.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// What is wrong.
    pub message: String,
}

/// Something legal but almost certainly not what the author meant, as
/// byte offsets into the expression source. The plan compiles; tools show
/// warnings and `--deny-warnings` turns them into failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileWarning {
    /// First byte of the text warned about.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// A stable code: `W003` a comparison with a value the field never
    /// holds, `W004` a comparison that is constant.
    pub code: &'static str,
    /// What is suspicious, and what to write instead.
    pub message: String,
}

/// The nearest candidate by edit distance, if close enough to be a typo.
pub fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min()
        .map(|(_, c)| c)
}
