//! Postgres behind a transaction-mode pooler, as the functions reach it behind RDS Proxy: the
//! test command starts PgBouncer (`pool_mode = transaction`) in front of its private Postgres and
//! runs the main suites through it with `DB_STATEMENTS=unnamed`; this test shows that many
//! processes' pools, each with its own connections, share the pooler's few server connections.
//!
//! `DATABASE_URL` is then the pooler, `DIRECT_DATABASE_URL` the Postgres behind it and
//! `POOLER_POOL_SIZE` its server connections per database. Without them the test says why it
//! does not run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration_tests::{fresh_database, with_database};
use shared::store::{connect_one, StatementMode, Store};

/// Function processes, as many Lambda execution environments at once.
const PROCESSES: usize = 40;
/// Connections of each one's pool, all in use at once.
const POOL: usize = 4;
const ROUNDS: usize = 20;

#[tokio::test]
async fn many_pools_share_the_poolers_server_connections() {
    let (Ok(direct), Ok(pool_size)) = (std::env::var("DIRECT_DATABASE_URL"), std::env::var("POOLER_POOL_SIZE")) else {
        println!("skipped: DIRECT_DATABASE_URL and POOLER_POOL_SIZE are not set (scripts/dev.sh test sets them, with PgBouncer)");
        return;
    };
    let pool_size: i64 = pool_size.parse().expect("POOLER_POOL_SIZE");
    let url = fresh_database().await;
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();

    // The client backends Postgres holds for the test's database, sampled until the load is over
    // (an autovacuum worker visiting the new database is a backend too, but not the pooler's).
    let (observer, connection) = connect_one(&with_database(&direct, "postgres")).await.expect("connect directly");
    tokio::spawn(connection);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let done = done.clone();
        async move {
            let mut peak = 0i64;
            while !done.load(Ordering::Relaxed) {
                let row = observer
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
                        &[&name],
                    )
                    .await
                    .expect("count backends");
                peak = peak.max(row.get(0));
                tokio::task::yield_now().await;
            }
            peak
        }
    });

    let stores: Vec<Store> = (0..PROCESSES)
        .map(|_| Store::connect(&url, POOL, Duration::from_secs(30), StatementMode::Unnamed).expect("pool"))
        .collect();
    let mut load = tokio::task::JoinSet::new();
    for store in &stores {
        for worker in 0..POOL {
            let store = store.clone();
            load.spawn(async move {
                for round in 0..ROUNDS {
                    let tenant = format!("tenant-{}", (worker + round) % 3);
                    store.tenant_metrics(&tenant).await.expect("statements with parameters through the pooler");
                    store.unread_summary(&tenant, "someone").await.expect("unread summary through the pooler");
                }
            });
        }
    }
    while let Some(result) = load.join_next().await {
        result.expect("worker");
    }
    done.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    println!(
        "{PROCESSES} pools of up to {POOL} connections each ran their statements on at most {peak} Postgres backends"
    );
    assert!(peak >= 1, "the load reached Postgres");
    assert!(peak <= pool_size, "{peak} backends for the database, more than the pooler's {pool_size}");
}
