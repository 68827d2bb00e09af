//! The measured phases: the service's calls over N chats, the same work
//! with raw bollard calls, the warm-up that checks both make the same
//! container, and the idle fill that ends in one timed cleanup.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bollard::models::ContainerInspectResponse;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::adapter::Adapter;
use crate::api::{Api, Body, exec_path, file_path, sandbox_path};
use crate::figures::{self as op, Figures, Side};
use crate::metrics;
use crate::raw::{Raw, RawBox};
use crate::stats::Samples;

/// The "small program" exec: python where the image has it, else sh.
#[derive(Debug, Clone)]
pub struct Program {
    pub argv: Vec<&'static str>,
    pub expected: &'static str,
}

impl Program {
    fn python() -> Self {
        Self {
            argv: vec![
                "python3",
                "-c",
                "import json; print(json.dumps({'sum': sum(i * i for i in range(10000))}))",
            ],
            expected: "{\"sum\": 333283335000}\n",
        }
    }

    fn sh() -> Self {
        Self {
            argv: vec![
                "sh",
                "-c",
                "i=0; s=0; while [ $i -lt 1000 ]; do s=$((s + i)); i=$((i + 1)); done; echo $s",
            ],
            expected: "499500\n",
        }
    }

    pub fn describe(&self) -> String {
        self.argv.join(" ")
    }
}

/// What every phase needs.
pub struct Ctx<'a> {
    pub api: &'a Api,
    pub adapter: &'a Adapter,
    pub raw: &'a Raw,
    pub concurrency: usize,
    pub reuse_rounds: usize,
    pub program: Program,
    pub payload: Bytes,
}

const FILE: &str = "blob-1m.bin";

/// 1 MiB of deterministic noise (xorshift), so nothing compresses it.
pub fn payload() -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(1 << 20);
    while out.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(out)
}

/// Runs `f` over `items`, `concurrency` at a time; each call times itself.
/// Returns the samples, what the calls returned, and the phase's wall time.
async fn each<T, O, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    f: F,
) -> anyhow::Result<(Samples, Vec<O>, Duration)>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = anyhow::Result<(Duration, O)>>,
{
    let started = Instant::now();
    let mut samples = Samples::default();
    let mut outs = Vec::with_capacity(items.len());
    let mut calls =
        futures::stream::iter(items.into_iter().map(f)).buffer_unordered(concurrency.max(1));
    while let Some(done) = calls.next().await {
        let (took, out) = done?;
        samples.push(took);
        outs.push(out);
    }
    Ok((samples, outs, started.elapsed()))
}

/// One pass of the service's calls over `chats`: create, reuse, get,
/// exec `true`, exec the program, put and get 1 MiB, stop.
pub async fn service_round(
    ctx: &Ctx<'_>,
    chats: &[String],
    figs: &mut Figures,
) -> anyhow::Result<()> {
    let api = ctx.api;
    let c = ctx.concurrency;
    let mark = metrics::scrape(api).await?;
    let (s, made, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(Method::PUT, &sandbox_path(&chat), Body::None)
            .await?;
        let v = a.expect(201, "create")?;
        ensure!(v["result"] == "created", "create of {chat}: {v}");
        let session = v["session_id"]
            .as_str()
            .context("no session_id")?
            .to_owned();
        Ok((a.took, (chat, session)))
    })
    .await?;
    figs.add(Side::Service, op::CREATE, s, wall);
    figs.add_spans(
        op::CREATE,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );
    let sessions: HashMap<String, String> = made.into_iter().collect();

    let repeated: Vec<String> = (0..ctx.reuse_rounds)
        .flat_map(|_| chats.iter().cloned())
        .collect();
    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(repeated, c, |chat| {
        let want = sessions[&chat].clone();
        async move {
            let a = api
                .send(Method::PUT, &sandbox_path(&chat), Body::None)
                .await?;
            let v = a.expect(200, "reuse")?;
            ensure!(
                v["result"] == "reused" && v["session_id"] == want.as_str(),
                "reuse of {chat}: {v}"
            );
            Ok((a.took, ()))
        }
    })
    .await?;
    figs.add(Side::Service, op::REUSE, s, wall);
    figs.add_spans(
        op::REUSE,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );

    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(Method::GET, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(200, "get sandbox")?;
        Ok((a.took, ()))
    })
    .await?;
    figs.add(Side::Service, op::GET_SANDBOX, s, wall);
    figs.add_spans(
        op::GET_SANDBOX,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );

    for (name, argv, expected) in [
        (op::EXEC_TRUE, vec!["true"], ""),
        (
            op::EXEC_PROGRAM,
            ctx.program.argv.clone(),
            ctx.program.expected,
        ),
    ] {
        let body = serde_json::to_vec(&json!({ "cmd": argv }))?;
        let mark = metrics::scrape(api).await?;
        let (s, _, wall) = each(chats.to_vec(), c, |chat| {
            let body = body.clone();
            async move {
                let a = api
                    .send(Method::POST, &exec_path(&chat), Body::Json(body))
                    .await?;
                let v = a.expect(200, name)?;
                ensure!(
                    v["exit_code"] == 0 && v["stdout"] == expected,
                    "{name} in {chat}: {v}"
                );
                Ok((a.took, ()))
            }
        })
        .await?;
        figs.add(Side::Service, name, s, wall);
        figs.add_spans(name, metrics::delta(&mark, &metrics::scrape(api).await?));
    }

    let payload = &ctx.payload;
    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(
                Method::PUT,
                &file_path(&chat, FILE),
                Body::Bytes(payload.clone()),
            )
            .await?;
        let v = a.expect(200, "put file")?;
        ensure!(v["size"] == payload.len(), "put file in {chat}: {v}");
        Ok((a.took, ()))
    })
    .await?;
    figs.add(Side::Service, op::PUT_FILE, s, wall);
    figs.add_spans(
        op::PUT_FILE,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );

    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(Method::GET, &file_path(&chat, FILE), Body::None)
            .await?;
        a.expect(200, "get file")?;
        ensure!(a.body == *payload, "get file in {chat}: the bytes changed");
        Ok((a.took, ()))
    })
    .await?;
    figs.add(Side::Service, op::GET_FILE, s, wall);
    figs.add_spans(
        op::GET_FILE,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );

    let mark = metrics::scrape(api).await?;
    let (s, _, wall) = each(chats.to_vec(), c, |chat| async move {
        let a = api
            .send(Method::DELETE, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(204, "stop")?;
        Ok((a.took, ()))
    })
    .await?;
    figs.add(Side::Service, op::STOP, s, wall);
    figs.add_spans(
        op::STOP,
        metrics::delta(&mark, &metrics::scrape(api).await?),
    );
    Ok(())
}

/// The same work with raw bollard calls on `count` containers.
pub async fn raw_round(ctx: &Ctx<'_>, count: usize, figs: &mut Figures) -> anyhow::Result<()> {
    let raw = ctx.raw;
    let c = ctx.concurrency;
    let (s, boxes, wall) = each((0..count).collect(), c, |_| raw.create_start()).await?;
    figs.add(Side::Raw, op::RAW_CREATE, s, wall);

    let repeated: Vec<RawBox> = (0..ctx.reuse_rounds)
        .flat_map(|_| boxes.iter().cloned())
        .collect();
    let (s, _, wall) = each(
        repeated,
        c,
        |b| async move { Ok((raw.inspect(&b).await?, ())) },
    )
    .await?;
    figs.add(Side::Raw, op::RAW_INSPECT, s, wall);

    for (name, argv, expected) in [
        (op::EXEC_TRUE, vec!["true"], ""),
        (
            op::EXEC_PROGRAM,
            ctx.program.argv.clone(),
            ctx.program.expected,
        ),
    ] {
        let argv = &argv;
        let (s, _, wall) = each(boxes.clone(), c, |b| async move {
            let (took, code, stdout) = raw.exec(&b, argv).await?;
            ensure!(
                code == 0 && stdout == expected,
                "raw {name}: exit {code}, stdout {stdout:?}"
            );
            Ok((took, ()))
        })
        .await?;
        figs.add(Side::Raw, name, s, wall);
    }

    let payload = &ctx.payload;
    let (s, _, wall) = each(boxes.clone(), c, |b| async move {
        Ok((raw.put(&b, FILE, payload).await?, ()))
    })
    .await?;
    figs.add(Side::Raw, op::PUT_FILE, s, wall);

    let (s, _, wall) = each(boxes.clone(), c, |b| async move {
        let (took, back) = raw.get(&b, FILE).await?;
        ensure!(back == payload.as_ref(), "raw get: the bytes changed");
        Ok((took, ()))
    })
    .await?;
    figs.add(Side::Raw, op::GET_FILE, s, wall);

    let (s, _, wall) = each(boxes, c, |b| async move { Ok((raw.remove(&b).await?, ())) }).await?;
    figs.add(Side::Raw, op::RAW_REMOVE, s, wall);
    Ok(())
}

/// The same work through the Docker adapter alone on `count` sandboxes
/// (reuse: the inspect a reuse makes).
pub async fn adapter_round(ctx: &Ctx<'_>, count: usize, figs: &mut Figures) -> anyhow::Result<()> {
    let adapter = ctx.adapter;
    let c = ctx.concurrency;
    let (s, boxes, wall) = each((0..count).collect(), c, |_| adapter.create()).await?;
    figs.add(Side::Adapter, op::CREATE, s, wall);
    let repeated: Vec<_> = (0..ctx.reuse_rounds)
        .flat_map(|_| boxes.iter().cloned())
        .collect();
    let (s, _, wall) = each(repeated, c, |b| async move {
        Ok((adapter.inspect(&b).await?, ()))
    })
    .await?;
    figs.add(Side::Adapter, op::REUSE, s, wall);
    for (name, argv, expected) in [
        (op::EXEC_TRUE, vec!["true"], ""),
        (
            op::EXEC_PROGRAM,
            ctx.program.argv.clone(),
            ctx.program.expected,
        ),
    ] {
        let argv = &argv;
        let (s, _, wall) = each(boxes.clone(), c, |b| async move {
            Ok((adapter.exec(&b, argv, expected).await?, ()))
        })
        .await?;
        figs.add(Side::Adapter, name, s, wall);
    }
    let payload = &ctx.payload;
    let (s, _, wall) = each(boxes.clone(), c, |b| async move {
        Ok((adapter.put(&b, FILE, payload).await?, ()))
    })
    .await?;
    figs.add(Side::Adapter, op::PUT_FILE, s, wall);
    let (s, _, wall) = each(boxes.clone(), c, |b| async move {
        Ok((adapter.get(&b, FILE, payload).await?, ()))
    })
    .await?;
    figs.add(Side::Adapter, op::GET_FILE, s, wall);
    let (s, _, wall) = each(
        boxes,
        c,
        |b| async move { Ok((adapter.stop(&b).await?, ())) },
    )
    .await?;
    figs.add(Side::Adapter, op::STOP, s, wall);
    Ok(())
}

/// One sandbox each way before measuring (first calls pay connection
/// set-up and the adapter's per-image workspace check), proving on the
/// way that the service and the baseline make the same container. Picks
/// the program by whether the image has python3.
pub async fn warm_up(
    api: &Api,
    adapter: &Adapter,
    raw: &Raw,
    chat: &str,
) -> anyhow::Result<Program> {
    let a = api
        .send(Method::PUT, &sandbox_path(chat), Body::None)
        .await?;
    let made = a.expect(201, "warm-up create")?;
    let container = made["container_id"].as_str().context("no container_id")?;
    let ours = raw.inspect_full(container).await?;
    let (_, b) = raw.create_start().await?;
    let theirs = raw.inspect_full(&b.id).await?;
    let same = same_container(&ours, &theirs);
    let (_, python, _) = raw.exec(&b, &["python3", "-c", "pass"]).await?;
    raw.remove(&b).await?;
    same?;
    let program = if python == 0 {
        Program::python()
    } else {
        Program::sh()
    };
    for argv in [vec!["true"], program.argv.clone()] {
        let body = serde_json::to_vec(&json!({ "cmd": argv }))?;
        api.send(Method::POST, &exec_path(chat), Body::Json(body))
            .await?
            .expect(200, "warm-up exec")?;
    }
    api.send(
        Method::PUT,
        &file_path(chat, "warm"),
        Body::Bytes(Bytes::from_static(b"w")),
    )
    .await?
    .expect(200, "warm-up put")?;
    api.send(Method::GET, &file_path(chat, "warm"), Body::None)
        .await?
        .expect(200, "warm-up get")?;
    api.send(Method::DELETE, &sandbox_path(chat), Body::None)
        .await?
        .expect(204, "warm-up stop")?;
    let (_, sandbox) = adapter.create().await?;
    let small = Bytes::from_static(b"w");
    adapter
        .exec(&sandbox, &program.argv, program.expected)
        .await?;
    adapter.put(&sandbox, "warm", &small).await?;
    adapter.get(&sandbox, "warm", &small).await?;
    adapter.stop(&sandbox).await?;
    Ok(program)
}

/// What must be equal between the service's container and the baseline's:
/// the whole `HostConfig` (the volume's name aside, it is per session), the
/// process config and the label keys.
fn comparable(info: &ContainerInspectResponse) -> anyhow::Result<Value> {
    let mut host = serde_json::to_value(&info.host_config)?;
    if let Some(mounts) = host["Mounts"].as_array_mut() {
        for m in mounts {
            m["Source"] = json!("<session volume>");
            m["VolumeOptions"]["Labels"] = json!("<session labels>");
        }
    }
    let config = info.config.clone().unwrap_or_default();
    let mut label_keys: Vec<String> = config
        .labels
        .clone()
        .unwrap_or_default()
        .into_keys()
        .collect();
    label_keys.sort();
    Ok(json!({
        "host_config": host,
        "image": config.image,
        "user": config.user,
        "entrypoint": config.entrypoint,
        "cmd": config.cmd,
        "working_dir": config.working_dir,
        "env": config.env,
        "network_disabled": config.network_disabled,
        "label_keys": label_keys,
    }))
}

fn same_container(
    ours: &ContainerInspectResponse,
    theirs: &ContainerInspectResponse,
) -> anyhow::Result<()> {
    let (a, b) = (comparable(ours)?, comparable(theirs)?);
    if a == b {
        return Ok(());
    }
    let mut differs = Vec::new();
    for (k, v) in a.as_object().into_iter().flatten() {
        if k == "host_config" {
            for (hk, hv) in v.as_object().into_iter().flatten() {
                if b[k][hk] != *hv {
                    differs.push(format!("HostConfig.{hk}: service {hv} vs raw {}", b[k][hk]));
                }
            }
        } else if b[k] != *v {
            differs.push(format!("{k}: service {v} vs raw {}", b[k]));
        }
    }
    bail!(
        "the baseline's container differs from the service's:\n  {}",
        differs.join("\n  ")
    )
}

/// The idle fill and the timed cleanup of the same sandboxes.
#[derive(Debug, Default)]
pub struct Idle {
    pub k: usize,
    pub fill: Samples,
    pub fill_wall: Duration,
    pub listed: usize,
    pub list: Duration,
    pub rss_idle_kib: Option<u64>,
    pub cleanup: Duration,
    pub answer: Value,
}

/// Creates `k` sandboxes, reads the service's memory while they idle, then
/// gives them a 1 s TTL, lets it pass and times one `POST /v1/cleanup`,
/// which must remove every one of them.
pub async fn idle_and_cleanup(
    api: &Api,
    k: usize,
    concurrency: usize,
    prefix: &str,
    rss: impl Fn() -> Option<u64>,
) -> anyhow::Result<Idle> {
    let chats: Vec<String> = (0..k).map(|i| format!("{prefix}-idle-{i}")).collect();
    let (fill, _, fill_wall) = each(chats.clone(), concurrency, |chat| async move {
        let a = api
            .send(Method::PUT, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(201, "idle create")?;
        Ok((a.took, ()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = api.send(Method::GET, "/v1/sandboxes", Body::None).await?;
    let listed = a.expect(200, "list")?["sandboxes"]
        .as_array()
        .map_or(0, Vec::len);
    let list = a.took;
    let rss_idle_kib = rss();
    let ttl = serde_json::to_vec(&json!({ "ttl_seconds": 1 }))?;
    each(chats, concurrency, |chat| {
        let ttl = ttl.clone();
        async move {
            let a = api
                .send(Method::PUT, &sandbox_path(&chat), Body::Json(ttl))
                .await?;
            a.expect(200, "shorten ttl")?;
            Ok((a.took, ()))
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = api.send(Method::POST, "/v1/cleanup", Body::None).await?;
    let answer = a.expect(200, "cleanup")?;
    let n = |key: &str| answer[key].as_u64().unwrap_or(u64::MAX);
    ensure!(
        n("removed") >= k as u64 && n("failed") == 0,
        "cleanup did not remove the {k} expired sandboxes: {answer}"
    );
    Ok(Idle {
        k,
        fill,
        fill_wall,
        listed,
        list,
        rss_idle_kib,
        cleanup: a.took,
        answer,
    })
}
