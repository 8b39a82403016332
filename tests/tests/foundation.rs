//! The end-to-end path: gateway → handlers → Postgres + Redis → management-API fan-out.

use integration_tests::{spawn_app, spawn_app_with, test_config, TestApp};
use redis::AsyncCommands;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Error as WsError;

fn refused_status(result: Result<integration_tests::Ws, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("connection was accepted"),
    }
}

#[tokio::test]
async fn the_connection_frame_comes_first_and_names_the_caller() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    assert_eq!(alice.connection_id.len(), 16);
    alice.assert_quiet().await;

    let mut ws = app.open(&app.token("bob")).await.unwrap();
    let first = futures::StreamExt::next(&mut ws).await.unwrap().unwrap();
    let frame: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(frame["type"], "connection");
    assert_eq!(frame["status"], "connected");
    assert_eq!(frame["user_id"], "bob");
    assert_eq!(frame["tenant_id"], app.tenant.as_str());
    assert_eq!(frame["display_name"], "Bob");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let expired = shared::auth::mint(&app.secret, &app.tenant, "mallory", None, -120);
    let forged = shared::auth::mint("not-the-secret", &app.tenant, "mallory", None, 3600);
    let mut redis = app.redis().await;
    let before: i64 = redis.scard("chat:connections").await.unwrap();
    for token in ["", "garbage", expired.as_str(), forged.as_str()] {
        assert_eq!(refused_status(app.open(token).await), 401, "token {token:?}");
    }
    let no_query =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/ws/chat", app.gateway.addr)).await.map(|(ws, _)| ws);
    assert_eq!(refused_status(no_query), 401);
    assert_eq!(app.gateway.gateway.open_connections(), 0);
    let conns: i64 = redis.scard(format!("chat:user:{{{}/mallory}}:conns", app.tenant)).await.unwrap();
    assert_eq!(conns, 0);
    let keys: Vec<String> = redis.keys("chat:conn:*").await.unwrap();
    for key in keys {
        let tenant: Option<String> = redis.hget(&key, "tenant_id").await.unwrap();
        assert_ne!(tenant.as_deref(), Some(app.tenant.as_str()), "{key} was recorded");
    }
    let after: i64 = redis.scard("chat:connections").await.unwrap();
    assert!(after <= before + 64, "other tests may add connections, not this one");
}

#[tokio::test]
async fn two_members_see_messages_typing_and_reads_and_an_outsider_sees_nothing() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let mut carol = app.connect("carol").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({ "name": "Project" })).await;

    let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": "Hello, Bob!" })).await;
    assert_eq!(ack["type"], "message_sent");
    assert_eq!(ack["duplicate"], false);
    let message = &ack["message"];
    assert_eq!(message["content"], "Hello, Bob!");
    assert_eq!(message["sender_id"], "alice");
    assert!(message["id"].is_string() && message["created_at"].is_string());
    let delivered = bob.expect("new_message").await;
    assert_eq!(delivered["message"], *message);

    // Acknowledged means stored.
    let id: uuid::Uuid = message["id"].as_str().unwrap().parse().unwrap();
    let row =
        app.db().await.query_one("SELECT content, tenant_id FROM chat_messages WHERE id = $1", &[&id]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "Hello, Bob!");
    assert_eq!(row.get::<_, String>(1), app.tenant);

    bob.send(json!({ "type": "typing_start", "room_id": room })).await;
    let typing = alice.expect("typing_start").await;
    assert_eq!((typing["user_id"].as_str(), typing["display_name"].as_str()), (Some("bob"), Some("Bob")));
    bob.send(json!({ "type": "typing_stop", "room_id": room })).await;
    assert_eq!(alice.expect("typing_stop").await["user_id"], "bob");

    let read = bob.request(json!({ "type": "mark_read", "room_id": room, "message_ids": [message["id"]] })).await;
    assert_eq!(read["type"], "read_marked");
    assert_eq!(read["unread_count"], 0);
    let seen = alice.expect("messages_read").await;
    assert_eq!(seen["user_id"], "bob");
    assert_eq!(seen["message_ids"], json!([message["id"]]));

    let reply = bob.request(json!({ "type": "send_message", "room_id": room, "content": "Hi Alice" })).await;
    assert_eq!(reply["type"], "message_sent");
    assert_eq!(alice.expect("new_message").await["message"]["content"], "Hi Alice");

    carol.assert_quiet().await;
    alice.assert_quiet().await;
    bob.assert_quiet().await;
    // The outsider cannot read or post either.
    let denied = carol.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!((denied["type"].as_str(), denied["code"].as_str()), (Some("error"), Some("permission_denied")));
    let denied = carol.request(json!({ "type": "send_message", "room_id": room, "content": "let me in" })).await;
    assert_eq!(denied["code"], "permission_denied");
    alice.assert_quiet().await;
}

#[tokio::test]
async fn the_product_spec_frames_work_verbatim() {
    let app = spawn_app().await;
    let mut creator = app.connect("creator").await;
    let mut one = app.connect("user-id-1").await;
    let mut mentioned = app.connect("user-id").await;

    creator
        .send(json!({
            "type": "create_room",
            "name": "Project Discussion",
            "room_type": "group",
            "participants": ["user-id-1", "user-id-2"],
            "description": "Discussion about the project",
            "is_private": false
        }))
        .await;
    let created = creator.expect("room_created").await;
    assert_eq!(created["room"]["name"], "Project Discussion");
    assert_eq!(created["room"]["description"], "Discussion about the project");
    let roles: Vec<(String, String)> = created["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["user_id"].as_str().unwrap().into(), p["role"].as_str().unwrap().into()))
        .collect();
    assert!(roles.contains(&("creator".into(), "admin".into())));
    assert!(roles.contains(&("user-id-2".into(), "member".into())));
    let room = created["room"]["id"].as_str().unwrap().to_string();
    one.expect("room_created").await;

    mentioned.send(json!({ "type": "join_room", "room_id": room })).await;
    let joined = mentioned.expect("room_joined").await;
    assert_eq!(joined["room"]["id"], room.as_str());
    for member in [&mut creator, &mut one] {
        assert_eq!(member.expect("user_joined").await["user_id"], "user-id");
        let system = member.expect("new_message").await;
        assert_eq!(system["message"]["message_type"], "system");
    }

    creator
        .send(json!({
            "type": "send_message",
            "room_id": room,
            "content": "Hello, world!",
            "message_type": "text",
            "attachments": [],
            "mentions": ["user-id"]
        }))
        .await;
    let sent = creator.expect("message_sent").await;
    assert_eq!(sent["message"]["mentions"], json!(["user-id"]));
    let message_id = sent["message"]["id"].clone();
    one.expect("new_message").await;
    mentioned.expect("new_message").await;

    one.send(json!({ "type": "typing_start", "room_id": room })).await;
    creator.expect("typing_start").await;
    mentioned.expect("typing_start").await;

    mentioned.send(json!({ "type": "mark_read", "room_id": room, "message_ids": [message_id] })).await;
    assert_eq!(mentioned.expect("read_marked").await["message_ids"], json!([message_id]));
    creator.expect("messages_read").await;
    one.expect("messages_read").await;
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_lose_nothing() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let stored = alice.request(json!({ "type": "send_message", "room_id": room, "content": "keep me" })).await;
    bob.expect("new_message").await;

    let cases = [
        ("{not json".to_string(), "invalid_json"),
        ("[1,2,3]".to_string(), "invalid_frame"),
        (r#"{"room_id":"x"}"#.to_string(), "invalid_frame"),
        (r#"{"type":"self_destruct"}"#.to_string(), "unknown_type"),
        (r#"{"type":"join_room","room_id":"not-a-uuid"}"#.to_string(), "invalid_frame"),
        (format!(r#"{{"type":"send_message","room_id":"{room}"}}"#), "invalid_frame"),
        (format!(r#"{{"type":"send_message","room_id":"{room}","content":"   "}}"#), "validation_error"),
        (
            format!(r#"{{"type":"send_message","room_id":"{room}","content":"x","message_type":"video"}}"#),
            "invalid_frame",
        ),
        (r#"{"type":"join_room","room_id":"6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"}"#.to_string(), "not_found"),
        (r#"{"type":"create_room","room_type":"group"}"#.to_string(), "validation_error"),
        (r#"{"type":"create_room","room_type":"direct","participants":[]}"#.to_string(), "validation_error"),
    ];
    for (frame, code) in &cases {
        alice.send_text(frame.clone()).await;
        let error = alice.expect("error").await;
        assert_eq!(error["code"], *code, "frame {frame}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // An error reply carries the request_id when the frame had one.
    let error = alice.request_invalid(json!({ "type": "self_destruct" })).await;
    assert_eq!(error["code"], "unknown_type");

    bob.assert_quiet().await;
    let history = alice.request(json!({ "type": "get_history", "room_id": room })).await;
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], stored["message"]["id"]);
}

#[tokio::test]
async fn history_pages_by_cursor_at_most_100_at_a_time() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    for i in 0..130 {
        let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": format!("m{i}") })).await;
        assert_eq!(ack["type"], "message_sent");
    }
    let contents = |page: &serde_json::Value| -> Vec<String> {
        page["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_string()).collect()
    };

    let newest = alice.request(json!({ "type": "get_history", "room_id": room, "limit": 50 })).await;
    assert_eq!(contents(&newest), (80..130).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(newest["has_more"], true);
    let cursor = newest["next_cursor"].clone();
    assert!(cursor.is_string());

    // Past the contract's 100, the server clamps.
    let older =
        alice.request_invalid(json!({ "type": "get_history", "room_id": room, "before": cursor, "limit": 500 })).await;
    assert_eq!(contents(&older), (0..80).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(older["has_more"], false);
    assert!(older["next_cursor"].is_null());

    let capped = alice.request_invalid(json!({ "type": "get_history", "room_id": room, "limit": 1000 })).await;
    assert_eq!(capped["messages"].as_array().unwrap().len(), 100);

    // Forward from a known message: the catch-up a reconnecting client does.
    let seq = newest["messages"][0]["seq"].clone();
    let after =
        alice.request(json!({ "type": "get_history", "room_id": room, "after": seq.to_string(), "limit": 20 })).await;
    assert_eq!(contents(&after), (81..101).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(after["has_more"], true);
}

#[tokio::test]
async fn join_leave_and_private_rooms() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let public = app.room(&mut alice, &mut [], json!({ "name": "Lobby" })).await;
    let private = app.room(&mut alice, &mut [], json!({ "name": "Secret", "is_private": true })).await;

    let joined = bob.request(json!({ "type": "join_room", "room_id": public })).await;
    assert_eq!(joined["type"], "room_joined");
    assert_eq!(joined["participants"].as_array().unwrap().len(), 2);
    assert_eq!(alice.expect("user_joined").await["user_id"], "bob");
    assert_eq!(alice.expect("new_message").await["message"]["content"], "Bob joined");
    // Joining again is harmless and announces nothing.
    assert_eq!(bob.request(json!({ "type": "join_room", "room_id": public })).await["type"], "room_joined");

    let denied = bob.request(json!({ "type": "join_room", "room_id": private })).await;
    assert_eq!(denied["code"], "permission_denied");

    let left = bob.request(json!({ "type": "leave_room", "room_id": public })).await;
    assert_eq!(left["type"], "room_left");
    assert_eq!(alice.expect("user_left").await["user_id"], "bob");
    assert_eq!(alice.expect("new_message").await["message"]["content"], "Bob left");
    let again = bob.request(json!({ "type": "leave_room", "room_id": public })).await;
    assert_eq!(again["code"], "permission_denied");

    alice.request(json!({ "type": "send_message", "room_id": public, "content": "after bob left" })).await;
    bob.assert_quiet().await;
    alice.assert_quiet().await;
}

#[tokio::test]
async fn a_retried_send_with_the_same_client_id_is_stored_and_delivered_once() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let frame = json!({ "type": "send_message", "room_id": room, "content": "once", "client_msg_id": "c-1" });
    let first = alice.request(frame.clone()).await;
    let second = alice.request(frame).await;
    assert_eq!(first["message"]["id"], second["message"]["id"]);
    assert_eq!((first["duplicate"].as_bool(), second["duplicate"].as_bool()), (Some(false), Some(true)));
    bob.expect("new_message").await;
    bob.assert_quiet().await;
    let count = app.scalar("SELECT count(*) FROM chat_messages").await;
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_direct_room_is_created_once_per_pair() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let first = app.room(&mut alice, &mut [&mut bob], json!({ "room_type": "direct" })).await;
    let again = bob.request(json!({ "type": "create_room", "room_type": "direct", "participants": ["alice"] })).await;
    assert_eq!(again["room"]["id"], first.as_str());
    assert_eq!(again["room"]["is_private"], true);
    alice.assert_quiet().await;
}

#[tokio::test]
async fn presence_goes_online_and_offline_and_a_dropped_connection_is_removed() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    bob.send(json!({ "type": "typing_start", "room_id": room })).await;
    alice.expect("typing_start").await;

    // Bob's TCP connection vanishes without a close frame.
    let bob_conn = bob.connection_id.clone();
    drop(bob);
    let stop = alice.expect("typing_stop").await;
    assert_eq!(stop["user_id"], "bob");
    let offline = alice.expect("presence").await;
    assert_eq!((offline["user_id"].as_str(), offline["status"].as_str()), (Some("bob"), Some("offline")));
    let mut redis = app.redis().await;
    let exists: bool = redis.exists(format!("chat:conn:{{{bob_conn}}}")).await.unwrap();
    assert!(!exists);

    let mut bob = app.connect("bob").await;
    let online = alice.expect("presence").await;
    assert_eq!((online["user_id"].as_str(), online["status"].as_str()), (Some("bob"), Some("online")));
    // A second connection of an online user changes nothing for the others.
    let _bob_phone = app.connect("bob").await;
    alice.request(json!({ "type": "send_message", "room_id": room, "content": "both devices" })).await;
    bob.expect("new_message").await;
    alice.assert_quiet().await;
}

#[tokio::test]
async fn a_connection_that_answers_gone_is_pruned_during_fan_out() {
    // Fanned out from the member list, which reads the users' sets the ghosts are in.
    let mut config = test_config().await;
    config.fanout_member_list_max = 500;
    let app = spawn_app_with(config).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;

    // A registry entry whose socket no longer exists at the gateway (its $disconnect was lost),
    // old enough not to be a connection still being accepted.
    let ghost = "GhostConnection=";
    let mut redis = app.redis().await;
    let conn_key = format!("chat:conn:{{{ghost}}}");
    let user_key = format!("chat:user:{{{}/bob}}:conns", app.tenant);
    let long_ago = (chrono::Utc::now() - chrono::Duration::minutes(5)).timestamp_millis().to_string();
    let _: () = redis
        .hset_multiple(
            &conn_key,
            &[("tenant_id", app.tenant.as_str()), ("user_id", "bob"), ("name", "Bob"), ("connected_at", &long_ago)],
        )
        .await
        .unwrap();
    let _: () = redis.sadd(&user_key, ghost).await.unwrap();
    // And an id whose registration is already gone (a disconnect cut short between its steps):
    // carol's only "connection", which kept her online for everyone.
    alice.request(json!({ "type": "invite", "room_id": room, "user_ids": ["carol"] })).await;
    bob.drain().await;
    let carol_key = format!("chat:user:{{{}/carol}}:conns", app.tenant);
    let _: () = redis.sadd(&carol_key, "HalfGoneConnection=").await.unwrap();
    let before = alice.request(json!({ "type": "get_presence", "user_ids": ["carol"] })).await;
    assert_eq!(before["users"][0]["status"], "online", "the ghost keeps carol online");

    alice.request(json!({ "type": "send_message", "room_id": room, "content": "anyone?" })).await;
    bob.expect("new_message").await;
    // Carol's last "connection" pruned: the room hears she went offline, as from `$disconnect`.
    for member in [&mut alice, &mut bob] {
        let presence = member.expect("presence").await;
        assert_eq!((&presence["user_id"], &presence["status"]), (&json!("carol"), &json!("offline")), "{presence}");
        member.assert_quiet().await;
    }
    let members: Vec<String> = redis.smembers(&user_key).await.unwrap();
    assert_eq!(members, vec![bob.connection_id.clone()]);
    assert!(!redis.exists::<_, bool>(&conn_key).await.unwrap());
    assert!(!redis.exists::<_, bool>(&carol_key).await.unwrap(), "the id without a registration is gone too");
    let after = alice.request(json!({ "type": "get_presence", "user_ids": ["carol"] })).await;
    assert_eq!(after["users"][0]["status"], "offline", "{after}");
    assert!(after["users"][0]["last_seen"].is_string());
}

#[tokio::test]
async fn a_typing_indicator_not_renewed_expires() {
    let mut config = test_config().await;
    config.typing_ttl = Duration::from_secs(1);
    let app: TestApp = spawn_app_with(config).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    bob.send(json!({ "type": "typing_start", "room_id": room })).await;
    alice.expect("typing_start").await;
    // No typing_stop from Bob: the sweep sends it once the indicator expires.
    let stop = alice.expect("typing_stop").await;
    assert_eq!(stop["user_id"], "bob");
    let left = app.scalar("SELECT count(*) FROM chat_typing_indicators").await;
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_management_api_answers_like_api_gateway() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let conf = aws_sdk_config(&app);
    let client = aws_sdk_apigatewaymanagement::Client::from_conf(conf);
    let info = client.get_connection().connection_id(&alice.connection_id).send().await.unwrap();
    assert!(info.connected_at().is_some());
    assert_eq!(info.identity().and_then(|i| i.source_ip()), Some("127.0.0.1"));
    client
        .post_to_connection()
        .connection_id(&alice.connection_id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(r#"{"type":"custom"}"#))
        .send()
        .await
        .unwrap();
    // Not a frame of the protocol: the management API posts whatever it is given.
    assert_eq!(alice.recv_unchecked().await, json!({ "type": "custom" }));
    let gone = client.get_connection().connection_id("NoSuchConnect0=").send().await.unwrap_err();
    assert!(gone.as_service_error().is_some_and(|e| e.is_gone_exception()), "{gone:?}");

    client.delete_connection().connection_id(&alice.connection_id).send().await.unwrap();
    let closed = futures::StreamExt::next(&mut alice.ws).await;
    assert!(matches!(closed, Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None), "{closed:?}");
}

fn aws_sdk_config(app: &TestApp) -> aws_sdk_apigatewaymanagement::Config {
    use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
    aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(app.gateway.management_endpoint())
        .build()
}

/// Messages of a room commit in `seq` order, so catching up `after` the last `seq` seen never
/// skips one that committed late; `room_seq` counts 1, 2, 3, ... so a gap would show.
#[tokio::test]
async fn a_reader_catching_up_during_concurrent_sends_gets_every_message_once_in_order() {
    const SENDERS: usize = 8;
    const EACH: usize = 25;
    let app = spawn_app().await;
    let mut owner = app.connect("owner").await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(app.connect(&format!("sender{i}")).await);
    }
    let mut members: Vec<String> = senders.iter().map(|s| s.user.clone()).collect();
    members.push("reader".into());
    let mut others: Vec<&mut integration_tests::Client> = senders.iter_mut().collect();
    let room = app.room(&mut owner, &mut others, json!({ "participants": members })).await;
    drop(owner);

    let sending: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let room = room.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 0..EACH {
                    let id = format!("{}-{n}", sender.user);
                    sender
                        .send(json!({ "type": "send_message", "room_id": room, "content": id, "request_id": id }))
                        .await;
                    // Other senders' messages arrive in between; the ack carries the request id.
                    let ack = loop {
                        let frame = sender.recv().await;
                        if frame["request_id"] == id.as_str() {
                            break frame;
                        }
                    };
                    assert_eq!(ack["type"], "message_sent", "{ack}");
                    acked.push(ack["message"]["id"].as_str().unwrap().to_string());
                }
                acked
            })
        })
        .collect();

    // The reader (never connected) catches up over HTTP, page after page, while they send.
    let (mut seen, mut last_seq, mut rounds) = (Vec::<serde_json::Value>::new(), 0_i64, 0);
    let mut done = false;
    loop {
        let (status, page) = app.get(&format!("rooms/{room}/messages?after={last_seq}&limit=20"), Some("reader")).await;
        assert_eq!(status, 200, "{page}");
        rounds += 1;
        let messages = page["messages"].as_array().unwrap().clone();
        if let Some(last) = messages.last() {
            last_seq = last["seq"].as_i64().unwrap();
        }
        let empty = messages.is_empty();
        seen.extend(messages);
        // One more empty page after every sender is done: nothing can commit after it.
        if done && empty {
            break;
        }
        done = sending.iter().all(|s| s.is_finished());
    }
    let mut acked: Vec<String> = Vec::new();
    for sender in sending {
        acked.extend(sender.await.unwrap());
    }
    let user_messages: Vec<&serde_json::Value> = seen.iter().filter(|m| m["message_type"] != "system").collect();
    let mut got: Vec<String> = user_messages.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got.len(), SENDERS * EACH, "every message once");
    got.sort();
    acked.sort();
    assert_eq!(got, acked);
    let seqs: Vec<i64> = seen.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in seq order");
    let room_seqs: Vec<i64> = seen.iter().map(|m| m["room_seq"].as_i64().unwrap()).collect();
    assert_eq!(room_seqs, (1..=seen.len() as i64).collect::<Vec<_>>(), "room_seq without gaps");
    println!("catch-up: {} messages from {SENDERS} concurrent senders read in {rounds} rounds", got.len());
}

/// A message that Postgres refuses takes its room counter's step back and leaves its pooled
/// connection out of any transaction: the next insert on that connection commits as the next of
/// the room, and the room's list comes back with it (the fan-out's, read in the same statement).
#[tokio::test]
async fn a_refused_insert_leaves_its_connection_ready_for_the_next() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let room: uuid::Uuid = app.room(&mut alice, &mut [], json!({})).await.parse().unwrap();
    let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": "first" })).await;
    let first = sent["message"]["room_seq"].as_i64().unwrap();
    let store =
        shared::store::Store::connect(&app.database_url, 1, Duration::from_secs(30), integration_tests::statements())
            .unwrap();
    let alice_caller = shared::model::Caller {
        connection_id: String::new(),
        tenant_id: app.tenant.clone(),
        user_id: "alice".into(),
        display_name: "Alice".into(),
        roles: Vec::new(),
    };
    let message = |content, members_up_to| shared::store::NewMessage {
        room_id: room,
        message_type: shared::model::MessageType::Text,
        content,
        attachments: json!([]),
        mentions: &[],
        reply_to: None,
        client_msg_id: None,
        members_up_to,
    };
    // Postgres' text takes no NUL byte (the frame's validation refuses it before it gets here).
    assert!(store.insert_message(&alice_caller, message("nul \0 byte", 10)).await.is_err());
    let Ok(shared::store::Inserted::New { message: stored, members, .. }) =
        store.insert_message(&alice_caller, message("second", 10)).await
    else {
        panic!("the next insert on the same connection");
    };
    assert_eq!(stored.room_seq, first + 1, "the refused insert took no room_seq");
    assert_eq!(members, Some(vec!["alice".to_string()]), "a room within members_up_to lists its members");
    let Ok(shared::store::Inserted::New { members, .. }) =
        store.insert_message(&alice_caller, message("third", 0)).await
    else {
        panic!("a third insert");
    };
    assert_eq!(members, None, "a room above members_up_to is left to the fan-out's own lookup");
    let history = alice.request(json!({ "type": "get_history", "room_id": room })).await;
    let contents: Vec<&str> =
        history["messages"].as_array().unwrap().iter().filter_map(|m| m["content"].as_str()).collect();
    assert!(contents.ends_with(&["first", "second", "third"]), "{history}");
    let idle_in_transaction = app
        .scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
        .await;
    assert_eq!(idle_in_transaction, 0);
}

/// A disconnect that ran between a welcome's registration and its activation deleted the
/// registration first: the activation must not put the id back into the sets.
#[tokio::test]
async fn an_activation_after_its_disconnect_leaves_no_ghost() {
    let app = spawn_app().await;
    let presence = shared::presence::Presence::new(app.redis().await);
    let caller = shared::model::Caller {
        connection_id: format!("Raced{}=", uuid::Uuid::new_v4().simple()),
        tenant_id: app.tenant.clone(),
        user_id: "dora".into(),
        display_name: "Dora".into(),
        roles: Vec::new(),
    };
    presence.register(&caller, chrono::Utc::now() + chrono::Duration::hours(1), None).await.unwrap();
    assert!(presence.unregister(&caller.connection_id).await.unwrap().is_some(), "the disconnect");
    assert!(!presence.activate(&caller).await.unwrap(), "not online");
    assert_eq!(presence.online(&app.tenant, &["dora".to_string()]).await.unwrap(), [false]);
    assert_eq!(presence.tenant_connection_count(&app.tenant).await.unwrap(), 0, "left the tenant's set");
}

/// As on API Gateway, a connection's frames are handled side by side: a frame waiting on the
/// database does not hold up the next one, and each reply carries its frame's `request_id`.
#[tokio::test]
async fn a_connections_frames_are_handled_side_by_side() {
    let mut config = test_config().await;
    config.gateway_frame_concurrency = 8;
    let app = spawn_app_with(config).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;

    // Another session holds the messages table: the send waits for it.
    let mut blocker = app.db().await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE chat_messages IN ACCESS EXCLUSIVE MODE").await.unwrap();
    alice.send(json!({ "type": "send_message", "room_id": room, "content": "held", "request_id": "held" })).await;
    let pong = alice.request(json!({ "type": "ping" })).await;
    assert_eq!(pong["type"], "pong", "the ping overtook the send waiting on the database");
    lock.rollback().await.unwrap();
    let ack = alice.expect("message_sent").await;
    assert_eq!(ack["request_id"], "held");
    assert_eq!(bob.expect("new_message").await["message"]["content"], "held");
}

/// The scheduled sweep (the local gateway runs it with the typing sweep) finds connections that
/// ended unnoticed: one whose `$disconnect` was lost (its registration left behind, the socket
/// gone) and one whose disconnect was cut short (its id left in the sets without its
/// registration). Both are pruned and their users go offline for the others.
#[tokio::test]
async fn the_sweep_prunes_connections_that_ended_unnoticed() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    app.room(&mut alice, &mut [], json!({ "participants": ["carol", "dave"] })).await;
    let presence = shared::presence::Presence::new(app.redis().await);
    let mut redis = app.redis().await;
    let endpoint = app.gateway.management_endpoint();
    for (user, id) in [("carol", "LostDisconnect="), ("dave", "CutShort=")] {
        let caller = shared::model::Caller {
            connection_id: format!("{id}{}", uuid::Uuid::new_v4().simple()),
            tenant_id: app.tenant.clone(),
            user_id: user.into(),
            display_name: user.into(),
            roles: Vec::new(),
        };
        let conn = format!("chat:conn:{{{}}}", caller.connection_id);
        presence.register(&caller, chrono::Utc::now() + chrono::Duration::hours(1), Some(&endpoint)).await.unwrap();
        assert!(presence.activate(&caller).await.unwrap(), "{user} online");
        if user == "carol" {
            // Old enough not to be a connection still being accepted.
            let long_ago = (chrono::Utc::now() - chrono::Duration::minutes(5)).timestamp_millis();
            let _: () = redis.hset(&conn, "connected_at", long_ago).await.unwrap();
        } else {
            let _: () = redis.del(&conn).await.unwrap();
        }
    }
    let mut offline = Vec::new();
    while offline.len() < 2 {
        let frame = alice.expect("presence").await;
        assert_eq!(frame["status"], "offline", "{frame}");
        assert!(frame["last_seen"].is_string());
        offline.push(frame["user_id"].as_str().unwrap().to_string());
    }
    offline.sort();
    assert_eq!(offline, ["carol", "dave"]);
    assert_eq!(presence.online(&app.tenant, &["carol".into(), "dave".into()]).await.unwrap(), [false, false]);
}

/// The local gateway's `/metrics`: Prometheus' text format, whose counters move with the traffic.
#[tokio::test]
async fn metrics_are_served_in_the_prometheus_format_and_count_messages() {
    let app = spawn_app().await;
    let scrape = || async {
        let url = format!("http://{}/metrics", app.gateway.addr);
        let response = tokio::time::timeout(integration_tests::WAIT, reqwest::get(url)).await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let text = response.text().await.unwrap();
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
    };
    // Counters are the process's, which other tests share: they only grow.
    let value = |scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(ref buckets) => buckets.last().map_or(0.0, |b| b.count),
                _ => 0.0,
            })
            .sum::<f64>()
    };
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let before = scrape().await;
    for i in 0..3 {
        alice.request(json!({ "type": "send_message", "room_id": room, "content": format!("counted {i}") })).await;
        bob.expect("new_message").await;
    }
    let counted = [
        ("chat_messages_stored_total", None),
        ("chat_frames_total", Some(("type", "send_message"))),
        ("chat_posts_delivered_total", None),
        ("chat_ack_latency_milliseconds", None),
        ("chat_fanout_duration_milliseconds", None),
    ];
    // A fan-out's duration is recorded once it has ended, which can be just after bob has the
    // message: scraped again until every figure moved, or the wait runs out.
    let deadline = tokio::time::Instant::now() + integration_tests::WAIT;
    loop {
        let after = scrape().await;
        let unmoved: Vec<String> = counted
            .iter()
            .map(|&(name, label)| (name, value(&after, name, label) - value(&before, name, label)))
            .filter(|(_, moved)| *moved < 3.0)
            .map(|(name, moved)| format!("{name} moved by {moved}"))
            .collect();
        if unmoved.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{unmoved:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
