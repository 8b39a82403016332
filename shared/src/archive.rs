//! Cold storage for old messages: one gzipped JSON Lines object per room and month in S3, each
//! line an export record (`service::export`): the message with its edits, reactions, receipts.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use chrono::NaiveDate;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use uuid::Uuid;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("s3: {0}")]
    S3(String),
    #[error("archive object {0} is not gzipped JSON Lines: {1}")]
    Corrupt(String, String),
}

/// Archived months a process keeps decoded: the pages people scroll back through, without an S3
/// download and a decompression per page.
const CACHED_OBJECTS: usize = 16;

/// An object's key and what it held when read (messages, newest seq): a rewritten object (a
/// later run merged more into it) is a new entry.
type CacheKey = (String, i32, i64);
/// Most recently read first.
type Recent = VecDeque<(CacheKey, Arc<Vec<String>>)>;

#[derive(Clone)]
pub struct Archive {
    s3: aws_sdk_s3::Client,
    bucket: String,
    recent: Arc<Mutex<Recent>>,
}

/// `{tenant}/{room}/{yyyy-mm}.jsonl.gz`
pub fn object_key(tenant_id: &str, room_id: Uuid, month: NaiveDate) -> String {
    format!("{tenant_id}/{room_id}/{}.jsonl.gz", month.format("%Y-%m"))
}

/// An S3 client; with `endpoint`, for an S3-compatible server at that address (path-style).
pub fn s3_client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let mut s3 = aws_sdk_s3::config::Builder::from(sdk);
    if let Some(endpoint) = endpoint {
        s3 = s3.endpoint_url(endpoint).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(s3.build())
}

impl Archive {
    /// None when no bucket is configured.
    pub async fn new(config: &Config) -> Option<Self> {
        let bucket = config.archive_bucket.clone()?;
        let sdk = crate::aws::sdk_config(config).await;
        Some(Self { s3: s3_client(&sdk, config.s3_endpoint.as_deref()), bucket, recent: Arc::default() })
    }

    pub async fn put(&self, key: &str, records: &[String]) -> Result<(), ArchiveError> {
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        for record in records {
            gzip.write_all(record.as_bytes()).and_then(|()| gzip.write_all(b"\n")).expect("writing to memory");
        }
        let body = gzip.finish().expect("writing to memory");
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .content_encoding("gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| ArchiveError::S3(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    /// The records of an archived month holding `messages` up to `max_seq`, from the cache of
    /// recently read objects when it is there.
    pub async fn records(&self, key: &str, messages: i32, max_seq: i64) -> Result<Arc<Vec<String>>, ArchiveError> {
        let wanted: CacheKey = (key.to_string(), messages, max_seq);
        if let Some((_, records)) = self.recent.lock().expect("lock poisoned").iter().find(|(k, _)| *k == wanted) {
            return Ok(records.clone());
        }
        let records = Arc::new(self.get(key).await?);
        let mut recent = self.recent.lock().expect("lock poisoned");
        recent.retain(|(k, _)| k.0 != wanted.0);
        recent.push_front((wanted, records.clone()));
        recent.truncate(CACHED_OBJECTS);
        Ok(records)
    }

    /// The records of an object, decompressed line by line.
    pub async fn get(&self, key: &str) -> Result<Vec<String>, ArchiveError> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| ArchiveError::S3(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        let bytes = object.body.collect().await.map_err(|e| ArchiveError::S3(e.to_string()))?.into_bytes();
        BufReader::new(GzDecoder::new(&bytes[..]))
            .lines()
            .filter(|line| !line.as_ref().is_ok_and(String::is_empty))
            .collect::<Result<_, _>>()
            .map_err(|e| ArchiveError::Corrupt(key.into(), e.to_string()))
    }
}
