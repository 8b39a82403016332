//! Archival: messages older than the configured age move to S3 (a local S3-compatible server
//! named by `S3_ENDPOINT`, through the real aws-sdk-s3 client) as gzipped JSON Lines per room
//! and month, leave Postgres, and history pages reach them transparently in both directions.

use integration_tests::{archive_bucket, spawn_app_with, test_config, Client};
use serde_json::{json, Value};
use shared::ChatService;

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
    let mut config = test_config().await;
    config.archive_bucket = Some(archive_bucket().await);
    config.archive_after = std::time::Duration::from_secs(30 * 86_400);
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
    bob.drain().await;
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
    let mut config = test_config().await;
    config.archive_bucket = Some(archive_bucket().await);
    config.archive_after = std::time::Duration::from_secs(30 * 86_400);
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
