//! A broker for the through-Kafka benchmarks: the one named by
//! `GAVEL_BENCH_BROKERS`, or a Tansu started here (from `PATH`, as the test
//! script installs it) on sqlite storage in a temporary directory.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker address, and the Tansu process behind it if this started one.
#[derive(Debug)]
pub struct BenchBroker {
    /// `host:port`.
    pub addr: String,
    tansu: Option<(Child, PathBuf)>,
}

impl BenchBroker {
    /// `GAVEL_BENCH_BROKERS` if set, else a fresh Tansu.
    pub fn start() -> std::io::Result<BenchBroker> {
        if let Ok(addr) = std::env::var("GAVEL_BENCH_BROKERS") {
            return Ok(BenchBroker { addr, tansu: None });
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("gavel-bench-broker-{port}"));
        std::fs::create_dir_all(&dir)?;
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new("tansu")
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&dir)
            .env_remove("CLUSTER_ID")
            .env_remove("STORAGE_ENGINE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("tansu did not start listening"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(BenchBroker { addr: format!("127.0.0.1:{port}"), tansu: Some((child, dir)) })
    }
}

impl Drop for BenchBroker {
    fn drop(&mut self) {
        if let Some((mut child, dir)) = self.tansu.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
