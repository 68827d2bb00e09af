//! `WarmPool`: sandboxes of the default spec started ahead, each on a fresh
//! workspace and with no chat, handed to new chats (DESIGN section 11).
//!
//! A claim is one store operation (never two chats on one member), then the
//! agent applies the chat's env and so proves the sandbox answers; a member
//! that does not is removed and the next one tried. Refills run in the
//! background, never in a request's path, with bounded concurrency; they
//! drain members of another spec, image or agent build (the runtime's
//! fingerprint), past their maximum age, or whose container stopped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;

use crate::domain::{
    ChatId, ContainerState, EndReason, NewSession, PoolMember, PoolStatus, SandboxSpec, Session,
    SessionId, Timestamp, WorkspaceFate, WorkspaceId, WorkspaceUse, claimable,
};
use crate::port::tracer::SpanKind;
use crate::port::{Coordination, CreateRequest, RuntimeError, SandboxRef, StoreError};
use crate::trace::{Step, attr::key, attr::op, attr::result, attr::span};

use super::Ports;
use super::errors::CleanupError;
use super::record_counts;
use super::workspaces;

/// Members tried per claim before the chat takes the cold path.
const CLAIM_TRIES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Warm sandboxes kept; 0 turns the pool off.
    pub size: usize,
    /// A member older than this is recycled.
    pub max_age: Duration,
    /// Members made at once by a refill.
    pub refill_concurrency: usize,
}

/// The pool's size when the operator sets none (DESIGN section 8).
pub const DEFAULT_POOL_SIZE: usize = 2;
/// A warm sandbox older than this is recycled.
pub const DEFAULT_POOL_MAX_AGE: Duration = Duration::from_secs(3600);
/// Warm sandboxes made at once.
pub const DEFAULT_POOL_REFILL_CONCURRENCY: usize = 2;

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size: DEFAULT_POOL_SIZE,
            max_age: DEFAULT_POOL_MAX_AGE,
            refill_concurrency: DEFAULT_POOL_REFILL_CONCURRENCY,
        }
    }
}

/// What one refill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefillReport {
    /// Ready members after the refill.
    pub ready: u64,
    pub made: u64,
    pub drained: u64,
    pub failed: u64,
}

/// When a refill runs: at startup nothing of this process is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    Startup,
    Running,
}

/// Whether a new chat got a warm sandbox (`sandbox.pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolUse {
    Hit,
    Miss,
    Off,
}

impl PoolUse {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Off => "off",
        }
    }
}

#[derive(Clone)]
pub struct WarmPool {
    inner: Arc<Inner>,
}

struct Inner {
    ports: Ports,
    settings: PoolSettings,
    /// The spec of every member: the service's defaults.
    spec: SandboxSpec,
    /// A `warming` row older than this was abandoned (its process died).
    warming_timeout: Duration,
    /// Wakes the refill loop after a claim.
    wake: Notify,
    /// One refill at a time in this process.
    refilling: tokio::sync::Mutex<()>,
    /// The runtime's fingerprint of the pool's spec, as the last refill saw it.
    fingerprint: Mutex<Option<String>>,
}

impl WarmPool {
    pub fn new(
        ports: Ports,
        settings: PoolSettings,
        spec: SandboxSpec,
        warming_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                ports,
                settings,
                spec,
                warming_timeout,
                wake: Notify::new(),
                refilling: tokio::sync::Mutex::new(()),
                fingerprint: Mutex::new(None),
            }),
        }
    }

    pub fn target(&self) -> usize {
        self.inner.settings.size
    }

    /// Hands a ready member to `new.chat_id` as its first session, with
    /// `spec`'s env applied. `Ok((None, Miss | Off))`: none fits, take the
    /// cold path. `new`'s ids are not used: the member's are.
    ///
    /// # Errors
    /// The store's (a conflict means the chat got a sandbox meanwhile).
    pub(crate) async fn claim(
        &self,
        new: &NewSession,
        spec: &SandboxSpec,
    ) -> Result<(Option<Session>, PoolUse), StoreError> {
        let inner = &self.inner;
        if inner.settings.size == 0 {
            return Ok((None, PoolUse::Off));
        }
        if !claimable(spec, &inner.spec) {
            return Ok((None, PoolUse::Miss));
        }
        let Some(fingerprint) = inner.current_fingerprint() else {
            return Ok((None, PoolUse::Miss));
        };
        let pool_hash = inner.spec.hash();
        let claimed = Step::new(
            inner.ports.tracer.as_ref(),
            span::POOL_CLAIM,
            SpanKind::Internal,
        )
        .chat(&new.chat_id)
        .attr(key::OPERATION, op::POOL_CLAIM)
        .attr(key::POOL_TARGET, inner.settings.size as u64)
        .run(
            |step| async move {
                for _ in 0..CLAIM_TRIES {
                    let store = &inner.ports.store;
                    let Some(session) = store.claim_pool_member(&pool_hash, &fingerprint, new).await?
                    else {
                        return Ok(None);
                    };
                    step.set(key::SESSION_ID, session.id.to_string());
                    let sandbox = SandboxRef::from(&session);
                    match inner.ports.runtime.prepare(&sandbox, &spec.env).await {
                        Ok(()) => return Ok(Some(session)),
                        Err(err) => {
                            tracing::warn!(session.id = %session.id, error = %err, "a warm sandbox did not answer; removed");
                            inner.discard_claimed(&session).await;
                        }
                    }
                }
                Ok(None)
            },
            |claimed: &Option<Session>, span| {
                let outcome = if claimed.is_some() {
                    PoolUse::Hit
                } else {
                    PoolUse::Miss
                };
                span.set_attribute(key::POOL, outcome.as_str().into());
                span.set_attribute(key::RESULT, result::OK.into());
            },
        )
        .await?;
        self.inner.wake.notify_one();
        Ok(match claimed {
            Some(s) => (Some(s), PoolUse::Hit),
            None => (None, PoolUse::Miss),
        })
    }

    /// Brings the pool to its target: drains stale members, then makes the
    /// missing ones. One at a time in this process; across processes the
    /// caller holds the leadership.
    ///
    /// # Errors
    /// `CleanupError` when the pool cannot be listed or the runtime cannot
    /// fingerprint the spec; a failed member is counted in `failed`.
    pub async fn refill(&self) -> Result<RefillReport, CleanupError> {
        self.refill_as(Moment::Running).await
    }

    /// The refill of a service that just started: no member of this
    /// process is being made yet, so a `warming` one was cut by a crash and
    /// goes (with its container and workspace, if made).
    ///
    /// # Errors
    /// As `refill`.
    pub async fn refill_at_startup(&self) -> Result<RefillReport, CleanupError> {
        self.refill_as(Moment::Startup).await
    }

    async fn refill_as(&self, moment: Moment) -> Result<RefillReport, CleanupError> {
        let inner = &self.inner;
        let _one = inner.refilling.lock().await;
        Step::new(
            inner.ports.tracer.as_ref(),
            span::POOL_REFILL,
            SpanKind::Internal,
        )
        .attr(key::OPERATION, op::POOL_REFILL)
        .attr(key::POOL_TARGET, inner.settings.size as u64)
        .run(
            |_| inner.refill(moment),
            |r, span| {
                span.set_attribute(key::POOL_SIZE, r.ready.into());
                record_counts(
                    span,
                    [
                        (key::POOL_MADE, r.made),
                        (key::POOL_DRAINED, r.drained),
                        (key::CLEANUP_FAILED, r.failed),
                    ],
                );
            },
        )
        .await
    }

    /// Refills now and then every `interval`, and after each claim, while
    /// this replica leads (`coordination`: one replica refills at a time).
    /// Runs until the task is dropped. With `startup`, the first refill is
    /// the startup's (`refill_at_startup`): only for a replica that started
    /// alone, since another live one may be warming members right now.
    pub async fn run(
        &self,
        interval: Duration,
        coordination: Arc<dyn Coordination>,
        startup: bool,
    ) {
        let mut moment = if startup {
            Moment::Startup
        } else {
            Moment::Running
        };
        loop {
            match coordination.lead().await {
                Ok(true) => {
                    let refilled = self.refill_as(moment).await;
                    moment = Moment::Running;
                    if let Err(err) = refilled {
                        tracing::warn!(error = %err, "refilling the warm pool failed; retried");
                    }
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "cannot tell who leads; no refill now"),
            }
            tokio::select! {
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}

impl Inner {
    fn current_fingerprint(&self) -> Option<String> {
        self.fingerprint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn refill(&self, moment: Moment) -> Result<RefillReport, CleanupError> {
        let members = self.ports.store.list_pool().await?;
        if self.settings.size == 0 && members.is_empty() {
            // No pool, and none left from a run that had one.
            return Ok(RefillReport::default());
        }
        let spec = &self.spec;
        let fingerprint = self.ports.runtime.fingerprint(spec).await?;
        *self
            .fingerprint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fingerprint.clone());
        let now = self.ports.clock.now();
        let mut report = RefillReport::default();
        let mut fresh = 0usize;
        // Newest first: past a smaller size, the oldest go.
        for member in members.iter().rev() {
            let excess = fresh >= self.settings.size;
            if excess || self.is_stale(member, &fingerprint, now, moment).await {
                match self.drain(member).await {
                    Ok(()) => report.drained += 1,
                    Err(err) => {
                        tracing::warn!(session.id = %member.session_id, error = %err, "draining a warm sandbox failed");
                        report.failed += 1;
                    }
                }
            } else {
                fresh += 1;
            }
        }
        let missing = self.settings.size.saturating_sub(fresh);
        let made: Vec<Result<(), CleanupError>> = futures::stream::iter(0..missing)
            .map(|_| self.make_member(&fingerprint))
            .buffer_unordered(self.settings.refill_concurrency.max(1))
            .collect()
            .await;
        for m in made {
            match m {
                Ok(()) => report.made += 1,
                Err(err) => {
                    tracing::warn!(error = %err, "making a warm sandbox failed");
                    report.failed += 1;
                }
            }
        }
        let after = self.ports.store.list_pool().await?;
        report.ready = after
            .iter()
            .filter(|m| m.status == PoolStatus::Ready)
            .count() as u64;
        Ok(report)
    }

    /// Another spec or build, too old, abandoned while warming, or its
    /// container no longer runs.
    async fn is_stale(
        &self,
        member: &PoolMember,
        fingerprint: &str,
        now: Timestamp,
        moment: Moment,
    ) -> bool {
        let age = (now - member.created_at).to_std().unwrap_or_default();
        if member.fingerprint != fingerprint
            || member.spec_hash != self.spec.hash()
            || age >= self.settings.max_age
        {
            return true;
        }
        match member.status {
            // Another refill is making it, or a dead process was.
            PoolStatus::Warming => moment == Moment::Startup || age >= self.warming_timeout,
            PoolStatus::Ready => !matches!(
                self.ports.runtime.inspect(&member_ref(member)).await,
                Ok(ContainerState::Running)
            ),
        }
    }

    /// Removes a member: its row first (so no claim takes it), then its
    /// container and workspace.
    async fn drain(&self, member: &PoolMember) -> Result<(), CleanupError> {
        if !self
            .ports
            .store
            .remove_pool_member(&member.session_id)
            .await?
        {
            // Claimed meanwhile: a chat's now.
            return Ok(());
        }
        self.ports.runtime.stop(&member_ref(member)).await?;
        self.ports
            .runtime
            .delete_workspace(&member.workspace_id)
            .await?;
        Ok(())
    }

    /// Row (`warming`), container on a fresh workspace, the agent's answer,
    /// then `ready`. A failure removes what was made.
    async fn make_member(&self, fingerprint: &str) -> Result<(), CleanupError> {
        let now = self.ports.clock.now();
        let spec = self.spec.clone();
        let member = PoolMember {
            session_id: SessionId::new(),
            workspace_id: WorkspaceId::new(),
            container_id: None,
            image: spec.image.clone(),
            spec_hash: spec.hash(),
            fingerprint: fingerprint.to_owned(),
            created_at: now,
            status: PoolStatus::Warming,
        };
        self.ports.store.add_pool_member(&member).await?;
        let request = CreateRequest {
            session_id: member.session_id,
            chat_id: ChatId::warm_pool(),
            workspace: WorkspaceUse::Fresh(member.workspace_id),
            generation: 0,
            created_at: now,
            spec,
        };
        let made = async {
            let container = self.ports.runtime.create(&request).await?;
            let sandbox = SandboxRef {
                container_id: Some(container.clone()),
                ..member_ref(&member)
            };
            self.ports
                .runtime
                .prepare(&sandbox, &Default::default())
                .await?;
            Ok::<_, RuntimeError>(container)
        };
        match made.await {
            Ok(container) => {
                if self
                    .ports
                    .store
                    .mark_pool_ready(&member.session_id, &container)
                    .await?
                {
                    return Ok(());
                }
                // Drained meanwhile (another build came): not wanted.
                self.remove_made(&member).await;
                Ok(())
            }
            Err(err) => {
                let _ = self
                    .ports
                    .store
                    .remove_pool_member(&member.session_id)
                    .await;
                self.remove_made(&member).await;
                Err(err.into())
            }
        }
    }

    async fn remove_made(&self, member: &PoolMember) {
        if let Err(err) = self.ports.runtime.stop(&member_ref(member)).await {
            tracing::warn!(session.id = %member.session_id, error = %err, "removing a warm sandbox failed");
        }
        if let Err(err) = self
            .ports
            .runtime
            .delete_workspace(&member.workspace_id)
            .await
        {
            tracing::warn!(workspace.id = %member.workspace_id, error = %err, "removing a warm sandbox's workspace failed");
        }
    }

    /// A claimed member that did not answer: its session ends and its
    /// fresh workspace goes.
    async fn discard_claimed(&self, session: &Session) {
        if let Err(err) = self.ports.runtime.stop(&SandboxRef::from(session)).await {
            tracing::warn!(session.id = %session.id, error = %err, "removing a dead warm sandbox failed");
        }
        let now = self.ports.clock.now();
        let ended = self
            .ports
            .store
            .end(
                &session.id,
                EndReason::CreateFailed,
                now,
                WorkspaceFate::Delete,
            )
            .await;
        if let Err(err) = ended {
            tracing::warn!(session.id = %session.id, error = %err, "ending a dead warm sandbox's session failed");
            return;
        }
        if let Err(err) =
            workspaces::delete::<CleanupError>(&self.ports, &session.workspace_id).await
        {
            tracing::warn!(workspace.id = %session.workspace_id, error = %err, "removing a dead warm sandbox's workspace failed");
        }
    }
}

/// The runtime's name for a member's sandbox.
pub(crate) fn member_ref(member: &PoolMember) -> SandboxRef {
    SandboxRef {
        session_id: member.session_id,
        chat_id: ChatId::warm_pool(),
        container_id: member.container_id.clone(),
    }
}
