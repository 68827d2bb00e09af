//! `CreateSandbox`: get-or-create a chat's sandbox, deciding between create,
//! resume, reuse and replace (DESIGN section 2).
//!
//! One change per chat at a time (the chat lock); the row is written
//! (`creating`) before the container is created; a failed create leaves no
//! container, no active row and no fresh workspace, and never deletes a
//! kept one. The work runs in its own task so that a caller who goes away
//! cannot cut a create in half.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    ChatId, Decision, EndReason, NewSession, Policy, ReplaceReason, Retention, SandboxSpec,
    Session, SessionId, SessionStatus, SpecHash, SpecOverrides, Verdict, WorkspaceFate,
    WorkspaceId, WorkspaceUse, decide, on_container,
};
use crate::port::tracer::SpanKind;
use crate::port::{CreateRequest, Replacing, RuntimeError, SandboxRef, StoreError, Touch};
use crate::trace::{self, Step, StepSpan, attr::key, attr::op, attr::span};

use super::Ports;
pub use super::create_outcome::{CreateOutcome, CreateResult};
use super::create_outcome::{log_outcome, record_outcome};
use super::errors::CreateSandboxError;
use super::guards::{Lease, SessionGuards};
use super::warm_pool::{PoolUse, WarmPool};

/// Attempts at the decision when the store reports a concurrent change.
const MAX_ATTEMPTS: usize = 5;
const FOREIGN_CREATE_POLL: Duration = Duration::from_millis(50);
/// Uses closer together than this are recorded once (see `Inner::touch`).
pub const USE_COALESCE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct CreateSettings {
    pub policy: Policy,
    /// The sandbox a chat gets unless it asks for something else.
    pub defaults: SandboxSpec,
    /// How long a `creating` row of another process is waited for before it
    /// counts as abandoned (its process died mid-create).
    pub foreign_create_wait: Duration,
    pub retention: Retention,
}

/// Which spec the caller wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecChoice {
    /// The defaults with these overrides; a sandbox with another spec is replaced.
    Declared(SpecOverrides),
    /// Whatever the chat has (exec and file calls); the defaults if it has none.
    Existing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSandboxInput {
    pub chat_id: ChatId,
    pub spec: SpecChoice,
    /// The session's idle TTL; `None` keeps the current one (or the policy's).
    pub ttl: Option<Duration>,
}

#[derive(Clone)]
pub struct CreateSandbox {
    inner: Arc<Inner>,
}

/// A spec ready to create from.
#[derive(Debug, Clone)]
struct Resolved {
    spec: SandboxSpec,
    overrides: SpecOverrides,
    hash: SpecHash,
}

struct Inner {
    ports: Ports,
    guards: Arc<SessionGuards>,
    settings: CreateSettings,
    pool: WarmPool,
}

impl CreateSandbox {
    pub fn new(
        ports: Ports,
        guards: Arc<SessionGuards>,
        settings: CreateSettings,
        pool: WarmPool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                ports,
                guards,
                settings,
                pool,
            }),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.settings.policy
    }

    pub(crate) fn ports(&self) -> &Ports {
        &self.inner.ports
    }

    /// Get-or-create the chat's sandbox.
    ///
    /// # Errors
    /// `CreateSandboxError`: bad spec or ttl, runtime or store failure.
    pub async fn execute(
        &self,
        input: CreateSandboxInput,
    ) -> Result<CreateOutcome, CreateSandboxError> {
        self.acquire(input).await.map(|(outcome, _lease)| outcome)
    }

    /// Get-or-create, and lease the sandbox for the caller's use. The lease
    /// is taken under the chat lock, so cleanup cannot slip in between.
    pub(crate) async fn acquire(
        &self,
        input: CreateSandboxInput,
    ) -> Result<(CreateOutcome, Lease), CreateSandboxError> {
        let inner = Arc::clone(&self.inner);
        let step = Step::new(
            inner.ports.tracer.as_ref(),
            span::CREATE_SANDBOX,
            SpanKind::Internal,
        )
        .chat(&input.chat_id)
        .attr(key::OPERATION, op::CREATE);
        let run = step.run(
            |span| async move {
                let ran = inner.get_or_create(input, &span).await;
                if let Ok((outcome, _)) = &ran {
                    log_outcome(outcome);
                }
                ran
            },
            |(outcome, _), span| record_outcome(span, outcome),
        );
        // Its own task: a caller who goes away cannot cut a create in half.
        tokio::spawn(trace::in_context(trace::current(), run))
            .await
            .unwrap_or_else(|join| Err(CreateSandboxError::Internal(join.to_string())))
    }

    /// Records a use of the session after it served the caller: `expires_at`
    /// moves to `now + ttl`, capped by max lifetime (coalesced, see
    /// `Inner::touch`). Returns the session as it now stands. Best effort:
    /// the work already happened, so a store failure is logged, not returned.
    pub(crate) async fn record_use(&self, session: &Session) -> Session {
        match self.inner.touch(session, session.idle_ttl).await {
            Ok(Some(s)) => s,
            Ok(None) => session.clone(),
            Err(err) => {
                tracing::warn!(session.id = %session.id, error = %err, "recording a sandbox use failed");
                session.clone()
            }
        }
    }
}

impl Inner {
    /// The decision of DESIGN section 2 (`domain::decide`), then one step
    /// for it; a concurrent change seen by the store means deciding again.
    async fn get_or_create(
        &self,
        input: CreateSandboxInput,
        span: &StepSpan,
    ) -> Result<(CreateOutcome, Lease), CreateSandboxError> {
        let policy = &self.settings.policy;
        let ttl = input.ttl.map(|t| policy.check_ttl(t)).transpose()?;
        let declared = match &input.spec {
            SpecChoice::Declared(overrides) => Some(self.resolve(overrides)?),
            SpecChoice::Existing => None,
        };
        let chat = &input.chat_id;
        let lock = self.guards.lock_chat(chat).await;
        for _ in 0..MAX_ATTEMPTS {
            let mut pool = None;
            let active = self.active_session(chat).await?;
            let kept = match active {
                Some(_) => None,
                None => self.ports.store.get_workspace(chat).await?,
            };
            let wanted = declared.as_ref().map(|r| &r.hash);
            let now = self.ports.clock.now();
            let decision = match decide(active.as_ref(), kept.as_ref(), wanted, policy, now) {
                Verdict::Decided(d) => d,
                Verdict::AskRuntime(s) => {
                    on_container(s, self.ports.runtime.inspect(&s.into()).await?)
                }
            };
            let settled = match decision {
                Decision::Reuse(session) => {
                    let ttl = ttl.unwrap_or(session.idle_ttl);
                    let reused = self.touch(session, ttl).await?;
                    reused.map(|s| (s, CreateResult::Reused))
                }
                Decision::Create => {
                    let resolved = self.spec_for(declared.as_ref(), None)?;
                    let ttl = ttl.unwrap_or(policy.idle_ttl());
                    let (created, used) = self.create_new(chat, resolved, ttl, span).await?;
                    pool = Some(used);
                    created.map(|s| (s, CreateResult::Created))
                }
                Decision::Resume(workspace) => {
                    // What the chat had before it hibernated: its spec, its TTL.
                    let latest = self.ports.store.get_latest(chat).await?;
                    let resolved = self.spec_for(declared.as_ref(), latest.as_ref())?;
                    let ttl = ttl
                        .or(latest.map(|s| s.idle_ttl))
                        .unwrap_or(policy.idle_ttl());
                    let kept = WorkspaceUse::Kept(workspace.id);
                    let resumed = self.create(chat, resolved, ttl, kept, None, span).await?;
                    resumed.map(|s| (s, CreateResult::Resumed))
                }
                Decision::Replace(old, reason) => {
                    let resolved = self.spec_for(declared.as_ref(), Some(old))?;
                    let ttl = ttl.unwrap_or(old.idle_ttl);
                    let kept = WorkspaceUse::Kept(old.workspace_id);
                    let replaced =
                        self.create(chat, resolved, ttl, kept, Some((old, reason)), span);
                    replaced.await?.map(|s| (s, CreateResult::Replaced(reason)))
                }
            };
            if let Some((session, result)) = settled {
                let lease = self.guards.lease(session.id, &lock);
                let outcome = CreateOutcome {
                    session,
                    result,
                    pool,
                };
                return Ok((outcome, lease));
            }
        }
        Err(CreateSandboxError::Busy(chat.clone()))
    }

    /// The spec a new session gets: the caller's, else the replaced (or
    /// hibernated) session's, else the defaults.
    fn spec_for(
        &self,
        declared: Option<&Resolved>,
        replacing: Option<&Session>,
    ) -> Result<Resolved, CreateSandboxError> {
        match declared {
            Some(r) => Ok(r.clone()),
            None => self.resolve(&replacing.map(|s| s.overrides.clone()).unwrap_or_default()),
        }
    }

    /// The defaults with `overrides`, checked, and their hash.
    fn resolve(&self, overrides: &SpecOverrides) -> Result<Resolved, CreateSandboxError> {
        let spec = self.settings.defaults.with(overrides)?;
        spec.validate()?;
        Ok(Resolved {
            hash: spec.hash(),
            spec,
            overrides: overrides.clone(),
        })
    }

    /// The chat's active session; a `creating` row (another process) is
    /// waited for until it settles or its wait runs out.
    async fn active_session(&self, chat: &ChatId) -> Result<Option<Session>, CreateSandboxError> {
        let Some(mut session) = self.ports.store.get_active(chat).await? else {
            return Ok(None);
        };
        while session.status == SessionStatus::Creating {
            let age = (self.ports.clock.now() - session.created_at)
                .to_std()
                .unwrap_or_default();
            if age >= self.settings.foreign_create_wait {
                break;
            }
            tokio::time::sleep(FOREIGN_CREATE_POLL).await;
            match self.ports.store.get_active(chat).await? {
                Some(s) => session = s,
                None => return Ok(None),
            }
        }
        Ok(Some(session))
    }

    /// Records a use with `ttl`: `expires_at` moves to `now + ttl`, capped
    /// by max lifetime. `None` when the session is no longer active.
    ///
    /// Writes are coalesced: a use within `USE_COALESCE` (or a tenth of the
    /// TTL, if shorter) of the last one recorded, with the same TTL, writes
    /// nothing, so back-to-back messages of a chat cost no store write and
    /// the expiry a reader sees is never more than that behind the latest use.
    async fn touch(
        &self,
        session: &Session,
        ttl: Duration,
    ) -> Result<Option<Session>, CreateSandboxError> {
        let now = self.ports.clock.now();
        let since_recorded = (now - session.last_used_at).to_std().ok();
        let window = USE_COALESCE.min(ttl / 10);
        if ttl == session.idle_ttl && since_recorded.is_some_and(|d| d < window) {
            return Ok(Some(session.clone()));
        }
        let touch = Touch {
            last_used_at: now,
            expires_at: self.settings.policy.expiry_after_use(session, ttl, now),
            idle_ttl: ttl,
        };
        Ok(self.ports.store.touch(&session.id, touch).await?)
    }

    /// A new chat's first session: a warm sandbox when one fits, else a
    /// cold create on a fresh workspace; and which it was.
    async fn create_new(
        &self,
        chat: &ChatId,
        resolved: Resolved,
        ttl: Duration,
        span: &StepSpan,
    ) -> Result<(Option<Session>, PoolUse), CreateSandboxError> {
        let fresh = WorkspaceUse::Fresh(WorkspaceId::new());
        let new = self.new_session(chat, &resolved, ttl, fresh);
        let used = match self.pool.claim(&new, &resolved.spec).await {
            Ok((Some(session), used)) => return Ok((Some(session), used)),
            Ok((None, used)) => used,
            // The chat got a sandbox meanwhile: decide again.
            Err(StoreError::Conflict(_)) => return Ok((None, PoolUse::Miss)),
            Err(err) => return Err(err.into()),
        };
        span.set(key::POOL, used.as_str());
        let created = self.create(chat, resolved, ttl, fresh, None, span).await?;
        Ok((created, used))
    }

    fn new_session(
        &self,
        chat: &ChatId,
        resolved: &Resolved,
        ttl: Duration,
        workspace: WorkspaceUse,
    ) -> NewSession {
        let now = self.ports.clock.now();
        NewSession {
            id: SessionId::new(),
            chat_id: chat.clone(),
            workspace,
            image: resolved.spec.image.clone(),
            spec_hash: resolved.hash.clone(),
            overrides: resolved.overrides.clone(),
            idle_ttl: ttl,
            created_at: now,
            expires_at: self.settings.policy.initial_expiry(now, ttl),
        }
    }

    /// Opens a session row on `workspace`, then makes its container (after
    /// the replaced one is gone: two sandboxes never share a workspace).
    /// `Ok(None)`: the store saw a concurrent change; decide again.
    async fn create(
        &self,
        chat: &ChatId,
        resolved: Resolved,
        ttl: Duration,
        workspace: WorkspaceUse,
        replacing: Option<(&Session, ReplaceReason)>,
        span: &StepSpan,
    ) -> Result<Option<Session>, CreateSandboxError> {
        let new = self.new_session(chat, &resolved, ttl, workspace);
        let now = new.created_at;
        let spec = resolved.spec;
        let cas = replacing.map(|(old, reason)| Replacing {
            session_id: old.id,
            generation: old.generation,
            reason: reason.end_reason(),
        });
        let session = match self.ports.store.begin_create(&new, cas.as_ref()).await {
            Ok(s) => s,
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        span.set(key::WORKSPACE_ID, workspace.id().to_string());
        if let Some((old, _)) = replacing
            && let Err(err) = self.ports.runtime.stop(&old.into()).await
        {
            // The old sandbox may still write to the workspace: no new one
            // on it now. Reconciliation removes the old one later.
            span.set(key::STOP_ERROR, err.to_string());
            tracing::warn!(chat.id = %chat, error = %err, "stopping the replaced sandbox failed");
            self.undo(&session, workspace, false, span).await;
            return Err(err.into());
        }
        let request = CreateRequest {
            session_id: session.id,
            chat_id: chat.clone(),
            workspace,
            generation: session.generation,
            created_at: now,
            spec,
        };
        let container = match self.ports.runtime.create(&request).await {
            Ok(c) => c,
            Err(err) => {
                // The runtime already removed what it could; when it does not
                // answer, asking it again would only wait out more timeouts.
                let reachable =
                    !matches!(err, RuntimeError::Unavailable(_) | RuntimeError::Timeout(_));
                self.undo(&session, workspace, reachable, span).await;
                return Err(err.into());
            }
        };
        match self.ports.store.mark_running(&session.id, &container).await {
            Ok(s) => Ok(Some(s)),
            Err(err) => {
                self.undo(&session, workspace, true, span).await;
                Err(err.into())
            }
        }
    }

    /// Removes whatever a failed create made (when the runtime answers) and
    /// ends its row: a fresh workspace goes with it, a kept one stays
    /// hibernated. Best effort: what is left is found by reconciliation
    /// through the labels.
    async fn undo(
        &self,
        session: &Session,
        workspace: WorkspaceUse,
        remove: bool,
        span: &StepSpan,
    ) {
        // A success names its session in `record_outcome`; a failure here.
        span.set(key::SESSION_ID, session.id.to_string());
        if remove && let Err(err) = self.ports.runtime.stop(&SandboxRef::from(session)).await {
            tracing::warn!(session.id = %session.id, error = %err, "removing a failed sandbox failed");
        }
        let now = self.ports.clock.now();
        let fate = undone_fate(
            workspace,
            &self.settings.retention,
            &self.settings.policy,
            now,
        );
        if let Err(err) = self
            .ports
            .store
            .end(&session.id, EndReason::CreateFailed, now, fate)
            .await
        {
            tracing::warn!(session.id = %session.id, error = %err, "ending a failed session failed");
            return;
        }
        if let WorkspaceUse::Fresh(id) = workspace
            && remove
            && let Err(err) =
                super::workspaces::delete::<CreateSandboxError>(&self.ports, &id).await
        {
            // Marked `deleting`: cleanup finishes it.
            tracing::warn!(workspace.id = %id, error = %err, "removing a failed sandbox's workspace failed");
        }
    }
}

/// What becomes of the workspace of a create that failed or was undone: a
/// fresh one goes; a kept one (resume, replace) stays hibernated, for at
/// least an idle TTL even when retention is off (a failure is not idleness).
pub(crate) fn undone_fate(
    workspace: WorkspaceUse,
    retention: &Retention,
    policy: &Policy,
    now: crate::domain::Timestamp,
) -> WorkspaceFate {
    match workspace {
        WorkspaceUse::Fresh(_) => WorkspaceFate::Delete,
        WorkspaceUse::Kept(_) => WorkspaceFate::Keep {
            until: now + retention.period.max(policy.idle_ttl()),
        },
    }
}
