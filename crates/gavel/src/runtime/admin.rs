//! The admin HTTP endpoint: `/metrics` (Prometheus), `/healthz`,
//! `/readyz`, `/stats` (exact latency percentiles, JSON), `/v1/rules` and
//! `POST /v1/rules/reload`.
//!
//! It binds to loopback by default and has no authentication: anyone who
//! can reach it can read rule ids and trigger reloads. Keep it on loopback
//! or a private network (a Kubernetes pod network, behind a NetworkPolicy).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::runtime::reload::{ReloadError, Rules};
use crate::telemetry::{self, Stats};

/// What the admin endpoint serves from.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Renders the Prometheus exposition.
    pub metrics: PrometheusHandle,
    /// The rules in force.
    pub rules: Arc<Rules>,
    /// True while partitions are assigned and warmed up.
    pub ready: Arc<AtomicBool>,
    /// Counts and latency histograms behind `/stats`.
    pub stats: Arc<Stats>,
}

/// Binds `addr` and serves until the process ends. Returns the bound
/// address (useful with port 0).
pub async fn serve(addr: SocketAddr, admin: Admin) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/stats", get(stats))
        .route("/v1/rules", get(rules))
        .route("/v1/rules/reload", post(reload))
        .with_state(admin);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin endpoint stopped");
        }
    });
    Ok(bound)
}

async fn metrics(State(admin): State<Admin>) -> Response {
    telemetry::engine::ready(admin.ready.load(Ordering::Relaxed));
    telemetry::collect_process_metrics();
    ([("content-type", "text/plain; version=0.0.4")], admin.metrics.render()).into_response()
}

async fn stats(State(admin): State<Admin>) -> Response {
    let engine = admin.rules.current();
    Json(json!({
        "ready": admin.ready.load(Ordering::Relaxed),
        "pack_version": engine.pack().version,
        "since_start": admin.stats.totals(),
    }))
    .into_response()
}

async fn readyz(State(admin): State<Admin>) -> Response {
    if admin.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn rules(State(admin): State<Admin>) -> Response {
    let engine = admin.rules.current();
    let pack = engine.pack();
    let rules: Vec<_> = pack
        .rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "description": r.description,
                "owner": r.owner,
                "tags": r.tags,
                "on": r.on.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "mode": r.mode.as_str(),
                "score": r.score,
                "when": r.when.source(),
            })
        })
        .collect();
    let last_reload = admin.rules.last_reload();
    Json(json!({ "version": pack.version, "hash": pack.hash, "rules": rules, "last_reload": last_reload }))
        .into_response()
}

async fn reload(State(admin): State<Admin>) -> Response {
    let rules = Arc::clone(&admin.rules);
    match tokio::task::spawn_blocking(move || rules.reload()).await {
        Ok(Ok(done)) => (StatusCode::OK, Json(json!({ "ok": true, "reloaded": done }))).into_response(),
        Ok(Err(e @ ReloadError::Invalid { .. })) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "ok": false, "error": e.to_string() }))).into_response()
        }
        Ok(Err(e)) => (StatusCode::CONFLICT, Json(json!({ "ok": false, "error": e.to_string() }))).into_response(),
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "ok": false, "error": e.to_string() }))).into_response()
        }
    }
}
