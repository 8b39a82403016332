//! Failing dependencies: Redis down, Postgres down, Postgres slow, the management API answering
//! 410, 429 or 500. Each stops or blocks the real service mid-conversation and checks that the
//! client gets a clear error, that nothing acknowledged is lost, that nothing is delivered twice
//! after a retry, and that service resumes without restarting anything.

use std::net::SocketAddr;
use std::time::Duration;

use integration_tests::faults::{Answer, FaultProxy, ManagementFront};
use integration_tests::{spawn_app_with, test_config, Client, TestApp};
use redis::AsyncCommands;
use serde_json::{json, Value};

async fn address(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host.split(['/', '?']).next().unwrap();
    tokio::net::lookup_host(host).await.unwrap().next().unwrap()
}

fn send(room: &str, content: &str) -> Value {
    json!({ "type": "send_message", "room_id": room, "content": content, "client_msg_id": content })
}

/// Sends until acknowledged, as a client retrying after errors would; returns the ack and the
/// errors met on the way.
async fn send_until_acked(client: &mut Client, frame: Value) -> (Value, Vec<String>) {
    let mut errors = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = client.request(frame.clone()).await;
        if reply["type"] == "message_sent" {
            return (reply, errors);
        }
        errors.push(reply["code"].as_str().unwrap_or_default().to_string());
        assert!(tokio::time::Instant::now() < deadline, "never acknowledged: {errors:?}");
        // A client's retry backoff, not synchronisation: the test waits for the ack above.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The suite's figures, one line per fault, printed once its assertions have passed.
fn report(fault: &str, refused: usize, retries: usize, stored: i64, delivered: usize) {
    println!(
        "fault, {fault}: {refused} refused while it lasted, {retries} retries after, \
         the message stored {stored}x and delivered {delivered}x (nothing lost or doubled)"
    );
}

async fn chat(app: &TestApp) -> (Client, Client, String) {
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    (alice, bob, room)
}

async fn stored(app: &TestApp, content: &str) -> i64 {
    let count =
        app.db().await.query_one("SELECT count(*) FROM chat_messages WHERE content = $1", &[&content]).await.unwrap();
    count.get(0)
}

#[tokio::test]
async fn redis_down_gives_clear_errors_and_service_resumes_when_it_is_back() {
    let mut config = test_config().await;
    let proxy = FaultProxy::start(address(&config.redis_url).await).await;
    config.redis_url = proxy.url(&config.redis_url);
    config.redis_timeout = Duration::from_millis(500);
    let app = spawn_app_with(config).await;
    let (mut alice, mut bob, room) = chat(&app).await;
    alice.request(send(&room, "before")).await;
    bob.expect("new_message").await;

    proxy.down();
    let refused = alice.request(send(&room, "during")).await;
    assert_eq!(refused["code"], "service_unavailable", "{refused}");
    let (status, health) = app.get("health", None).await;
    assert_eq!(
        (status, health["status"].as_str(), health["redis_connected"].as_bool()),
        (503, Some("degraded"), Some(false))
    );
    let refused = app.open(&app.token("carol")).await.unwrap_err();
    assert!(matches!(refused, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 503), "{refused}");

    proxy.up();
    let (ack, errors) = send_until_acked(&mut alice, send(&room, "during")).await;
    let delivered = bob.expect("new_message").await;
    assert_eq!(delivered["message"]["id"], ack["message"]["id"]);
    bob.assert_quiet().await;
    assert_eq!(stored(&app, "during").await, 1);
    assert_eq!(app.get("health", None).await.0, 200);
    report("Redis down (a send, a connect)", 2, errors.len(), 1, 1);
}

#[tokio::test]
async fn postgres_down_loses_nothing_acknowledged_and_retries_store_once() {
    let mut config = test_config().await;
    let proxy = FaultProxy::start(address(&config.database_url).await).await;
    config.database_url = proxy.url(&config.database_url);
    config.db_timeout = Duration::from_secs(1);
    let app = spawn_app_with(config).await;
    let (mut alice, mut bob, room) = chat(&app).await;
    alice.request(send(&room, "acked before")).await;
    bob.expect("new_message").await;

    proxy.down();
    let refused = alice.request(send(&room, "sent during")).await;
    assert_eq!(refused["code"], "service_unavailable", "{refused}");
    let (status, health) = app.get("health", None).await;
    assert_eq!((status, health["database_connected"].as_bool()), (503, Some(false)));

    proxy.up();
    let (ack, errors) = send_until_acked(&mut alice, send(&room, "sent during")).await;
    assert!(errors.iter().all(|e| e == "service_unavailable"), "{errors:?}");
    assert_eq!(bob.expect("new_message").await["message"]["id"], ack["message"]["id"]);
    // The same client_msg_id again: the stored message, nothing sent twice.
    let again = alice.request(send(&room, "sent during")).await;
    assert_eq!((again["duplicate"].as_bool(), &again["message"]["id"]), (Some(true), &ack["message"]["id"]));
    bob.assert_quiet().await;
    assert_eq!((stored(&app, "acked before").await, stored(&app, "sent during").await), (1, 1));
    assert_eq!(app.get("health", None).await.0, 200);
    report("Postgres down", 1, errors.len(), 1, 1);
}

#[tokio::test]
async fn postgres_slow_times_out_cleanly_and_the_retry_is_stored_and_delivered_once() {
    let mut config = test_config().await;
    config.db_timeout = Duration::from_secs(1);
    let app = spawn_app_with(config).await;
    let (mut alice, mut bob, room) = chat(&app).await;

    // Another session holds the messages table: every insert waits past the statement timeout.
    let mut blocker = app.db().await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE chat_messages IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let refused = alice.request(send(&room, "slow")).await;
    assert_eq!(refused["code"], "service_unavailable", "{refused}");
    lock.rollback().await.unwrap();

    let (ack, errors) = send_until_acked(&mut alice, send(&room, "slow")).await;
    assert_eq!(ack["duplicate"], false, "the timed-out attempt stored nothing");
    assert_eq!(bob.expect("new_message").await["message"]["content"], "slow");
    bob.assert_quiet().await;
    assert_eq!(stored(&app, "slow").await, 1);
    report("Postgres slow (statement timeout)", 1, errors.len(), 1, 1);
}

/// A gateway whose handlers post through a management front that can fail on demand.
async fn app_behind_front() -> (TestApp, ManagementFront) {
    let front = ManagementFront::start().await;
    let mut config = test_config().await;
    config.management_endpoint = Some(front.endpoint.clone());
    config.gateway_delivery = shared::config::GatewayDelivery::Sdk;
    config.prune_grace = Duration::ZERO;
    let app = spawn_app_with(config).await;
    front.point_at(app.gateway.management_endpoint());
    (app, front)
}

#[tokio::test]
async fn posts_answered_429_or_500_are_retried_and_delivered_once() {
    let (app, front) = app_behind_front().await;
    let (mut alice, mut bob, room) = chat(&app).await;
    for status in [500, 429] {
        front.answer(Answer::Fail { status, times: 2 });
        let content = format!("after {status}");
        alice.request(send(&room, &content)).await;
        assert_eq!(bob.expect("new_message").await["message"]["content"], content.as_str());
        assert_eq!(front.failed(), 2, "status {status}");
        bob.assert_quiet().await;
        report(&format!("management API answering {status} twice"), 0, front.failed(), 1, 1);
    }
}

#[tokio::test]
async fn a_management_api_that_keeps_failing_loses_no_stored_message() {
    let (app, front) = app_behind_front().await;
    let (mut alice, mut bob, room) = chat(&app).await;
    front.answer(Answer::Fail { status: 500, times: 1000 });
    let ack = alice.request(send(&room, "while failing")).await;
    assert_eq!(ack["type"], "message_sent", "stored, so acknowledged");
    front.answer(Answer::Pass);
    alice.request(send(&room, "after recovery")).await;
    assert_eq!(bob.expect("new_message").await["message"]["content"], "after recovery");
    // The missed message is in the history; the connection was kept.
    let history = bob.request(json!({ "type": "get_history", "room_id": room })).await;
    let contents: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["while failing", "after recovery"]);
    report("management API failing on every post", 0, 0, 1, 0);
}

#[tokio::test]
async fn a_connection_answering_gone_is_pruned_and_its_user_goes_offline() {
    let (app, front) = app_behind_front().await;
    let (mut alice, bob, room) = chat(&app).await;
    // Posts go in order: alice's ack first (it comes back as the response instead), then bob's.
    front.answer(Answer::Fail { status: 410, times: 2 });
    alice.request(send(&room, "to a vanished socket")).await;
    let mut redis = app.redis().await;
    assert!(!redis.exists::<_, bool>(format!("chat:conn:{{{}}}", bob.connection_id)).await.unwrap());
    let presence = alice.request(json!({ "type": "get_presence", "user_ids": ["bob"] })).await;
    assert_eq!(presence["users"][0]["status"], "offline");
    assert!(presence["users"][0]["last_seen"].is_string());
    println!("fault, management API answering 410: the connection pruned, its user offline");
}
