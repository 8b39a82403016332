//! The contract recorder: every frame a test sends with `Client::send` and every frame it
//! receives (and every event it reads from Redis) must match the protocol's schemas
//! (`shared::api`), and its type is recorded under `target/contract/` (`CONTRACT_DIR` to move
//! it), one file a test process, so the test command can say how many of the protocol's frame
//! types the suites exercised (`cargo run -p integration-tests --bin contract`).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use jsonschema::Validator;
use serde_json::Value;
use shared::api::{bundle, frame_types, schema_of, CLIENT_FRAME, SERVER_FRAME};

/// Where each process records the frame types it checked.
pub fn dir() -> PathBuf {
    std::env::var_os("CONTRACT_DIR")
        .map_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/contract")), PathBuf::from)
}

struct Contract {
    /// Each side's union, and a validator of each of its frames by `type` for precise errors.
    client: (Validator, HashMap<String, Validator>),
    server: (Validator, HashMap<String, Validator>),
    envelope: Validator,
    replies: Value,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let bundle = bundle();
    let validator = |name: &str| {
        jsonschema::options().should_validate_formats(true).build(&schema_of(&bundle, name)).expect("schemas compile")
    };
    let side = |union: &str| {
        let frames = frame_types(&bundle, union).into_iter().map(|(kind, name)| (kind, validator(&name))).collect();
        (validator(union), frames)
    };
    Contract {
        client: side(CLIENT_FRAME),
        server: side(SERVER_FRAME),
        envelope: validator("Envelope"),
        replies: bundle["$defs"]["Replies"]["properties"].clone(),
    }
});

/// The types this process recorded already, and its file.
static RECORD: LazyLock<Mutex<(HashSet<String>, File)>> = LazyLock::new(|| {
    let dir = dir();
    std::fs::create_dir_all(&dir).expect("create the contract folder");
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.txt", std::process::id())))
        .expect("open the contract record");
    Mutex::new((HashSet::new(), file))
});

/// A frame a test means to be valid, as sent.
pub fn sent(frame: &Value) {
    check(&CONTRACT.client, "client", frame);
}

/// Whether the schemas refuse a client frame (as the server does).
pub fn refuses(frame: &Value) -> bool {
    !CONTRACT.client.0.is_valid(frame)
}

/// Any frame the server sent.
pub fn received(frame: &Value) {
    check(&CONTRACT.server, "server", frame);
}

/// An envelope published on a Redis channel, and the event in it.
pub fn published(envelope: &Value) {
    assert_valid(&CONTRACT.envelope, "envelope", envelope);
    record("server", &envelope["event"]);
}

/// The frame that answered `request` is the one the protocol names for it, or `error`.
pub fn answered(request: &Value, reply: &Value) {
    let expected = &CONTRACT.replies[request["type"].as_str().unwrap_or_default()]["const"];
    assert!(
        reply["type"] == *expected || reply["type"] == "error",
        "{request} is answered with {expected}, not {reply}"
    );
}

fn check((union, frames): &(Validator, HashMap<String, Validator>), side: &str, frame: &Value) {
    let kind = frame["type"].as_str().unwrap_or_default();
    assert_valid(frames.get(kind).unwrap_or(union), side, frame);
    record(side, frame);
}

fn assert_valid(validator: &Validator, what: &str, value: &Value) {
    let errors: Vec<String> =
        validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path().as_str())).collect();
    assert!(errors.is_empty(), "the {what} frame does not match the schemas: {value}\n{}", errors.join("\n"));
}

fn record(side: &str, frame: &Value) {
    let line = format!("{side} {}", frame["type"].as_str().unwrap_or_default());
    let mut record = RECORD.lock().unwrap_or_else(|e| e.into_inner());
    if record.0.insert(line.clone()) {
        writeln!(record.1, "{line}").expect("write the contract record");
    }
}
