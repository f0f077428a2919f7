//! The marketplace's default topic layout.

/// The marketplace's default topic layout: which input topic carries each
/// event kind. Deployments may map kinds differently; gavel itself routes by
/// the payload, not by the topic.
pub fn topic_for(kind: gavel_model::EventKind) -> &'static str {
    use gavel_model::EventKind as K;
    match kind {
        K::ShowStarted | K::ShowEnded | K::ListingCreated | K::AuctionClosed => "marketplace.shows",
        K::BidPlaced => "marketplace.bids",
        K::PaymentAttempted
        | K::PaymentAuthorized
        | K::PaymentDeclined
        | K::RefundIssued
        | K::ChargebackFiled
        | K::PayoutRequested
        | K::PayoutMethodChanged => "marketplace.payments",
        K::ChatMessageSent => "marketplace.chat",
        K::AccountCreated | K::LoginSucceeded | K::LoginFailed | K::PasswordChanged | K::EmailChanged => {
            "marketplace.accounts"
        }
    }
}

/// Every topic [`topic_for`] names.
pub const MARKETPLACE_TOPICS: [&str; 5] =
    ["marketplace.shows", "marketplace.bids", "marketplace.payments", "marketplace.chat", "marketplace.accounts"];
