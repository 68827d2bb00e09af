//! Making a fresh `/workspace` the sandbox user's, whatever the image (a
//! kept one was made so when it was fresh).
//!
//! Docker fills a fresh named volume from the image's directory at create,
//! owner included: an image whose `/workspace` belongs to the sandbox user
//! needs nothing more (the fast path: one archive read per image to check,
//! remembered by image id). Otherwise
//! the volume's root is chowned through the archive API of a helper
//! container that mounts the volume one level down and is never started:
//! the archive API cannot change the directory it extracts into, the
//! sandbox's root is read-only, and an exec would need a shell and `chmod`
//! in the image. The helper needs nothing from the image.

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::StreamExt;
use sandboxer_core::domain::WORKSPACE_ROOT;
use sandboxer_core::port::{CreateRequest, RuntimeError};

use crate::container::{
    LABEL_ROLE, Owner, ROLE_WORKSPACE_PREP, labels, prep_name, workspace_mount,
};
use crate::errors::{Fault, Subject};
use crate::runtime::DockerSandboxRuntime;

/// Where the helper mounts the volume; extracting this directory entry at
/// `/` lands on the volume's root.
const PREP_MOUNT: &str = ".sandboxer-workspace";

impl DockerSandboxRuntime {
    pub(crate) async fn ensure_workspace_owner(
        &self,
        container: &str,
        request: &CreateRequest,
        owner: Owner,
    ) -> Result<(), RuntimeError> {
        let image_id = self.image_id(container).await?;
        let key = (image_id, owner);
        let known = self
            .workspace_ok
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        let ok = match known {
            Some(ok) => ok,
            None => {
                let ok = self.workspace_owner(container).await? == Some(owner);
                let mut cache = self.workspace_ok.lock().unwrap_or_else(|e| e.into_inner());
                cache.put(key, ok);
                ok
            }
        };
        if ok {
            return Ok(());
        }
        self.chown_workspace(request, owner).await
    }

    /// The id of the image the container was made from.
    async fn image_id(&self, container: &str) -> Result<String, RuntimeError> {
        let info = self
            .engine
            .inspect_container(container)
            .await
            .map_err(|f| f.on(Subject::Container))?;
        info.image
            .ok_or_else(|| RuntimeError::Other(format!("container {container} names no image")))
    }

    /// The owner of `/workspace` as the archive API shows it: the first tar
    /// header of the directory. Only that header is read.
    async fn workspace_owner(&self, container: &str) -> Result<Option<Owner>, RuntimeError> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(WORKSPACE_ROOT)
            .build();
        let mut stream = self
            .engine
            .docker
            .download_from_container(container, Some(options));
        let first_header = async {
            let mut head: Vec<u8> = Vec::with_capacity(512);
            while head.len() < 512 {
                match stream.next().await {
                    Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                    Some(Err(err)) => return Err(err),
                    None => break,
                }
            }
            Ok(head)
        };
        let head = self
            .engine
            .call("read workspace owner", first_header)
            .await
            .map_err(|f| f.on(Subject::Container))?;
        if head.len() < 512 {
            return Ok(None);
        }
        let header = tar::Header::from_byte_slice(&head[..512]);
        Ok(match (header.uid(), header.gid()) {
            (Ok(uid), Ok(gid)) => Some(Owner { uid, gid }),
            _ => None,
        })
    }

    /// Chowns the volume's root through a never-started helper container.
    async fn chown_workspace(
        &self,
        request: &CreateRequest,
        owner: Owner,
    ) -> Result<(), RuntimeError> {
        let name = prep_name(request.session_id);
        let mut labels = labels(request, self.config.instance.as_deref());
        labels.insert(LABEL_ROLE.to_owned(), ROLE_WORKSPACE_PREP.to_owned());
        self.label_node(&mut labels);
        let body = ContainerCreateBody {
            image: Some(request.spec.image.clone()),
            // Never run: the create API only wants a command.
            entrypoint: Some(vec!["/.sandboxer-never-run".into()]),
            network_disabled: Some(true),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                mounts: Some(vec![workspace_mount(
                    request,
                    self.config.instance.as_deref(),
                    &format!("/{PREP_MOUNT}"),
                )]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let docker = &self.engine.docker;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        match self
            .engine
            .call(
                "create workspace helper",
                docker.create_container(Some(options), body),
            )
            .await
        {
            Ok(_) => {}
            // Another process adopting the same session is fixing it now.
            Err(Fault::Conflict(_)) => return Ok(()),
            Err(fault) => return Err(fault.on(Subject::Image(&request.spec.image))),
        }
        let upload = UploadToContainerOptionsBuilder::new().path("/").build();
        let archive = owner_archive(owner).map_err(|e| RuntimeError::Other(e.to_string()));
        let chowned = match archive {
            Ok(archive) => self
                .engine
                .call(
                    "chown workspace",
                    docker.upload_to_container(&name, Some(upload), bollard::body_full(archive)),
                )
                .await
                .map_err(|f| f.on(Subject::Container)),
            Err(err) => Err(err),
        };
        let removed = self.force_remove(&name).await;
        chowned?;
        removed.map_err(|f| f.on(Subject::Container))
    }
}

/// A tar with one entry: the helper's mount point, owned by `owner`, 0755.
fn owner_archive(owner: Owner) -> std::io::Result<Bytes> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_path(format!("{PREP_MOUNT}/"))?;
    header.set_mode(0o755);
    header.set_uid(owner.uid);
    header.set_gid(owner.gid);
    header.set_size(0);
    header.set_mtime(now_secs());
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, std::io::empty())?;
    Ok(Bytes::from(builder.into_inner()?))
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
