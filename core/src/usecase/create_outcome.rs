//! What `CreateSandbox` decided for a call (created, reused, replaced and
//! why), and how it shows on the span and in the log.

use crate::domain::{ReplaceReason, Session};
use crate::port::tracer::Span;
use crate::trace::{attr::key, attr::result, record_session};

use super::warm_pool::PoolUse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateResult {
    Created,
    /// A new session on the chat's kept (hibernated) workspace.
    Resumed,
    Reused,
    Replaced(ReplaceReason),
}

impl CreateResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => result::CREATED,
            Self::Resumed => result::RESUMED,
            Self::Reused => result::REUSED,
            Self::Replaced(_) => result::REPLACED,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOutcome {
    pub session: Session,
    pub result: CreateResult,
    /// For a new chat's first session: whether a warm sandbox served it.
    pub pool: Option<PoolUse>,
}

pub(super) fn record_outcome(span: &mut dyn Span, outcome: &CreateOutcome) {
    let s = &outcome.session;
    record_session(span, s);
    span.set_attribute(key::GENERATION, s.generation.into());
    span.set_attribute(key::RESULT, outcome.result.as_str().into());
    if let Some(pool) = outcome.pool {
        span.set_attribute(key::POOL, pool.as_str().into());
    }
    if let CreateResult::Replaced(reason) = outcome.result {
        span.set_attribute(key::REPLACE_REASON, reason.as_str().into());
    }
}

/// One line per decision, inside the span's context so it carries the
/// trace id: creates and replaces at info (they cost a container), reuses
/// (every message of a chat) at debug.
pub(super) fn log_outcome(outcome: &CreateOutcome) {
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
        CreateResult::Resumed => tracing::info!(
            chat.id = %s.chat_id, session.id = %s.id, container.id = container, image = %s.image,
            workspace.id = %s.workspace_id,
            "sandbox resumed"
        ),
        CreateResult::Replaced(reason) => tracing::info!(
            chat.id = %s.chat_id, session.id = %s.id, container.id = container, image = %s.image,
            replace_reason = reason.as_str(),
            "sandbox replaced"
        ),
    }
}
