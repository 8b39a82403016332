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
    // The gateway's connection sweep checks connections through the front too: it must not take
    // the failures a test scripts for its posts (it would prune the wrong connection).
    config.typing_sweep_interval = Duration::from_secs(3600);
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
    alice.send(send(&room, "to a vanished socket")).await;
    // The ack, whose post failed, comes back as the response after the fan-out, which told
    // alice that bob went offline, as from `$disconnect`.
    let (told, ack) = (alice.expect("presence").await, alice.expect("message_sent").await);
    assert_eq!((&told["user_id"], &told["status"]), (&json!("bob"), &json!("offline")), "{told}");
    assert_eq!(ack["message"]["content"], "to a vanished socket");
    let mut redis = app.redis().await;
    assert!(!redis.exists::<_, bool>(format!("chat:conn:{{{}}}", bob.connection_id)).await.unwrap());
    let presence = alice.request(json!({ "type": "get_presence", "user_ids": ["bob"] })).await;
    assert_eq!(presence["users"][0]["status"], "offline");
    assert!(presence["users"][0]["last_seen"].is_string());
    println!("fault, management API answering 410: the connection pruned, its user offline");
}

/// A client whose network drops without a close frame (its socket at the gateway open and
/// silent) is found by the gateway's pings and disconnected: the others see it go offline, with
/// its last-seen time, within two ping intervals.
#[tokio::test]
async fn a_client_gone_silent_goes_offline_for_the_others() {
    let mut config = test_config().await;
    config.gateway_ping_interval = Duration::from_millis(300);
    let app = spawn_app_with(config).await;
    let proxy = FaultProxy::start(app.gateway.addr).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect_via(proxy.addr, "bob").await;
    app.room(&mut alice, &mut [&mut bob], json!({})).await;

    proxy.freeze();
    let presence = alice.expect("presence").await;
    assert_eq!(presence["user_id"], "bob", "{presence}");
    assert_eq!(presence["status"], "offline", "{presence}");
    assert!(presence["last_seen"].is_string());
    let asked = alice.request(json!({ "type": "get_presence", "user_ids": ["bob"] })).await;
    assert_eq!(asked["users"][0]["status"], "offline", "{asked}");
}

/// Waits until a statement of this test's database waits on a lock.
async fn until_blocked(app: &TestApp) {
    let db = &app.db().await;
    let waiting = || async move {
        let sql =
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
        db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) > 0
    };
    until("a statement waits on the lock", waiting).await;
}

/// Waits, polling, until `done` answers true (at most `integration_tests::WAIT`).
async fn until<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + integration_tests::WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Redis failing between a send's commit and its fan-out: the sender has its ack (the message
/// is stored), the recent-message cache that missed the message does not serve a page without
/// it, and a retry with the same client_msg_id once Redis is back fans it out, once.
#[tokio::test]
async fn redis_failing_after_the_commit_loses_no_delivery_and_no_cached_page() {
    let mut config = test_config().await;
    let proxy = FaultProxy::start(address(&config.redis_url).await).await;
    config.redis_url = proxy.url(&config.redis_url);
    config.redis_timeout = Duration::from_millis(500);
    // A frame's reply then means the fan-out of the frame before it is over.
    config.gateway_frame_concurrency = 1;
    let app = spawn_app_with(config).await;
    let (mut alice, mut bob, room) = chat(&app).await;
    let newest = |page: &Value| page["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    alice.request(send(&room, "cached")).await;
    bob.expect("new_message").await;
    let history = json!({ "type": "get_history", "room_id": room });
    assert_eq!(newest(&bob.request(history.clone()).await), "cached", "the newest page, now cached");

    // The send waits on the database while Redis goes down, then commits.
    let mut blocker = app.db().await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE chat_messages IN ACCESS EXCLUSIVE MODE").await.unwrap();
    alice.send(send(&room, "after the commit")).await;
    until_blocked(&app).await;
    proxy.down();
    lock.rollback().await.unwrap();
    let ack = alice.expect("message_sent").await;
    assert_eq!(ack["duplicate"], false, "{ack}");
    alice.request(json!({ "type": "ping" })).await;
    proxy.up();

    assert_eq!(newest(&bob.request(history.clone()).await), "after the commit", "not the cached page without it");
    let again = alice.request(send(&room, "after the commit")).await;
    assert_eq!((&again["duplicate"], &again["message"]["id"]), (&json!(true), &ack["message"]["id"]));
    assert_eq!(bob.expect("new_message").await["message"]["id"], ack["message"]["id"]);
    let once_more = alice.request(send(&room, "after the commit")).await;
    assert_eq!(once_more["duplicate"], true);
    bob.assert_quiet().await;
    assert_eq!(stored(&app, "after the commit").await, 1);

    // An edit whose cache invalidation and fan-out fail after its commit: acknowledged all the
    // same, and the cached page (refilled just above) is not served without it.
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE chat_messages IN ACCESS EXCLUSIVE MODE").await.unwrap();
    alice.send(json!({ "type": "edit_message", "message_id": ack["message"]["id"], "content": "edited" })).await;
    until_blocked(&app).await;
    proxy.down();
    lock.rollback().await.unwrap();
    assert_eq!(alice.expect("message_edited").await["message"]["content"], "edited");
    alice.request(json!({ "type": "ping" })).await;
    proxy.up();
    assert_eq!(newest(&bob.request(history).await), "edited");
    report("Redis failing between a commit and its fan-out", 0, 1, 1, 1);
}

/// The gateway with as many frames in hand as it takes (one here, held by a send waiting on a
/// lock): another frame is refused at once with `service_unavailable` and `retry_after_ms`, and
/// sent again once there is room it is stored and delivered once; the held one completes.
#[tokio::test]
async fn an_overloaded_gateway_refuses_at_once_and_loses_nothing() {
    let mut config = test_config().await;
    config.gateway_max_in_flight = 1;
    config.db_timeout = Duration::from_secs(10);
    let app = spawn_app_with(config).await;
    let (mut alice, mut bob, room) = chat(&app).await;
    let gateway = &app.gateway.gateway;
    // The setup's last fan-out may still hold the one slot.
    until("no frame in hand", || std::future::ready(gateway.frames_in_flight() == 0)).await;

    let mut blocker = app.db().await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE chat_messages IN ACCESS EXCLUSIVE MODE").await.unwrap();
    alice.send(json!({ "request_id": "held", "type": "send_message", "room_id": room, "content": "held" })).await;
    until_blocked(&app).await;

    let refused = bob.request(send(&room, "refused first")).await;
    assert_eq!(refused["code"], "service_unavailable", "{refused}");
    assert!(refused["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{refused}");

    lock.rollback().await.unwrap();
    let held = alice.expect("message_sent").await;
    assert_eq!(held["message"]["content"], "held");
    assert_eq!(bob.expect("new_message").await["message"]["content"], "held");
    assert_eq!(stored(&app, "refused first").await, 0);
    until("no frame in hand", || std::future::ready(gateway.frames_in_flight() == 0)).await;
    let (ack, _) = send_until_acked(&mut bob, send(&room, "refused first")).await;
    assert_eq!(alice.expect("new_message").await["message"]["id"], ack["message"]["id"]);
    assert_eq!((stored(&app, "held").await, stored(&app, "refused first").await), (1, 1));
}
