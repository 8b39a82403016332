//! The HTTP routes: health, history, search and metrics, with the same JWT as a bearer token.

use integration_tests::{spawn_app, spawn_app_with, test_config, with_database};
use serde_json::json;
use shared::ratelimit::{Rate, RateLimits};

#[tokio::test]
async fn health_reports_its_dependencies_and_nothing_of_tenants() {
    let app = spawn_app().await;
    let _alice = app.connect("alice").await;
    let (status, body) = app.get("health", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!((body["redis_connected"].as_bool(), body["database_connected"].as_bool()), (Some(true), Some(true)));
    assert!(body.get("active_connections").is_none(), "{body}");
}

#[tokio::test]
async fn health_is_degraded_with_503_when_postgres_does_not_answer() {
    let mut config = test_config().await;
    config.database_url = with_database(&config.database_url, "no_such_database");
    config.db_timeout = std::time::Duration::from_secs(1);
    let app = spawn_app_with(config).await;
    let (status, body) = app.get("health", None).await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "degraded");
    assert_eq!((body["database_connected"].as_bool(), body["redis_connected"].as_bool()), (Some(false), Some(true)));
}

#[tokio::test]
async fn session_tells_a_refused_token_from_a_good_one() {
    let app = spawn_app().await;
    let (status, body) = app.get("session", Some("alice")).await;
    assert_eq!(
        (status, body["user_id"].as_str(), body["tenant_id"].as_str()),
        (200, Some("alice"), Some(app.tenant.as_str()))
    );
    assert_eq!(app.get("session", None).await.0, 401);
    assert_eq!(app.get_with("session", Some("forged".into())).await.0, 401);
    let expired = shared::auth::mint(&app.secret, &app.tenant, "alice", None, -60);
    assert_eq!(app.get_with("session", Some(expired)).await.0, 401);
}

#[tokio::test]
async fn history_over_http_pages_like_the_websocket_and_checks_membership() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let _carol = app.connect("carol").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    for i in 0..5 {
        alice.request(json!({ "type": "send_message", "room_id": room, "content": format!("m{i}") })).await;
    }
    let (status, page) = app.get(&format!("rooms/{room}/messages?limit=3"), Some("alice")).await;
    assert_eq!(status, 200);
    let contents: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["m2", "m3", "m4"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, older) = app.get(&format!("rooms/{room}/messages?before={cursor}"), Some("alice")).await;
    assert_eq!(older["messages"].as_array().unwrap().len(), 2);
    assert_eq!(older["has_more"], false);

    assert_eq!(app.get(&format!("rooms/{room}/messages"), None).await.0, 401);
    assert_eq!(app.get_with(&format!("rooms/{room}/messages"), Some("forged".into())).await.0, 401);
    let (status, denied) = app.get(&format!("rooms/{room}/messages"), Some("carol")).await;
    assert_eq!((status, denied["code"].as_str()), (403, Some("permission_denied")));
    assert_eq!(app.get("rooms/not-a-uuid/messages", Some("alice")).await.0, 400);
    assert_eq!(app.get(&format!("rooms/{room}/messages?before=-4"), Some("alice")).await.0, 400);
    assert_eq!(app.get("nowhere", Some("alice")).await.0, 404);

    // The same user id in another tenant reaches nothing.
    let outsider = shared::auth::mint(&app.secret, &format!("{}-other", app.tenant), "alice", None, 60);
    let (status, body) = app.get_with(&format!("rooms/{room}/messages"), Some(outsider)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn search_finds_words_only_in_the_callers_rooms_and_never_deleted_ones() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let shared_room = app.room(&mut alice, &mut [&mut bob], json!({ "name": "Shared" })).await;
    let private = app.room(&mut bob, &mut [], json!({ "name": "Bob's" })).await;
    alice
        .request(json!({ "type": "send_message", "room_id": shared_room, "content": "the quarterly budget is ready" }))
        .await;
    bob.expect("new_message").await;
    bob.request(json!({ "type": "send_message", "room_id": private, "content": "budget secrets of bob" })).await;
    let gone = alice.request(json!({ "type": "send_message", "room_id": shared_room, "content": "budget typo" })).await;
    bob.expect("new_message").await;
    alice.request(json!({ "type": "delete_message", "message_id": gone["message"]["id"] })).await;
    bob.expect("message_deleted").await;

    let (status, found) = app.get("search?q=budget", Some("alice")).await;
    assert_eq!(status, 200);
    let contents: Vec<&str> =
        found["results"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["the quarterly budget is ready"]);
    let (_, found) = app.get("search?q=budget", Some("bob")).await;
    assert_eq!(found["results"].as_array().unwrap().len(), 2);
    let (_, found) = app.get(&format!("search?q=budget&room_id={private}"), Some("bob")).await;
    assert_eq!(found["results"][0]["content"], "budget secrets of bob");
    let (_, found) = app.get("search?q=%22quarterly%20budget%22", Some("bob")).await;
    assert_eq!(found["results"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("search?q=", Some("alice")).await.0, 400);

    let outsider = shared::auth::mint(&app.secret, &format!("{}-other", app.tenant), "bob", None, 60);
    let (_, found) = app.get_with("search?q=budget", Some(outsider)).await;
    assert!(found["results"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn metrics_are_for_tenant_admins() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({ "name": "Busy" })).await;
    for text in ["one", "two", "three"] {
        alice.request(json!({ "type": "send_message", "room_id": room, "content": text })).await;
        bob.expect("new_message").await;
    }
    let (status, denied) = app.get("metrics", Some("alice")).await;
    assert_eq!((status, denied["code"].as_str()), (403, Some("permission_denied")));

    let admin = shared::auth::mint_with_roles(&app.secret, &app.tenant, "boss", None, 60, &["admin"]);
    let (status, metrics) = app.get_with("metrics", Some(admin)).await;
    assert_eq!(status, 200);
    assert_eq!(metrics["tenant_id"], app.tenant.as_str());
    assert_eq!(metrics["active_connections"], 2);
    assert_eq!(metrics["active_users_24h"], 2);
    let busy = &metrics["rooms"][0];
    assert_eq!((busy["name"].as_str(), busy["messages"].as_i64()), (Some("Busy"), Some(3)));
    assert_eq!((busy["participants"].as_i64(), busy["unread"].as_i64()), (Some(2), Some(3)));
}

#[tokio::test]
async fn http_requests_over_the_limit_get_429_with_retry_after() {
    let mut config = test_config().await;
    config.rate_limits = RateLimits { http: Rate::new(0.001, 2), ..RateLimits::OFF };
    let app = spawn_app_with(config).await;
    let _alice = app.connect("alice").await;
    assert_eq!(app.get("search?q=x", Some("alice")).await.0, 200);
    assert_eq!(app.get("search?q=x", Some("alice")).await.0, 200);
    let response = reqwest::Client::new()
        .get(format!("http://{}/api/v1/chat/search?q=x", app.gateway.addr))
        .bearer_auth(app.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(body["retry_after_ms"].as_u64().unwrap() > 0);
}

/// `GET /api/v1/chat/export` with a token, as text: status, headers and body.
async fn export(
    app: &integration_tests::TestApp,
    query: &str,
    token: String,
) -> (u16, reqwest::header::HeaderMap, String) {
    let url = format!("http://{}/api/v1/chat/export?{query}", app.gateway.addr);
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    (response.status().as_u16(), response.headers().clone(), response.text().await.unwrap())
}

#[tokio::test]
async fn admins_export_rooms_and_tenants_as_json_lines_and_csv_with_everything_kept() {
    let app = spawn_app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let other_room = app.room(&mut bob, &mut [], json!({})).await;
    let mut ids = Vec::new();
    for content in ["hello, \"world\"", "=HYPERLINK(\"http://evil\")", "to be deleted"] {
        let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": content })).await;
        ids.push(ack["message"]["id"].as_str().unwrap().to_string());
    }
    alice.request(json!({ "type": "edit_message", "message_id": ids[0], "content": "hello, edited" })).await;
    bob.drain().await;
    bob.request(json!({ "type": "send_message", "room_id": other_room, "content": "elsewhere" })).await;
    bob.request(json!({ "type": "add_reaction", "message_id": ids[0], "emoji": "👍" })).await;
    bob.request(json!({ "type": "mark_read", "room_id": room, "message_ids": [ids[1]] })).await;
    alice.drain().await;
    alice.request(json!({ "type": "delete_message", "message_id": ids[2] })).await;

    // The room's admin exports the room: every message with its edits, reactions, receipts and
    // deletion, in seq order, and the total up front for progress.
    let (status, headers, body) = export(&app, &format!("room_id={room}"), app.token("alice")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert_eq!(headers["x-export-total"], "3");
    let records: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["content"], "hello, edited");
    assert_eq!(records[0]["edits"][0]["content"], "hello, \"world\"");
    assert_eq!(records[0]["reactions"][0]["emoji"], "👍");
    assert_eq!(records[0]["read_by"], json!(["bob"]), "reading a later message reads this one");
    assert!(records[1]["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["user_id"] == "bob" && !r["read_at"].is_null()));
    assert_eq!((records[2]["deleted"].as_bool(), records[2]["content"].as_str()), (Some(true), Some("to be deleted")));
    // Delivered to bob's connection, not read: from his delivery position.
    let to_bob = records[2]["receipts"].as_array().unwrap().iter().find(|r| r["user_id"] == "bob").cloned();
    let to_bob = to_bob.expect("a delivery receipt for bob");
    assert!(to_bob["read_at"].is_null() && !to_bob["delivered_at"].is_null(), "{to_bob}");
    let room_seqs: Vec<i64> = records.iter().map(|r| r["room_seq"].as_i64().unwrap()).collect();
    assert_eq!(room_seqs, [1, 2, 3]);
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    // Resuming after a record gives the rest.
    let (_, headers, rest) = export(&app, &format!("room_id={room}&after={}", seqs[0]), app.token("alice")).await;
    assert_eq!((headers["x-export-total"].to_str().unwrap(), rest.lines().count()), ("2", 2));

    // CSV: a header and one line per message, quoted per RFC 4180, formulas defused.
    let (status, headers, csv) = export(&app, &format!("room_id={room}&format=csv"), app.token("alice")).await;
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "text/csv; charset=utf-8"));
    assert!(csv.starts_with("seq,room_seq,id,room_id,sender_id,"), "{csv}");
    assert!(csv.contains(",\"'=HYPERLINK(\"\"http://evil\"\")\","), "{csv}");
    assert_eq!(csv.matches("\r\n").count(), 4);

    // A tenant admin exports the whole tenant; members cannot, nor can other tenants.
    let admin = shared::auth::mint_with_roles(&app.secret, &app.tenant, "boss", None, 60, &["admin"]);
    let (status, _, all) = export(&app, "", admin).await;
    assert_eq!((status, all.lines().count()), (200, 4));
    let (status, _, denied) = export(&app, "", app.token("alice")).await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(export(&app, &format!("room_id={room}"), app.token("bob")).await.0, 403);
    let outsider = shared::auth::mint_with_roles(&app.secret, "elsewhere", "boss", None, 60, &["admin"]);
    assert_eq!(export(&app, &format!("room_id={room}"), outsider).await.0, 404);
    assert_eq!(export(&app, "format=xml", app.token("alice")).await.0, 400);
}
