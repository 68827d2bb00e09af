//! A received span, flattened from OTLP's nested request into plain fields
//! that tests can compare: hex ids, attributes by key, status, service name.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span, status};

#[derive(Debug, Clone, PartialEq)]
pub struct CollectedSpan {
    pub name: String,
    pub kind: CollectedKind,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    pub attributes: BTreeMap<String, CollectedValue>,
    pub status: CollectedStatus,
    /// The resource's `service.name`.
    pub service_name: Option<String>,
    pub resource: BTreeMap<String, CollectedValue>,
    pub scope_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectedKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CollectedValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
    /// Arrays, maps and bytes, debug-printed: nothing we send uses them.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectedStatus {
    Unset,
    Ok,
    Error(String),
}

impl CollectedSpan {
    pub fn attr(&self, key: &str) -> Option<&CollectedValue> {
        self.attributes.get(key)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(CollectedValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.attr(key) {
            Some(CollectedValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.attr(key) {
            Some(CollectedValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self.status, CollectedStatus::Error(_))
    }

    /// Same trace and `parent`'s span id as parent.
    pub fn is_child_of(&self, parent: &CollectedSpan) -> bool {
        self.trace_id == parent.trace_id
            && self.parent_span_id.as_deref() == Some(parent.span_id.as_str())
    }

    /// Every span of one export request, in the order they came.
    pub(crate) fn from_request(request: &ExportTraceServiceRequest) -> Vec<CollectedSpan> {
        let mut out = Vec::new();
        for resource_spans in &request.resource_spans {
            let resource = resource_spans
                .resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            let service_name = match resource.get("service.name") {
                Some(CollectedValue::Str(s)) => Some(s.clone()),
                _ => None,
            };
            for scope_spans in &resource_spans.scope_spans {
                let scope_name = scope_spans
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for s in &scope_spans.spans {
                    out.push(CollectedSpan {
                        name: s.name.clone(),
                        kind: kind(s.kind),
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: (!s.parent_span_id.is_empty())
                            .then(|| hex(&s.parent_span_id)),
                        attributes: attributes(&s.attributes),
                        status: s.status.as_ref().map_or(CollectedStatus::Unset, |st| {
                            match status::StatusCode::try_from(st.code) {
                                Ok(status::StatusCode::Error) => {
                                    CollectedStatus::Error(st.message.clone())
                                }
                                Ok(status::StatusCode::Ok) => CollectedStatus::Ok,
                                _ => CollectedStatus::Unset,
                            }
                        }),
                        service_name: service_name.clone(),
                        resource: resource.clone(),
                        scope_name: scope_name.clone(),
                    });
                }
            }
        }
        out
    }
}

fn kind(raw: i32) -> CollectedKind {
    match span::SpanKind::try_from(raw) {
        Ok(span::SpanKind::Internal) => CollectedKind::Internal,
        Ok(span::SpanKind::Server) => CollectedKind::Server,
        Ok(span::SpanKind::Client) => CollectedKind::Client,
        Ok(span::SpanKind::Producer) => CollectedKind::Producer,
        Ok(span::SpanKind::Consumer) => CollectedKind::Consumer,
        _ => CollectedKind::Unspecified,
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, CollectedValue> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value(kv.value.as_ref())))
        .collect()
}

fn value(v: Option<&AnyValue>) -> CollectedValue {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => CollectedValue::Str(s.clone()),
        Some(any_value::Value::IntValue(i)) => CollectedValue::Int(*i),
        Some(any_value::Value::BoolValue(b)) => CollectedValue::Bool(*b),
        Some(any_value::Value::DoubleValue(d)) => CollectedValue::Double(*d),
        other => CollectedValue::Other(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
