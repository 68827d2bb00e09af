//! The agent's binary in a named volume, one per agent build: made once,
//! filled through the archive API of a never-started helper container (no
//! host bind mount: the engine may be remote), checked by digest, and
//! mounted read-only into every sandbox. Volumes of other builds are
//! removed once no sandbox uses them.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveVolumeOptions, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::StreamExt;
use sandboxer_core::port::RuntimeError;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{AGENT_DIR, AgentBinary, LABEL_AGENT};
use crate::container::LABEL_ROLE;
use crate::errors::{Fault, Subject};
use crate::runtime::DockerSandboxRuntime;

const ROLE_AGENT: &str = "agent";
const ROLE_AGENT_FILL: &str = "agent-fill";
const FILE_NAME: &str = "sandboxer-agent";

impl DockerSandboxRuntime {
    /// The agent's volume, ready; made and checked once per process (a
    /// failure is tried again by the next create). `image` is any image the
    /// engine holds: the helper is never started.
    pub(crate) async fn agent_volume(
        &self,
        agent: &AgentBinary,
        image: &str,
    ) -> Result<String, RuntimeError> {
        self.agent_volume
            .get_or_try_init(|| self.fill_agent_volume(agent, image))
            .await
            .cloned()
    }

    async fn fill_agent_volume(
        &self,
        agent: &AgentBinary,
        image: &str,
    ) -> Result<String, RuntimeError> {
        let name = agent.volume_name();
        let labels = HashMap::from([
            (LABEL_ROLE.to_owned(), ROLE_AGENT.to_owned()),
            (LABEL_AGENT.to_owned(), agent.digest().to_owned()),
        ]);
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(labels),
            ..Default::default()
        };
        // Idempotent: an existing volume of that name is returned as is.
        self.engine
            .call(
                "create agent volume",
                self.engine.docker.create_volume(request),
            )
            .await
            .map_err(|f| f.on(Subject::Engine))?;
        let helper = format!("sandboxer-agent-fill-{}", Uuid::now_v7().simple());
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            entrypoint: Some(vec!["/.sandboxer-never-run".into()]),
            network_disabled: Some(true),
            labels: Some(HashMap::from([(
                LABEL_ROLE.to_owned(),
                ROLE_AGENT_FILL.to_owned(),
            )])),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                mounts: Some(vec![Mount {
                    target: Some(AGENT_DIR.to_owned()),
                    source: Some(name.clone()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(false),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&helper).build();
        self.engine
            .call(
                "create agent helper",
                self.engine.docker.create_container(Some(options), body),
            )
            .await
            .map_err(|f| f.on(Subject::Image(image)))?;
        let filled = self.fill_through(&helper, agent).await;
        if let Err(fault) = self.force_remove(&helper).await {
            tracing::warn!(%helper, ?fault, "could not remove the agent volume's helper");
        }
        filled?;
        self.remove_other_agent_volumes(&name).await;
        tracing::info!(volume = %name, digest = agent.digest(), "the agent volume is ready");
        Ok(name)
    }

    /// Writes the binary unless the volume holds it already, then checks it.
    async fn fill_through(&self, helper: &str, agent: &AgentBinary) -> Result<(), RuntimeError> {
        if self.agent_digest_in(helper).await?.as_deref() == Some(agent.digest()) {
            return Ok(());
        }
        let archive = agent_archive(agent.bytes())
            .map_err(|e| RuntimeError::Other(format!("could not build the agent archive: {e}")))?;
        let options = UploadToContainerOptionsBuilder::new()
            .path(AGENT_DIR)
            .build();
        self.engine
            .call(
                "put agent",
                self.engine.docker.upload_to_container(
                    helper,
                    Some(options),
                    bollard::body_full(archive),
                ),
            )
            .await
            .map_err(|f| f.on(Subject::Container))?;
        match self.agent_digest_in(helper).await? {
            Some(found) if found == agent.digest() => Ok(()),
            found => Err(RuntimeError::Other(format!(
                "the agent volume holds {found:?} after writing agent {}",
                agent.digest()
            ))),
        }
    }

    /// The digest of the agent file in the helper's volume, if there is one.
    async fn agent_digest_in(&self, helper: &str) -> Result<Option<String>, RuntimeError> {
        let path = format!("{AGENT_DIR}/{FILE_NAME}");
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(&path)
            .build();
        let mut stream = self
            .engine
            .docker
            .download_from_container(helper, Some(options));
        let read_all = async {
            let mut tar = Vec::new();
            while let Some(chunk) = stream.next().await {
                tar.extend_from_slice(&chunk?);
            }
            Ok::<_, bollard::errors::Error>(tar)
        };
        let tar = match self.engine.call("read agent", read_all).await {
            Ok(tar) => tar,
            Err(fault) if fault.is_not_found() => return Ok(None),
            Err(fault) => return Err(fault.on(Subject::Container)),
        };
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive
            .entries()
            .map_err(|e| RuntimeError::Other(format!("the agent archive does not read: {e}")))?;
        let Some(Ok(mut entry)) = entries.next() else {
            return Ok(None);
        };
        let mut binary = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut binary)
            .map_err(|e| RuntimeError::Other(format!("the agent archive does not read: {e}")))?;
        Ok(Some(
            Sha256::digest(&binary)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        ))
    }

    /// Removes agent volumes of other builds; those still mounted by a
    /// sandbox are refused by the engine and stay until a later start.
    async fn remove_other_agent_volumes(&self, keep: &str) {
        let filters = HashMap::from([("label", vec![format!("{LABEL_ROLE}={ROLE_AGENT}")])]);
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        let listed = self
            .engine
            .call(
                "list agent volumes",
                self.engine.docker.list_volumes(Some(options)),
            )
            .await;
        let volumes = match listed {
            Ok(list) => list.volumes.unwrap_or_default(),
            Err(fault) => {
                tracing::warn!(?fault, "could not list agent volumes");
                return;
            }
        };
        for volume in volumes.into_iter().filter(|v| v.name != keep) {
            let removed = self
                .engine
                .call(
                    "remove agent volume",
                    self.engine
                        .docker
                        .remove_volume(&volume.name, None::<RemoveVolumeOptions>),
                )
                .await;
            match removed {
                Ok(()) => {
                    tracing::info!(volume = %volume.name, "removed the agent volume of another build")
                }
                Err(Fault::Conflict(_)) => {}
                Err(fault) if fault.is_not_found() => {}
                Err(fault) => {
                    tracing::warn!(volume = %volume.name, ?fault, "could not remove an agent volume")
                }
            }
        }
    }
}

/// A tar with the agent binary, root-owned, 0755: the sandbox user may run
/// it, not change it.
fn agent_archive(binary: &[u8]) -> std::io::Result<Bytes> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_path(FILE_NAME)?;
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(binary.len() as u64);
    header.set_mtime(crate::workspace::now_secs());
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::with_capacity(binary.len() + 1024));
    builder.append(&header, binary)?;
    Ok(Bytes::from(builder.into_inner()?))
}
