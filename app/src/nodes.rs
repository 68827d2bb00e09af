//! The Docker Engines a deployment runs sandboxes on: none configured is
//! the one engine of `DOCKER_HOST` (as before); several come from
//! `SANDBOXER_DOCKER_HOSTS` (`name=host,name=host`) or the config file's
//! `[[nodes]]` tables (name, host, TLS client files, capacity, draining).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use sandboxer_core::port::{RuntimeError, Tracer};
use sandboxer_docker::nodes::{OnUp, valid_node_name};
use sandboxer_docker::{Capacity, DockerConfig, DockerNodes, NodeConfig, TlsFiles};
use sandboxer_http::Fleet;
use sandboxer_http::dto::NodeView;
use sandboxer_telemetry::set_node;
use serde::Deserialize;

use crate::config::ServeConfig;

/// Sandboxes a node holds unless its table says otherwise.
pub const DEFAULT_NODE_SANDBOXES: u64 = 500;

/// One `[[nodes]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    pub name: String,
    /// `unix:///path/docker.sock` or `tcp://host:port`.
    pub host: String,
    /// TLS client files for `tcp://` (all three, or none).
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Sandboxes it may hold (default 500).
    pub capacity_sandboxes: Option<u64>,
    /// Memory limits of its sandboxes together, in MiB (default: the
    /// engine host's memory).
    pub capacity_memory_mb: Option<u64>,
    /// No new chats are placed on it.
    #[serde(default)]
    pub draining: bool,
}

/// `name=host,name=host`: nodes with default capacity and no TLS.
pub fn parse_hosts(list: &str) -> anyhow::Result<Vec<NodeSettings>> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let Some((name, host)) = entry.split_once('=') else {
                bail!("SANDBOXER_DOCKER_HOSTS entry {entry:?} is not name=host");
            };
            Ok(NodeSettings {
                name: name.trim().to_owned(),
                host: host.trim().to_owned(),
                tls_ca: None,
                tls_cert: None,
                tls_key: None,
                capacity_sandboxes: None,
                capacity_memory_mb: None,
                draining: false,
            })
        })
        .collect()
}

/// Checks names (unique, 1-32 of `a-z 0-9 . _ -`), hosts and TLS files.
pub fn validate(nodes: &[NodeSettings]) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for node in nodes {
        if !valid_node_name(&node.name) {
            bail!("node name {:?}: use 1-32 of a-z 0-9 . _ -", node.name);
        }
        if !seen.insert(node.name.as_str()) {
            bail!("node {:?} is named twice", node.name);
        }
        if !(node.host.starts_with("unix://") || node.host.starts_with("tcp://")) {
            bail!(
                "node {}: host {:?} is neither unix:// nor tcp://",
                node.name,
                node.host
            );
        }
        let tls = [&node.tls_ca, &node.tls_cert, &node.tls_key];
        let given = tls.iter().filter(|f| f.is_some()).count();
        if given != 0 && given != 3 {
            bail!(
                "node {}: give tls_ca, tls_cert and tls_key together",
                node.name
            );
        }
        for file in tls.into_iter().flatten() {
            std::fs::metadata(file)
                .with_context(|| format!("node {}: TLS file {}", node.name, file.display()))?;
        }
        if node.capacity_sandboxes == Some(0) {
            bail!("node {}: capacity_sandboxes must be at least 1", node.name);
        }
    }
    Ok(())
}

/// The fleet of `config.nodes`, each engine with the settings of `base`.
/// A node that is away now joins when it answers; one that answers gets
/// the agent's volume first, and must hold the default image (loaded by
/// the operator: no image is built or pulled on a node).
pub async fn connect(
    config: &ServeConfig,
    base: &DockerConfig,
    tracer: &Arc<dyn Tracer>,
) -> anyhow::Result<Arc<DockerNodes>> {
    let nodes = config
        .nodes
        .iter()
        .map(|n| NodeConfig {
            name: n.name.clone(),
            docker: DockerConfig {
                host: Some(n.host.clone()),
                tls: match (&n.tls_ca, &n.tls_cert, &n.tls_key) {
                    (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                        ca: ca.clone(),
                        cert: cert.clone(),
                        key: key.clone(),
                    }),
                    _ => None,
                },
                // Only a local engine's processes are this host's.
                host_kill: n.host.starts_with("unix://"),
                ..base.clone()
            },
            capacity: Capacity {
                sandboxes: n.capacity_sandboxes.unwrap_or(DEFAULT_NODE_SANDBOXES),
                memory_bytes: n.capacity_memory_mb.map(|mb| mb * 1024 * 1024),
            },
            draining: n.draining,
        })
        .collect();
    let image = config.image.clone();
    let on_up: OnUp = Arc::new(move |runtime| {
        let image = image.clone();
        Box::pin(async move {
            if !runtime.image_exists(&image).await? {
                return Err(RuntimeError::ImageNotFound(image));
            }
            runtime.prepare_agent(&image).await
        })
    });
    let fleet = DockerNodes::connect(nodes, Arc::clone(tracer), on_up)
        .await
        .context("the Docker nodes")?;
    for node in fleet.statuses() {
        tracing::info!(node = %node.name, up = node.up, draining = node.draining, "docker node");
    }
    Ok(fleet)
}

/// The fleet as the HTTP API shows and steers it.
pub struct FleetView(pub Arc<DockerNodes>);

impl Fleet for FleetView {
    fn nodes(&self) -> Vec<NodeView> {
        self.0
            .statuses()
            .into_iter()
            .map(|n| NodeView {
                name: n.name,
                up: n.up,
                draining: n.draining,
                sandboxes: n.sandboxes,
                capacity_sandboxes: n.capacity_sandboxes,
                memory_bytes: n.memory_bytes,
                capacity_memory_bytes: n.capacity_memory_bytes,
            })
            .collect()
    }

    fn set_draining(&self, node: &str, draining: bool) -> bool {
        self.0.set_draining(node, draining)
    }
}

/// Sets each node's gauges every few seconds until the task is dropped.
pub async fn metrics_loop(fleet: Arc<DockerNodes>) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        ticks.tick().await;
        for n in fleet.statuses() {
            set_node(
                &n.name,
                n.up,
                n.sandboxes,
                n.capacity_sandboxes,
                n.memory_bytes,
                n.capacity_memory_bytes,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_list_parses_and_bad_entries_are_refused() {
        let nodes = parse_hosts("a=unix:///var/run/docker.sock, b=tcp://10.0.0.2:2376").unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].name, "b");
        assert_eq!(nodes[1].host, "tcp://10.0.0.2:2376");
        validate(&nodes).unwrap();
        assert!(parse_hosts("a").is_err());
        assert!(validate(&parse_hosts("A=unix:///x").unwrap()).is_err());
        assert!(validate(&parse_hosts("a=unix:///x,a=unix:///y").unwrap()).is_err());
        assert!(validate(&parse_hosts("a=http://x").unwrap()).is_err());
    }
}
