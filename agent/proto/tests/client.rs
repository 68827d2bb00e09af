//! The client against a peer written here over an in-memory duplex stream:
//! replies routed by id whatever their order, a garbage reply and a reply
//! over the cap as errors of that request only, a peer that goes away, and
//! a deadline.

use std::time::Duration;

use futures::StreamExt;
use sandboxer_agent_proto::{
    AgentClient, AgentInfo, ClientError, Decoded, FrameCodec, MAX_FRAME_BYTES, Reply, Request,
    encode_frame,
};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio_util::codec::FramedRead;

type Peer = (
    FramedRead<ReadHalf<DuplexStream>, FrameCodec>,
    WriteHalf<DuplexStream>,
);

fn connected() -> (AgentClient, Peer) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (read, write) = tokio::io::split(ours);
    let client = AgentClient::new(read, write, MAX_FRAME_BYTES);
    let (their_read, their_write) = tokio::io::split(theirs);
    let frames = FramedRead::new(their_read, FrameCodec::new(MAX_FRAME_BYTES));
    (client, (frames, their_write))
}

async fn next_request(peer: &mut Peer) -> (u64, Request) {
    match peer.0.next().await.unwrap().unwrap() {
        Decoded::Frame { id, body } => (id, postcard::from_bytes(&body).unwrap()),
        other => panic!("the client sent {other:?}"),
    }
}

fn hello(pid: u32) -> Reply {
    Reply::Hello(AgentInfo {
        protocol: 1,
        version: "t".into(),
        pid,
        running: 0,
    })
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn replies_find_their_callers_in_any_order() {
    let (client, mut peer) = connected();
    let first = tokio::spawn({
        let c = client.clone();
        async move { c.call(&Request::Hello, WAIT).await }
    });
    let (a, _) = next_request(&mut peer).await;
    let second = tokio::spawn({
        let c = client.clone();
        async move { c.call(&Request::Hello, WAIT).await }
    });
    let (b, _) = next_request(&mut peer).await;
    // Answer the second first, and a stale id nobody waits for in between.
    for (id, pid) in [(b, 2), (a.wrapping_sub(1000), 9), (a, 1)] {
        let frame = encode_frame(id, &hello(pid), MAX_FRAME_BYTES).unwrap();
        peer.1.write_all(&frame).await.unwrap();
    }
    assert_eq!(first.await.unwrap(), Ok(hello(1)));
    assert_eq!(second.await.unwrap(), Ok(hello(2)));
}

#[tokio::test]
async fn a_garbage_reply_fails_its_request_and_the_next_one_works() {
    let (client, mut peer) = connected();
    let bad = tokio::spawn({
        let c = client.clone();
        async move { c.call(&Request::Hello, WAIT).await }
    });
    let (id, _) = next_request(&mut peer).await;
    // A well-framed body that is no reply, then bytes that are no frame.
    let frame = encode_frame(id, &(250u8, 250u8, 250u8), MAX_FRAME_BYTES).unwrap();
    peer.1.write_all(&frame).await.unwrap();
    peer.1.write_all(b"line noise").await.unwrap();
    assert!(matches!(bad.await.unwrap(), Err(ClientError::Protocol(_))));
    let good = tokio::spawn({
        let c = client.clone();
        async move { c.call(&Request::Hello, WAIT).await }
    });
    let (id, _) = next_request(&mut peer).await;
    let frame = encode_frame(id, &hello(3), MAX_FRAME_BYTES).unwrap();
    peer.1.write_all(&frame).await.unwrap();
    assert_eq!(good.await.unwrap(), Ok(hello(3)));
}

#[tokio::test]
async fn a_peer_that_goes_away_closes_every_waiting_call() {
    let (client, mut peer) = connected();
    let waiting = tokio::spawn({
        let c = client.clone();
        async move { c.call(&Request::Hello, WAIT).await }
    });
    next_request(&mut peer).await;
    drop(peer);
    assert!(matches!(
        waiting.await.unwrap(),
        Err(ClientError::Closed(_))
    ));
    assert!(client.is_closed());
    assert!(matches!(
        client.call(&Request::Hello, WAIT).await,
        Err(ClientError::Closed(_))
    ));
}

#[tokio::test]
async fn a_silent_peer_is_a_timeout_and_the_connection_stays() {
    let (client, _peer) = connected();
    let got = client
        .call(&Request::Hello, Duration::from_millis(50))
        .await;
    assert_eq!(got, Err(ClientError::Timeout(Duration::from_millis(50))));
    assert!(!client.is_closed());
}

#[tokio::test]
async fn a_request_over_the_cap_is_refused_before_it_is_sent() {
    let (ours, _theirs) = tokio::io::duplex(1024);
    let (read, write) = tokio::io::split(ours);
    let client = AgentClient::new(read, write, 100);
    let big = Request::WriteFile {
        path: "a".into(),
        data: serde_bytes::ByteBuf::from(vec![0u8; 1000]),
    };
    assert!(matches!(
        client.call(&big, WAIT).await,
        Err(ClientError::TooLarge(_))
    ));
}
