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
async fn workspace_kept_across_sandboxes() {
    if suite::runtime_ready("runsc").await {
        suite::workspace_kept_across_sandboxes("runsc").await;
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

#[tokio::test(flavor = "multi_thread")]
async fn agent_holds_as_pid1() {
    if suite::runtime_ready("runsc").await {
        suite::agent_holds_as_pid1("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_agent_is_container_gone() {
    if suite::runtime_ready("runsc").await {
        suite::killed_agent_is_container_gone("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_agent_is_a_timeout() {
    if suite::runtime_ready("runsc").await {
        suite::stopped_agent_is_a_timeout("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_execs_at_once() {
    if suite::runtime_ready("runsc").await {
        suite::many_execs_at_once("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gib_of_output() {
    if suite::runtime_ready("runsc").await {
        suite::a_gib_of_output("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_agent_docker_exec_serves() {
    if suite::runtime_ready("runsc").await {
        suite::without_the_agent_docker_exec_serves("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_service_attaches_again() {
    if suite::runtime_ready("runsc").await {
        suite::a_new_service_attaches_again("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn symlinks_out_of_the_workspace_are_refused() {
    if suite::runtime_ready("runsc").await {
        suite::symlinks_out_of_the_workspace_are_refused("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_agent_volume_per_build() {
    if suite::runtime_ready("runsc").await {
        suite::one_agent_volume_per_build("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_on_a_terminal() {
    if suite::runtime_ready("runsc").await {
        suite::a_shell_on_a_terminal("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_takes_the_whole_tree() {
    if suite::runtime_ready("runsc").await {
        suite::a_kill_takes_the_whole_tree("runsc").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_agent_there_are_no_processes() {
    if suite::runtime_ready("runsc").await {
        suite::without_the_agent_there_are_no_processes("runsc").await;
    }
}
