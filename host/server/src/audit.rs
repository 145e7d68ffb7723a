//! The audit log (export and verification), KPIs, Prometheus metrics and health.

use crate::AppState;
use crate::auth::{Auditors, Authed, Readers};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tenure_store::AuditFilter;
use tenure_store::audit::{ExportFormat, ExportWriter};

/// Which audit entries, and in which format.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this person.
    person: Option<String>,
    /// Only entries about this destination.
    destination: Option<String>,
    /// From this time on (ms since the epoch).
    since_ms: Option<i64>,
    /// Before this time (ms since the epoch).
    until_ms: Option<i64>,
    /// Only kinds that start with this (`job.`, `operation.completed`).
    kind: Option<String>,
    /// After this entry (paging).
    after_seq: Option<i64>,
    /// At most this many entries (default: all).
    limit: Option<usize>,
    /// `json` (default), `jsonl` or `csv`.
    #[schemars(extend("enum" = ["json", "jsonl", "csv"]))]
    format: Option<String>,
}

/// `GET /api/v1/audit`: the tenant's entries as JSON, JSON Lines or CSV, streamed page by
/// page as they are read (the export is audited before the first entry is sent). `limit`
/// caps the entries sent; without it, every matching entry.
pub async fn audit(
    State(s): State<AppState>,
    c: Authed<Auditors>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult {
    let format = ExportFormat::parse(q.format.as_deref().unwrap_or("json")).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "format",
            "must be json, jsonl or csv",
        )
    })?;
    let filter = AuditFilter {
        tenant: None,
        person_key: q.person,
        destination: q.destination,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        kind_prefix: q.kind,
        after_seq: q.after_seq,
        limit: None,
    };
    s.pipeline.note_audit_export(c.actor(), format.as_str()).await?;
    let export = Export {
        pipeline: s.pipeline.clone(),
        tenant: c.tenant.clone(),
        filter,
        after_seq: q.after_seq.unwrap_or(0),
        remaining: q.limit.unwrap_or(usize::MAX),
        writer: ExportWriter::new(format),
        done: false,
    };
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(export, Export::next_chunk));
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// An audit export in progress: where it has got to and what is left to send.
struct Export {
    pipeline: std::sync::Arc<tenure_pipeline::Pipeline>,
    tenant: String,
    filter: AuditFilter,
    after_seq: i64,
    remaining: usize,
    writer: ExportWriter,
    done: bool,
}

impl Export {
    /// The next chunk of the body: a page of entries, then what closes the export.
    async fn next_chunk(mut self) -> Option<(Result<String, std::io::Error>, Self)> {
        if self.done {
            return None;
        }
        let want = self.remaining.min(tenure_pipeline::admin::AUDIT_PAGE);
        let page = if want == 0 {
            Vec::new()
        } else {
            match self
                .pipeline
                .audit_page(&self.tenant, &self.filter, self.after_seq, want)
                .await
            {
                Ok(page) => page,
                // The status line is sent already: cutting the body short is the signal.
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed part-way");
                    self.done = true;
                    return Some((Err(std::io::Error::other(e.to_string())), self));
                }
            }
        };
        if page.len() < want || want == 0 {
            self.done = true;
            let mut chunk = self.writer.page(&page);
            chunk.push_str(&self.writer.finish());
            return Some((Ok(chunk), self));
        }
        self.remaining -= page.len();
        self.after_seq = page.last().map_or(self.after_seq, |e| e.seq);
        let chunk = self.writer.page(&page);
        Some((Ok(chunk), self))
    }
}

/// `GET /api/v1/audit/verify`: 200 when the chain holds, 409 when it does not (naming the
/// broken entry only if it is the caller's tenant's; nothing about other tenants).
pub async fn verify(State(s): State<AppState>, c: Authed<Auditors>) -> ApiResult {
    let report = s.pipeline.verify_audit_for(&c.tenant).await?;
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, axum::Json(report)).into_response())
}

/// `GET /api/v1/kpis`
pub async fn kpis(State(s): State<AppState>, c: Authed<Readers>) -> ApiResult {
    Ok(axum::Json(s.pipeline.kpis(&c.tenant).await?).into_response())
}

/// A KPI series' window and bucket size.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KpiSeriesQuery {
    /// From (ms since the epoch; default: 30 days before `until_ms`).
    since_ms: Option<i64>,
    /// To, not included (default: now).
    until_ms: Option<i64>,
    /// `hour` or `day` (default `day`; buckets are UTC hours or days).
    bucket: Option<KpiBucket>,
}

/// A KPI series' bucket size.
#[derive(Deserialize, Clone, Copy, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KpiBucket {
    Hour,
    Day,
}

/// `GET /api/v1/kpis/series`: the KPIs per hour or day, per source and per destination.
pub async fn kpi_series(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiQuery(q): ApiQuery<KpiSeriesQuery>,
) -> ApiResult {
    const HOUR_MS: i64 = 3_600_000;
    let bucket_ms = match q.bucket.unwrap_or(KpiBucket::Day) {
        KpiBucket::Hour => HOUR_MS,
        KpiBucket::Day => 24 * HOUR_MS,
    };
    let until = q.until_ms.unwrap_or_else(|| s.pipeline.now());
    // Whole buckets: the window starts at a bucket's start (UTC).
    let since = q
        .since_ms
        .unwrap_or(until.saturating_sub(30 * 24 * HOUR_MS))
        .div_euclid(bucket_ms)
        .checked_mul(bucket_ms)
        .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "since_ms", "out of range"))?;
    if until <= since {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "until_ms",
            "must be after since_ms",
        ));
    }
    let buckets = until.checked_sub(since).map_or(i64::MAX, |span| span / bucket_ms);
    if buckets >= tenure_store::MAX_KPI_BUCKETS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "since_ms",
            format!("at most {} buckets in one series", tenure_store::MAX_KPI_BUCKETS),
        ));
    }
    let series = s
        .pipeline
        .store()
        .kpi_series(&c.tenant, since, until, bucket_ms)
        .await?;
    Ok(axum::Json(series).into_response())
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &s.metrics_token
        && !crate::auth::presents(&headers, expected)
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(crate::error::ErrorBody::new(
                "authorization",
                "/metrics needs its token",
            )),
        )
            .into_response();
    }
    let tenants: Vec<String> = s.pipeline.config().tenants.keys().cloned().collect();
    let text = s
        .pipeline
        .metrics
        .render(s.pipeline.store().as_ref(), &tenants, s.pipeline.runtime())
        .await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `/readyz`: the store answers and no source's poller has stopped; the answer lists
/// every polled source with its state and last error.
pub async fn ready(State(s): State<AppState>) -> Response {
    let store = s.pipeline.store_ready().await;
    let sources = s.pipeline.source_health();
    let stopped = sources
        .iter()
        .any(|h| h.state == tenure_pipeline::sources::PollerState::Stopped);
    let status = if store.is_ok() && !stopped {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let store = match store {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("unavailable: {e}"),
    };
    let ready = Readiness {
        ready: status == StatusCode::OK,
        store,
        sources,
    };
    (status, axum::Json(ready)).into_response()
}

/// Whether the host can take work: its store and its sources' pollers.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct Readiness {
    ready: bool,
    /// `ok`, or why the store is unavailable.
    store: String,
    sources: Vec<tenure_pipeline::sources::SourceHealth>,
}
