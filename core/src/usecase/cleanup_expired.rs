//! `CleanupExpiredSandboxes`: reap expired sandboxes, then reconcile with
//! the runtime (DESIGN section 3). One session's failure never aborts the
//! run; running it twice, or in two processes at once, is harmless.

use std::sync::Arc;

use futures::StreamExt;

use crate::domain::{EndReason, Policy, Session};
use crate::port::SandboxRef;
use crate::port::tracer::SpanKind;
use crate::trace::{Step, attr::key, attr::op, attr::result, attr::span, record_session};

use super::record_counts;

use super::Ports;
use super::errors::CleanupError;
use super::guards::SessionGuards;
use super::reconcile::{Reconcile, ReconcileMode, ReconcileSettings};

#[derive(Debug, Clone)]
pub struct CleanupSettings {
    pub policy: Policy,
    /// Sandboxes stopped at once.
    pub concurrency: usize,
    pub reconcile: ReconcileSettings,
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Expired sessions found.
    pub expired: u64,
    /// Expired sandboxes removed and their sessions ended.
    pub removed: u64,
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
                        (key::CLEANUP_REMOVED, r.removed),
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
                SessionCleanup::Removed => report.removed += 1,
                SessionCleanup::Skipped => report.skipped += 1,
                SessionCleanup::Failed => report.failed += 1,
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

    /// The per-session path: stop and remove the sandbox, end the session
    /// `expired`. Skips a sandbox that holds a lease or was used since.
    pub async fn cleanup_session(&self, session: &Session) -> SessionCleanup {
        let ran = Step::new(
            self.ports.tracer.as_ref(),
            span::CLEANUP_SESSION,
            SpanKind::Internal,
        )
        .chat(&session.chat_id)
        .attr(key::OPERATION, op::CLEANUP_SESSION)
        .with(|span| record_session(span, session))
        .run(
            |_| self.reap(session),
            |removed, span| {
                let outcome = if *removed {
                    result::CLEANED
                } else {
                    result::SKIPPED
                };
                span.set_attribute(key::RESULT, outcome.into());
            },
        )
        .await;
        match ran {
            Ok(true) => SessionCleanup::Removed,
            Ok(false) => SessionCleanup::Skipped,
            Err(err) => {
                tracing::warn!(session.id = %session.id, error = %err, "cleaning an expired sandbox failed");
                SessionCleanup::Failed
            }
        }
    }

    async fn reap(&self, session: &Session) -> Result<bool, CleanupError> {
        let _lock = self.guards.lock_chat(&session.chat_id).await;
        let now = self.ports.clock.now();
        let fresh = self.ports.store.get(&session.id).await?;
        let still_expired = fresh
            .as_ref()
            .is_some_and(|s| s.is_active() && self.settings.policy.is_expired(s, now));
        if !still_expired || self.guards.is_leased(&session.id) {
            return Ok(false);
        }
        let fresh = fresh.unwrap_or_else(|| session.clone());
        self.ports.runtime.stop(&SandboxRef::from(&fresh)).await?;
        Ok(self
            .ports
            .store
            .end(&session.id, EndReason::Expired, now)
            .await?)
    }
}
