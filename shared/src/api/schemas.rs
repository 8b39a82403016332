//! The JSON Schemas of the protocol, derived from its Rust types: one `$defs` map holding every
//! client frame (`Client…`) and server frame (`Server…`) as a closed object named for its `type`,
//! the unions `ClientFrame` and `ServerFrame`, the records inside them, and the HTTP bodies.

use schemars::generate::{Contract, SchemaSettings};
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::examples;
use crate::channels::Envelope;
use crate::http_api::{
    BlockedList, Deleted, DevToken, DevTokenRequest, ErrorBody, Health, HistoryPage, Metrics, PinList, ReportList,
    SearchResults, Session, Webhook,
};
use crate::protocol::{self, ClientFrame, ServerFrame};
use crate::webhooks::EndpointRequest;

/// The unions of frames, and the prefix of their members' names.
pub const CLIENT_FRAME: &str = "ClientFrame";
pub const SERVER_FRAME: &str = "ServerFrame";

/// The bundle written to `docs/api/protocol.schema.json`.
pub fn bundle() -> Value {
    // What a client may send is what the server reads (fields with defaults are optional);
    // what the server sends is what it writes.
    let mut reads = SchemaSettings::draft2020_12().into_generator();
    let mut writes = SchemaSettings::draft2020_12().with(|s| s.contract = Contract::Serialize).into_generator();
    reads.subschema_for::<ClientFrame>();
    reads.subschema_for::<DevTokenRequest>();
    writes.subschema_for::<ServerFrame>();
    writes.subschema_for::<Envelope>();
    for_each_body(&mut writes);
    let mut defs = reads.take_definitions(true);
    for (name, schema) in writes.take_definitions(true) {
        if let Some(other) = defs.get(&name) {
            assert_eq!(other, &schema, "{name} reads and writes differently: name them apart");
        }
        defs.insert(name, schema);
    }
    split_union(&mut defs, CLIENT_FRAME, "Client");
    split_union(&mut defs, SERVER_FRAME, "Server");
    for schema in defs.values_mut() {
        close_objects(schema);
    }
    defs.insert("Replies".into(), replies());
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Chat protocol",
        "description": "The frames of the WebSocket API and the bodies of the HTTP API, derived from the server's types.",
        "$defs": defs,
    })
}

fn for_each_body(generator: &mut SchemaGenerator) {
    generator.subschema_for::<ErrorBody>();
    generator.subschema_for::<Health>();
    generator.subschema_for::<Session>();
    generator.subschema_for::<HistoryPage>();
    generator.subschema_for::<PinList>();
    generator.subschema_for::<BlockedList>();
    generator.subschema_for::<ReportList>();
    generator.subschema_for::<SearchResults>();
    generator.subschema_for::<Metrics>();
    generator.subschema_for::<DevToken>();
    generator.subschema_for::<Webhook>();
    generator.subschema_for::<EndpointRequest>();
    generator.subschema_for::<Deleted>();
}

/// The `type` of each member of a union (`ClientFrame` or `ServerFrame`) of the bundle, and the
/// name of its schema.
pub fn frame_types(bundle: &Value, union: &str) -> Vec<(String, String)> {
    let defs = &bundle["$defs"];
    defs[union]["oneOf"]
        .as_array()
        .expect("a union of frames")
        .iter()
        .map(|member| {
            let name = member["$ref"].as_str().and_then(|r| r.strip_prefix("#/$defs/")).expect("a named frame");
            let kind = defs[name]["properties"]["type"]["const"].as_str().expect("a frame's type");
            (kind.to_string(), name.to_string())
        })
        .collect()
}

/// Moves each member of a tagged union into a definition of its own, named for its `type`, with
/// the envelope's `request_id` and no other field than its own.
fn split_union(defs: &mut Map<String, Value>, union: &str, prefix: &str) {
    let mut schema = defs.remove(union).expect("the union is defined");
    let members = schema["oneOf"].as_array_mut().expect("a tagged union");
    for member in members.iter_mut() {
        // A newtype variant refers to its struct: its fields become the frame's own.
        if let Some(target) = member.as_object_mut().and_then(|m| m.remove("$ref")) {
            let name = target.as_str().and_then(|r| r.strip_prefix("#/$defs/")).expect("a local reference");
            let fields = defs.remove(name).expect("the referred struct is defined");
            merge_struct(member, fields);
        }
        let kind = member["properties"]["type"]["const"].as_str().expect("tagged").to_string();
        member["properties"]["request_id"] = json!({
            "description": "The client's id for a request, echoed on its reply (at most 128 characters are kept).",
            "type": ["string", "integer"],
        });
        let name = format!("{prefix}{}", pascal(&kind));
        member["title"] = json!(name);
        defs.insert(name.clone(), member.take());
        *member = json!({ "$ref": format!("#/$defs/{name}") });
    }
    defs.insert(union.to_string(), schema);
}

fn merge_struct(member: &mut Value, fields: Value) {
    let properties = member["properties"].as_object_mut().expect("the tag");
    properties.extend(fields["properties"].as_object().cloned().unwrap_or_default());
    let required = member["required"].as_array_mut().expect("the tag is required");
    required.extend(fields["required"].as_array().cloned().unwrap_or_default());
    if member.get("description").is_none() {
        if let Some(description) = fields.get("description") {
            member["description"] = description.clone();
        }
    }
}

/// Objects take only the fields they name: a field the schemas do not describe is a mismatch.
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Which frame answers each client frame that gets an answer (besides `error`).
fn replies() -> Value {
    let mut properties = Map::new();
    for example in examples::client_frames() {
        let frame = protocol::parse(&example.to_string()).expect("the examples are valid frames").frame;
        if let Some(reply) = frame.reply() {
            properties.insert(frame.kind().into(), json!({ "const": reply }));
        }
    }
    let required: Vec<&String> = properties.keys().collect();
    json!({
        "description": "The `type` of the frame that answers each client frame (typing indicators get none).",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// `join_room` → `JoinRoom`.
pub fn pascal(kind: &str) -> String {
    kind.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}
