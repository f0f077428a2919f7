//! The embedded demo, run as a user would: `gavel demo --duration …` prints
//! per-second lines with events and signals, answers `/metrics` while it
//! runs, and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gavel_testkit::free_port;

fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn bounded_demo_shows_traffic_and_serves_metrics() {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["demo", "--duration", "8s", "--rate", "2000", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Scrape until the engine has processed events (group assignment on the
    // mock cluster takes a few seconds; counters exist, at 0, from the start).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        if let Some(body) = scrape(port)
            && body.contains("gavel_processing_duration_seconds_bucket")
        {
            metrics = body;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "demo failed:\n{stdout}");
    assert!(metrics.starts_with("HTTP/1.1 200"), "metrics never answered with events counted:\n{metrics}");
    assert!(metrics.contains("gavel_processing_duration_seconds_bucket"), "{metrics}");

    // Per-second lines: `  5s  events/s    2000  signals/s    19  …`
    let busy = stdout
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = |name: &str| {
                fields.iter().position(|f| *f == name).and_then(|i| fields.get(i + 1)?.parse::<u64>().ok())
            };
            Some((at("events/s")?, at("signals/s")?))
        })
        .filter(|(events, signals)| *events > 0 && *signals > 0)
        .count();
    assert!(busy >= 2, "expected at least two lines with events and signals:\n{stdout}");
}
