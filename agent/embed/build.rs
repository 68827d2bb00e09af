//! Builds `sandboxer-agent` as a static binary (glibc, `crt-static`; with
//! an explicit `--target` so build scripts and proc macros stay dynamic)
//! into a target directory of its own, and hands its path to `lib.rs`.
//! A nested cargo: the only stable way for one package to carry another
//! package's binary.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest.join("../..");
    for watched in [
        "agent/src",
        "agent/Cargo.toml",
        "agent/proto/src",
        "agent/proto/Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    // Beside the outer build's directories, never inside them: the outer
    // cargo holds its own directory's lock while this runs.
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = target_root(&out).join("agent-static");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "-p",
            "sandboxer-agent",
            "--target",
            TRIPLE,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        // Unwinding stays on: a request that panics gets an error reply;
        // with `abort` it would end PID 1 and the sandbox.
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    // What the outer build set for itself (clippy's driver, its flags,
    // coverage or sanitizer flags) is not for the agent.
    for var in [
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        build.env_remove(var);
    }
    let status = build
        .status()
        .expect("could not run cargo to build sandboxer-agent");
    assert!(
        status.success(),
        "building the static sandboxer-agent failed ({status})"
    );
    let binary = target_dir
        .join(TRIPLE)
        .join("release")
        .join("sandboxer-agent");
    assert!(binary.is_file(), "no agent binary at {}", binary.display());
    println!(
        "cargo:rustc-env=SANDBOXER_AGENT_BINARY={}",
        binary.display()
    );
}

/// The outer target directory: `OUT_DIR` is `<target>/[<triple>/]<profile>/build/<pkg>/out`.
fn target_root(out: &std::path::Path) -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    out.ancestors()
        .find(|p| p.join("CACHEDIR.TAG").is_file())
        .map_or_else(|| out.join("agent"), PathBuf::from)
}
