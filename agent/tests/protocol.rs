//! The agent's reader against what an attach stream can carry: garbage, the
//! tail of a frame whose writer died, frames over the cap, requests of a
//! newer protocol; and its end when stdin closes.

mod common;

use std::time::Duration;

use common::start_raw;
use sandboxer_agent_proto::frame::{HEADER_BYTES, MAGIC};
use sandboxer_agent_proto::{ErrorKind, ExecSpec, MAX_FRAME_BYTES, Reply, Request, encode_frame};
use serde_bytes::ByteBuf;

fn frame(id: u64, request: &Request) -> Vec<u8> {
    encode_frame(id, request, MAX_FRAME_BYTES).unwrap()
}

/// Well past the 250 ms of silence after which the agent drops a partial
/// frame, even when a loaded machine wakes the agent late.
async fn pause() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn garbage_before_a_request_is_skipped() {
    let mut agent = start_raw();
    let mut bytes = b"not a frame at all SBX\x01 nor this".to_vec();
    bytes.extend(frame(1, &Request::Hello));
    agent.send(&bytes).await;
    let (id, reply) = agent.reply().await;
    assert_eq!(id, 1);
    assert!(matches!(reply, Reply::Hello(_)));
}

#[tokio::test]
async fn a_frame_cut_short_is_dropped_after_a_silence() {
    let mut agent = start_raw();
    // A whole header and part of the body: without the silence rule the
    // next frames would be taken as the rest of this body.
    let big = frame(
        1,
        &Request::WriteFile {
            path: "f".into(),
            data: ByteBuf::from(vec![0u8; 10_000]),
        },
    );
    agent.send(&big[..HEADER_BYTES + 100]).await;
    pause().await;
    agent.send(&frame(2, &Request::Hello)).await;
    let (id, reply) = agent.reply().await;
    assert_eq!(id, 2);
    assert!(matches!(reply, Reply::Hello(_)));

    // Cut within the header, too.
    agent.send(&frame(3, &Request::Hello)[..10]).await;
    pause().await;
    agent.send(&frame(4, &Request::Hello)).await;
    assert_eq!(agent.reply().await.0, 4);
}

#[tokio::test]
async fn an_oversized_frame_is_answered_too_large() {
    let mut agent = start_raw();
    let len = u32::try_from(MAX_FRAME_BYTES + 1).unwrap();
    let mut header = MAGIC.to_vec();
    header.extend(len.to_le_bytes());
    header.extend(5u64.to_le_bytes());
    let crc = crc32fast::hash(&header[4..16]);
    header.extend(crc.to_le_bytes());
    assert_eq!(header.len(), HEADER_BYTES);
    header.extend([0u8; 1000]);
    agent.send(&header).await;
    let (id, reply) = agent.reply().await;
    assert_eq!(id, 5);
    let Reply::Error(error) = reply else {
        panic!("not an error: {reply:?}")
    };
    assert_eq!(error.kind, ErrorKind::TooLarge);
    // The rest of that body never comes; the agent stops waiting for it.
    pause().await;
    agent.send(&frame(6, &Request::Hello)).await;
    assert_eq!(agent.reply().await.0, 6);
}

#[tokio::test]
async fn a_request_of_a_newer_protocol_is_unsupported_and_the_agent_serves_on() {
    let mut agent = start_raw();
    // A postcard enum is its variant index as a varint: 200 is no Request.
    agent
        .send(&encode_frame(7, &200u32, MAX_FRAME_BYTES).unwrap())
        .await;
    let (id, reply) = agent.reply().await;
    assert_eq!(id, 7);
    let Reply::Error(error) = reply else {
        panic!("not an error: {reply:?}")
    };
    assert_eq!(error.kind, ErrorKind::Unsupported);
    agent.send(&frame(8, &Request::Hello)).await;
    let (id, reply) = agent.reply().await;
    assert_eq!(id, 8);
    assert!(matches!(reply, Reply::Hello(_)));
}

#[tokio::test]
async fn at_the_end_of_stdin_the_agent_answers_what_is_in_flight_then_exits() {
    let mut agent = start_raw();
    let exec = Request::Exec(ExecSpec {
        argv: vec!["sh".into(), "-c".into(), "sleep 0.3; echo late".into()],
        env: Vec::new(),
        workdir: String::new(),
        stdin: None,
        timeout_ms: 30_000,
        output_limit: 1024,
        kill_grace_ms: 100,
    });
    agent.send(&frame(9, &exec)).await;
    drop(agent.stdin.take());
    let (id, reply) = agent.reply().await;
    assert_eq!(id, 9);
    let Reply::Exec(result) = reply else {
        panic!("not an exec result: {reply:?}")
    };
    assert_eq!(result.stdout.as_slice(), b"late\n");
    let status = tokio::time::timeout(Duration::from_secs(30), agent.child.wait())
        .await
        .expect("the agent exits")
        .unwrap();
    assert!(status.success());
}
