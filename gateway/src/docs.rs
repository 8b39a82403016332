//! The API documents (`shared::api`), and a page that renders them for people.

use std::sync::{Arc, LazyLock};

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use crate::Gateway;

static ASYNCAPI: LazyLock<String> = LazyLock::new(|| shared::api::render(&shared::api::asyncapi()));
static OPENAPI: LazyLock<String> = LazyLock::new(|| shared::api::render(&shared::api::openapi()));

/// `/api/v1/asyncapi.json`, `/api/v1/openapi.json`, and `/api/v1/docs` the page.
pub fn routes() -> Router<Arc<Gateway>> {
    let json = |body: &'static str| ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    Router::new()
        .route("/api/v1/asyncapi.json", get(move || async move { json(&ASYNCAPI) }))
        .route("/api/v1/openapi.json", get(move || async move { json(&OPENAPI) }))
        .route("/api/v1/docs", get(|| async { Html(include_str!("docs.html")) }))
}
