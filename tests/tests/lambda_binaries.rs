//! Each real Lambda binary, run against a local Lambda Runtime API with API Gateway's event
//! shapes (tests/events/), posting through the local gateway's management endpoint to real
//! WebSocket clients. Cold start to first response is printed for each.

use std::time::Duration;

use integration_tests::lambda::{check_emf, LocalLambda, TRACE_ID};
use integration_tests::webhook::Receiver;
use integration_tests::{archive_bucket, redis_ca_file, spawn_app_with, test_config, TestApp};
use redis::AsyncCommands;
use serde_json::{json, Value};

/// A gateway that leaves typing expiry to the typing-cleanup binary.
async fn app() -> TestApp {
    let mut config = test_config().await;
    config.typing_sweep_interval = Duration::from_secs(3600);
    spawn_app_with(config).await
}

fn env(app: &TestApp) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", app.database_url.clone()),
        ("REDIS_URL", std::env::var("REDIS_URL").unwrap()),
        ("JWT_SECRET_KEY", app.secret.clone()),
        ("APIGW_MANAGEMENT_ENDPOINT", app.gateway.management_endpoint()),
    ];
    env.extend(redis_ca_file().map(|ca| ("REDIS_CA_FILE", ca)));
    env
}

/// A recorded-shape event from tests/events/, for the given connection.
fn event(file: &str, connection_id: &str) -> Value {
    let path = format!("{}/../tests/events/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if event.get("requestContext").is_some() {
        event["requestContext"]["connectionId"] = json!(connection_id);
    }
    event
}

fn report(name: &str, cold: Duration) {
    println!("cold start to first response, {name}: {:.1} ms", cold.as_secs_f64() * 1000.0);
}

#[tokio::test]
async fn connect_checks_the_token_records_the_connection_and_welcomes_it_asynchronously() {
    let app = app().await;
    // A socket the gateway holds; the function is handed its connection as API Gateway would.
    let mut alice = app.connect("alice").await;
    let mut lambda = LocalLambda::new("connect").await;

    let mut bad = event("connect.json", "NotAConnection=");
    bad["queryStringParameters"]["token"] = json!("forged");
    let (outcome, cold) = lambda.cold_start(&env(&app), bad).await;
    report("connect", cold);
    assert_eq!(outcome.unwrap()["statusCode"], 401);
    let mut redis = app.redis().await;
    assert!(!redis.exists::<_, bool>("chat:conn:{NotAConnection=}").await.unwrap());

    let mut good = event("connect.json", &alice.connection_id);
    good["queryStringParameters"]["token"] = json!(app.token("alice"));
    assert_eq!(lambda.invoke(good).await.unwrap()["statusCode"], 200);
    let recorded: Option<String> =
        redis.hget(format!("chat:conn:{{{}}}", alice.connection_id), "user_id").await.unwrap();
    assert_eq!(recorded.as_deref(), Some("alice"));

    // The function invoked itself with the welcome; that invocation posts the connection frame.
    let (payload, outcome) = lambda.run_async_invocation().await;
    assert_eq!(payload["welcome"]["connection_id"], alice.connection_id.as_str());
    assert!(outcome.is_ok(), "{outcome:?}");
    let hello = alice.expect("connection").await;
    assert_eq!(hello["user_id"], "alice");
}

/// Above FANOUT_CHUNK connections, message-route hands the posts to the fan-out function in
/// chunks by asynchronous invocation; each chunk posts, and moves the delivery positions.
#[tokio::test]
async fn a_big_fan_out_is_handed_to_the_fanout_function_in_chunks() {
    let app = app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let mut carol = app.connect("carol").await;
    let room = app.room(&mut alice, &mut [&mut bob, &mut carol], json!({})).await;
    let mut route = LocalLambda::new("message-route").await;
    let mut fanout = LocalLambda::new("fanout").await;
    let mut settings = env(&app);
    settings.extend([("FANOUT_FUNCTION", "fanout".to_string()), ("FANOUT_CHUNK", "1".to_string())]);
    fanout.start(&settings);

    let mut frame = event("message.json", &alice.connection_id);
    frame["body"] = json!(json!({ "type": "send_message", "room_id": room, "content": "to everyone" }).to_string());
    let (outcome, _) = route.cold_start(&settings, frame).await;
    assert_eq!(outcome.unwrap()["statusCode"], 200);
    let ack = alice.expect("message_sent").await;
    // Two connections, one per chunk: two invocations of the fan-out function.
    let mut chunks = Vec::new();
    for _ in 0..2 {
        let payload = route.next_async_invocation().await;
        assert_eq!(payload["fanout"]["posts"].as_array().unwrap().len(), 1, "{payload}");
        chunks.push(payload);
    }
    for chunk in chunks {
        assert!(fanout.invoke(chunk).await.is_ok());
    }
    for member in [&mut bob, &mut carol] {
        assert_eq!(member.expect("new_message").await["message"]["id"], ack["message"]["id"]);
    }
    let receipts = alice.request(json!({ "type": "get_receipts", "message_id": ack["message"]["id"] })).await;
    let mut delivered: Vec<&str> =
        receipts["delivered"].as_array().unwrap().iter().map(|r| r["user_id"].as_str().unwrap()).collect();
    delivered.sort();
    assert_eq!(delivered, ["bob", "carol"], "each chunk moved its recipients' delivery positions");
}

#[tokio::test]
async fn message_route_stores_replies_and_fans_out_through_the_management_api() {
    let app = app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let mut lambda = LocalLambda::new("message-route").await;

    let mut frame = event("message.json", &alice.connection_id);
    frame["body"] = json!(json!({ "type": "send_message", "room_id": room, "content": "via Lambda" }).to_string());
    let (outcome, cold) = lambda.cold_start(&env(&app), frame).await;
    report("message-route", cold);
    let response = outcome.unwrap();
    assert_eq!(response["statusCode"], 200);
    // Ack first: the function posts it to the sender's connection before the fan-out, so the
    // response carries nothing.
    assert!(response["body"].is_null(), "{response}");
    let ack = alice.expect("message_sent").await;
    let delivered = bob.expect("new_message").await;
    assert_eq!(delivered["message"]["id"], ack["message"]["id"]);
    assert_eq!(app.scalar("SELECT count(*) FROM chat_messages WHERE content = 'via Lambda'").await, 1);

    // Warm invocations: what each further message costs in function time.
    let started = std::time::Instant::now();
    for i in 0..20 {
        let mut frame = event("message.json", &alice.connection_id);
        frame["body"] =
            json!(json!({ "type": "send_message", "room_id": room, "content": format!("warm {i}") }).to_string());
        lambda.invoke(frame).await.unwrap();
        alice.expect("message_sent").await;
        bob.expect("new_message").await;
    }
    println!(
        "warm send_message invocation, message-route (debug build): {:.1} ms",
        started.elapsed().as_secs_f64() * 50.0
    );

    let mut garbage = event("message.json", &alice.connection_id);
    garbage["body"] = json!("{nope");
    let response = lambda.invoke(garbage).await.unwrap();
    let error: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(error["code"], "invalid_json");
    alice.assert_quiet().await;
}

/// One EMF line per invocation, valid as CloudWatch reads it, with the invocation's trace id.
#[tokio::test]
async fn every_invocation_prints_its_metrics_as_one_emf_line() {
    let app = app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let mut lambda = LocalLambda::new("message-route").await;
    let send = |content: &str| {
        let mut frame = event("message.json", &alice.connection_id);
        frame["body"] = json!(json!({ "type": "send_message", "room_id": room, "content": content }).to_string());
        frame
    };
    let (first, second) = (send("first"), send("second"));
    lambda.cold_start(&env(&app), first).await.0.unwrap();
    lambda.invoke(second).await.unwrap();
    let mut ping = event("message.json", &alice.connection_id);
    ping["body"] = json!(json!({ "type": "ping" }).to_string());
    lambda.invoke(ping).await.unwrap();

    let lines = lambda.emf_lines(3).await;
    assert_eq!(lines.len(), 3, "one line per invocation: {lines:?}");
    for line in &lines {
        check_emf(line);
        assert_eq!(line["Function"], "message-route");
        assert_eq!(line["TraceId"], TRACE_ID);
        assert!(line.get("Tenant").is_none(), "no tenant dimension unless asked for: {line}");
    }
    let [cold, warm, ping] = &lines[..] else { unreachable!() };
    assert_eq!((&cold["ColdStart"], &warm["ColdStart"]), (&json!(1), &json!(0)));
    for sent in [cold, warm] {
        assert_eq!(sent["Frames.send_message"], 1, "{sent}");
        assert_eq!(sent["MessagesStored"], 1, "{sent}");
        assert_eq!(sent["PostsDelivered"], 1, "bob's copy: {sent}");
        assert_eq!(sent["AckLatency"].as_array().map(Vec::len), Some(1), "{sent}");
        assert_eq!(sent["FanoutDuration"].as_array().map(Vec::len), Some(1), "{sent}");
    }
    assert_eq!(ping["Frames.ping"], 1, "{ping}");
    assert!(ping.get("MessagesStored").is_none(), "a count of nothing is left out: {ping}");
    assert!(ping.get("Frames.send_message").is_none(), "{ping}");
}

/// With tracing active, each Postgres statement, Redis command and the fan-out reach the X-Ray
/// daemon as sub-segments of the invocation's trace, hung under the function's own segment.
#[tokio::test]
async fn postgres_redis_and_the_fan_out_are_sub_segments_of_the_invocations_trace() {
    let app = app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let daemon = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut env = env(&app);
    env.push(("AWS_XRAY_DAEMON_ADDRESS", format!("tcp:127.0.0.1:2000 udp:{}", daemon.local_addr().unwrap())));
    let mut lambda = LocalLambda::new("message-route").await;
    let mut frame = event("message.json", &alice.connection_id);
    frame["body"] = json!(json!({ "type": "send_message", "room_id": room, "content": "traced" }).to_string());
    lambda.cold_start(&env, frame).await.0.unwrap();
    bob.expect("new_message").await;

    // Each is sent as its span closes, before the invocation answers: all are in once the fan-out's is.
    let mut documents: Vec<Value> = Vec::new();
    let mut buffer = vec![0; 65_536];
    loop {
        let len = if documents.iter().any(|d| d["name"] == "fanout") {
            match daemon.try_recv(&mut buffer) {
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                received => received.unwrap(),
            }
        } else {
            tokio::time::timeout(integration_tests::WAIT, daemon.recv(&mut buffer)).await.unwrap().unwrap()
        };
        let datagram = std::str::from_utf8(&buffer[..len]).unwrap();
        let (header, document) = datagram.split_once('\n').expect("a header line, then the document");
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        documents.push(serde_json::from_str(document).unwrap());
    }
    let (root, function_segment) = ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8");
    let ids: Vec<&str> = documents.iter().map(|d| d["id"].as_str().unwrap()).collect();
    for document in &documents {
        assert_eq!((&document["type"], &document["trace_id"]), (&json!("subsegment"), &json!(root)), "{document}");
        assert!(
            ids.iter().filter(|id| **id == document["id"]).count() == 1 && document["id"].as_str().unwrap().len() == 16
        );
        let parent = document["parent_id"].as_str().unwrap();
        assert!(parent == function_segment || ids.contains(&parent), "{document}");
        assert!(document["start_time"].as_f64().unwrap() <= document["end_time"].as_f64().unwrap(), "{document}");
        assert!(!document.to_string().contains("traced"), "values stay out of the trace: {document}");
    }
    let named = |name: &'static str| documents.iter().filter(move |d| d["name"] == name);
    let queries: Vec<&str> = named("postgres").map(|d| d["sql"]["sanitized_query"].as_str().unwrap()).collect();
    assert!(queries.iter().any(|q| q.contains("INSERT INTO chat_messages")), "{queries:?}");
    let fanout = named("fanout").next().unwrap();
    assert_eq!(fanout["parent_id"], function_segment);
    assert!(named("redis").all(|d| d["metadata"]["default"]["command"].as_str().is_some_and(|c| !c.is_empty())));
    assert!(named("redis").any(|d| d["parent_id"] == fanout["id"]), "the fan-out's connection lookup is its child");
    println!(
        "x-ray: one send_message, {} sub-segments: postgres {}, redis {}, fanout 1",
        documents.len(),
        queries.len(),
        named("redis").count()
    );
}

/// The AWS path of the webhooks: message-route puts the event on the SQS queue (a local
/// SQS-compatible server), and the webhook function, fed the queue's messages as Lambda's SQS
/// event source feeds it, posts them; a failed post goes back on the queue with its delay.
#[tokio::test]
async fn webhook_events_go_through_the_queue_to_the_webhook_function() {
    let app = app().await;
    let mut receiver = Receiver::start().await;
    receiver.subscribe(&app, json!({ "events": ["message.new"] })).await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    let endpoint = std::env::var("S3_ENDPOINT").expect("S3_ENDPOINT: the local AWS services (moto)");
    let sqs = shared::webhooks::sqs_client(&shared::aws::sdk_config_for("us-east-1", false).await, Some(&endpoint));
    let queue = format!("webhooks-{}", uuid::Uuid::new_v4().simple());
    let queue = sqs.create_queue().queue_name(queue).send().await.unwrap().queue_url.unwrap();
    let mut env = env(&app);
    env.extend([("WEBHOOK_QUEUE_URL", queue.clone()), ("SQS_ENDPOINT", endpoint.clone())]);
    env.push(("WEBHOOK_RETRY_BASE_MS", "1000".into()));

    let mut route = LocalLambda::new("message-route").await;
    let mut frame = event("message.json", &alice.connection_id);
    frame["body"] = json!(json!({ "type": "send_message", "room_id": room, "content": "queued" }).to_string());
    route.cold_start(&env, frame).await.0.unwrap();
    let ack = alice.expect("message_sent").await;

    // What Lambda's SQS event source hands the function: the queue's messages as records.
    let batch = || async {
        let received = sqs.receive_message().queue_url(&queue).wait_time_seconds(5).send().await.unwrap();
        let records: Vec<Value> = received
            .messages()
            .iter()
            .map(|m| {
                json!({ "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                        "eventSource": "aws:sqs", "awsRegion": "us-east-1", "attributes": {}, "messageAttributes": {} })
            })
            .collect();
        assert_eq!(records.len(), 1, "one event on the queue: {records:?}");
        json!({ "Records": records })
    };
    receiver.fail_next(1);
    let mut webhook = LocalLambda::new("webhook").await;
    let (outcome, cold) = webhook.cold_start(&env, batch().await).await;
    report("webhook", cold);
    assert_eq!(outcome.unwrap()["batchItemFailures"], json!([]), "the retry is a new message on the queue");
    let failed = receiver.next().await;
    assert_eq!((failed.status, failed.delivery.as_str()), (500, ack["message"]["id"].as_str().unwrap()));

    assert_eq!(webhook.invoke(batch().await).await.unwrap()["batchItemFailures"], json!([]));
    let delivered = receiver.next().await;
    assert_eq!((delivered.status, &delivered.delivery), (200, &failed.delivery));
    assert_eq!(delivered.body["data"]["message"]["content"], "queued");

    // A record that is not an event is reported failed: SQS's redrive takes it to the dead letters.
    let poison = json!({ "Records": [{ "messageId": "m-1", "body": "{nope", "eventSource": "aws:sqs" }] });
    let outcome = webhook.invoke(poison).await.unwrap();
    assert_eq!(outcome["batchItemFailures"], json!([{ "itemIdentifier": "m-1" }]));
}

#[tokio::test]
async fn disconnect_forgets_the_connection_and_tells_the_rooms() {
    let app = app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    app.room(&mut alice, &mut [&mut bob], json!({})).await;
    let mut lambda = LocalLambda::new("disconnect").await;

    let (outcome, cold) = lambda.cold_start(&env(&app), event("disconnect.json", &bob.connection_id)).await;
    report("disconnect", cold);
    assert_eq!(outcome.unwrap()["statusCode"], 200);
    let offline = alice.expect("presence").await;
    assert_eq!((offline["user_id"].as_str(), offline["status"].as_str()), (Some("bob"), Some("offline")));
    let mut redis = app.redis().await;
    assert!(!redis.exists::<_, bool>(format!("chat:conn:{{{}}}", bob.connection_id)).await.unwrap());
}

#[tokio::test]
async fn typing_cleanup_expires_indicators_and_tells_the_room() {
    let app = app().await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    bob.send(json!({ "type": "typing_start", "room_id": room })).await;
    alice.expect("typing_start").await;
    app.db()
        .await
        .execute("UPDATE chat_typing_indicators SET expires_at = now() - interval '1 second'", &[])
        .await
        .unwrap();

    let mut lambda = LocalLambda::new("typing-cleanup").await;
    let (outcome, cold) = lambda.cold_start(&env(&app), event("typing-cleanup.json", "")).await;
    report("typing-cleanup", cold);
    assert_eq!(outcome.unwrap(), json!({ "expired": 1, "sweeps": 1 }));
    assert_eq!(alice.expect("typing_stop").await["user_id"], "bob");
    assert_eq!(app.scalar("SELECT count(*) FROM chat_typing_indicators").await, 0);
}

#[tokio::test]
async fn http_api_answers_api_gateway_http_events() {
    let app = app().await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    alice.request(json!({ "type": "send_message", "room_id": room, "content": "the budget is ready" })).await;
    let mut lambda = LocalLambda::new("http-api").await;

    let mut search = event("http-search.json", "");
    search["headers"]["authorization"] = json!(format!("Bearer {}", app.token("alice")));
    let (outcome, cold) = lambda.cold_start(&env(&app), search).await;
    report("http-api", cold);
    let response = outcome.unwrap();
    assert_eq!(response["statusCode"], 200);
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["results"][0]["content"], "the budget is ready");

    let mut health = event("http-search.json", "");
    health["rawPath"] = json!("/prod/api/v1/chat/health");
    let response = lambda.invoke(health).await.unwrap();
    assert_eq!(response["statusCode"], 200);
    assert_eq!(serde_json::from_str::<Value>(response["body"].as_str().unwrap()).unwrap()["status"], "healthy");

    // An export comes back whole in one response when it fits, and says so.
    let mut export = event("http-search.json", "");
    export["rawPath"] = json!("/prod/api/v1/chat/export");
    export["queryStringParameters"] = json!({ "room_id": room, "format": "jsonl" });
    export["headers"]["authorization"] = json!(format!("Bearer {}", app.token("alice")));
    let response = lambda.invoke(export).await.unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(
        (response["headers"]["x-export-complete"].as_str(), response["headers"]["x-export-total"].as_str()),
        (Some("true"), Some("1"))
    );
    let record: Value = serde_json::from_str(response["body"].as_str().unwrap().trim_end()).unwrap();
    assert_eq!(record["content"], "the budget is ready");

    let mut anonymous = event("http-search.json", "");
    anonymous["headers"].as_object_mut().unwrap().remove("authorization");
    assert_eq!(lambda.invoke(anonymous).await.unwrap()["statusCode"], 401);
}

#[tokio::test]
async fn archive_moves_old_messages_to_the_bucket() {
    let app = app().await;
    let mut alice = app.connect("alice").await;
    let room = app.room(&mut alice, &mut [], json!({})).await;
    alice.request(json!({ "type": "send_message", "room_id": room, "content": "from last year" })).await;
    app.db().await.execute("UPDATE chat_messages SET created_at = now() - interval '400 days'", &[]).await.unwrap();

    let mut lambda = LocalLambda::new("archive").await;
    let mut env = env(&app);
    env.extend([
        ("ARCHIVE_BUCKET", archive_bucket().await),
        ("ARCHIVE_AFTER_DAYS", "365".into()),
        ("S3_ENDPOINT", std::env::var("S3_ENDPOINT").unwrap()),
    ]);
    let (outcome, cold) =
        lambda.cold_start(&env, json!({ "detail-type": "Scheduled Event", "source": "aws.events" })).await;
    report("archive", cold);
    assert_eq!(outcome.unwrap(), json!({ "rooms": 1, "months": 1, "messages": 1 }));
    assert_eq!(app.scalar("SELECT count(*) FROM chat_messages").await, 0);
}
