//! Webhooks to the tenant's backend, through the local gateway's in-process queue, to a real
//! HTTP receiver that checks every signature.

use integration_tests::webhook::Receiver;
use integration_tests::{spawn_app, spawn_app_with, test_config};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn tenant_admins_set_see_and_remove_the_endpoint_and_no_one_else() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let admin = || Some(app.token_with_roles("boss", &["admin"]));
    let put = |body: Value| app.http(Method::PUT, "webhook", admin(), Some(body));

    let (status, refused) =
        app.http(Method::PUT, "webhook", Some(app.token("alice")), Some(json!({ "url": receiver.url }))).await;
    assert_eq!((status, &refused["code"]), (403, &json!("permission_denied")));
    assert_eq!(app.get_with("webhook", admin()).await.0, 404, "none set yet");

    let mut refusals = 0;
    for bad in [
        json!({ "url": "not a url" }),
        json!({ "url": "ftp://example.com/hook" }),
        json!({ "url": receiver.url, "events": ["message.deleted"] }),
        json!({ "url": receiver.url, "secret": "short" }),
        json!({ "url": receiver.url, "color": "blue" }),
        json!({ "events": ["message.new"] }),
    ] {
        let (status, error) = put(bad.clone()).await;
        assert_eq!((status, &error["code"]), (400, &json!("validation_error")), "{bad}: {error}");
        refusals += 1;
    }

    let endpoint = receiver.subscribe(&app, json!({})).await;
    assert_eq!(
        endpoint["events"],
        json!(["message.new", "message.flagged", "member.banned"]),
        "all events unless named"
    );
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"), "a secret made for it: {endpoint}");
    let (status, shown) = app.get_with("webhook", admin()).await;
    assert_eq!((status, &shown["url"], &shown["secret"]), (200, &json!(receiver.url), &Value::Null), "{shown}");

    let (_, chosen) =
        put(json!({ "url": receiver.url, "events": ["member.banned"], "secret": "a-secret-of-our-own" })).await;
    assert_eq!((&chosen["events"], &chosen["secret"]), (&json!(["member.banned"]), &json!("a-secret-of-our-own")));

    // Another tenant's admin sees none of it.
    let other = spawn_app_with(test_config().await).await;
    let (status, _) = other.get_with("webhook", Some(other.token_with_roles("boss", &["admin"]))).await;
    assert_eq!(status, 404);

    assert_eq!(app.http(Method::DELETE, "webhook", admin(), None).await.0, 200);
    assert_eq!(app.get_with("webhook", admin()).await.0, 404);
    assert_eq!(app.http(Method::DELETE, "webhook", admin(), None).await.0, 404);
    assert_eq!(app.http(Method::POST, "webhook", admin(), None).await.0, 405);
    println!("webhook endpoint: {refusals} bad bodies refused, one non-admin refused");
}

#[tokio::test]
async fn a_new_message_reaches_the_backend_signed_and_names_the_members_who_were_offline() {
    let app = spawn_app().await;
    let mut receiver = Receiver::start().await;
    receiver.subscribe(&app, json!({ "events": ["message.new"] })).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = alice
        .request(json!({ "type": "create_room", "name": "R", "room_type": "group", "participants": ["bob", "carol"] }))
        .await["room"]["id"]
        .clone();
    bob.expect("room_created").await;

    let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": "lunch?" })).await;
    assert_eq!(ack["type"], "message_sent");
    let received = receiver.next().await;
    assert_eq!(received.status, 200, "signed with the tenant's secret: {received:?}");
    assert_eq!((received.event.as_str(), &received.body["type"]), ("message.new", &json!("message.new")));
    assert_eq!(received.delivery, ack["message"]["id"].as_str().unwrap(), "a message's delivery id is its own");
    assert_eq!(received.body["id"], ack["message"]["id"]);
    assert_eq!(received.body["tenant_id"], app.tenant.as_str());
    let data = &received.body["data"];
    assert_eq!((&data["room_id"], &data["message"]["content"]), (&room, &json!("lunch?")));
    assert_eq!(data["offline_recipients"], json!(["carol"]), "bob is online, alice sent it");
}

#[tokio::test]
async fn a_reported_message_reaches_the_backend_as_flagged() {
    let app = spawn_app().await;
    let mut receiver = Receiver::start().await;
    receiver.subscribe(&app, json!({ "events": ["message.flagged"] })).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": "buy cheap pills" })).await;
    bob.expect("new_message").await;
    let reported =
        bob.request(json!({ "type": "report_message", "message_id": sent["message"]["id"], "reason": "spam" })).await;
    assert_eq!(reported["type"], "message_reported", "{reported}");

    let received = receiver.next().await;
    assert_eq!((received.status, received.event.as_str()), (200, "message.flagged"));
    assert_eq!(received.delivery, reported["report"]["id"].as_str().unwrap(), "a report's delivery id is its own");
    let report = &received.body["data"]["report"];
    assert_eq!(
        (&report["reporter"], &report["reason"], &report["message"]["content"]),
        (&json!("bob"), &json!("spam"), &json!("buy cheap pills"))
    );
}

#[tokio::test]
async fn a_failing_backend_gets_the_same_event_again_until_it_takes_it() {
    let app = spawn_app().await;
    let mut receiver = Receiver::start().await;
    receiver.subscribe(&app, json!({})).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;

    receiver.fail_next(2);
    alice.request(json!({ "type": "ban_user", "room_id": room, "user_id": "bob", "reason": "spam" })).await;
    let attempts = [receiver.next().await, receiver.next().await, receiver.next().await];
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [500, 500, 200]);
    for attempt in &attempts {
        assert_eq!((attempt.event.as_str(), &attempt.delivery), ("member.banned", &attempts[0].delivery));
        assert_eq!(attempt.body, attempts[0].body, "the same body every time");
    }
    let data = &attempts[0].body["data"];
    assert_eq!(
        (&data["room_id"], &data["user_id"], &data["by"], &data["reason"]),
        (&json!(room), &json!("bob"), &json!("alice"), &json!("spam"))
    );
}

/// The sender's ack never waits for the backend, and at most `WEBHOOK_MAX_IN_FLIGHT` requests
/// are out at once.
#[tokio::test]
async fn a_slow_backend_holds_up_no_sender_and_gets_a_bounded_number_at_once() {
    let mut config = test_config().await;
    config.webhook_max_in_flight = 2;
    let app = spawn_app_with(config).await;
    let mut receiver = Receiver::start().await;
    receiver.subscribe(&app, json!({})).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;

    receiver.hold();
    let mut sent = Vec::new();
    for i in 0..5 {
        let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": format!("m{i}") })).await;
        assert_eq!(ack["type"], "message_sent", "acked while the backend holds its requests");
        sent.push(ack["message"]["id"].clone());
    }
    receiver.arrival().await;
    receiver.arrival().await;
    receiver.release();
    let mut delivered: Vec<Value> = Vec::new();
    for _ in 0..5 {
        let received = receiver.next().await;
        assert_eq!(received.status, 200);
        delivered.push(received.body["id"].clone());
    }
    delivered.sort_by_key(|v| v.to_string());
    sent.sort_by_key(|v| v.to_string());
    assert_eq!(delivered, sent, "every message once");
    assert_eq!(receiver.most_in_hand(), 2, "never more than the bound in flight");
}
