//! Shared set-up for gavel's benchmarks: the shipped rule pack and a
//! pre-generated, pre-encoded slice of simulated marketplace traffic, so the
//! timed loops measure gavel and not the simulator.

use gavel_model::{Encoding, encode_json, encode_protobuf};
use gavel_rules::Pack;
use gavel_sim::{SimConfig, Simulator};

/// The shipped pack, `rules/marketplace.yaml`.
pub fn shipped_pack() -> Pack {
    let text = include_str!("../../rules/marketplace.yaml");
    // The shipped pack is checked by the test suite; failing here is a bug.
    Pack::compile([("rules/marketplace.yaml", text)]).expect("shipped pack compiles")
}

/// `n` simulated events encoded as `encoding`, with the default seed.
pub fn encoded_events(n: usize, encoding: Encoding) -> Vec<Vec<u8>> {
    Simulator::new(SimConfig::default())
        .take(n)
        .map(|e| match encoding {
            Encoding::Protobuf => encode_protobuf(&e.event),
            // Simulated events always serialize.
            Encoding::Json => encode_json(&e.event).expect("simulated events encode"),
        })
        .collect()
}
