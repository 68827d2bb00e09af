//! Live processes through the agent, as the service drives them: starts by
//! id, output read from offsets with long polls and followers, stdin at
//! offsets, signals, kills that take the whole tree, timeouts, terminals,
//! and many at once.

mod common;

use std::time::{Duration, Instant};

use common::{marked, marker_of, none_marked, process, start, text};
use sandboxer_agent_proto::{
    ErrorKind, ProcessState, PtySize, ReadSpec, Reply, Request, StdinState, StdinWrite,
};
use serde_bytes::ByteBuf;

fn exit_code(state: ProcessState) -> i64 {
    match state {
        ProcessState::Exited { exit_code, .. } => exit_code,
        ProcessState::Running => panic!("still running"),
    }
}

fn error_kind(reply: &Reply) -> ErrorKind {
    match reply {
        Reply::Error(error) => error.kind,
        other => panic!("not an error: {other:?}"),
    }
}

fn stdin_write(id: &str, offset: Option<u64>, data: &[u8], close: bool) -> Request {
    Request::WriteStdin(StdinWrite {
        id: id.to_owned(),
        offset,
        data: ByteBuf::from(data.to_vec()),
        close,
        wait_ms: 5_000,
    })
}

#[tokio::test]
async fn a_long_poll_sees_each_line_as_it_is_written() {
    let agent = start();
    let script = "for i in 1 2 3; do echo line $i; sleep 1; done";
    let info = agent
        .start_process(process("lines", &["sh", "-c", script]))
        .await;
    assert!(info.created && info.pid > 0);
    assert_eq!(info.state, ProcessState::Running);
    let Reply::Output(first) = agent.read_output("lines", (0, 0), 10_000, None).await else {
        panic!("no output")
    };
    // Line 3 comes two seconds after line 1.
    assert_eq!(text(&first.stdout), "line 1\n");
    assert_eq!(first.info.state, ProcessState::Running);
    let (stdout, stderr, info) = agent.follow("lines", 1).await;
    assert_eq!(text(&stdout), "line 1\nline 2\nline 3\n");
    assert!(stderr.is_empty());
    assert_eq!(exit_code(info.state), 0);
    assert!(info.ended_ms.unwrap() >= info.started_ms + 2_000);
}

#[tokio::test]
async fn output_read_in_parts_from_saved_offsets_is_the_whole_output() {
    let agent = start();
    let script = "i=0; while [ $i -lt 500 ]; do echo \"line $i\"; i=$((i+1)); done; echo done >&2";
    agent
        .start_process(process("parts", &["sh", "-c", script]))
        .await;
    let info = agent.wait_ended("parts").await;
    let expected: String = (0..500).map(|i| format!("line {i}\n")).collect();
    assert_eq!(info.stdout.end, expected.len() as u64);
    let part = info.stdout.end / 3 + 1;
    let mut stdout = Vec::new();
    let mut offsets = (0, 0);
    for _ in 0..3 {
        let reply = agent
            .call(Request::ReadOutput(ReadSpec {
                id: "parts".into(),
                stdout_offset: offsets.0,
                stderr_offset: offsets.1,
                max_bytes: part,
                wait_ms: 0,
                follower: None,
            }))
            .await;
        let Reply::Output(chunk) = reply else {
            panic!("no output: {reply:?}")
        };
        stdout.extend_from_slice(&chunk.stdout);
        offsets = (
            offsets.0 + chunk.stdout.len() as u64,
            offsets.1 + chunk.stderr.len() as u64,
        );
    }
    assert!(
        stdout == expected.as_bytes(),
        "the parts differ from the whole"
    );
    assert_eq!(offsets.1, 5);
    let past = agent
        .read_output("parts", (info.stdout.end + 1, 0), 0, None)
        .await;
    let Reply::Error(error) = past else {
        panic!("read past the end: {past:?}")
    };
    assert_eq!(error.kind, ErrorKind::BadRequest);
    assert_eq!(
        error.message,
        format!(
            "offset {} is past the end {} of stdout",
            info.stdout.end + 1,
            info.stdout.end
        )
    );
}

#[tokio::test]
async fn a_start_with_the_same_id_answers_the_first_process_and_another_spec_conflicts() {
    let agent = start();
    let spec = process("same", &["sleep", "1000"]);
    let first = agent.start_process(spec.clone()).await;
    let again = agent.start_process(spec.clone()).await;
    assert!(first.created && !again.created);
    assert_eq!(first.pid, again.pid);
    let mut other = spec.clone();
    other.argv = vec!["sleep".into(), "999".into()];
    let reply = agent.call(Request::Start(other)).await;
    let Reply::Error(error) = reply else {
        panic!("a second process under the id: {reply:?}")
    };
    assert_eq!(error.kind, ErrorKind::Conflict);
    assert_eq!(error.message, "process id same is taken by another command");
    let killed = agent.kill_process("same").await;
    assert!(matches!(
        killed.state,
        ProcessState::Exited { killed: true, .. }
    ));
    // An ended process is still the id's.
    assert!(!agent.start_process(spec).await.created);
}

#[tokio::test]
async fn starts_past_the_running_limit_are_too_many_even_at_once() {
    let agent = start();
    let mut spec = process("a", &["sleep", "1000"]);
    spec.max_running = 2;
    agent.start_process(spec.clone()).await;
    spec.id = "b".into();
    agent.start_process(spec.clone()).await;
    spec.id = "c".into();
    let reply = agent.call(Request::Start(spec.clone())).await;
    assert_eq!(error_kind(&reply), ErrorKind::TooMany);
    agent.kill_process("a").await;
    assert!(agent.start_process(spec).await.created);
    agent.kill_process("b").await;
    agent.kill_process("c").await;

    let many = start();
    let starts = (0..80).map(|i| {
        let many = &many;
        async move {
            let spec = process(&format!("p{i}"), &["sleep", "1000"]);
            many.call(Request::Start(spec)).await
        }
    });
    let replies = futures::future::join_all(starts).await;
    let created = replies
        .iter()
        .filter(|r| matches!(r, Reply::Process(info) if info.created))
        .count();
    let too_many = replies
        .iter()
        .filter(|r| matches!(r, Reply::Error(e) if e.kind == ErrorKind::TooMany))
        .count();
    assert_eq!((created, too_many), (64, 16));
    let Reply::Hello(hello) = many.call(Request::Hello).await else {
        panic!("no hello")
    };
    assert_eq!(hello.running, 64);
    let kills = replies.iter().filter_map(|r| match r {
        Reply::Process(info) => Some(many.kill_process(&info.id)),
        _ => None,
    });
    futures::future::join_all(kills).await;
}

#[tokio::test]
async fn stdin_comes_back_from_cat_once_per_offset_and_close_ends_it() {
    let agent = start();
    let mut spec = process("cat", &["cat"]);
    spec.stdin = Some(ByteBuf::from(b"first\n".to_vec()));
    spec.keep_stdin_open = true;
    agent.start_process(spec).await;
    let wrote = agent
        .call(stdin_write("cat", Some(6), b"second\n", false))
        .await;
    let open = |offset| Reply::Stdin(StdinState { offset, open: true });
    assert_eq!(wrote, open(13));
    // A retry: nothing is written twice.
    let retried = agent
        .call(stdin_write("cat", Some(6), b"second\n", false))
        .await;
    assert_eq!(retried, open(13));
    let overlapping = agent
        .call(stdin_write("cat", Some(9), b"ond\nthird\n", false))
        .await;
    assert_eq!(overlapping, open(19));
    let gap = agent.call(stdin_write("cat", Some(25), b"x", false)).await;
    let Reply::Error(error) = gap else {
        panic!("a gap was written: {gap:?}")
    };
    assert_eq!(error.kind, ErrorKind::BadRequest);
    assert_eq!(
        error.message,
        "stdin offset 25 is past the 19 bytes written"
    );
    let closed = agent.call(stdin_write("cat", None, b"", true)).await;
    assert_eq!(
        closed,
        Reply::Stdin(StdinState {
            offset: 19,
            open: false
        })
    );
    let (stdout, _, info) = agent.follow("cat", 9).await;
    assert_eq!(text(&stdout), "first\nsecond\nthird\n");
    assert_eq!(exit_code(info.state), 0);
    let late = agent.call(stdin_write("cat", None, b"more", false)).await;
    assert_eq!(error_kind(&late), ErrorKind::Conflict);
    let unknown = agent.call(stdin_write("nobody", None, b"x", false)).await;
    assert_eq!(error_kind(&unknown), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_write_to_a_process_that_does_not_read_returns_after_its_wait() {
    let agent = start();
    let mut spec = process("deaf", &["sleep", "1000"]);
    spec.keep_stdin_open = true;
    agent.start_process(spec).await;
    let started = Instant::now();
    let reply = agent
        .call(Request::WriteStdin(StdinWrite {
            id: "deaf".into(),
            offset: Some(0),
            data: ByteBuf::from(vec![b'x'; 1 << 20]),
            close: false,
            wait_ms: 300,
        }))
        .await;
    let elapsed = started.elapsed();
    let Reply::Stdin(state) = reply else {
        panic!("no stdin state: {reply:?}")
    };
    assert!(state.open);
    assert!(state.offset > 0 && state.offset < 1 << 20, "{state:?}");
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    agent.kill_process("deaf").await;
}

#[tokio::test]
async fn signals_go_to_the_process_group() {
    let agent = start();
    agent
        .start_process(process("sleeper", &["sleep", "1000"]))
        .await;
    let signal = |id: &str, signal| Request::Signal {
        id: id.to_owned(),
        signal,
    };
    assert_eq!(
        error_kind(&agent.call(signal("sleeper", 0)).await),
        ErrorKind::BadRequest
    );
    assert_eq!(
        error_kind(&agent.call(signal("sleeper", 999)).await),
        ErrorKind::BadRequest
    );
    assert_eq!(
        error_kind(&agent.call(signal("nobody", 15)).await),
        ErrorKind::NotFound
    );
    assert_eq!(agent.call(signal("sleeper", 15)).await, Reply::Done);
    let info = agent.wait_ended("sleeper").await;
    assert_eq!(
        info.state,
        ProcessState::Exited {
            exit_code: 128 + 15,
            timed_out: false,
            killed: false
        }
    );
    // Nothing to signal any more, and nothing wrong with asking.
    assert_eq!(agent.call(signal("sleeper", 15)).await, Reply::Done);
}

#[tokio::test]
async fn kill_takes_the_whole_tree_and_answers_the_ended_process() {
    let agent = start();
    for (id, script) in [
        ("group", "sleep 1000 & sleep 1000 & wait"),
        ("escaped", "setsid sleep 1000 & sleep 1000 & wait"),
    ] {
        let info = agent
            .start_process(process(id, &["sh", "-c", script]))
            .await;
        let marker = marker_of(info.pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while marked(&marker).len() < 3 {
            assert!(Instant::now() < deadline, "{id}: the tree never grew");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let killed = agent.kill_process(id).await;
        assert_eq!(
            killed.state,
            ProcessState::Exited {
                exit_code: 128 + 9,
                timed_out: false,
                killed: true
            },
            "{id}"
        );
        assert!(killed.ended_ms.is_some());
        assert_eq!(none_marked(&marker).await, Vec::<i32>::new(), "{id}");
        // Idempotent.
        assert_eq!(agent.kill_process(id).await.state, killed.state);
    }
    let unknown = agent
        .call(Request::Kill {
            id: "nobody".into(),
        })
        .await;
    assert_eq!(error_kind(&unknown), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_timeout_ends_the_tree() {
    let agent = start();
    let mut spec = process("slow", &["sh", "-c", "sleep 1000 & sleep 1000"]);
    spec.timeout_ms = 300;
    let info = agent.start_process(spec).await;
    let marker = marker_of(info.pid);
    let ended = agent.wait_ended("slow").await;
    assert_eq!(
        ended.state,
        ProcessState::Exited {
            exit_code: 128 + 15,
            timed_out: true,
            killed: false
        }
    );
    assert_eq!(none_marked(&marker).await, Vec::<i32>::new());
}

#[tokio::test]
async fn a_reader_left_behind_a_small_buffer_sees_cursor_expired() {
    let agent = start();
    let mut spec = process("small", &["sh", "-c", "head -c 100000 /dev/zero; echo end"]);
    spec.buffer_bytes = 4096;
    agent.start_process(spec).await;
    let info = agent.wait_ended("small").await;
    assert_eq!(info.stdout.end, 100_004);
    assert_eq!(info.stdout.start, 100_004 - 4096);
    let expired = agent.read_output("small", (0, 0), 0, None).await;
    let Reply::CursorExpired(info) = expired else {
        panic!("not expired: {expired:?}")
    };
    assert!(info.stdout.start > 0);
    let Reply::Output(tail) = agent
        .read_output("small", (info.stdout.start, 0), 0, None)
        .await
    else {
        panic!("no output from the start")
    };
    assert_eq!(tail.stdout.len(), 4096);
    assert!(tail.stdout.ends_with(b"\0\0end\n"));
}

#[tokio::test]
async fn a_follower_reads_fifty_megabytes_through_a_small_buffer_without_a_gap() {
    let agent = start();
    let mut spec = process("flood", &["head", "-c", "50000000", "/dev/zero"]);
    spec.buffer_bytes = 65_536;
    agent.start_process(spec).await;
    let mut offset = 0u64;
    loop {
        let reply = agent
            .call(Request::ReadOutput(ReadSpec {
                id: "flood".into(),
                stdout_offset: offset,
                stderr_offset: 0,
                max_bytes: 65_536,
                wait_ms: 10_000,
                follower: Some(42),
            }))
            .await;
        let Reply::Output(chunk) = reply else {
            panic!("a gap at {offset}: {reply:?}")
        };
        assert!(chunk.stdout.iter().all(|b| *b == 0));
        offset += chunk.stdout.len() as u64;
        if matches!(chunk.info.state, ProcessState::Exited { .. })
            && offset == chunk.info.stdout.end
        {
            assert_eq!(exit_code(chunk.info.state), 0);
            break;
        }
    }
    assert_eq!(offset, 50_000_000);
}

#[tokio::test]
async fn a_follower_that_stops_reading_holds_the_output_only_briefly() {
    let agent = start();
    let mut spec = process("left", &["head", "-c", "100000", "/dev/zero"]);
    spec.buffer_bytes = 4096;
    agent.start_process(spec).await;
    let started = Instant::now();
    let first = agent
        .call(Request::ReadOutput(ReadSpec {
            id: "left".into(),
            stdout_offset: 0,
            stderr_offset: 0,
            max_bytes: 1000,
            wait_ms: 10_000,
            follower: Some(3),
        }))
        .await;
    let Reply::Output(chunk) = first else {
        panic!("no output: {first:?}")
    };
    assert_eq!(chunk.stdout.len(), 1000);
    // The follower is silent from now on: after its hold the ring wraps.
    let info = agent.wait_ended("left").await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(exit_code(info.state), 0);
    assert_eq!(info.stdout.end, 100_000);
    let late = agent.read_output("left", (1000, 0), 0, Some(3)).await;
    assert!(matches!(late, Reply::CursorExpired(_)), "{late:?}");
}

#[tokio::test]
async fn a_gigabyte_of_output_keeps_the_agent_at_its_ring_sizes() {
    let agent = start();
    let mut spec = process("huge", &["head", "-c", "1000000000", "/dev/zero"]);
    spec.buffer_bytes = 1 << 20;
    agent.start_process(spec).await;
    let info = agent.wait_ended("huge").await;
    assert_eq!(info.stdout.end, 1_000_000_000);
    assert_eq!(info.stdout.end - info.stdout.start, 1 << 20);
    let Reply::Hello(hello) = agent.call(Request::Hello).await else {
        panic!("no hello")
    };
    let status = std::fs::read_to_string(format!("/proc/{}/status", hello.pid)).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmHWM");
    assert!(peak_kb < 64 * 1024, "the agent's peak RSS is {peak_kb} kB");
}

#[tokio::test]
async fn a_terminal_runs_a_shell_and_takes_a_new_size() {
    let agent = start();
    let mut spec = process("term", &["sh"]);
    spec.pty = Some(PtySize { cols: 80, rows: 24 });
    spec.keep_stdin_open = true;
    let info = agent.start_process(spec).await;
    assert!(info.pty);
    let mut seen = Vec::new();
    let mut written = 0;
    let mut say = async |line: &str| {
        let reply = agent
            .call(stdin_write("term", Some(written), line.as_bytes(), false))
            .await;
        let Reply::Stdin(state) = reply else {
            panic!("no stdin state: {reply:?}")
        };
        written = state.offset;
    };
    let until = async |seen: &mut Vec<u8>, wanted: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !text(seen).contains(wanted) {
            assert!(
                Instant::now() < deadline,
                "no {wanted:?} in {:?}",
                text(seen)
            );
            let Reply::Output(chunk) = agent
                .read_output("term", (seen.len() as u64, 0), 2_000, Some(5))
                .await
            else {
                panic!("no output")
            };
            assert!(chunk.stderr.is_empty());
            seen.extend_from_slice(&chunk.stdout);
        }
    };
    // What the shell runs differs from the echo of what it was sent.
    say("echo hi-$((1+1)); echo term=$TERM; tty | sed 's/^/tty=/'\n").await;
    until(&mut seen, "hi-2").await;
    until(&mut seen, "term=xterm-256color").await;
    until(&mut seen, "tty=/dev/pts/").await;
    say("stty size | sed 's/^/size=/'\n").await;
    until(&mut seen, "size=24 80").await;
    let resize = Request::Resize {
        id: "term".into(),
        size: PtySize {
            cols: 100,
            rows: 40,
        },
    };
    assert_eq!(agent.call(resize).await, Reply::Done);
    say("stty size | sed 's/^/size=/'\n").await;
    until(&mut seen, "size=40 100").await;
    say("exit 7\n").await;
    let info = agent.wait_ended("term").await;
    assert_eq!(exit_code(info.state), 7);

    agent.start_process(process("plain", &["true"])).await;
    let resize = Request::Resize {
        id: "plain".into(),
        size: PtySize { cols: 1, rows: 1 },
    };
    assert_eq!(error_kind(&agent.call(resize).await), ErrorKind::Conflict);
}

/// The terminal's stdin offset once a pending write has stopped moving it.
async fn stdin_stalled(agent: &common::Agent, id: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    loop {
        let Reply::Process(info) = agent.call(Request::ProcessStatus { id: id.into() }).await
        else {
            panic!("no process {id}")
        };
        let offset = info.stdin.offset;
        if offset > 0 && last == Some(offset) {
            return offset;
        }
        assert!(Instant::now() < deadline, "stdin never filled: {offset}");
        last = Some(offset);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_kill_answers_while_a_write_waits_on_a_terminal_nobody_reads() {
    let agent = start();
    let mut spec = process("deaf-term", &["sleep", "1000"]);
    spec.pty = Some(PtySize { cols: 80, rows: 24 });
    spec.keep_stdin_open = true;
    agent.start_process(spec).await;
    // Whole lines: the terminal takes the first, then its input is full
    // (sleep never reads) and the write waits for room.
    let write = Request::WriteStdin(StdinWrite {
        id: "deaf-term".into(),
        offset: Some(0),
        data: ByteBuf::from("a line nobody reads\n".repeat(50_000).into_bytes()),
        close: false,
        wait_ms: 60_000,
    });
    let client = agent.client.clone();
    let pending = tokio::spawn(async move { client.call(&write, Duration::from_secs(60)).await });
    let stalled = stdin_stalled(&agent, "deaf-term").await;
    // The kill hangs the terminal up under the waiting write: the agent
    // must still answer the kill, and the write, promptly.
    let kill = Request::Kill {
        id: "deaf-term".into(),
    };
    let started = Instant::now();
    let killed = agent.client.call(&kill, Duration::from_secs(10)).await;
    let Ok(Reply::Process(info)) = killed else {
        panic!("the kill is not answered: {killed:?}")
    };
    assert!(
        matches!(info.state, ProcessState::Exited { killed: true, .. }),
        "{info:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let written = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the write is answered")
        .expect("the write's task");
    let Ok(Reply::Stdin(state)) = written else {
        panic!("no stdin state: {written:?}")
    };
    assert!(!state.open && state.offset >= stalled, "{state:?}");
}

#[tokio::test]
async fn ended_processes_are_listed_with_their_exit_codes() {
    let agent = start();
    agent
        .start_process(process("three", &["sh", "-c", "exit 3"]))
        .await;
    agent.wait_ended("three").await;
    agent.start_process(process("zero", &["true"])).await;
    agent.wait_ended("zero").await;
    let Reply::Processes(list) = agent.call(Request::ListProcesses).await else {
        panic!("no list")
    };
    let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["three", "zero"]);
    assert_eq!(exit_code(list[0].state), 3);
    assert_eq!(exit_code(list[1].state), 0);
    assert!(list.iter().all(|p| p.ended_ms.unwrap() >= p.started_ms));
    let status = agent
        .call(Request::ProcessStatus { id: "three".into() })
        .await;
    assert_eq!(status, Reply::Process(list[0].clone()));
}

#[tokio::test]
async fn a_program_that_cannot_run_ends_at_once_with_127_and_a_message() {
    let agent = start();
    let info = agent
        .start_process(process("missing", &["no-such-program-here"]))
        .await;
    assert!(info.created);
    assert_eq!(exit_code(info.state), 127);
    let Reply::Output(chunk) = agent.read_output("missing", (0, 0), 0, None).await else {
        panic!("no output")
    };
    assert_eq!(
        text(&chunk.stderr),
        "sandboxer-agent: cannot run \"no-such-program-here\": No such file or directory\n"
    );
    let mut elsewhere = process("elsewhere", &["true"]);
    elsewhere.workdir = "/no/such/dir".into();
    assert_eq!(exit_code(agent.start_process(elsewhere).await.state), 127);
    let empty = agent.call(Request::Start(process("empty", &[]))).await;
    assert_eq!(error_kind(&empty), ErrorKind::BadRequest);
    let unknown = agent.read_output("nobody", (0, 0), 0, None).await;
    assert_eq!(error_kind(&unknown), ErrorKind::NotFound);
}

#[tokio::test]
async fn sixty_four_processes_print_at_once_and_each_is_read_whole() {
    let agent = start();
    let script = "i=0; while [ $i -lt 1000 ]; do echo \"$0 $i\"; i=$((i+1)); done";
    let runs = (0..64).map(|n| {
        let agent = &agent;
        async move {
            let id = format!("p{n}");
            let spec = process(&id, &["sh", "-c", script, &n.to_string()]);
            agent.start_process(spec).await;
            let (stdout, _, info) = agent.follow(&id, n).await;
            (n, stdout, info)
        }
    });
    for (n, stdout, info) in futures::future::join_all(runs).await {
        let expected: String = (0..1000).map(|i| format!("{n} {i}\n")).collect();
        assert!(stdout == expected.as_bytes(), "process {n} lost output");
        assert_eq!(exit_code(info.state), 0);
    }
}
