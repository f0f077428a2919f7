//! What an SRE's tools see of a running gavel: simulated marketplace
//! traffic (every event kind, plus one undecodable message) goes through
//! `gavel run` with the shipped pack; then its `/metrics` scrape must pass
//! `promtool check metrics`, every metric the shipped Grafana dashboard and
//! alert rules query must be in that scrape, and `/stats` must report
//! latency percentiles.
//!
//! `promtool` comes from Debian's `prometheus` package; without it the
//! promtool step is skipped, except under CI.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use gavel_model::encode_json;
use gavel_sim::{SimConfig, Simulator};
use rdkafka::producer::FutureRecord;
use support::{Gavel, Setup, eventually, exclusive, producer, shared_brokers};

/// Metric names in `text` (PromQL or JSON holding PromQL): every
/// `gavel_…` / `process_…` token, histogram suffixes stripped.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["gavel_", "process_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let boundary =
                at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_';
            let tail = &rest[at..];
            let len = tail.bytes().take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_').count();
            if boundary {
                let mut name = &tail[..len];
                for suffix in ["_bucket", "_sum", "_count"] {
                    name = name.strip_suffix(suffix).unwrap_or(name);
                }
                names.push(name.to_string());
            }
            rest = &tail[len.max(1)..];
        }
    }
    names.sort();
    names.dedup();
    names
}

fn scraped_names(scrape: &str) -> Vec<&str> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| n.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_passes_promtool_and_has_every_metric_the_dashboard_and_alerts_use() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let setup = Setup::new(&brokers, "ops", 2).await;
    setup.use_shipped_pack();
    let (config, admin) = setup.config("gavel", None, 2);
    let gavel = Gavel::start(&config, admin, &setup.dir.join("gavel.log"));
    assert!(gavel.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", gavel.log_tail());

    let writer = producer(&brokers);
    let events = 3_000;
    for sim in Simulator::new(SimConfig::default()).take(events) {
        let payload = encode_json(&sim.event).unwrap();
        let record = FutureRecord::to(&setup.input).key(&sim.event.user_id).payload(&payload);
        writer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    writer.send(FutureRecord::to(&setup.input).key("x").payload("{not json"), Duration::from_secs(10)).await.unwrap();
    let acknowledged = || gavel.metric("gavel_events_acknowledged_total").unwrap_or(0.0);
    assert!(
        eventually(Duration::from_secs(60), || acknowledged() >= (events + 1) as f64).await,
        "{} acknowledged\n{}",
        acknowledged(),
        gavel.log_tail()
    );
    // Consumer lag comes from librdkafka's statistics, every 5 s.
    assert!(eventually(Duration::from_secs(15), || gavel.metric("gavel_kafka_consumer_lag_messages").is_some()).await);
    let scrape = gavel.fetch("/metrics").expect("scrape");

    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut wanted = Vec::new();
    for file in ["deploy/grafana/dashboards/gavel.json", "deploy/prometheus/alerts.yaml"] {
        let text = std::fs::read_to_string(repo.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let names = metric_names(&text);
        assert!(names.len() > 5, "{file} names only {names:?}");
        wanted.extend(names.into_iter().map(|n| (file, n)));
    }
    let present = scraped_names(&scrape);
    let missing: Vec<_> = wanted.iter().filter(|(_, n)| !present.contains(&n.as_str())).collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}");

    let stats: serde_json::Value = serde_json::from_str(&gavel.fetch("/stats").expect("/stats")).expect("JSON");
    let latency = &stats["since_start"]["latency"];
    assert!(latency["count"].as_u64().unwrap() >= events as u64, "{stats}");
    assert!(latency["p99_ns"].as_u64().unwrap() >= latency["p50_ns"].as_u64().unwrap());

    match Command::new("promtool").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => {
            let mut check = Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            check.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
            let out = check.wait_with_output().unwrap();
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}");
        }
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("promtool is not installed under CI: scripts/test installs it")
        }
        Err(_) => eprintln!("skipping promtool check metrics: promtool not installed"),
    }
    eprintln!("operations: {} metrics queried by the dashboard and alerts, all exported", wanted.len());
}

/// A pack with no enabled rules (the Kubernetes placeholder, a deploy that
/// lost its rules) would allow every event: `gavel run` refuses it at
/// start, saying how to serve it anyway. Needs no broker: the pack is
/// checked before anything connects.
#[test]
fn an_empty_pack_stops_start_up_unless_allowed() {
    let dir = std::env::temp_dir().join(format!("gavel-empty-pack-{}", std::process::id()));
    let pack = dir.join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(pack.join("pack.yaml"), "version: \"placeholder\"\nrules: []\n").unwrap();
    let config = dir.join("gavel.toml");
    std::fs::write(
        &config,
        format!(
            "pack = {:?}\nadmin_addr = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"127.0.0.1:1\"\n\
             [[inputs]]\ntopic = \"marketplace.bids\"\nencoding = \"json\"\n",
            pack.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gavel")).args(["run", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "refused as bad input:\n{stderr}");
    assert!(stderr.contains("no enabled rules") && stderr.contains("allow_empty_pack"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
