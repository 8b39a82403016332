//! The web chat page and the JavaScript client it loads, and development tokens for signing in.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use shared::Config;
use tower_http::services::ServeDir;

#[derive(Clone)]
struct DevTokens {
    secret: String,
}

#[derive(Deserialize)]
struct TokenRequest {
    user_id: String,
    tenant_id: String,
    name: Option<String>,
}

/// `/` the page, `/lib/` the client library, and `POST /api/v1/dev/token` when enabled.
pub fn routes(config: &Config) -> Router {
    let mut router = Router::new()
        .nest_service("/lib", ServeDir::new(&config.js_client_dir))
        .fallback_service(ServeDir::new(&config.web_dir));
    if config.dev_tokens {
        router =
            router.route("/api/v1/dev/token", post(mint).with_state(DevTokens { secret: config.jwt_secret.clone() }));
    }
    router
}

async fn mint(State(dev): State<DevTokens>, Json(req): Json<TokenRequest>) -> Response {
    let valid = |id: &str| !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control);
    if !valid(&req.user_id) || !valid(&req.tenant_id) {
        let body = serde_json::json!({ "code": "validation_error", "message": "user_id and tenant_id must be 1-128 printable characters" });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let name = req.name.as_deref().filter(|n| !n.trim().is_empty());
    let token = shared::auth::mint(&dev.secret, &req.tenant_id, &req.user_id, name, 24 * 3600);
    Json(serde_json::json!({ "token": token })).into_response()
}
