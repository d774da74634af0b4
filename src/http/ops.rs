//! Operations: `/healthz`, Prometheus `/metrics`, and the request metrics middleware.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use ticketing::Status;

use super::App;

/// The process-wide Prometheus recorder (installed once, shared by every router in the process).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then metrics go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Up, database answering"), (status = 503, description = "Database not answering")))]
pub async fn healthz(State(app): State<App>) -> Response {
    match app.tickets.store().ping().await {
        Ok(()) => axum::Json(json!({ "status": "ok", "database": "ok" })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database not answering");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "degraded", "database": e.to_string() })),
            )
                .into_response()
        }
    }
}

/// Prometheus text format: request counts and latency, tickets by status, overdue tickets.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(app): State<App>) -> Response {
    let store = app.tickets.store();
    match store.status_counts().await {
        Ok(counts) => {
            for status in Status::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("hotline_tickets", "status" => status.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count tickets"),
    }
    match store.overdue_count(Timestamp::now()).await {
        Ok(n) => metrics::gauge!("hotline_tickets_overdue").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count overdue tickets"),
    }
    match store.transcription_backlog().await {
        Ok(b) => {
            for (state, n) in [
                ("queued", b.queued),
                ("running", b.running),
                ("done", b.done),
                ("failed", b.failed),
            ] {
                metrics::gauge!("hotline_transcription_jobs", "state" => state).set(n as f64);
            }
            let lag = b.oldest_queued_at.map_or(0.0, |t| {
                Timestamp::now().duration_since(t).as_secs_f64().max(0.0)
            });
            metrics::gauge!("hotline_transcription_lag_seconds").set(lag);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count transcription jobs"),
    }
    app.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Counts requests and their latency by route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("hotline_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("hotline_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
