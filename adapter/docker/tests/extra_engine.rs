//! The extra-engine fixture (`testing::ExtraEngine` over
//! `scripts/extra-dockerd.sh`): a second engine on this machine answers on
//! its own socket or over mutual TLS, runs the test image copied from the
//! host engine, keeps a running container through a daemon stop
//! (`--live-restore`), and once dropped leaves no namespace or state behind.

use std::path::Path;
use std::process::Command;

use sandboxer_docker::testing::{ExtraEngine, ensure_test_image};

/// The command's stdout, trimmed; panics with its stderr when it fails.
fn succeed(mut command: Command) -> String {
    let output = command.output().expect("docker runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Asserts that nothing of engine `name` is left: its network namespace
/// and its state directory.
fn assert_gone(name: &str) {
    let namespaces = succeed({
        let mut ip = Command::new("ip");
        ip.args(["netns", "list"]);
        ip
    });
    let namespace = format!("sbx-{name}");
    assert!(
        !namespaces
            .lines()
            .any(|line| line.split_whitespace().next() == Some(namespace.as_str())),
        "{namespace} is still there: {namespaces}"
    );
    let state = Path::new("/run/sandboxer-engines").join(name);
    assert!(!state.exists(), "{} is still there", state.display());
}

#[test]
fn runs_the_host_image_and_keeps_containers_through_a_daemon_stop() {
    let image = ensure_test_image();
    let engine = ExtraEngine::start("extra-unix", false, &[&image]);
    assert!(engine.host.starts_with("unix://"), "{}", engine.host);
    assert!(engine.cert_dir.is_none());

    let mut echo = engine.docker();
    echo.args(["run", "--rm", "--network", "none", &image, "echo", "hi"]);
    assert_eq!(succeed(echo), "hi");

    let mut sleeper = engine.docker();
    sleeper.args(["run", "-d", "--network", "none", &image, "sleep", "1000"]);
    let id = succeed(sleeper);

    engine.pause();
    let mut away = engine.docker();
    away.arg("info");
    let output = away.output().expect("docker runs");
    assert!(!output.status.success(), "the paused daemon answered");

    engine.resume();
    let mut inspect = engine.docker();
    inspect.args(["inspect", "--format", "{{.State.Running}}", &id]);
    assert_eq!(
        succeed(inspect),
        "true",
        "the container did not survive the stop"
    );

    let name = engine.name.clone();
    drop(engine);
    assert_gone(&name);
}

#[test]
fn answers_over_mutual_tls() {
    let engine = ExtraEngine::start("extra-tcp", true, &[]);
    assert!(engine.host.starts_with("tcp://"), "{}", engine.host);
    let certs = engine.cert_dir.clone().expect("a client certificate dir");
    assert_eq!(
        certs,
        Path::new("/run/sandboxer-engines")
            .join(&engine.name)
            .join("client")
    );

    let mut info = Command::new("docker");
    info.arg("--tlsverify").arg("-H").arg(&engine.host);
    for (flag, file) in [
        ("--tlscacert", "ca.pem"),
        ("--tlscert", "cert.pem"),
        ("--tlskey", "key.pem"),
    ] {
        info.arg(flag).arg(certs.join(file));
    }
    info.args(["info", "--format", "{{.ServerVersion}}"]);
    assert!(!succeed(info).is_empty());

    // Mutual: trusting the engine's CA is not enough without a client
    // certificate.
    let mut anonymous = Command::new("docker");
    anonymous
        .arg("--tlsverify")
        .arg("-H")
        .arg(&engine.host)
        .arg("--tlscacert")
        .arg(certs.join("ca.pem"))
        .arg("info");
    let output = anonymous.output().expect("docker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("bad certificate"),
        "not refused for want of a client certificate: {stderr}"
    );

    let name = engine.name.clone();
    drop(engine);
    assert_gone(&name);
}
