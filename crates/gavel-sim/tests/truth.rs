//! What the simulator puts in a recording: the same seed and config give
//! the same files byte for byte, and the ground truth has one record per
//! labelled event naming the right entities. The file formats themselves
//! are gavel-recording's, tested there.

use std::io::Cursor;

use gavel_recording::{read_truth, write_jsonl, write_protobuf_delimited};
use std::collections::{HashMap, HashSet};

use gavel_model::Payload;
use gavel_sim::{LookAlike, Scenario, SimConfig, SimEvent, Simulator, write_truth_line};

fn events(n: usize) -> Vec<SimEvent> {
    Simulator::new(SimConfig::default()).take(n).collect()
}

/// The three files `gavel sim` writes for `n` events of `config`.
fn files(config: SimConfig, n: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (mut jsonl, mut protobuf, mut truth) = (Vec::new(), Vec::new(), Vec::new());
    for e in Simulator::new(config).take(n) {
        write_jsonl(&mut jsonl, &e.event).unwrap();
        write_protobuf_delimited(&mut protobuf, &e.event).unwrap();
        write_truth_line(&mut truth, &e).unwrap();
    }
    (jsonl, protobuf, truth)
}

#[test]
fn same_seed_and_config_give_the_same_bytes() {
    let config = SimConfig { rate_per_sec: 2_000.0, ..SimConfig::default() };
    let a = files(config.clone(), 20_000);
    let b = files(config.clone(), 20_000);
    assert!(a == b, "two runs of one seed and config differ");
    assert!(!a.2.is_empty(), "20k events hold labelled ones");
    let c = files(SimConfig { seed: config.seed + 1, ..config }, 20_000);
    assert_ne!(a.0, c.0);
}

#[test]
fn truth_has_one_line_per_labelled_event_and_reads_back() {
    let events = events(50_000);
    let mut buf = Vec::new();
    let mut written = 0;
    for e in &events {
        written += usize::from(write_truth_line(&mut buf, e).unwrap());
    }
    let labelled: Vec<&SimEvent> = events.iter().filter(|e| e.scenario.is_some() || e.look_alike.is_some()).collect();
    assert!(labelled.iter().any(|e| e.scenario.is_some()) && labelled.iter().any(|e| e.look_alike.is_some()));
    assert_eq!(written, labelled.len());
    let records: Vec<_> = read_truth(Cursor::new(&buf)).collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), labelled.len());
    for (record, event) in records.iter().zip(&labelled) {
        assert_eq!(record.event_id, event.event.event_id);
        match event.scenario {
            Some(scenario) => {
                assert_eq!(record.scenario.parse::<Scenario>().unwrap(), scenario);
                assert_eq!(record.look_alike, None);
            }
            None => {
                assert_eq!(record.scenario, "none");
                assert_eq!(record.look_alike.as_deref(), event.look_alike.map(LookAlike::as_str));
            }
        }
        let entities: Vec<(&str, &str)> = record.entities.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(entities, event.entities());
        assert!(record.entities.contains_key("user"), "{record:?}");
        assert_eq!(Some(record), event.truth().as_ref());
    }
    // The documented shape, keys in order.
    let first = std::str::from_utf8(&buf).unwrap().lines().next().unwrap();
    assert!(first.starts_with(r#"{"event_id":"sim-7-"#), "{first}");
    assert!(first.contains(r#","scenario":""#) && first.contains(r#","entities":{"#), "{first}");
}

#[test]
fn truth_names_the_abuser_of_an_auction_close() {
    let close = events(200_000)
        .into_iter()
        .find(|e| e.scenario == Some(Scenario::NonPayingBidder) && e.event.kind().unwrap().as_str() == "auction_closed")
        .expect("a non-paying bidder wins within 200k events");
    let entities = close.entities();
    let user = entities.iter().find(|(k, _)| *k == "user").unwrap().1;
    assert!(user.starts_with("npb-"), "{entities:?}");
    assert!(!entities.iter().any(|(k, _)| *k == "device"), "the close's device is the seller's: {entities:?}");
}

#[test]
fn normal_traffic_that_is_no_look_alike_has_no_truth() {
    let normal = events(2_000).into_iter().find(|e| e.scenario.is_none() && e.look_alike.is_none()).unwrap();
    assert_eq!(normal.truth(), None);
    let mut buf = Vec::new();
    assert!(!write_truth_line(&mut buf, &normal).unwrap());
    assert!(buf.is_empty());
}

/// Every honest look-alike turns up in a compressed run, each does what its
/// name says, and none is abuse.
#[test]
fn honest_look_alikes_are_labelled_and_do_what_they_say() {
    let events = events(300_000);
    let mut seen: HashMap<LookAlike, usize> = HashMap::new();
    let mut duel_bidders: HashMap<String, HashSet<String>> = HashMap::new();
    let mut household_devices: HashMap<String, HashSet<String>> = HashMap::new();
    let mut cards_of_order: HashMap<String, Vec<(bool, String)>> = HashMap::new();
    let mut email_changed: HashSet<String> = HashSet::new();
    let mut new_phone_logins = 0;
    for e in &events {
        let Some(look_alike) = e.look_alike else { continue };
        assert_eq!(e.scenario, None, "a look-alike is honest: {e:?}");
        *seen.entry(look_alike).or_default() += 1;
        let user = e.event.user_id.clone();
        match (&e.event.payload, look_alike) {
            (Some(Payload::BidPlaced(bid)), LookAlike::BiddingDuel) => {
                duel_bidders.entry(bid.listing_id.clone()).or_default().insert(user);
            }
            (Some(Payload::BidPlaced(_)), LookAlike::Household) => {
                household_devices.entry(e.event.device_id.clone().unwrap()).or_default().insert(user);
            }
            (Some(Payload::PaymentDeclined(p)), LookAlike::SecondCard) => {
                cards_of_order
                    .entry(p.order_id.clone())
                    .or_default()
                    .push((false, p.card.clone().unwrap().fingerprint));
            }
            (Some(Payload::PaymentAuthorized(p)), LookAlike::SecondCard) => {
                cards_of_order.entry(p.order_id.clone()).or_default().push((true, p.card.clone().unwrap().fingerprint));
            }
            (Some(Payload::EmailChanged(_)), LookAlike::EmailThenNewPhone) => {
                email_changed.insert(user);
            }
            (Some(Payload::LoginSucceeded(_)), LookAlike::EmailThenNewPhone) => {
                assert!(email_changed.contains(&user), "the new phone logs in after the email change: {e:?}");
                assert!(e.event.device_id.as_deref().unwrap().ends_with("-new"), "{e:?}");
                new_phone_logins += 1;
            }
            _ => {}
        }
    }
    for look_alike in LookAlike::ALL {
        assert!(seen.get(&look_alike).copied().unwrap_or(0) > 0, "no {look_alike} in 300k events: {seen:?}");
    }
    assert!(duel_bidders.values().all(|users| users.len() <= 2), "a duel has two bidders");
    assert!(duel_bidders.values().any(|users| users.len() == 2));
    assert!(household_devices.values().any(|users| users.len() >= 2), "a household shares its device");
    assert!(new_phone_logins > 0);
    // A second card: the declined card is not the one that paid.
    assert!(!cards_of_order.is_empty());
    for (order, attempts) in &cards_of_order {
        let declined: Vec<_> = attempts.iter().filter(|(ok, _)| !ok).map(|(_, c)| c).collect();
        let paid: Vec<_> = attempts.iter().filter(|(ok, _)| *ok).map(|(_, c)| c).collect();
        assert_eq!((declined.len(), paid.len()), (1, 1), "{order}: {attempts:?}");
        assert_ne!(declined[0], paid[0], "{order}");
    }
}
