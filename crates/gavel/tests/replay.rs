//! `gavel replay` on simulated traffic: the shipped pack's detection quality
//! stays above its floors, a changed threshold shows in the diff and an
//! unchanged pack shows nothing, and the same input gives the same bytes.
//!
//! The floors come from the run documented in README.md ("Detection
//! report"): 300,000 events, seed 7, 5,000 events/s, the shipped pack. The
//! simulator is deterministic, so this test sees exactly those figures; a
//! floor sits a little below each so that only a real loss fails it.

use std::path::{Path, PathBuf};
use std::process::Command;

use gavel::backtest::{Recording, Report, Truth, replay};
use gavel_rules::Pack;
use gavel_sim::{SimConfig, Simulator, write_truth_line};

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn shipped() -> Pack {
    gavel::tools::pack::load(&shipped_dir()).unwrap()
}

/// `n` simulated events with the README's settings, and their ground truth.
fn simulate(n: usize) -> (Recording, Truth) {
    record(Simulator::new(SimConfig::default()).take(n))
}

fn record(sims: impl Iterator<Item = gavel_sim::SimEvent>) -> (Recording, Truth) {
    let mut truth = Vec::new();
    let mut events = Vec::new();
    for sim in sims {
        write_truth_line(&mut truth, &sim).unwrap();
        events.push(sim.event);
    }
    (Recording::new(events), Truth::parse(&String::from_utf8(truth).unwrap()).unwrap())
}

/// (scenario, recall, user recall, precision) floors.
const FLOORS: &[(&str, f64, f64, f64)] = &[
    ("account_takeover", 0.07, 0.01, 0.97),
    ("bid_bot", 0.95, 1.0, 0.97),
    ("card_testing", 0.95, 1.0, 0.97),
    ("chargeback_abuser", 0.19, 0.85, 0.97),
    ("chat_spam", 0.97, 1.0, 0.97),
    ("non_paying_bidder", 0.19, 0.75, 0.85),
    ("off_platform_scam", 0.97, 1.0, 0.97),
    ("risky_new_seller", 0.45, 0.90, 0.97),
    ("shared_card", 0.30, 0.75, 0.97),
    ("shill_ring", 0.92, 1.0, 0.97),
];

#[test]
fn the_shipped_pack_catches_every_scenario_above_its_floor() {
    let (recording, truth) = simulate(300_000);
    let report = replay(&recording, shipped(), None, Some(&truth), &mut |_| {});
    let detection = report.truth.as_ref().expect("truth given");
    let mut failures = Vec::new();
    for &(scenario, recall, user_recall, precision) in FLOORS {
        let Some(score) = detection.scenarios.get(scenario) else {
            failures.push(format!("{scenario}: not in the simulated traffic"));
            continue;
        };
        for (what, value, floor) in [
            ("recall", score.recall, recall),
            ("user recall", score.user_recall, user_recall),
            ("precision", score.precision, precision),
        ] {
            if value < floor {
                failures.push(format!("{scenario}: {what} {value:.3} below its floor {floor}"));
            }
        }
    }
    let false_positives = detection.scenarios["none"].flagged;
    // 8 of 293,468 normal events flagged in the documented run, and 8 of
    // 4,252 honest look-alike users.
    if false_positives > 20 {
        failures.push(format!("{false_positives} normal events flagged (floor: at most 20)"));
    }
    look_alike_ceiling(detection, 20, &mut failures);
    assert!(failures.is_empty(), "{}\n\n{}", failures.join("\n"), report.table());
}

/// (scenario, user recall, precision) floors of a day of marketplace time,
/// seed 11, 5 normal events a second: README, "Detection over days".
const DAY_FLOORS: &[(&str, f64, f64)] = &[
    ("account_takeover", 0.01, 0.85),
    ("bid_bot", 1.0, 0.99),
    ("card_testing", 0.9, 0.99),
    ("chargeback_abuser", 0.75, 0.8),
    ("chat_spam", 1.0, 0.99),
    ("non_paying_bidder", 0.25, 0.4),
    ("off_platform_scam", 1.0, 0.99),
    ("risky_new_seller", 1.0, 0.95),
    ("shared_card", 0.7, 0.99),
    ("shill_ring", 1.0, 0.99),
];

#[test]
fn a_day_of_marketplace_time_on_a_held_out_seed_stays_above_its_floors() {
    let config = SimConfig {
        seed: 11,
        rate_per_sec: 5.0,
        live_shows: SimConfig::shows_for_rate(5.0),
        timeline: gavel_sim::Timeline::Days,
        ..SimConfig::default()
    };
    let end = config.start_ms + 86_400_000;
    let day = Simulator::new(config).take_while(|sim| gavel_model::event_time_ms(&sim.event).is_some_and(|t| t < end));
    let (recording, truth) = record(day);
    let report = replay(&recording, shipped(), None, Some(&truth), &mut |_| {});
    let detection = report.truth.as_ref().expect("truth given");
    let mut failures = Vec::new();
    for &(scenario, user_recall, precision) in DAY_FLOORS {
        let Some(score) = detection.scenarios.get(scenario) else {
            failures.push(format!("{scenario}: not in the simulated day"));
            continue;
        };
        for (what, value, floor) in
            [("user recall", score.user_recall, user_recall), ("precision", score.precision, precision)]
        {
            if value < floor {
                failures.push(format!("{scenario}: {what} {value:.3} below its floor {floor}"));
            }
        }
    }
    // 20 of 431,614 normal events flagged in the documented run, and 16
    // of 1,548 honest look-alike users.
    let false_positives = detection.scenarios["none"].flagged;
    if false_positives > 40 {
        failures.push(format!("{false_positives} normal events flagged (floor: at most 40)"));
    }
    look_alike_ceiling(detection, 30, &mut failures);
    assert!(failures.is_empty(), "{}\n\n{}", failures.join("\n"), report.table());
}

/// Fails when more than `ceiling` honest look-alike users are flagged, or
/// when the truth names none (the simulator stopped labelling them).
fn look_alike_ceiling(detection: &gavel::backtest::Detection, ceiling: u64, failures: &mut Vec<String>) {
    match &detection.look_alike_total {
        None => failures.push("the truth names no honest look-alike".into()),
        Some(all) if all.users_flagged > ceiling => failures.push(format!(
            "{} of {} honest look-alike users flagged (ceiling: {ceiling})",
            all.users_flagged, all.users
        )),
        Some(_) => {}
    }
}

/// The shipped pack in a temporary directory, with `edit` applied to one file.
fn edited_pack(name: &str, file: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gavel-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy(&shipped_dir(), &dir);
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = edit(&text);
    assert_ne!(text, changed, "the edit changed nothing");
    std::fs::write(&path, changed).unwrap();
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn diff_of(report: &Report) -> &gavel::backtest::Diff {
    report.baseline.as_ref().expect("baseline given")
}

#[test]
fn a_threshold_change_shows_in_the_diff_and_an_identical_pack_shows_nothing() {
    let (recording, truth) = simulate(60_000);

    let same = replay(&recording, shipped(), Some(shipped()), None, &mut |_| {});
    let diff = diff_of(&same);
    assert!(diff.rules_changed.is_empty(), "{:?}", diff.rules_changed);
    assert!(diff.decisions_changed.is_empty(), "{:?}", diff.decisions_changed);
    assert_eq!(diff.flagged_changed, (0, 0));
    assert!(diff.examples.is_empty());

    // chat_flood: more than 30 messages a minute → more than 3.
    let dir = edited_pack("threshold", "chat.yaml", |t| {
        t.replace("features.chat_messages_per_user_1m > 30", "features.chat_messages_per_user_1m > 3")
    });
    let looser = gavel::tools::pack::load(&dir).unwrap();
    let report = replay(&recording, looser, Some(shipped()), Some(&truth), &mut |_| {});
    let diff = diff_of(&report);
    let (before, after) = diff.rules_changed.get("chat_flood").copied().expect("chat_flood changed");
    assert!(after > before, "a lower threshold fires more: {before} → {after}");
    assert_eq!(diff.rules_changed.len(), 1, "only chat_flood changed: {:?}", diff.rules_changed);
    assert!(!diff.decisions_changed.is_empty());
    assert!(!diff.examples.is_empty() && diff.examples[0].replayed_rules.iter().any(|r| r.starts_with("chat_flood")));
    assert!(report.table().contains("rule chat_flood"), "{}", report.table());

    // What an analyst needs to decide: the truth of each changed event, the
    // baseline's detection beside the candidate's, the actions' change.
    let (actions_before, actions_after) =
        diff.actions_changed.values().fold((0, 0), |(b, a), (before, after)| (b + before, a + after));
    assert!(actions_after > actions_before, "a looser threshold asks for more: {:?}", diff.actions_changed);
    let by_truth = diff.flagged_changed_by_truth.as_ref().expect("truth given");
    let gained: u64 = by_truth.values().map(|(_, gained)| gained).sum();
    assert_eq!(gained, diff.flagged_changed.1, "{by_truth:?}");
    assert!(diff.examples.iter().all(|e| e.truth.is_some()), "{:?}", diff.examples);
    let (was, now) =
        (&diff.truth.as_ref().expect("baseline scored").scenarios, &report.truth.as_ref().unwrap().scenarios);
    assert!(now["none"].flagged >= was["none"].flagged, "a looser threshold flags no fewer normal events");
    assert_eq!(now["bid_bot"], was["bid_bot"], "a chat threshold leaves bid bots alone");
    let table = report.table();
    assert!(table.contains("scenario: baseline → now") && table.contains("  action "), "{table}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_command_line_round_trip_is_byte_identical() {
    let dir = std::env::temp_dir().join(format!("gavel-replay-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (events, truth) = (dir.join("events.pb"), dir.join("truth.jsonl"));
    let gavel = env!("CARGO_BIN_EXE_gavel");
    let status = Command::new(gavel)
        .args(["sim", "--events", "20000", "--out"])
        .arg(&events)
        .arg("--truth")
        .arg(&truth)
        .status()
        .unwrap();
    assert!(status.success());
    let run = || {
        let out = Command::new(gavel)
            .args(["replay", "--json", "--input"])
            .arg(&events)
            .arg("--rules")
            .arg(shipped_dir())
            .arg("--baseline")
            .arg(shipped_dir())
            .arg("--truth")
            .arg(&truth)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let (first, second) = (run(), run());
    assert_eq!(first, second, "two replays of the same input differ");
    let report: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(report["events"], 20_000);
    assert!(report["truth"]["scenarios"]["bid_bot"]["flagged"].as_u64().unwrap() > 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sim_duration_writes_that_much_marketplace_time() {
    let dir = std::env::temp_dir().join(format!("gavel-sim-days-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("days.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["sim", "--duration", "3d", "--rate", "0.5", "--out"])
        .arg(&events)
        .status()
        .unwrap();
    assert!(status.success());
    let file = std::io::BufReader::new(std::fs::File::open(&events).unwrap());
    let times: Vec<i64> =
        gavel_recording::read_jsonl(file).map(|event| gavel_model::event_time_ms(&event.unwrap()).unwrap()).collect();
    let start = SimConfig::default().start_ms;
    let (first, last) = (times[0], *times.last().unwrap());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "event time never goes back");
    assert!(first >= start && last < start + 3 * 86_400_000, "{first}..{last}");
    // The last event comes within the run's last hour: three days, not fewer.
    assert!(last > start + 3 * 86_400_000 - 3_600_000, "{last}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_topic_replays_like_a_file() {
    let Some(brokers) = gavel_testkit::shared_brokers("a_topic_replays_like_a_file") else { return };
    let topic = format!("replay-{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let events: Vec<gavel_model::Event> = Simulator::new(SimConfig::default()).take(3_000).map(|s| s.event).collect();
    runtime.block_on(async {
        let settings = gavel_kafka::KafkaSettings::new(&brokers, "replay-test", vec![]);
        gavel_kafka::create_topics(&settings, &[&topic], 3).await.unwrap();
        let producer: rdkafka::producer::FutureProducer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        for event in &events {
            let payload = gavel_model::encode_protobuf(event);
            let record = rdkafka::producer::FutureRecord::to(&topic).key(&event.user_id).payload(&payload);
            producer.send(record, std::time::Duration::from_secs(10)).await.unwrap();
        }
        let garbage = rdkafka::producer::FutureRecord::<str, str>::to(&topic).payload("not an event");
        producer.send(garbage, std::time::Duration::from_secs(10)).await.unwrap();
    });
    let out = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["replay", "--json", "--topic", &topic, "--brokers", &brokers, "--rules"])
        .arg(shipped_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let from_topic: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_topic["events"], 3_000);
    assert_eq!(from_topic["skipped"], 1, "the undecodable message is counted, not replayed");

    // The same events from memory give the same decisions.
    let from_memory = replay(&Recording::new(events), shipped(), None, None, &mut |_| {});
    assert_eq!(from_topic["decisions"], serde_json::to_value(&from_memory.decisions).unwrap());
}
