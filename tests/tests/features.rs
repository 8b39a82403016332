//! The product spec's feature set over the WebSocket protocol, with the permission rules.

use integration_tests::{contract, spawn_app, spawn_app_with, test_config, Client, TestApp};
use redis::AsyncCommands;
use serde_json::{json, Value};

fn code(frame: &Value) -> &str {
    assert_eq!(frame["type"], "error", "expected an error, got {frame}");
    frame["code"].as_str().unwrap()
}

/// Sends a message and returns the stored one; `others` each receive it.
async fn say(from: &mut Client, others: &mut [&mut Client], room: &str, content: &str) -> Value {
    let ack = from.request(json!({ "type": "send_message", "room_id": room, "content": content })).await;
    assert_eq!(ack["type"], "message_sent", "{ack}");
    for other in others.iter_mut() {
        assert_eq!(other.expect("new_message").await["message"]["id"], ack["message"]["id"]);
    }
    ack["message"].clone()
}

/// The next system message in a room.
async fn system(client: &mut Client) -> String {
    let frame = client.expect("new_message").await;
    assert_eq!(frame["message"]["message_type"], "system", "{frame}");
    frame["message"]["content"].as_str().unwrap().to_string()
}

async fn three(app: &TestApp) -> (Client, Client, Client, String) {
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let mut carol = app.connect("carol").await;
    let room = app.room(&mut alice, &mut [&mut bob, &mut carol], json!({ "name": "Team" })).await;
    (alice, bob, carol, room)
}

#[tokio::test]
async fn direct_rooms_hold_exactly_their_pair() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let two =
        alice.request(json!({ "type": "create_room", "room_type": "direct", "participants": ["bob", "carol"] })).await;
    assert_eq!(code(&two), "validation_error");
    let room = app.room(&mut alice, &mut [&mut bob], json!({ "room_type": "direct", "name": null })).await;
    let invite = alice.request(json!({ "type": "invite", "room_id": room, "user_ids": ["carol"] })).await;
    assert_eq!(code(&invite), "permission_denied");
    let mut carol = app.connect("carol").await;
    assert_eq!(code(&carol.request(json!({ "type": "join_room", "room_id": room })).await), "permission_denied");
    bob.assert_quiet().await;
}

#[tokio::test]
async fn support_rooms_are_for_the_customer_and_the_tenants_agents() {
    let app = spawn_app().await;
    let mut customer = app.connect("customer").await;
    let (mut agent, _) = app.connect_as("agent", &["support_agent"]).await;
    let mut stranger = app.connect("stranger").await;
    let created =
        customer.request(json!({ "type": "create_room", "room_type": "support", "name": "Billing question" })).await;
    assert_eq!(created["room"]["is_private"], true);
    let room = created["room"]["id"].as_str().unwrap().to_string();

    let listed = agent.request(json!({ "type": "list_rooms", "room_type": "support" })).await;
    let rooms = listed["rooms"].as_array().unwrap();
    assert!(rooms.iter().any(|r| r["room"]["id"] == room.as_str() && r["role"].is_null()), "{listed}");
    assert!(stranger.request(json!({ "type": "list_rooms", "room_type": "support" })).await["rooms"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(code(&stranger.request(json!({ "type": "join_room", "room_id": room })).await), "permission_denied");

    let joined = agent.request(json!({ "type": "join_room", "room_id": room })).await;
    let me = joined["participants"].as_array().unwrap().iter().find(|p| p["user_id"] == "agent").unwrap().clone();
    assert_eq!(me["role"], "moderator");
    assert_eq!(customer.expect("user_joined").await["user_id"], "agent");
    assert_eq!(system(&mut customer).await, "Agent joined");
    say(&mut customer, &mut [&mut agent], &room, "My invoice is wrong").await;
    say(&mut agent, &mut [&mut customer], &room, "Let me check").await;
}

#[tokio::test]
async fn only_admins_post_in_broadcast_rooms() {
    let app = spawn_app().await;
    let mut admin = app.connect("admin").await;
    let mut reader = app.connect("reader").await;
    let room = app.room(&mut admin, &mut [&mut reader], json!({ "room_type": "broadcast", "name": "News" })).await;
    say(&mut admin, &mut [&mut reader], &room, "Release 2.0 is out").await;
    let denied = reader.request(json!({ "type": "send_message", "room_id": room, "content": "me too" })).await;
    assert_eq!(code(&denied), "permission_denied");
    assert!(denied["message"].as_str().unwrap().contains("broadcast"));
    admin.assert_quiet().await;
}

#[tokio::test]
async fn private_rooms_take_invitations_from_moderators_and_admins() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let mut carol = app.connect("carol").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({ "is_private": true })).await;

    let denied = bob.request(json!({ "type": "invite", "room_id": room, "user_ids": ["carol"] })).await;
    assert_eq!(code(&denied), "permission_denied");
    let invited = alice.request(json!({ "type": "invite", "room_id": room, "user_ids": ["carol", "bob"] })).await;
    assert_eq!(invited["user_ids"], json!(["carol"]));
    let added = carol.expect("added_to_room").await;
    assert_eq!((added["room"]["id"].as_str(), added["added_by"].as_str()), (Some(room.as_str()), Some("alice")));
    assert_eq!(bob.expect("user_joined").await["user_id"], "carol");
    assert_eq!(carol.expect("user_joined").await["user_id"], "carol");
    assert_eq!(system(&mut bob).await, "Alice added carol");
    assert_eq!(system(&mut carol).await, "Alice added carol");
    say(&mut carol, &mut [&mut alice, &mut bob], &room, "thanks for the invite").await;
}

#[tokio::test]
async fn admins_change_roles_and_settings_and_members_cannot() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = three(&app).await;

    let denied = bob.request(json!({ "type": "set_role", "room_id": room, "user_id": "carol", "role": "admin" })).await;
    assert_eq!(code(&denied), "permission_denied");
    let denied = bob.request(json!({ "type": "update_room", "room_id": room, "name": "Mine" })).await;
    assert_eq!(code(&denied), "permission_denied");

    let changed =
        alice.request(json!({ "type": "set_role", "room_id": room, "user_id": "bob", "role": "moderator" })).await;
    assert_eq!((changed["type"].as_str(), changed["role"].as_str()), (Some("role_changed"), Some("moderator")));
    for other in [&mut bob, &mut carol] {
        assert_eq!(other.expect("role_changed").await["user_id"], "bob");
        assert_eq!(system(other).await, "bob is now moderator (set by Alice)");
    }
    let last_admin =
        alice.request(json!({ "type": "set_role", "room_id": room, "user_id": "alice", "role": "member" })).await;
    assert_eq!(code(&last_admin), "permission_denied");

    let updated =
        alice.request(json!({ "type": "update_room", "room_id": room, "name": "Renamed", "description": "new" })).await;
    assert_eq!(updated["room"]["name"], "Renamed");
    assert_eq!(bob.expect("room_updated").await["room"]["description"], "new");
    assert_eq!(carol.expect("room_updated").await["room"]["name"], "Renamed");
}

#[tokio::test]
async fn moderators_mute_members_but_not_admins() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = three(&app).await;
    alice.request(json!({ "type": "set_role", "room_id": room, "user_id": "bob", "role": "moderator" })).await;
    for other in [&mut bob, &mut carol] {
        other.expect("role_changed").await;
        system(other).await;
    }

    let denied = carol.request(json!({ "type": "mute_user", "room_id": room, "user_id": "bob" })).await;
    assert_eq!(code(&denied), "permission_denied");
    let denied = bob.request(json!({ "type": "mute_user", "room_id": room, "user_id": "alice" })).await;
    assert_eq!(code(&denied), "permission_denied");

    let muted =
        bob.request(json!({ "type": "mute_user", "room_id": room, "user_id": "carol", "duration_seconds": 600 })).await;
    assert_eq!(muted["type"], "user_muted");
    assert!(muted["until"].is_string());
    alice.expect("user_muted").await;
    assert_eq!(carol.expect("user_muted").await["user_id"], "carol");
    let silenced = carol.request(json!({ "type": "send_message", "room_id": room, "content": "hello?" })).await;
    assert_eq!(code(&silenced), "permission_denied");
    assert!(silenced["message"].as_str().unwrap().contains("muted"));

    bob.request(json!({ "type": "unmute_user", "room_id": room, "user_id": "carol" })).await;
    alice.expect("user_unmuted").await;
    carol.expect("user_unmuted").await;
    say(&mut carol, &mut [&mut alice, &mut bob], &room, "I can talk again").await;
}

#[tokio::test]
async fn a_banned_member_is_removed_and_cannot_rejoin_until_unbanned() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = three(&app).await;
    let denied = carol.request(json!({ "type": "ban_user", "room_id": room, "user_id": "bob" })).await;
    assert_eq!(code(&denied), "permission_denied");

    let banned =
        alice.request(json!({ "type": "ban_user", "room_id": room, "user_id": "carol", "reason": "spam" })).await;
    assert_eq!((banned["type"].as_str(), banned["reason"].as_str()), (Some("user_banned"), Some("spam")));
    assert_eq!(bob.expect("user_banned").await["user_id"], "carol");
    assert_eq!(carol.expect("user_banned").await["user_id"], "carol");
    assert_eq!(system(&mut bob).await, "carol was banned by Alice");

    say(&mut alice, &mut [&mut bob], &room, "carol no longer sees this").await;
    carol.assert_quiet().await;
    assert_eq!(code(&carol.request(json!({ "type": "join_room", "room_id": room })).await), "permission_denied");
    let reinvite = alice.request(json!({ "type": "invite", "room_id": room, "user_ids": ["carol"] })).await;
    assert_eq!(code(&reinvite), "permission_denied");

    alice.request(json!({ "type": "unban_user", "room_id": room, "user_id": "carol" })).await;
    bob.expect("user_unbanned").await;
    assert_eq!(carol.request(json!({ "type": "join_room", "room_id": room })).await["type"], "room_joined");
    for member in [&mut alice, &mut bob] {
        assert_eq!(member.expect("user_joined").await["user_id"], "carol");
        assert_eq!(system(member).await, "Carol joined");
    }

    let removed = alice.request(json!({ "type": "remove_participant", "room_id": room, "user_id": "bob" })).await;
    assert_eq!(removed["type"], "user_removed");
    assert_eq!(bob.expect("user_removed").await["user_id"], "bob");
    assert_eq!(carol.expect("user_removed").await["user_id"], "bob");
    assert_eq!(system(&mut carol).await, "bob was removed by Alice");
    bob.assert_quiet().await;
    assert_eq!(code(&bob.request(json!({ "type": "get_history", "room_id": room })).await), "permission_denied");
}

#[tokio::test]
async fn attachments_are_validated_and_image_and_file_messages_carry_them() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let image =
        json!({ "url": "https://cdn.example.com/cat.png", "name": "cat.png", "size": 2048, "mime_type": "image/png" });
    let sent = alice
        .request(json!({ "type": "send_message", "room_id": room, "content": "", "message_type": "image", "attachments": [image] }))
        .await;
    assert_eq!(sent["message"]["attachments"], json!([image]));
    assert_eq!(bob.expect("new_message").await["message"]["message_type"], "image");

    let bad = [
        json!({ "url": "javascript:alert(1)", "name": "x", "size": 1, "mime_type": "image/png" }),
        json!({ "url": "https://x/y", "name": "", "size": 1, "mime_type": "image/png" }),
        json!({ "url": "https://x/y", "name": "y", "size": -5, "mime_type": "image/png" }),
        json!({ "url": "https://x/y", "name": "y", "size": 1, "mime_type": "nonsense" }),
    ];
    for attachment in bad {
        let frame = json!({ "type": "send_message", "room_id": room, "content": "f", "message_type": "file", "attachments": [attachment] });
        assert!(contract::refuses(&frame), "the schemas take {frame}");
        assert_eq!(code(&alice.request_invalid(frame).await), "validation_error");
    }
    let system = json!({ "type": "send_message", "room_id": room, "content": "fake", "message_type": "system" });
    assert_eq!(code(&alice.request(system).await), "permission_denied");
    bob.assert_quiet().await;
}

#[tokio::test]
async fn replies_form_threads_with_counts_on_the_parent() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let other_room = app.room(&mut alice, &mut [], json!({ "name": "Elsewhere" })).await;
    let parent = say(&mut alice, &mut [&mut bob], &room, "Question?").await;
    for answer in ["one", "two", "three"] {
        let reply = bob
            .request(json!({ "type": "send_message", "room_id": room, "content": answer, "reply_to": parent["id"] }))
            .await;
        assert_eq!(reply["message"]["reply_to"], parent["id"]);
        assert_eq!(alice.expect("new_message").await["message"]["reply_to"], parent["id"]);
    }
    let thread = alice.request(json!({ "type": "get_thread", "message_id": parent["id"], "limit": 2 })).await;
    assert_eq!(thread["parent"]["reply_count"], 3);
    let replies: Vec<&str> =
        thread["replies"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(replies, ["one", "two"]);
    assert_eq!(thread["has_more"], true);
    let rest = alice
        .request(json!({ "type": "get_thread", "message_id": parent["id"], "after": thread["next_cursor"] }))
        .await;
    assert_eq!(rest["replies"][0]["content"], "three");
    assert_eq!(rest["has_more"], false);
    let history = alice.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!(history["messages"][0]["reply_count"], 3);

    let cross = alice
        .request(json!({ "type": "send_message", "room_id": other_room, "content": "x", "reply_to": parent["id"] }))
        .await;
    assert_eq!(code(&cross), "not_found");
}

#[tokio::test]
async fn edits_keep_their_history_and_only_the_author_edits() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let message = say(&mut alice, &mut [&mut bob], &room, "frist").await;
    let edited =
        alice.request(json!({ "type": "edit_message", "message_id": message["id"], "content": "first" })).await;
    assert_eq!(edited["message"]["content"], "first");
    assert!(edited["message"]["edited_at"].is_string());
    assert_eq!(bob.expect("message_edited").await["message"]["content"], "first");
    alice.request(json!({ "type": "edit_message", "message_id": message["id"], "content": "first!" })).await;
    bob.expect("message_edited").await;

    let denied = bob.request(json!({ "type": "edit_message", "message_id": message["id"], "content": "hacked" })).await;
    assert_eq!(code(&denied), "permission_denied");
    let history = bob.request(json!({ "type": "get_edit_history", "message_id": message["id"] })).await;
    assert_eq!(history["current"]["content"], "first!");
    let versions: Vec<(&str, &str)> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["content"].as_str().unwrap(), v["edited_by"].as_str().unwrap()))
        .collect();
    assert_eq!(versions, [("frist", "alice"), ("first", "alice")]);
    assert!(history["versions"][0]["edited_at"].is_string());
}

#[tokio::test]
async fn deleted_messages_are_hidden_from_members_and_kept_for_admins() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = three(&app).await;
    let by_bob = say(&mut bob, &mut [&mut alice, &mut carol], &room, "bob's secret").await;
    let by_carol = say(&mut carol, &mut [&mut alice, &mut bob], &room, "carol's rant").await;

    let denied = bob.request(json!({ "type": "delete_message", "message_id": by_carol["id"] })).await;
    assert_eq!(code(&denied), "permission_denied");
    let deleted = bob.request(json!({ "type": "delete_message", "message_id": by_bob["id"] })).await;
    assert_eq!((deleted["type"].as_str(), deleted["deleted_by"].as_str()), (Some("message_deleted"), Some("bob")));
    alice.expect("message_deleted").await;
    carol.expect("message_deleted").await;
    // The room admin deletes someone else's message.
    alice.request(json!({ "type": "delete_message", "message_id": by_carol["id"] })).await;
    bob.expect("message_deleted").await;
    carol.expect("message_deleted").await;

    let seen_by_member = carol.request(json!({ "type": "get_history", "room_id": room })).await;
    for message in seen_by_member["messages"].as_array().unwrap() {
        assert!(message["deleted_at"].is_string());
        assert_eq!(message["content"], "", "{message}");
    }
    let seen_by_admin = alice.request(json!({ "type": "get_history", "room_id": room })).await;
    let contents: Vec<&str> =
        seen_by_admin["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["bob's secret", "carol's rant"]);
    let (mut auditor, _) = app.connect_as("auditor", &["admin"]).await;
    auditor.request(json!({ "type": "join_room", "room_id": room })).await;
    for member in [&mut alice, &mut bob, &mut carol] {
        member.expect("user_joined").await;
        system(member).await;
    }
    let seen_by_tenant_admin = auditor.request(json!({ "type": "get_history", "room_id": room, "limit": 2 })).await;
    assert_eq!(seen_by_tenant_admin["messages"][0]["content"], "carol's rant");
    let edit = bob.request(json!({ "type": "edit_message", "message_id": by_bob["id"], "content": "revived" })).await;
    assert_eq!(code(&edit), "permission_denied");
    let stored: String = app
        .db()
        .await
        .query_one("SELECT content FROM chat_messages WHERE content = 'bob''s secret'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, "bob's secret");
}

#[tokio::test]
async fn reactions_count_per_emoji_with_who_reacted() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = three(&app).await;
    let message = say(&mut alice, &mut [&mut bob, &mut carol], &room, "ship it?").await;
    let id = message["id"].clone();
    bob.request(json!({ "type": "add_reaction", "message_id": id, "emoji": "👍" })).await;
    alice.expect("reaction_added").await;
    carol.expect("reaction_added").await;
    let added = carol.request(json!({ "type": "add_reaction", "message_id": id, "emoji": "👍" })).await;
    assert_eq!(added["reactions"], json!([{ "emoji": "👍", "count": 2, "users": ["bob", "carol"] }]));
    alice.expect("reaction_added").await;
    bob.expect("reaction_added").await;
    carol.request(json!({ "type": "add_reaction", "message_id": id, "emoji": "🎉" })).await;
    alice.expect("reaction_added").await;
    let removed = bob.expect("reaction_added").await;
    assert_eq!(removed["reactions"].as_array().unwrap().len(), 2);

    let removed = bob.request(json!({ "type": "remove_reaction", "message_id": id, "emoji": "👍" })).await;
    assert_eq!(removed["type"], "reaction_removed");
    assert_eq!(removed["reactions"][0], json!({ "emoji": "👍", "count": 1, "users": ["carol"] }));
    assert_eq!(alice.expect("reaction_removed").await["user_id"], "bob");
    carol.expect("reaction_removed").await;

    assert_eq!(
        code(&bob.request(json!({ "type": "add_reaction", "message_id": id, "emoji": "lol" })).await),
        "validation_error"
    );
    let history = alice.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!(history["messages"][0]["reactions"][1]["emoji"], "🎉");
}

#[tokio::test]
async fn mentions_notify_on_the_user_channel_and_count_for_offline_users() {
    let app = spawn_app().await;
    let (mut alice, mut bob, carol, room) = three(&app).await;
    drop(carol);
    let presence = alice.expect("presence").await;
    assert_eq!(presence["status"], "offline");
    bob.expect("presence").await;
    let mut channel = app.subscribe(&["user:carol".to_string(), "user:outsider".to_string()]).await;

    let sent = alice
        .request(json!({ "type": "send_message", "room_id": room, "content": "@carol @outsider look", "mentions": ["carol", "outsider"] }))
        .await;
    // Everyone gets the same frame: no per-recipient counts in it.
    assert!(bob.expect("new_message").await.get("unread").is_none());
    // Bob was not mentioned.
    let bobs = bob.request(json!({ "type": "get_unread" })).await;
    assert_eq!(
        (bobs["rooms"][0]["unread_count"].as_i64(), bobs["rooms"][0]["mention_count"].as_i64()),
        (Some(1), Some(0))
    );
    let (name, envelope) = channel.next().await;
    assert_eq!(name, "user:carol");
    assert_eq!(envelope["tenant_id"], app.tenant.as_str());
    assert_eq!(envelope["event"]["type"], "mention");
    assert_eq!(envelope["event"]["message"]["id"], sent["message"]["id"]);

    let (_carol, hello) = app.connect_as("carol", &[]).await;
    let unread = hello["unread"].as_array().unwrap();
    assert_eq!(unread.len(), 1);
    assert_eq!((unread[0]["unread_count"].as_i64(), unread[0]["mention_count"].as_i64()), (Some(1), Some(1)));
    assert_eq!(unread[0]["room_id"], room.as_str());
    assert_eq!(unread[0]["capped"], false);
    // Deleting the mention takes it out of carol's count.
    alice.drain().await;
    alice.request(json!({ "type": "delete_message", "message_id": sent["message"]["id"] })).await;
    let (_carol, hello) = app.connect_as("carol", &[]).await;
    assert_eq!(hello["unread"], json!([]));
}

#[tokio::test]
async fn receipts_tell_the_sender_who_got_and_who_read() {
    let app = spawn_app().await;
    let (mut alice, mut bob, mut carol, room) = three(&app).await;
    let message = say(&mut alice, &mut [&mut bob, &mut carol], &room, "did you get this?").await;
    let receipts = alice.request(json!({ "type": "get_receipts", "message_id": message["id"] })).await;
    let users = |list: &Value| -> Vec<String> {
        list.as_array().unwrap().iter().map(|r| r["user_id"].as_str().unwrap().into()).collect()
    };
    let mut delivered = users(&receipts["delivered"]);
    delivered.sort();
    assert_eq!(delivered, ["bob", "carol"]);
    assert!(users(&receipts["read"]).is_empty());

    bob.request(json!({ "type": "mark_read", "room_id": room })).await;
    alice.expect("messages_read").await;
    carol.expect("messages_read").await;
    let receipts = alice.request(json!({ "type": "get_receipts", "message_id": message["id"] })).await;
    assert_eq!(users(&receipts["read"]), ["bob"]);
    assert_eq!(
        code(&carol.request(json!({ "type": "get_receipts", "message_id": message["id"] })).await),
        "permission_denied"
    );
}

/// Bob's unread and mention counts in the room, as the server counts them.
async fn unread_of(bob: &mut Client, room: &str) -> (i64, i64) {
    let summary = bob.request(json!({ "type": "get_unread" })).await;
    let rooms = summary["rooms"].as_array().unwrap();
    rooms
        .iter()
        .find(|r| r["room_id"] == room)
        .map_or((0, 0), |r| (r["unread_count"].as_i64().unwrap(), r["mention_count"].as_i64().unwrap()))
}

#[tokio::test]
async fn unread_counts_follow_every_change() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let mut last = Value::Null;
    for text in ["a", "b", "c"] {
        alice.request(json!({ "type": "send_message", "room_id": room, "content": text })).await;
        last = bob.expect("new_message").await;
        assert!(last.get("unread").is_none(), "{last}");
    }
    assert_eq!(unread_of(&mut bob, &room).await, (3, 0));
    let listed = bob.request(json!({ "type": "list_rooms" })).await;
    assert_eq!(
        (listed["rooms"][0]["unread_count"].as_i64(), listed["rooms"][0]["capped"].as_bool()),
        (Some(3), Some(false))
    );
    assert_eq!(listed["rooms"][0]["participant_count"], 2);
    // The counts say how far they reach: the room's newest message when counted.
    let head = (&listed["rooms"][0]["last_seq"], &listed["rooms"][0]["last_room_seq"]);
    assert_eq!(head, (&last["message"]["seq"], &last["message"]["room_seq"]));
    // Bob's own messages, edits and system messages (a join) do not count.
    bob.request(json!({ "type": "send_message", "room_id": room, "content": "mine" })).await;
    alice.expect("new_message").await;
    alice.request(json!({ "type": "edit_message", "message_id": last["message"]["id"], "content": "c!" })).await;
    bob.expect("message_edited").await;
    let mut carol = app.connect("carol").await;
    alice.request(json!({ "type": "invite", "room_id": room, "user_ids": ["carol"] })).await;
    carol.expect("added_to_room").await;
    bob.drain().await;
    assert_eq!(unread_of(&mut bob, &room).await, (3, 0));

    let first_two = bob.request(json!({ "type": "get_history", "room_id": room, "limit": 10 })).await;
    let second = first_two["messages"][1]["id"].clone();
    let read = bob.request(json!({ "type": "mark_read", "room_id": room, "message_ids": [second] })).await;
    assert_eq!((read["unread_count"].as_i64(), read["capped"].as_bool()), (Some(1), Some(false)));
    alice.expect("messages_read").await;
    // Reading what is already read moves nothing and tells nobody.
    let again = bob.request(json!({ "type": "mark_read", "room_id": room, "message_ids": [second] })).await;
    assert_eq!(again["unread_count"], 1);
    alice.assert_quiet().await;
    // Deleting the one unread message takes it out of the count; the frame is the same for all.
    alice.request(json!({ "type": "delete_message", "message_id": last["message"]["id"] })).await;
    assert!(bob.expect("message_deleted").await.get("unread").is_none());
    assert_eq!(unread_of(&mut bob, &room).await, (0, 0));
    alice.request(json!({ "type": "delete_message", "message_id": second })).await;
    bob.expect("message_deleted").await;
    assert!(bob.request(json!({ "type": "get_unread" })).await["rooms"].as_array().unwrap().is_empty());
}

/// A member far behind gets a bounded count that says it is capped.
#[tokio::test]
async fn unread_counts_stop_at_the_cap_and_say_so() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    alice.request(json!({ "type": "send_message", "room_id": room, "content": "first" })).await;
    bob.expect("new_message").await;
    // 1 200 more, written straight to the table: the count does not care how they came.
    app.db()
        .await
        .batch_execute(&format!(
            "INSERT INTO chat_messages (id, tenant_id, room_id, sender_id, message_type, content)
             SELECT gen_random_uuid(), '{tenant}', '{room}', 'alice', 'text', 'm' || i FROM generate_series(1, 1200) i",
            tenant = app.tenant
        ))
        .await
        .unwrap();
    let summary = bob.request(json!({ "type": "get_unread" })).await;
    let counted = &summary["rooms"][0];
    assert_eq!((counted["unread_count"].as_i64(), counted["capped"].as_bool()), (Some(1000), Some(true)));
    let read = bob.request(json!({ "type": "mark_read", "room_id": room })).await;
    assert_eq!((read["unread_count"].as_i64(), read["capped"].as_bool()), (Some(0), Some(false)));
}

#[tokio::test]
async fn presence_is_told_to_shared_rooms_and_last_seen_is_kept() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let state = alice.request(json!({ "type": "get_presence", "user_ids": ["bob", "nobody"] })).await;
    assert_eq!(state["users"][0]["status"], "online");
    assert_eq!(state["users"][1], json!({ "user_id": "nobody", "status": "offline", "last_seen": null }));
    drop(bob);
    let offline = alice.expect("presence").await;
    let state = alice.request(json!({ "type": "get_presence", "user_ids": ["bob"] })).await;
    assert_eq!(state["users"][0]["status"], "offline");
    assert_eq!(state["users"][0]["last_seen"], offline["last_seen"]);
    let stored: i64 =
        app.scalar("SELECT count(*) FROM chat_users WHERE user_id = 'bob' AND last_seen_at IS NOT NULL").await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn history_comes_from_the_cache_without_stale_edits_or_deleted_content() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let first = say(&mut alice, &mut [&mut bob], &room, "original").await;
    say(&mut alice, &mut [&mut bob], &room, "second").await;
    let page = bob.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    let mut redis = app.redis().await;
    let key = format!("chat:recent:{{{room}}}");
    let cached: i64 = redis.zcard(&key).await.unwrap();
    assert_eq!(cached, 2);
    let ttl: i64 = redis.ttl(&key).await.unwrap();
    assert!((1..=3600).contains(&ttl));
    // New messages join the cached page.
    say(&mut alice, &mut [&mut bob], &room, "third").await;
    assert_eq!(redis.zcard::<_, i64>(&key).await.unwrap(), 3);

    alice.request(json!({ "type": "edit_message", "message_id": first["id"], "content": "edited" })).await;
    bob.expect("message_edited").await;
    let page = bob.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!(page["messages"][0]["content"], "edited");
    alice.request(json!({ "type": "delete_message", "message_id": first["id"] })).await;
    bob.expect("message_deleted").await;
    let page = bob.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!(page["messages"][0]["content"], "");
    assert!(page["messages"][0]["deleted_at"].is_string());
    let cached_page = bob.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!(cached_page["messages"], page["messages"]);
}

#[tokio::test]
async fn every_event_is_published_on_the_redis_channels() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let mut sub = app.subscribe(&[format!("room:{room}"), format!("typing:{room}"), "user:bob".into()]).await;

    let message = say(&mut alice, &mut [&mut bob], &room, "published").await;
    let (channel, envelope) = sub.next().await;
    assert_eq!(channel, format!("room:{room}"));
    assert_eq!(envelope["channel"], channel.as_str());
    assert_eq!(envelope["tenant_id"], app.tenant.as_str());
    assert!(envelope["published_at"].is_string());
    assert_eq!(envelope["event"]["type"], "new_message");
    assert_eq!(envelope["event"]["message"]["id"], message["id"]);

    bob.send(json!({ "type": "typing_start", "room_id": room })).await;
    alice.expect("typing_start").await;
    let (channel, envelope) = sub.next().await;
    assert_eq!(
        (channel.as_str(), envelope["event"]["type"].as_str()),
        (format!("typing:{room}").as_str(), Some("typing_start"))
    );

    drop(bob);
    alice.expect("typing_stop").await;
    // Two channels: in a Redis Cluster their messages cross the cluster bus from different
    // nodes, so either may arrive first.
    let mut heard = vec![sub.next().await, sub.next().await];
    heard.sort_by(|a, b| a.0.cmp(&b.0));
    let [(typing, stop), (user, presence)] = <[_; 2]>::try_from(heard).unwrap();
    assert_eq!(
        (typing.as_str(), stop["event"]["type"].as_str()),
        (format!("typing:{room}").as_str(), Some("typing_stop"))
    );
    assert_eq!((user.as_str(), presence["event"]["status"].as_str()), ("user:bob", Some("offline")));
}

#[tokio::test]
async fn tenant_admins_announce_to_the_whole_tenant_on_chat_global() {
    let app = spawn_app().await;
    let (mut admin, _) = app.connect_as("boss", &["admin"]).await;
    let mut alice = app.connect("alice").await;
    let other_tenant = spawn_app().await;
    let mut outsider = other_tenant.connect("alice").await;
    let mut global = app.subscribe(&["chat:global".to_string()]).await;

    assert_eq!(
        code(&alice.request(json!({ "type": "announce", "content": "I'm the boss" })).await),
        "permission_denied"
    );
    let sent = admin.request(json!({ "type": "announce", "content": "Maintenance at 22:00" })).await;
    assert_eq!(sent["type"], "announcement");
    let got = alice.expect("announcement").await;
    assert_eq!((got["content"].as_str(), got["from"].as_str()), (Some("Maintenance at 22:00"), Some("boss")));
    let (_, envelope) = global.next().await;
    assert_eq!(envelope["tenant_id"], app.tenant.as_str());
    assert_eq!(envelope["event"]["content"], "Maintenance at 22:00");
    outsider.assert_quiet().await;
}

#[tokio::test]
async fn participants_carry_the_names_their_tokens_gave_them() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let _bob = app.connect("bob").await;
    let created = alice
        .request(
            json!({ "type": "create_room", "name": "Crew", "room_type": "group", "participants": ["bob", "dave"] }),
        )
        .await;
    let names = |frame: &Value| -> Vec<(String, Value)> {
        let mut names: Vec<_> = frame["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["user_id"].as_str().unwrap().to_string(), p["display_name"].clone()))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names
    };
    // Bob was seen before, so his name is known; dave has never connected.
    let expected =
        |dave: Value| vec![("alice".into(), json!("Alice")), ("bob".into(), json!("Bob")), ("dave".into(), dave)];
    assert_eq!(names(&created), expected(Value::Null));
    let _dave = app.connect("dave").await;
    assert_eq!(alice.expect("presence").await["user_id"], "dave");
    let room = created["room"]["id"].clone();
    let joined = alice.request(json!({ "type": "join_room", "room_id": room })).await;
    assert_eq!(names(&joined), expected(json!("Dave")));
}

#[tokio::test]
async fn presence_is_not_pushed_through_rooms_over_the_limit() {
    let mut config = test_config().await;
    config.presence_room_limit = 2;
    let app = spawn_app_with(config).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let mut carol = app.connect("carol").await;
    // Alice shares a room of three with bob and carol, and a room of two with carol only.
    app.room(&mut alice, &mut [&mut bob, &mut carol], json!({})).await;
    app.room(&mut alice, &mut [&mut carol], json!({})).await;
    drop(alice);
    assert_eq!(carol.expect("presence").await["user_id"], "alice");
    bob.assert_quiet().await;
    // Bob still learns it by asking.
    let state = bob.request(json!({ "type": "get_presence", "user_ids": ["alice"] })).await;
    assert_eq!(state["users"][0]["status"], "offline");
}

/// A room bigger than FANOUT_MEMBER_LIST_MAX is fanned out from the tenant's live connections
/// when they are fewer than its members, else from its member list: either way exactly its
/// members online get the message, and their delivery positions move.
#[tokio::test]
async fn big_rooms_reach_exactly_their_members_online() {
    let mut config = test_config().await;
    config.fanout_member_list_max = 1;
    let app = spawn_app_with(config).await;
    let (mut alice, mut bob, mut carol, _) = three(&app).await;
    let mut dave = app.connect("dave").await;
    // Six members, four live connections in the tenant: from the connections.
    let offline = json!({ "participants": ["bob", "carol", "erin", "frank", "grace"] });
    let crowded = app.room(&mut alice, &mut [], offline).await;
    bob.expect("room_created").await;
    carol.expect("room_created").await;
    // Two members, four live connections: from the member list.
    let pair = app.room(&mut alice, &mut [&mut dave], json!({})).await;
    for (room, members) in [(&crowded, vec![&mut bob, &mut carol]), (&pair, vec![&mut dave])] {
        let mut members = members;
        let message = say(&mut alice, &mut members, room, "hello").await;
        let receipts = alice.request(json!({ "type": "get_receipts", "message_id": message["id"] })).await;
        let mut delivered: Vec<&str> =
            receipts["delivered"].as_array().unwrap().iter().map(|r| r["user_id"].as_str().unwrap()).collect();
        delivered.sort();
        let expected: Vec<&str> = members.iter().map(|c| c.user.as_str()).collect();
        assert_eq!(delivered, expected, "{receipts}");
    }
    for client in [&mut bob, &mut carol, &mut dave] {
        client.assert_quiet().await;
    }
}

/// A create_room retried with the same client_room_id (its reply lost) answers with the room the
/// first attempt created; the members hear of it once.
#[tokio::test]
async fn a_retried_create_room_answers_with_the_room_it_created() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let frame = json!({ "type": "create_room", "name": "Once", "room_type": "group", "participants": ["bob"],
                        "client_room_id": "create-1" });
    let first = alice.request(frame.clone()).await;
    assert_eq!(first["type"], "room_created", "{first}");
    bob.expect("room_created").await;
    let again = alice.request(frame).await;
    assert_eq!(again["room"]["id"], first["room"]["id"], "{again}");
    let other = alice
        .request(json!({ "type": "create_room", "name": "Twice", "room_type": "group", "client_room_id": "create-2" }))
        .await;
    assert_ne!(other["room"]["id"], first["room"]["id"]);
    bob.assert_quiet().await;
    assert_eq!(app.scalar("SELECT count(*) FROM chat_rooms").await, 2);
}
