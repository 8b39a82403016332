//! Client WebSockets: `$connect` before the upgrade (a non-2xx answer refuses it with that
//! status, as API Gateway does), `$default` per frame, `$disconnect` when the socket ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::encodings::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use shared::handlers;
use shared::protocol::{ErrorCode, ServerFrame};
use tokio::sync::Semaphore;

use crate::events::{new_connection_id, ConnectionContext};
use crate::sockets::{Outbound, Receiving};
use crate::{Gateway, STAGE};

/// API Gateway's limit for one WebSocket message.
const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Chat frames are small: the read buffer starts at this (it grows for a bigger frame), where the
/// default of 128 KiB per idle connection made most of the gateway's memory.
const READ_BUFFER_BYTES: usize = 4 * 1024;

pub async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let now = chrono::Utc::now();
    let context = ConnectionContext {
        connection_id: new_connection_id(),
        connected_at_ms: now.timestamp_millis(),
        source_ip: peer.ip().to_string(),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
        domain_name: gateway.domain_name.clone(),
        stage: STAGE.to_string(),
    };
    let connection_id = context.connection_id.clone();
    // Registered before `$connect` so posts made while the upgrade completes are queued, not lost.
    let receiving = gateway.sockets.open(context.clone());

    let event = context.connect(&headers, &query);
    let welcome = handlers::welcome_event(&gateway.service, &event);
    let response = handlers::connect(&gateway.service, event).await;
    if !(200..300).contains(&response.status_code) {
        gateway.sockets.remove(&connection_id);
        let status = u16::try_from(response.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match response.body {
            Some(Body::Text(text)) => text,
            _ => String::new(),
        };
        return (status, response.headers, body).into_response();
    }

    let failed = (gateway.clone(), context.clone());
    // Frames are written as they come (no write buffering: chat wants them out now).
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * MAX_MESSAGE_BYTES)
        .on_failed_upgrade(move |err| {
            tracing::info!(error = %err, "upgrade failed after $connect");
            let (gateway, context) = failed;
            tokio::spawn(async move { closed(&gateway, &context, 1006, "upgrade failed").await });
        })
        .on_upgrade(move |socket| async move {
            run(gateway.clone(), context.clone(), socket, receiving, welcome).await;
        })
}

async fn run(
    gateway: Arc<Gateway>,
    context: ConnectionContext,
    socket: WebSocket,
    receiving: Receiving,
    welcome: Option<handlers::WelcomeEvent>,
) {
    let Receiving { mut rx, overflowed } = receiving;
    let (mut sink, mut stream) = socket.split();
    let ping_interval = gateway.service.config.gateway_ping_interval;
    let mut writer = tokio::spawn(async move {
        let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
        loop {
            let sent = tokio::select! {
                out = rx.recv() => match out {
                    Some(Outbound::Frame(payload)) => match Utf8Bytes::try_from(payload.clone()) {
                        Ok(text) => sink.send(Message::Text(text)).await,
                        Err(_) => sink.send(Message::Binary(payload)).await,
                    },
                    Some(Outbound::Close) => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
                        break;
                    }
                    None => break,
                },
                _ = pings.tick() => sink.send(Message::Ping(Default::default())).await,
            };
            if sent.is_err() {
                break;
            }
        }
    });

    // The same follow-up AWS runs as an asynchronous invocation of the connect function. Boxed,
    // as `closed` below: the handlers' futures are large, and awaited inline they would make
    // every idle connection's task that large for its whole life (13 KiB of its 22).
    if let Some(welcome) = welcome {
        if let Err(err) = Box::pin(handlers::welcome(&gateway.service, welcome)).await {
            tracing::warn!(error = %err, connection_id = %context.connection_id, "welcome failed");
        }
    }

    // As on API Gateway, a connection's frames are handled side by side (up to the setting):
    // replies and effects may come in another order than the frames.
    let in_flight = Arc::new(Semaphore::new(gateway.service.config.gateway_frame_concurrency.max(1)));
    let mut heard = tokio::time::Instant::now();
    let (code, reason) = loop {
        let body = tokio::select! {
            incoming = stream.next() => {
                heard = tokio::time::Instant::now();
                match incoming {
                Some(Ok(Message::Text(text))) => text.to_string(),
                Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                Some(Ok(Message::Close(close))) => break close.map_or((1005, String::new()), |c| (c.code, c.reason.to_string())),
                Some(Ok(_)) => continue,
                Some(Err(err)) => break (1006, err.to_string()),
                None => break (1006, "connection lost".to_string()),
            }},
            // Gone without a close frame (its network dropped): API Gateway finds such a
            // connection by its idle timeout, the local gateway by unanswered pings.
            _ = tokio::time::sleep_until(heard + 2 * ping_interval) => break (1006, "no answer to pings".to_string()),
            _ = &mut writer => break (1000, "closed by the management API".to_string()),
            _ = overflowed.notified() => break (1013, "client too slow".to_string()),
        };
        // Waiting here stops reading: a client that outruns its frames' handling is slowed, not queued.
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        // The gateway as a whole is overloaded: the sender hears so at once, instead of its
        // frame waiting seconds behind the others.
        let Ok(admitted) = gateway.frames.clone().try_acquire_owned() else {
            let _ = gateway.sockets.post(&context.connection_id, handlers::overloaded(&body).into());
            continue;
        };
        let (gateway, context) = (gateway.clone(), context.clone());
        tokio::spawn(async move {
            frame(&gateway, &context, body).await;
            drop((permit, admitted));
        });
    };
    writer.abort();
    Box::pin(closed(&gateway, &context, code, &reason)).await;
}

/// One client frame through the message-route handler; its reply goes back on the socket. The
/// handler runs as a task of its own, so a panic fails that frame alone, as it fails one Lambda
/// invocation.
async fn frame(gateway: &Arc<Gateway>, context: &ConnectionContext, body: String) {
    if let Some(socket) = gateway.sockets.lock().get_mut(&context.connection_id) {
        socket.last_active = chrono::Utc::now();
    }
    let (handler, event) = (gateway.clone(), context.message(body));
    let reply = match tokio::spawn(async move { handlers::message(&handler.service, event).await }).await {
        Ok(response) => match response.body {
            Some(Body::Text(reply)) => reply,
            _ => return,
        },
        Err(err) => {
            tracing::error!(error = %err, connection_id = %context.connection_id, "frame handler panicked");
            ServerFrame::Error {
                code: ErrorCode::InternalError,
                message: "internal error".into(),
                retry_after_ms: None,
            }
            .to_json()
        }
    };
    let _ = gateway.sockets.post(&context.connection_id, reply.into());
}

async fn closed(gateway: &Gateway, context: &ConnectionContext, code: u16, reason: &str) {
    gateway.sockets.remove(&context.connection_id);
    handlers::disconnect(&gateway.service, context.disconnect(code, reason)).await;
}
