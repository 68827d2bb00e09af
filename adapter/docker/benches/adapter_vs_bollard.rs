//! Adapter overhead: p50 / p95 of create+start, exec `true` and stop through
//! `DockerSandboxRuntime`, next to the same calls made straight with bollard
//! with the same container config. Stop removes the container only (the
//! workspace volume outlives it and is removed untimed on both sides). N
//! from `SANDBOXER_BENCH_N` (default 30).
//! Everything made is removed, also on panic.
//!
//! `cargo bench -p sandboxer-docker --bench adapter_vs_bollard`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ExecConfig, HostConfig, Mount, MountType, MountVolumeOptions,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptions,
};
use futures::StreamExt;
use sandboxer_core::domain::{ExecRequest, SessionId};
use sandboxer_core::port::{SandboxRef, SandboxRuntime};
use sandboxer_core::trace::NoopTracer;
use sandboxer_docker::testing::{
    Cleanup, create_request, ensure_test_image, ensure_test_image_with_workspace, raw_docker,
    test_spec,
};
use sandboxer_docker::{DockerConfig, DockerSandboxRuntime};

// The percentiles every bench shares; this one uses part of it.
#[allow(dead_code)]
#[path = "../../../tools/bench/src/stats.rs"]
mod stats;

use stats::{Samples, ms};

/// The `p`th percentile of samples known not to be empty.
fn pct(samples: &Samples, p: f64) -> Duration {
    samples.pct(p).expect("N > 0 samples")
}

/// The container the adapter makes, written out with bollard.
fn raw_body(image: &str, session: SessionId) -> ContainerCreateBody {
    let labels = HashMap::from([
        ("sandboxer.managed".to_string(), "true".to_string()),
        ("sandboxer.chat-id".to_string(), "bench".to_string()),
        ("sandboxer.session-id".to_string(), session.to_string()),
        ("sandboxer.generation".to_string(), "1".to_string()),
        (
            "sandboxer.created-at".to_string(),
            sandboxer_core::domain::rfc3339(chrono::Utc::now()),
        ),
    ]);
    ContainerCreateBody {
        image: Some(image.to_owned()),
        user: Some("1000:1000".into()),
        entrypoint: Some(vec!["sleep".into(), "infinity".into()]),
        working_dir: Some("/workspace".into()),
        network_disabled: Some(true),
        labels: Some(labels.clone()),
        host_config: Some(HostConfig {
            runtime: Some("runc".into()),
            init: Some(true),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            network_mode: Some("none".into()),
            memory: Some(512 << 20),
            memory_swap: Some(512 << 20),
            nano_cpus: Some(1_000_000_000),
            pids_limit: Some(256),
            mounts: Some(vec![Mount {
                target: Some("/workspace".into()),
                source: Some(format!("sandboxer-{session}")),
                typ: Some(MountType::VOLUME),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(labels),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                "rw,nosuid,nodev,size=67108864,uid=1000,gid=1000,mode=1777".to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn raw_exec_true(docker: &Docker, id: &str) {
    let exec = docker
        .create_exec(
            id,
            ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let options = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, Some(options)).await.unwrap()
    {
        while output.next().await.is_some() {}
    }
    let info = docker.inspect_exec(&exec.id).await.unwrap();
    assert_eq!(info.exit_code, Some(0));
}

fn main() {
    let n: usize = std::env::var("SANDBOXER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let image = ensure_test_image_with_workspace();
    let bare_image = ensure_test_image();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n, &image, &bare_image));
}

async fn run(n: usize, image: &str, bare_image: &str) {
    let cleanup = Cleanup::new();
    let docker = raw_docker().await;
    let adapter = DockerSandboxRuntime::connect(DockerConfig::default(), Arc::new(NoopTracer))
        .await
        .unwrap();
    let names = ["create+start", "exec true", "stop"];
    let mut ours: [Samples; 3] = Default::default();
    let mut raw: [Samples; 3] = Default::default();
    let mut bare_create = Samples::default();
    let exec_true = ExecRequest::new(vec!["true".into()]).unwrap();
    for i in 0..n {
        // Through the adapter.
        let request = create_request(test_spec(image, "runc"));
        cleanup.request(&request);
        let t = Instant::now();
        let id = adapter.create(&request).await.unwrap();
        ours[0].push(t.elapsed());
        let sandbox = SandboxRef {
            session_id: request.session_id,
            chat_id: request.chat_id.clone(),
            container_id: Some(id),
        };
        let t = Instant::now();
        let out = adapter.exec(&sandbox, &exec_true).await.unwrap();
        ours[1].push(t.elapsed());
        assert_eq!(out.exit_code, 0);
        let t = Instant::now();
        adapter.stop(&sandbox).await.unwrap();
        ours[2].push(t.elapsed());
        // The workspace outlives the stop; its removal is not timed.
        adapter
            .delete_workspace(&request.workspace.id())
            .await
            .unwrap();

        // Straight with bollard, same config.
        let session = cleanup.session(SessionId::new());
        let name = format!("sandboxer-{session}");
        let t = Instant::now();
        let made = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                raw_body(image, session),
            )
            .await
            .unwrap();
        docker.start_container(&made.id, None).await.unwrap();
        raw[0].push(t.elapsed());
        let t = Instant::now();
        raw_exec_true(&docker, &made.id).await;
        raw[1].push(t.elapsed());
        let t = Instant::now();
        let force = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        docker
            .remove_container(&made.id, Some(force))
            .await
            .unwrap();
        raw[2].push(t.elapsed());
        docker
            .remove_volume(&name, None::<RemoveVolumeOptions>)
            .await
            .unwrap();

        // The adapter on an image without /workspace (workspace helper path).
        if i % 3 == 0 {
            let request = create_request(test_spec(bare_image, "runc"));
            cleanup.request(&request);
            let t = Instant::now();
            let id = adapter.create(&request).await.unwrap();
            bare_create.push(t.elapsed());
            let sandbox = SandboxRef {
                session_id: request.session_id,
                chat_id: request.chat_id.clone(),
                container_id: Some(id),
            };
            adapter.stop(&sandbox).await.unwrap();
            adapter
                .delete_workspace(&request.workspace.id())
                .await
                .unwrap();
        }
    }
    println!("adapter vs bollard, N = {n} (runc, image {image}), times in ms");
    println!(
        "{:<14} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "call", "adapter p50", "adapter p95", "bollard p50", "bollard p95", "p50 x", "p95 x"
    );
    for (i, name) in names.iter().enumerate() {
        let (a50, a95, b50, b95) = (
            pct(&ours[i], 50.0),
            pct(&ours[i], 95.0),
            pct(&raw[i], 50.0),
            pct(&raw[i], 95.0),
        );
        println!(
            "{:<14} {:>12.1} {:>12.1} {:>12.1} {:>12.1} {:>9.2} {:>9.2}",
            name,
            ms(a50),
            ms(a95),
            ms(b50),
            ms(b95),
            ms(a50) / ms(b50),
            ms(a95) / ms(b95)
        );
    }
    println!(
        "adapter create+start on an image without /workspace (helper chown), N = {}: p50 {:.1} ms, p95 {:.1} ms",
        bare_create.len(),
        ms(pct(&bare_create, 50.0)),
        ms(pct(&bare_create, 95.0))
    );
    drop(cleanup);
}
