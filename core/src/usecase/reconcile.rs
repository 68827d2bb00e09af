//! `Reconcile`: bring the store and the runtime back in line (DESIGN
//! sections 2 and 3). Containers labelled as ours without an active row
//! (orphans) are removed, and so are workspace volumes without a workspace
//! row; active rows whose container is gone are ended `container_gone`
//! (their workspace kept, hibernated); `creating` rows left by a dead
//! process are finished (container running: adopt) or undone (a fresh
//! workspace goes, a kept one stays hibernated with its files).
//!
//! Containers and volumes are listed before rows: a row is always written
//! before its container or volume, so a listed one with no row really has
//! none.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    ContainerState, EndReason, Policy, Retention, Session, SessionId, SessionStatus, Timestamp,
    WorkspaceId, WorkspaceUse,
};
use crate::port::tracer::SpanKind;
use crate::port::{RuntimeSandbox, RuntimeWorkspace, SandboxRef};
use crate::trace::{Step, attr::key, attr::op, attr::span};

use super::record_counts;

use super::Ports;
use super::create_sandbox::undone_fate;
use super::errors::CleanupError;
use super::guards::SessionGuards;

#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// A periodic run leaves containers without an active row alone while
    /// they are younger than this.
    pub orphan_grace: Duration,
    /// A periodic run settles `creating` rows older than this.
    pub creating_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileMode {
    /// Before the service takes requests: nothing of ours is in flight, so
    /// every `creating` row and every orphan is settled now.
    Startup,
    /// Alongside live traffic: only what is older than the settings allow.
    Periodic,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub orphans_removed: u64,
    pub containers_gone: u64,
    pub adopted: u64,
    pub undone: u64,
    pub failed: u64,
}

#[derive(Clone)]
pub struct Reconcile {
    ports: Ports,
    guards: Arc<SessionGuards>,
    settings: ReconcileSettings,
    /// What an undone or ended session's workspace becomes.
    fates: (Policy, Retention),
}

impl Reconcile {
    pub fn new(
        ports: Ports,
        guards: Arc<SessionGuards>,
        settings: ReconcileSettings,
        fates: (Policy, Retention),
    ) -> Self {
        Self {
            ports,
            guards,
            settings,
            fates,
        }
    }

    /// # Errors
    /// `CleanupError` when the runtime or the store cannot be listed; a
    /// failure on one sandbox is counted in `failed` and the run goes on.
    pub async fn execute(&self, mode: ReconcileMode) -> Result<ReconcileReport, CleanupError> {
        Step::new(
            self.ports.tracer.as_ref(),
            span::RECONCILE,
            SpanKind::Internal,
        )
        .attr(key::OPERATION, op::RECONCILE)
        .run(
            |_| self.run(mode),
            |r, span| {
                record_counts(
                    span,
                    [
                        (key::CLEANUP_ORPHANS_REMOVED, r.orphans_removed),
                        (key::CLEANUP_CONTAINERS_GONE, r.containers_gone),
                        (key::RECONCILE_ADOPTED, r.adopted),
                        (key::RECONCILE_UNDONE, r.undone),
                        (key::CLEANUP_FAILED, r.failed),
                    ],
                );
            },
        )
        .await
    }

    async fn run(&self, mode: ReconcileMode) -> Result<ReconcileReport, CleanupError> {
        let containers = self.ports.runtime.list_active_sessions().await?;
        let volumes = self.ports.runtime.list_workspaces(false).await?;
        let rows = self.ports.store.list_active().await?;
        let workspaces = self.ports.store.list_workspaces().await?;
        // Warm sandboxes have no session row yet: theirs are not orphans.
        let pool = self.ports.store.list_pool().await?;
        let now = self.ports.clock.now();
        let by_session: HashMap<SessionId, &RuntimeSandbox> =
            containers.iter().map(|c| (c.session_id, c)).collect();
        let mut report = ReconcileReport::default();
        for row in &rows {
            let container = by_session.get(&row.id).copied();
            let settled = match row.status {
                SessionStatus::Creating
                    if mode == ReconcileMode::Startup
                        || age(now, row.created_at) >= self.settings.creating_timeout =>
                {
                    self.settle_creating(row, container).await
                }
                SessionStatus::Running if !container.is_some_and(|c| c.running) => {
                    self.end_gone(row).await
                }
                _ => continue,
            };
            report.count(settled);
        }
        let active: HashSet<SessionId> = rows
            .iter()
            .map(|s| s.id)
            .chain(pool.iter().map(|m| m.session_id))
            .collect();
        for orphan in containers
            .iter()
            .filter(|c| !active.contains(&c.session_id))
        {
            let young = age(now, orphan.created_at) < self.settings.orphan_grace;
            if mode == ReconcileMode::Periodic && young {
                continue;
            }
            report.count(self.remove_orphan(orphan).await);
        }
        let known: HashSet<WorkspaceId> = workspaces
            .iter()
            .map(|w| w.id)
            .chain(pool.iter().map(|m| m.workspace_id))
            .collect();
        for volume in volumes.iter().filter(|v| !known.contains(&v.id)) {
            let young = volume
                .created_at
                .is_none_or(|at| age(now, at) < self.settings.orphan_grace);
            if mode == ReconcileMode::Periodic && young {
                continue;
            }
            report.count(self.remove_orphan_workspace(volume).await);
        }
        Ok(report)
    }

    /// Removes a workspace volume with no row. The rows were read after
    /// the volumes, and a row is written before its volume: none will come.
    async fn remove_orphan_workspace(
        &self,
        volume: &RuntimeWorkspace,
    ) -> Result<Settled, CleanupError> {
        self.ports.runtime.delete_workspace(&volume.id).await?;
        Ok(Settled::OrphanRemoved)
    }

    /// Finishes (adopts a running container) or undoes a `creating` row.
    async fn settle_creating(
        &self,
        row: &Session,
        container: Option<&RuntimeSandbox>,
    ) -> Result<Settled, CleanupError> {
        let _lock = self.guards.lock_chat(&row.chat_id).await;
        let fresh = self.ports.store.get(&row.id).await?;
        if fresh.is_none_or(|s| s.status != SessionStatus::Creating) {
            return Ok(Settled::Unchanged);
        }
        if let Some(c) = container.filter(|c| c.running) {
            self.ports
                .store
                .mark_running(&row.id, &c.container_id)
                .await?;
            return Ok(Settled::Adopted);
        }
        self.ports.runtime.stop(&SandboxRef::from(row)).await?;
        let now = self.ports.clock.now();
        // Fresh when the row's workspace was made for it.
        let workspace = self.ports.store.get_workspace(&row.chat_id).await?;
        let fresh = workspace.is_some_and(|w| w.id == row.workspace_id && w.created_by == row.id);
        let used = if fresh {
            WorkspaceUse::Fresh(row.workspace_id)
        } else {
            WorkspaceUse::Kept(row.workspace_id)
        };
        let (policy, retention) = &self.fates;
        let fate = undone_fate(used, retention, policy, now);
        self.ports
            .store
            .end(&row.id, EndReason::CreateInterrupted, now, fate)
            .await?;
        if fresh {
            super::workspaces::delete::<CleanupError>(&self.ports, &row.workspace_id).await?;
        }
        Ok(Settled::Undone)
    }

    /// Ends a running row whose container is missing or exited, removing
    /// what is left of it, unless a fresh look says otherwise.
    async fn end_gone(&self, row: &Session) -> Result<Settled, CleanupError> {
        let _lock = self.guards.lock_chat(&row.chat_id).await;
        let still = self.ports.store.get(&row.id).await?;
        let running = still.is_some_and(|s| s.status == SessionStatus::Running);
        if !running || self.guards.is_leased(&row.id) {
            return Ok(Settled::Unchanged);
        }
        let sandbox = SandboxRef::from(row);
        if self.ports.runtime.inspect(&sandbox).await? == ContainerState::Running {
            return Ok(Settled::Unchanged);
        }
        self.ports.runtime.stop(&sandbox).await?;
        let now = self.ports.clock.now();
        // A dead container is not idleness: the files stay, as for an
        // undone replace.
        let (policy, retention) = &self.fates;
        let fate = undone_fate(WorkspaceUse::Kept(row.workspace_id), retention, policy, now);
        let ended = self
            .ports
            .store
            .end(&row.id, EndReason::ContainerGone, now, fate)
            .await?;
        Ok(if ended {
            Settled::ContainerGone
        } else {
            Settled::Unchanged
        })
    }

    /// Removes a container whose session is not active, unless its session
    /// turned out to be active after all.
    async fn remove_orphan(&self, orphan: &RuntimeSandbox) -> Result<Settled, CleanupError> {
        let _lock = self.guards.lock_chat(&orphan.chat_id).await;
        let session = self.ports.store.get(&orphan.session_id).await?;
        if session.is_some_and(|s| s.is_active()) {
            return Ok(Settled::Unchanged);
        }
        self.ports.runtime.stop(&orphan.to_ref()).await?;
        Ok(Settled::OrphanRemoved)
    }
}

/// What reconciling one sandbox did.
enum Settled {
    Adopted,
    Undone,
    ContainerGone,
    OrphanRemoved,
    Unchanged,
}

impl ReconcileReport {
    fn count(&mut self, settled: Result<Settled, CleanupError>) {
        match settled {
            Ok(Settled::Adopted) => self.adopted += 1,
            Ok(Settled::Undone) => self.undone += 1,
            Ok(Settled::ContainerGone) => self.containers_gone += 1,
            Ok(Settled::OrphanRemoved) => self.orphans_removed += 1,
            Ok(Settled::Unchanged) => {}
            Err(err) => {
                tracing::warn!(error = %err, "reconciling a sandbox failed");
                self.failed += 1;
            }
        }
    }
}

fn age(now: Timestamp, since: Timestamp) -> Duration {
    (now - since).to_std().unwrap_or_default()
}
