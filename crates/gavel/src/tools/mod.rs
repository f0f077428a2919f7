//! The rule author's and operator's offline commands: `gavel check`,
//! `gavel test` and `gavel eval` ([`check`], [`test`], [`eval`]), reading pack directories
//! and rendering diagnostics ([`pack`]), `gavel sim` ([`sim`]) and
//! `gavel dlq republish` ([`dlq`]).
//!
//! Nothing here touches the running engine; these are one-shot commands.

pub mod check;
pub mod dlq;
pub mod eval;
pub mod feed;
pub mod pack;
pub mod sim;
pub mod test;
