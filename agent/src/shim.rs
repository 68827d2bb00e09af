//! The first program every command runs: the agent's own binary again
//! (`sandboxer-agent --exec PROGRAM ARGS...`), which raises its OOM score
//! and then execs the command in its place (same pid, same group).
//!
//! Why not in the fork's pre-exec hook: the forked child is still the
//! agent, not dumpable, so its /proc files belong to root and the sandbox
//! user cannot write its `oom_score_adj`. Making the child dumpable before
//! exec would open the agent's memory and descriptors (the attach stream)
//! to the sandbox for that moment. After an exec the process is dumpable,
//! owns its /proc files and holds none of the agent's descriptors.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The flag that makes the agent the shim; everything after it is argv.
pub const FLAG: &str = "--exec";

pub fn run(argv: &[OsString]) -> ! {
    // The OOM killer's first pick: user code, never the agent. Raising
    // one's own score needs no privilege; without the file, run anyway.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let Some(program) = argv.first() else {
        eprintln!("sandboxer-agent: {FLAG} needs a program");
        std::process::exit(126);
    };
    // Returns only on failure; PATH is looked up as execvp does.
    let error = Command::new(program).args(&argv[1..]).exec();
    let refusal = crate::exec::refusal(&format!("cannot run {program:?}"), &error);
    eprint!("{}", refusal.message);
    std::process::exit(refusal.exit_code);
}
