//! Workspace volumes (DESIGN section 1): made, labelled, before a fresh
//! workspace's sandbox; looked for before a kept one's; removed by
//! `delete_workspace` or by the undo of a failed create on a fresh one,
//! never by a stop; listed, with their sizes on demand.

use std::collections::HashMap;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bollard::models::{Volume, VolumeCreateRequest};
use bollard::query_parameters::{ListVolumesOptionsBuilder, RemoveVolumeOptions};
use chrono::{DateTime, Utc};
use sandboxer_core::domain::{WorkspaceId, WorkspaceUse};
use sandboxer_core::port::{CreateRequest, RuntimeError, RuntimeWorkspace};

use crate::container::{
    LABEL_CREATED_AT, LABEL_WORKSPACE, volume_labels, volume_name, workspace_of_volume,
};
use crate::errors::{Fault, Subject};
use crate::runtime::DockerSandboxRuntime;

/// The pauses of a volume remove that finds the volume in use (a container
/// on it is still being removed): 5 tries in all, 50 ms doubling.
const VOLUME_IN_USE_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(50))
    .with_max_times(4);

/// The disk-usage call walks every volume's files: it gets this many
/// `call_timeout`s.
const MEASURE_CALL_TIMEOUTS: u32 = 4;

/// What `delete_workspace` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    Removed,
    AlreadyGone,
}

impl DockerSandboxRuntime {
    /// Readies the volume `request` mounts: a fresh workspace's is made now
    /// with its labels (one already there, as a racing create of the same
    /// session made it, is taken as it is); a kept one must still be there:
    /// mounting a vanished one would give the chat an empty workspace as if
    /// nothing had happened.
    pub(crate) async fn prepare_workspace(
        &self,
        request: &CreateRequest,
    ) -> Result<(), RuntimeError> {
        let docker = &self.engine.docker;
        match request.workspace {
            WorkspaceUse::Fresh(id) => {
                let mut labels = volume_labels(request, self.config.instance.as_deref());
                self.label_node(&mut labels);
                let volume = VolumeCreateRequest {
                    name: Some(volume_name(id)),
                    labels: Some(labels),
                    ..Default::default()
                };
                match self
                    .engine
                    .call("create volume", docker.create_volume(volume))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(fault) => {
                        if matches!(fault, Fault::Timeout { .. }) {
                            // The engine may still make it.
                            self.remove_volume_quietly(id).await;
                        }
                        Err(fault.on(Subject::Engine))
                    }
                }
            }
            WorkspaceUse::Kept(id) => {
                let name = volume_name(id);
                match self
                    .engine
                    .call("inspect volume", docker.inspect_volume(&name))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(fault) if fault.is_not_found() => Err(RuntimeError::Conflict(format!(
                        "workspace {id} is gone: its volume {name} no longer exists (removed \
                         outside the service?), so its files are lost and it cannot be \
                         mounted again"
                    ))),
                    Err(fault) => Err(fault.on(Subject::Engine)),
                }
            }
        }
    }

    /// Removes the workspace's volume; one already gone is `AlreadyGone`.
    /// A volume in use is tried again briefly (a container on it may be
    /// being removed right now), then is `Conflict`. Docker removes a
    /// volume whole or not at all.
    pub(crate) async fn remove_volume(&self, workspace: WorkspaceId) -> Result<Deleted, Fault> {
        let name = &volume_name(workspace);
        let remove = move || async move {
            let removed = self
                .engine
                .call(
                    "remove volume",
                    self.engine
                        .docker
                        .remove_volume(name, None::<RemoveVolumeOptions>),
                )
                .await;
            match removed {
                Ok(()) => Ok(Deleted::Removed),
                Err(fault) if fault.is_not_found() => Ok(Deleted::AlreadyGone),
                Err(fault) => Err(fault),
            }
        };
        remove
            .retry(VOLUME_IN_USE_RETRY)
            .when(|fault| matches!(fault, Fault::Conflict(_)))
            .await
    }

    /// Undoes a failed create's fresh volume, best effort (a container of
    /// a racing create of the same session on it keeps it: in use).
    pub(crate) async fn remove_volume_quietly(&self, workspace: WorkspaceId) {
        if let Err(fault) = self.remove_volume(workspace).await {
            tracing::warn!(%workspace, ?fault, "could not remove the volume of a failed create; reconciliation removes it");
        }
    }

    /// `SandboxRuntime::delete_workspace`.
    pub(crate) async fn delete_workspace_volume(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Deleted, RuntimeError> {
        self.remove_volume(workspace)
            .await
            .map_err(|fault| match fault {
                Fault::Conflict(msg) => RuntimeError::Conflict(format!(
                    "workspace {workspace} is still mounted by a sandbox: {msg}"
                )),
                other => other.on(Subject::Engine),
            })
    }

    /// `SandboxRuntime::list_workspaces`: every volume labelled as ours
    /// (and this instance's when one is configured) that names a
    /// workspace, by its `sandboxer.workspace-id` label or, for a volume of
    /// the release before workspaces (labelled with its session), by its
    /// name. With `measure`, the sizes from the engine's disk usage; should
    /// that fail, the list comes without them (`false`).
    pub(crate) async fn list_workspace_volumes(
        &self,
        measure: bool,
    ) -> Result<(Vec<RuntimeWorkspace>, bool), RuntimeError> {
        let wanted = self.ours();
        let filters = HashMap::from([("label", wanted)]);
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        let listed = self
            .engine
            .call(
                "list volumes",
                self.engine.docker.list_volumes(Some(options)),
            )
            .await
            .map_err(|f| f.on(Subject::Engine))?;
        let mut workspaces: Vec<(String, RuntimeWorkspace)> = Vec::new();
        for volume in listed.volumes.unwrap_or_default() {
            match parse_volume(&volume) {
                Ok(workspace) => workspaces.push((volume.name, workspace)),
                Err(reason) => {
                    tracing::warn!(volume = %volume.name, %reason, "skipping a volume labelled as ours that names no workspace");
                }
            }
        }
        let sizes = if measure {
            match self.volume_sizes().await {
                Ok(sizes) => Some(sizes),
                Err(fault) => {
                    tracing::warn!(
                        ?fault,
                        "could not measure the workspaces; listing them without sizes"
                    );
                    None
                }
            }
        } else {
            None
        };
        let measured = sizes.is_some();
        let workspaces = workspaces
            .into_iter()
            .map(|(name, mut workspace)| {
                workspace.bytes = sizes.as_ref().and_then(|s| s.get(&name).copied());
                workspace
            })
            .collect();
        Ok((workspaces, measured))
    }

    /// Bytes per volume name, from the engine's disk usage (`system df`),
    /// in either of its shapes (see `sizes_of`).
    async fn volume_sizes(&self) -> Result<HashMap<String, u64>, Fault> {
        let limit = self.config.call_timeout * MEASURE_CALL_TIMEOUTS;
        let usage = self
            .engine
            .get_json("disk usage", "/system/df?type=volume&verbose=1", limit)
            .await?;
        Ok(sizes_of(&usage))
    }
}

/// A listed volume as a workspace; `Err` says why it is not one.
fn parse_volume(volume: &Volume) -> Result<RuntimeWorkspace, String> {
    let id = match volume.labels.get(LABEL_WORKSPACE) {
        Some(id) => WorkspaceId::parse(id).map_err(|e| format!("{LABEL_WORKSPACE}: {e}"))?,
        // The release before workspaces: named after its session.
        None => workspace_of_volume(&volume.name)
            .ok_or_else(|| format!("no {LABEL_WORKSPACE} label and not named as a workspace"))?,
    };
    if volume_name(id) != volume.name {
        return Err(format!(
            "labelled workspace {id} but named otherwise, so deleting {id} would not find it"
        ));
    }
    let parse = |at: &str| {
        DateTime::parse_from_rfc3339(at)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    };
    // Ours say when their session was made (the service's clock); the
    // engine's own time is for the rest.
    let created_at = volume
        .labels
        .get(LABEL_CREATED_AT)
        .and_then(|at| parse(at))
        .or_else(|| volume.created_at.as_deref().and_then(parse));
    Ok(RuntimeWorkspace {
        id,
        created_at,
        bytes: None,
    })
}

/// Bytes per volume name in a `GET /system/df` answer: engines before API
/// 1.52 list volumes under `Volumes`, later ones under
/// `VolumeUsage.Items` (with `verbose`). A size the engine cannot tell is
/// -1 and left out.
fn sizes_of(usage: &serde_json::Value) -> HashMap<String, u64> {
    let legacy = usage.get("Volumes");
    let current = usage.pointer("/VolumeUsage/Items");
    [legacy, current]
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_array)
        .flatten()
        .filter_map(|volume| {
            let name = volume.get("Name")?.as_str()?;
            let size = volume.pointer("/UsageData/Size")?.as_i64()?;
            Some((name.to_owned(), u64::try_from(size).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn volume(name: &str, labels: &[(&str, &str)], created_at: Option<&str>) -> Volume {
        Volume {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            created_at: created_at.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn volumes_name_their_workspace_by_label_or_legacy_name() {
        let id = WorkspaceId::new();
        let ours = volume(
            &volume_name(id),
            &[
                (LABEL_WORKSPACE, &id.to_string()),
                (LABEL_CREATED_AT, "2024-05-01T10:00:00.123Z"),
            ],
            Some("2030-01-01T00:00:00Z"),
        );
        let seen = parse_volume(&ours).unwrap();
        assert_eq!(seen.id, id);
        assert_eq!(
            seen.created_at.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00.123+00:00",
            "the label wins over the engine's time"
        );
        // The release before: labelled with its session, named after it.
        let session = sandboxer_core::domain::SessionId::new();
        let legacy = volume(
            &format!("sandboxer-{session}"),
            &[("sandboxer.session-id", &session.to_string())],
            Some("2024-05-01T12:00:00+02:00"),
        );
        let seen = parse_volume(&legacy).unwrap();
        assert_eq!(seen.id, WorkspaceId::of_legacy_session(session));
        assert_eq!(
            seen.created_at.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00+00:00"
        );
        let mismatched = volume(
            "sandboxer-elsewhere",
            &[(LABEL_WORKSPACE, &id.to_string())],
            None,
        );
        assert!(parse_volume(&mismatched).is_err());
        assert!(parse_volume(&volume("sandboxer-agent-0123", &[], None)).is_err());
        let bad = volume(&volume_name(id), &[(LABEL_WORKSPACE, "nope")], None);
        assert!(parse_volume(&bad).is_err());
    }

    #[test]
    fn sizes_are_read_from_either_shape_of_disk_usage() {
        let legacy = json!({
            "LayersSize": 1,
            "Volumes": [
                {"Name": "a", "UsageData": {"RefCount": 0, "Size": 10}},
                {"Name": "b", "UsageData": {"RefCount": 1, "Size": -1}},
                {"Name": "c"}
            ]
        });
        assert_eq!(sizes_of(&legacy), HashMap::from([("a".to_owned(), 10)]));
        let current = json!({
            "VolumeUsage": {"TotalSize": 7, "Items": [
                {"Name": "a", "UsageData": {"RefCount": 0, "Size": 7}}
            ]}
        });
        assert_eq!(sizes_of(&current), HashMap::from([("a".to_owned(), 7)]));
        assert!(sizes_of(&json!({"Volumes": null})).is_empty());
    }
}
