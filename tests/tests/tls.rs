//! TLS to Postgres and Redis, against the private servers `scripts/dev.sh test` starts with a
//! throw-away CA: a Postgres with `ssl=on` whose pg_hba.conf has only `hostssl` lines (plain TCP
//! is refused), a Redis and a one-node Redis Cluster that listen on TLS only; and webhooks to an
//! HTTPS receiver with the same CA's server certificate.
//!
//! `TLS_DATABASE_URL` (`...?sslmode=verify-full&sslrootcert=CA`), `TLS_REDIS_URL` (`rediss://`),
//! `TLS_REDIS_CLUSTER_URL` (`rediss+cluster://`) and `REDIS_CA_FILE` (the CA) name them. Without
//! `TLS_DATABASE_URL` each test says why it does not run; with it, the others are required.

use integration_tests::webhook::Receiver;
use integration_tests::{config_with, fresh_database_on, spawn_app_with};
use serde_json::json;
use shared::store::tls::split_url;
use shared::store::{connect_one, StoreError};

/// The private TLS servers.
struct Servers {
    database: String,
    redis: String,
    redis_cluster: String,
    ca_file: String,
}

/// The servers, or None after saying why the test does not run.
fn servers() -> Option<Servers> {
    let Ok(database) = std::env::var("TLS_DATABASE_URL") else {
        println!("skipped: TLS_DATABASE_URL is not set (scripts/dev.sh test sets it, with private TLS servers)");
        return None;
    };
    let required = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("TLS_DATABASE_URL is set, {name} not"));
    Some(Servers {
        database,
        redis: required("TLS_REDIS_URL"),
        redis_cluster: required("TLS_REDIS_CLUSTER_URL"),
        ca_file: required("REDIS_CA_FILE"),
    })
}

/// `url` with more query parameters.
fn with(url: &str, params: &str) -> String {
    format!("{url}{}{params}", if url.contains('?') { '&' } else { '?' })
}

/// `url` naming its host `name` while still reaching the same server (`hostaddr`), as a wrong
/// DNS name or a spoofed server would look.
async fn under_another_name(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (userinfo, host_port) = authority.rsplit_once('@').map_or(("", authority), |(u, h)| (u, h));
    let (host, port) = host_port.rsplit_once(':').expect("TLS_DATABASE_URL names its port");
    let ip = tokio::net::lookup_host((host, port.parse::<u16>().unwrap()))
        .await
        .unwrap()
        .find(|address| address.is_ipv4())
        .expect("an IPv4 address of the server")
        .ip();
    let at = if userinfo.is_empty() { "" } else { "@" };
    with(&format!("{scheme}://{userinfo}{at}{name}:{port}{tail}"), &format!("hostaddr={ip}"))
}

/// Whether the connection of `url` is encrypted, as the server sees it.
async fn encrypted(url: &str) -> Result<bool, StoreError> {
    let (client, connection) = connect_one(url).await?;
    tokio::spawn(connection);
    Ok(client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?.get(0))
}

/// Why `url` cannot connect (printed: these are the errors an operator would see).
async fn refusal(url: &str) -> String {
    match connect_one(url).await {
        Ok(_) => panic!("{url} connected"),
        Err(error) => {
            println!("{url}\n    {error}");
            error.to_string()
        }
    }
}

#[tokio::test]
async fn postgres_speaks_tls_as_sslmode_says() {
    let Some(servers) = servers() else { return };
    let (server, params) = split_url(&servers.database).unwrap();
    let root = format!("sslrootcert={}", params.root_cert.expect("TLS_DATABASE_URL names its CA with sslrootcert"));
    assert!(encrypted(&servers.database).await.unwrap());
    // Encryption without authentication, as libpq: any certificate does.
    assert!(encrypted(&with(&server, "sslmode=require")).await.unwrap());
    assert!(encrypted(&server).await.unwrap(), "prefer (the default) uses the TLS the server offers");

    let refused = refusal(&with(&server, "sslmode=disable")).await;
    assert!(refused.contains("no pg_hba.conf entry") && refused.contains("no encryption"), "{refused}");

    // The RDS bundle and the public roots do not vouch for the test CA.
    let unknown = refusal(&with(&server, "sslmode=verify-full")).await;
    assert!(unknown.contains("invalid peer certificate: UnknownIssuer"), "{unknown}");
    assert!(refusal(&with(&server, "sslmode=verify-ca")).await.contains("UnknownIssuer"));
    // With a root given, even `require` checks the chain (as libpq).
    let wrong_root = std::env::temp_dir().join(format!("rds-only-{}.pem", std::process::id()));
    std::fs::write(&wrong_root, include_str!("../../shared/certs/rds-global-bundle.pem")).unwrap();
    let rds_only = refusal(&with(&server, &format!("sslmode=require&sslrootcert={}", wrong_root.display()))).await;
    std::fs::remove_file(&wrong_root).unwrap();
    assert!(rds_only.contains("UnknownIssuer"), "{rds_only}");

    // The certificate is for localhost and 127.0.0.1: under another name verify-full refuses,
    // verify-ca (the chain only) accepts.
    let elsewhere = under_another_name(&server, "db.invalid").await;
    let wrong_name = refusal(&with(&elsewhere, &format!("sslmode=verify-full&{root}"))).await;
    assert!(wrong_name.contains("certificate not valid for name \"db.invalid\""), "{wrong_name}");
    assert!(encrypted(&with(&elsewhere, &format!("sslmode=verify-ca&{root}"))).await.unwrap());
}

#[tokio::test]
async fn redis_with_only_the_public_roots_refuses_the_private_ca() {
    let Some(Servers { redis: url, .. }) = servers() else { return };
    let client = shared::redis_conn::client(&url, None).unwrap();
    let Err(error) = client.get_multiplexed_async_connection().await else { panic!("connected without the CA") };
    println!("{url} without REDIS_CA_FILE\n    {error}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
}

/// The whole system over TLS: a message goes through Postgres and, on a single Redis and on a
/// Redis Cluster, through the connection registry and fan-out.
#[tokio::test]
async fn a_message_goes_through_postgres_and_redis_over_tls() {
    let Some(servers) = servers() else { return };
    for redis in [servers.redis, servers.redis_cluster] {
        let config =
            config_with(fresh_database_on(&servers.database).await, redis.clone(), Some(servers.ca_file.clone()));
        let app = spawn_app_with(config).await;
        let mut alice = app.connect("alice").await;
        let mut bob = app.connect("bob").await;
        let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
        let ack = alice.request(json!({ "type": "send_message", "room_id": room, "content": "sealed" })).await;
        assert_eq!(ack["type"], "message_sent", "{redis}: {ack}");
        assert_eq!(bob.expect("new_message").await["message"], ack["message"], "{redis}");

        let unencrypted = app
            .scalar(
                "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
                 WHERE datname = current_database() AND NOT ssl",
            )
            .await;
        assert_eq!(unencrypted, 0, "every connection to the database is encrypted");
    }
}

/// Webhooks over HTTPS: an endpoint whose certificate a private CA signed takes the events once
/// `WEBHOOK_CA_FILE` names that CA, through the same client the public endpoints get.
#[tokio::test]
async fn webhooks_reach_an_https_endpoint_signed_by_a_trusted_ca() {
    let Some(servers) = servers() else { return };
    // make_certs' server certificate (for localhost and 127.0.0.1), beside its CA.
    let dir = std::path::Path::new(&servers.ca_file).parent().unwrap();
    let mut receiver = Receiver::start_tls(&dir.join("server.pem"), &dir.join("server.key")).await;
    assert!(receiver.url.starts_with("https://"));
    let mut config =
        config_with(fresh_database_on(&servers.database).await, servers.redis.clone(), Some(servers.ca_file.clone()));
    config.webhook_ca_certs = shared::config::pem_certificates(&servers.ca_file).unwrap();
    let app = spawn_app_with(config).await;
    receiver.subscribe(&app, json!({ "events": ["member.banned"] })).await;
    let mut alice = app.connect("alice").await;
    let mut bob = app.connect("bob").await;
    let room = app.room(&mut alice, &mut [&mut bob], json!({})).await;
    alice.request(json!({ "type": "ban_user", "room_id": room, "user_id": "bob" })).await;

    let received = receiver.next().await;
    assert_eq!((received.status, received.event.as_str()), (200, "member.banned"), "{received:?}");
    assert_eq!(received.body["data"]["user_id"], "bob");
}
