//! [`EventKind`]: the payload kind of an event as a small, copyable value,
//! with the snake_case names rule packs and metric labels use.

use crate::{Event, Payload};

macro_rules! event_kinds {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// The kind of an event's payload.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )+
        }

        impl EventKind {
            /// Every kind, in contract order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),+];

            /// The snake_case name used in rule packs, JSON field names and metric labels.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)+
                }
            }

            /// The kind with this snake_case name.
            pub fn from_name(name: &str) -> Option<EventKind> {
                match name {
                    $($name => Some(EventKind::$variant),)+
                    _ => None,
                }
            }

            /// The kind of a payload.
            pub const fn of(payload: &Payload) -> EventKind {
                match payload {
                    $(Payload::$variant(_) => EventKind::$variant,)+
                }
            }
        }
    };
}

event_kinds! {
    ShowStarted => "show_started",
    ShowEnded => "show_ended",
    ListingCreated => "listing_created",
    BidPlaced => "bid_placed",
    AuctionClosed => "auction_closed",
    PaymentAttempted => "payment_attempted",
    PaymentAuthorized => "payment_authorized",
    PaymentDeclined => "payment_declined",
    RefundIssued => "refund_issued",
    ChargebackFiled => "chargeback_filed",
    PayoutRequested => "payout_requested",
    PayoutMethodChanged => "payout_method_changed",
    ChatMessageSent => "chat_message_sent",
    AccountCreated => "account_created",
    LoginSucceeded => "login_succeeded",
    LoginFailed => "login_failed",
    PasswordChanged => "password_changed",
    EmailChanged => "email_changed",
}

impl EventKind {
    /// A dense index in `0..EventKind::ALL.len()`, for per-kind tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// The kind of this event's payload, `None` when it has none.
    pub fn kind(&self) -> Option<EventKind> {
        self.payload.as_ref().map(EventKind::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventKind::from_name("bid"), None);
    }

    #[test]
    fn index_is_dense() {
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }
}
