//! Messages and receipts are partitioned by tenant. At a realistic volume (a million messages in
//! a thousand rooms of twenty tenants; `PLAN_TEST_MESSAGES` to change) the statements behind
//! every history page, thread, search and read are planned against one partition and through
//! its indexes.

use std::collections::BTreeSet;
use std::time::Instant;

use integration_tests::fresh_database;
use serde_json::Value;
use shared::store::messages::statements;
use tokio_postgres::types::ToSql;

/// Every plan node as (node type, relation, index).
fn nodes(plan: &Value, out: &mut Vec<(String, String, String)>) {
    let field = |key: &str| plan[key].as_str().unwrap_or_default().to_string();
    out.push((field("Node Type"), field("Relation Name"), field("Index Name")));
    for child in plan["Plans"].as_array().into_iter().flatten() {
        nodes(child, out);
    }
}

#[tokio::test]
async fn tenant_queries_stay_on_one_partition_and_use_its_indexes() {
    let messages: i64 = std::env::var("PLAN_TEST_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let (db, connection) = shared::store::connect_one(&fresh_database().await).await.unwrap();
    tokio::spawn(connection);
    let started = Instant::now();
    db.batch_execute(&format!(
        "INSERT INTO chat_rooms (id, tenant_id, name, room_type, created_by)
         SELECT gen_random_uuid(), 'tenant-' || (r % 20), 'room ' || r, 'group', 'u0' FROM generate_series(0, 999) r;
         INSERT INTO chat_room_participants (room_id, tenant_id, user_id)
         SELECT id, tenant_id, 'u' || u FROM chat_rooms, generate_series(0, 9) u;
         -- One message in a thousand mentions an outage: what a search looks for.
         INSERT INTO chat_messages (id, tenant_id, room_id, sender_id, message_type, content, mentions, reply_to, created_at)
         SELECT gen_random_uuid(), r.tenant_id, r.id, 'u' || (i % 10), 'text',
                'message ' || i || CASE WHEN i % 1000 = 0 THEN ' about the outage' ELSE ' about lunch' END,
                CASE WHEN i % 50 = 0 THEN ARRAY['u1'] ELSE '{{}}' END, NULL, now() - i * interval '1 second'
         FROM generate_series(1, {messages}) i
         JOIN (SELECT id, tenant_id, row_number() OVER (ORDER BY id) - 1 AS n FROM chat_rooms) r ON r.n = i % 1000;"
    ))
    .await
    .unwrap();
    // A live database's (auto)vacuum merges the GIN index's pending list; a bulk load leaves it
    // full, and the planner then prices the search index out. VACUUM runs outside a transaction.
    db.batch_execute("VACUUM ANALYZE").await.unwrap();
    println!("generated {messages} messages in 1000 rooms of 20 tenants in {:?}", started.elapsed());

    let tenant = "tenant-3";
    let room: uuid::Uuid =
        db.query_one("SELECT id FROM chat_rooms WHERE tenant_id = $1 LIMIT 1", &[&tenant]).await.unwrap().get(0);
    let parent: uuid::Uuid = db
        .query_one("SELECT id FROM chat_messages WHERE tenant_id = $1 AND room_id = $2 LIMIT 1", &[&tenant, &room])
        .await
        .unwrap()
        .get(0);
    let (no_room, some_room, newest, position) = (None::<uuid::Uuid>, Some(room), i64::MAX, 900_000_i64);
    // Each statement's parameters, and the same as literals for EXECUTE.
    let checks: Vec<(&str, String, Vec<&(dyn ToSql + Sync)>, String)> = vec![
        (
            "history, newest page",
            statements::page("room_id = $2", false),
            vec![&tenant, &room, &0_i64, &newest, &51_i64],
            format!("'{tenant}', '{room}', 0, {newest}, 51"),
        ),
        (
            "history, after a cursor",
            statements::page("room_id = $2", true),
            vec![&tenant, &room, &position, &newest, &51_i64],
            format!("'{tenant}', '{room}', {position}, {newest}, 51"),
        ),
        (
            "thread of a message",
            statements::page("reply_to = $2", true),
            vec![&tenant, &parent, &0_i64, &newest, &51_i64],
            format!("'{tenant}', '{parent}', 0, {newest}, 51"),
        ),
        (
            "search",
            statements::search(),
            vec![&tenant, &"outage", &"u1", &no_room, &20_i64],
            format!("'{tenant}', 'outage', 'u1', NULL, 20"),
        ),
        (
            "unread counts of a room",
            statements::unread(),
            vec![&tenant, &"u1", &some_room],
            format!("'{tenant}', 'u1', '{room}'"),
        ),
    ];
    for (name, sql, params, literals) in checks {
        // Planned for its parameters (as a pooler's unnamed statements are), and as the pool's
        // prepared statements run it: one generic plan, pruned to the tenant's partition when
        // it starts.
        let custom: Value = db.query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &params).await.unwrap().get(0);
        db.batch_execute(&format!("SET plan_cache_mode = force_generic_plan; PREPARE generic AS {sql}")).await.unwrap();
        let generic: Value =
            db.query_one(&format!("EXPLAIN (FORMAT JSON) EXECUTE generic({literals})"), &[]).await.unwrap().get(0);
        db.batch_execute("DEALLOCATE generic; RESET plan_cache_mode").await.unwrap();
        let timed = Instant::now();
        if !sql.starts_with("UPDATE") {
            db.query(&sql, &params).await.unwrap();
        }
        println!("{name}: ran in {:?}", timed.elapsed());
        for (kind, plan) in [("custom", custom), ("generic", generic)] {
            let mut all = Vec::new();
            nodes(&plan[0]["Plan"], &mut all);
            let partitions: BTreeSet<&str> =
                all.iter().map(|(_, rel, _)| rel.as_str()).filter(|r| r.starts_with("chat_messages_p")).collect();
            let indexes: BTreeSet<&str> =
                all.iter().map(|(_, _, index)| index.as_str()).filter(|i| !i.is_empty()).collect();
            println!("{name}, {kind} plan: partitions {partitions:?}, indexes {indexes:?}");
            assert_eq!(
                partitions.len(),
                1,
                "{name}'s {kind} plan should touch one partition of chat_messages:\n{plan:#}"
            );
            assert!(
                !all.iter().any(|(node, rel, _)| node == "Seq Scan" && rel.starts_with("chat_messages_p")),
                "{name}'s {kind} plan scans a partition sequentially:\n{plan:#}"
            );
            assert!(!indexes.is_empty(), "{name}'s {kind} plan uses no index:\n{plan:#}");
        }
    }
}

/// A fresh database whose statistics know a few big tenants (as a live one, or the bench's, does)
/// and none of the tenants a test then adds.
async fn known_tenants() -> tokio_postgres::Client {
    let (db, connection) = shared::store::connect_one(&fresh_database().await).await.unwrap();
    tokio::spawn(connection);
    db.batch_execute(
        "INSERT INTO chat_rooms (id, tenant_id, name, room_type, created_by)
         SELECT gen_random_uuid(), 'tenant-' || (r % 4), 'room ' || r, 'group', 'u0' FROM generate_series(0, 999) r;
         INSERT INTO chat_room_participants (room_id, tenant_id, user_id)
         SELECT id, tenant_id, 'u' || u FROM chat_rooms, generate_series(0, 29) u;
         ANALYZE",
    )
    .await
    .unwrap();
    db
}

/// Left to choose (this connection does not force generic plans, as the pool now does), Postgres
/// keeps one generic plan for the statement that stores a message, also in a tenant newer than
/// the statistics. Priced dearer generic than custom, it was planned afresh on every message
/// (30% of its time), and for an unknown tenant the custom plan read all the tenant's members
/// to find one room's.
#[tokio::test]
async fn storing_a_message_is_planned_once_per_connection() {
    let db = known_tenants().await;
    let room = uuid::Uuid::new_v4();
    db.execute(
        "INSERT INTO chat_rooms (id, tenant_id, name, room_type, created_by) VALUES ($1, 'newcomer', 'r', 'group', 'u0')",
        &[&room],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO chat_room_participants (room_id, tenant_id, user_id)
         SELECT $1, 'newcomer', 'u' || u FROM generate_series(0, 9) u",
        &[&room],
    )
    .await
    .unwrap();

    let sql = statements::insert_message(false, false, false);
    let insert = db.prepare(&sql).await.unwrap();
    let (no_name, no_parent, no_client_id, mentions) =
        (None::<&str>, None::<uuid::Uuid>, None::<&str>, Vec::<String>::new());
    let attachments = serde_json::json!([]);
    for n in 0..20 {
        let content = format!("message {n}");
        let row = db
            .query_one(
                &insert,
                &[
                    &uuid::Uuid::now_v7(),
                    &"newcomer",
                    &room,
                    &"u0",
                    &no_name,
                    &"text",
                    &content,
                    &attachments,
                    &mentions,
                    &no_parent,
                    &no_client_id,
                    &500_i64,
                ],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, Option<Vec<String>>>("members").map(|m| m.len()), Some(10));
    }
    // Postgres plans the first five executions for their parameters, then keeps the generic plan
    // unless it looks dearer.
    let plans = db
        .query_one("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", &[&sql])
        .await
        .unwrap();
    let (generic, custom): (i64, i64) = (plans.get(0), plans.get(1));
    println!("storing a message: {generic} generic plans, {custom} custom plans in 20 executions");
    assert!(custom <= 5 && generic >= 15, "{custom} custom plans and {generic} generic ones in 20 executions");
}

/// A user's contacts are found through the user's own rooms, also in a tenant newer than the
/// statistics: joined flat, the planner read every member of such a tenant once for each of the
/// user's rooms (2.7 s for one disconnect in a tenant of 10 000 members).
#[tokio::test]
async fn contacts_are_found_through_the_users_rooms() {
    let db = known_tenants().await;
    // 1 000 rooms of 10 in a new tenant; u15 is in one of them, with u10 to u19.
    db.batch_execute(
        "INSERT INTO chat_rooms (id, tenant_id, name, room_type, created_by)
         SELECT gen_random_uuid(), 'newcomer', 'room ' || r, 'group', 'u0' FROM generate_series(0, 999) r;
         INSERT INTO chat_room_participants (room_id, tenant_id, user_id)
         SELECT r.id, r.tenant_id, 'u' || (r.n * 10 + u)
         FROM (SELECT id, tenant_id, row_number() OVER (ORDER BY name) - 1 AS n FROM chat_rooms WHERE tenant_id = 'newcomer') r,
              generate_series(0, 9) u",
    )
    .await
    .unwrap();
    let sql = shared::store::rooms::statements::contacts();
    let mut contacts: Vec<String> = db.query_one(&sql, &[&"newcomer", &"u15", &50_i64]).await.unwrap().get(0);
    contacts.sort();
    let expected: Vec<String> = (10..20).filter(|&u| u != 15).map(|u| format!("u{u}")).collect();
    assert_eq!(contacts, expected);

    let explained =
        db.query_one(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"), &[&"newcomer", &"u15", &50_i64]).await.unwrap();
    let plan: Value = explained.get(0);
    let read = rows_scanned(&plan[0]["Plan"]);
    println!("contacts in a new tenant of 10 000 members: {read} rows scanned");
    assert!(read <= 100.0, "{read} rows scanned for one user's contacts:\n{plan:#}");
}

/// Rows that the plan's scans returned, over all their loops.
fn rows_scanned(plan: &Value) -> f64 {
    let own = if plan["Node Type"].as_str().unwrap_or_default().ends_with("Scan") {
        plan["Actual Rows"].as_f64().unwrap_or_default() * plan["Actual Loops"].as_f64().unwrap_or_default()
    } else {
        0.0
    };
    own + plan["Plans"].as_array().into_iter().flatten().map(rows_scanned).sum::<f64>()
}
