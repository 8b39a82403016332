//! The HTTP routes of the chat API, independent of what carries them (the local gateway's
//! axum server, or API Gateway's HTTP API invoking the http-api function):
//!
//! `GET /api/v1/chat/health` · `GET /api/v1/chat/session` · `GET /api/v1/chat/rooms/{room_id}/messages` ·
//! `GET /api/v1/chat/search` · `GET /api/v1/chat/metrics` · `GET /api/v1/chat/export` ·
//! `GET|PUT|DELETE /api/v1/chat/webhook`
//!
//! All but health need `Authorization: Bearer JWT`, the same token as the WebSocket.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use http::{HeaderMap, Method};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use uuid::Uuid;

use crate::model::{BlockedUser, Caller, Message, Pin, Report, ReportStatus};
use crate::protocol::{Cursor, ErrorCode, HistoryRequest, ServerFrame, MAX_HISTORY_PAGE};
use crate::ratelimit::{Limit, Subject};
use crate::service::{ChatError, ChatService, Export, ExportFormat};
use crate::store::TenantMetrics;
use crate::webhooks::{self, Endpoint, Event};

const PREFIX: &str = "/api/v1/chat";
const WEBHOOK_METHODS: [Method; 3] = [Method::GET, Method::PUT, Method::DELETE];
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
    pub body: bytes::Bytes,
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
    fn json(status: u16, body: impl Serialize) -> Self {
        let body = serde_json::to_string(&body).expect("response bodies serialize");
        Self { status, body: Body::Json(body), retry_after: None }
    }
}

// The bodies of the routes' answers, as the OpenAPI document describes them (`crate::api`).

/// Every error answer: `retry_after_ms` with `rate_limited` and an overload refusal.
#[derive(Serialize, JsonSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    Degraded,
}

#[derive(Serialize, JsonSchema)]
pub struct Health {
    pub status: HealthStatus,
    pub redis_connected: bool,
    pub database_connected: bool,
    pub version: String,
}

/// Whose token it is.
#[derive(Serialize, JsonSchema)]
pub struct Session {
    pub user_id: String,
    pub tenant_id: String,
}

/// A page of a room's history, as the `history` frame has it.
#[derive(Serialize, JsonSchema)]
pub struct HistoryPage {
    pub room_id: Uuid,
    pub messages: Vec<Message>,
    pub has_more: bool,
    pub next_cursor: Option<Cursor>,
}

/// A room's pinned messages, newest pin first, as the `pins` frame has them.
#[derive(Serialize, JsonSchema)]
pub struct PinList {
    pub room_id: Uuid,
    pub pins: Vec<Pin>,
}

/// The users the caller blocked, most recent first.
#[derive(Serialize, JsonSchema)]
pub struct BlockedList {
    pub users: Vec<BlockedUser>,
}

/// Reports, newest first, as the `reports` frame has them.
#[derive(Serialize, JsonSchema)]
pub struct ReportList {
    pub reports: Vec<Report>,
}

#[derive(Serialize, JsonSchema)]
pub struct SearchResults {
    /// The query as searched (trimmed).
    pub query: String,
    /// Best match first.
    pub results: Vec<Message>,
    /// With an archive: the days back search covers (older messages are only in the archive).
    pub covers_days: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
pub struct Metrics {
    pub tenant_id: String,
    pub active_connections: i64,
    #[serde(flatten)]
    pub figures: TenantMetrics,
}

/// The tenant's webhook endpoint.
#[derive(Serialize, JsonSchema)]
pub struct Webhook {
    pub url: String,
    pub events: Vec<Event>,
    /// Only in the answer to the `PUT` that set it.
    pub secret: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct Deleted {
    pub deleted: bool,
}

/// `POST /api/v1/dev/token` (local gateway with `DEV_TOKENS`).
#[derive(Deserialize, JsonSchema)]
pub struct DevTokenRequest {
    #[schemars(length(min = 1, max = 128))]
    pub user_id: String,
    #[schemars(length(min = 1, max = 128))]
    pub tenant_id: String,
    /// The display name; the user id when absent or blank.
    pub name: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct DevToken {
    /// A JWT valid for 24 hours.
    pub token: String,
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
pub fn error_body(err: &ChatError) -> ErrorBody {
    ErrorBody { code: err.code(), message: err.to_frame_message(), retry_after_ms: err.retry_after_ms() }
}

pub fn error(err: &ChatError) -> HttpResponse {
    HttpResponse {
        retry_after: err.retry_after_ms().map(|ms| ms.div_ceil(1000)),
        ..HttpResponse::json(err.http_status(), error_body(err))
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
        let methods: &[Method] = if segments == ["webhook"] { &WEBHOOK_METHODS } else { &[Method::GET] };
        if !methods.contains(&req.method) {
            let allowed = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            let body = ErrorBody {
                code: ErrorCode::MethodNotAllowed,
                message: format!("{allowed} is served here"),
                retry_after_ms: None,
            };
            return HttpResponse::json(405, body);
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
                    // Browsers cannot read the status of a refused WebSocket upgrade: a client
                    // asks here whether its token is the reason (401) or the network is.
                    ["session"] => {
                        Ok(HttpResponse::json(200, Session { user_id: caller.user_id, tenant_id: caller.tenant_id }))
                    }
                    ["rooms", room_id, "messages"] => history(service, &caller, room_id, &req.query).await,
                    ["rooms", room_id, "pins"] => pins(service, &caller, room_id).await,
                    ["blocked"] => blocked(service, &caller).await,
                    ["reports"] => reports(service, &caller, &req.query).await,
                    ["search"] => search(service, &caller, &req.query).await,
                    ["metrics"] => metrics(service, &caller).await,
                    ["export"] => export(service, &caller, &req.query).await,
                    ["webhook"] => webhook(service, &caller, &req.method, &req.body).await,
                    _ => Err(ChatError::NotFound("route")),
                }
            })
            .await;
        result.unwrap_or_else(|err| {
            if matches!(err.code(), ErrorCode::InternalError | ErrorCode::ServiceUnavailable) {
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
        Health {
            status: if healthy { HealthStatus::Healthy } else { HealthStatus::Degraded },
            redis_connected,
            database_connected,
            version: env!("CARGO_PKG_VERSION").into(),
        },
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

/// The `room_id` query parameter, recorded on the request's span.
fn room_param(query: &HashMap<String, String>) -> Result<Option<Uuid>, ChatError> {
    let room_id = param::<Uuid>(query, "room_id")?;
    if let Some(room_id) = room_id {
        tracing::Span::current().record("room_id", room_id.to_string());
    }
    Ok(room_id)
}

/// A room id in the path, recorded on the request's span.
fn room_id(text: &str) -> Result<Uuid, ChatError> {
    let room_id: Uuid = text.parse().map_err(|_| ChatError::Invalid("room id is not a UUID".into()))?;
    tracing::Span::current().record("room_id", room_id.to_string());
    Ok(room_id)
}

async fn pins(service: &ChatService, caller: &Caller, room_id: &str) -> Result<HttpResponse, ChatError> {
    let ServerFrame::Pins { room_id, pins } = service.list_pins(caller, self::room_id(room_id)?).await? else {
        unreachable!("list_pins answers with a pins frame")
    };
    Ok(HttpResponse::json(200, PinList { room_id, pins }))
}

async fn blocked(service: &ChatService, caller: &Caller) -> Result<HttpResponse, ChatError> {
    let ServerFrame::BlockedUsers { users } = service.list_blocked(caller).await? else {
        unreachable!("list_blocked answers with a blocked_users frame")
    };
    Ok(HttpResponse::json(200, BlockedList { users }))
}

async fn reports(
    service: &ChatService,
    caller: &Caller,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ChatError> {
    let status = query
        .get("status")
        .map(|status| {
            ReportStatus::parse(status)
                .ok_or_else(|| ChatError::Invalid("status must be open, dismissed or deleted".into()))
        })
        .transpose()?;
    let room_id = room_param(query)?;
    let ServerFrame::Reports { reports } = service.list_reports(caller, room_id, status).await? else {
        unreachable!("list_reports answers with a reports frame")
    };
    Ok(HttpResponse::json(200, ReportList { reports }))
}

async fn history(
    service: &ChatService,
    caller: &Caller,
    room_id: &str,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ChatError> {
    let room_id = self::room_id(room_id)?;
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
    Ok(HttpResponse::json(200, HistoryPage { room_id, messages, has_more, next_cursor }))
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
    let room_id = room_param(query)?;
    let limit = param::<u32>(query, "limit")?.unwrap_or(DEFAULT_SEARCH_RESULTS).clamp(1, MAX_HISTORY_PAGE);
    let results = service.store.search(caller, q, room_id, limit).await?;
    // Search reads Postgres: messages older than ARCHIVE_AFTER_DAYS may be in the archive.
    let covers_days = service.config.archive_bucket.as_ref().map(|_| service.config.archive_after.as_secs() / 86_400);
    Ok(HttpResponse::json(200, SearchResults { query: q.into(), results, covers_days }))
}

async fn metrics(service: &ChatService, caller: &Caller) -> Result<HttpResponse, ChatError> {
    if !caller.is_tenant_admin() {
        return Err(ChatError::PermissionDenied("metrics are for tenant admins".into()));
    }
    let (figures, connections) = tokio::join!(
        service.store.tenant_metrics(&caller.tenant_id),
        service.presence.tenant_connection_count(&caller.tenant_id)
    );
    let metrics = Metrics { tenant_id: caller.tenant_id.clone(), active_connections: connections?, figures: figures? };
    Ok(HttpResponse::json(200, metrics))
}

/// The tenant's webhook endpoint, for its admins: `GET` shows it (never its secret), `PUT`
/// sets it (the answer carries the secret), `DELETE` removes it.
async fn webhook(
    service: &ChatService,
    caller: &Caller,
    method: &Method,
    body: &[u8],
) -> Result<HttpResponse, ChatError> {
    if !caller.is_tenant_admin() {
        return Err(ChatError::PermissionDenied("the webhook is for tenant admins".into()));
    }
    let tenant_id = &caller.tenant_id;
    let shown = |endpoint: Endpoint, secret: bool| Webhook {
        url: endpoint.url,
        events: endpoint.events,
        secret: secret.then_some(endpoint.secret),
    };
    match *method {
        Method::GET => {
            let endpoint = service.store.webhook(tenant_id).await?.ok_or(ChatError::NotFound("webhook"))?;
            Ok(HttpResponse::json(200, shown(endpoint, false)))
        }
        Method::DELETE => {
            if !service.store.delete_webhook(tenant_id).await? {
                return Err(ChatError::NotFound("webhook"));
            }
            service.webhooks.forget(tenant_id);
            Ok(HttpResponse::json(200, Deleted { deleted: true }))
        }
        _ => {
            let request = serde_json::from_slice(body).map_err(|e| ChatError::Invalid(format!("body: {e}")))?;
            let endpoint =
                webhooks::endpoint_from(request, service.config.webhook_allow_http).map_err(ChatError::Invalid)?;
            service.store.set_webhook(tenant_id, &endpoint).await?;
            service.webhooks.forget(tenant_id);
            Ok(HttpResponse::json(200, shown(endpoint, true)))
        }
    }
}

async fn export(
    service: &ChatService,
    caller: &Caller,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ChatError> {
    let format = query.get("format").map_or("jsonl", String::as_str);
    let format = ExportFormat::parse(format).ok_or_else(|| ChatError::Invalid("format must be jsonl or csv".into()))?;
    let room_id = room_param(query)?;
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
