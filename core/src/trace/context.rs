//! The current span's context, carried in a task-local so it survives
//! `.await`. A spawned task starts without one (a new trace) unless it is
//! wrapped with `in_context`.

use std::fmt::Write as _;
use std::future::Future;

use crate::port::tracer::Span;

/// W3C trace context of one span: enough to parent another span on it,
/// in this process or across one (`traceparent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

tokio::task_local! {
    static CURRENT: Option<SpanContext>;
}

/// The context of the span the current task is running in, if any.
pub fn current() -> Option<SpanContext> {
    CURRENT.try_with(|c| *c).ok().flatten()
}

/// Runs `fut` with `ctx` as its current span context.
pub async fn in_context<F: Future>(ctx: Option<SpanContext>, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// Runs `fut` inside `span`: spans it starts become the span's children.
pub async fn in_span<F: Future>(span: &dyn Span, fut: F) -> F::Output {
    in_context(context_of(span), fut).await
}

/// The context children of `span` should hang on: the span's own, or for a
/// span that records nothing (noop), the current one.
pub fn context_of(span: &dyn Span) -> Option<SpanContext> {
    span.context().or_else(current)
}

impl SpanContext {
    /// Parses a W3C `traceparent` header (`00-<trace>-<span>-<flags>`).
    /// Invalid or all-zero ids give `None`, as the spec asks.
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        u8::from_str_radix(version, 16).ok()?;
        let trace_id: [u8; 16] = decode_hex(trace)?;
        let span_id: [u8; 8] = decode_hex(span)?;
        let [flags]: [u8; 1] = decode_hex(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            u8::from(self.sampled)
        )
    }

    pub fn trace_id_hex(&self) -> String {
        encode_hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        encode_hex(&self.span_id)
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2
        || !text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let raw = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = SpanContext::from_traceparent(raw).unwrap();
        assert!(ctx.sampled);
        assert_eq!(ctx.to_traceparent(), raw);
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn bad_traceparents_are_ignored() {
        for raw in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-xyz92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(SpanContext::from_traceparent(raw), None, "{raw:?}");
        }
    }

    #[tokio::test]
    async fn context_survives_await_but_not_spawn() {
        let ctx = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        assert_eq!(current(), None);
        in_context(ctx, async {
            tokio::task::yield_now().await;
            assert_eq!(current(), ctx);
            let spawned = tokio::spawn(async { current() }).await.unwrap();
            assert_eq!(spawned, None);
            let carried = tokio::spawn(in_context(current(), async { current() }))
                .await
                .unwrap();
            assert_eq!(carried, ctx);
        })
        .await;
    }
}
