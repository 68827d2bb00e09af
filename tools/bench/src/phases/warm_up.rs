//! One sandbox each way before measuring, and the proof that the service
//! and the baseline make the same container.

use anyhow::{Context, bail};
use bollard::models::ContainerInspectResponse;
use bytes::Bytes;
use reqwest::Method;
use serde_json::{Value, json};

use super::Program;
use crate::adapter::Adapter;
use crate::api::{Api, Body, exec_path, file_path, sandbox_path};
use crate::raw::Raw;

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
    // A service over several engines names the node first (`node/id`).
    let container = container.rsplit('/').next().unwrap_or(container);
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
        // Which engine it is on says nothing of how it was made.
        .filter(|k| k != "sandboxer.node")
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
