//! API Gateway events in, responses out. The Lambda functions and the local gateway both call
//! these, so the two paths run the same code.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::service::{ChatError, ChatService};

/// The follow-up to a successful `$connect`: post the `connection` frame once the socket is open.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WelcomeEvent {
    pub connection_id: String,
    pub endpoint: String,
}

fn response(status: u16, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.body = body.map(Body::Text);
    response
}

/// An error as an HTTP answer: its status, `{"code","message"}`, and `Retry-After` when limited.
pub fn error_response(err: &ChatError) -> ApiGatewayProxyResponse {
    let mut response = response(err.http_status(), serde_json::to_string(&crate::http_api::error_body(err)).ok());
    response.headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    if let Some(ms) = err.retry_after_ms() {
        response.headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(ms.div_ceil(1000)));
    }
    response
}

fn span(name: &'static str, event: &ApiGatewayWebsocketProxyRequest) -> tracing::Span {
    tracing::info_span!(
        "handler",
        handler = name,
        connection_id = event.request_context.connection_id.as_deref().unwrap_or_default(),
        user_id = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
        room_id = tracing::field::Empty,
    )
}

fn endpoint(service: &ChatService, event: &ApiGatewayWebsocketProxyRequest) -> Option<String> {
    let ctx = &event.request_context;
    service.fanout.endpoint_for(ctx.domain_name.as_deref(), ctx.stage.as_deref())
}

/// The token from `?token=`, or from an `Authorization: Bearer` header for clients that can set one.
fn token(event: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
    event.query_string_parameters.first("token").or_else(|| {
        event
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    })
}

/// `$connect`: 200 with the connection recorded, or the error's status (401 for a bad token).
/// On 200 the caller must then arrange `welcome` (see `WelcomeEvent`).
pub async fn connect(service: &ChatService, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let span = span("connect", &event);
    async {
        let connection_id = event.request_context.connection_id.as_deref().unwrap_or_default();
        let source_ip = event.request_context.identity.source_ip.as_deref();
        let endpoint = endpoint(service, &event);
        match service.bounded(service.connect(token(&event), connection_id, source_ip, endpoint.as_deref())).await {
            Ok(_) => response(200, None),
            Err(err) => {
                tracing::info!(error = %err, "connection refused");
                error_response(&err)
            }
        }
    }
    .instrument(span)
    .await
}

/// The event that asks for the welcome frame of a connection just accepted, if `$connect` succeeded.
pub fn welcome_event(service: &ChatService, event: &ApiGatewayWebsocketProxyRequest) -> Option<WelcomeEvent> {
    Some(WelcomeEvent {
        connection_id: event.request_context.connection_id.clone()?,
        endpoint: endpoint(service, event)?,
    })
}

pub async fn welcome(service: &ChatService, event: WelcomeEvent) -> Result<(), ChatError> {
    let span = tracing::info_span!("handler", handler = "welcome", connection_id = %event.connection_id);
    service.welcome(&event.connection_id, &event.endpoint).instrument(span).await
}

pub async fn disconnect(service: &ChatService, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let span = span("disconnect", &event);
    async {
        let connection_id = event.request_context.connection_id.as_deref().unwrap_or_default();
        let endpoint = endpoint(service, &event);
        if let Err(err) = service.bounded(service.disconnect(connection_id, endpoint.as_deref())).await {
            tracing::error!(error = %err, "disconnect failed");
            return response(500, None);
        }
        response(200, None)
    }
    .instrument(span)
    .await
}

/// `$default`: one client frame. The reply (ack or error frame) is the response body, which API
/// Gateway's route response (and the local gateway) sends back to the client.
pub async fn message(service: &ChatService, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let span = span("message-route", &event);
    async {
        let connection_id = event.request_context.connection_id.as_deref().unwrap_or_default();
        let body = event.body.as_deref().unwrap_or_default();
        let reply = service.handle_frame(connection_id, endpoint(service, &event).as_deref(), body).await;
        response(200, reply)
    }
    .instrument(span)
    .await
}

/// The answer to a frame the local gateway has no room for (as API Gateway's throttling refuses a
/// message on AWS): `service_unavailable` with `retry_after_ms`, at once, nothing done.
pub fn overloaded(body: &str) -> String {
    crate::metrics::count(crate::metrics::Counter::FramesRefused, 1);
    let request_id = serde_json::from_str(body).ok().and_then(|value| crate::protocol::request_id_of(&value));
    ChatError::Overloaded.to_frame().reply_json(request_id.as_deref())
}

/// One chunk of a fan-out, in the fan-out function.
pub async fn fanout(service: &ChatService, chunk: crate::fanout::Chunk) -> Result<(), ChatError> {
    let span =
        tracing::info_span!("handler", handler = "fanout", tenant_id = %chunk.tenant_id, posts = chunk.posts.len());
    crate::metrics::tenant(&chunk.tenant_id);
    service.run_chunk(chunk).instrument(span).await
}

/// The scheduled sweep: expired typing indicators, and connections that ended unnoticed.
pub async fn typing_cleanup(service: &ChatService) -> Result<usize, ChatError> {
    let span = tracing::info_span!("handler", handler = "typing-cleanup");
    service.sweep(None).instrument(span).await
}
