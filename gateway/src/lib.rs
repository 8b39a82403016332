//! The local gateway: an axum server that plays API Gateway for one laptop. It accepts WebSocket
//! clients, drives the same handlers the Lambda functions run with API Gateway's event shapes,
//! and serves the Management API's `@connections` endpoints that the handlers post through.

mod docs;
mod events;
mod http;
mod management;
mod sockets;
mod web;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{any, get, post};
use axum::serve::ListenerExt;
use axum::Router;
use shared::config::GatewayDelivery;
use shared::{ChatService, Config};
use sockets::Sockets;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use events::ConnectionContext;

pub const STAGE: &str = "local";

pub struct Gateway {
    service: ChatService,
    domain_name: String,
    sockets: Arc<Sockets>,
    /// Frames in hand across the connections (`GATEWAY_MAX_IN_FLIGHT`).
    frames: Arc<Semaphore>,
}

impl Gateway {
    pub fn service(&self) -> &ChatService {
        &self.service
    }

    /// How many WebSocket connections are open right now.
    pub fn open_connections(&self) -> usize {
        self.sockets.lock().len()
    }

    /// How many frames are being handled right now, their fan-outs included.
    pub fn frames_in_flight(&self) -> usize {
        self.service.config.gateway_max_in_flight - self.frames.available_permits()
    }
}

/// A gateway running in the background, for the binary and for tests.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/api/v1/ws/chat?token={token}", self.addr)
    }

    pub fn management_endpoint(&self) -> String {
        format!("http://{}/{STAGE}", self.addr)
    }

    /// Waits until the server stops (it does not on its own).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot bind: {0}")]
    Bind(#[from] std::io::Error),
    #[error(transparent)]
    Init(#[from] shared::service::InitError),
    #[error(
        "DEV_TOKENS would hand a token for any user to anyone who reaches {0}: bind a loopback address \
         (--host 127.0.0.1) or unset DEV_TOKENS"
    )]
    DevTokensExposed(std::net::IpAddr),
}

/// Binds `bind` (port 0 for a free one), points the handlers' management endpoint at itself
/// unless the configuration names one, and starts serving and sweeping typing indicators. The
/// handlers post straight to the sockets' queues, or, with `GATEWAY_DELIVERY=sdk`, through the
/// real SDK client and this gateway's `@connections` endpoint, as on AWS.
pub async fn start(mut config: Config, bind: SocketAddr) -> Result<RunningGateway, GatewayError> {
    if config.dev_tokens && !bind.ip().is_loopback() {
        return Err(GatewayError::DevTokensExposed(bind.ip()));
    }
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    config.management_endpoint.get_or_insert_with(|| format!("http://{addr}/{STAGE}"));
    let sweep_every = config.typing_sweep_interval;
    let sockets = Arc::new(Sockets::default());
    let service = match config.gateway_delivery {
        GatewayDelivery::InProcess => ChatService::with_connections(config, sockets.clone()).await?,
        GatewayDelivery::Sdk => ChatService::new(config).await?,
    };
    let frames = Arc::new(Semaphore::new(service.config.gateway_max_in_flight));
    let gateway = Arc::new(Gateway { service, domain_name: addr.to_string(), sockets, frames });
    let management = Router::new()
        .route(
            "/{stage}/@connections/{connection_id}",
            post(management::post_to_connection).get(management::get_connection).delete(management::delete_connection),
        )
        .route_layer(axum::middleware::from_fn(management::loopback_only));
    let app = Router::new()
        .route("/api/v1/ws/chat", get(websocket::upgrade))
        .route("/api/v1/chat/{*rest}", any(http::chat_api))
        .route("/metrics", get(http::metrics))
        .merge(docs::routes())
        .merge(management)
        .with_state(gateway.clone())
        .merge(web::routes(gateway.clone()));
    let sweeper = gateway.clone();
    let task = tokio::spawn(async move {
        let sweep = async move {
            let mut tick = tokio::time::interval(sweep_every);
            loop {
                tick.tick().await;
                if let Err(err) = shared::handlers::typing_cleanup(&sweeper.service).await {
                    tracing::warn!(error = %err, "typing cleanup failed");
                }
            }
        };
        // Small frames go out at once rather than waiting on Nagle's algorithm for an ACK.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::warn!(error = %err, "TCP_NODELAY not set");
            }
        });
        let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>());
        tokio::select! {
            result = serve => if let Err(err) = result { tracing::error!(error = %err, "gateway stopped") },
            _ = sweep => {}
        }
    });
    Ok(RunningGateway { addr, gateway, task })
}
