//! The protocol written once: JSON Schemas derived from the protocol's Rust types, and the
//! AsyncAPI (WebSocket) and OpenAPI (HTTP) documents assembled from them. They are committed
//! under `docs/api/` (`scripts/dev.sh api` writes them) and served by the local gateway; a test
//! fails while the committed files differ from what this code makes.

mod asyncapi;
mod examples;
mod openapi;
mod schemas;

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

pub use asyncapi::asyncapi;
pub use openapi::openapi;
pub use schemas::{bundle, frame_types, CLIENT_FRAME, SERVER_FRAME};

/// Where the documents are committed.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api");

/// Each document with its file name.
pub fn documents() -> [(&'static str, Value); 3] {
    [("protocol.schema.json", bundle()), ("asyncapi.json", asyncapi()), ("openapi.json", openapi())]
}

/// A schema of one definition of the bundle (`ClientFrame`, say) that validators can compile.
pub fn schema_of(bundle: &Value, name: &str) -> Value {
    json!({
        "$schema": bundle["$schema"],
        "$defs": bundle["$defs"],
        "$ref": format!("#/$defs/{name}"),
    })
}

/// A document as committed: pretty, with a final newline.
pub fn render(document: &Value) -> String {
    serde_json::to_string_pretty(document).expect("documents serialize") + "\n"
}

/// The bundle's definitions reachable from `roots`, as a document's `components.schemas` with
/// references pointing there.
fn components(bundle: &Value, roots: &[&str]) -> Map<String, Value> {
    let defs = bundle["$defs"].as_object().expect("definitions");
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone()) {
            references(&defs[&name], &mut todo);
        }
    }
    seen.into_iter()
        .map(|name| {
            let mut schema = defs[&name].clone();
            point_at_components(&mut schema);
            (name, schema)
        })
        .collect()
}

fn references(schema: &Value, into: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
                into.push(name.to_string());
            }
            map.values().for_each(|v| references(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, into)),
        _ => {}
    }
}

fn point_at_components(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref") {
                if let Some(name) = target.strip_prefix("#/$defs/") {
                    *target = format!("#/components/schemas/{name}");
                }
            }
            map.values_mut().for_each(point_at_components);
        }
        Value::Array(items) => items.iter_mut().for_each(point_at_components),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_documents_are_current() {
        for (file, document) in documents() {
            let path = format!("{DIR}/{file}");
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(committed == render(&document), "docs/api/{file} is stale: run `scripts/dev.sh api` and commit it");
        }
    }

    #[test]
    fn every_frame_has_an_example_that_parses() {
        let bundle = bundle();
        let kinds = |frames: Vec<Value>| -> Vec<String> {
            let mut kinds: Vec<String> = frames.iter().map(|f| f["type"].as_str().unwrap().to_string()).collect();
            kinds.sort();
            kinds
        };
        let types = |union| {
            let mut types: Vec<String> = frame_types(&bundle, union).into_iter().map(|(kind, _)| kind).collect();
            types.sort();
            types
        };
        assert_eq!(kinds(examples::client_frames()), types(CLIENT_FRAME));
        assert_eq!(kinds(examples::server_frames()), types(SERVER_FRAME));
        for frame in examples::client_frames() {
            assert!(crate::protocol::parse(&frame.to_string()).is_ok(), "{frame}");
        }
    }

    #[test]
    fn examples_match_their_schemas() {
        let bundle = bundle();
        for (union, frames) in [(CLIENT_FRAME, examples::client_frames()), (SERVER_FRAME, examples::server_frames())] {
            let validator =
                jsonschema::options().should_validate_formats(true).build(&schema_of(&bundle, union)).unwrap();
            for frame in frames {
                let errors: Vec<String> = validator.iter_errors(&frame).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{frame}: {errors:?}");
            }
        }
    }
}
