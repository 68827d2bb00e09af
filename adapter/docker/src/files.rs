//! Files in and out of the workspace through the archive API (tar), which
//! works on a read-only root for paths in the workspace volume. Files and
//! the directories made for them belong to the sandbox user.

use bollard::container::PathStatResponse;
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::StreamExt;
use sandboxer_core::domain::{ContainerState, FileEntry, FileKind, WORKSPACE_ROOT, WorkspacePath};
use sandboxer_core::port::{RuntimeError, SandboxRef};

use crate::agent::Via;
use crate::container::Owner;
use crate::errors::{Fault, Subject};
use crate::runtime::DockerSandboxRuntime;
use crate::workspace::now_secs;

fn too_large(path: &WorkspacePath, limit: u64) -> RuntimeError {
    RuntimeError::Rejected(format!(
        "{path} is larger than the download limit of {limit} bytes"
    ))
}

/// Go's `os.FileMode` bits, as the archive API reports modes.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;

impl DockerSandboxRuntime {
    pub(crate) async fn put_routed(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
        contents: &[u8],
    ) -> Result<Via, RuntimeError> {
        let target = Self::target(sandbox);
        if let Some(agent) = self.agent_of(&target).await? {
            self.put_via_agent(&agent, &target, path, contents).await?;
            return Ok(Via::Agent);
        }
        self.put(sandbox, path, contents).await?;
        Ok(Via::Docker)
    }

    pub(crate) async fn get_routed(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
    ) -> Result<(Vec<u8>, Via), RuntimeError> {
        let target = Self::target(sandbox);
        if let Some(agent) = self.agent_of(&target).await? {
            let bytes = self.get_via_agent(&agent, &target, path).await?;
            return Ok((bytes, Via::Agent));
        }
        Ok((self.get(sandbox, path).await?, Via::Docker))
    }

    pub(crate) async fn list_routed(
        &self,
        sandbox: &SandboxRef,
        dir: Option<&WorkspacePath>,
    ) -> Result<(Vec<FileEntry>, Via), RuntimeError> {
        let target = Self::target(sandbox);
        if let Some(agent) = self.agent_of(&target).await? {
            let entries = self.list_via_agent(&agent, &target, dir).await?;
            return Ok((entries, Via::Agent));
        }
        Ok((self.list(sandbox, dir).await?, Via::Docker))
    }

    /// A directory's entries from its archive: the headers one level down
    /// (the archive API has no listing). Bounded like a download.
    pub(crate) async fn list(
        &self,
        sandbox: &SandboxRef,
        dir: Option<&WorkspacePath>,
    ) -> Result<Vec<FileEntry>, RuntimeError> {
        let target = Self::target(sandbox);
        let absolute = dir.map_or_else(|| WORKSPACE_ROOT.to_owned(), WorkspacePath::absolute);
        let shown = || dir.map_or_else(String::new, ToString::to_string);
        match self.stat(&target, &absolute).await? {
            None => {
                return Err(match self.inspect_sandbox(sandbox).await? {
                    ContainerState::Missing => RuntimeError::ContainerGone,
                    _ => RuntimeError::FileNotFound(shown()),
                });
            }
            Some(stat) if stat.file_mode & GO_MODE_DIR == 0 => {
                return Err(RuntimeError::NotADirectory(shown()));
            }
            Some(_) => {}
        }
        let limit = self.config.max_download_bytes;
        let archive = self
            .download_archive(&target, &absolute, limit, "list archive")
            .await
            .map_err(|f| f.on(Subject::File(&shown())))?
            .ok_or_else(|| {
                RuntimeError::Rejected(format!(
                    "{} holds more than {limit} bytes: too large to list without the sandbox agent",
                    shown()
                ))
            })?;
        entries_of(&archive).map_err(|e| {
            RuntimeError::Other(format!("the archive of {} does not read: {e}", shown()))
        })
    }

    /// The archive of `absolute` in memory; `None` past `limit` bytes.
    async fn download_archive(
        &self,
        target: &str,
        absolute: &str,
        limit: u64,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, Fault> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(absolute)
            .build();
        let mut stream = self
            .engine
            .docker
            .download_from_container(target, Some(options));
        let download = async {
            let mut archive = Vec::new();
            while let Some(chunk) = stream.next().await {
                archive.extend_from_slice(&chunk?);
                if archive.len() as u64 > limit {
                    return Ok(None);
                }
            }
            Ok(Some(archive))
        };
        self.engine.call(what, download).await
    }

    pub(crate) async fn put(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
        contents: &[u8],
    ) -> Result<(), RuntimeError> {
        let target = Self::target(sandbox);
        let owner = self.owner(&target).await?;
        let missing = self.missing_dirs(&target, path).await?;
        let archive = file_archive(path, &missing, contents, owner)
            .map_err(|e| RuntimeError::Other(format!("could not build the archive: {e}")))?;
        let options = UploadToContainerOptionsBuilder::new()
            .path(WORKSPACE_ROOT)
            .no_overwrite_dir_non_dir("true")
            .build();
        self.engine
            .call(
                "put archive",
                self.engine.docker.upload_to_container(
                    &target,
                    Some(options),
                    bollard::body_full(archive),
                ),
            )
            .await
            .map_err(|fault| match fault {
                Fault::BadRequest(msg) | Fault::Other(msg) if msg.contains("directory") => {
                    RuntimeError::NotAFile(path.to_string())
                }
                other => other.on(Subject::File(path.as_str())),
            })
    }

    pub(crate) async fn get(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, RuntimeError> {
        let target = Self::target(sandbox);
        let absolute = path.absolute();
        match self.stat(&target, &absolute).await? {
            None => {
                // A HEAD's 404 has no message: is it the file or the container?
                return Err(match self.inspect_sandbox(sandbox).await? {
                    ContainerState::Missing => RuntimeError::ContainerGone,
                    _ => RuntimeError::FileNotFound(path.to_string()),
                });
            }
            Some(stat) if stat.file_mode & (GO_MODE_DIR | GO_MODE_SYMLINK) != 0 => {
                return Err(RuntimeError::NotAFile(path.to_string()));
            }
            Some(stat)
                if u64::try_from(stat.size).unwrap_or(u64::MAX)
                    > self.config.max_download_bytes =>
            {
                return Err(too_large(path, self.config.max_download_bytes));
            }
            Some(_) => {}
        }
        // The file may grow between the stat and the download: bound the
        // archive too (tar headers and padding take a little over the file).
        let archive_limit = self.config.max_download_bytes.saturating_add(64 * 1024);
        let archive = self
            .download_archive(&target, &absolute, archive_limit, "get archive")
            .await
            .map_err(|f| f.on(Subject::File(path.as_str())))?
            .ok_or_else(|| too_large(path, self.config.max_download_bytes))?;
        first_regular_file(&archive)
            .map_err(|e| RuntimeError::Other(format!("unreadable archive: {e}")))?
            .ok_or_else(|| RuntimeError::NotAFile(path.to_string()))
    }

    /// The sandbox user of `target`, from the cache or an inspect.
    async fn owner(&self, target: &str) -> Result<Owner, RuntimeError> {
        if let Some(owner) = self.cached_owner(target) {
            return Ok(owner);
        }
        let info = self
            .engine
            .inspect_container(target)
            .await
            .map_err(|f| f.on(Subject::Container))?;
        let user = info.config.and_then(|c| c.user).unwrap_or_default();
        let owner = Owner::parse(&user)?;
        self.remember_owner(target, owner);
        Ok(owner)
    }

    /// `None` when nothing is at `absolute` (or the container is gone).
    async fn stat(
        &self,
        target: &str,
        absolute: &str,
    ) -> Result<Option<PathStatResponse>, RuntimeError> {
        let options = ContainerArchiveInfoOptionsBuilder::new()
            .path(absolute)
            .build();
        match self
            .engine
            .call(
                "stat path",
                self.engine
                    .docker
                    .get_container_archive_info(target, Some(options)),
            )
            .await
        {
            Ok(stat) => Ok(Some(stat)),
            Err(fault) if fault.is_not_found() => Ok(None),
            Err(fault) => Err(fault.on(Subject::Container)),
        }
    }

    /// Parent directories of `path` that do not exist yet, outermost first.
    /// A directory at `path`, or a non-directory on the way, is `NotAFile`.
    async fn missing_dirs(
        &self,
        target: &str,
        path: &WorkspacePath,
    ) -> Result<Vec<String>, RuntimeError> {
        match self.stat(target, &path.absolute()).await {
            Ok(Some(stat)) if stat.file_mode & GO_MODE_DIR != 0 => {
                return Err(RuntimeError::NotAFile(path.to_string()));
            }
            Ok(Some(_)) => return Ok(Vec::new()),
            Ok(None) => {}
            // A HEAD through a regular file fails with a bare 500 (ENOTDIR):
            // the walk up the parents below finds the file in the way.
            Err(RuntimeError::Other(_)) if path.parent().is_some() => {}
            Err(err) => return Err(err),
        }
        let mut missing = Vec::new();
        let mut dir = path.parent();
        while let Some(current) = dir {
            match self
                .stat(target, &format!("{WORKSPACE_ROOT}/{current}"))
                .await?
            {
                Some(stat) if stat.file_mode & GO_MODE_DIR != 0 => break,
                // A file or a symlink where a directory should be: no
                // writing through links.
                Some(_) => return Err(RuntimeError::NotAFile(current.to_owned())),
                None => missing.push(current.to_owned()),
            }
            dir = current.rsplit_once('/').map(|(parent, _)| parent);
        }
        missing.reverse();
        Ok(missing)
    }
}

/// The tar to extract at `/workspace`: the missing directories (0755) and
/// the file (0644), all owned by the sandbox user.
fn file_archive(
    path: &WorkspacePath,
    missing_dirs: &[String],
    contents: &[u8],
    owner: Owner,
) -> std::io::Result<Bytes> {
    let mtime = now_secs();
    let mut builder = tar::Builder::new(Vec::with_capacity(contents.len() + 1024));
    for dir in missing_dirs {
        let mut header = header(owner, mtime, 0o755, tar::EntryType::Directory, 0);
        builder.append_data(&mut header, format!("{dir}/"), std::io::empty())?;
    }
    let size = u64::try_from(contents.len()).unwrap_or(u64::MAX);
    let mut header = header(owner, mtime, 0o644, tar::EntryType::Regular, size);
    builder.append_data(&mut header, path.as_str(), contents)?;
    Ok(Bytes::from(builder.into_inner()?))
}

fn header(owner: Owner, mtime: u64, mode: u32, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(owner.uid);
    header.set_gid(owner.gid);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}

/// The contents of the archive's first entry if it is a regular file.
fn first_regular_file(archive: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(archive);
    let Some(entry) = archive.entries()?.next() else {
        return Ok(None);
    };
    let mut entry = entry?;
    if !entry.header().entry_type().is_file() {
        return Ok(None);
    }
    let mut contents = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
    entry.read_to_end(&mut contents)?;
    Ok(Some(contents))
}

/// The entries one level below the archive's top directory, sorted by name.
fn entries_of(archive: &[u8]) -> std::io::Result<Vec<FileEntry>> {
    let mut entries = Vec::new();
    for entry in tar::Archive::new(archive).entries()? {
        let entry = entry?;
        let path = entry.path()?.into_owned();
        // `top/name` is one level down; `top` itself and deeper paths are not.
        let mut parts = path.components();
        let (Some(_), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => FileKind::Dir,
            tar::EntryType::Symlink => FileKind::Symlink,
            tar::EntryType::Regular | tar::EntryType::Continuous => FileKind::File,
            // A hard link to an earlier entry is a regular file too.
            tar::EntryType::Link => FileKind::File,
            _ => FileKind::Other,
        };
        let size = if kind == FileKind::File {
            header.size()?
        } else {
            0
        };
        let mtime = i64::try_from(header.mtime()?).unwrap_or(i64::MAX);
        entries.push(FileEntry {
            name: name.as_os_str().to_string_lossy().into_owned(),
            kind,
            size,
            modified_ms: mtime.saturating_mul(1000),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_holds_dirs_then_the_file() {
        let owner = Owner {
            uid: 1000,
            gid: 1000,
        };
        let path = WorkspacePath::parse("a/b/c.txt").unwrap();
        let bytes = file_archive(&path, &["a".into(), "a/b".into()], b"hi", owner).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let names: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("a/".into(), 1000),
                ("a/b/".into(), 1000),
                ("a/b/c.txt".into(), 1000)
            ]
        );
        let file_only = file_archive(&path, &[], b"hi", owner).unwrap();
        assert_eq!(first_regular_file(&file_only).unwrap().unwrap(), b"hi");
    }
}
