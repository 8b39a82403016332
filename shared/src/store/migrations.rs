//! Applies the append-only SQL files of `migrations/` in order, each once, in its own transaction.

use super::StoreError;

/// Every migration, in order. A new file in `migrations/` is added here (a test checks none is missed).
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_chat_tables", include_str!("../../../migrations/0001_chat_tables.sql")),
    ("0002_feature_set", include_str!("../../../migrations/0002_feature_set.sql")),
    ("0003_message_search", include_str!("../../../migrations/0003_message_search.sql")),
    ("0004_partition_by_tenant", include_str!("../../../migrations/0004_partition_by_tenant.sql")),
    ("0005_archive", include_str!("../../../migrations/0005_archive.sql")),
    ("0006_positions", include_str!("../../../migrations/0006_positions.sql")),
    ("0007_archived_messages", include_str!("../../../migrations/0007_archived_messages.sql")),
    ("0008_member_count", include_str!("../../../migrations/0008_member_count.sql")),
    ("0009_room_changes", include_str!("../../../migrations/0009_room_changes.sql")),
    ("0010_client_room_id", include_str!("../../../migrations/0010_client_room_id.sql")),
    ("0011_webhooks", include_str!("../../../migrations/0011_webhooks.sql")),
    ("0012_room_moderation", include_str!("../../../migrations/0012_room_moderation.sql")),
    ("0013_blocks_and_reports", include_str!("../../../migrations/0013_blocks_and_reports.sql")),
    ("0014_participants_by_room", include_str!("../../../migrations/0014_participants_by_room.sql")),
];

/// Returns the versions applied by this call. Concurrent callers serialize on an advisory lock.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Vec<&'static str>, StoreError> {
    let tx = client.transaction().await?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7253001);
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version text PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let applied: Vec<String> =
        tx.query("SELECT version FROM schema_migrations", &[]).await?.iter().map(|r| r.get(0)).collect();
    let mut done = Vec::new();
    for (version, sql) in MIGRATIONS {
        if applied.iter().any(|v| v == version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version]).await?;
        done.push(*version);
    }
    tx.commit().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .map(|n| n.trim_end_matches(".sql").to_string())
            .collect();
        files.sort();
        let listed: Vec<&str> = super::MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(files, listed);
    }
}
