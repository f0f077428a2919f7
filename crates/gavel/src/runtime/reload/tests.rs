//! Hot reload under load: every event sees exactly one pack, the velocity
//! state survives swaps, and a broken pack never replaces a good one.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use gavel_model::pb::BidPlaced;
use gavel_model::{Event, Payload, timestamp_from_ms};

use super::*;

fn pack(version: &str, rule: &str) -> String {
    format!(
        r#"version: "{version}"
features:
  - name: bids_per_user_1h
    on: [bid_placed]
    key: event.user_id
    window: 1h
    aggregate: count
rules:
  - id: {rule}
    description: every bid, counted
    on: [bid_placed]
    when: features.bids_per_user_1h > 0
    score: 1
"#
    )
}

const BROKEN: &str = "version: \"broken\"\nrules:\n  - id: x\n    description: d\n    on: [bid_placed]\n    when: features.nope > 1\n    score: 1\n";

fn bid(n: u64) -> Event {
    Event {
        event_id: format!("e{n}"),
        occurred_at: Some(timestamp_from_ms(1_767_225_600_000)),
        user_id: "u1".into(),
        payload: Some(Payload::BidPlaced(BidPlaced::default())),
        ..Default::default()
    }
}

#[test]
fn swaps_are_atomic_under_load_and_bad_packs_are_rejected() {
    let dir = std::env::temp_dir().join(format!("gavel-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pack.yaml");
    std::fs::write(&file, pack("A", "rule_a")).unwrap();
    let rules = Rules::new(Engine::new(crate::tools::pack::load(&dir).unwrap()), Some(dir.clone()));
    let hash_a = rules.current().pack().hash.clone();

    const PER_THREAD: u64 = 20_000;
    let done = AtomicBool::new(false);
    let (seen, hashes) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let rules = &rules;
                s.spawn(move || {
                    let mut values = Vec::new();
                    let mut hashes = BTreeSet::new();
                    for n in 0..PER_THREAD {
                        let engine = rules.current();
                        let out = engine.evaluate(&bid(w * PER_THREAD + n), None, 0).unwrap();
                        let signal = out.into_signal().expect("every bid fires");
                        // The hit comes from the same pack the outputs name.
                        let expected_rule = if signal.pack_version == "A" { "rule_a" } else { "rule_b" };
                        assert_eq!(signal.hits.len(), 1);
                        assert_eq!(signal.hits[0].rule_id, expected_rule, "event evaluated across two packs");
                        assert_eq!(signal.pack_hash, engine.pack().hash);
                        values.push(signal.hits[0].features[0].value as u64);
                        hashes.insert(signal.pack_hash);
                    }
                    (values, hashes)
                })
            })
            .collect();

        let mut swaps = 0;
        while !workers.iter().all(|w| w.is_finished()) || swaps < 4 {
            std::fs::write(&file, pack("B", "rule_b")).unwrap();
            let b = rules.reload().unwrap();
            assert!(b.changed);
            std::fs::write(&file, BROKEN).unwrap();
            match rules.reload() {
                Err(ReloadError::Invalid { count, rendered }) => {
                    assert_eq!(count, 1);
                    assert!(rendered.contains("features.nope"), "{rendered}");
                }
                other => panic!("a broken pack must be rejected, got {other:?}"),
            }
            assert_eq!(rules.current().pack().hash, b.hash, "the good pack keeps serving");
            std::fs::write(&file, pack("A", "rule_a")).unwrap();
            assert_eq!(rules.reload().unwrap().hash, hash_a);
            swaps += 1;
        }
        done.store(true, Ordering::Relaxed);
        let mut values = Vec::new();
        let mut hashes = BTreeSet::new();
        for w in workers {
            let (v, h) = w.join().unwrap();
            values.extend(v);
            hashes.extend(h);
        }
        (values, hashes)
    });

    // No event lost or counted twice, and no swap reset the feature: the
    // counts seen are exactly 1..=N.
    let seen: BTreeSet<u64> = seen.into_iter().collect();
    assert_eq!(seen, (1..=2 * PER_THREAD).collect::<BTreeSet<_>>());
    assert!(hashes.len() >= 2, "both packs served while events flowed");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reload_without_a_directory_is_an_error() {
    let rules = Rules::new(Engine::new(crate::tools::pack::shipped().unwrap()), None);
    assert!(matches!(rules.reload(), Err(ReloadError::NoDirectory)));
}

#[test]
fn a_pack_with_no_rules_is_rejected_unless_allowed() {
    let dir = std::env::temp_dir().join(format!("gavel-reload-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pack.yaml");
    std::fs::write(&file, pack("A", "rule_a")).unwrap();
    let rules = Rules::new(Engine::new(crate::tools::pack::load(&dir).unwrap()), Some(dir.clone()));
    // A placeholder (or a deploy that lost the rules) would allow everything.
    std::fs::write(&file, "version: \"placeholder\"\nrules: []\n").unwrap();
    assert!(matches!(rules.reload(), Err(ReloadError::Empty)));
    assert_eq!(rules.current().pack().version, "A", "the old pack keeps serving");
    rules.allow_empty(true);
    assert!(rules.reload().is_ok());
    assert_eq!(rules.current().pack().version, "placeholder");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_directory_replaced_whole_keeps_reloading() {
    let root = std::env::temp_dir().join(format!("gavel-reload-replaced-{}", std::process::id()));
    let dir = root.join("pack");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pack.yaml"), pack("A", "rule_a")).unwrap();
    let rules = Rules::new(Engine::new(crate::tools::pack::load(&dir).unwrap()), Some(dir.clone()));
    rules.watch().unwrap();
    let serving = |version: &'static str| {
        let rules = Arc::clone(&rules);
        async move {
            for _ in 0..100 {
                if rules.current().pack().version == version {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    // Replaced whole, as deploy tools and ConfigMap updates do, twice.
    for (version, rule) in [("B", "rule_b"), ("C", "rule_c")] {
        std::fs::remove_dir_all(&dir).unwrap();
        let staged = root.join("staged");
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("pack.yaml"), pack(version, rule)).unwrap();
        std::fs::rename(&staged, &dir).unwrap();
        assert!(serving(version).await, "pack {version} not reloaded after the directory was replaced");
    }
    // And an edit in place after that still reloads.
    std::fs::write(dir.join("pack.yaml"), pack("D", "rule_d")).unwrap();
    assert!(serving("D").await, "an edit after the replacements was not reloaded");
    let last = rules.last_reload().expect("reloads were recorded");
    assert!(last.ok && last.error.is_none());
    std::fs::remove_dir_all(&root).ok();
}
