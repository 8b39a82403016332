//! Archival: messages older than the configured age move to S3 (a local S3-compatible server
//! named by `S3_ENDPOINT`, through the real aws-sdk-s3 client) as gzipped JSON Lines per room
//! and month, leave Postgres, and history pages reach them transparently in both directions.

use integration_tests::{archive_bucket, spawn_app_with, test_config, Client};
use serde_json::{json, Value};
use shared::ChatService;

/// A test's configuration, archiving messages older than 30 days to a bucket of its own.
async fn archive_config() -> shared::Config {
    let mut config = test_config().await;
    config.archive_bucket = Some(archive_bucket().await);
    config.archive_after = std::time::Duration::from_secs(30 * 86_400);
    config
}

fn contents(page: &Value) -> Vec<String> {
    page["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_string()).collect()
}

async fn history(client: &mut Client, room: &str, cursor: Value) -> Value {
    let mut frame = json!({ "type": "get_history", "room_id": room, "limit": 3 });
    frame.as_object_mut().unwrap().extend(cursor.as_object().unwrap().clone());
    let page = client.request(frame).await;
    assert_eq!(page["type"], "history", "{page}");
    page
}

#[tokio::test]
async fn old_months_move_to_s3_and_history_reaches_them() {
    let config = archive_config().await;
    let app = spawn_app_with(config.clone()).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": format!("m{i}") })).await;
        ids.push(ack["message"]["id"].as_str().unwrap().to_string());
    }
    // A reply stays in Postgres while its parent moves to the archive.
    alice.request(json!({ "type": "send_message", "room_id": room, "content": "m5", "reply_to": ids[0] })).await;
    alice.request(json!({ "type": "edit_message", "message_id": ids[0], "content": "m0 edited" })).await;
    alice.request(json!({ "type": "delete_message", "message_id": ids[2] })).await;
    // A pinned message stays pinned once archived.
    alice.request(json!({ "type": "pin_message", "message_id": ids[1] })).await;
    while bob.recv().await["type"] != "message_pinned" {}
    bob.request(json!({ "type": "add_reaction", "message_id": ids[1], "emoji": "👍" })).await;
    alice.drain().await;

    let db = app.db().await;
    let backdate = |id: &str, at: &str| format!("UPDATE chat_messages SET created_at = '{at}' WHERE id = '{id}';");
    db.batch_execute(
        &[
            backdate(&ids[0], "2025-01-15"),
            backdate(&ids[1], "2025-01-20"),
            backdate(&ids[2], "2025-02-03"),
            backdate(&ids[3], "2025-02-10"),
        ]
        .concat(),
    )
    .await
    .unwrap();

    let service = ChatService::new(config.clone()).await.unwrap();
    let report = service.archive_old_messages().await.unwrap();
    assert_eq!((report.rooms, report.months, report.messages), (1, 2, 4));
    let in_postgres = format!("SELECT count(*) FROM chat_messages WHERE room_id = '{room}'");
    assert_eq!(app.scalar(&in_postgres).await, 2);
    let january = format!("{}/{room}/2025-01.jsonl.gz", app.tenant);
    let records = service.archive.as_ref().unwrap().get(&january).await.unwrap();
    let first: Value = serde_json::from_str(&records[0]).unwrap();
    assert_eq!((records.len(), first["content"].as_str()), (2, Some("m0 edited")));
    assert_eq!(first["edits"][0]["content"], "m0");
    // Nothing left to move: a second run changes nothing.
    assert_eq!(service.archive_old_messages().await.unwrap().messages, 0);
    let pins = bob.request(json!({ "type": "list_pins", "room_id": room })).await;
    let pinned = &pins["pins"][0];
    assert_eq!((&pinned["message"]["content"], &pinned["pinned_by"]), (&json!("m1"), &json!("alice")), "{pins}");
    assert_eq!(pinned["message"]["reactions"][0]["emoji"], "👍");

    // Backwards from the newest page, through Postgres into the archive.
    let page = history(&mut bob, &room, json!({})).await;
    assert_eq!(contents(&page), ["m3", "m4", "m5"]);
    assert_eq!(page["has_more"], true);
    let page = history(&mut bob, &room, json!({ "before": page["next_cursor"] })).await;
    assert_eq!(contents(&page), ["m0 edited", "m1", ""], "a deleted message stays hidden from members");
    assert_eq!(page["has_more"], false);
    assert_eq!(page["messages"][1]["reactions"][0], json!({ "emoji": "👍", "count": 1, "users": ["bob"] }));
    assert!(!page["messages"][2]["deleted_at"].is_null());
    // The gateway keeps the months it read: with January's object gone from the bucket, the
    // same page still comes (from its cache, not a download per page).
    let s3 = shared::archive::s3_client(
        &shared::aws::sdk_config_for("us-east-1", false).await,
        Some(&std::env::var("S3_ENDPOINT").unwrap()),
    );
    let bucket = config.archive_bucket.clone().unwrap();
    s3.delete_object().bucket(&bucket).key(&january).send().await.unwrap();
    let again = history(&mut bob, &room, json!({ "before": page["messages"][2]["seq"].to_string() })).await;
    assert_eq!(contents(&again), ["m0 edited", "m1"]);
    // Forwards from the beginning, out of the archive into Postgres.
    let page = history(&mut bob, &room, json!({ "after": "0" })).await;
    assert_eq!(
        (contents(&page), &page["has_more"]),
        (vec!["m0 edited".to_string(), "m1".into(), "".into()], &json!(true))
    );
    let page = history(&mut bob, &room, json!({ "after": page["next_cursor"] })).await;
    assert_eq!((contents(&page), &page["has_more"]), (vec!["m3".to_string(), "m4".into(), "m5".into()], &json!(false)));

    // A later run adds to a month already archived.
    db.batch_execute(&backdate(&ids[4], "2025-02-20")).await.unwrap();
    assert_eq!(service.archive_old_messages().await.unwrap().messages, 1);
    let february =
        format!("SELECT messages FROM chat_archived_months WHERE room_id = '{room}' AND month = '2025-02-01'");
    assert_eq!(app.db().await.query_one(&february, &[]).await.unwrap().get::<_, i32>(0), 3);
    assert_eq!(contents(&history(&mut bob, &room, json!({})).await), ["m3", "m4", "m5"]);
}

/// A room's backlog is archived in batches of `ARCHIVE_BATCH` messages; each batch merges into
/// the month's object, so the result is the same as in one go.
#[tokio::test]
async fn a_room_is_archived_in_bounded_batches() {
    let mut config = archive_config().await;
    config.archive_batch = 2;
    let app = spawn_app_with(config.clone()).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    for i in 0..5 {
        alice.request(json!({ "type": "send_message", "room_id": room, "content": format!("old {i}") })).await;
    }
    app.db()
        .await
        .batch_execute(&format!("UPDATE chat_messages SET created_at = '2025-03-10' WHERE room_id = '{room}'"))
        .await
        .unwrap();
    let service = ChatService::new(config).await.unwrap();
    let report = service.archive_old_messages().await.unwrap();
    assert_eq!((report.rooms, report.messages, report.months), (1, 5, 3), "three batches of at most two");
    assert_eq!(app.scalar(&format!("SELECT count(*) FROM chat_messages WHERE room_id = '{room}'")).await, 0);
    let march = format!("{}/{room}/2025-03.jsonl.gz", app.tenant);
    assert_eq!(service.archive.as_ref().unwrap().get(&march).await.unwrap().len(), 5);
    let page = alice.request(json!({ "type": "get_history", "room_id": room, "limit": 10 })).await;
    assert_eq!(contents(&page), ["old 0", "old 1", "old 2", "old 3", "old 4"]);
}

/// What the writer was told it changed in one message (or found there afterwards).
#[derive(Debug, Default, Clone, PartialEq)]
struct State {
    content: String,
    edits: usize,
    reactions: std::collections::BTreeSet<String>,
    deleted: bool,
    replies: i64,
}

fn state_of(record: &Value) -> State {
    State {
        content: record["content"].as_str().unwrap().to_string(),
        edits: record["edits"].as_array().unwrap().len(),
        reactions: record["reactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["emoji"].as_str().unwrap().into())
            .collect(),
        deleted: record["deleted"].as_bool().unwrap(),
        replies: record["reply_count"].as_i64().unwrap(),
    }
}

/// An archive run (steps of two messages) races a writer that edits, reacts to, unreacts,
/// replies to and deletes the messages of the month being archived, passing back and forth over
/// those the run has not yet taken, round after round. Every change the writer was told
/// succeeded is found afterwards, in the archive object or in Postgres, each message in exactly
/// one of them; the others were refused (`not_found`: archived by then). Without the step's
/// lock an acknowledged edit went missing within a few rounds; without a reply's lock on its
/// parent, the parent's reply count did.
#[tokio::test]
async fn changes_acknowledged_during_an_archive_run_are_all_kept() {
    const ROUNDS: usize = 5;
    const MESSAGES: usize = 30;
    const EMOJIS: [&str; 3] = ["👍", "🎉", "👀"];
    let mut config = archive_config().await;
    config.archive_batch = 2;
    let app = spawn_app_with(config.clone()).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    let service = ChatService::new(config).await.unwrap();
    let db = app.db().await;
    let mut expected: std::collections::HashMap<String, State> = std::collections::HashMap::new();
    let (mut acknowledged, mut refused) = (std::collections::BTreeMap::new(), 0);
    for round in 0..ROUNDS {
        let mut ids = Vec::new();
        for i in 0..MESSAGES {
            let content = format!("round {round} message {i}");
            let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": content })).await;
            let id = ack["message"]["id"].as_str().unwrap().to_string();
            expected.insert(id.clone(), State { content, ..State::default() });
            ids.push(id);
        }
        let backdate = format!("UPDATE chat_messages SET created_at = '2025-05-{:02}' WHERE id = ANY($1)", round + 1);
        let uuids: Vec<uuid::Uuid> = ids.iter().map(|id| id.parse().unwrap()).collect();
        db.execute(&backdate, &[&uuids]).await.unwrap();

        let done = std::sync::atomic::AtomicBool::new(false);
        let run = async {
            let report = service.archive_old_messages().await.unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            report
        };
        let writer = async {
            let mut archived = std::collections::HashSet::new();
            let mut pass = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) && archived.len() < ids.len() {
                // Backwards through what the run has not reached, then forwards along its front.
                let mut order: Vec<usize> = (0..ids.len()).filter(|i| !archived.contains(i)).collect();
                if pass % 2 == 0 {
                    order.reverse();
                }
                for i in order {
                    let id = &ids[i];
                    let emoji = EMOJIS[(pass / 4) % EMOJIS.len()];
                    let frame = match (pass + i) % 5 {
                        _ if pass == 0 && i % 5 == 2 => json!({ "type": "delete_message", "message_id": id }),
                        0 | 2 => {
                            json!({ "type": "edit_message", "message_id": id, "content": format!("{id} pass {pass}") })
                        }
                        1 => json!({ "type": "add_reaction", "message_id": id, "emoji": emoji }),
                        3 => json!({ "type": "remove_reaction", "message_id": id, "emoji": emoji }),
                        _ => json!({ "type": "send_message", "room_id": room, "content": "reply", "reply_to": id }),
                    };
                    let reply = alice.request(frame.clone()).await;
                    let state = expected.get_mut(id).unwrap();
                    match reply["type"].as_str().unwrap() {
                        "message_edited" => {
                            state.content = frame["content"].as_str().unwrap().to_string();
                            state.edits += 1;
                        }
                        "reaction_added" => drop(state.reactions.insert(emoji.to_string())),
                        "reaction_removed" => drop(state.reactions.remove(emoji)),
                        "message_deleted" => state.deleted = true,
                        "message_sent" => state.replies += 1,
                        // Archived by now, or deleted (which takes no edits or reactions).
                        "error" if reply["code"] == "not_found" || reply["code"] == "permission_denied" => {
                            if reply["code"] == "not_found" {
                                archived.insert(i);
                            }
                            refused += 1;
                            continue;
                        }
                        _ => panic!("unexpected answer to {frame}: {reply}"),
                    }
                    *acknowledged.entry(frame["type"].as_str().unwrap().to_string()).or_insert(0) += 1;
                }
                pass += 1;
            }
        };
        let (report, ()) = tokio::join!(run, writer);
        assert_eq!(report.messages, MESSAGES as u64, "round {round}: the run archives the whole month");
    }

    // Every message is in exactly one place, as its writer was told it is.
    let mut found: std::collections::HashMap<String, State> = std::collections::HashMap::new();
    let mut records: Vec<String> = service
        .store
        .export_page(&app.tenant, Some(room.parse().unwrap()), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let objects = db
        .query(
            "SELECT object_key FROM chat_archived_months WHERE room_id = $1",
            &[&room.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
    for object in objects {
        records.extend(service.archive.as_ref().unwrap().get(object.get(0)).await.unwrap());
    }
    for record in records {
        let record: Value = serde_json::from_str(&record).unwrap();
        let id = record["id"].as_str().unwrap().to_string();
        assert!(found.insert(id.clone(), state_of(&record)).is_none(), "{id} is in two places");
    }
    for (id, state) in &expected {
        assert_eq!(found.get(id), Some(state), "{id}: what was acknowledged is what is kept");
    }
    println!("acknowledged and found: {acknowledged:?}; refused: {refused}");
    assert!(acknowledged.len() == 5 && refused > 0, "the writer raced the runs with every kind of change");
}

/// An archived message still opens its thread (parent and replies, archived or not, paged by
/// seq), its edit history and its receipts, read through the same cache of decoded months as
/// history pages; it no longer changes. Search says how far back it reaches.
#[tokio::test]
async fn archived_messages_keep_their_threads_edit_history_and_receipts() {
    let config = archive_config().await;
    let app = spawn_app_with(config.clone()).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": "first plan" })).await;
    let parent = sent["message"]["id"].as_str().unwrap().to_string();
    bob.expect("new_message").await;
    let reply = bob
        .request(json!({ "type": "send_message", "room_id": room, "content": "old reply", "reply_to": parent }))
        .await;
    let old_reply = reply["message"]["id"].as_str().unwrap().to_string();
    alice.expect("new_message").await;
    for content in ["second plan", "final plan"] {
        alice.request(json!({ "type": "edit_message", "message_id": parent, "content": content })).await;
        bob.expect("message_edited").await;
    }
    bob.request(json!({ "type": "add_reaction", "message_id": parent, "emoji": "👍" })).await;
    alice.expect("reaction_added").await;
    bob.request(json!({ "type": "mark_read", "room_id": room })).await;
    alice.expect("messages_read").await;
    bob.request(json!({ "type": "send_message", "room_id": room, "content": "new reply", "reply_to": parent })).await;
    alice.expect("new_message").await;
    let db = app.db().await;
    let old: Vec<uuid::Uuid> = [&parent, &old_reply].iter().map(|id| id.parse().unwrap()).collect();
    db.execute("UPDATE chat_messages SET created_at = '2025-01-10' WHERE id = ANY($1)", &[&old]).await.unwrap();
    let service = ChatService::new(config.clone()).await.unwrap();
    assert_eq!(service.archive_old_messages().await.unwrap().messages, 2);

    // The thread: the archived parent, its archived reply, then the one in Postgres.
    let thread = bob.request(json!({ "type": "get_thread", "message_id": parent })).await;
    assert_eq!(thread["type"], "thread", "{thread}");
    assert_eq!(thread["parent"]["content"], "final plan");
    assert_eq!(thread["parent"]["reactions"][0]["users"], json!(["bob"]));
    assert_eq!(contents(&json!({ "messages": thread["replies"] })), ["old reply", "new reply"]);
    let first = bob.request(json!({ "type": "get_thread", "message_id": parent, "limit": 1 })).await;
    assert_eq!(
        (contents(&json!({ "messages": first["replies"] })), &first["has_more"]),
        (vec!["old reply".into()], &json!(true))
    );
    let rest = bob.request(json!({ "type": "get_thread", "message_id": parent, "after": first["next_cursor"] })).await;
    assert_eq!(
        (contents(&json!({ "messages": rest["replies"] })), &rest["has_more"]),
        (vec!["new reply".into()], &json!(false))
    );
    let of_reply = bob.request(json!({ "type": "get_thread", "message_id": old_reply })).await;
    assert_eq!(
        (of_reply["parent"]["reply_to"].as_str(), of_reply["replies"].as_array().unwrap().len()),
        (Some(parent.as_str()), 0)
    );

    // Edit history and receipts come from the month the gateway already holds: its object may be
    // gone from the bucket.
    let key: String = db.query_one("SELECT object_key FROM chat_archived_months", &[]).await.unwrap().get(0);
    let s3 = shared::archive::s3_client(
        &shared::aws::sdk_config_for("us-east-1", false).await,
        Some(&std::env::var("S3_ENDPOINT").unwrap()),
    );
    s3.delete_object().bucket(config.archive_bucket.as_ref().unwrap()).key(&key).send().await.unwrap();
    let history = bob.request(json!({ "type": "get_edit_history", "message_id": parent })).await;
    assert_eq!(history["current"]["content"], "final plan", "{history}");
    let versions: Vec<&str> =
        history["versions"].as_array().unwrap().iter().map(|v| v["content"].as_str().unwrap()).collect();
    assert_eq!(versions, ["first plan", "second plan"]);
    assert_eq!(history["versions"][1]["edited_by"], "alice");
    let receipts = alice.request(json!({ "type": "get_receipts", "message_id": parent })).await;
    assert_eq!(receipts["type"], "receipts", "{receipts}");
    assert_eq!(
        (receipts["read"][0]["user_id"].as_str(), receipts["delivered"][0]["user_id"].as_str()),
        (Some("bob"), Some("bob"))
    );

    // An archived message no longer changes, nor takes new replies.
    for frame in [
        json!({ "type": "edit_message", "message_id": parent, "content": "too late" }),
        json!({ "type": "add_reaction", "message_id": parent, "emoji": "🎉" }),
        json!({ "type": "delete_message", "message_id": parent }),
        json!({ "type": "send_message", "room_id": room, "content": "late", "reply_to": parent }),
    ] {
        let refused = alice.request(frame.clone()).await;
        assert_eq!(refused["code"], "not_found", "{frame}: {refused}");
    }

    // Search reads Postgres only, and says how far back that reaches.
    let (status, found) = app.get("search?q=plan", Some("bob")).await;
    assert_eq!((status, found["results"].as_array().unwrap().len(), &found["covers_days"]), (200, 0, &json!(30)));
    let (_, found) = app.get("search?q=reply", Some("bob")).await;
    assert_eq!(contents(&json!({ "messages": found["results"] })), ["new reply"]);
}

/// A step that wrote its month's object but did not commit leaves a copy of a message that is
/// still in Postgres in the object: readers, and the next step, take from an object only the seqs
/// its committed month covers.
#[tokio::test]
async fn an_object_is_read_only_as_far_as_its_committed_month() {
    let config = archive_config().await;
    let app = spawn_app_with(config.clone()).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    let mut ids = Vec::new();
    for content in ["a", "b", "c"] {
        let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": content })).await;
        ids.push(sent["message"]["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    let db = app.db().await;
    let backdate = "UPDATE chat_messages SET created_at = '2025-06-01' WHERE id = ANY($1)";
    db.execute(backdate, &[&ids[..2].to_vec()]).await.unwrap();
    let service = ChatService::new(config).await.unwrap();
    assert_eq!(service.archive_old_messages().await.unwrap().messages, 2);

    // As a step that failed after its write would leave it: c in June's object, and in Postgres.
    db.execute(backdate, &[&ids[2..].to_vec()]).await.unwrap();
    let archive = service.archive.as_ref().unwrap();
    let key = format!("{}/{room}/2025-06.jsonl.gz", app.tenant);
    let mut records = archive.get(&key).await.unwrap();
    records.extend(
        service
            .store
            .export_page(&app.tenant, Some(room.parse().unwrap()), 0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, r)| r),
    );
    archive.put(&key, &records).await.unwrap();
    alice.request(json!({ "type": "edit_message", "message_id": ids[2], "content": "c edited" })).await;
    let page = alice.request(json!({ "type": "get_history", "room_id": room, "after": "0" })).await;
    assert_eq!(contents(&page), ["a", "b", "c edited"]);

    assert_eq!(service.archive_old_messages().await.unwrap().messages, 1);
    let records = archive.get(&key).await.unwrap();
    let last: Value = serde_json::from_str(records.last().unwrap()).unwrap();
    assert_eq!((records.len(), last["content"].as_str()), (3, Some("c edited")));
    let page = alice.request(json!({ "type": "get_history", "room_id": room, "after": "0" })).await;
    assert_eq!(contents(&page), ["a", "b", "c edited"]);
}
