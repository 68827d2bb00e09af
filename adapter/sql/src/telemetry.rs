//! Database span vocabulary (OpenTelemetry's database client conventions)
//! and the wrapper that runs each store call inside a CLIENT span.

use std::future::Future;

use sandboxer_core::domain::{ChatId, PoolMember, Session, SessionId, Workspace, WorkspaceId};
use sandboxer_core::port::{Span, SpanKind, StoreError, Tracer};
use sandboxer_core::trace::{Step, attr::key};

/// Attribute keys the stores set.
pub mod attr {
    pub const DB_SYSTEM_NAME: &str = "db.system.name";
    pub const DB_OPERATION_NAME: &str = "db.operation.name";
    pub const DB_RESPONSE_RETURNED_ROWS: &str = "db.response.returned_rows";
}

/// One store operation: its span name, `db.operation.name` and the
/// store's `db.system.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub span_name: &'static str,
    pub name: &'static str,
    pub system: &'static str,
}

/// Declares `pub mod op` with one `Op` per port call (and any `extra` ones),
/// span names prefixed with the store's type: `store_ops!("SqliteSessionStore",
/// "sqlite")`.
#[macro_export]
macro_rules! store_ops {
    ($store:literal, $system:literal $(, $konst:ident = $name:literal)* $(,)?) => {
        $crate::store_ops!(@ops $store, $system,
            GET_ACTIVE = "get_active",
            GET_LATEST = "get_latest",
            GET = "get",
            LIST_ACTIVE = "list_active",
            LIST_EXPIRED = "list_expired",
            COUNT_ACTIVE = "count_active",
            BEGIN_CREATE = "begin_create",
            MARK_RUNNING = "mark_running",
            TOUCH = "touch",
            END = "end",
            GET_WORKSPACE = "get_workspace",
            LIST_WORKSPACES = "list_workspaces",
            COUNT_HIBERNATED = "count_hibernated",
            RETIRE_WORKSPACE = "retire_workspace",
            FORGET_WORKSPACE = "forget_workspace",
            ADD_POOL_MEMBER = "add_pool_member",
            MARK_POOL_READY = "mark_pool_ready",
            LIST_POOL = "list_pool",
            REMOVE_POOL_MEMBER = "remove_pool_member",
            CLAIM_POOL_MEMBER = "claim_pool_member",
            PING = "ping",
            PURGE_ENDED = "purge_ended",
            INSTANCE_ID = "instance_id"
            $(, $konst = $name)*
        );
    };
    (@ops $store:literal, $system:literal, $($konst:ident = $name:literal),+) => {
        /// The store's operations, as they appear on spans.
        pub mod op {
            use $crate::telemetry::Op;
            $(pub const $konst: Op = Op {
                span_name: concat!($store, ".", $name),
                name: $name,
                system: $system,
            };)+
        }
    };
}

/// The ids a call is about, known before it runs.
#[derive(Default, Clone, Copy)]
pub struct Ids<'a> {
    pub chat: Option<&'a ChatId>,
    pub session: Option<&'a SessionId>,
    pub workspace: Option<&'a WorkspaceId>,
}

/// What a successful call adds to its span.
pub trait Record {
    fn record(&self, _span: &mut dyn Span) {}
}

impl Record for Session {
    fn record(&self, span: &mut dyn Span) {
        span.set_attribute(key::SESSION_ID, self.id.to_string().into());
        span.set_attribute(key::CHAT_ID, self.chat_id.to_string().into());
        span.set_attribute(key::GENERATION, self.generation.into());
        span.set_attribute(key::WORKSPACE_ID, self.workspace_id.to_string().into());
    }
}

impl Record for Option<Session> {
    fn record(&self, span: &mut dyn Span) {
        if let Some(session) = self {
            session.record(span);
        }
    }
}

impl Record for Option<Workspace> {
    fn record(&self, span: &mut dyn Span) {
        if let Some(workspace) = self {
            span.set_attribute(key::WORKSPACE_ID, workspace.id.to_string().into());
            span.set_attribute(key::CHAT_ID, workspace.chat_id.to_string().into());
        }
    }
}

/// Listings say how many rows they returned.
macro_rules! record_rows {
    ($($t:ty),+) => {$(
        impl Record for Vec<$t> {
            fn record(&self, span: &mut dyn Span) {
                span.set_attribute(attr::DB_RESPONSE_RETURNED_ROWS, self.len().into());
            }
        }
    )+};
}
record_rows!(Session, Workspace, PoolMember);

impl Record for u64 {}
impl Record for String {}
impl Record for bool {}
impl Record for () {}

/// Runs `call` inside a CLIENT span named after `op`, child of the task's
/// current span (the core's traced step); a failure marks the span failed
/// with its `error.type`.
pub async fn traced<T: Record>(
    tracer: &dyn Tracer,
    op: Op,
    ids: Ids<'_>,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    Step::new(tracer, op.span_name, SpanKind::Client)
        .attr(attr::DB_SYSTEM_NAME, op.system)
        .attr(attr::DB_OPERATION_NAME, op.name)
        .with(|span| {
            if let Some(chat) = ids.chat {
                span.set_attribute(key::CHAT_ID, chat.to_string().into());
            }
            if let Some(session) = ids.session {
                span.set_attribute(key::SESSION_ID, session.to_string().into());
            }
            if let Some(workspace) = ids.workspace {
                span.set_attribute(key::WORKSPACE_ID, workspace.to_string().into());
            }
        })
        .run(|_| call, |value, span| value.record(span))
        .await
}
