//! The adapter on the default runtime, runc.

mod suite;

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle() {
    suite::lifecycle("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hardening() {
    suite::hardening("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_owner() {
    suite::workspace_owner("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_timeout() {
    suite::exec_timeout("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_io() {
    suite::exec_io("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_bomb() {
    suite::fork_bomb("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pids_exhausted() {
    suite::pids_exhausted("runc").await;
}
