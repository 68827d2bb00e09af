//! `CreateSandbox`: get-or-create a chat's sandbox, deciding between create,
//! reuse and replace (DESIGN section 2).
//!
//! One change per chat at a time (the chat lock); the row is written
//! (`creating`) before the container is created; a failed create leaves no
//! container and no active row. The work runs in its own task so that a
//! caller who goes away cannot cut a create in half.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    ChatId, Decision, EndReason, NewSession, Policy, ReplaceReason, SandboxSpec, Session,
    SessionId, SessionStatus, SpecHash, SpecOverrides, decide, precheck, rfc3339,
};
use crate::port::tracer::{self, Span, SpanKind};
use crate::port::{CreateRequest, Replacing, RuntimeError, SandboxRef, StoreError, Touch};
use crate::trace::{self, attr::key, attr::op, attr::result, attr::span, mark_failed};

use super::Ports;
use super::errors::CreateSandboxError;
use super::guards::{Lease, SessionGuards};

/// Attempts at the decision when the store reports a concurrent change.
const MAX_ATTEMPTS: usize = 5;
const FOREIGN_CREATE_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct CreateSettings {
    pub policy: Policy,
    /// The sandbox a chat gets unless it asks for something else.
    pub defaults: SandboxSpec,
    /// How long a `creating` row of another process is waited for before it
    /// counts as abandoned (its process died mid-create).
    pub foreign_create_wait: Duration,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateResult {
    Created,
    Reused,
    Replaced(ReplaceReason),
}

impl CreateResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => result::CREATED,
            Self::Reused => result::REUSED,
            Self::Replaced(_) => result::REPLACED,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOutcome {
    pub session: Session,
    pub result: CreateResult,
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
}

impl CreateSandbox {
    pub fn new(ports: Ports, guards: Arc<SessionGuards>, settings: CreateSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                ports,
                guards,
                settings,
            }),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.settings.policy
    }

    /// Get-or-create the chat's sandbox.
    ///
    /// # Errors
    /// `CreateSandboxError`: bad spec or ttl, runtime or store failure.
    pub async fn execute(
        &self,
        input: CreateSandboxInput,
    ) -> Result<CreateOutcome, CreateSandboxError> {
        self.run(input, false).await.map(|(outcome, _)| outcome)
    }

    /// Get-or-create, and lease the sandbox for the caller's use.
    pub(crate) async fn acquire(
        &self,
        input: CreateSandboxInput,
    ) -> Result<(CreateOutcome, Lease), CreateSandboxError> {
        let (outcome, lease) = self.run(input, true).await?;
        let lease = lease.ok_or_else(|| CreateSandboxError::Internal("lease missing".into()))?;
        Ok((outcome, lease))
    }

    /// Records a use of the session after it served the caller: `expires_at`
    /// moves to `now + ttl`, capped by max lifetime. Best effort: the work
    /// already happened, so a store failure is logged, not returned.
    pub(crate) async fn record_use(&self, session: &Session, span: &mut dyn Span) {
        let inner = &self.inner;
        let now = inner.ports.clock.now();
        let touch = Touch {
            last_used_at: now,
            expires_at: inner
                .settings
                .policy
                .expiry_after_use(session, session.idle_ttl, now),
            idle_ttl: session.idle_ttl,
        };
        match inner.ports.store.touch(&session.id, touch).await {
            Ok(Some(s)) => span.set_attribute(key::EXPIRES_AT, rfc3339(s.expires_at).into()),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(session.id = %session.id, error = %err, "recording a sandbox use failed")
            }
        }
    }

    async fn run(
        &self,
        input: CreateSandboxInput,
        lease: bool,
    ) -> Result<(CreateOutcome, Option<Lease>), CreateSandboxError> {
        let mut span = tracer::start(
            self.inner.ports.tracer.as_ref(),
            span::CREATE_SANDBOX,
            SpanKind::Internal,
        );
        span.set_attribute(key::CHAT_ID, input.chat_id.to_string().into());
        span.set_attribute(key::OPERATION, op::CREATE.into());
        let ctx = trace::context_of(span.as_ref());
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(trace::in_context(ctx, async move {
            let result = inner.get_or_create(input, lease, span.as_mut()).await;
            match &result {
                Ok((outcome, _)) => {
                    record_outcome(span.as_mut(), outcome);
                    log_outcome(outcome);
                }
                Err(err) => mark_failed(span.as_mut(), err),
            }
            span.end();
            result
        }));
        task.await
            .unwrap_or_else(|join| Err(CreateSandboxError::Internal(join.to_string())))
    }
}

fn record_outcome(span: &mut dyn Span, outcome: &CreateOutcome) {
    let s = &outcome.session;
    span.set_attribute(key::SESSION_ID, s.id.to_string().into());
    if let Some(c) = &s.container_id {
        span.set_attribute(key::CONTAINER_ID, c.to_string().into());
    }
    span.set_attribute(key::EXPIRES_AT, rfc3339(s.expires_at).into());
    span.set_attribute(key::GENERATION, s.generation.into());
    span.set_attribute(key::RESULT, outcome.result.as_str().into());
    if let CreateResult::Replaced(reason) = outcome.result {
        span.set_attribute(key::REPLACE_REASON, reason.as_str().into());
    }
}

/// One line per decision, inside the span's context so it carries the
/// trace id: creates and replaces at info (they cost a container), reuses
/// (every message of a chat) at debug.
fn log_outcome(outcome: &CreateOutcome) {
    let s = &outcome.session;
    let container = s.container_id.as_ref().map(ToString::to_string);
    let container = container.as_deref().unwrap_or_default();
    match outcome.result {
        CreateResult::Reused => tracing::debug!(
            chat.id = %s.chat_id, session.id = %s.id, container.id = container,
            "sandbox reused"
        ),
        CreateResult::Created => tracing::info!(
            chat.id = %s.chat_id, session.id = %s.id, container.id = container, image = %s.image,
            "sandbox created"
        ),
        CreateResult::Replaced(reason) => tracing::info!(
            chat.id = %s.chat_id, session.id = %s.id, container.id = container, image = %s.image,
            replace_reason = reason.as_str(),
            "sandbox replaced"
        ),
    }
}

impl Inner {
    async fn get_or_create(
        &self,
        input: CreateSandboxInput,
        lease: bool,
        span: &mut dyn Span,
    ) -> Result<(CreateOutcome, Option<Lease>), CreateSandboxError> {
        let policy = &self.settings.policy;
        let ttl = input.ttl.map(|t| policy.check_ttl(t)).transpose()?;
        let declared = match &input.spec {
            SpecChoice::Declared(overrides) => Some(self.resolve(overrides)?),
            SpecChoice::Existing => None,
        };
        let chat = &input.chat_id;
        let lock = self.guards.lock_chat(chat).await;
        for _ in 0..MAX_ATTEMPTS {
            let active = self.active_session(chat).await?;
            let now = self.ports.clock.now();
            let wanted = declared.as_ref().map(|r| &r.hash);
            let decision = match &active {
                // Still `creating` after the wait: its process died mid-create.
                Some(s) if s.status == SessionStatus::Creating => {
                    Decision::Replace(ReplaceReason::ContainerGone)
                }
                Some(s) => match precheck(Some(s), wanted, policy, now) {
                    Some(d) => d,
                    None => {
                        let state = self.ports.runtime.inspect(&s.into()).await?;
                        decide(Some(s), None, policy, now, state)
                    }
                },
                None => Decision::Create,
            };
            let outcome = match decision {
                Decision::Reuse => {
                    let Some(session) = active else {
                        unreachable!("reuse needs a session")
                    };
                    match self.reuse(&session, ttl).await? {
                        Some(s) => CreateOutcome {
                            session: s,
                            result: CreateResult::Reused,
                        },
                        None => continue,
                    }
                }
                Decision::Create | Decision::Replace(_) => {
                    let reason = match decision {
                        Decision::Replace(r) => Some(r),
                        _ => None,
                    };
                    let resolved = match &declared {
                        Some(r) => r.clone(),
                        None => self.resolve(
                            &active
                                .as_ref()
                                .map(|s| s.overrides.clone())
                                .unwrap_or_default(),
                        )?,
                    };
                    let ttl = ttl
                        .or(active.as_ref().map(|s| s.idle_ttl))
                        .unwrap_or(policy.idle_ttl());
                    match self
                        .create(chat, resolved, ttl, active.as_ref().zip(reason), span)
                        .await?
                    {
                        Some(session) => CreateOutcome {
                            session,
                            result: reason.map_or(CreateResult::Created, CreateResult::Replaced),
                        },
                        None => continue,
                    }
                }
            };
            let lease = lease.then(|| self.guards.lease(outcome.session.id, &lock));
            return Ok((outcome, lease));
        }
        Err(CreateSandboxError::Busy(chat.clone()))
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

    async fn reuse(
        &self,
        session: &Session,
        ttl: Option<Duration>,
    ) -> Result<Option<Session>, CreateSandboxError> {
        let now = self.ports.clock.now();
        let ttl = ttl.unwrap_or(session.idle_ttl);
        let touch = Touch {
            last_used_at: now,
            expires_at: self.settings.policy.expiry_after_use(session, ttl, now),
            idle_ttl: ttl,
        };
        Ok(self.ports.store.touch(&session.id, touch).await?)
    }

    /// Opens a session row, then makes its container (stopping the replaced
    /// one meanwhile). `Ok(None)`: the store saw a concurrent change; decide again.
    async fn create(
        &self,
        chat: &ChatId,
        resolved: Resolved,
        ttl: Duration,
        replacing: Option<(&Session, ReplaceReason)>,
        span: &mut dyn Span,
    ) -> Result<Option<Session>, CreateSandboxError> {
        let now = self.ports.clock.now();
        let Resolved {
            spec,
            overrides,
            hash,
        } = resolved;
        let new = NewSession {
            id: SessionId::new(),
            chat_id: chat.clone(),
            image: spec.image.clone(),
            spec_hash: hash,
            overrides,
            idle_ttl: ttl,
            created_at: now,
            expires_at: self.settings.policy.initial_expiry(now, ttl),
        };
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
        span.set_attribute(key::SESSION_ID, session.id.to_string().into());
        let request = CreateRequest {
            session_id: session.id,
            chat_id: chat.clone(),
            generation: session.generation,
            created_at: now,
            spec,
        };
        let stop_old = async {
            match replacing {
                Some((old, _)) => Some(self.ports.runtime.stop(&old.into()).await),
                None => None,
            }
        };
        let (stopped, created) = tokio::join!(stop_old, self.ports.runtime.create(&request));
        if let Some(Err(err)) = stopped {
            // Best effort: reconciliation removes it later if it is still there.
            span.set_attribute(key::STOP_ERROR, err.to_string().into());
            tracing::warn!(chat.id = %chat, error = %err, "stopping the replaced sandbox failed");
        }
        let container = match created {
            Ok(c) => c,
            Err(err) => {
                // The runtime already removed what it could; when it does not
                // answer, asking it again would only wait out more timeouts.
                let reachable =
                    !matches!(err, RuntimeError::Unavailable(_) | RuntimeError::Timeout(_));
                self.undo(&session, reachable).await;
                return Err(err.into());
            }
        };
        match self.ports.store.mark_running(&session.id, &container).await {
            Ok(s) => Ok(Some(s)),
            Err(err) => {
                self.undo(&session, true).await;
                Err(err.into())
            }
        }
    }

    /// Removes whatever a failed create made (when the runtime answers) and
    /// ends its row. Best effort: what is left is found by reconciliation
    /// through the container's labels.
    async fn undo(&self, session: &Session, remove: bool) {
        if remove && let Err(err) = self.ports.runtime.stop(&SandboxRef::from(session)).await {
            tracing::warn!(session.id = %session.id, error = %err, "removing a failed sandbox failed");
        }
        let now = self.ports.clock.now();
        if let Err(err) = self
            .ports
            .store
            .end(&session.id, EndReason::CreateFailed, now)
            .await
        {
            tracing::warn!(session.id = %session.id, error = %err, "ending a failed session failed");
        }
    }
}
