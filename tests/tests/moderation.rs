//! Room moderation beyond roles, mutes and bans: pinned messages, frozen rooms, slow mode.

use integration_tests::{spawn_app, spawn_app_with, test_config, Client, TestApp};
use serde_json::{json, Value};

fn code(reply: &Value) -> &str {
    assert_eq!(reply["type"], "error", "{reply}");
    reply["code"].as_str().unwrap()
}

/// alice (the room's admin), bob and carol in one room; alice's first message's id.
async fn room_of_three(app: &TestApp) -> (Client, Client, Client, String) {
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let mut carol = app.connect("carol").await;
    let room = app.room(&mut alice, &mut [&mut bob, &mut carol], json!({})).await;
    (alice, bob, carol, room)
}

/// Reads events until one of `kind` that `check` accepts (those before it are earlier steps').
async fn until(client: &mut Client, kind: &str, check: impl Fn(&Value) -> bool) -> Value {
    loop {
        let frame = client.recv().await;
        if frame["type"] == kind && check(&frame) {
            return frame;
        }
    }
}

fn content(frame: &Value) -> &str {
    frame["message"]["content"].as_str().unwrap_or_default()
}

async fn send(client: &mut Client, room: &str, content: &str) -> String {
    let ack = client.request(json!({ "type": "send_message", "room_id": room, "content": content })).await;
    assert_eq!(ack["type"], "message_sent", "{ack}");
    ack["message"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn moderators_pin_messages_that_keep_their_edits_and_leave_with_deletion() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = room_of_three(&app).await;
    alice.request(json!({ "type": "set_role", "room_id": room, "user_id": "bob", "role": "moderator" })).await;
    let first = send(&mut alice, &room, "the plan").await;
    let second = send(&mut alice, &room, "the agenda").await;
    for client in [&mut bob, &mut carol] {
        until(client, "new_message", |f| content(f) == "the agenda").await;
    }

    let refused = carol.request(json!({ "type": "pin_message", "message_id": first })).await;
    assert_eq!(code(&refused), "permission_denied");
    let pinned = bob.request(json!({ "type": "pin_message", "message_id": first })).await;
    assert_eq!((&pinned["type"], &pinned["pin"]["pinned_by"]), (&json!("message_pinned"), &json!("bob")));
    assert_eq!(pinned["pin"]["message"]["id"], first.as_str());
    for client in [&mut alice, &mut carol] {
        assert_eq!(client.expect("message_pinned").await["pin"]["message"]["content"], "the plan");
    }
    // Pinning it again changes nothing and tells nobody.
    let again = bob.request(json!({ "type": "pin_message", "message_id": first })).await;
    assert_eq!((&again["pin"]["pinned_at"], &again["pin"]["pinned_by"]), (&pinned["pin"]["pinned_at"], &json!("bob")));
    carol.assert_quiet().await;

    // A pin shows the message as it is now.
    alice.request(json!({ "type": "edit_message", "message_id": first, "content": "the new plan" })).await;
    bob.expect("message_edited").await;
    bob.request(json!({ "type": "pin_message", "message_id": second })).await;
    for client in [&mut alice, &mut carol] {
        until(client, "message_pinned", |f| f["pin"]["message"]["id"] == second.as_str()).await;
    }
    let pins = carol.request(json!({ "type": "list_pins", "room_id": room })).await;
    let listed: Vec<&str> =
        pins["pins"].as_array().unwrap().iter().map(|p| p["message"]["content"].as_str().unwrap()).collect();
    assert_eq!(listed, ["the agenda", "the new plan"], "newest pin first: {pins}");

    let unpinned = bob.request(json!({ "type": "unpin_message", "message_id": second })).await;
    assert_eq!((&unpinned["type"], &unpinned["by"]), (&json!("message_unpinned"), &json!("bob")));
    assert_eq!(carol.expect("message_unpinned").await["message_id"], second.as_str());
    alice.expect("message_unpinned").await;
    assert_eq!(code(&bob.request(json!({ "type": "unpin_message", "message_id": second })).await), "not_found");

    // A deleted message is unpinned, and cannot be pinned again.
    alice.request(json!({ "type": "delete_message", "message_id": first })).await;
    for client in [&mut bob, &mut carol] {
        client.expect("message_deleted").await;
        assert_eq!(client.expect("message_unpinned").await["message_id"], first.as_str());
    }
    let pins = carol.request(json!({ "type": "list_pins", "room_id": room })).await;
    assert_eq!(pins["pins"], json!([]));
    let refused = bob.request(json!({ "type": "pin_message", "message_id": first })).await;
    assert_eq!(code(&refused), "permission_denied");
}

#[tokio::test]
async fn a_frozen_room_takes_posts_reactions_and_typing_from_its_admins_only() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = room_of_three(&app).await;
    let message = send(&mut alice, &room, "before the freeze").await;
    for client in [&mut bob, &mut carol] {
        until(client, "new_message", |f| content(f) == "before the freeze").await;
    }

    assert_eq!(code(&bob.request(json!({ "type": "freeze_room", "room_id": room })).await), "permission_denied");
    let frozen = alice.request(json!({ "type": "freeze_room", "room_id": room })).await;
    assert_eq!((&frozen["type"], &frozen["by"]), (&json!("room_frozen"), &json!("alice")));
    bob.expect("room_frozen").await;
    carol.expect("room_frozen").await;

    let mut refusals = 0;
    for frame in [
        json!({ "type": "send_message", "room_id": room, "content": "let me in" }),
        json!({ "type": "add_reaction", "message_id": message, "emoji": "😤" }),
        json!({ "type": "typing_start", "room_id": room }),
    ] {
        assert_eq!(code(&bob.request(frame.clone()).await), "permission_denied", "{frame}");
        refusals += 1;
    }
    // Members still read, and see that it is frozen.
    let history = bob.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!(history["messages"][0]["content"], "before the freeze");
    let rooms = bob.request(json!({ "type": "list_rooms" })).await;
    assert_eq!(rooms["rooms"][0]["room"]["frozen"], true);
    // Admins still post.
    send(&mut alice, &room, "frozen until the release").await;
    assert_eq!(bob.expect("new_message").await["message"]["content"], "frozen until the release");

    let thawed = alice.request(json!({ "type": "unfreeze_room", "room_id": room })).await;
    assert_eq!(thawed["type"], "room_unfrozen");
    bob.expect("room_unfrozen").await;
    send(&mut bob, &room, "thanks").await;
    let count = "SELECT count(*) FROM chat_messages WHERE sender_id = 'bob'";
    assert_eq!(app.scalar(count).await, 1, "nothing of the refused frames stored");
    println!("frozen room: {refusals} frames of a member refused, reads and admin posts served");
}

/// Slow mode is kept in Redis, so a second gateway (another Lambda instance) holds the member
/// to the same interval.
#[tokio::test]
async fn slow_mode_spaces_a_members_messages_across_instances_and_spares_moderators() {
    let config = test_config().await;
    let app = spawn_app_with(config.clone()).await;
    let mut other = spawn_app_with(config).await;
    other.tenant = app.tenant.clone();
    let (mut alice, mut bob, mut carol, room) = room_of_three(&app).await;

    assert_eq!(
        code(&bob.request(json!({ "type": "set_slow_mode", "room_id": room, "seconds": 30 })).await),
        "permission_denied"
    );
    let too_long = alice.request_invalid(json!({ "type": "set_slow_mode", "room_id": room, "seconds": 3601 })).await;
    assert_eq!(code(&too_long), "validation_error");
    let set = alice.request(json!({ "type": "set_slow_mode", "room_id": room, "seconds": 30 })).await;
    assert_eq!((&set["type"], &set["seconds"]), (&json!("slow_mode_set"), &json!(30)));
    assert_eq!(bob.expect("slow_mode_set").await["seconds"], 30);
    carol.expect("slow_mode_set").await;

    send(&mut bob, &room, "one").await;
    until(&mut alice, "new_message", |f| content(f) == "one").await;
    let refused = bob.request(json!({ "type": "send_message", "room_id": room, "content": "two" })).await;
    assert_eq!(code(&refused), "rate_limited");
    let wait = refused["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 30_000, "{refused}");
    let mut elsewhere = other.connect("bob").await;
    let refused = elsewhere.request(json!({ "type": "send_message", "room_id": room, "content": "two" })).await;
    assert_eq!(code(&refused), "rate_limited", "the interval holds on another instance");

    // The room's admins (and moderators) are exempt.
    send(&mut alice, &room, "a").await;
    send(&mut alice, &room, "b").await;

    alice.request(json!({ "type": "set_slow_mode", "room_id": room, "seconds": 0 })).await;
    until(&mut bob, "slow_mode_set", |f| f["seconds"] == 0).await;
    send(&mut bob, &room, "two, now").await;
    let count = "SELECT count(*) FROM chat_messages WHERE sender_id = 'bob'";
    assert_eq!(app.scalar(count).await, 2);
}
