//! The same suite under gVisor (`runsc`): the core's runtime contract
//! (`contract::*`) and the Docker-only tests. Runs when the engine has runsc
//! registered; without it the tests pass with a note outside CI and fail
//! in CI (`CI=true`), where runsc is required (`suite::runtime_ready`).

mod suite;

suite::runtime_contract!("runsc");

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle() {
    if suite::runtime_ready("runsc").await {
        suite::lifecycle("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hardening() {
    if suite::runtime_ready("runsc").await {
        suite::hardening("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_owner() {
    if suite::runtime_ready("runsc").await {
        suite::workspace_owner("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_timeout() {
    if suite::runtime_ready("runsc").await {
        suite::exec_timeout("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_io() {
    if suite::runtime_ready("runsc").await {
        suite::exec_io("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_bomb() {
    if suite::runtime_ready("runsc").await {
        suite::fork_bomb("runsc").await;
    }
}
