//! The web chat page and the JavaScript client it loads, and development tokens for signing in.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use shared::http_api::{self, DevToken, DevTokenRequest, ErrorBody};
use shared::protocol::ErrorCode;
use tower_http::services::ServeDir;

use crate::Gateway;

/// `/` the page, `/lib/` the client library, and `POST /api/v1/dev/token` when enabled.
pub fn routes(gateway: Arc<Gateway>) -> Router {
    let config = &gateway.service.config;
    let mut router = Router::new()
        .nest_service("/lib", ServeDir::new(&config.js_client_dir))
        .fallback_service(ServeDir::new(&config.web_dir));
    if config.dev_tokens {
        router = router.route("/api/v1/dev/token", post(mint).with_state(gateway.clone()));
    }
    router
}

/// Limited per address, as every request without a valid token.
async fn mint(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(req): Json<DevTokenRequest>,
) -> Response {
    if let Err(err) = http_api::limit_ip(&gateway.service, Some(&peer.ip().to_string())).await {
        return crate::http::respond(http_api::error(&err));
    }
    let valid = |id: &str| !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control);
    if !valid(&req.user_id) || !valid(&req.tenant_id) {
        let message = "user_id and tenant_id must be 1-128 printable characters".into();
        let body = ErrorBody { code: ErrorCode::ValidationError, message, retry_after_ms: None };
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let name = req.name.as_deref().filter(|n| !n.trim().is_empty());
    let token = shared::auth::mint(&gateway.service.config.jwt_secret, &req.tenant_id, &req.user_id, name, 24 * 3600);
    Json(DevToken { token }).into_response()
}
