//! The chat API's HTTP routes, served by the shared handler as the http-api function serves them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use shared::http_api::{self, HttpRequest};

use crate::Gateway;

pub async fn chat_api(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let request = HttpRequest { method, path: uri.path().to_string(), query, headers };
    let answer = http_api::handle(&gateway.service, request).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], answer.body).into_response();
    if let Some(seconds) = answer.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    }
    response
}
