//! The OpenAPI 3.1 document of the HTTP routes (`crate::http_api`, and the local gateway's own).

use serde_json::{json, Value};

use super::components;
use super::schemas::bundle;
use crate::protocol::MAX_HISTORY_PAGE;

fn body(name: &str, description: &str) -> Value {
    json!({ "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } } })
}

fn error(description: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{description}") })
}

/// The errors every authenticated route may answer.
fn errors(extra: &[(&str, &str)]) -> Vec<(String, Value)> {
    [("400", "Invalid"), ("401", "Unauthorized"), ("429", "RateLimited"), ("503", "Unavailable")]
        .iter()
        .chain(extra)
        .map(|(status, name)| (status.to_string(), error(name)))
        .collect()
}

fn responses(ok: Value, extra: &[(&str, &str)]) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert("200".into(), ok);
    responses.extend(errors(extra));
    Value::Object(responses)
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn cursor(name: &str, description: &str) -> Value {
    query(name, description, json!({ "type": "integer", "minimum": 0 }))
}

fn limit(default: u32) -> Value {
    query(
        "limit",
        "Outside 1-100 it is clamped.",
        json!({ "type": "integer", "minimum": 1, "maximum": MAX_HISTORY_PAGE, "default": default }),
    )
}

fn room_id(description: &str) -> Value {
    query("room_id", description, json!({ "type": "string", "format": "uuid" }))
}

pub fn openapi() -> Value {
    let bundle = bundle();
    let roots = [
        "ErrorBody",
        "Health",
        "Session",
        "HistoryPage",
        "PinList",
        "BlockedList",
        "ReportList",
        "SearchResults",
        "Metrics",
        "Webhook",
        "EndpointRequest",
        "Deleted",
        "DevToken",
        "DevTokenRequest",
    ];
    let error_response = |description: &str| body("ErrorBody", description);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Chat HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP routes beside the WebSocket API (its AsyncAPI document: /api/v1/asyncapi.json). \
                Every route but health, the development token and the documents needs `Authorization: Bearer JWT`, \
                the token of the WebSocket. Errors are `{\"code\",\"message\"}` with the status of the code.",
        },
        "servers": [{ "url": "http://127.0.0.1:8000", "description": "The local gateway (`scripts/dev.sh run`)" }],
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/chat/health": { "get": {
                "operationId": "health",
                "summary": "Whether Postgres and Redis answer within two seconds",
                "description": "No token; limited per source address.",
                "security": [],
                "responses": {
                    "200": body("Health", "Both answer."),
                    "429": error("RateLimited"),
                    "503": body("Health", "One of them does not (`degraded`)."),
                },
            } },
            "/api/v1/chat/session": { "get": {
                "operationId": "session",
                "summary": "Whose token this is",
                "description": "Browsers cannot read why a WebSocket upgrade failed: 401 here means the token.",
                "responses": responses(body("Session", "The token's user and tenant."), &[]),
            } },
            "/api/v1/chat/rooms/{room_id}/messages": { "get": {
                "operationId": "history",
                "summary": "A page of a room's history, as `get_history`",
                "parameters": [
                    { "name": "room_id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } },
                    cursor("before", "Page back from this `seq`."),
                    cursor("after", "Page forward from this `seq` (catch-up)."),
                    limit(50),
                ],
                "responses": responses(body("HistoryPage", "Oldest first."), &[("403", "Forbidden"), ("404", "NotFound")]),
            } },
            "/api/v1/chat/rooms/{room_id}/pins": { "get": {
                "operationId": "pins",
                "summary": "A room's pinned messages, as `list_pins`",
                "parameters": [
                    { "name": "room_id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } },
                ],
                "responses": responses(body("PinList", "Newest pin first."), &[("403", "Forbidden"), ("404", "NotFound")]),
            } },
            "/api/v1/chat/blocked": { "get": {
                "operationId": "blocked",
                "summary": "The users the caller blocked, as `list_blocked`",
                "responses": responses(body("BlockedList", "Most recent first."), &[]),
            } },
            "/api/v1/chat/reports": { "get": {
                "operationId": "reports",
                "summary": "Reports of messages, as `list_reports` (the room's moderators and admins, or tenant admins)",
                "parameters": [
                    room_id("Only this room; without it, every room the caller moderates (every room, for tenant admins)."),
                    query("status", "Open ones unless asked.", json!({ "type": "string", "enum": ["open", "dismissed", "deleted"], "default": "open" })),
                ],
                "responses": responses(body("ReportList", "Newest first, at most 100."), &[("403", "Forbidden"), ("404", "NotFound")]),
            } },
            "/api/v1/chat/search": { "get": {
                "operationId": "search",
                "summary": "Full-text search of the messages of the caller's rooms",
                "parameters": [
                    { "name": "q", "in": "query", "required": true, "description": "Web search syntax: words, \"phrases\", -excluded.",
                        "schema": { "type": "string", "minLength": 1, "maxLength": 256 } },
                    room_id("Only this room."),
                    limit(20),
                ],
                "responses": responses(body("SearchResults", "Best match first."), &[]),
            } },
            "/api/v1/chat/metrics": { "get": {
                "operationId": "tenantMetrics",
                "summary": "The tenant's figures (tenant admins)",
                "responses": responses(body("Metrics", "Connections, active users, rooms."), &[("403", "Forbidden")]),
            } },
            "/api/v1/chat/export": { "get": {
                "operationId": "export",
                "summary": "The history of the tenant or one room (tenant admins, or the room's admins)",
                "parameters": [
                    query("format", "JSON Lines (`ndjson` too) or CSV.", json!({ "type": "string", "enum": ["jsonl", "ndjson", "csv"], "default": "jsonl" })),
                    room_id("Only this room."),
                    cursor("after", "Resume after this `seq` (a cut-off export's `X-Export-After`)."),
                ],
                "responses": responses(json!({
                    "description": "One record a message, with its edits, reactions and receipts; streamed.",
                    "headers": {
                        "X-Export-Total": { "description": "Records to come.", "schema": { "type": "integer" } },
                        "X-Export-After": { "description": "The `seq` it starts after.", "schema": { "type": "integer" } },
                    },
                    "content": {
                        "application/x-ndjson": { "schema": { "type": "string" } },
                        "text/csv": { "schema": { "type": "string" } },
                    },
                }), &[("403", "Forbidden"), ("404", "NotFound")]),
            } },
            "/api/v1/chat/webhook": {
                "get": {
                    "operationId": "getWebhook",
                    "summary": "The tenant's webhook endpoint, without its secret (tenant admins)",
                    "responses": responses(body("Webhook", "The endpoint."), &[("403", "Forbidden"), ("404", "NotFound")]),
                },
                "put": {
                    "operationId": "setWebhook",
                    "summary": "Sets the tenant's webhook endpoint (tenant admins); the answer shows its secret, once",
                    "description": "Events are POSTed signed: `X-Chat-Signature: t=UNIX,v1=HEX`, HMAC-SHA256 of `t.body` with the secret.",
                    "requestBody": { "required": true,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/EndpointRequest" } } } },
                    "responses": responses(body("Webhook", "The endpoint, with its secret."), &[("403", "Forbidden")]),
                },
                "delete": {
                    "operationId": "deleteWebhook",
                    "summary": "Removes the tenant's webhook endpoint (tenant admins)",
                    "responses": responses(body("Deleted", "Removed."), &[("403", "Forbidden"), ("404", "NotFound")]),
                },
            },
            "/api/v1/dev/token": { "post": {
                "operationId": "devToken",
                "summary": "A development token (local gateway with `DEV_TOKENS`, loopback only)",
                "security": [],
                "requestBody": { "required": true,
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/DevTokenRequest" } } } },
                "responses": {
                    "200": body("DevToken", "A token for that user and tenant."),
                    "400": error("Invalid"),
                    "429": error("RateLimited"),
                },
            } },
            "/metrics": { "get": {
                "operationId": "prometheus",
                "summary": "The local gateway's counters and histograms (Prometheus text format)",
                "security": [],
                "responses": { "200": { "description": "Prometheus exposition format 0.0.4.",
                    "content": { "text/plain": { "schema": { "type": "string" } } } } },
            } },
            "/api/v1/asyncapi.json": { "get": {
                "operationId": "asyncapi",
                "summary": "The AsyncAPI 3.0 document of the WebSocket API",
                "security": [],
                "responses": { "200": { "description": "JSON.", "content": { "application/json": { "schema": { "type": "object" } } } } },
            } },
            "/api/v1/openapi.json": { "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": { "200": { "description": "JSON.", "content": { "application/json": { "schema": { "type": "object" } } } } },
            } },
        },
        "components": {
            "schemas": components(&bundle, &roots),
            "responses": {
                "Invalid": error_response("A parameter is not valid (`validation_error`)."),
                "Unauthorized": error_response("No valid token (`unauthorized`)."),
                "Forbidden": error_response("Not allowed (`permission_denied`)."),
                "NotFound": error_response("No such room for the caller (`not_found`)."),
                "RateLimited": error_response("Limited (`rate_limited`): see `Retry-After` and `retry_after_ms`."),
                "Unavailable": error_response("Postgres or Redis do not answer (`service_unavailable`)."),
            },
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "The JWT of the WebSocket connection." },
            },
        },
    })
}
