//! The baseline: the same sandbox container, made and used with raw bollard
//! calls. The create body comes from the adapter's own builder
//! (`sandboxer_docker::testing::sandbox_create_body`), so image, labels,
//! `HostConfig` and the workspace volume are the very ones the service
//! sends; only the instance label differs (`<run>-raw`), so the service
//! never sees these containers.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bollard::Docker;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ContainerInspectResponse, ExecConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, InspectContainerOptions,
    RemoveContainerOptionsBuilder, RemoveVolumeOptions, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::StreamExt;
use sandboxer_core::domain::{SessionId, WorkspaceId, WorkspaceUse};
use sandboxer_core::port::CreateRequest;
use sandboxer_docker::testing::{
    create_request, footprint_names, sandbox_create_body, test_spec, volume_name,
};

/// The sandbox user of the default spec: files put in belong to it.
const OWNER: u64 = 1000;

pub struct Raw {
    pub docker: Docker,
    pub image: String,
    pub instance: String,
}

/// A container made by the baseline.
#[derive(Debug, Clone)]
pub struct RawBox {
    pub id: String,
    pub workspace: WorkspaceId,
}

impl Raw {
    /// Create and start, as the adapter does (named `sandboxer-<session>`).
    pub async fn create_start(&self) -> anyhow::Result<(Duration, RawBox)> {
        let request = create_request(test_spec(&self.image, "runc"));
        self.create_start_of(&request, true).await
    }

    /// Create and start on a workspace volume that exists already (a
    /// resume's baseline): a first container makes the volume and goes,
    /// then the timed create and start of a second one on it.
    pub async fn create_start_kept(&self) -> anyhow::Result<(Duration, RawBox)> {
        let first = create_request(test_spec(&self.image, "runc"));
        let (_, made) = self.create_start_of(&first, false).await?;
        let keep_volume = RemoveContainerOptionsBuilder::new().force(true).build();
        self.docker
            .remove_container(&made.id, Some(keep_volume))
            .await
            .context("raw remove of the volume's first container")?;
        let request = CreateRequest {
            session_id: SessionId::new(),
            workspace: WorkspaceUse::Kept(first.workspace.id()),
            ..first
        };
        self.create_start_of(&request, true).await
    }

    /// The same config as the service's, agent included (its volume is
    /// made by the service or adapter run before this one); timed from the
    /// create to the start (when `start`).
    async fn create_start_of(
        &self,
        request: &CreateRequest,
        start: bool,
    ) -> anyhow::Result<(Duration, RawBox)> {
        let agent = sandboxer_docker::testing::test_agent();
        let body = sandbox_create_body(request, Some(&self.instance), Some(&agent))?;
        let [name, _, _] = footprint_names(request.session_id);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let started = Instant::now();
        let made = self
            .docker
            .create_container(Some(options), body)
            .await
            .context("raw create")?;
        if start {
            self.docker
                .start_container(&made.id, None)
                .await
                .context("raw start")?;
        }
        Ok((
            started.elapsed(),
            RawBox {
                id: made.id,
                workspace: request.workspace.id(),
            },
        ))
    }

    /// One inspect: the Docker call a reuse makes.
    pub async fn inspect(&self, b: &RawBox) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let info = self.inspect_full(&b.id).await?;
        let took = started.elapsed();
        ensure!(
            info.state.and_then(|s| s.running) == Some(true),
            "raw container {} is not running",
            b.id
        );
        Ok(took)
    }

    pub async fn inspect_full(&self, id: &str) -> anyhow::Result<ContainerInspectResponse> {
        self.docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .context("raw inspect")
    }

    /// create exec, start attached, read the output to the end, inspect
    /// the exit code: what any client of the exec API has to do.
    pub async fn exec(&self, b: &RawBox, argv: &[&str]) -> anyhow::Result<(Duration, i64, String)> {
        let started = Instant::now();
        let exec = self
            .docker
            .create_exec(
                &b.id,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv.iter().map(|s| (*s).to_owned()).collect()),
                    working_dir: Some("/workspace".into()),
                    ..Default::default()
                },
            )
            .await
            .context("raw create exec")?;
        let options = StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: None,
        };
        let mut stdout = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, Some(options))
            .await
            .context("raw start exec")?
        {
            while let Some(chunk) = output.next().await {
                if let bollard::container::LogOutput::StdOut { message } = chunk? {
                    stdout.extend_from_slice(&message);
                }
            }
        }
        let info = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .context("raw inspect exec")?;
        Ok((
            started.elapsed(),
            info.exit_code.unwrap_or(-1),
            String::from_utf8_lossy(&stdout).into_owned(),
        ))
    }

    /// Puts `contents` at `/workspace/<file>` (one archive upload).
    pub async fn put(&self, b: &RawBox, file: &str, contents: &Bytes) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let archive = one_file_tar(file, contents)?;
        let options = UploadToContainerOptionsBuilder::new()
            .path("/workspace")
            .build();
        self.docker
            .upload_to_container(&b.id, Some(options), bollard::body_full(archive))
            .await
            .context("raw put archive")?;
        Ok(started.elapsed())
    }

    /// Gets `/workspace/<file>` back (one archive download, untarred).
    pub async fn get(&self, b: &RawBox, file: &str) -> anyhow::Result<(Duration, Vec<u8>)> {
        let started = Instant::now();
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(&format!("/workspace/{file}"))
            .build();
        let mut stream = self.docker.download_from_container(&b.id, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            archive.extend_from_slice(&chunk.context("raw get archive")?);
        }
        let contents = first_file(&archive)?;
        Ok((started.elapsed(), contents))
    }

    /// Removes the container with force and its workspace volume, as the
    /// adapter's stop does.
    pub async fn remove(&self, b: &RawBox) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let force = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        self.docker
            .remove_container(&b.id, Some(force))
            .await
            .context("raw remove container")?;
        let volume = volume_name(b.workspace);
        self.docker
            .remove_volume(&volume, None::<RemoveVolumeOptions>)
            .await
            .context("raw remove volume")?;
        Ok(started.elapsed())
    }
}

fn one_file_tar(name: &str, contents: &[u8]) -> anyhow::Result<Bytes> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(OWNER);
    header.set_gid(OWNER);
    header.set_size(contents.len() as u64);
    let mut builder = tar::Builder::new(Vec::with_capacity(contents.len() + 1024));
    builder.append_data(&mut header, name, contents)?;
    Ok(Bytes::from(builder.into_inner()?))
}

fn first_file(archive: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(archive);
    let Some(entry) = archive.entries()?.next() else {
        bail!("the archive is empty");
    };
    let mut entry = entry?;
    let mut contents = Vec::new();
    entry.read_to_end(&mut contents)?;
    Ok(contents)
}
