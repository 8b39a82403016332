//! The AsyncAPI 3.0 document of the WebSocket API: one channel, every client frame an operation
//! the server receives (with the frame that answers it), every server frame one it sends, and
//! the Redis channels that carry the same events to other services.

use serde_json::{json, Map, Value};

use super::schemas::{bundle, frame_types, pascal, CLIENT_FRAME, SERVER_FRAME};
use super::{components, examples};
use crate::protocol;

const CHAT: &str = "#/channels/chat";

pub fn asyncapi() -> Value {
    let bundle = bundle();
    let client = frame_types(&bundle, CLIENT_FRAME);
    let server = frame_types(&bundle, SERVER_FRAME);
    let description = |name: &str| bundle["$defs"][name]["description"].as_str().map(str::to_string);

    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let sides = [(&client, by_kind(examples::client_frames())), (&server, by_kind(examples::server_frames()))];
    for (frames, examples) in &sides {
        for (kind, name) in frames.iter() {
            let mut message = json!({
                "name": kind,
                "title": name,
                "payload": { "$ref": format!("#/components/schemas/{name}") },
                "examples": [{ "name": kind, "payload": examples[kind] }],
            });
            if let Some(text) = description(name) {
                message["summary"] = json!(text);
            }
            messages.insert(name.clone(), message);
            channel_messages.insert(name.clone(), json!({ "$ref": format!("#/components/messages/{name}") }));
        }
    }
    let message_ref = |name: &str| json!({ "$ref": format!("{CHAT}/messages/{name}") });
    let named = |kind: &str| &server.iter().find(|(k, _)| k == kind).expect("a server frame").1;

    let mut operations = Map::new();
    for (kind, name) in &client {
        let frame = protocol::parse(&sides[0].1[kind].to_string()).expect("the examples are valid frames").frame;
        let mut operation = json!({
            "action": "receive",
            "channel": { "$ref": CHAT },
            "title": kind,
            "messages": [message_ref(name)],
        });
        let replies: Vec<Value> =
            frame.reply().into_iter().chain(["error"]).map(|reply| message_ref(named(reply))).collect();
        operation["reply"] = json!({ "channel": { "$ref": CHAT }, "messages": replies });
        operations.insert(format!("receive{}", pascal(kind)), operation);
    }
    for (kind, name) in &server {
        if kind == "mention" {
            continue;
        }
        operations.insert(
            format!("send{}", pascal(kind)),
            json!({ "action": "send", "channel": { "$ref": CHAT }, "title": kind, "messages": [message_ref(name)] }),
        );
    }
    operations.insert(
        "publishEvent".into(),
        json!({ "action": "send", "channel": { "$ref": "#/channels/events" }, "title": "publish an event",
            "messages": [{ "$ref": "#/channels/events/messages/Envelope" }] }),
    );
    // `mention` goes to Redis only.
    channel_messages.retain(|name, _| name != named("mention"));

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Chat WebSocket API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Frames are JSON objects whose `type` names them. Any client frame may carry a `request_id` \
                (string or number): the frame that answers it (see each operation's reply, or `error`) echoes it. \
                Events from other members arrive unannounced. Generated from the server's types (README, \"Protocol\").",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "description": "The local gateway (`scripts/dev.sh run`); on AWS the API Gateway stage URL.",
                "security": [{ "$ref": "#/components/securitySchemes/token" }],
            },
            "redis": {
                "host": "127.0.0.1:6379",
                "protocol": "redis",
                "description": "Every event is also published on Redis, for other services to follow.",
            },
        },
        "channels": {
            "chat": {
                "address": "/api/v1/ws/chat",
                "title": "Chat connection",
                "description": "One WebSocket per connection. The first frame is `connection`. A frame over 128 KiB \
                    closes the connection; a refused frame changes nothing.",
                "servers": [{ "$ref": "#/servers/local" }],
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "bindingVersion": "0.1.0",
                        "query": {
                            "type": "object",
                            "properties": { "token": { "type": "string", "description": "The JWT (HS256)." } },
                            "required": ["token"],
                        },
                    },
                },
            },
            "events": {
                "address": "{channel}",
                "title": "Redis channels",
                "description": "`room:{room_id}` (room events), `typing:{room_id}`, `user:{user_id}` (presence, and \
                    `mention` for each message that mentions them) and `chat:global` (announcements). User ids are \
                    unique within a tenant only: filter on `tenant_id`.",
                "servers": [{ "$ref": "#/servers/redis" }],
                "parameters": { "channel": { "description": "room:{room_id}, typing:{room_id}, user:{user_id} or chat:global" } },
                "messages": { "Envelope": { "$ref": "#/components/messages/Envelope" } },
            },
        },
        "operations": operations,
        "components": {
            "schemas": components(&bundle, &[CLIENT_FRAME, SERVER_FRAME, "Envelope"]),
            "messages": messages_with_envelope(messages),
            "securitySchemes": {
                "token": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "A JWT signed with the tenant's secret: `sub` the user, `tenant_id`, `exp`, optional \
                        `name` and `roles` (`admin`, `support_agent`). A missing, expired or forged token is refused \
                        with HTTP 401; one that expires during the session ends it with `unauthorized` unless \
                        `refresh_token` came first.",
                },
            },
        },
    })
}

fn messages_with_envelope(mut messages: Map<String, Value>) -> Value {
    messages.insert(
        "Envelope".into(),
        json!({ "name": "envelope", "title": "Envelope", "payload": { "$ref": "#/components/schemas/Envelope" } }),
    );
    Value::Object(messages)
}

/// Examples by their `type`.
fn by_kind(frames: Vec<Value>) -> Map<String, Value> {
    frames.into_iter().map(|frame| (frame["type"].as_str().expect("typed").to_string(), frame)).collect()
}
