//! The library every function and the local gateway use: protocol, auth, persistence, presence,
//! fan-out and the chat service.

pub mod archive;
pub mod auth;
pub mod aws;
pub mod cache;
pub mod channels;
pub mod config;
pub mod fanout;
pub mod handlers;
pub mod http_api;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod presence;
pub mod protocol;
pub mod ratelimit;
pub mod receipts;
pub mod redis_conn;
pub mod secrets;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod xray;

pub use config::Config;
pub use service::{ChatError, ChatService, Export};
pub mod api;
