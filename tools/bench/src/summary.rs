//! What `run` prints and writes: the latency table, the breakdown, the idle
//! and cleanup figures, memory, footprint and leaks, the targets; the same
//! as JSON.

use serde_json::json;

use crate::agent_report;
use crate::figures::Figures;
use crate::footprint::Footprint;
use crate::machine::Machine;
use crate::phases::{ExecLatency, Idle, Load, Processes, Program, processes};
use crate::report::{self, Memory, mib};
use crate::run::RunArgs;

/// Everything one run measured.
#[derive(Default)]
pub struct Measured {
    pub figs: Figures,
    pub program: Program,
    pub memory: Memory,
    pub idle: Option<Idle>,
    pub latency: Option<ExecLatency>,
    pub load: Option<Load>,
    pub processes: Option<Processes>,
    pub pool: Option<crate::phases::Pool>,
}

pub fn leaks(before: Option<Footprint>, after: Option<Footprint>, raw_left: Footprint) -> usize {
    let service = match (before, after) {
        (Some(b), Some(a)) => {
            a.containers.saturating_sub(b.containers) + a.volumes.saturating_sub(b.volumes)
        }
        _ => 0,
    };
    service + raw_left.containers + raw_left.volumes
}

fn cleanup_rate(idle: Option<&Idle>) -> Option<f64> {
    idle.map(|i| {
        #[allow(clippy::cast_precision_loss)]
        let k = i.k as f64;
        k / i.cleanup.as_secs_f64()
    })
}

fn kib_text(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.1} MiB", mib(k)))
}

#[allow(clippy::too_many_arguments)]
pub fn print_report(
    args: &RunArgs,
    m: &Measured,
    _machine: &Machine,
    load_at_end: &str,
    before: Option<Footprint>,
    after: Option<Footprint>,
    raw_left: Footprint,
    removed: Footprint,
) {
    let all = args.only.is_none();
    println!("program: {}", m.program.describe());
    if all {
        print_phases(args, m);
    }
    if let Some(live) = &m.processes {
        print!("{}", processes::text(live));
    }
    let mem = &m.memory;
    println!(
        "service memory (VmRSS): after warm-up {}, after the rounds {}, with {} idle sandboxes {}, after cleanup {}; peak (VmHWM) {}",
        kib_text(mem.after_warm_up),
        kib_text(mem.after_rounds),
        args.idle,
        kib_text(mem.with_idle),
        kib_text(mem.after_cleanup),
        kib_text(mem.peak)
    );
    match (before, after) {
        (Some(b), Some(a)) => println!("service footprint (ours, by label): before {b}; after {a}"),
        _ => println!("service footprint: not counted (pass --instance with --url)"),
    }
    println!("adapter and raw baseline footprint after: {raw_left}");
    println!(
        "leaks: {} (removed at the end by label: {removed})",
        leaks(before, after, raw_left)
    );
    println!("load average at end: {load_at_end}");
    println!("targets (reported, not asserted):");
    let mut verdicts = Vec::new();
    if all {
        verdicts.extend(report::targets(
            &m.figs,
            cleanup_rate(m.idle.as_ref()),
            args.idle,
            mem.with_idle,
        ));
        verdicts.extend(agent_report::targets(
            &m.figs,
            m.latency.as_ref(),
            m.load.as_ref(),
        ));
    }
    if all || m.processes.is_some() {
        verdicts.extend(processes::targets(m.processes.as_ref()));
    }
    for v in verdicts {
        let mark = match v.met {
            Some(true) => "MET   ",
            Some(false) => "MISSED",
            None => "-     ",
        };
        println!(
            "  {mark} {:<40} measured {:<22} {}",
            v.name, v.measured, v.by
        );
    }
}

/// The table, the breakdown and the agent's, load and idle figures.
fn print_phases(args: &RunArgs, m: &Measured) {
    println!(
        "{} chats through the service, {} sandboxes through the adapter alone, {} raw containers; concurrency {}, reuses per chat {}",
        args.chats, args.chats, args.chats, args.concurrency, args.reuse_rounds
    );
    print!("{}", report::table(&m.figs));
    print!("{}", report::breakdown(&m.figs));
    if let Some(latency) = &m.latency {
        print!("{}", agent_report::latency_text(latency, &m.program));
    }
    if let Some(load) = &m.load {
        print!("{}", agent_report::load_text(load));
    }
    if let Some(idle) = &m.idle {
        let fill = &idle.fill;
        println!(
            "idle fill: {} creates, p50 {:.1} ms, p95 {:.1} ms, {:.1} sandboxes/s (each a create and one exec); GET /v1/sandboxes with {} listed: {:.1} ms",
            idle.k,
            fill.pct(50.0).map_or(0.0, crate::stats::ms),
            fill.pct(95.0).map_or(0.0, crate::stats::ms),
            {
                #[allow(clippy::cast_precision_loss)]
                let k = idle.k as f64;
                k / idle.fill_wall.as_secs_f64()
            },
            idle.listed,
            crate::stats::ms(idle.list)
        );
        if let (Some(before), Some(idle_fds)) = (idle.fds_before, idle.fds_idle) {
            println!(
                "service file descriptors: {before} before the fill, {idle_fds} with {} idle sandboxes (+{}: one attach each)",
                idle.k,
                idle_fds.saturating_sub(before)
            );
        }
        println!(
            "cleanup of {} expired sandboxes (hibernated): {:.2} s = {:.1} sandboxes/s; containers of those chats left: {}; answer {}",
            idle.k,
            idle.cleanup.as_secs_f64(),
            cleanup_rate(Some(idle)).unwrap_or(0.0),
            idle.containers_after,
            idle.answer
        );
        println!(
            "service memory with {} hibernated chats: {}",
            idle.k,
            kib_text(idle.rss_hibernated_kib)
        );
        let p50 = |s: &crate::stats::Samples| s.pct(50.0).map_or(0.0, crate::stats::ms);
        let ratio = p50(&idle.raw_kept);
        println!(
            "resume of {} hibernated chats (PUT): p50 {:.1} ms, p95 {:.1} ms; raw create+start on an existing volume: p50 {:.1} ms; resume / raw = {:.2}x",
            idle.resume.len(),
            p50(&idle.resume),
            idle.resume.pct(95.0).map_or(0.0, crate::stats::ms),
            ratio,
            if ratio > 0.0 {
                p50(&idle.resume) / ratio
            } else {
                0.0
            },
        );
    }
    if let Some(pool) = &m.pool {
        print!("{}", pool_text(pool));
    }
}

fn pool_text(pool: &crate::phases::Pool) -> String {
    let ms = |s: &crate::stats::Samples, p: f64| s.pct(p).map_or(0.0, crate::stats::ms);
    format!(
        "warm pool of {}: new chat PUT at concurrency 1, pool full before each: {} hits, p50 {:.1} ms, p99 {:.1} ms ({} misses)\n\
         burst of {} new chats at once: {} hits (p50 {:.1} ms), {} misses (p50 {:.1} ms, p95 {:.1} ms)\n",
        pool.size,
        pool.hits.len(),
        ms(&pool.hits, 50.0),
        ms(&pool.hits, 99.0),
        pool.sequential_misses,
        pool.burst,
        pool.burst_hits.len(),
        ms(&pool.burst_hits, 50.0),
        pool.burst_misses.len(),
        ms(&pool.burst_misses, 50.0),
        ms(&pool.burst_misses, 95.0),
    )
}

#[allow(clippy::too_many_arguments)]
pub fn json_report(
    args: &RunArgs,
    m: &Measured,
    machine: &Machine,
    image: &str,
    load_at_start: &str,
    load_at_end: &str,
    before: Option<Footprint>,
    after: Option<Footprint>,
    raw_left: Footprint,
) -> serde_json::Value {
    let fp =
        |f: Option<Footprint>| f.map(|f| json!({"containers": f.containers, "volumes": f.volumes}));
    json!({
        "machine": machine.to_string(),
        "load_at_start": load_at_start,
        "load_at_end": load_at_end,
        "image": image,
        "program": m.program.describe(),
        "chats": args.chats,
        "concurrency": args.concurrency,
        "reuse_rounds": args.reuse_rounds,
        "rows": report::rows_json(&m.figs),
        "idle": m.idle.as_ref().map(|i| json!({
            "k": i.k,
            "fill_p50_ms": i.fill.pct(50.0).map(crate::stats::ms),
            "fill_p95_ms": i.fill.pct(95.0).map(crate::stats::ms),
            "list_ms": crate::stats::ms(i.list),
            "cleanup_s": i.cleanup.as_secs_f64(),
            "cleanup_per_s": cleanup_rate(Some(i)),
            "cleanup_answer": i.answer,
            "fds_before": i.fds_before,
            "fds_idle": i.fds_idle,
            "containers_after": i.containers_after,
            "rss_hibernated_kib": i.rss_hibernated_kib,
            "resume_p50_ms": i.resume.pct(50.0).map(crate::stats::ms),
            "raw_kept_p50_ms": i.raw_kept.pct(50.0).map(crate::stats::ms),
        })),
        "pool": m.pool.as_ref().map(|p| json!({
            "size": p.size,
            "hits": p.hits.len(),
            "p50_ms": p.hits.pct(50.0).map(crate::stats::ms),
            "p99_ms": p.hits.pct(99.0).map(crate::stats::ms),
            "sequential_misses": p.sequential_misses,
            "burst": p.burst,
            "burst_hits": p.burst_hits.len(),
            "burst_misses": p.burst_misses.len(),
            "burst_miss_p50_ms": p.burst_misses.pct(50.0).map(crate::stats::ms),
        })),
        "agent": agent_report::json(m.latency.as_ref(), m.load.as_ref()),
        "processes": processes::json(m.processes.as_ref()),
        "memory_kib": {
            "after_warm_up": m.memory.after_warm_up,
            "after_rounds": m.memory.after_rounds,
            "with_idle": m.memory.with_idle,
            "after_cleanup": m.memory.after_cleanup,
            "peak": m.memory.peak,
        },
        "footprint": {"before": fp(before), "after": fp(after), "raw_after": fp(Some(raw_left))},
        "leaks": leaks(before, after, raw_left),
    })
}
