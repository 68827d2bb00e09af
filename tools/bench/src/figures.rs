//! The measured operations, their samples and the wall time of each phase.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{self, Spans};
use crate::stats::Samples;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Service,
    /// `DockerSandboxRuntime` alone; its ops are keyed by the service's names.
    Adapter,
    Raw,
}

pub const CREATE: &str = "create";
pub const REUSE: &str = "reuse";
pub const GET_SANDBOX: &str = "get sandbox";
pub const EXEC_TRUE: &str = "exec true";
pub const EXEC_PROGRAM: &str = "exec program";
pub const PUT_FILE: &str = "put 1 MiB";
pub const GET_FILE: &str = "get 1 MiB";
pub const STOP: &str = "stop";
pub const RAW_CREATE: &str = "create+start";
pub const RAW_INSPECT: &str = "inspect";
pub const RAW_REMOVE: &str = "remove+volume";

/// The table's rows: what the service did, and the raw calls it compares with.
pub const ROWS: &[(&str, Option<&str>)] = &[
    (CREATE, Some(RAW_CREATE)),
    (REUSE, Some(RAW_INSPECT)),
    (GET_SANDBOX, None),
    (EXEC_TRUE, Some(EXEC_TRUE)),
    (EXEC_PROGRAM, Some(EXEC_PROGRAM)),
    (PUT_FILE, Some(PUT_FILE)),
    (GET_FILE, Some(GET_FILE)),
    (STOP, Some(RAW_REMOVE)),
];

#[derive(Debug, Default)]
pub struct Figures {
    rows: BTreeMap<(Side, &'static str), (Samples, Duration)>,
    /// The service's own spans during each of its phases.
    spans: BTreeMap<&'static str, Spans>,
}

impl Figures {
    pub fn add(&mut self, side: Side, op: &'static str, samples: Samples, wall: Duration) {
        let entry = self.rows.entry((side, op)).or_default();
        entry.0.append(samples);
        entry.1 += wall;
    }

    pub fn add_spans(&mut self, op: &'static str, spans: Spans) {
        metrics::add(self.spans.entry(op).or_default(), spans);
    }

    pub fn spans(&self, op: &str) -> Option<&Spans> {
        self.spans.get(op)
    }

    pub fn samples(&self, side: Side, op: &str) -> Option<&Samples> {
        self.rows
            .iter()
            .find(|((s, o), _)| *s == side && *o == op)
            .map(|(_, (samples, _))| samples)
    }

    /// Operations per second over the phases' wall time.
    pub fn throughput(&self, side: Side, op: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|((s, o), _)| *s == side && *o == op)
            .and_then(|(_, (samples, wall))| {
                #[allow(clippy::cast_precision_loss)]
                let n = samples.len() as f64;
                (!wall.is_zero()).then(|| n / wall.as_secs_f64())
            })
    }
}
