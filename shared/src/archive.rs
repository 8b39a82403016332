//! Cold storage for old messages: one gzipped JSON Lines object per room and month in S3, each
//! line an export record (`service::export`): the message with its edits, reactions, receipts.

use std::io::{Read, Write};

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

#[derive(Clone)]
pub struct Archive {
    s3: aws_sdk_s3::Client,
    bucket: String,
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
        Some(Self { s3: s3_client(&sdk, config.s3_endpoint.as_deref()), bucket })
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

    /// The records of an object.
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
        let mut text = String::new();
        GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(|e| ArchiveError::Corrupt(key.into(), e.to_string()))?;
        Ok(text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
    }
}
