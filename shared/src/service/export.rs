//! Exports of a room's or a whole tenant's history, for tenant admins (and a room's admins),
//! as JSON Lines or CSV, produced page by page so any size streams in constant memory.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ChatError, ChatService, Result};
use crate::model::{Caller, Role};
use crate::receipts::{Position, Receipts};
use crate::store::{Store, StoreError};

/// Records per query, and per chunk (pages also stop at a megabyte, see `Store::export_page`).
const PAGE: i64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

pub struct Export {
    pub format: Format,
    /// Messages the export holds, known before the first byte: clients show progress by
    /// counting records against it.
    pub total: i64,
    /// The `seq` after which it starts; a cut-off export resumes with `after` set to the last
    /// record's `seq`.
    pub after: i64,
    /// Whole records, each chunk with the `seq` of its last record (the header: `after`).
    pub chunks: BoxStream<'static, Result<(i64, String)>>,
}

/// The CSV columns; nested values (attachments, mentions, edits, reactions, receipts, read_by)
/// are JSON in their cell.
const CSV_COLUMNS: [&str; 21] = [
    "seq",
    "room_seq",
    "id",
    "room_id",
    "sender_id",
    "sender_name",
    "message_type",
    "content",
    "attachments",
    "mentions",
    "reply_to",
    "reply_count",
    "created_at",
    "edited_at",
    "deleted",
    "deleted_at",
    "deleted_by",
    "edits",
    "reactions",
    "receipts",
    "read_by",
];

impl ChatService {
    /// A room's history (tenant admins and the room's admins) or the tenant's (tenant admins).
    pub async fn export(&self, caller: &Caller, room_id: Option<Uuid>, format: Format, after: i64) -> Result<Export> {
        let allowed = match room_id {
            None => caller.is_tenant_admin(),
            Some(room) if caller.is_tenant_admin() => {
                self.store.room(&caller.tenant_id, room).await?.ok_or(ChatError::NotFound("room"))?;
                true
            }
            Some(room) => self.member(caller, room).await?.role == Role::Admin,
        };
        if !allowed {
            let what = if room_id.is_some() { "a room is for its admins" } else { "a tenant is for tenant admins" };
            return Err(ChatError::PermissionDenied(format!("exporting {what}")));
        }
        let total = self.store.export_count(&caller.tenant_id, room_id, after).await?;
        let header = (format == Format::Csv).then(|| csv_line(CSV_COLUMNS.iter().map(|c| c.to_string())));
        let pages = pages(self.store.clone(), self.receipts.clone(), caller.tenant_id.clone(), room_id, after, format);
        let chunks = stream::iter(header.map(|h| Ok((after, h)))).chain(pages).boxed();
        Ok(Export { format, total, after, chunks })
    }
}

/// Each room's delivery positions, read once per export.
type Deliveries = HashMap<Uuid, HashMap<String, Position>>;

fn pages(
    store: Store,
    receipts: Receipts,
    tenant_id: String,
    room_id: Option<Uuid>,
    after: i64,
    format: Format,
) -> impl futures::Stream<Item = Result<(i64, String)>> {
    stream::try_unfold((after, Deliveries::new()), move |(after, mut deliveries)| {
        let (store, receipts, tenant_id) = (store.clone(), receipts.clone(), tenant_id.clone());
        async move {
            let page = store.export_page(&tenant_id, room_id, after, PAGE).await?;
            // Pages end at a byte bound too, so only an empty one says the export is done.
            let Some(&(last, _)) = page.last() else { return Ok(None) };
            let mut chunk = String::new();
            for (_, record) in &page {
                let mut record: Value = serde_json::from_str(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let room: Uuid = record["room_id"].as_str().and_then(|r| r.parse().ok()).unwrap_or_default();
                let positions = match deliveries.entry(room) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(new) => new.insert(receipts.positions(&tenant_id, room).await?),
                };
                add_deliveries(&mut record, positions);
                match format {
                    Format::Jsonl => {
                        chunk.push_str(&record.to_string());
                        chunk.push('\n');
                    }
                    Format::Csv => chunk.push_str(&csv_record(&record)),
                }
            }
            Ok(Some(((last, chunk), (last, deliveries))))
        }
    })
}

/// The record's `receipts` come from read positions (a reader got it too); members whose
/// delivery position reaches the message get theirs, with when that position moved.
fn add_deliveries(record: &mut Value, positions: &HashMap<String, Position>) {
    let seq = record["seq"].as_i64().unwrap_or(i64::MAX);
    let sender = record["sender_id"].as_str().unwrap_or_default().to_string();
    let Some(receipts) = record["receipts"].as_array_mut() else { return };
    for (user, position) in positions.iter().filter(|(user, p)| p.seq >= seq && **user != sender) {
        match receipts.iter_mut().find(|r| r["user_id"] == user.as_str()) {
            Some(receipt) => receipt["delivered_at"] = json!(position.at),
            None => receipts.push(json!({ "user_id": user, "delivered_at": position.at, "read_at": null })),
        }
    }
    receipts.sort_by(|a, b| a["user_id"].as_str().cmp(&b["user_id"].as_str()));
}

fn csv_record(value: &Value) -> String {
    csv_line(CSV_COLUMNS.iter().map(|column| match &value[*column] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => value[*column].to_string(),
        other => other.to_string(),
    }))
}

/// One RFC 4180 line. A text cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`,
/// tab, CR at the start) is prefixed with `'`: exported chat content is untrusted input.
fn csv_line(cells: impl Iterator<Item = String>) -> String {
    let cells: Vec<String> = cells
        .map(|cell| {
            let cell = match cell.chars().next() {
                Some('=' | '+' | '-' | '@' | '\t' | '\r') if !is_number(&cell) => format!("'{cell}"),
                _ => cell,
            };
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell
            }
        })
        .collect();
    format!("{}\r\n", cells.join(","))
}

fn is_number(cell: &str) -> bool {
    cell.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let line = csv_line(
            ["plain", "a,b", "say \"hi\"", "two\nlines", "=SUM(A1)", "-3", "@me"].map(String::from).into_iter(),
        );
        assert_eq!(line, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",'=SUM(A1),-3,'@me\r\n");
    }

    #[test]
    fn deliveries_join_the_receipts_of_readers() {
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let mut record = json!({ "seq": 5, "sender_id": "alice", "receipts": [
            { "user_id": "carol", "delivered_at": "2020-01-01T00:00:00Z", "read_at": "2020-01-01T00:00:00Z" }
        ] });
        let positions: HashMap<String, Position> = [
            ("bob", Position { seq: 5, at }),
            ("carol", Position { seq: 9, at }),
            ("dave", Position { seq: 4, at }),
            ("alice", Position { seq: 9, at }),
        ]
        .into_iter()
        .map(|(u, p)| (u.to_string(), p))
        .collect();
        add_deliveries(&mut record, &positions);
        let users: Vec<&str> =
            record["receipts"].as_array().unwrap().iter().map(|r| r["user_id"].as_str().unwrap()).collect();
        assert_eq!(users, ["bob", "carol"], "dave's position is before it, alice sent it");
        assert!(record["receipts"][0]["read_at"].is_null());
        assert_eq!(record["receipts"][1]["delivered_at"], json!(at));
    }

    #[test]
    fn csv_records_put_nested_values_as_json() {
        let record = r#"{"seq":7,"content":"hi","mentions":["bob"],"deleted":false,"reply_to":null}"#;
        let line = csv_record(&serde_json::from_str(record).unwrap());
        assert!(line.starts_with("7,,,,,,,hi,,\"[\"\"bob\"\"]\",,,,,false,"), "{line}");
    }
}
