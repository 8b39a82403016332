//! The API Gateway Management API, as the real endpoint answers it, so the real SDK client works.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::Gateway;

/// Posting to and closing any connection is for the handlers on this machine only: API Gateway's
/// own endpoint wants IAM-signed calls, which this one does not check, so other peers get 403.
pub async fn loopback_only(ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request, next: Next) -> Response {
    if peer.ip().to_canonical().is_loopback() {
        return next.run(request).await;
    }
    let forbidden = Json(json!({ "message": "Forbidden" }));
    (StatusCode::FORBIDDEN, [("x-amzn-ErrorType", "ForbiddenException")], forbidden).into_response()
}

/// API Gateway's answer for a connection that is not (or no longer) open.
fn gone() -> Response {
    (StatusCode::GONE, [("x-amzn-ErrorType", "GoneException")], Json(json!({ "message": null }))).into_response()
}

pub async fn post_to_connection(
    State(gateway): State<Arc<Gateway>>,
    Path((_stage, connection_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match gateway.sockets.post(&connection_id, body) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => gone(),
    }
}

pub async fn get_connection(
    State(gateway): State<Arc<Gateway>>,
    Path((_stage, connection_id)): Path<(String, String)>,
) -> Response {
    let sockets = gateway.sockets.lock();
    let Some(socket) = sockets.get(&connection_id) else {
        return gone();
    };
    let connected_at = chrono::DateTime::from_timestamp_millis(socket.context.connected_at_ms).unwrap_or_default();
    Json(json!({
        "connectedAt": iso8601(connected_at),
        "identity": { "sourceIp": socket.context.source_ip, "userAgent": socket.context.user_agent },
        "lastActiveAt": iso8601(socket.last_active),
    }))
    .into_response()
}

pub async fn delete_connection(
    State(gateway): State<Arc<Gateway>>,
    Path((_stage, connection_id)): Path<(String, String)>,
) -> Response {
    if gateway.sockets.close(&connection_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone()
    }
}

/// The timestamp form API Gateway answers with: ISO 8601, whole seconds.
fn iso8601(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
