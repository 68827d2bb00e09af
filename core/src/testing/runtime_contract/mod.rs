//! The contract every `SandboxRuntime` keeps, written against the port
//! only: the in-memory fake and Docker (runc, gVisor) run the same
//! properties, so a new runtime starts by passing them.
//!
//! The runtime comes with a `RuntimeFixture`: how to ask it for a sandbox
//! and what only the outside can do to one. Each property is a public
//! function that returns `Err(what was seen)` when the runtime breaks it;
//! each makes its own sandboxes of fresh sessions on fresh workspaces and
//! deletes those workspaces when it passes, so properties can share a
//! fixture, and `run_all` runs them in turn and names the one that failed.
//!
//! Commands are argv of the small userland every sandbox image has (`echo`,
//! `cat`, `tee`, `pwd`, `env`, `sleep`, `true`, `sh -c 'exit N'`); no
//! shell scripts, no process trees, no kernel limits: what needs those (a
//! timeout killing a whole tree, a fork bomb, the pids limit, a read-only
//! root) is the runtime's own test, not the contract.

mod exec;
mod files;
mod lifecycle;
mod listing;
mod processes;
mod workspaces;

use async_trait::async_trait;

use crate::domain::{ContainerId, ExecOutcome, ExecRequest};
use crate::port::runtime::{CreateRequest, RuntimeError, SandboxRef, SandboxRuntime};

pub use exec::{
    exec_exit_codes_and_streams, exec_output_is_capped_per_stream, exec_stdin_env_and_workdir,
    exec_timeout_returns_timed_out_and_keeps_the_sandbox,
};
pub use files::{files_missing_or_in_the_way, files_round_trip};
pub use lifecycle::{
    a_sandbox_removed_behind_its_back_is_gone, create_again_adopts_the_sandbox,
    create_from_a_missing_image_is_image_not_found, lifecycle, list_shows_what_was_made,
    ping_answers,
};
pub use listing::{list_files_missing_or_not_a_directory, list_files_shows_one_level_sorted};
pub use processes::{
    processes_cursor_expired_and_bad_offsets, processes_signal_kill_and_limit,
    processes_start_read_and_end, processes_stdin_round_trip,
};
pub use workspaces::{
    a_failed_create_leaves_no_fresh_workspace_and_keeps_a_kept_one,
    delete_workspace_is_idempotent_and_takes_the_files,
    delete_workspace_while_its_sandbox_runs_is_conflict, files_survive_on_the_kept_workspace,
    list_workspaces_shows_a_workspace_until_it_is_deleted,
};

/// What a property returns: `Err` says what the runtime did wrong.
pub type Outcome = Result<(), String>;

/// A runtime under test and what the contract cannot do through the port.
#[async_trait]
pub trait RuntimeFixture: Send + Sync {
    /// The runtime under test.
    fn runtime(&self) -> &dyn SandboxRuntime;

    /// A request for a fresh session of a fresh chat on a fresh workspace,
    /// of an image this runtime runs that has the userland above. The
    /// fixture removes what is made for it (the workspace too) even when a
    /// property fails half way.
    fn create_request(&self) -> CreateRequest;

    /// An image the runtime does not have (and must not wait to pull).
    fn missing_image(&self) -> String;

    /// Removes the sandbox's container behind the runtime's back, as an
    /// operator (or a crash) would; the runtime is not told.
    async fn remove_behind_its_back(&self, sandbox: &SandboxRef);
}

/// Calls `$callback!` with every property's name after the arguments
/// given (`;`-separated), so each implementation's tests get one test per
/// property from this one list, and a new property reaches every runtime.
#[macro_export]
macro_rules! runtime_contract_properties {
    ($callback:ident $(, $arg:tt)*) => {
        $callback!(
            $($arg;)*
            ping_answers,
            lifecycle,
            create_again_adopts_the_sandbox,
            create_from_a_missing_image_is_image_not_found,
            list_shows_what_was_made,
            a_sandbox_removed_behind_its_back_is_gone,
            exec_exit_codes_and_streams,
            exec_stdin_env_and_workdir,
            exec_output_is_capped_per_stream,
            exec_timeout_returns_timed_out_and_keeps_the_sandbox,
            files_round_trip,
            files_missing_or_in_the_way,
            list_files_shows_one_level_sorted,
            list_files_missing_or_not_a_directory,
            processes_start_read_and_end,
            processes_stdin_round_trip,
            processes_signal_kill_and_limit,
            processes_cursor_expired_and_bad_offsets,
            files_survive_on_the_kept_workspace,
            a_failed_create_leaves_no_fresh_workspace_and_keeps_a_kept_one,
            delete_workspace_is_idempotent_and_takes_the_files,
            list_workspaces_shows_a_workspace_until_it_is_deleted,
            delete_workspace_while_its_sandbox_runs_is_conflict,
        );
    };
}

/// Runs every property against `fixture`, in turn; the error names the
/// property that failed.
///
/// # Errors
/// The first broken property, with what was seen.
pub async fn run_all(fixture: &dyn RuntimeFixture) -> Outcome {
    let f = fixture;
    let named = |name: &'static str| move |why: String| format!("{name}: {why}");
    ping_answers(f).await.map_err(named("ping_answers"))?;
    lifecycle(f).await.map_err(named("lifecycle"))?;
    create_again_adopts_the_sandbox(f)
        .await
        .map_err(named("create_again_adopts_the_sandbox"))?;
    create_from_a_missing_image_is_image_not_found(f)
        .await
        .map_err(named("create_from_a_missing_image_is_image_not_found"))?;
    list_shows_what_was_made(f)
        .await
        .map_err(named("list_shows_what_was_made"))?;
    a_sandbox_removed_behind_its_back_is_gone(f)
        .await
        .map_err(named("a_sandbox_removed_behind_its_back_is_gone"))?;
    exec_exit_codes_and_streams(f)
        .await
        .map_err(named("exec_exit_codes_and_streams"))?;
    exec_stdin_env_and_workdir(f)
        .await
        .map_err(named("exec_stdin_env_and_workdir"))?;
    exec_output_is_capped_per_stream(f)
        .await
        .map_err(named("exec_output_is_capped_per_stream"))?;
    exec_timeout_returns_timed_out_and_keeps_the_sandbox(f)
        .await
        .map_err(named(
            "exec_timeout_returns_timed_out_and_keeps_the_sandbox",
        ))?;
    files_round_trip(f)
        .await
        .map_err(named("files_round_trip"))?;
    files_missing_or_in_the_way(f)
        .await
        .map_err(named("files_missing_or_in_the_way"))?;
    list_files_shows_one_level_sorted(f)
        .await
        .map_err(named("list_files_shows_one_level_sorted"))?;
    list_files_missing_or_not_a_directory(f)
        .await
        .map_err(named("list_files_missing_or_not_a_directory"))?;
    processes_start_read_and_end(f)
        .await
        .map_err(named("processes_start_read_and_end"))?;
    processes_stdin_round_trip(f)
        .await
        .map_err(named("processes_stdin_round_trip"))?;
    processes_signal_kill_and_limit(f)
        .await
        .map_err(named("processes_signal_kill_and_limit"))?;
    processes_cursor_expired_and_bad_offsets(f)
        .await
        .map_err(named("processes_cursor_expired_and_bad_offsets"))?;
    files_survive_on_the_kept_workspace(f)
        .await
        .map_err(named("files_survive_on_the_kept_workspace"))?;
    a_failed_create_leaves_no_fresh_workspace_and_keeps_a_kept_one(f)
        .await
        .map_err(named(
            "a_failed_create_leaves_no_fresh_workspace_and_keeps_a_kept_one",
        ))?;
    delete_workspace_is_idempotent_and_takes_the_files(f)
        .await
        .map_err(named("delete_workspace_is_idempotent_and_takes_the_files"))?;
    list_workspaces_shows_a_workspace_until_it_is_deleted(f)
        .await
        .map_err(named(
            "list_workspaces_shows_a_workspace_until_it_is_deleted",
        ))?;
    delete_workspace_while_its_sandbox_runs_is_conflict(f)
        .await
        .map_err(named("delete_workspace_while_its_sandbox_runs_is_conflict"))?;
    Ok(())
}

/// An exec request of `argv` with the defaults.
///
/// # Panics
/// When `argv` is not a valid command (empty, or a NUL in it).
pub fn cmd(argv: &[&str]) -> ExecRequest {
    ExecRequest::new(argv.iter().map(|a| (*a).to_owned()).collect())
        .expect("a valid contract command")
}

/// Makes a sandbox of the fixture's request; the ref carries its id.
async fn start(f: &dyn RuntimeFixture) -> Result<(CreateRequest, SandboxRef), String> {
    start_on(f, f.create_request()).await
}

/// Makes a sandbox of `request`.
async fn start_on(
    f: &dyn RuntimeFixture,
    request: CreateRequest,
) -> Result<(CreateRequest, SandboxRef), String> {
    let id = f
        .runtime()
        .create(&request)
        .await
        .map_err(unexpected("create"))?;
    let sandbox = sandbox_ref(&request, id);
    Ok((request, sandbox))
}

fn sandbox_ref(request: &CreateRequest, id: ContainerId) -> SandboxRef {
    SandboxRef {
        session_id: request.session_id,
        chat_id: request.chat_id.clone(),
        container_id: Some(id),
    }
}

async fn run(
    f: &dyn RuntimeFixture,
    sandbox: &SandboxRef,
    request: &ExecRequest,
) -> Result<ExecOutcome, String> {
    f.runtime()
        .exec(sandbox, request)
        .await
        .map_err(|e| format!("exec {:?} failed: {e:?}", request.argv))
}

/// Runs `argv`, which must exit 0; its stdout.
async fn stdout(
    f: &dyn RuntimeFixture,
    sandbox: &SandboxRef,
    argv: &[&str],
) -> Result<Vec<u8>, String> {
    let out = run(f, sandbox, &cmd(argv)).await?;
    check_eq!(out.exit_code, 0, "exit code of {argv:?} ({out:?})");
    Ok(out.stdout)
}

/// Stops a sandbox.
async fn stop(f: &dyn RuntimeFixture, sandbox: &SandboxRef) -> Outcome {
    f.runtime()
        .stop(sandbox)
        .await
        .map(drop)
        .map_err(unexpected("stop"))
}

/// Stops a sandbox a property is done with and deletes its workspace.
async fn remove(f: &dyn RuntimeFixture, request: &CreateRequest, sandbox: &SandboxRef) -> Outcome {
    stop(f, sandbox).await?;
    delete_workspace(f, request).await
}

/// Deletes the workspace of `request`.
async fn delete_workspace(f: &dyn RuntimeFixture, request: &CreateRequest) -> Outcome {
    f.runtime()
        .delete_workspace(&request.workspace.id())
        .await
        .map_err(unexpected("delete_workspace"))
}

fn unexpected(call: &'static str) -> impl Fn(RuntimeError) -> String {
    move |e| format!("{call} failed: {e:?}")
}
