//! Issue 14's figures, the sandbox agent's: exec latency down to the attach
//! floor with the ratios between the paths, the program against its own
//! time inside the sandbox, the service under concurrent load, and their
//! targets; the same as JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::figures::{Figures, GET_FILE, PUT_FILE, Side};
use crate::phases::{ExecLatency, Load, Program};
use crate::report::{Verdict, cell, p, ratio, samples_json, verdict};
use crate::stats::Samples;

const TARGET_EXEC_P50_MS: f64 = 2.0;
const TARGET_EXEC_P99_MS: f64 = 5.0;
const TARGET_PROGRAM_RATIO: f64 = 1.10;
const TARGET_FILE_P50_MS: f64 = 10.0;

fn at(s: &Samples, q: f64) -> Option<f64> {
    p(Some(s), q)
}

fn row(out: &mut String, name: &str, s: &Samples) {
    let _ = writeln!(
        out,
        "  {name:<34} {:>5} {:>8} {:>8} {:>8} {:>8}",
        s.len(),
        cell(at(s, 50.0)),
        cell(at(s, 90.0)),
        cell(at(s, 99.0)),
        cell(s.max().map(crate::stats::ms)),
    );
}

/// `a / b` at p50 and p99, as `p50 X / p99 Y`.
fn ratios(a: &Samples, b: &Samples) -> String {
    format!(
        "p50 {} / p99 {}",
        cell(ratio(at(a, 50.0), at(b, 50.0))),
        cell(ratio(at(a, 99.0), at(b, 99.0)))
    )
}

pub fn latency_text(l: &ExecLatency, program: &Program) -> String {
    let mut out = String::from(
        "exec latency at concurrency 1 on warm channels, sides interleaved in 10 blocks (times in ms):\n",
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>5} {:>8} {:>8} {:>8} {:>8}",
        "path", "n", "p50", "p90", "p99", "max"
    );
    row(&mut out, "service: HTTP -> agent, exec true", &l.service);
    row(&mut out, "raw docker exec true", &l.docker);
    row(&mut out, "attach floor: agent Exec true", &l.floor_exec);
    row(&mut out, "attach floor: agent Hello", &l.floor_hello);
    row(
        &mut out,
        "agent's spawn-to-exit of that true",
        &l.floor_in_agent,
    );
    row(&mut out, "true timed inside (perf_counter)", &l.true_inside);
    let _ = writeln!(
        out,
        "  x: service / floor Exec {}; service / floor Hello {}; docker exec / service {}",
        ratios(&l.service, &l.floor_exec),
        ratios(&l.service, &l.floor_hello),
        ratios(&l.docker, &l.service),
    );
    let _ = writeln!(out, "program `{}`:", program.describe());
    row(&mut out, "over HTTP", &l.program_http);
    row(
        &mut out,
        "its own time inside (perf_counter)",
        &l.program_inside,
    );
    row(
        &mut out,
        "the agent's duration_ms (whole ms)",
        &l.program_agent,
    );
    let _ = writeln!(
        out,
        "  inside: python3 -c (perf_counter around subprocess.run of the same argv, output piped) over HTTP, interleaved with the HTTP runs; x: HTTP / inside {}",
        ratios(&l.program_http, &l.program_inside)
    );
    out
}

pub fn load_text(l: &Load) -> String {
    let mut out = String::new();
    let Some(plan) = l.plan else {
        return out;
    };
    let pp = |s: &Samples| format!("p50 {} p99 {}", cell(at(s, 50.0)), cell(at(s, 99.0)));
    if plan.burst > 0 {
        let _ = writeln!(
            out,
            "burst: {} execs of true sent at once into one sandbox: {} failed; {} max {} ms; all answered in {:.1} ms",
            plan.burst,
            l.burst_errors,
            pp(&l.burst),
            cell(l.burst.max().map(crate::stats::ms)),
            crate::stats::ms(l.burst_wall)
        );
    }
    if plan.fleet > 0 {
        let _ = writeln!(
            out,
            "fleet: {} sandboxes, {} at a time, each create + 3 execs of true + put and get 1 MiB + stop: {} failed; create {}, exec {}, file {}, cycle {} ms; {:.2} s in all",
            plan.fleet,
            plan.fleet_concurrency,
            l.fleet_errors,
            pp(&l.fleet_create),
            pp(&l.fleet_exec),
            pp(&l.fleet_files),
            pp(&l.fleet_cycle),
            l.fleet_wall.as_secs_f64()
        );
    }
    if let Some(e) = &l.first_error {
        let _ = writeln!(out, "  first failure: {e}");
    }
    out
}

/// Issue 14's targets that the older list (`report::targets`) does not hold.
pub fn targets(figs: &Figures, latency: Option<&ExecLatency>, load: Option<&Load>) -> Vec<Verdict> {
    let exec = latency.map(|l| &l.service);
    let program =
        latency.and_then(|l| ratio(at(&l.program_http, 50.0), at(&l.program_inside, 50.0)));
    let file = |op| p(figs.samples(Side::Service, op), 50.0);
    let burst = load.filter(|l| l.plan.is_some_and(|p| p.burst > 0));
    let fleet = load.filter(|l| l.plan.is_some_and(|p| p.fleet > 0));
    let mut out = Vec::new();
    out.extend([
        verdict(
            "exec true over HTTP p50 <= 2 ms (warm)",
            TARGET_EXEC_P50_MS,
            exec.and_then(|s| at(s, 50.0)),
            " ms",
            false,
        ),
        verdict(
            "exec true over HTTP p99 <= 5 ms (warm)",
            TARGET_EXEC_P99_MS,
            exec.and_then(|s| at(s, 99.0)),
            " ms",
            false,
        ),
        verdict(
            "program over HTTP p50 <= 1.10x inside",
            TARGET_PROGRAM_RATIO,
            program,
            "x",
            false,
        ),
        verdict(
            "put 1 MiB p50 <= 10 ms",
            TARGET_FILE_P50_MS,
            file(PUT_FILE),
            " ms",
            false,
        ),
        verdict(
            "get 1 MiB p50 <= 10 ms",
            TARGET_FILE_P50_MS,
            file(GET_FILE),
            " ms",
            false,
        ),
    ]);
    if let Some(plan) = load.and_then(|l| l.plan) {
        out.push(failures(
            format!("{} execs at once in a sandbox: 0 failed", plan.burst),
            burst.map(|l| (l.burst_errors, plan.burst)),
        ));
        out.push(failures(
            format!(
                "{} sandboxes at c={}: 0 failed",
                plan.fleet, plan.fleet_concurrency
            ),
            fleet.map(|l| (l.fleet_errors, plan.fleet)),
        ));
    }
    out
}

/// A count of failures against 0, as `N failed (of M)`.
fn failures(name: String, counted: Option<(usize, usize)>) -> Verdict {
    #[allow(clippy::cast_precision_loss)]
    let mut v = verdict(name, 0.0, counted.map(|(n, _)| n as f64), " failed", false);
    if let Some((n, of)) = counted {
        v.measured = format!("{n} failed (of {of})");
    }
    v
}

pub fn json(latency: Option<&ExecLatency>, load: Option<&Load>) -> Value {
    json!({
        "exec_latency": latency.map(|l| json!({
            "service_http_exec_true": samples_json(&l.service),
            "docker_exec_true": samples_json(&l.docker),
            "floor_agent_exec_true": samples_json(&l.floor_exec),
            "floor_agent_hello": samples_json(&l.floor_hello),
            "floor_agent_spawn_to_exit": samples_json(&l.floor_in_agent),
            "true_inside": samples_json(&l.true_inside),
            "program_http": samples_json(&l.program_http),
            "program_inside": samples_json(&l.program_inside),
            "program_agent_duration": samples_json(&l.program_agent),
        })),
        "load": load.map(|l| json!({
            "burst": l.plan.map(|p| p.burst),
            "burst_ok": samples_json(&l.burst),
            "burst_errors": l.burst_errors,
            "burst_wall_ms": crate::stats::ms(l.burst_wall),
            "fleet": l.plan.map(|p| p.fleet),
            "fleet_concurrency": l.plan.map(|p| p.fleet_concurrency),
            "fleet_create": samples_json(&l.fleet_create),
            "fleet_exec": samples_json(&l.fleet_exec),
            "fleet_files": samples_json(&l.fleet_files),
            "fleet_cycle": samples_json(&l.fleet_cycle),
            "fleet_errors": l.fleet_errors,
            "fleet_wall_s": l.fleet_wall.as_secs_f64(),
            "first_error": l.first_error,
        })),
    })
}
