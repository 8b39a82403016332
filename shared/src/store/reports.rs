//! Reports of messages and their resolution.

use tokio_postgres::Row;
use uuid::Uuid;

use super::messages::{join_message, joined_message};
use super::{Store, StoreError};
use crate::model::{Report, ReportStatus};

/// What reporting a message did.
#[derive(Debug)]
pub enum Filed {
    New(Report),
    /// The member had reported it already: that report.
    Kept(Report),
}

/// Which open reports to close.
#[derive(Clone, Copy)]
pub enum Closing {
    /// The report, dismissed.
    Dismissed(Uuid),
    /// Those of the message, which was deleted.
    Deleted(Uuid),
}

/// Which reports to list.
pub struct ReportFilter<'a> {
    pub room_id: Option<Uuid>,
    pub status: ReportStatus,
    /// Only reports of rooms where this user is a moderator or admin; none for tenant admins.
    pub moderated_by: Option<&'a str>,
    pub limit: i64,
}

/// Reports `r` of `from` (the table, or rows an update returned) with their messages `m` as
/// they are now, the tenant as `$1`.
fn select(from: &str, filter: &str) -> String {
    format!(
        "SELECT r.id AS report_id, r.room_id AS report_room_id, r.message_id, r.reporter, r.reason,
                r.created_at AS reported_at, r.status, r.resolved_by, r.resolved_at, m.*
         FROM {from} r {}
         WHERE r.tenant_id = $1 AND {filter}",
        join_message("r.message_id")
    )
}

fn report_from_row(row: &Row) -> Result<Report, StoreError> {
    let status: String = row.get("status");
    let message = joined_message(row)?;
    Ok(Report {
        id: row.get("report_id"),
        room_id: row.get("report_room_id"),
        message_id: row.get("message_id"),
        reporter: row.get("reporter"),
        reason: row.get("reason"),
        created_at: row.get("reported_at"),
        status: ReportStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("report status {status}")))?,
        resolved_by: row.get("resolved_by"),
        resolved_at: row.get("resolved_at"),
        message,
    })
}

impl Store {
    /// Files a member's report of a message, or finds the one they filed before.
    pub async fn file_report(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        message_id: Uuid,
        reporter: &str,
        reason: &str,
    ) -> Result<Filed, StoreError> {
        let client = self.client().await?;
        let added = client
            .execute_cached(
                "INSERT INTO chat_reports (tenant_id, id, room_id, message_id, reporter, reason)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, message_id, reporter) DO NOTHING",
                &[&tenant_id, &Uuid::new_v4(), &room_id, &message_id, &reporter, &reason],
            )
            .await?;
        let row = client
            .query_one_cached(
                &select("chat_reports", "r.message_id = $2 AND r.reporter = $3"),
                &[&tenant_id, &message_id, &reporter],
            )
            .await?;
        let report = report_from_row(&row)?;
        Ok(if added == 1 { Filed::New(report) } else { Filed::Kept(report) })
    }

    pub async fn report(&self, tenant_id: &str, report_id: Uuid) -> Result<Option<Report>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(&select("chat_reports", "r.id = $2"), &[&tenant_id, &report_id])
            .await?;
        row.as_ref().map(report_from_row).transpose()
    }

    /// Reports by the filter, newest first.
    pub async fn reports(&self, tenant_id: &str, filter: ReportFilter<'_>) -> Result<Vec<Report>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                &format!(
                    "{} ORDER BY r.created_at DESC, r.id LIMIT $5",
                    select(
                        "chat_reports",
                        "r.status = $2 AND ($3::uuid IS NULL OR r.room_id = $3)
                         AND ($4::text IS NULL OR r.room_id IN (
                             SELECT room_id FROM chat_room_participants
                             WHERE tenant_id = $1 AND user_id = $4 AND role IN ('moderator', 'admin')))"
                    )
                ),
                &[&tenant_id, &filter.status.as_str(), &filter.room_id, &filter.moderated_by, &filter.limit],
            )
            .await?;
        rows.iter().map(report_from_row).collect()
    }

    /// Closes open reports: the one dismissed, or every one of a deleted message. Returns them
    /// as they are now.
    pub async fn close_reports(&self, tenant_id: &str, closing: Closing, by: &str) -> Result<Vec<Report>, StoreError> {
        let (status, column, id) = match closing {
            Closing::Dismissed(report_id) => (ReportStatus::Dismissed, "id", report_id),
            Closing::Deleted(message_id) => (ReportStatus::Deleted, "message_id", message_id),
        };
        let rows = self
            .client()
            .await?
            .query_cached(
                &format!(
                    "WITH closed AS (
                         UPDATE chat_reports SET status = '{status}', resolved_by = $3, resolved_at = now()
                         WHERE tenant_id = $1 AND {column} = $2 AND status = 'open' RETURNING *)
                     {select}",
                    status = status.as_str(),
                    // From the update's rows: the table in the statement's snapshot has them as they were.
                    select = select("closed", "true")
                ),
                &[&tenant_id, &id, &by],
            )
            .await?;
        rows.iter().map(report_from_row).collect()
    }
}
