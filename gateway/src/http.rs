//! The chat API's HTTP routes, served by the shared handler as the http-api function serves them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use shared::http_api::{self, Body, HttpRequest, HttpResponse};

use crate::Gateway;

pub async fn chat_api(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let source_ip = Some(peer.ip().to_string());
    let request = HttpRequest { method, path: uri.path().to_string(), query, headers, source_ip, body };
    respond(http_api::handle(&gateway.service, request).await)
}

/// An answer of the shared HTTP routes as axum's response; an export streams.
pub fn respond(answer: HttpResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match answer.body {
        Body::Json(json) => (status, [(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Body::Export(export) => {
            let headers = http_api::export_headers(&export);
            // A failure part-way ends the stream with an error, so the client sees a cut-off
            // transfer rather than a short file that looks whole.
            let chunks = export.chunks.map(|chunk| chunk.map(|(_, text)| text).map_err(std::io::Error::other));
            let mut response = (status, axum::body::Body::from_stream(chunks)).into_response();
            for (name, value) in headers {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
    };
    if let Some(seconds) = answer.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// `/metrics`: the process's counters and histograms in the Prometheus text format.
pub async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], shared::metrics::prometheus())
}
