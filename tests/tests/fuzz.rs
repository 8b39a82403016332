//! Generated frames against a live gateway: every one gets an answer (a reply, or nothing for a
//! successful typing frame), never an internal error, and the connection survives.
//! `FUZZ_CASES` sets how many (default 300); see README for a longer run.

use futures::SinkExt;
use integration_tests::spawn_app;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A valid frame of each type, with `$room`/`$message` standing for real ids; the fuzz mutates them.
fn templates(room: &Value, message: &Value) -> Vec<Value> {
    let (r, m) = (room.clone(), message.clone());
    vec![
        json!({ "type": "join_room", "room_id": r }),
        json!({ "type": "leave_room", "room_id": r }),
        json!({ "type": "send_message", "room_id": r, "content": "hi", "mentions": ["bob"], "reply_to": m, "client_msg_id": "c" }),
        json!({ "type": "send_message", "room_id": r, "content": "", "message_type": "image",
                "attachments": [{ "url": "https://x/y.png", "name": "y.png", "size": 1, "mime_type": "image/png" }] }),
        json!({ "type": "typing_start", "room_id": r }),
        json!({ "type": "typing_stop", "room_id": r }),
        json!({ "type": "mark_read", "room_id": r, "message_ids": [m] }),
        json!({ "type": "create_room", "name": "n", "room_type": "group", "participants": ["bob"], "is_private": false }),
        json!({ "type": "get_history", "room_id": r, "before": "10", "limit": 5 }),
        json!({ "type": "update_room", "room_id": r, "name": "renamed", "description": "d" }),
        json!({ "type": "invite", "room_id": r, "user_ids": ["carol"] }),
        json!({ "type": "remove_participant", "room_id": r, "user_id": "carol" }),
        json!({ "type": "set_role", "room_id": r, "user_id": "bob", "role": "moderator" }),
        json!({ "type": "mute_user", "room_id": r, "user_id": "bob", "duration_seconds": 60 }),
        json!({ "type": "unmute_user", "room_id": r, "user_id": "bob" }),
        json!({ "type": "ban_user", "room_id": r, "user_id": "carol", "reason": "r" }),
        json!({ "type": "unban_user", "room_id": r, "user_id": "carol" }),
        json!({ "type": "edit_message", "message_id": m, "content": "edited" }),
        json!({ "type": "delete_message", "message_id": m }),
        json!({ "type": "get_edit_history", "message_id": m }),
        json!({ "type": "add_reaction", "message_id": m, "emoji": "👍" }),
        json!({ "type": "remove_reaction", "message_id": m, "emoji": "👍" }),
        json!({ "type": "get_thread", "message_id": m, "limit": 3 }),
        json!({ "type": "get_receipts", "message_id": m }),
        json!({ "type": "get_unread" }),
        json!({ "type": "list_rooms", "room_type": "group" }),
        json!({ "type": "get_presence", "user_ids": ["bob"] }),
        json!({ "type": "announce", "content": "news" }),
        json!({ "type": "pin_message", "message_id": m }),
        json!({ "type": "unpin_message", "message_id": m }),
        json!({ "type": "list_pins", "room_id": r }),
        json!({ "type": "freeze_room", "room_id": r }),
        json!({ "type": "unfreeze_room", "room_id": r }),
        json!({ "type": "set_slow_mode", "room_id": r, "seconds": 5 }),
        json!({ "type": "block_user", "user_id": "bob" }),
        json!({ "type": "unblock_user", "user_id": "bob" }),
        json!({ "type": "list_blocked" }),
        json!({ "type": "report_message", "message_id": m, "reason": "spam" }),
        json!({ "type": "list_reports", "room_id": r, "status": "open" }),
        json!({ "type": "resolve_report", "report_id": m, "action": "delete_message" }),
        json!({ "type": "refresh_token", "token": "not.a.token" }),
    ]
}

/// A template, then up to three mutations: a field replaced by a generated value, removed,
/// or added.
fn frame(templates: Vec<Value>, pool: Vec<Value>) -> impl Strategy<Value = Value> {
    let mutation = (0..3u8, "[a-z_]{1,12}", 0..8usize, value(pool));
    (prop::sample::select(templates), prop::collection::vec(mutation, 0..4)).prop_map(|(mut frame, mutations)| {
        for (kind, name, pick, v) in mutations {
            let keys: Vec<String> = frame.as_object().unwrap().keys().filter(|k| *k != "type").cloned().collect();
            let key = keys.get(pick % keys.len().max(1)).cloned();
            match (kind, key) {
                (0, Some(key)) => frame[key] = v,
                (1, Some(key)) => {
                    frame.as_object_mut().unwrap().remove(&key);
                }
                _ => frame[name] = v,
            }
        }
        frame
    })
}

fn value(pool: Vec<Value>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        prop::sample::select(pool),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z0-9-]{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug)]
enum Input {
    Json(Value),
    Bytes(Vec<u8>),
}

#[tokio::test]
async fn generated_frames_always_get_an_answer_and_never_break_the_connection() {
    let cases: usize = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": "seed" })).await;
    let message = sent["message"]["id"].clone();
    let templates = templates(&json!(room), &message);
    let pool = vec![
        json!(room),
        message.clone(),
        json!("nul\u{0}"),
        json!("x".repeat(20_000)),
        json!(uuid::Uuid::new_v4()),
        json!("bob"),
        json!("alice"),
        json!("text"),
        json!("group"),
        json!("moderator"),
        json!("👍"),
        json!([{ "url": "https://x/y.png", "name": "y.png", "size": 1, "mime_type": "image/png" }]),
    ];
    let strategy = prop_oneof![
        9 => frame(templates, pool).prop_map(Input::Json),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Input::Bytes),
    ];
    let mut runner = TestRunner::deterministic();
    let (mut answered, mut errors) = (0, 0);
    for case in 0..cases {
        let input = strategy.new_tree(&mut runner).unwrap().current();
        let id = format!("fuzz-{case}");
        let shown = match input {
            Input::Json(mut frame) => {
                frame["request_id"] = json!(id);
                alice.send_invalid(frame.clone()).await;
                frame.to_string()
            }
            Input::Bytes(bytes) => {
                alice.ws.send(Message::Binary(bytes.clone().into())).await.unwrap();
                format!("{bytes:?}")
            }
        };
        // The ping's pong comes after the answer to the frame, if it has one.
        let ping = format!("ping-{case}");
        alice.send(json!({ "type": "ping", "request_id": ping })).await;
        loop {
            let reply = alice.recv().await;
            assert_ne!(reply["code"], "internal_error", "{shown} -> {reply}");
            if reply["request_id"] == ping.as_str() {
                break;
            }
            answered += 1;
            if reply["type"] == "error" {
                errors += 1;
            }
        }
    }
    println!("fuzz: {cases} generated frames, {answered} answers ({errors} error frames), no internal error, no panic");
    assert_eq!(alice.request(json!({ "type": "ping" })).await["type"], "pong");
}
