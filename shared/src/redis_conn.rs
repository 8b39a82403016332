//! The Redis connection: one node, or a Redis Cluster when `REDIS_URL` is
//! `redis+cluster://host:port,host:port,...` (any of its nodes; the rest are discovered).
//! `rediss://` and `rediss+cluster://` speak TLS, trusting the public roots, or only the CA in
//! `REDIS_CA_FILE` when set (a private CA).
//!
//! Every key carries a hash tag, so each command and Lua script touches one slot. Pipelines
//! may span slots (a user's set and the tenant's, say): on a cluster they are split per slot,
//! the parts sent concurrently, each in its original order, and the replies put back in place.

use std::time::Duration;

use futures::future::{join_all, BoxFuture, FutureExt};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, TlsCertificates, Value};

use crate::xray;

/// The cluster schemes and the scheme of their nodes' URLs.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [("redis+cluster://", "redis://"), ("rediss+cluster://", "rediss://")];

#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// `ca_file`: the PEM file of the CA to trust instead of the public roots (`REDIS_CA_FILE`).
    pub async fn connect(url: &str, ca_file: Option<&str>, timeout: Duration) -> RedisResult<Self> {
        match cluster_nodes(url) {
            Some(nodes) => {
                let mut builder =
                    ClusterClientBuilder::new(nodes).connection_timeout(timeout).response_timeout(timeout).retries(1);
                if let Some(certificates) = certificates(url, ca_file)? {
                    builder = builder.certs(certificates);
                }
                Ok(Self::Cluster(builder.build()?.get_async_connection().await?))
            }
            // Lazy: the process starts while Redis is away and reconnects by itself when it is back.
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                Ok(Self::Single(ConnectionManager::new_lazy_with_config(client(url, ca_file)?, config)?))
            }
        }
    }
}

/// A client of one node (a `redis://` or `rediss://` URL), trusting `ca_file` when given.
pub fn client(url: &str, ca_file: Option<&str>) -> RedisResult<redis::Client> {
    match certificates(url, ca_file)? {
        Some(certificates) => redis::Client::build_with_tls(url, certificates),
        None => redis::Client::open(url),
    }
}

/// The private CA to trust, refused for a URL without TLS: it would be ignored (one node) or
/// would turn TLS on behind the URL's back (a cluster).
fn certificates(url: &str, ca_file: Option<&str>) -> RedisResult<Option<TlsCertificates>> {
    let Some(path) = ca_file else { return Ok(None) };
    if !url.starts_with("rediss://") && !url.starts_with("rediss+cluster://") {
        return Err(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "REDIS_CA_FILE is set but REDIS_URL does not use TLS (rediss:// or rediss+cluster://)",
        )));
    }
    let pem = std::fs::read(path).map_err(|e| {
        RedisError::from((ErrorKind::InvalidClientConfig, "cannot read REDIS_CA_FILE", format!("{path}: {e}")))
    })?;
    Ok(Some(TlsCertificates { client_tls: None, root_cert: Some(pem) }))
}

/// The node URLs of a `redis+cluster://` or `rediss+cluster://` URL (TLS kept for every node), or
/// None for a single node.
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let (rest, node_scheme) =
        CLUSTER_SCHEMES.iter().find_map(|(cluster, node)| Some((url.strip_prefix(cluster)?, node)))?;
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.trim_end_matches('/');
    Some(hosts.split(',').filter(|h| !h.is_empty()).map(|h| format!("{node_scheme}{userinfo}{h}")).collect())
}

/// The slot a command's key lives in (a PUBLISH's channel is not a key; any node serves it).
fn slot(cmd: &Cmd) -> Slot {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .map(|arg| match arg {
            redis::Arg::Simple(bytes) => bytes,
            _ => &b""[..],
        })
        .collect();
    let name = args.first().map(|n| n.to_ascii_uppercase()).unwrap_or_default();
    let key = match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"FCALL" => args.get(3),
        _ => args.get(1),
    };
    Slot::for_key(key.copied().unwrap_or_default())
}

/// Sends a pipeline that may span slots: one sub-pipeline per slot, concurrently.
fn cluster_pipeline<'a>(
    conn: &'a mut ClusterConnection,
    pipeline: &'a Pipeline,
) -> BoxFuture<'a, RedisResult<Vec<Value>>> {
    async move {
        let mut groups: Vec<(Slot, Pipeline, Vec<usize>)> = Vec::new();
        for (i, cmd) in pipeline.cmd_iter().enumerate() {
            let slot = slot(cmd);
            let at = match groups.iter().position(|(s, _, _)| *s == slot) {
                Some(at) => at,
                None => {
                    groups.push((slot, redis::pipe(), Vec::new()));
                    groups.len() - 1
                }
            };
            groups[at].1.add_command(cmd.clone());
            groups[at].2.push(i);
        }
        let replies = join_all(groups.iter().map(|(_, part, _)| {
            let mut conn = conn.clone();
            async move { conn.req_packed_commands(part, 0, part.len()).await }
        }))
        .await;
        let mut values = vec![Value::Nil; pipeline.len()];
        for ((_, _, positions), reply) in groups.iter().zip(replies) {
            for (position, value) in positions.iter().zip(reply?) {
                values[*position] = value;
            }
        }
        Ok(values)
    }
    .boxed()
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let span = xray::redis(Some(cmd));
        let reply = match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        };
        Box::pin(xray::traced(span, reply))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let span = xray::redis(pipeline.cmd_iter().next());
        let replies = match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            // A transaction must stay on one slot; the cluster client checks that itself.
            Self::Cluster(conn) => {
                if offset > 0 {
                    conn.req_packed_commands(pipeline, offset, count)
                } else {
                    cluster_pipeline(conn, pipeline)
                }
            }
        };
        Box::pin(xray::traced(span, replies))
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_nodes() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/").unwrap(),
            ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
        assert_eq!(cluster_nodes("redis+cluster://:pw@a:1,b:2").unwrap(), ["redis://:pw@a:1", "redis://:pw@b:2"]);
        assert_eq!(cluster_nodes("rediss://a:1"), None);
        assert_eq!(cluster_nodes("rediss+cluster://:pw@a:1,b:2/").unwrap(), ["rediss://:pw@a:1", "rediss://:pw@b:2"]);
    }

    #[test]
    fn a_private_ca_needs_a_tls_url() {
        for url in ["redis://127.0.0.1:6379", "redis+cluster://a:1,b:2"] {
            let error = certificates(url, Some("/dev/null")).unwrap_err();
            assert!(error.to_string().contains("REDIS_CA_FILE is set but REDIS_URL does not use TLS"), "{error}");
        }
        let error = client("rediss://127.0.0.1:6379", Some("/no/such/ca.pem")).unwrap_err();
        assert!(error.to_string().contains("/no/such/ca.pem"), "{error}");
        assert!(certificates("redis://127.0.0.1:6379", None).unwrap().is_none());
    }

    #[test]
    fn commands_go_to_the_slot_of_their_key_and_its_hash_tag() {
        let tagged = |key: &str| slot(redis::cmd("SADD").arg(key).arg("x"));
        assert_eq!(tagged("chat:user:{t/u}:conns"), tagged("other:{t/u}"));
        assert_eq!(slot(redis::cmd("EVALSHA").arg("sha").arg(1).arg("chat:rl:{k}")), tagged("{k}"));
        assert_ne!(tagged("{a}"), tagged("{b}"));
    }
}
