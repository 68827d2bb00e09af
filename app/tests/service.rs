//! `sandboxer serve` as a user runs it: the real binary on port 0, a
//! temporary SQLite file, the real Docker Engine.

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use sandboxer_core::domain::{EndReason, SessionId};
use sandboxer_core::port::SessionStore;
use sandboxer_core::trace::NoopTracer;
use sandboxer_sqlite::{SqliteSessionStore, SqliteStoreOptions};
use support::{Options, Service, chat};

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_sandbox_from_put_to_delete() {
    let service = Service::start(Options::default()).await;
    let c = chat("life");
    let (status, created) = service.put_sandbox(&c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["result"], "created");
    let container = created["container_id"].as_str().unwrap().to_owned();
    assert_eq!(service.containers(), vec![container.clone()]);

    let (status, again) = service.put_sandbox(&c, "{}").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["result"], "reused");
    assert_eq!(again["container_id"], container.as_str());

    let (status, ran) = service
        .exec(
            &c,
            json!({"cmd": ["sh", "-c", "echo out; echo err >&2; pwd; exit 3"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["exit_code"], 3);
    assert_eq!(ran["stdout"], "out\n/workspace\n");
    assert_eq!(ran["stderr"], "err\n");
    assert_eq!(ran["timed_out"], false);
    assert_eq!(ran["session_id"], created["session_id"]);

    let bytes: Vec<u8> = (0..=255u8).rev().cycle().take(70_000).collect();
    let path = format!("/v1/chats/{c}/files/data/blob.bin");
    let (status, written) = service.call(Method::PUT, &path, Some(bytes.clone())).await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["size"], 70_000);
    let (status, _, back) = service.raw(Method::GET, &path, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(back, bytes, "bytes changed on the round trip");
    let (_, ran) = service
        .exec(&c, json!({"cmd": ["sh", "-c", "wc -c < data/blob.bin"]}))
        .await;
    assert_eq!(ran["stdout"].as_str().unwrap().trim(), "70000");

    let (status, _) = service
        .call(Method::DELETE, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(service.containers().is_empty(), "DELETE left the container");
    assert!(
        service.volumes().is_empty(),
        "DELETE left the workspace volume"
    );
    let (status, gone) = service
        .call(Method::GET, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_sandbox"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_image_runs_python() {
    const IMAGE: &str = "sandboxer-base:bookworm";
    if support::docker_lines(&["images", "-q", IMAGE]).is_empty() {
        assert!(
            std::env::var("CI").is_err(),
            "{IMAGE} is missing in CI: .ci/run builds it with `sandboxer image build`"
        );
        eprintln!("skipped: {IMAGE} is not built here (run `sandboxer image build`)");
        return;
    }
    let service = Service::start(Options::default().image(IMAGE)).await;
    let c = chat("python");
    let program = "import sys, json; print(json.dumps({'sum': sum(range(10))})); sys.exit(4)";
    let (status, ran) = service
        .exec(&c, json!({"cmd": ["python3", "-c", program]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["stdout"], "{\"sum\": 45}\n");
    assert_eq!(ran["exit_code"], 4);
    // Files written by one exec are there for the next: the workspace persists.
    let (_, _) = service
        .exec(
            &c,
            json!({"cmd": ["python3", "-c", "open('state.txt','w').write('kept')"]}),
        )
        .await;
    let (_, ran) = service.exec(&c, json!({"cmd": ["cat", "state.txt"]})).await;
    assert_eq!(ran["stdout"], "kept");
}

/// The default image holds what a coding or data agent reaches for, user
/// installs land on the workspace (offline: a local package), and text is
/// UTF-8. The image must be of the current recipe (`scripts/setup.sh`).
#[tokio::test(flavor = "multi_thread")]
async fn the_default_image_has_what_an_agent_expects() {
    // Another build of the recipe can be checked under its own tag.
    let image = std::env::var("SANDBOXER_TEST_BASE_IMAGE")
        .unwrap_or_else(|_| "sandboxer-base:bookworm".to_owned());
    let image = image.as_str();
    if support::docker_lines(&["images", "-q", image]).is_empty() {
        assert!(std::env::var("CI").is_err(), "{image} is missing in CI");
        eprintln!("skipped: {image} is not built here (run `sandboxer image build`)");
        return;
    }
    let service = Service::start(Options::default().image(image)).await;
    let c = chat("image");
    let run = |script: &'static str| {
        let service = &service;
        let c = &c;
        async move {
            let (status, ran) = service
                .exec(
                    c,
                    json!({"cmd": ["bash", "-c", script], "timeout_ms": 120000}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{script}: {ran}");
            assert_eq!(ran["exit_code"], 0, "{script}: {ran}");
            ran["stdout"].as_str().unwrap_or_default().to_owned()
        }
    };
    let tools = "for t in python3 pip3 git curl jq unzip xz file less ps; do \
                 command -v $t >/dev/null || echo missing $t; done; \
                 python3 -m pip --version >/dev/null && python3 -m venv --help >/dev/null && echo ok";
    assert_eq!(run(tools).await, "ok\n");
    assert_eq!(
        run("echo $HOME; python3 -c 'import sys; print(sys.stdout.encoding)'").await,
        "/workspace\nutf-8\n"
    );
    let venv = "python3 -m venv /workspace/venv && /workspace/venv/bin/python -c 'import sys; print(sys.prefix)'";
    assert_eq!(run(venv).await, "/workspace/venv\n");
    // `pip install --user` of a local package, with no network: it lands
    // under /workspace/.local and is importable by the next exec.
    let install = "mkdir -p /workspace/pkg/hello && cd /workspace/pkg && \
                   printf 'def hi():\\n    return 42\\n' > hello/__init__.py && \
                   printf '[project]\\nname = \"hello\"\\nversion = \"1\"\\n' > pyproject.toml && \
                   python3 -m pip install --user --no-build-isolation --no-index -q . && echo installed";
    assert_eq!(run(install).await, "installed\n");
    let used = run("cd / && python3 -c 'import hello, sys; print(hello.hi(), hello.__file__.startswith(\"/workspace/.local\"))'").await;
    assert_eq!(used, "42 True\n");
    let git = "cd /workspace && git init -q repo && cd repo && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m x && git log --oneline | wc -l";
    assert_eq!(run(git).await.trim(), "1");
    service
        .call(Method::DELETE, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_service_reuses_the_chat_sandbox() {
    let mut service = Service::start(Options::default()).await;
    let c = chat("restart");
    let (_, created) = service.put_sandbox(&c, "").await;
    service
        .exec(&c, json!({"cmd": ["sh", "-c", "echo before > note"]}))
        .await;
    service.terminate().await;
    assert_eq!(
        service.containers().len(),
        1,
        "a clean shutdown keeps the sandboxes"
    );

    service.restart().await;
    let (status, after) = service.put_sandbox(&c, "").await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["result"], "reused");
    assert_eq!(after["session_id"], created["session_id"]);
    assert_eq!(after["container_id"], created["container_id"]);
    let (_, ran) = service.exec(&c, json!({"cmd": ["cat", "note"]})).await;
    assert_eq!(ran["stdout"], "before\n");
}

/// SIGKILL while an exec runs through the sandbox's agent: the restarted
/// service attaches to the agent again (the sandbox kept running) and the
/// chat's next exec works on the same sandbox.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_mid_exec_attaches_again_after_restart() {
    let mut service = Service::start(Options::default()).await;
    let c = chat("reattach");
    let (_, created) = service.put_sandbox(&c, "").await;
    let long = {
        let url = format!("{}/v1/chats/{c}/exec", service.url);
        let client = service.client.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"cmd": ["sh", "-c", "echo begun > begun; sleep 30"]}))
                .send()
                .await
        })
    };
    // The exec is running once its file is there.
    for _ in 0..100 {
        let (_, ran) = service.exec(&c, json!({"cmd": ["cat", "begun"]})).await;
        if ran["stdout"] == "begun\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.kill9().await;
    assert!(long.await.unwrap().is_err(), "the cut exec answered");
    service.restart().await;
    let (status, ran) = service
        .exec(&c, json!({"cmd": ["sh", "-c", "echo after; cat begun"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["stdout"], "after\nbegun\n");
    assert_eq!(ran["session_id"], created["session_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_creates_leaves_nothing_stray_after_restart_and_cleanup() {
    let mut service = Service::start(Options::default()).await;
    let chats: Vec<String> = (0..16).map(|i| chat(&format!("crash{i}"))).collect();
    let mut calls = Vec::new();
    for c in chats.iter().chain(std::iter::repeat_n(&chats[0], 4)) {
        let client = service.client.clone();
        let url = format!("{}/v1/chats/{c}/sandbox", service.url);
        calls.push(tokio::spawn(async move {
            client.put(url).send().await.map(|r| r.status())
        }));
    }
    // Kill once some creates finished and others are still in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.running_containers().len() < 4 {
        assert!(Instant::now() < deadline, "no create finished in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.kill9().await;
    for call in calls {
        let _ = call.await;
    }
    let before = service.containers().len();
    let running_before = service.running_containers().len();

    service.restart().await;
    let (status, report) = service.call(Method::POST, "/v1/cleanup", None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, listed) = service.call(Method::GET, "/v1/sandboxes", None).await;
    let active: Vec<(String, String)> = listed["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["chat_id"].as_str().unwrap().to_owned(),
                s["session_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let containers = service.container_sessions();
    eprintln!(
        "{before} containers ({running_before} running) at the kill; after restart and cleanup: {} containers, {} active sessions",
        containers.len(),
        active.len()
    );
    assert!(!active.is_empty(), "finished creates were lost");
    for pair in &containers {
        assert!(
            active.contains(pair),
            "container of {pair:?} has no active session"
        );
    }
    let mut per_chat: Vec<&String> = containers.iter().map(|(c, _)| c).collect();
    per_chat.sort();
    per_chat.dedup();
    assert_eq!(
        per_chat.len(),
        containers.len(),
        "a chat has two containers: {containers:?}"
    );
    assert_eq!(
        service.volumes().len(),
        containers.len(),
        "volumes without their container"
    );
    for s in listed["sandboxes"].as_array().unwrap() {
        assert_eq!(s["status"], "running", "{s}");
    }
    // The survivors work.
    for (c, _) in &active {
        let (status, ran) = service.exec(c, json!({"cmd": ["true"]})).await;
        assert_eq!(
            (status, ran["exit_code"].as_i64()),
            (StatusCode::OK, Some(0))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_puts_make_one_container() {
    let service = Service::start(Options::default()).await;
    let c = chat("storm");
    let mut calls = Vec::new();
    for _ in 0..50 {
        let client = service.client.clone();
        let url = format!("{}/v1/chats/{c}/sandbox", service.url);
        calls.push(tokio::spawn(async move {
            let r = client.put(url).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut sessions = Vec::new();
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert!(status.is_success(), "{status} {body}");
        sessions.push(body["session_id"].as_str().unwrap().to_owned());
    }
    sessions.dedup();
    assert_eq!(sessions.len(), 1, "callers got different sessions");
    assert_eq!(service.containers().len(), 1);
}

async fn ended_reason(service: &Service, session: &str) -> Option<EndReason> {
    let store = SqliteSessionStore::open(
        service.database().to_str().unwrap(),
        SqliteStoreOptions::default(),
        std::sync::Arc::new(NoopTracer),
    )
    .await
    .unwrap();
    let row = store
        .get(&SessionId::parse(session).unwrap())
        .await
        .unwrap()
        .unwrap();
    store.close().await;
    row.end_reason
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_sandboxes_hibernate_but_not_during_an_exec_and_resume_with_their_files() {
    let service = Service::start(
        Options::default()
            .arg("--ttl-seconds", 2)
            .arg("--cleanup-interval-seconds", 1),
    )
    .await;
    let idle = chat("idle");
    let busy = chat("busy");
    let (_, idle_session) = service.put_sandbox(&idle, "").await;
    let (_, busy_session) = service.put_sandbox(&busy, "").await;
    let (status, wrote) = service
        .exec(
            &idle,
            json!({"cmd": ["sh", "-c", "echo kept > notes.txt && mkdir -p .local/bin && echo ok"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{wrote}");

    // Outlives the TTL by far; cleanup runs every second meanwhile.
    let started = Instant::now();
    let (status, ran) = service
        .exec(
            &busy,
            json!({"cmd": ["sh", "-c", "sleep 5; echo finished"], "timeout_ms": 20000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(ran["stdout"], "finished\n", "cleanup killed a running exec");
    assert_eq!(ran["timed_out"], false);
    assert_eq!(ran["session_id"], busy_session["session_id"]);

    // The idle one hibernated meanwhile: container gone, row ended
    // `hibernated`, its workspace kept.
    let idle_id = idle_session["session_id"].as_str().unwrap();
    assert!(
        !service
            .container_sessions()
            .iter()
            .any(|(_, s)| s == idle_id),
        "the idle sandbox outlived its TTL"
    );
    assert_eq!(
        ended_reason(&service, idle_id).await,
        Some(EndReason::Hibernated)
    );
    let (status, shown) = service
        .call(Method::GET, &format!("/v1/chats/{idle}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["status"], "hibernated", "{shown}");
    // The busy one hibernates once idle.
    let busy_id = busy_session["session_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while service
        .container_sessions()
        .iter()
        .any(|(_, s)| *s == busy_id)
    {
        assert!(
            Instant::now() < deadline,
            "the busy sandbox was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        ended_reason(&service, &busy_id).await,
        Some(EndReason::Hibernated)
    );
    assert_eq!(service.volumes().len(), 2, "both workspaces are kept");

    // The next use resumes on the same files, transparently.
    let (status, ran) = service
        .exec(&idle, json!({"cmd": ["cat", "notes.txt"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["stdout"], "kept\n");
    assert_ne!(ran["session_id"], idle_session["session_id"]);
    // DELETE removes everything, the workspace included.
    let (status, _) = service
        .call(Method::DELETE, &format!("/v1/chats/{idle}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = service
        .call(Method::DELETE, &format!("/v1/chats/{busy}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(service.volumes().is_empty());
}
