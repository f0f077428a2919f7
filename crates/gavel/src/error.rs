//! The binary's errors, classified by who must act and whether trying
//! again can help: bad input (a config, rule pack, event file or flag the
//! user gave: fix it, a retry changes nothing), an external system (the
//! broker, the network, the filesystem: often transient), or a bug in
//! gavel (report it). `main` prints the class with the error and exits
//! with a code per class (sysexits), so scripts and orchestrators can tell
//! "fix your config" from "restart me later".
//!
//! Library crates keep their own typed errors; this module only reads
//! them, walking an `anyhow` chain.

use std::fmt;
use std::io::ErrorKind;

/// Who must act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The user: a config, rule pack, recording or flag is wrong.
    User,
    /// Something outside gavel: the broker, the network, a file system.
    External,
    /// Gavel itself: a panic or a broken invariant.
    Bug,
}

/// How an error is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// Who must act.
    pub actor: Actor,
    /// Whether the same command may succeed if tried again unchanged.
    pub retry_helps: bool,
}

impl Class {
    /// The process exit code: 65 (`EX_DATAERR`) for bad input, 75
    /// (`EX_TEMPFAIL`) for an external failure worth retrying, 69
    /// (`EX_UNAVAILABLE`) for one that is not, 70 (`EX_SOFTWARE`) for a bug.
    pub fn exit_code(self) -> u8 {
        match (self.actor, self.retry_helps) {
            (Actor::User, _) => 65,
            (Actor::External, true) => 75,
            (Actor::External, false) => 69,
            (Actor::Bug, _) => 70,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.actor, self.retry_helps) {
            (Actor::User, _) => "bad input: fix it and run again; retrying as is will not help",
            (Actor::External, true) => "external system: likely transient, retrying may help",
            (Actor::External, false) => "external system: check it; retrying as is will not help",
            (Actor::Bug, _) => "bug in gavel: please report it with the log",
        })
    }
}

/// Bad input the binary found itself (a config problem, a missing flag,
/// a malformed line): always [`Actor::User`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// An [`anyhow::Error`] for bad input, for `?` and `bail`-style returns.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    BadInput(message.into()).into()
}

/// Classifies `error` by the first cause in its chain that says who must
/// act. Anything unrecognised is taken as external and not retryable.
pub fn classify(error: &anyhow::Error) -> Class {
    let user = Class { actor: Actor::User, retry_helps: false };
    for cause in error.chain() {
        if cause.is::<BadInput>()
            || cause.is::<gavel_rules::RulesError>()
            || cause.is::<config::ConfigError>()
            || cause.is::<serde_json::Error>()
            || cause.is::<gavel_model::ModelError>()
            || cause.is::<std::net::AddrParseError>()
        {
            return user;
        }
        if let Some(gavel_kafka::KafkaError::UnknownTopic(_) | gavel_kafka::KafkaError::UnknownPartition { .. }) =
            cause.downcast_ref::<gavel_kafka::KafkaError>()
        {
            // A topic or partition the user named (a flag, the config).
            return user;
        }
        if let Some(join) = cause.downcast_ref::<tokio::task::JoinError>() {
            return Class { actor: if join.is_panic() { Actor::Bug } else { Actor::External }, retry_helps: false };
        }
        if cause.is::<rdkafka::error::KafkaError>() {
            return Class { actor: Actor::External, retry_helps: true };
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                ErrorKind::NotFound
                | ErrorKind::PermissionDenied
                | ErrorKind::InvalidData
                | ErrorKind::InvalidInput => user,
                ErrorKind::AddrInUse => Class { actor: Actor::External, retry_helps: false },
                _ => Class { actor: Actor::External, retry_helps: true },
            };
        }
    }
    Class { actor: Actor::External, retry_helps: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn errors_are_classified_by_who_must_act() {
        let missing = std::fs::read("/nonexistent/gavel.toml").context("reading the config").unwrap_err();
        assert_eq!(classify(&missing), Class { actor: Actor::User, retry_helps: false });

        let bad = bad_input("kafka.group_id is empty");
        assert_eq!(classify(&bad).exit_code(), 65);

        let kafka = anyhow::Error::from(rdkafka::error::KafkaError::Canceled).context("joining the group");
        assert_eq!(classify(&kafka), Class { actor: Actor::External, retry_helps: true });
        assert_eq!(classify(&kafka).exit_code(), 75);

        let refused = anyhow::Error::from(std::io::Error::from(ErrorKind::ConnectionRefused));
        assert!(classify(&refused).retry_helps);

        let unknown = anyhow::Error::from(gavel_kafka::KafkaError::UnknownTopic("risk.dlqq".into()));
        assert_eq!(classify(&unknown.context("reading risk.dlqq")).exit_code(), 65);

        let busy = anyhow::Error::from(std::io::Error::from(ErrorKind::AddrInUse));
        assert_eq!(classify(&busy).exit_code(), 69);
    }

    #[test]
    fn a_panicked_task_is_a_bug() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let joined = runtime.block_on(async { tokio::spawn(async { panic!("boom") }).await });
        let error = anyhow::Error::from(joined.unwrap_err());
        assert_eq!(classify(&error).actor, Actor::Bug);
        assert_eq!(classify(&error).exit_code(), 70);
    }
}
