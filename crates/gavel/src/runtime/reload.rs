//! The rule pack in force, and swapping it while events flow.
//!
//! [`Rules`] holds the current [`Engine`] behind an `ArcSwap`. Every event
//! is evaluated against one snapshot taken when its evaluation starts, so no
//! event is ever evaluated half by one pack and half by another. A reload
//! reads and compiles the pack directory off the hot path, builds the new
//! engine on the old one's velocity state ([`Engine::succeed`]), and swaps
//! it in with one atomic store. A pack that does not compile is rejected
//! with its diagnostics; the old pack keeps serving.
//!
//! Reloads are triggered by changes in the pack directory (watched), by
//! SIGHUP, and by `POST /v1/rules/reload` on the admin endpoint.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use gavel_engine::Engine;
use gavel_rules::RulesError;
use serde::Serialize;
use tracing::{info, warn};

use crate::telemetry::engine as telemetry;
use crate::tools::pack::PackFiles;

/// The engine in force, swappable.
#[derive(Debug)]
pub struct Rules {
    dir: Option<PathBuf>,
    current: ArcSwap<Engine>,
    /// Serialises reloads so two never race to build on the same old engine.
    reloading: Mutex<()>,
    /// Whether a pack with no enabled rules may be swapped in.
    allow_empty: std::sync::atomic::AtomicBool,
}

/// What a successful reload did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reloaded {
    /// The pack's declared version.
    pub version: String,
    /// The pack's content hash.
    pub hash: String,
    /// Number of rules.
    pub rules: usize,
    /// False when the pack on disk is the one already serving.
    pub changed: bool,
    /// Time to read, compile and swap, in milliseconds.
    pub millis: f64,
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The engine runs an embedded pack; there is nothing to reload from.
    #[error("no pack directory: this engine runs the embedded pack")]
    NoDirectory,
    /// The pack directory could not be read.
    #[error("{0:#}")]
    Read(anyhow::Error),
    /// The pack has no enabled rules and `allow_empty_pack` is off; the old
    /// pack keeps serving.
    #[error(
        "the pack has no enabled rules (every event would be allowed); the previous pack keeps serving. Set allow_empty_pack = true to serve it anyway"
    )]
    Empty,
    /// The pack has errors; the old pack keeps serving.
    #[error("{count} error(s); the previous pack keeps serving:\n{rendered}")]
    Invalid {
        /// Number of diagnostics.
        count: usize,
        /// Diagnostics rendered with source lines.
        rendered: String,
    },
}

impl Rules {
    /// Starts serving `engine`; `dir` is where reloads read from.
    pub fn new(engine: Engine, dir: Option<PathBuf>) -> Arc<Rules> {
        telemetry::pack_loaded(&engine, None);
        Arc::new(Rules {
            dir,
            current: ArcSwap::from_pointee(engine),
            reloading: Mutex::new(()),
            allow_empty: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Lets reloads swap in a pack with no enabled rules (off by default).
    pub fn allow_empty(&self, allow: bool) {
        self.allow_empty.store(allow, std::sync::atomic::Ordering::Relaxed);
    }

    /// The engine in force now. Hold the snapshot for one event.
    pub fn current(&self) -> Arc<Engine> {
        self.current.load_full()
    }

    /// The directory reloads read from.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Reads, compiles and swaps in the pack directory. Blocking: call it
    /// from a blocking thread, never from the event path.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let started = Instant::now();
        let dir = self.dir.as_ref().ok_or(ReloadError::NoDirectory)?;
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = PackFiles::read(dir).map_err(ReloadError::Read).and_then(|files| {
            files.compile().map_err(|RulesError::Invalid(diags)| ReloadError::Invalid {
                count: diags.len(),
                rendered: files.render(&diags),
            })
        });
        let result = result.and_then(|pack| {
            if pack.rules.is_empty() && !self.allow_empty.load(std::sync::atomic::Ordering::Relaxed) {
                Err(ReloadError::Empty)
            } else {
                Ok(pack)
            }
        });
        let pack = match result {
            Ok(pack) => pack,
            Err(e) => {
                telemetry::reloaded(false);
                warn!(pack = %dir.display(), error = %e, "rule pack rejected");
                return Err(e);
            }
        };
        log_warnings(&pack);
        let old = self.current.load_full();
        let changed = old.pack().hash != pack.hash;
        let (version, hash, rules) = (pack.version.clone(), pack.hash.clone(), pack.rules.len());
        if changed {
            let next = Engine::succeed(&old, pack);
            telemetry::pack_loaded(&next, Some(&old));
            self.current.store(Arc::new(next));
        }
        telemetry::reloaded(true);
        let millis = started.elapsed().as_secs_f64() * 1e3;
        info!(version, hash, rules, changed, millis, "rule pack reloaded");
        Ok(Reloaded { version, hash, rules, changed, millis })
    }

    /// Reloads on changes in the pack directory (debounced) and on SIGHUP,
    /// until the process ends.
    pub fn watch(self: &Arc<Self>) -> anyhow::Result<()> {
        let Some(dir) = self.dir.clone() else { return Ok(()) };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let hup = tx.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })?;
        notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::Recursive)?;
        #[cfg(unix)]
        tokio::spawn(async move {
            if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                while signal.recv().await.is_some() {
                    let _ = hup.send(());
                }
            }
        });
        let rules = Arc::clone(self);
        tokio::spawn(async move {
            let _watcher = watcher;
            while rx.recv().await.is_some() {
                // Editors write in bursts: wait for the directory to settle.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while rx.try_recv().is_ok() {}
                let rules = Arc::clone(&rules);
                let _ = tokio::task::spawn_blocking(move || rules.reload()).await;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// Logs a pack's warnings (`gavel check` prints the same, with carets): the
/// pack serves anyway, but its author should know.
pub fn log_warnings(pack: &gavel_rules::Pack) {
    for warning in &pack.warnings {
        warn!(warning = %warning, "rule pack warning");
    }
}
