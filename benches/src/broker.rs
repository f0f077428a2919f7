//! A broker for the through-Kafka benchmarks: the one named by
//! `GAVEL_BENCH_BROKERS`, or a private Apache Kafka started here through
//! the broker test kit (`scripts/kafka/broker`, the test command's broker).

use gavel_testkit::Broker;

/// A broker address, and the Kafka process behind it if this started one.
#[derive(Debug)]
pub struct BenchBroker {
    /// `host:port`.
    pub addr: String,
    _own: Option<Broker>,
}

impl BenchBroker {
    /// `GAVEL_BENCH_BROKERS` if set, else a fresh Kafka broker; `None`
    /// when neither can be had.
    pub fn start() -> Option<BenchBroker> {
        if let Ok(addr) = std::env::var("GAVEL_BENCH_BROKERS") {
            return Some(BenchBroker { addr, _own: None });
        }
        let own = Broker::start("the through-Kafka benchmark")?;
        Some(BenchBroker { addr: own.addr(), _own: Some(own) })
    }
}
