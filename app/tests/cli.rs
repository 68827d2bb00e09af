//! The CLI as an operator uses it: the clients against a running service,
//! the first-start image check, and `sandboxer image build`.

mod support;

use std::process::Output;

use support::{Options, Service, chat, docker_lines};

fn sandboxer(args: &[&str], url: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sandboxer"))
        .args(args)
        .env("SANDBOXER_URL", url)
        .env_remove("SANDBOXER_TOKEN")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_exec_ls_rm_and_cleanup() {
    let service = Service::start(Options::default()).await;
    let url = service.url.clone();
    let c = chat("cli");

    let out = tokio::task::spawn_blocking({
        let (url, c) = (url.clone(), c.clone());
        move || {
            sandboxer(
                &[
                    "exec",
                    "--chat",
                    &c,
                    "--",
                    "sh",
                    "-c",
                    "echo to-out; echo to-err >&2; exit 5",
                ],
                &url,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "to-out\n");
    assert_eq!(text(&out.stderr), "to-err\n");

    let timed = tokio::task::spawn_blocking({
        let (url, c) = (url.clone(), c.clone());
        move || {
            sandboxer(
                &[
                    "exec",
                    "--chat",
                    &c,
                    "--timeout-ms",
                    "300",
                    "--",
                    "sleep",
                    "30",
                ],
                &url,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(
        timed.status.code(),
        Some(124),
        "a timed-out command exits 124"
    );
    assert!(text(&timed.stderr).contains("timed out"));

    let ls = tokio::task::spawn_blocking({
        let url = url.clone();
        move || sandboxer(&["ls"], &url)
    })
    .await
    .unwrap();
    assert!(ls.status.success());
    let listing = text(&ls.stdout);
    assert!(listing.starts_with("CHAT"), "{listing}");
    assert!(listing.contains(&c), "{listing}");

    let cleanup = tokio::task::spawn_blocking({
        let url = url.clone();
        move || sandboxer(&["cleanup"], &url)
    })
    .await
    .unwrap();
    assert!(cleanup.status.success(), "{}", text(&cleanup.stderr));
    assert!(
        text(&cleanup.stdout).starts_with("expired 0 removed 0 failed 0"),
        "{}",
        text(&cleanup.stdout)
    );

    let rm = tokio::task::spawn_blocking({
        let (url, c) = (url.clone(), c.clone());
        move || sandboxer(&["rm", "--chat", &c], &url)
    })
    .await
    .unwrap();
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    assert!(service.containers().is_empty());

    let bad = tokio::task::spawn_blocking(move || {
        sandboxer(&["exec", "--chat", "no spaces", "--", "true"], &url)
    })
    .await
    .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("invalid_chat_id"),
        "{}",
        text(&bad.stderr)
    );
}

/// `hibernate` keeps the chat's files and `ls` shows it hibernated with
/// the time its files go; the next exec resumes it on them.
#[tokio::test(flavor = "multi_thread")]
async fn hibernate_keeps_the_files_and_ls_shows_the_chat() {
    let service = Service::start(Options::default()).await;
    let url = service.url.clone();
    let c = chat("cli-sleep");
    let run = |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sandboxer(&args, &url)
        })
    };
    let args = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    let none = run(args(&["hibernate", "--chat", &c])).await.unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains("no_sandbox"),
        "{}",
        text(&none.stderr)
    );

    let wrote = run(args(&[
        "exec",
        "--chat",
        &c,
        "--",
        "sh",
        "-c",
        "echo kept > notes.txt",
    ]))
    .await
    .unwrap();
    assert!(wrote.status.success(), "{}", text(&wrote.stderr));
    let slept = run(args(&["hibernate", "--chat", &c])).await.unwrap();
    assert!(slept.status.success(), "{}", text(&slept.stderr));
    assert!(
        text(&slept.stdout).contains("hibernated"),
        "{}",
        text(&slept.stdout)
    );
    assert!(service.containers().is_empty(), "the container went");

    let ls = run(args(&["ls"])).await.unwrap();
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    let listing = text(&ls.stdout);
    assert!(
        listing.lines().next().unwrap().ends_with("RETAINED_UNTIL"),
        "{listing}"
    );
    let row = listing
        .lines()
        .find(|l| l.starts_with(&c))
        .unwrap_or_else(|| panic!("{c} not listed:\n{listing}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2], "hibernated", "{row}");
    assert!(
        cells.last().unwrap().ends_with('Z'),
        "retained_until: {row}"
    );

    let back = run(args(&["exec", "--chat", &c, "--", "cat", "notes.txt"]))
        .await
        .unwrap();
    assert!(back.status.success(), "{}", text(&back.stderr));
    assert_eq!(text(&back.stdout), "kept\n");

    let rm = run(args(&["rm", "--chat", &c])).await.unwrap();
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    assert!(service.containers().is_empty());
    assert!(service.volumes().is_empty(), "rm takes the files too");
}

#[test]
fn clients_say_when_the_service_is_not_there() {
    let out = sandboxer(&["ls"], "http://127.0.0.1:9");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach the service at http://127.0.0.1:9"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_image_stops_the_start_with_the_command_that_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandboxer"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--image",
            "sandboxer-missing-image:nope",
        ])
        .args(["--database", dir.path().join("db").to_str().unwrap()])
        .args(["--instance", &chat("missing")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("sandboxer-missing-image:nope"), "{err}");
    assert!(err.contains("sandboxer image build"), "{err}");
}

#[test]
fn bad_config_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sandboxer.toml");
    std::fs::write(&file, "ttl_secs = 5\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandboxer"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown field `ttl_secs`"),
        "{}",
        text(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandboxer"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("SANDBOXER_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("without a token"),
        "{}",
        text(&out.stderr)
    );
}

/// Needs root, debootstrap and Debian's mirror (about a minute); CI has all three.
#[tokio::test(flavor = "multi_thread")]
async fn image_build_makes_a_usable_python_image() {
    let ready = running_as_root() && std::path::Path::new("/usr/sbin/debootstrap").exists();
    if !ready {
        assert!(
            std::env::var("CI").is_err(),
            "CI must be able to build the image (root + debootstrap)"
        );
        eprintln!("skipped: needs root and debootstrap");
        return;
    }
    let tag = format!("sandboxer-test-base:{}", uuid::Uuid::now_v7().simple());
    struct RemoveImage(String);
    impl Drop for RemoveImage {
        fn drop(&mut self) {
            docker_lines(&["rmi", "-f", &self.0]);
        }
    }
    let _image = RemoveImage(tag.clone());
    let build = tokio::task::spawn_blocking({
        let tag = tag.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_sandboxer"))
                .args(["image", "build", "--tag", &tag])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let progress = text(&build.stdout);
    assert!(
        build.status.success(),
        "{progress}\n{}",
        text(&build.stderr)
    );
    for step in [
        "[1/4] debootstrap",
        "[2/4]",
        "[3/4]",
        "[4/4] importing",
        "done:",
    ] {
        assert!(
            progress.contains(step),
            "no progress line {step:?}:\n{progress}"
        );
    }
    let service = Service::start(Options::default().image(&tag)).await;
    let c = chat("built");
    let (status, ran) = service
        .exec(&c, serde_json::json!({"cmd": ["python3", "-c", "import os; print(os.getuid(), os.getcwd())"]}))
        .await;
    assert!(status.is_success(), "{ran}");
    assert_eq!(ran["stdout"], "1000 /workspace\n");
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0")
}
