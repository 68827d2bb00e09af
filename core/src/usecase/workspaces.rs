//! Steps on workspaces shared by the use cases: putting an idle session to
//! sleep (hibernation) and the removal of a workspace marked `deleting`
//! (volume first, then row, so a crash in between is finished by the next
//! cleanup from the row).

use crate::domain::{EndReason, Retention, Session, WorkspaceFate, WorkspaceId};
use crate::port::{RuntimeError, SandboxRef, StoreError};

use super::Ports;

/// Removes a `deleting` workspace's volume, then its row. Idempotent.
///
/// # Errors
/// The runtime's or the store's; the row stays `deleting` for a retry.
pub(crate) async fn delete<E>(ports: &Ports, id: &WorkspaceId) -> Result<(), E>
where
    E: From<RuntimeError> + From<StoreError>,
{
    ports.runtime.delete_workspace(id).await?;
    ports.store.forget_workspace(id).await?;
    Ok(())
}

/// What putting an idle session to sleep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slept {
    /// The container went; the workspace is kept until its retention passes.
    Hibernated,
    /// Retention is off: the workspace went too.
    Deleted,
    /// The session was not active any more: nothing done.
    NotActive,
}

/// Ends an idle session: its container goes, then its row ends
/// `hibernated` with the workspace kept until `now + retention`, or (with
/// retention off) `expired` with the workspace deleted. The caller holds
/// the chat's lock.
///
/// # Errors
/// The runtime's or the store's; a container that cannot be removed leaves
/// the session active (a retry finishes it).
pub(crate) async fn put_to_sleep<E>(
    ports: &Ports,
    session: &Session,
    retention: &Retention,
) -> Result<Slept, E>
where
    E: From<RuntimeError> + From<StoreError>,
{
    ports.runtime.stop(&SandboxRef::from(session)).await?;
    let now = ports.clock.now();
    let fate = retention.fate_at(now);
    let reason = match fate {
        WorkspaceFate::Keep { .. } => EndReason::Hibernated,
        WorkspaceFate::Delete => EndReason::Expired,
    };
    if !ports.store.end(&session.id, reason, now, fate).await? {
        return Ok(Slept::NotActive);
    }
    match fate {
        WorkspaceFate::Keep { .. } => Ok(Slept::Hibernated),
        WorkspaceFate::Delete => {
            delete::<E>(ports, &session.workspace_id).await?;
            Ok(Slept::Deleted)
        }
    }
}
