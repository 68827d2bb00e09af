//! The CLI's live-process commands as a user runs them against a running
//! service: `exec` writing output as it comes, `ps`, `logs` (with `-f`,
//! across a cut connection and a buffer it fell behind), `kill`, and
//! `shell` fed by a pipe.

mod support;

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use support::{Options, Service, chat};

/// Long enough for a first call to make the chat's sandbox.
const PATIENCE: Duration = Duration::from_secs(120);

fn cli(args: &[&str], url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandboxer"));
    command
        .args(args)
        .env("SANDBOXER_URL", url)
        .env_remove("SANDBOXER_TOKEN")
        .kill_on_drop(true);
    command
}

async fn sandboxer(args: &[&str], url: &str) -> Output {
    let run = cli(args, url).output();
    tokio::time::timeout(PATIENCE, run)
        .await
        .unwrap_or_else(|_| panic!("sandboxer {args:?} did not end"))
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts `cmd` as a live process of the chat under the id `id`.
async fn start(service: &Service, chat: &str, id: &str, cmd: &[&str]) {
    let body = json!({ "cmd": cmd, "process_id": id });
    let (status, answer) = service
        .call(
            Method::POST,
            &format!("/v1/chats/{chat}/processes"),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{answer}");
}

/// The process once it has ended.
async fn ended(service: &Service, chat: &str, id: &str) -> Value {
    let path = format!("/v1/chats/{chat}/processes/{id}");
    for _ in 0..600 {
        let (status, process) = service.call(Method::GET, &path, None).await;
        assert!(status.is_success(), "{process}");
        if process["status"] == "exited" {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("process {id} did not end");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_writes_output_as_it_comes() {
    let service = Service::start(Options::default()).await;
    let c = chat("cli-live");

    let mut child = cli(
        &[
            "exec",
            "--chat",
            &c,
            "--",
            "sh",
            "-c",
            "echo one; sleep 3; echo two; echo three >&2",
        ],
        &service.url,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(PATIENCE, lines.next_line()).await;
    assert_eq!(first.unwrap().unwrap().as_deref(), Some("one"));
    assert!(
        child.try_wait().unwrap().is_none(),
        "`one` came before the command ended"
    );
    let second = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    assert_eq!(second.unwrap().unwrap().as_deref(), Some("two"));
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(stderr, "three\n");

    // Bytes that are not UTF-8 come through as they are.
    let raw = sandboxer(
        &["exec", "--chat", &c, "--", "printf", "\\377\\376x"],
        &service.url,
    )
    .await;
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    assert_eq!(raw.stdout, b"\xff\xfex");

    let failed = sandboxer(
        &[
            "exec",
            "--chat",
            &c,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
        &service.url,
    )
    .await;
    assert_eq!(failed.status.code(), Some(7), "{}", text(&failed.stderr));
    assert_eq!(text(&failed.stdout), "out\n");
    assert_eq!(text(&failed.stderr), "err\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn ps_logs_and_kill() {
    let service = Service::start(Options::default()).await;
    let url = service.url.clone();
    let c = chat("cli-ps");

    start(&service, &c, "sleeper", &["sleep", "1000"]).await;
    start(&service, &c, "napper", &["sleep", "1000"]).await;
    start(
        &service,
        &c,
        "talker",
        &["sh", "-c", "echo out1; echo err1 >&2"],
    )
    .await;

    let ps = sandboxer(&["ps", "--chat", &c], &url).await;
    assert!(ps.status.success(), "{}", text(&ps.stderr));
    let listing = text(&ps.stdout);
    assert!(listing.starts_with("PROCESS"), "{listing}");
    let sleeper = listing
        .lines()
        .find(|l| l.starts_with("sleeper "))
        .unwrap_or_else(|| panic!("no sleeper in\n{listing}"));
    assert!(sleeper.contains(" running "), "{sleeper}");
    assert!(sleeper.ends_with("sleep 1000"), "{sleeper}");

    ended(&service, &c, "talker").await;
    let logs = sandboxer(&["logs", "--chat", &c, "talker"], &url).await;
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    assert_eq!(text(&logs.stdout), "out1\n");
    assert_eq!(text(&logs.stderr), "err1\n");

    let kill = sandboxer(&["kill", "--chat", &c, "sleeper"], &url).await;
    assert!(kill.status.success(), "{}", text(&kill.stderr));
    let killed = ended(&service, &c, "sleeper").await;
    assert_eq!(killed["killed"], true, "{killed}");

    let term = sandboxer(&["kill", "--chat", &c, "napper", "--signal", "TERM"], &url).await;
    assert!(term.status.success(), "{}", text(&term.stderr));
    let napper = ended(&service, &c, "napper").await;
    assert_eq!(napper["exit_code"], 128 + 15, "{napper}");

    let ps = sandboxer(&["ps", "--chat", &c], &url).await;
    let listing = text(&ps.stdout);
    let napper = listing.lines().find(|l| l.starts_with("napper ")).unwrap();
    assert!(
        napper.contains(" exited ") && napper.contains(" 143 "),
        "{napper}"
    );

    for args in [
        ["logs", "--chat", &c, "nobody"],
        ["kill", "--chat", &c, "nobody"],
    ] {
        let missing = sandboxer(&args, &url).await;
        assert_eq!(missing.status.code(), Some(1));
        assert!(
            text(&missing.stderr).contains("process_not_found"),
            "{}",
            text(&missing.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_writes_to_the_end() {
    let service = Service::start(Options::default()).await;
    let c = chat("cli-follow");
    start(
        &service,
        &c,
        "counter",
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo line$i; echo warn$i >&2; sleep 0.5; done",
        ],
    )
    .await;
    let logs = sandboxer(&["logs", "--chat", &c, "counter", "-f"], &service.url).await;
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    assert_eq!(text(&logs.stdout), "line1\nline2\nline3\nline4\nline5\n");
    assert_eq!(text(&logs.stderr), "warn1\nwarn2\nwarn3\nwarn4\nwarn5\n");
}

/// A proxy to `target` whose first connection is cut after `cut_after`
/// bytes of the answer; the others pass everything. Its URL, and how many
/// connections it took.
async fn cutting_proxy(target: &str, cut_after: u64) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let target = target.to_owned();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        let mut limit = Some(cut_after);
        while let Ok((client, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(&target).await else {
                return;
            };
            tokio::spawn(pipe(client, server, limit.take()));
        }
    });
    (format!("http://{addr}"), connections)
}

async fn pipe(client: TcpStream, server: TcpStream, limit: Option<u64>) {
    let (mut client_in, mut client_out) = client.into_split();
    let (server_in, mut server_out) = server.into_split();
    let up = tokio::io::copy(&mut client_in, &mut server_out);
    let down = async {
        let mut answer = server_in.take(limit.unwrap_or(u64::MAX));
        tokio::io::copy(&mut answer, &mut client_out).await
    };
    // Either side's end (or the cut) drops both connections.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_survives_a_cut_connection_and_a_small_buffer() {
    let service = Service::start(Options::default().arg("--process-buffer-bytes", 4096)).await;
    let c = chat("cli-resume");

    // Cut mid-stream: the CLI connects again from its offsets, no byte lost
    // or written twice.
    start(
        &service,
        &c,
        "steady",
        &[
            "sh",
            "-c",
            "sleep 1; for i in $(seq 1 40); do echo line$i; sleep 0.05; done",
        ],
    )
    .await;
    let target = service.url.trim_start_matches("http://");
    let (proxy, connections) = cutting_proxy(target, 700).await;
    let logs = sandboxer(&["logs", "--chat", &c, "steady", "-f"], &proxy).await;
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    let expected: String = (1..=40).map(|i| format!("line{i}\n")).collect();
    assert_eq!(text(&logs.stdout), expected);
    assert_eq!(text(&logs.stderr), "");
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the cut came after the end"
    );

    // Output older than the buffer: said on stderr, then the rest follows.
    start(&service, &c, "chatty", &["seq", "1", "100000"]).await;
    ended(&service, &c, "chatty").await;
    let logs = sandboxer(&["logs", "--chat", &c, "chatty"], &service.url).await;
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    let said = text(&logs.stderr);
    assert!(said.contains("stdout before offset"), "{said}");
    let out = text(&logs.stdout);
    assert!(
        out.len() <= 4096 && out.ends_with("\n99999\n100000\n"),
        "{out}"
    );

    // A follower that stops reading (here: stopped) stops holding the
    // output back after a while; the stream then ends in `cursor_expired`,
    // which is said, and the CLI goes on from the oldest offsets to the end.
    start(
        &service,
        &c,
        "flood",
        &["sh", "-c", "sleep 2; seq 1 3000000"],
    )
    .await;
    let follow = cli(&["logs", "--chat", &c, "flood", "-f"], &service.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = follow.id().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal("STOP", &pid);
    tokio::time::sleep(Duration::from_secs(8)).await;
    signal("CONT", &pid);
    let logs = tokio::time::timeout(PATIENCE, follow.wait_with_output())
        .await
        .expect("logs -f ends")
        .unwrap();
    let said = text(&logs.stderr);
    assert!(logs.status.success(), "{said}");
    assert!(said.contains("stdout before offset"), "{said}");
    assert!(text(&logs.stdout).ends_with("\n2999999\n3000000\n"));
}

fn signal(name: &str, pid: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_runs_piped_commands_on_a_terminal() {
    let service = Service::start(Options::default()).await;
    let c = chat("cli-shell");

    for (input, code) in [("echo hi; exit 3\n", 3), ("echo hi\n", 0)] {
        let mut child = cli(&["shell", "--chat", &c], &service.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        // End of input: the remote shell reads end-of-file after the line.
        drop(stdin);
        let out = tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .expect("the shell ends")
            .unwrap();
        let screen = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{screen}\n{}",
            text(&out.stderr)
        );
        // A terminal ends lines with CR LF; the prompt and the echo of the
        // input are there too.
        let said_hi = screen
            .split("\r\n")
            .any(|line| line.rsplit("$ ").next() == Some("hi"));
        assert!(said_hi, "{screen:?}");
    }

    let other = sandboxer(
        &[
            "shell",
            "--chat",
            &c,
            "--cmd",
            "sh",
            "-c",
            "echo $((6 * 7)); exit 4",
        ],
        &service.url,
    )
    .await;
    assert_eq!(other.status.code(), Some(4), "{}", text(&other.stderr));
    assert_eq!(text(&other.stdout), "42\r\n");
}
