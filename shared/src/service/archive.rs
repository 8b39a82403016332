//! Moving old messages to the archive, and reading them back into history pages.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{ChatError, ChatService, Result};
use crate::archive::{object_key, Archive, ArchiveError};
use crate::cache::Page;
use crate::model::{Message, Reaction};
use crate::store::{ArchivedMonth, StoreError};

const PAGE: i64 = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveReport {
    pub rooms: usize,
    pub months: usize,
    pub messages: u64,
}

impl From<ArchiveError> for ChatError {
    fn from(err: ArchiveError) -> Self {
        ChatError::Store(StoreError::Corrupt(err.to_string()))
    }
}

fn seq_and_month(record: &str) -> Result<(i64, NaiveDate)> {
    let value: Value = serde_json::from_str(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let created: DateTime<Utc> = serde_json::from_value(value["created_at"].clone())
        .map_err(|e| StoreError::Corrupt(format!("archive record created_at: {e}")))?;
    let month = NaiveDate::from_ymd_opt(created.year(), created.month(), 1).expect("the first of a month");
    Ok((value["seq"].as_i64().unwrap_or_default(), month))
}

/// A history message from an archive record (reactions regrouped per emoji).
fn message_from_record(record: &str) -> Result<Message> {
    let mut value: Value = serde_json::from_str(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut reactions: Vec<Reaction> = Vec::new();
    for r in value["reactions"].as_array().cloned().unwrap_or_default() {
        let (emoji, user) = (r["emoji"].as_str().unwrap_or_default(), r["user_id"].as_str().unwrap_or_default());
        match reactions.iter_mut().find(|x| x.emoji == emoji) {
            Some(x) => {
                x.count += 1;
                x.users.push(user.to_string());
            }
            None => reactions.push(Reaction { emoji: emoji.to_string(), count: 1, users: vec![user.to_string()] }),
        }
    }
    value["reactions"] = serde_json::to_value(reactions).expect("reactions serialize");
    Ok(serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("archive record: {e}")))?)
}

impl ChatService {
    fn archive(&self) -> Result<&Archive> {
        self.archive.as_ref().ok_or_else(|| ChatError::Invalid("no archive is configured (ARCHIVE_BUCKET)".into()))
    }

    /// Moves every message older than `ARCHIVE_AFTER_DAYS` to its room-and-month object in S3
    /// (merged with what the object already holds), then out of Postgres. Safe to repeat: an
    /// object is written before its messages are deleted, and records are keyed by seq.
    pub async fn archive_old_messages(&self) -> Result<ArchiveReport> {
        let archive = self.archive()?;
        let cutoff = Utc::now() - self.config.archive_after;
        let mut report = ArchiveReport::default();
        for (tenant_id, room_id) in self.store.rooms_with_messages_before(cutoff).await? {
            // A room's backlog goes in batches of at most `archive_batch` messages, so a room with
            // years of history never has to fit in the function's memory at once.
            let mut after = 0;
            loop {
                let mut months: BTreeMap<NaiveDate, BTreeMap<i64, String>> = BTreeMap::new();
                let mut batch = 0;
                while batch < self.config.archive_batch {
                    let rows = PAGE.min((self.config.archive_batch - batch) as i64);
                    let page = self.store.export_page(&tenant_id, Some(room_id), after, Some(cutoff), rows).await?;
                    let Some(&(last, _)) = page.last() else { break };
                    after = last;
                    batch += page.len();
                    for (seq, record) in page {
                        months.entry(seq_and_month(&record)?.1).or_default().insert(seq, record);
                    }
                }
                if months.is_empty() {
                    break;
                }
                self.archive_months(archive, &tenant_id, room_id, months, &mut report).await?;
            }
            if let Err(err) = self.cache.invalidate(room_id).await {
                tracing::warn!(error = %err, %room_id, "recent-message cache not invalidated after archiving");
            }
            report.rooms += 1;
        }
        Ok(report)
    }

    /// Writes each month's new records into its object (merged with what it already holds),
    /// then takes them out of Postgres.
    async fn archive_months(
        &self,
        archive: &Archive,
        tenant_id: &str,
        room_id: Uuid,
        months: BTreeMap<NaiveDate, BTreeMap<i64, String>>,
        report: &mut ArchiveReport,
    ) -> Result<()> {
        let existing: HashMap<NaiveDate, ArchivedMonth> =
            self.store.archived_months(tenant_id, room_id).await?.into_iter().map(|m| (m.month, m)).collect();
        for (month, new) in months {
            let key = object_key(tenant_id, room_id, month);
            let mut all: BTreeMap<i64, String> = BTreeMap::new();
            if existing.contains_key(&month) {
                for record in archive.get(&key).await? {
                    all.insert(seq_and_month(&record)?.0, record);
                }
            }
            let seqs: Vec<i64> = new.keys().copied().collect();
            all.extend(new);
            let records: Vec<String> = all.values().cloned().collect();
            archive.put(&key, &records).await?;
            let row = ArchivedMonth {
                month,
                object_key: key,
                messages: records.len() as i32,
                min_seq: *all.keys().next().expect("a month holds messages"),
                max_seq: *all.keys().next_back().expect("a month holds messages"),
            };
            report.messages += self.store.move_to_archive(tenant_id, room_id, &row, &seqs).await?;
            report.months += 1;
        }
        Ok(())
    }

    /// Archived messages of the room beyond a cursor: up to `limit` before `before` (newest of
    /// them, returned oldest first) or after `after`, and whether the archive holds more.
    pub(super) async fn archived_page(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        before: Option<i64>,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Page> {
        let Some(archive) = &self.archive else { return Ok((Vec::new(), false)) };
        let mut months = self.store.archived_months(tenant_id, room_id).await?;
        let wanted = |seq: i64| after.is_none_or(|a| seq > a) && before.is_none_or(|b| seq < b);
        months.retain(|m| before.is_none_or(|b| m.min_seq < b) && after.is_none_or(|a| m.max_seq > a));
        if after.is_none() {
            months.reverse();
        }
        let mut found: Vec<Message> = Vec::new();
        let mut has_more = false;
        for month in months {
            if found.len() >= limit {
                has_more = true;
                break;
            }
            let mut messages: Vec<Message> = Vec::new();
            for record in archive.records(&month.object_key, month.messages, month.max_seq).await?.iter() {
                let message = message_from_record(record)?;
                if wanted(message.seq) {
                    messages.push(message);
                }
            }
            if after.is_none() {
                messages.reverse();
            }
            let room = limit - found.len();
            has_more = messages.len() > room;
            found.extend(messages.into_iter().take(room));
        }
        if after.is_none() {
            found.reverse();
        }
        Ok((found, has_more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_history_messages_with_reactions_per_emoji() {
        let record = r#"{"id":"0192d7a0-0000-7000-8000-000000000001","seq":5,"room_id":"0192d7a0-0000-7000-8000-000000000002",
            "sender_id":"alice","sender_name":"Alice","message_type":"text","content":"hi","attachments":[],"mentions":[],
            "reply_to":null,"reply_count":0,"created_at":"2025-03-04T05:06:07.123+00:00","edited_at":null,"deleted":false,
            "deleted_at":null,"deleted_by":null,"edits":[],"receipts":[],"read_by":[],
            "reactions":[{"user_id":"bob","emoji":"👍","created_at":"x"},{"user_id":"carol","emoji":"👍","created_at":"x"},
                         {"user_id":"bob","emoji":"🎉","created_at":"x"}]}"#;
        let message = message_from_record(record).unwrap();
        assert_eq!((message.seq, message.content.as_str()), (5, "hi"));
        assert_eq!(
            message.reactions[0],
            Reaction { emoji: "👍".into(), count: 2, users: vec!["bob".into(), "carol".into()] }
        );
        assert_eq!(seq_and_month(record).unwrap(), (5, NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()));
    }
}
