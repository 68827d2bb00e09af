//! `CleanupExpiredSandboxes`: hibernate idle sandboxes, delete workspaces
//! past their retention (or past the cap on hibernated chats, oldest
//! first), then reconcile with the runtime (DESIGN section 3). One
//! session's failure never aborts the run; running it twice, or in two
//! processes at once, is harmless.

use std::sync::Arc;

use futures::StreamExt;

use crate::domain::{Policy, Retention, Session, Workspace, WorkspaceStatus};
use crate::port::tracer::SpanKind;
use crate::trace::{Step, attr::key, attr::op, attr::result, attr::span, record_session};

use super::workspaces::{self, Slept};

use super::record_counts;

use super::Ports;
use super::errors::CleanupError;
use super::guards::SessionGuards;
use super::reconcile::{Reconcile, ReconcileMode, ReconcileSettings};

#[derive(Debug, Clone)]
pub struct CleanupSettings {
    pub policy: Policy,
    pub retention: Retention,
    /// Sandboxes stopped at once.
    pub concurrency: usize,
    pub reconcile: ReconcileSettings,
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Expired sessions found.
    pub expired: u64,
    /// Expired sandboxes whose container went and workspace stayed.
    pub hibernated: u64,
    /// Expired sandboxes removed, workspace and all (retention off).
    pub removed: u64,
    /// Workspaces deleted: past retention, past the cap, or left half deleted.
    pub workspaces_deleted: u64,
    /// Sandboxes that could not be removed (retried next run).
    pub failed: u64,
    /// Expired sessions left alone: leased, or used since they were listed.
    pub skipped: u64,
    pub orphans_removed: u64,
    /// Active sessions ended because their container was gone.
    pub containers_gone: u64,
}

/// What happened to one expired session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCleanup {
    Hibernated,
    Removed,
    Skipped,
    Failed,
}

#[derive(Clone)]
pub struct CleanupExpiredSandboxes {
    ports: Ports,
    guards: Arc<SessionGuards>,
    settings: CleanupSettings,
    reconcile: Reconcile,
}

impl CleanupExpiredSandboxes {
    pub fn new(ports: Ports, guards: Arc<SessionGuards>, settings: CleanupSettings) -> Self {
        let reconcile = Reconcile::new(
            ports.clone(),
            Arc::clone(&guards),
            settings.reconcile.clone(),
            (settings.policy, settings.retention),
        );
        Self {
            ports,
            guards,
            settings,
            reconcile,
        }
    }

    /// One cleanup run.
    ///
    /// # Errors
    /// `CleanupError` only when the expired sessions cannot be listed.
    pub async fn execute(&self) -> Result<CleanupReport, CleanupError> {
        Step::new(
            self.ports.tracer.as_ref(),
            span::CLEANUP,
            SpanKind::Internal,
        )
        .attr(key::OPERATION, op::CLEANUP)
        .run(
            |_| self.run(),
            |r, span| {
                record_counts(
                    span,
                    [
                        (key::CLEANUP_EXPIRED, r.expired),
                        (key::CLEANUP_HIBERNATED, r.hibernated),
                        (key::CLEANUP_REMOVED, r.removed),
                        (key::CLEANUP_WORKSPACES_DELETED, r.workspaces_deleted),
                        (key::CLEANUP_FAILED, r.failed),
                        (key::CLEANUP_SKIPPED, r.skipped),
                        (key::CLEANUP_ORPHANS_REMOVED, r.orphans_removed),
                        (key::CLEANUP_CONTAINERS_GONE, r.containers_gone),
                    ],
                );
            },
        )
        .await
    }

    async fn run(&self) -> Result<CleanupReport, CleanupError> {
        let now = self.ports.clock.now();
        let expired = self.ports.store.list_expired(now).await?;
        let mut report = CleanupReport {
            expired: expired.len() as u64,
            ..CleanupReport::default()
        };
        // Owned sessions: a borrowed item would make this future not `Send`
        // (a known higher-ranked lifetime limitation of stream adapters).
        let outcomes: Vec<SessionCleanup> = futures::stream::iter(expired)
            .map(|s| async move { self.cleanup_session(&s).await })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                SessionCleanup::Hibernated => report.hibernated += 1,
                SessionCleanup::Removed => report.removed += 1,
                SessionCleanup::Skipped => report.skipped += 1,
                SessionCleanup::Failed => report.failed += 1,
            }
        }
        match self.retire_workspaces().await {
            Ok((deleted, failed)) => {
                report.workspaces_deleted = deleted;
                report.failed += failed;
            }
            Err(err) => {
                tracing::warn!(error = %err, "listing workspaces failed; retried next run");
                report.failed += 1;
            }
        }
        match self.reconcile.execute(ReconcileMode::Periodic).await {
            Ok(r) => {
                report.orphans_removed = r.orphans_removed;
                report.containers_gone = r.containers_gone;
                report.failed += r.failed;
            }
            Err(err) => {
                tracing::warn!(error = %err, "reconciliation failed; retried next run");
                report.failed += 1;
            }
        }
        Ok(report)
    }

    /// The per-session path: the container goes, the session ends
    /// `hibernated` and its workspace is kept (with retention off: ends
    /// `expired`, workspace deleted). Skips a sandbox that holds a lease or
    /// was used since.
    pub async fn cleanup_session(&self, session: &Session) -> SessionCleanup {
        let operation = if self.settings.retention.hibernates() {
            op::HIBERNATE
        } else {
            op::DELETE
        };
        let ran = Step::new(
            self.ports.tracer.as_ref(),
            span::CLEANUP_SESSION,
            SpanKind::Internal,
        )
        .chat(&session.chat_id)
        .attr(key::OPERATION, operation)
        .with(|span| record_session(span, session))
        .run(
            |_| self.reap(session),
            |slept, span| {
                let outcome = match slept {
                    Some(Slept::Hibernated) => result::HIBERNATED,
                    Some(Slept::Deleted) => result::CLEANED,
                    Some(Slept::NotActive) | None => result::SKIPPED,
                };
                span.set_attribute(key::RESULT, outcome.into());
            },
        )
        .await;
        match ran {
            Ok(Some(Slept::Hibernated)) => SessionCleanup::Hibernated,
            Ok(Some(Slept::Deleted)) => SessionCleanup::Removed,
            Ok(Some(Slept::NotActive) | None) => SessionCleanup::Skipped,
            Err(err) => {
                tracing::warn!(session.id = %session.id, error = %err, "cleaning an expired sandbox failed");
                SessionCleanup::Failed
            }
        }
    }

    /// `None`: skipped (leased, used since, or no longer active).
    async fn reap(&self, session: &Session) -> Result<Option<Slept>, CleanupError> {
        let _lock = self.guards.lock_chat(&session.chat_id).await;
        let now = self.ports.clock.now();
        let fresh = self.ports.store.get(&session.id).await?;
        let Some(fresh) =
            fresh.filter(|s| s.is_active() && self.settings.policy.is_expired(s, now))
        else {
            return Ok(None);
        };
        if self.guards.is_leased(&session.id) {
            return Ok(None);
        }
        let slept =
            workspaces::put_to_sleep::<CleanupError>(&self.ports, &fresh, &self.settings.retention);
        Ok(Some(slept.await?))
    }

    /// Deletes the workspaces past their retention, the oldest hibernated
    /// ones past the cap, and those a crash left `deleting`. Returns how
    /// many went and how many failed (retried next run).
    async fn retire_workspaces(&self) -> Result<(u64, u64), CleanupError> {
        let now = self.ports.clock.now();
        let all = self.ports.store.list_workspaces().await?;
        let mut hibernated: Vec<&Workspace> = all.iter().filter(|w| w.is_hibernated()).collect();
        // Newest first: the cap keeps the most recently hibernated.
        hibernated.sort_by_key(|w| std::cmp::Reverse(w.hibernated_at));
        let cap = usize::try_from(self.settings.retention.max_hibernated).unwrap_or(usize::MAX);
        let over_cap = hibernated.iter().skip(cap).map(|w| w.id);
        let past = hibernated
            .iter()
            .filter(|w| w.is_past_retention(now))
            .map(|w| w.id);
        let mut doomed: std::collections::HashSet<_> = over_cap.chain(past).collect();
        doomed.extend(
            all.iter()
                .filter(|w| w.status == WorkspaceStatus::Deleting)
                .map(|w| w.id),
        );
        let targets: Vec<Workspace> = all.into_iter().filter(|w| doomed.contains(&w.id)).collect();
        let outcomes: Vec<Result<bool, CleanupError>> = futures::stream::iter(targets)
            .map(|w| async move { self.delete_workspace(&w).await })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let deleted = outcomes.iter().filter(|o| matches!(o, Ok(true))).count() as u64;
        let failed = outcomes.iter().filter(|o| o.is_err()).count() as u64;
        Ok((deleted, failed))
    }

    /// One workspace past retention (or cap, or left `deleting`): marked
    /// `deleting` unless a session took it over meanwhile, then removed.
    async fn delete_workspace(&self, workspace: &Workspace) -> Result<bool, CleanupError> {
        Step::new(
            self.ports.tracer.as_ref(),
            span::DELETE_WORKSPACE,
            SpanKind::Internal,
        )
        .chat(&workspace.chat_id)
        .attr(key::OPERATION, op::DELETE)
        .attr(key::WORKSPACE_ID, workspace.id.to_string())
        .run(
            |_| async {
                let _lock = self.guards.lock_chat(&workspace.chat_id).await;
                if !self.ports.store.retire_workspace(&workspace.id).await? {
                    return Ok(false);
                }
                workspaces::delete::<CleanupError>(&self.ports, &workspace.id).await?;
                Ok(true)
            },
            |deleted, span| {
                let outcome = if *deleted {
                    result::CLEANED
                } else {
                    result::SKIPPED
                };
                span.set_attribute(key::RESULT, outcome.into());
            },
        )
        .await
        .inspect_err(|err| {
            tracing::warn!(workspace.id = %workspace.id, error = %err, "deleting a workspace failed");
        })
    }
}
