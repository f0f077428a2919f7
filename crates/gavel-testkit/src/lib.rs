//! The broker test kit, in one place for every test and benchmark that
//! needs a Kafka broker.
//!
//! - [`shared_brokers`]: the broker `scripts/test` started for the whole
//!   run (`GAVEL_TEST_BROKERS`). A test that needs one and finds none
//!   fails, saying how to get one; outside CI, `GAVEL_SKIP_BROKER_TESTS=1`
//!   skips instead, and says so on stderr. Under CI (`CI=true`) nothing
//!   skips.
//! - [`Broker`]: a private Apache Kafka broker (combined broker and
//!   controller, KRaft) of one test's own, for tests that kill and restart
//!   it. It runs `scripts/kafka/broker`, the same script the test command
//!   and the benchmarks use, which fetches the pinned Kafka from Maven
//!   Central once and caches it.
//!
//! This crate starts processes and opens sockets; it is for tests and
//! benchmarks only, never a dependency of gavel itself.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that names the shared test broker.
pub const BROKERS_VAR: &str = "GAVEL_TEST_BROKERS";
/// The variable that lets a run outside CI skip broker tests.
pub const SKIP_VAR: &str = "GAVEL_SKIP_BROKER_TESTS";

/// Whether this is a CI run (`CI=true`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// What to do about a test that needs a broker it cannot have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Fail the test, saying how to get a broker.
    Fail,
    /// Skip it (outside CI, on request), saying so.
    Skip,
}

/// The rule for a missing broker: fail, unless outside CI with
/// `GAVEL_SKIP_BROKER_TESTS=1`.
pub fn when_missing(ci: bool, skip_requested: bool) -> Missing {
    if skip_requested && !ci { Missing::Skip } else { Missing::Fail }
}

/// Applies [`when_missing`] for a test named `test` that lacks `what`:
/// panics with how to get it, or returns after a loud line on stderr.
fn missing(test: &str, what: &str) {
    let skip = std::env::var(SKIP_VAR).is_ok_and(|v| v == "1");
    match when_missing(under_ci(), skip) {
        Missing::Fail => panic!(
            "{test} needs {what}. Run the tests through ./scripts/test (it starts Apache Kafka), \
             or set {BROKERS_VAR}=host:port{}",
            if under_ci() { "" } else { ", or set GAVEL_SKIP_BROKER_TESTS=1 to skip broker tests" }
        ),
        Missing::Skip => eprintln!("\n*** SKIPPED {test}: no {what} ({SKIP_VAR}=1) ***\n"),
    }
}

/// The broker the test command started, or `None` when the test may skip
/// (see the module doc); `test` names the caller in the message.
pub fn shared_brokers(test: &str) -> Option<String> {
    match std::env::var(BROKERS_VAR) {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            missing(test, &format!("a broker ({BROKERS_VAR})"));
            None
        }
    }
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    // Binding port 0 on loopback only fails when the machine has no ports left.
    TcpListener::bind("127.0.0.1:0").expect("a free loopback port").local_addr().expect("bound address").port()
}

/// Waits until something listens on `port`; false after `within`.
pub fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `scripts/kafka/broker` of this checkout.
pub fn broker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka/broker")
}

/// Whether a broker can be started here: Java and Maven (or the cached
/// classpath) are present.
fn can_start() -> bool {
    Command::new(broker_script())
        .arg("classpath")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A private Apache Kafka broker with its data in a temporary directory,
/// kept across [`Broker::restart`] and removed on drop.
#[derive(Debug)]
pub struct Broker {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts one, or returns `None` when the test may skip (see the
    /// module doc) and no broker can be started here.
    pub fn start(test: &str) -> Option<Broker> {
        if !can_start() {
            missing(test, "a private Kafka broker (scripts/kafka/broker needs java and mvn)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("gavel-kafka-{}", uuid::Uuid::new_v4().simple()));
        let mut broker = Broker { dir, port: free_port(), child: None };
        broker.launch();
        Some(broker)
    }

    fn launch(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("broker directory");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .expect("broker log file");
        let child = Command::new(broker_script())
            .arg("run")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start scripts/kafka/broker");
        self.child = Some(child);
        if !wait_for_port(self.port, Duration::from_secs(60)) {
            let log = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
            panic!("Kafka did not listen on {} within 60 s:\n{log}", self.port);
        }
    }

    /// `host:port` of the broker.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker with SIGKILL: no chance to tidy up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_broker_fails_unless_skipping_is_asked_for_outside_ci() {
        assert_eq!(when_missing(false, false), Missing::Fail);
        assert_eq!(when_missing(false, true), Missing::Skip);
        assert_eq!(when_missing(true, true), Missing::Fail);
        assert_eq!(when_missing(true, false), Missing::Fail);
    }

    #[test]
    fn the_broker_script_is_where_the_kit_looks() {
        assert!(broker_script().is_file(), "{}", broker_script().display());
    }
}
