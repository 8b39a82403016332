//! Room moderation beyond roles, mutes and bans: pinned messages, frozen rooms, slow mode,
//! blocking users and reports of messages.

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
    let (status, over_http) = app.get(&format!("rooms/{room}/pins"), Some("carol")).await;
    assert_eq!((status, &over_http["pins"]), (200, &pins["pins"]), "the HTTP route reads the same");

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

    let one = json!({ "type": "send_message", "room_id": room, "content": "one", "client_msg_id": "c-one" });
    assert_eq!(bob.request(one.clone()).await["type"], "message_sent");
    until(&mut alice, "new_message", |f| content(f) == "one").await;
    // Within the interval, a retry of the stored message is answered as the duplicate it is.
    let retried = bob.request(one).await;
    assert_eq!((&retried["type"], &retried["duplicate"]), (&json!("message_sent"), &json!(true)), "{retried}");
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

#[tokio::test]
async fn a_blocked_user_cannot_write_to_the_blocker_directly_and_is_flagged_elsewhere() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = room_of_three(&app).await;
    let mut bobs_phone = app.connect("bob").await;

    let blocked = bob.request(json!({ "type": "block_user", "user_id": "carol" })).await;
    assert_eq!((&blocked["type"], &blocked["user_id"]), (&json!("user_blocked"), &json!("carol")));
    assert_eq!(bobs_phone.expect("user_blocked").await["user_id"], "carol", "the blocker's other devices know");
    let again = bob.request(json!({ "type": "block_user", "user_id": "carol" })).await;
    assert_eq!(again["blocked_at"], blocked["blocked_at"], "blocking again keeps the first time");
    let mut refusals = 0;
    for (frame, expected) in [
        (json!({ "type": "block_user", "user_id": "bob" }), "validation_error"),
        (json!({ "type": "unblock_user", "user_id": "alice" }), "not_found"),
    ] {
        assert_eq!(code(&bob.request(frame.clone()).await), expected, "{frame}");
        refusals += 1;
    }

    // In a group room the blocker gets carol's messages flagged; the others get them as ever.
    send(&mut carol, &room, "hello all").await;
    let flagged = until(&mut bob, "new_message", |f| content(f) == "hello all").await;
    assert_eq!(flagged["message"]["sender_blocked"], true, "{flagged}");
    let plain = until(&mut alice, "new_message", |f| content(f) == "hello all").await;
    assert!(plain["message"].get("sender_blocked").is_none(), "{plain}");
    let history = bob.request(json!({ "type": "get_history", "room_id": room })).await;
    let last = history["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((&last["content"], &last["sender_blocked"]), (&json!("hello all"), &json!(true)));
    let history = alice.request(json!({ "type": "get_history", "room_id": room })).await;
    assert!(history["messages"].as_array().unwrap().iter().all(|m| m.get("sender_blocked").is_none()));

    // carol can neither open a direct room with bob nor write in one he opened.
    let direct = json!({ "type": "create_room", "room_type": "direct", "participants": ["bob"] });
    assert_eq!(code(&carol.request(direct).await), "permission_denied");
    refusals += 1;
    let opened = bob.request(json!({ "type": "create_room", "room_type": "direct", "participants": ["carol"] })).await;
    let direct_room = opened["room"]["id"].as_str().unwrap().to_string();
    until(&mut carol, "room_created", |f| f["room"]["id"] == direct_room.as_str()).await;
    let refused = carol.request(json!({ "type": "send_message", "room_id": direct_room, "content": "why?" })).await;
    assert_eq!(code(&refused), "permission_denied");
    refusals += 1;
    send(&mut bob, &direct_room, "that is why").await;
    until(&mut carol, "new_message", |f| content(f) == "that is why").await;

    let listed = bob.request(json!({ "type": "list_blocked" })).await;
    assert_eq!(listed["users"], json!([{ "user_id": "carol", "blocked_at": blocked["blocked_at"] }]));
    assert_eq!(carol.request(json!({ "type": "list_blocked" })).await["users"], json!([]));
    let (status, over_http) = app.get("blocked", Some("bob")).await;
    assert_eq!((status, &over_http["users"]), (200, &listed["users"]));

    let unblocked = bob.request(json!({ "type": "unblock_user", "user_id": "carol" })).await;
    assert_eq!(unblocked["type"], "user_unblocked");
    until(&mut bobs_phone, "user_unblocked", |_| true).await;
    send(&mut carol, &direct_room, "sorry").await;
    let plain = until(&mut bob, "new_message", |f| content(f) == "sorry").await;
    assert!(plain["message"].get("sender_blocked").is_none(), "{plain}");
    let count = "SELECT count(*) FROM chat_messages WHERE sender_id = 'carol'";
    assert_eq!(app.scalar(count).await, 2, "the refused message was not stored");
    println!("blocking: {refusals} frames refused, the blocker's copies flagged");
}

#[tokio::test]
async fn moderators_see_reports_and_resolve_them_by_dismissing_or_deleting() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let mut carol = app.connect("carol").await;
    let mut dave = app.connect("dave").await;
    let room = app.room(&mut alice, &mut [&mut bob, &mut carol, &mut dave], json!({})).await;
    alice.request(json!({ "type": "set_role", "room_id": room, "user_id": "bob", "role": "moderator" })).await;
    // The role change's system message is the last of it carol gets.
    until(&mut carol, "new_message", |f| f["message"]["message_type"] == "system").await;
    let rude = send(&mut carol, &room, "something rude").await;
    let ruder = send(&mut carol, &room, "something ruder").await;
    until(&mut dave, "new_message", |f| content(f) == "something ruder").await;

    let reported = dave.request(json!({ "type": "report_message", "message_id": rude, "reason": " spam " })).await;
    assert_eq!(reported["type"], "message_reported", "{reported}");
    let report = &reported["report"];
    assert_eq!(
        (&report["reporter"], &report["reason"], &report["status"], &report["message"]["content"]),
        (&json!("dave"), &json!("spam"), &json!("open"), &json!("something rude"))
    );
    let report_id = report["id"].as_str().unwrap().to_string();
    for moderator in [&mut alice, &mut bob] {
        let told = until(moderator, "message_reported", |_| true).await;
        assert_eq!(told["report"]["id"], report_id.as_str());
    }
    let again = dave.request(json!({ "type": "report_message", "message_id": rude, "reason": "still spam" })).await;
    assert_eq!((&again["report"]["id"], &again["report"]["reason"]), (&json!(report_id), &json!("spam")));
    bob.assert_quiet().await;

    let mut refusals = 0;
    for (who, frame, expected) in [
        ("carol", json!({ "type": "report_message", "message_id": rude, "reason": "mine" }), "validation_error"),
        ("dave", json!({ "type": "report_message", "message_id": ruder, "reason": "   " }), "validation_error"),
        ("carol", json!({ "type": "list_reports", "room_id": room }), "permission_denied"),
        ("dave", json!({ "type": "resolve_report", "report_id": report_id, "action": "dismiss" }), "permission_denied"),
    ] {
        let client = if who == "carol" { &mut carol } else { &mut dave };
        assert_eq!(code(&client.request(frame.clone()).await), expected, "{frame}");
        refusals += 1;
    }
    // Visible only to the room's moderators and admins, and to tenant admins.
    let listed = bob.request(json!({ "type": "list_reports", "room_id": room })).await;
    assert_eq!(listed["reports"][0]["id"], report_id.as_str(), "{listed}");
    assert_eq!(dave.request(json!({ "type": "list_reports" })).await["reports"], json!([]), "dave moderates nothing");
    let (status, over_http) = app.get(&format!("reports?room_id={room}"), Some("bob")).await;
    assert_eq!((status, &over_http["reports"]), (200, &listed["reports"]));
    assert_eq!(app.get(&format!("reports?room_id={room}"), Some("carol")).await.0, 403);
    assert_eq!(app.get("reports?status=closed", Some("bob")).await.0, 400);
    let (mut eve, _) = app.connect_as("eve", &["admin"]).await;
    let everywhere = eve.request(json!({ "type": "list_reports" })).await;
    assert_eq!(everywhere["reports"].as_array().unwrap().len(), 1, "{everywhere}");

    let dismissed = bob.request(json!({ "type": "resolve_report", "report_id": report_id, "action": "dismiss" })).await;
    assert_eq!((&dismissed["type"], &dismissed["report"]["status"]), (&json!("report_resolved"), &json!("dismissed")));
    assert_eq!(dismissed["report"]["resolved_by"], "bob");
    until(&mut alice, "report_resolved", |f| f["report"]["id"] == report_id.as_str()).await;
    let closed =
        bob.request(json!({ "type": "resolve_report", "report_id": report_id, "action": "delete_message" })).await;
    assert_eq!(code(&closed), "validation_error", "closed already");
    refusals += 1;
    let dismissed_list = bob.request(json!({ "type": "list_reports", "room_id": room, "status": "dismissed" })).await;
    assert_eq!(dismissed_list["reports"][0]["id"], report_id.as_str());

    // Two reports of one message; a tenant admin outside the room deletes it, closing both.
    let first = dave.request(json!({ "type": "report_message", "message_id": ruder, "reason": "abuse" })).await;
    until(&mut alice, "message_reported", |f| f["report"]["id"] == first["report"]["id"]).await;
    let second = alice.request(json!({ "type": "report_message", "message_id": ruder, "reason": "abuse" })).await;
    let deleted = eve
        .request(json!({ "type": "resolve_report", "report_id": first["report"]["id"], "action": "delete_message" }))
        .await;
    assert_eq!((&deleted["report"]["status"], &deleted["report"]["resolved_by"]), (&json!("deleted"), &json!("eve")));
    assert_eq!(deleted["report"]["message"]["content"], "", "a deleted message's content stays hidden");
    assert_eq!(eve.expect("message_deleted").await["message_id"], ruder.as_str(), "the resolver hears of it too");
    // carol saw her message go, and none of the reports.
    loop {
        let frame = carol.recv().await;
        assert!(!frame["type"].as_str().unwrap().contains("report"), "{frame}");
        if frame["type"] == "message_deleted" && frame["message_id"] == ruder.as_str() {
            break;
        }
    }
    let other = until(&mut bob, "report_resolved", |f| f["report"]["id"] == second["report"]["id"]).await;
    assert_eq!(other["report"]["status"], "deleted");
    assert_eq!(bob.request(json!({ "type": "list_reports", "room_id": room })).await["reports"], json!([]));
    println!("reports: {refusals} frames refused, dismissed and deleted as asked");
}
