//! The same suite under gVisor (`runsc`). Runs when the engine has runsc
//! registered; without it the tests pass with a note outside CI and fail
//! in CI (`CI=true`), where runsc is required.

mod suite;

use sandboxer_docker::testing::runsc_registered;

async fn gvisor_or_skip() -> bool {
    if runsc_registered().await {
        return true;
    }
    let why = "the Docker Engine has no `runsc` runtime registered (see .ci/docker-setup.sh)";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}: required in CI"
    );
    println!("skipping the gVisor suite: {why}");
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle() {
    if gvisor_or_skip().await {
        suite::lifecycle("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hardening() {
    if gvisor_or_skip().await {
        suite::hardening("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_owner() {
    if gvisor_or_skip().await {
        suite::workspace_owner("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_timeout() {
    if gvisor_or_skip().await {
        suite::exec_timeout("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_io() {
    if gvisor_or_skip().await {
        suite::exec_io("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_bomb() {
    if gvisor_or_skip().await {
        suite::fork_bomb("runsc").await;
    }
}
