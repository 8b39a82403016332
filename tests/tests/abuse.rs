//! Hostile clients: rate limits, strict input, forged identities and tenant isolation.

use integration_tests::{contract, spawn_app_with, test_config, Client, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use shared::ratelimit::{Rate, RateLimits};
use tokio_tungstenite::tungstenite::Error as WsError;

fn code(frame: &Value) -> &str {
    assert_eq!(frame["type"], "error", "expected an error, got {frame}");
    frame["code"].as_str().unwrap()
}

async fn app_with_limits(limits: RateLimits) -> TestApp {
    let mut config = test_config().await;
    config.rate_limits = limits;
    spawn_app_with(config).await
}

/// A limit that does not refill within a test: exactly `burst` tokens.
fn only(burst: u32) -> Rate {
    Rate::new(0.001, burst)
}

fn refused(
    result: Result<integration_tests::Ws, WsError>,
) -> tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>> {
    match result {
        Err(WsError::Http(response)) => *response,
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("connection was accepted"),
    }
}

#[tokio::test]
async fn messages_over_the_limit_get_rate_limited_with_a_retry_time_and_are_not_stored() {
    let app = app_with_limits(RateLimits { messages: only(3), ..RateLimits::OFF }).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    for i in 0..3 {
        let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": format!("m{i}") })).await;
        assert_eq!(ack["type"], "message_sent");
    }
    let limited = alice.request(json!({ "type": "send_message", "room_id": room, "content": "one too many" })).await;
    assert_eq!(code(&limited), "rate_limited");
    assert!(limited["retry_after_ms"].as_u64().unwrap() > 0);
    assert_eq!(app.scalar("SELECT count(*) FROM chat_messages").await, 3);
    // Other frames draw from their own bucket.
    assert_eq!(alice.request(json!({ "type": "get_history", "room_id": room })).await["type"], "history");
}

#[tokio::test]
async fn typing_frames_have_their_own_limit() {
    let app = app_with_limits(RateLimits { typing: only(2), ..RateLimits::OFF }).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    alice.send(json!({ "type": "typing_start", "room_id": room })).await;
    alice.send(json!({ "type": "typing_stop", "room_id": room })).await;
    alice.send(json!({ "type": "typing_start", "room_id": room })).await;
    assert_eq!(code(&alice.expect("error").await), "rate_limited");
    assert_eq!(
        alice.request(json!({ "type": "send_message", "room_id": room, "content": "fine" })).await["type"],
        "message_sent"
    );
}

#[tokio::test]
async fn connection_attempts_are_limited_per_user_and_per_ip_with_retry_after() {
    let app = app_with_limits(RateLimits { connects_per_user: only(2), ..RateLimits::OFF }).await;
    let _one = app.connect("alice").await;
    let _two = app.connect("alice").await;
    let response = refused(app.open(&app.token("alice")).await);
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_some());
    let _bob = app.connect("bob").await;

    // Buckets per IP span tenants and runs: this test's client gets an address of its own.
    let app = app_with_limits(RateLimits { connects_per_ip: only(3), ..RateLimits::OFF }).await;
    let random_ip = || {
        let [b, c, d, ..] = uuid::Uuid::new_v4().into_bytes();
        std::net::Ipv4Addr::new(127, b, c, d.max(2))
    };
    let ip = random_ip();
    app.open_from(ip, &app.token("a")).await.unwrap();
    assert_eq!(refused(app.open_from(ip, "forged-token").await).status(), 401);
    app.open_from(ip, &app.token("b")).await.unwrap();
    // The IP's budget is spent, whatever the token; other addresses are unaffected.
    assert_eq!(refused(app.open_from(ip, &app.token("c")).await).status(), 429);
    assert_eq!(refused(app.open_from(ip, "forged-token").await).status(), 429);
    app.open_from(random_ip(), &app.token("c")).await.unwrap();
}

#[tokio::test]
async fn limits_hold_across_instances_because_they_live_in_redis() {
    let mut config = test_config().await;
    config.rate_limits = RateLimits { messages: only(3), ..RateLimits::OFF };
    let first = spawn_app_with(config.clone()).await;
    let mut second = spawn_app_with(config).await;
    second.tenant = first.tenant.clone();
    let mut on_first = first.connect("alice").await;
    let room = first.room(&mut on_first, &mut [], json!({})).await;
    let mut on_second = second.connect("alice").await;
    let send = |content: &str| json!({ "type": "send_message", "room_id": room, "content": content });
    assert_eq!(on_first.request(send("1")).await["type"], "message_sent");
    assert_eq!(on_second.request(send("2")).await["type"], "message_sent");
    assert_eq!(on_first.request(send("3")).await["type"], "message_sent");
    assert_eq!(code(&on_second.request(send("4")).await), "rate_limited");
}

#[tokio::test]
async fn strict_input_gets_precise_errors() {
    let app = app_with_limits(RateLimits::OFF).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    let cases = [
        (json!({ "type": "send_message", "room_id": room, "content": "x", "sender_id": "bob" }), "invalid_frame"),
        (json!({ "type": "join_room", "room_id": room, "tenant_id": "other" }), "invalid_frame"),
        (json!({ "type": "send_message", "room_id": room, "content": "x".repeat(10_001) }), "validation_error"),
        (json!({ "type": "create_room", "room_type": "group", "name": "n".repeat(101) }), "validation_error"),
        (
            json!({ "type": "create_room", "room_type": "group", "name": "ok", "participants": [""] }),
            "validation_error",
        ),
        (json!({ "type": "get_thread", "message_id": 12 }), "invalid_frame"),
        (json!({ "type": "mute_user", "room_id": room, "user_id": "bob", "duration_seconds": -1 }), "invalid_frame"),
        (json!({ "type": "get_presence", "user_ids": vec!["u"; 101] }), "validation_error"),
        (json!({ "type": "send_message", "room_id": room, "content": "nul \u{0} byte" }), "invalid_frame"),
        (json!({ "type": "create_room", "room_type": "group", "name": "a\u{0}b" }), "invalid_frame"),
    ];
    for (frame, expected) in cases {
        // JSON Schema cannot refuse NUL characters; the rest it refuses as the server does.
        let nul = frame.to_string().contains("\\u0000");
        assert!(nul || contract::refuses(&frame), "the schemas take {frame}");
        let reply = alice.request_invalid(frame.clone()).await;
        assert_eq!(code(&reply), expected, "{frame}");
    }
    let nested = format!("{{\"type\":\"ping\",\"x\":{}{}}}", "[".repeat(500), "]".repeat(500));
    alice.send_text(nested).await;
    assert_eq!(code(&alice.expect("error").await), "invalid_json");
    // Past API Gateway's 128 KB the connection is closed, as API Gateway does.
    alice.send_text(format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(130 * 1024))).await;
    let next = futures::StreamExt::next(&mut alice.ws).await;
    assert!(!matches!(next, Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_)))), "{next:?}");
    assert_eq!(app.scalar("SELECT count(*) FROM chat_messages").await, 0);
}

/// Every frame a user of tenant B can aim at tenant A's ids. Each must fail without a trace of A.
fn attacks(room: &str, message: &str, own_room: &str) -> Vec<Value> {
    let user = "alice";
    vec![
        json!({ "type": "join_room", "room_id": room }),
        json!({ "type": "leave_room", "room_id": room }),
        json!({ "type": "send_message", "room_id": room, "content": "hi" }),
        json!({ "type": "send_message", "room_id": own_room, "content": "hi", "reply_to": message }),
        json!({ "type": "typing_start", "room_id": room }),
        json!({ "type": "typing_stop", "room_id": room }),
        json!({ "type": "mark_read", "room_id": room }),
        json!({ "type": "get_history", "room_id": room }),
        json!({ "type": "update_room", "room_id": room, "name": "pwned" }),
        json!({ "type": "invite", "room_id": room, "user_ids": ["mallory"] }),
        json!({ "type": "remove_participant", "room_id": room, "user_id": user }),
        json!({ "type": "set_role", "room_id": room, "user_id": "mallory", "role": "admin" }),
        json!({ "type": "mute_user", "room_id": room, "user_id": user }),
        json!({ "type": "unmute_user", "room_id": room, "user_id": user }),
        json!({ "type": "ban_user", "room_id": room, "user_id": user }),
        json!({ "type": "unban_user", "room_id": room, "user_id": user }),
        json!({ "type": "edit_message", "message_id": message, "content": "pwned" }),
        json!({ "type": "delete_message", "message_id": message }),
        json!({ "type": "get_edit_history", "message_id": message }),
        json!({ "type": "add_reaction", "message_id": message, "emoji": "💀" }),
        json!({ "type": "remove_reaction", "message_id": message, "emoji": "👍" }),
        json!({ "type": "get_thread", "message_id": message }),
        json!({ "type": "get_receipts", "message_id": message }),
        json!({ "type": "pin_message", "message_id": message }),
        json!({ "type": "unpin_message", "message_id": message }),
        json!({ "type": "list_pins", "room_id": room }),
        json!({ "type": "freeze_room", "room_id": room }),
        json!({ "type": "unfreeze_room", "room_id": room }),
        json!({ "type": "set_slow_mode", "room_id": room, "seconds": 60 }),
        json!({ "type": "report_message", "message_id": message, "reason": "spam" }),
        json!({ "type": "list_reports", "room_id": room }),
    ]
}

#[tokio::test]
async fn a_user_of_another_tenant_reaches_nothing_of_tenant_a() {
    let config = test_config().await;
    let a = spawn_app_with(config.clone()).await;
    let mut b = spawn_app_with(config).await;
    b.tenant = format!("{}-b", a.tenant);
    let mut alice = a.connect("alice").await;
    let mut bob = a.connect("bob").await;
    let room = a.room(&mut alice, &mut [&mut bob], json!({ "name": "Tenant A secrets" })).await;
    let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": "A's secret" })).await;
    bob.expect("new_message").await;
    let message = sent["message"]["id"].as_str().unwrap().to_string();
    alice.request(json!({ "type": "add_reaction", "message_id": message, "emoji": "👍" })).await;
    bob.expect("reaction_added").await;

    let mut mallory: Client = b.connect("mallory").await;
    let own_room = b.room(&mut mallory, &mut [], json!({ "name": "B's room" })).await;
    let mut attempts = 0;
    for frame in attacks(&room, &message, &own_room) {
        let reply = mallory.request(frame.clone()).await;
        attempts += 1;
        assert_eq!(code(&reply), "not_found", "{frame} -> {reply}");
        assert!(!reply.to_string().contains("A's secret") && !reply.to_string().contains("Tenant A"));
    }
    // Reading ids of A's messages in B's own room marks nothing.
    let read = mallory.request(json!({ "type": "mark_read", "room_id": own_room, "message_ids": [message] })).await;
    attempts += 1;
    assert_eq!(read["message_ids"], json!([]));
    // A's users look unknown from B, and B's rooms hold none of A's.
    let presence = mallory.request(json!({ "type": "get_presence", "user_ids": ["alice", "bob"] })).await;
    attempts += 1;
    assert!(presence["users"].as_array().unwrap().iter().all(|u| u["status"] == "offline" && u["last_seen"].is_null()));
    let rooms = mallory.request(json!({ "type": "list_rooms" })).await;
    attempts += 1;
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 1);
    let unread = mallory.request(json!({ "type": "get_unread" })).await;
    attempts += 1;
    assert!(unread["rooms"].as_array().unwrap().is_empty());
    // Creating a direct room with "alice" makes one with B's alice, not A's.
    let direct =
        mallory.request(json!({ "type": "create_room", "room_type": "direct", "participants": ["alice"] })).await;
    attempts += 1;
    assert_ne!(direct["room"]["id"], room.as_str());

    // Blocks and reports stay in their tenant: B's mallory blocking "alice" blocks B's alice;
    // A's report is neither listed nor resolved from B, by a member or a tenant admin.
    mallory.request(json!({ "type": "block_user", "user_id": "alice" })).await;
    alice.request(json!({ "type": "send_message", "room_id": room, "content": "still A's" })).await;
    let plain = bob.expect("new_message").await;
    attempts += 1;
    assert!(plain["message"].get("sender_blocked").is_none(), "{plain}");
    assert_eq!(alice.request(json!({ "type": "list_blocked" })).await["users"], json!([]));
    let reported = bob.request(json!({ "type": "report_message", "message_id": message, "reason": "test" })).await;
    alice.expect("message_reported").await;
    let report_id = reported["report"]["id"].clone();
    let (mut b_boss, _) = b.connect_as("boss", &["admin"]).await;
    for client in [&mut mallory, &mut b_boss] {
        let reply =
            client.request(json!({ "type": "resolve_report", "report_id": report_id, "action": "dismiss" })).await;
        attempts += 1;
        assert_eq!(code(&reply), "not_found", "{reply}");
        let listed = client.request(json!({ "type": "list_reports" })).await;
        attempts += 1;
        assert_eq!(listed["reports"], json!([]), "{listed}");
    }

    // The HTTP routes, with B's tokens (a member's, and a tenant admin's for metrics).
    let mallory_token = b.token("mallory");
    for path in [format!("rooms/{room}/messages"), format!("export?room_id={room}&format=jsonl")] {
        let (status, body) = b.get_with(&path, Some(mallory_token.clone())).await;
        attempts += 1;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{path}");
    }
    let (status, found) = b.get("search?q=secret", Some("mallory")).await;
    attempts += 1;
    assert_eq!(status, 200);
    assert!(!found.to_string().contains("A's secret"), "{found}");
    let b_admin = shared::auth::mint_with_roles(&b.secret, &b.tenant, "boss", None, 60, &["admin"]);
    let (status, metrics) = b.get_with("metrics", Some(b_admin.clone())).await;
    attempts += 1;
    assert_eq!(status, 200);
    assert!(!metrics.to_string().contains(&room) && !metrics.to_string().contains("Tenant A"), "{metrics}");
    // A's webhook endpoint: B's admin neither sees nor removes it, and B's own goes nowhere near A.
    let a_admin = Some(a.token_with_roles("boss", &["admin"]));
    let a_hook = json!({ "url": "https://hooks.tenant-a.example/chat" });
    assert_eq!(a.http(Method::PUT, "webhook", a_admin.clone(), Some(a_hook)).await.0, 200);
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = b.http(method, "webhook", Some(b_admin.clone()), None).await;
        attempts += 1;
        assert_eq!(status, 404, "{body}");
    }
    let (status, _) = a.get_with("webhook", a_admin).await;
    assert_eq!(status, 200, "A's endpoint is still there");

    alice.assert_quiet().await;
    bob.assert_quiet().await;
    let history = alice.request(json!({ "type": "get_history", "room_id": room })).await;
    assert_eq!(history["messages"][0]["content"], "A's secret");
    assert_eq!(history["messages"][0]["reactions"][0]["users"], json!(["alice"]));
    println!("tenant isolation: {attempts} cross-tenant attempts over WebSocket and HTTP, all refused or empty");
}

/// Tenant `T` user `b/c` and tenant `T/b` user `c` once shared a Redis key (`T/b/c`): the second
/// received the first's frames and counted as them online.
#[tokio::test]
async fn ids_that_join_into_the_same_string_stay_apart() {
    let config = test_config().await;
    let a = spawn_app_with(config.clone()).await;
    let mut b = spawn_app_with(config).await;
    b.tenant = format!("{}/b", a.tenant);
    let mut alice = a.connect("alice").await;
    let mut slash = a.connect("b/c").await;
    let mut c = b.connect("c").await;
    let room = a.room(&mut alice, &mut [&mut slash], json!({ "name": "A only" })).await;
    let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": "for b/c of A" })).await;
    assert_eq!(sent["type"], "message_sent");
    assert_eq!(slash.expect("new_message").await["message"]["content"], "for b/c of A");
    c.assert_quiet().await;

    // The other way round: B's c is told of B's room, A's b/c is not.
    let mut carol = b.connect("carol").await;
    let b_room = b.room(&mut carol, &mut [&mut c], json!({ "name": "B only" })).await;
    carol.request(json!({ "type": "send_message", "room_id": b_room, "content": "for c of B" })).await;
    assert_eq!(c.expect("new_message").await["message"]["content"], "for c of B");
    slash.assert_quiet().await;

    // Presence: with A's b/c gone, B's c being online does not make them look online.
    drop(slash);
    let offline = loop {
        let presence = alice.recv().await;
        if presence["type"] == "presence" && presence["user_id"] == "b/c" && presence["status"] == "offline" {
            break presence;
        }
    };
    assert_eq!(offline["status"], "offline");
    let presence = alice.request(json!({ "type": "get_presence", "user_ids": ["b/c"] })).await;
    assert_eq!(presence["users"][0]["status"], "offline", "{presence}");
}

/// base64url without padding, as JWTs use.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    bytes
        .chunks(3)
        .flat_map(|chunk| {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32) << (8 * (3 - chunk.len()));
            (0..=chunk.len()).map(move |i| ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char)
        })
        .collect()
}

/// Every kind of bad token: each must be refused on connect and over HTTP.
fn bad_tokens(app: &TestApp) -> Vec<(&'static str, String)> {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut c = json!({ "sub": "mallory", "tenant_id": app.tenant, "exp": now + 600 });
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let key = EncodingKey::from_secret(app.secret.as_bytes());
    let hs256 = |c: Value| encode(&Header::new(Algorithm::HS256), &c, &key).unwrap();
    let unsigned = |alg: &str, c: Value| {
        let head = b64(json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes());
        format!("{head}.{}", b64(c.to_string().as_bytes()))
    };
    // RS/HS confusion: claims RS256 but is signed with the shared secret as an HMAC key.
    let confused = {
        let body = unsigned("RS256", claims(json!({})));
        let signature = jsonwebtoken::crypto::sign(body.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{body}.{signature}")
    };
    vec![
        ("expired", hs256(claims(json!({ "exp": now - 120 })))),
        ("not yet valid", hs256(claims(json!({ "nbf": now + 600 })))),
        ("alg none", format!("{}.", unsigned("none", claims(json!({}))))),
        ("RS/HS confusion", confused),
        ("HS512", encode(&Header::new(Algorithm::HS512), &claims(json!({})), &key).unwrap()),
        ("wrong secret", shared::auth::mint("not-the-secret", &app.tenant, "mallory", None, 600)),
        ("no tenant", hs256(json!({ "sub": "mallory", "exp": now + 600 }))),
        ("no expiry", hs256(json!({ "sub": "mallory", "tenant_id": app.tenant }))),
        // Once stored comma-joined, "x,admin" made a tenant admin.
        ("role with a separator", hs256(claims(json!({ "roles": ["x,admin"] })))),
        ("control character in the name", hs256(claims(json!({ "name": "Mallory\u{7}" })))),
        ("malformed", "abc.def".to_string()),
        ("garbage", "💥".to_string()),
        ("empty", String::new()),
    ]
}

#[tokio::test]
async fn bad_tokens_are_refused_on_connect_and_over_http() {
    let app = app_with_limits(RateLimits::OFF).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    let mut attempts = 0;
    for (kind, token) in bad_tokens(&app) {
        let url_safe: String = token.chars().filter(|c| c.is_ascii()).collect();
        assert_eq!(refused(app.open(&url_safe).await).status(), 401, "{kind} on connect");
        let (status, body) = app.get_with(&format!("rooms/{room}/messages"), Some(url_safe)).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{kind} over HTTP");
        attempts += 2;
    }
    println!("authentication: {attempts} attempts with bad tokens, all refused");
}

/// A token with `extra` claims over a valid one for `user` of the app's tenant.
fn token_with(app: &TestApp, user: &str, extra: Value) -> String {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let mut claims = json!({ "sub": user, "tenant_id": app.tenant, "exp": chrono::Utc::now().timestamp() + 600 });
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(app.secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn audience_and_issuer_are_required_when_configured() {
    let mut config = test_config().await;
    config.jwt_audience = Some("chat-api".into());
    config.jwt_issuer = Some("https://idp.example".into());
    let app = spawn_app_with(config).await;
    let right = token_with(&app, "alice", json!({ "aud": "chat-api", "iss": "https://idp.example" }));
    let (mut alice, _) = app.connect_with("alice", &right).await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    assert_eq!(app.get_with(&format!("rooms/{room}/messages"), Some(right)).await.0, 200);
    let wrong = [
        ("another audience", json!({ "aud": "other-api", "iss": "https://idp.example" })),
        ("another issuer", json!({ "aud": "chat-api", "iss": "https://evil.example" })),
        ("no audience", json!({ "iss": "https://idp.example" })),
        ("no issuer", json!({ "aud": "chat-api" })),
        ("audience list without ours", json!({ "aud": ["a", "b"], "iss": "https://idp.example" })),
    ];
    let mut attempts = 0;
    for (kind, extra) in wrong {
        let token = token_with(&app, "mallory", extra);
        assert_eq!(refused(app.open(&token).await).status(), 401, "{kind} on connect");
        let (status, body) = app.get_with(&format!("rooms/{room}/messages"), Some(token.clone())).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{kind} over HTTP");
        let refresh = alice.request(json!({ "type": "refresh_token", "token": token })).await;
        assert_eq!(code(&refresh), "unauthorized", "{kind} as a refresh");
        attempts += 3;
    }
    println!("audience and issuer: {attempts} attempts with the wrong or no aud/iss, all refused");
}

#[tokio::test]
async fn a_session_ends_when_its_token_expires_unless_refreshed_on_the_connection() {
    let app = app_with_limits(RateLimits::OFF).await;
    // Tokens that expired 2 s ago: accepted at the door within the 5 s allowance for clock
    // skew, so these sessions end 3 s from now, and the test waits for that moment to pass.
    let exp = chrono::Utc::now().timestamp() - 2;
    let short = |user: &str| token_with(&app, user, json!({ "exp": exp }));
    let (mut alice, _) = app.connect_with("alice", &short("alice")).await;
    let (mut bob, _) = app.connect_with("bob", &short("bob")).await;

    let mut attempts = 0;
    let other_tenant = shared::auth::mint(&app.secret, &format!("{}-b", app.tenant), "alice", Some("Alice"), 3600);
    let expired = token_with(&app, "alice", json!({ "exp": exp - 60 }));
    for (kind, token) in [
        ("another user", app.token("bob")),
        ("another tenant", other_tenant),
        ("expired", expired),
        ("garbage", "x.y.z".into()),
    ] {
        let reply = alice.request(json!({ "type": "refresh_token", "token": token })).await;
        assert_eq!(code(&reply), "unauthorized", "{kind}: {reply}");
        attempts += 1;
    }
    let fresh = shared::auth::mint_with_roles(&app.secret, &app.tenant, "alice", Some("Alice Two"), 3600, &["admin"]);
    let refreshed = alice.request(json!({ "type": "refresh_token", "token": fresh })).await;
    assert_eq!(refreshed["type"], "token_refreshed", "{refreshed}");
    let expires_at: chrono::DateTime<chrono::Utc> = refreshed["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires_at > chrono::Utc::now() + chrono::Duration::minutes(59));

    let end = exp + shared::auth::LEEWAY_SECS as i64;
    let wait_ms = end * 1000 - chrono::Utc::now().timestamp_millis() + 100;
    tokio::time::sleep(std::time::Duration::from_millis(wait_ms.max(0) as u64)).await;

    // Bob's token ran out: his next frame is refused and his connection closed.
    let reply = bob.request(json!({ "type": "ping" })).await;
    assert_eq!((code(&reply), reply["message"].as_str()), ("unauthorized", Some("token expired")));
    let next = futures::StreamExt::next(&mut bob.ws).await;
    assert!(
        matches!(next, None | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | Some(Err(_))),
        "{next:?}"
    );
    attempts += 1;
    // Alice's session goes on under the fresh token, with its name and roles.
    let room = alice.request(json!({ "type": "create_room", "name": "After", "room_type": "group" })).await;
    assert_eq!(room["participants"][0]["display_name"], "Alice Two", "{room}");
    let announced = alice.request(json!({ "type": "announce", "content": "still here" })).await;
    assert_eq!(announced["type"], "announcement", "{announced}");
    println!(
        "session expiry: {attempts} frames with a foreign, expired or forged refresh or after expiry, all refused"
    );
}

#[tokio::test]
async fn a_muted_member_cannot_edit_or_react_and_moderators_cannot_delete_an_admins_messages() {
    let app = app_with_limits(RateLimits::OFF).await;
    let mut alice = app.connect("alice").await;
    let mut molly = app.connect("molly").await;
    let mut carol = app.connect("carol").await;
    let room = app.room(&mut alice, &mut [&mut molly, &mut carol], json!({})).await;
    let role =
        alice.request(json!({ "type": "set_role", "room_id": room, "user_id": "molly", "role": "moderator" })).await;
    assert_eq!(role["type"], "role_changed");
    let send = |content: &str| json!({ "type": "send_message", "room_id": room, "content": content });
    let of = |reply: Value| reply["message"]["id"].as_str().unwrap().to_string();
    molly.drain().await;
    carol.drain().await;
    // A send's acknowledgement comes before its fan-out: the others wait for the message itself.
    let carols = of(carol.request(send("carol's")).await);
    alice.expect("new_message").await;
    molly.expect("new_message").await;
    let alices = of(alice.request(send("alice's")).await);
    molly.expect("new_message").await;
    carol.expect("new_message").await;
    let mollys = of(molly.request(send("molly's")).await);
    alice.expect("new_message").await;
    carol.expect("new_message").await;
    let muted = molly.request(json!({ "type": "mute_user", "room_id": room, "user_id": "carol" })).await;
    assert_eq!(muted["type"], "user_muted");

    let mut attempts = 0;
    carol.drain().await;
    let sent = carol.request(send("still talking")).await;
    let reason = sent["message"].as_str().unwrap().to_string();
    assert!(reason.starts_with("you are muted in this room until"), "{sent}");
    for frame in [
        json!({ "type": "edit_message", "message_id": carols, "content": "edited while muted" }),
        json!({ "type": "add_reaction", "message_id": alices, "emoji": "👎" }),
        json!({ "type": "remove_reaction", "message_id": alices, "emoji": "👎" }),
    ] {
        let reply = carol.request(frame.clone()).await;
        assert_eq!((code(&reply), reply["message"].as_str()), ("permission_denied", Some(reason.as_str())), "{frame}");
        attempts += 1;
    }
    // A moderator deletes a member's message, not an admin's; the admin deletes the moderator's.
    molly.drain().await;
    let refused = molly.request(json!({ "type": "delete_message", "message_id": alices })).await;
    assert_eq!(code(&refused), "permission_denied", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("admin"), "{refused}");
    attempts += 1;
    assert_eq!(
        molly.request(json!({ "type": "delete_message", "message_id": carols })).await["type"],
        "message_deleted"
    );
    alice.drain().await;
    assert_eq!(
        alice.request(json!({ "type": "delete_message", "message_id": mollys })).await["type"],
        "message_deleted"
    );

    assert_eq!(app.scalar("SELECT count(*) FROM chat_message_edits").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM chat_message_reactions").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM chat_messages WHERE deleted_at IS NOT NULL").await, 2);
    assert_eq!(
        app.scalar(&format!("SELECT count(*) FROM chat_messages WHERE id = '{alices}' AND deleted_at IS NULL")).await,
        1
    );
    println!("moderation: {attempts} edits, reactions and deletions past a mute or above one's rank, all refused");
}

/// A loopback address of its own (127.0.0.0/8) per call: buckets per address outlive a test run.
fn random_loopback() -> std::net::Ipv4Addr {
    let [b, c, d, ..] = uuid::Uuid::new_v4().into_bytes();
    std::net::Ipv4Addr::new(127, b, c, d.max(2))
}

/// An HTTP client whose requests come from `ip`.
fn http_from(ip: std::net::Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::V4(ip)).build().unwrap()
}

#[tokio::test]
async fn searches_edits_and_connections_per_user_are_bounded() {
    let mut config = test_config().await;
    config.max_connections_per_user = 2;
    let app = spawn_app_with(config).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": "quarterly budget" })).await;
    let message = sent["message"]["id"].as_str().unwrap().to_string();
    let mut attempts = 0;

    // Excluded words alone (or no word at all) would read every message of the caller's rooms.
    for q in ["-zzz", "budget%20or%20-zzz", "-%22a%20b%22", "!!!"] {
        let (status, body) = app.get(&format!("search?q={q}"), Some("alice")).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("validation_error")), "q={q}: {body}");
        attempts += 1;
    }
    let (status, found) = app.get("search?q=budget%20-zzz", Some("alice")).await;
    assert_eq!((status, found["results"].as_array().map(Vec::len)), (200, Some(1)), "{found}");

    // A message keeps at most 100 earlier versions.
    for i in 0..100 {
        let edited =
            alice.request(json!({ "type": "edit_message", "message_id": message, "content": format!("v{i}") })).await;
        assert_eq!(edited["type"], "message_edited", "{edited}");
    }
    let past = alice.request(json!({ "type": "edit_message", "message_id": message, "content": "one more" })).await;
    assert_eq!(code(&past), "permission_denied", "{past}");
    attempts += 1;
    assert_eq!(app.scalar("SELECT count(*) FROM chat_message_edits").await, 100);
    let history = alice.request(json!({ "type": "get_edit_history", "message_id": message })).await;
    assert_eq!(history["current"]["content"], "v99");

    // Two live connections per user here: a third is refused until one of them is gone.
    let second = app.connect("alice").await;
    assert_eq!(refused(app.open(&app.token("alice")).await).status(), 429);
    attempts += 1;
    let _bob = app.connect("bob").await;
    // A connection that ended without `$disconnect` stays in the user's set until its
    // registration expires; then it no longer counts.
    let mut redis = app.redis().await;
    redis::cmd("DEL")
        .arg(format!("chat:conn:{{{}}}", second.connection_id))
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let _third = app.connect("alice").await;
    println!("bounded work: {attempts} searches without a word, edits past the cap and connections past the cap, all refused");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_limited_per_address_and_health_tells_no_figures() {
    let mut config = test_config().await;
    config.rate_limits = RateLimits { http_per_ip: only(3), ..RateLimits::OFF };
    config.dev_tokens = true;
    let app = spawn_app_with(config).await;
    let _alice = app.connect("alice").await;
    let base = format!("http://{}/api/v1", app.gateway.addr);
    let mut attempts = 0;

    let health = http_from(random_loopback());
    for _ in 0..3 {
        let body: Value = health.get(format!("{base}/chat/health")).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "healthy");
        assert!(body.get("active_connections").is_none(), "no cross-tenant figures: {body}");
    }
    let limited = health.get(format!("{base}/chat/health")).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_some());
    attempts += 4;

    // Bad tokens spend the address's budget; a valid token is limited per user instead.
    let guesser = http_from(random_loopback());
    let search = format!("{base}/chat/search?q=x");
    for expected in [401, 401, 401, 429, 429] {
        let response = guesser.get(&search).bearer_auth("forged").send().await.unwrap();
        assert_eq!(response.status(), expected);
        attempts += 1;
    }
    assert_eq!(guesser.get(&search).bearer_auth(app.token("alice")).send().await.unwrap().status(), 200);

    let minter = http_from(random_loopback());
    let ask = json!({ "user_id": "eve", "tenant_id": app.tenant });
    for expected in [200, 200, 200, 429] {
        let response = minter.post(format!("{base}/dev/token")).json(&ask).send().await.unwrap();
        assert_eq!(response.status(), expected);
        attempts += 1;
    }
    println!("per-address limits: {attempts} requests without a valid token, those past the budget refused with 429");
}

#[tokio::test]
async fn a_lambda_export_of_long_messages_stays_within_the_response_bound_and_moves_on() {
    let app = app_with_limits(RateLimits::OFF).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    // 200 messages of 10 000 four-byte characters: 8 MB, one page of records.
    let content = "😀".repeat(10_000);
    for _ in 0..200 {
        let sent = alice.request(json!({ "type": "send_message", "room_id": room, "content": content })).await;
        assert_eq!(sent["type"], "message_sent");
    }
    let service = app.gateway.gateway.service();
    let admin = shared::model::Caller {
        connection_id: String::new(),
        tenant_id: app.tenant.clone(),
        user_id: "boss".into(),
        display_name: "Boss".into(),
        roles: vec!["admin".into()],
    };
    let bound = shared::http_api::MAX_EXPORT_RESPONSE_BYTES;
    let (mut after, mut records, mut responses) = (0, 0, 0);
    loop {
        let export = service.export(&admin, None, shared::service::ExportFormat::Jsonl, after).await.unwrap();
        let (body, resume) = shared::http_api::gather(export, bound).await.unwrap();
        responses += 1;
        assert!(body.len() <= bound, "response {responses}: {} bytes", body.len());
        let seqs: Vec<i64> =
            body.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_i64().unwrap()).collect();
        assert!(!seqs.is_empty() && seqs[0] > after, "response {responses} made no progress");
        records += seqs.len();
        match resume {
            Some(seq) => {
                assert_eq!(seq, *seqs.last().unwrap());
                after = seq;
            }
            None => break,
        }
        assert!(responses < 10, "the export does not end");
    }
    assert_eq!((records, responses), (200, 2));
    println!("export: 200 records of 40 KB in {responses} responses of at most {bound} bytes");
}

/// This machine's address on its default route, if it has one (no packet is sent).
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

#[tokio::test]
async fn the_management_api_answers_only_to_this_machine_and_dev_tokens_stay_on_loopback() {
    let mut config = test_config().await;
    config.dev_tokens = true;
    let exposed = gateway::start(config.clone(), "0.0.0.0:0".parse().unwrap()).await;
    assert!(matches!(exposed, Err(gateway::GatewayError::DevTokensExposed(_))), "dev tokens on every interface");
    config.dev_tokens = false;
    let running = gateway::start(config.clone(), "0.0.0.0:0".parse().unwrap()).await.unwrap();
    let port = running.addr.port();
    let app = integration_tests::TestApp {
        gateway: running,
        tenant: format!("tenant-{}", uuid::Uuid::new_v4().simple()),
        secret: config.jwt_secret.clone(),
        database_url: config.database_url.clone(),
    };
    let mut alice = app.connect("alice").await;
    // Straight to the gateway: a proxy from the environment would answer in its stead.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // URL-encoded, as API Gateway requires: ids may hold '/', '+' and '='.
    let connection = alice.connection_id.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D");
    let at = |host: &str| format!("http://{host}:{port}/local/@connections/{connection}");
    let mut attempts = 0;
    match non_loopback_address() {
        Some(ip) => {
            let outside = at(&ip.to_string());
            let answers = [
                http.post(&outside).body(r#"{"type":"pong"}"#).send().await.unwrap().status(),
                http.get(&outside).send().await.unwrap().status(),
                http.delete(&outside).send().await.unwrap().status(),
            ];
            assert_eq!(answers.map(|s| s.as_u16()), [403; 3], "from {ip}");
            attempts += 3;
            // Nothing was posted to alice, and she is still connected.
            alice.assert_quiet().await;
        }
        None => println!("management: no non-loopback address on this machine, only loopback checked"),
    }
    let inside = at("127.0.0.1");
    assert_eq!(http.get(&inside).send().await.unwrap().status(), 200);
    assert_eq!(http.delete(&inside).send().await.unwrap().status(), 204);
    let next = futures::StreamExt::next(&mut alice.ws).await;
    assert!(
        matches!(next, None | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | Some(Err(_))),
        "{next:?}"
    );
    println!("management: {attempts} calls from another address refused with 403; loopback served");
}

#[tokio::test]
async fn secrets_are_read_from_secrets_manager_at_cold_start() {
    // The test command's moto server answers Secrets Manager on the S3 endpoint's port.
    let Ok(endpoint) = std::env::var("S3_ENDPOINT") else {
        println!("secrets: no local Secrets Manager (S3_ENDPOINT unset), nothing checked");
        return;
    };
    let sdk = shared::aws::sdk_config_for("us-east-1", false).await;
    let client = shared::secrets::client(&sdk, Some(&endpoint));
    let create = |name: String, value: String| {
        let client = client.clone();
        async move {
            let created = client.create_secret().name(name).secret_string(value).send().await.unwrap();
            created.arn().unwrap().to_string()
        }
    };
    let prefix = format!("chat-test/{}", uuid::Uuid::new_v4().simple());
    let config = test_config().await;
    let (jwt_secret, database_url) = (config.jwt_secret.clone(), config.database_url.clone());
    // One secret holding the key alone, one holding a JSON object of settings (the template's form).
    let plain = create(format!("{prefix}/jwt"), jwt_secret.clone()).await;
    let settings = json!({ "DATABASE_URL": database_url, "REDIS_URL": "unused" }).to_string();
    let object = create(format!("{prefix}/config"), settings).await;
    let refs = |jwt: &str, db: &str| shared::config::SecretRefs {
        jwt_secret: Some(jwt.to_string()),
        database_url: Some(db.to_string()),
        redis_url: None,
        endpoint: Some(endpoint.clone()),
    };
    let blank = shared::Config { jwt_secret: String::new(), database_url: String::new(), ..config };

    let loaded = blank.clone().with_secrets(&refs(&plain, &object)).await.unwrap();
    assert_eq!(
        (loaded.jwt_secret.as_str(), loaded.database_url.as_str()),
        (jwt_secret.as_str(), database_url.as_str())
    );
    let mut app = spawn_app_with(loaded).await;
    app.secret = jwt_secret;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    alice.request(json!({ "type": "send_message", "room_id": room, "content": "through secrets" })).await;
    assert_eq!(app.scalar("SELECT count(*) FROM chat_messages WHERE content = 'through secrets'").await, 1);

    let mut attempts = 0;
    for (what, jwt, db) in [
        ("a secret that does not exist", format!("{prefix}/missing"), object.clone()),
        ("a JSON secret without the key", object.clone(), object.clone()),
    ] {
        let failed = blank.clone().with_secrets(&refs(&jwt, &db)).await;
        assert!(matches!(failed, Err(shared::config::ConfigError::Secret { name: "JWT_SECRET_KEY", .. })), "{what}");
        attempts += 1;
    }
    // Whatever path the configuration took, an empty key never verifies a token.
    assert!(shared::ChatService::new(blank).await.is_err());
    attempts += 1;
    println!("secrets: read from Secrets Manager through the SDK; {attempts} missing or empty secrets refused");
}
