//! Moving old messages to the archive, and reading them back: history pages, and single
//! messages and thread replies by id.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{ChatError, ChatService, Result};
use crate::archive::{object_key, Archive, ArchiveError};
use crate::cache::Page;
use crate::model::{Edit, Message, Reaction};
use crate::store::{ArchivedMonth, ArchivedPlace, MonthWritten, StoreError};

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

fn corrupt(what: impl std::fmt::Display) -> ChatError {
    ChatError::Store(StoreError::Corrupt(format!("archive record: {what}")))
}

/// The month (UTC) a record's message was created in: the object it goes to.
fn month_of(record: &str) -> Result<NaiveDate> {
    #[derive(serde::Deserialize)]
    struct Created {
        created_at: DateTime<Utc>,
    }
    let created = serde_json::from_str::<Created>(record).map_err(corrupt)?.created_at;
    Ok(NaiveDate::from_ymd_opt(created.year(), created.month(), 1).expect("the first of a month"))
}

/// A record's seq, reading nothing else into memory.
fn seq_of(record: &str) -> Result<i64> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: i64,
    }
    Ok(serde_json::from_str::<Seq>(record).map_err(corrupt)?.seq)
}

/// A history message from an archive record (reactions regrouped per emoji).
fn message_from_record(record: &str) -> Result<Message> {
    let mut value: Value = serde_json::from_str(record).map_err(corrupt)?;
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
    serde_json::from_value(value).map_err(corrupt)
}

/// The earlier versions an archive record keeps.
fn versions_from_record(record: &str) -> Result<Vec<Edit>> {
    let mut value: Value = serde_json::from_str(record).map_err(corrupt)?;
    serde_json::from_value(value["edits"].take()).map_err(corrupt)
}

impl ChatService {
    fn archive(&self) -> Result<&Archive> {
        self.archive.as_ref().ok_or_else(|| ChatError::Invalid("no archive is configured (ARCHIVE_BUCKET)".into()))
    }

    /// Moves every message older than `ARCHIVE_AFTER_DAYS` to its room-and-month object in S3
    /// (merged with what the object already holds), then out of Postgres. A room's backlog goes
    /// in steps of at most `archive_batch` messages, so a room with years of history never has
    /// to fit in the function's memory at once; each step is `Store::archive_step` (the
    /// messages stay locked from their read to their delete, so concurrent changes to them are
    /// in the object or refused). Safe to repeat: records are keyed by seq.
    pub async fn archive_old_messages(&self) -> Result<ArchiveReport> {
        let archive = self.archive()?;
        let cutoff = Utc::now() - self.config.archive_after;
        let mut report = ArchiveReport::default();
        for (tenant_id, room_id) in self.store.rooms_with_messages_before(cutoff).await? {
            let mut after = 0;
            loop {
                let write = |records, existing| self.write_months(archive, &tenant_id, room_id, records, existing);
                let step =
                    self.store.archive_step(&tenant_id, room_id, after, cutoff, self.config.archive_batch, write);
                let Some(step) = step.await? else { break };
                after = step.last_seq;
                report.messages += step.messages;
                report.months += step.months;
            }
            self.uncache(room_id).await;
            report.rooms += 1;
        }
        Ok(report)
    }

    /// Writes each month's new records into its object (merged with what it already holds).
    async fn write_months(
        &self,
        archive: &Archive,
        tenant_id: &str,
        room_id: Uuid,
        records: Vec<(i64, String)>,
        existing: Vec<ArchivedMonth>,
    ) -> Result<Vec<MonthWritten>> {
        let mut months: BTreeMap<NaiveDate, BTreeMap<i64, String>> = BTreeMap::new();
        for (seq, record) in records {
            months.entry(month_of(&record)?).or_default().insert(seq, record);
        }
        let mut written = Vec::new();
        for (month, new) in months {
            let key = object_key(tenant_id, room_id, month);
            let mut all: BTreeMap<i64, String> = BTreeMap::new();
            if let Some(held) = existing.iter().find(|m| m.month == month) {
                for record in archive.get(&held.object_key).await? {
                    let seq = seq_of(&record)?;
                    if held.holds(seq) {
                        all.insert(seq, record);
                    }
                }
            }
            let seqs: Vec<i64> = new.keys().copied().collect();
            all.extend(new);
            let records: Vec<String> = all.values().cloned().collect();
            archive.put(&key, &records).await?;
            let month = ArchivedMonth {
                month,
                object_key: key,
                messages: records.len() as i32,
                min_seq: *all.keys().next().expect("a month holds messages"),
                max_seq: *all.keys().next_back().expect("a month holds messages"),
            };
            written.push(MonthWritten { month, seqs });
        }
        Ok(written)
    }

    /// An archived message of the tenant, if it is archived, with its earlier versions.
    pub(super) async fn archived_message(&self, tenant_id: &str, id: Uuid) -> Result<Option<(Message, Vec<Edit>)>> {
        if self.archive.is_none() {
            return Ok(None);
        }
        let Some(place) = self.store.archived_place(tenant_id, id).await? else { return Ok(None) };
        let record = self.archived_records(tenant_id, &[place]).await?.remove(0);
        Ok(Some((message_from_record(&record)?, versions_from_record(&record)?)))
    }

    /// The archived replies to a message after seq `after`, oldest first, at most `limit`.
    pub(super) async fn archived_replies(
        &self,
        tenant_id: &str,
        parent_id: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Message>> {
        if self.archive.is_none() {
            return Ok(Vec::new());
        }
        let places = self.store.archived_replies(tenant_id, parent_id, after, limit).await?;
        self.archived_records(tenant_id, &places).await?.iter().map(|r| message_from_record(r)).collect()
    }

    /// The records of archived messages, in the order of their places, read through the cache
    /// of decoded months as history pages are (a month's records are in seq order).
    async fn archived_records(&self, tenant_id: &str, places: &[ArchivedPlace]) -> Result<Vec<String>> {
        let archive = self.archive()?;
        let mut months: HashMap<Uuid, Vec<ArchivedMonth>> = HashMap::new();
        let mut records = Vec::with_capacity(places.len());
        for place in places {
            if let Entry::Vacant(room) = months.entry(place.room_id) {
                room.insert(self.store.archived_months(tenant_id, place.room_id).await?);
            }
            let month = months[&place.room_id]
                .iter()
                .find(|m| m.month == place.month)
                .ok_or_else(|| corrupt(format!("room {} has no archived month {}", place.room_id, place.month)))?;
            let held = archive.records(&month.object_key, month.messages, month.max_seq).await?;
            let at = held.partition_point(|r| seq_of(r).is_ok_and(|seq| seq < place.seq));
            match held.get(at) {
                Some(record) if seq_of(record)? == place.seq => records.push(record.clone()),
                _ => return Err(corrupt(format!("seq {} is not in {}", place.seq, month.object_key))),
            }
        }
        Ok(records)
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
                if wanted(message.seq) && month.holds(message.seq) {
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
        assert_eq!(
            (seq_of(record).unwrap(), month_of(record).unwrap()),
            (5, NaiveDate::from_ymd_opt(2025, 3, 1).unwrap())
        );
    }
}
