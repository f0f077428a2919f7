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
    /// The last reload attempt, for `/v1/rules`.
    last: Mutex<Option<LastReload>>,
}

/// The last reload attempt: when (Unix ms) and, if it failed, why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LastReload {
    /// When it finished, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Whether the pack it read is now serving (or already was).
    pub ok: bool,
    /// The diagnostics or read error, when it failed.
    pub error: Option<String>,
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
            last: Mutex::new(None),
        })
    }

    /// The last reload attempt, if there was one.
    pub fn last_reload(&self) -> Option<LastReload> {
        self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn record(&self, error: Option<String>) {
        let at_ms = crate::clock::now_ms();
        telemetry::reload_finished(at_ms, error.is_none());
        *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(LastReload { at_ms, ok: error.is_none(), error });
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
                self.record(Some(e.to_string()));
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
        self.record(None);
        let millis = started.elapsed().as_secs_f64() * 1e3;
        info!(version, hash, rules, changed, millis, "rule pack reloaded");
        Ok(Reloaded { version, hash, rules, changed, millis })
    }

    /// Reloads on changes in the pack directory (debounced) and on SIGHUP,
    /// until the process ends. The directory's parent is watched too, and
    /// the directory itself watched again after every change, so a pack
    /// directory that is replaced whole (`rm -rf pack && cp -r new pack`,
    /// as deploy tools do) keeps reloading.
    pub fn watch(self: &Arc<Self>) -> anyhow::Result<()> {
        let Some(dir) = self.dir.clone() else { return Ok(()) };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let hup = tx.clone();
        let watched = dir.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // The parent's other entries are none of the pack's business.
            if event.is_ok_and(|e| !e.kind.is_access() && e.paths.iter().any(|p| p.starts_with(&watched))) {
                let _ = tx.send(());
            }
        })?;
        notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::Recursive)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            notify::Watcher::watch(&mut watcher, parent, notify::RecursiveMode::NonRecursive)?;
        }
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
            let mut watcher = watcher;
            while rx.recv().await.is_some() {
                // Editors write in bursts: wait for the directory to settle.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while rx.try_recv().is_ok() {}
                // A replaced directory is a new inode: watch it afresh.
                let _ = notify::Watcher::unwatch(&mut watcher, &dir);
                if let Err(e) = notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::Recursive) {
                    warn!(pack = %dir.display(), error = %e, "pack directory not watched (gone?); waiting for it");
                }
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
