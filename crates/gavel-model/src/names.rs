//! Snake_case names for the proto enums gavel writes in rule packs, metric
//! labels, admin output and reports: [`ActionType`], [`Decision`],
//! [`RuleMode`] and [`EntityType`], in the style of [`crate::EventKind`].
//!
//! Each enum gets `ALL` (every value in value order, `Unspecified` first, so
//! `ALL.len()` sizes a per-value table and [`Decision::index`] indexes it),
//! `SPECIFIED` (every value a pack may name), `as_str` and `from_name`. The
//! names are the proto value names without their prefix, lower-cased. This
//! module does not parse packs or say which values a pack may use where.

use crate::pb::{ActionType, Decision, EntityType, RuleMode};

macro_rules! proto_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value in value order, `Unspecified` first: `ALL[v.index()] == v`.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// Every value but `Unspecified`: the ones a rule pack may name.
            pub const SPECIFIED: &'static [$ty] = Self::ALL.split_at(1).1;

            /// The snake_case name used in rule packs, metric labels and reports.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }

            /// The value with this snake_case name (`unspecified` included).
            pub fn from_name(name: &str) -> Option<$ty> {
                match name {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }

            /// A dense index in `0..ALL.len()`, for per-value tables.
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The value with proto number `value`; unknown numbers (from a
            /// newer producer) read as `Unspecified`.
            pub fn from_i32_or_unspecified(value: i32) -> $ty {
                $ty::try_from(value).unwrap_or($ty::Unspecified)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

proto_names!(ActionType {
    Unspecified => "unspecified",
    BlockBid => "block_bid",
    CancelBid => "cancel_bid",
    HoldOrder => "hold_order",
    HoldPayout => "hold_payout",
    RequireStepUp => "require_step_up",
    MuteChat => "mute_chat",
    SuspendAccount => "suspend_account",
    SendToReview => "send_to_review",
});

proto_names!(Decision {
    Unspecified => "unspecified",
    Allow => "allow",
    Review => "review",
    Challenge => "challenge",
    Block => "block",
});

proto_names!(RuleMode {
    Unspecified => "unspecified",
    Enforce => "enforce",
    Shadow => "shadow",
});

proto_names!(EntityType {
    Unspecified => "unspecified",
    User => "user",
    Device => "device",
    Ip => "ip",
    Card => "card",
    Show => "show",
    Listing => "listing",
    Bid => "bid",
    Order => "order",
    Payout => "payout",
    ChatMessage => "chat_message",
});

/// Joins names as prose: `a, b or c` (`a` alone; empty for none). Used by
/// "expected …" messages so they list exactly the names a table holds.
pub fn or_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! check_table {
        ($ty:ident) => {
            for (i, v) in $ty::ALL.iter().enumerate() {
                assert_eq!(v.index(), i, "{} is dense", stringify!($ty));
                assert_eq!(*v as i32 as usize, i, "{} is in value order", stringify!($ty));
                assert_eq!($ty::from_name(v.as_str()), Some(*v));
                assert_eq!($ty::from_i32_or_unspecified(i as i32), *v);
                // The proto name is the snake_case name, upper-cased, behind the prefix.
                assert!(v.as_str_name().ends_with(&v.as_str().to_ascii_uppercase()));
            }
            assert_eq!($ty::SPECIFIED.len() + 1, $ty::ALL.len());
            assert!(!$ty::SPECIFIED.contains(&$ty::Unspecified));
            assert_eq!($ty::from_name("nope"), None);
            assert_eq!($ty::from_i32_or_unspecified(999), $ty::Unspecified);
        };
    }

    #[test]
    fn tables_are_dense_and_round_trip() {
        check_table!(ActionType);
        check_table!(Decision);
        check_table!(RuleMode);
        check_table!(EntityType);
    }

    #[test]
    fn names_are_the_pack_names() {
        assert_eq!(ActionType::RequireStepUp.as_str(), "require_step_up");
        assert_eq!(Decision::Challenge.to_string(), "challenge");
        assert_eq!(RuleMode::Shadow.as_str(), "shadow");
        assert_eq!(EntityType::ChatMessage.as_str(), "chat_message");
    }

    #[test]
    fn or_list_reads_as_prose() {
        assert_eq!(or_list([]), "");
        assert_eq!(or_list(["a"]), "a");
        assert_eq!(or_list(["a", "b"]), "a or b");
        assert_eq!(or_list(RuleMode::SPECIFIED.iter().map(|m| m.as_str())), "enforce or shadow");
    }
}
