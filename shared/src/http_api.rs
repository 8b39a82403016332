//! The HTTP routes of the chat API, independent of what carries them (the local gateway's
//! axum server, or API Gateway's HTTP API invoking the http-api function):
//!
//! `GET /api/v1/chat/health` · `GET /api/v1/chat/rooms/{room_id}/messages` ·
//! `GET /api/v1/chat/search` · `GET /api/v1/chat/metrics` · `GET /api/v1/chat/export`
//!
//! All but health need `Authorization: Bearer JWT`, the same token as the WebSocket.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use http::{HeaderMap, Method};
use serde_json::{json, Value};
use tracing::Instrument;
use uuid::Uuid;

use crate::model::Caller;
use crate::protocol::{Cursor, HistoryRequest, ServerFrame, MAX_HISTORY_PAGE};
use crate::ratelimit::{Limit, Subject};
use crate::service::{ChatError, ChatService, Export, ExportFormat};

const PREFIX: &str = "/api/v1/chat";
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_SEARCH_RESULTS: u32 = 20;
const MAX_QUERY_CHARS: usize = 256;
/// API Gateway answers at most 10 MB and Lambda 6 MB: an export response of the http-api
/// function stops before this many bytes and says where to resume.
pub const MAX_EXPORT_RESPONSE_BYTES: usize = 5 * 1024 * 1024;

pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    /// The client's address: requests without a valid token are limited per address.
    pub source_ip: Option<String>,
}

pub struct HttpResponse {
    pub status: u16,
    pub body: Body,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

pub enum Body {
    Json(String),
    /// Streamed by the local gateway; gathered up to a response's size by the http-api function.
    Export(Export),
}

impl HttpResponse {
    fn json(status: u16, body: Value) -> Self {
        Self { status, body: Body::Json(body.to_string()), retry_after: None }
    }
}

/// The headers of an export's response: its type, a file name, and `X-Export-Total` (records
/// to come) for progress.
pub fn export_headers(export: &Export) -> Vec<(&'static str, String)> {
    let extension = match export.format {
        ExportFormat::Jsonl => "jsonl",
        ExportFormat::Csv => "csv",
    };
    vec![
        ("content-type", export.format.content_type().to_string()),
        ("content-disposition", format!("attachment; filename=\"chat-export.{extension}\"")),
        ("x-export-total", export.total.to_string()),
        ("x-export-after", export.after.to_string()),
    ]
}

/// The error body shared by every HTTP answer: `{"code","message"}`, plus `retry_after_ms` when limited.
pub fn error_body(err: &ChatError) -> Value {
    let mut body = json!({ "code": err.code(), "message": err.to_frame_message() });
    if let Some(ms) = err.retry_after_ms() {
        body["retry_after_ms"] = json!(ms);
    }
    body
}

pub fn error(err: &ChatError) -> HttpResponse {
    HttpResponse {
        status: err.http_status(),
        body: Body::Json(error_body(err).to_string()),
        retry_after: err.retry_after_ms().map(|ms| ms.div_ceil(1000)),
    }
}

pub async fn handle(service: &ChatService, req: HttpRequest) -> HttpResponse {
    let span = tracing::info_span!(
        "http",
        method = %req.method,
        path = %req.path,
        user_id = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
        room_id = tracing::field::Empty,
    );
    async {
        // API Gateway puts a named stage in front of the path.
        let route = req.path.find(PREFIX).map_or("", |at| &req.path[at + PREFIX.len()..]).to_string();
        let segments: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
        if req.method != Method::GET {
            return HttpResponse::json(405, json!({ "code": "method_not_allowed", "message": "only GET is served" }));
        }
        if segments == ["health"] {
            // Health answers even when Redis, which holds the buckets, does not.
            return match limit_ip(service, req.source_ip.as_deref()).await {
                Err(err @ ChatError::RateLimited { .. }) => error(&err),
                _ => health(service).await,
            };
        }
        let result = service
            .bounded(async {
                let caller = authenticate(service, &req.headers, req.source_ip.as_deref()).await?;
                match segments.as_slice() {
                    ["rooms", room_id, "messages"] => history(service, &caller, room_id, &req.query).await,
                    ["search"] => search(service, &caller, &req.query).await,
                    ["metrics"] => metrics(service, &caller).await,
                    ["export"] => export(service, &caller, &req.query).await,
                    _ => Err(ChatError::NotFound("route")),
                }
            })
            .await;
        result.unwrap_or_else(|err| {
            if matches!(err.code(), "internal_error" | "service_unavailable") {
                tracing::error!(error = %err, "request failed");
            }
            error(&err)
        })
    }
    .instrument(span)
    .await
}

/// Takes a token from the bucket of the address of a request that has no valid token (health,
/// development tokens, a bad token): without an identity, the address is all there is to hold back.
pub async fn limit_ip(service: &ChatService, source_ip: Option<&str>) -> Result<(), ChatError> {
    match source_ip {
        Some(ip) => service.limit(Limit::HttpPerIp, Subject::Ip(ip)).await,
        None => Ok(()),
    }
}

async fn authenticate(
    service: &ChatService,
    headers: &HeaderMap,
    source_ip: Option<&str>,
) -> Result<Caller, ChatError> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let claims = match service.verify_token(token) {
        Ok(claims) => claims,
        Err(err) => {
            limit_ip(service, source_ip).await?;
            return Err(err.into());
        }
    };
    let caller = Caller::from_claims(&claims, "");
    tracing::Span::current().record("user_id", caller.user_id.as_str()).record("tenant_id", caller.tenant_id.as_str());
    service.limit(Limit::Http, Subject::User(&caller)).await?;
    Ok(caller)
}

/// 200 when Postgres and Redis both answer within two seconds, else 503 `degraded`. Nothing
/// about tenants: anyone may ask.
async fn health(service: &ChatService) -> HttpResponse {
    let (database, redis) = tokio::join!(
        tokio::time::timeout(HEALTH_TIMEOUT, service.store.ping()),
        tokio::time::timeout(HEALTH_TIMEOUT, service.presence.ping()),
    );
    let database_connected = matches!(database, Ok(Ok(())));
    let redis_connected = matches!(redis, Ok(Ok(())));
    let healthy = database_connected && redis_connected;
    HttpResponse::json(
        if healthy { 200 } else { 503 },
        json!({
            "status": if healthy { "healthy" } else { "degraded" },
            "redis_connected": redis_connected,
            "database_connected": database_connected,
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}

fn param<T: std::str::FromStr>(query: &HashMap<String, String>, name: &str) -> Result<Option<T>, ChatError> {
    query
        .get(name)
        .map(|v| v.parse().map_err(|_| ChatError::Invalid(format!("query parameter {name} is not valid"))))
        .transpose()
}

fn cursor(query: &HashMap<String, String>, name: &str) -> Result<Option<Cursor>, ChatError> {
    match param::<i64>(query, name)? {
        Some(c) if c < 0 => Err(ChatError::Invalid(format!("query parameter {name} is not valid"))),
        c => Ok(c.map(Cursor)),
    }
}

async fn history(
    service: &ChatService,
    caller: &Caller,
    room_id: &str,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ChatError> {
    let room_id: Uuid = room_id.parse().map_err(|_| ChatError::Invalid("room id is not a UUID".into()))?;
    let request = HistoryRequest {
        room_id,
        before: cursor(query, "before")?,
        after: cursor(query, "after")?,
        limit: param(query, "limit")?,
    };
    let ServerFrame::History { room_id, messages, has_more, next_cursor } = service.history(caller, request).await?
    else {
        unreachable!("history answers with a history frame")
    };
    Ok(HttpResponse::json(
        200,
        json!({ "room_id": room_id, "messages": messages, "has_more": has_more, "next_cursor": next_cursor }),
    ))
}

async fn search(
    service: &ChatService,
    caller: &Caller,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ChatError> {
    let q = query.get("q").map(|q| q.trim()).unwrap_or_default();
    if q.is_empty() || q.chars().count() > MAX_QUERY_CHARS {
        return Err(ChatError::Invalid(format!("q must be 1-{MAX_QUERY_CHARS} characters")));
    }
    if !service.store.searchable(q).await? {
        return Err(ChatError::Invalid("q needs a word to find: excluded words alone would match everything".into()));
    }
    let room_id = param::<Uuid>(query, "room_id")?;
    if let Some(room_id) = room_id {
        tracing::Span::current().record("room_id", room_id.to_string());
    }
    let limit = param::<u32>(query, "limit")?.unwrap_or(DEFAULT_SEARCH_RESULTS).clamp(1, MAX_HISTORY_PAGE);
    let results = service.store.search(caller, q, room_id, limit).await?;
    Ok(HttpResponse::json(200, json!({ "query": q, "results": results })))
}

async fn metrics(service: &ChatService, caller: &Caller) -> Result<HttpResponse, ChatError> {
    if !caller.is_tenant_admin() {
        return Err(ChatError::PermissionDenied("metrics are for tenant admins".into()));
    }
    let (figures, connections) = tokio::join!(
        service.store.tenant_metrics(&caller.tenant_id),
        service.presence.tenant_connections(&caller.tenant_id)
    );
    let figures = figures?;
    Ok(HttpResponse::json(
        200,
        json!({
            "tenant_id": caller.tenant_id,
            "active_connections": connections?.len(),
            "active_users_24h": figures.active_users_24h,
            "rooms": figures.rooms,
        }),
    ))
}

async fn export(
    service: &ChatService,
    caller: &Caller,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ChatError> {
    let format = query.get("format").map_or("jsonl", String::as_str);
    let format = ExportFormat::parse(format).ok_or_else(|| ChatError::Invalid("format must be jsonl or csv".into()))?;
    let room_id = param::<Uuid>(query, "room_id")?;
    if let Some(room_id) = room_id {
        tracing::Span::current().record("room_id", room_id.to_string());
    }
    let after = cursor(query, "after")?.map_or(0, |c| c.0);
    let export = service.export(caller, room_id, format, after).await?;
    Ok(HttpResponse { status: 200, body: Body::Export(export), retry_after: None })
}

/// The export's records up to `max_bytes`, and the `seq` to resume after when cut short. It
/// always holds at least one record, so asking again with `after` moves on even past a
/// record bigger than the bound.
pub async fn gather(mut export: Export, max_bytes: usize) -> Result<(String, Option<i64>), ChatError> {
    let mut body = String::new();
    let mut last = export.after;
    while let Some(chunk) = export.chunks.next().await {
        let (seq, text) = chunk?;
        if last != export.after && body.len() + text.len() > max_bytes {
            return Ok((body, Some(last)));
        }
        body.push_str(&text);
        last = seq;
    }
    Ok((body, None))
}
