//! Frames: a 20-byte header (magic, body length, request id, a CRC of length
//! and id) and a postcard body. The magic and the CRC let a reader find the
//! next frame after bytes that are not one: an attach stream joined in the
//! middle of a frame, or the tail of a frame whose writer died.

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;
use tokio_util::codec::Decoder;

pub const MAGIC: [u8; 4] = *b"SBX\x01";
pub const HEADER_BYTES: usize = 20;
/// Default cap on a frame's body: a file moves in one frame, and the
/// service's file limit is 64 MiB; the rest is room for the message around it.
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024 + 64 * 1024;

/// What the reader found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Frame {
        id: u64,
        body: Bytes,
    },
    /// A well-formed header announcing a body over the cap; the body is
    /// skipped as it arrives, and the sender can be told why.
    Oversized {
        id: u64,
        len: usize,
    },
    /// Bytes that were not a frame, dropped to find the next one.
    Garbage(usize),
}

#[derive(Debug)]
pub struct FrameCodec {
    max: usize,
    /// Bytes of an oversized body still to skip.
    skipping: usize,
}

impl FrameCodec {
    pub fn new(max: usize) -> Self {
        Self { max, skipping: 0 }
    }
}

fn header_crc(len_and_id: &[u8]) -> u32 {
    crc32fast::hash(len_and_id)
}

/// The header of a frame with `body_len` bytes for request `id`.
fn header(id: u64, body_len: u32) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..4].copy_from_slice(&MAGIC);
    h[4..8].copy_from_slice(&body_len.to_le_bytes());
    h[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = header_crc(&h[4..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("a {len}-byte frame is over the {max}-byte cap")]
    TooLarge { len: usize, max: usize },
    #[error("could not encode the message: {0}")]
    Encode(String),
}

/// One whole frame (header and body) for `message`, ready to write.
///
/// # Errors
/// `TooLarge` past `max`, `Encode` when serialization fails.
pub fn encode_frame<T: Serialize>(
    id: u64,
    message: &T,
    max: usize,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0u8; HEADER_BYTES];
    out = postcard::to_extend(message, out).map_err(|e| EncodeError::Encode(e.to_string()))?;
    let len = out.len() - HEADER_BYTES;
    if len > max {
        return Err(EncodeError::TooLarge { len, max });
    }
    let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLarge { len, max })?;
    out[..HEADER_BYTES].copy_from_slice(&header(id, len32));
    Ok(out)
}

impl Decoder for FrameCodec {
    type Item = Decoded;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, std::io::Error> {
        if self.skipping > 0 {
            let n = self.skipping.min(src.len());
            src.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        // Drop whatever precedes the first plausible header.
        let start = find_magic(src);
        if start > 0 {
            src.advance(start);
            return Ok(Some(Decoded::Garbage(start)));
        }
        if src.len() < HEADER_BYTES {
            return Ok(None);
        }
        let crc = u32::from_le_bytes(src[16..20].try_into().expect("4 bytes"));
        if crc != header_crc(&src[4..16]) {
            // Magic by chance inside other bytes: not a frame.
            src.advance(1);
            let more = find_magic(src);
            src.advance(more);
            return Ok(Some(Decoded::Garbage(1 + more)));
        }
        let len = u32::from_le_bytes(src[4..8].try_into().expect("4 bytes")) as usize;
        let id = u64::from_le_bytes(src[8..16].try_into().expect("8 bytes"));
        if len > self.max {
            src.advance(HEADER_BYTES);
            let n = len.min(src.len());
            src.advance(n);
            self.skipping = len - n;
            return Ok(Some(Decoded::Oversized { id, len }));
        }
        if src.len() < HEADER_BYTES + len {
            // No reserve for the announced length: memory follows the bytes
            // that arrive, not what a header claims.
            return Ok(None);
        }
        src.advance(HEADER_BYTES);
        let body = src.split_to(len).freeze();
        Ok(Some(Decoded::Frame { id, body }))
    }
}

/// Where the magic starts in `src`; a trailing partial magic is kept (its
/// position returned), so a header split across reads is not lost.
fn find_magic(src: &[u8]) -> usize {
    let mut i = 0;
    while i < src.len() {
        let tail = &src[i..];
        let n = tail.len().min(MAGIC.len());
        if tail[..n] == MAGIC[..n] {
            return i;
        }
        i += 1;
    }
    src.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut FrameCodec, bytes: &[u8]) -> Vec<Decoded> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(d) = codec.decode(&mut buf).unwrap() {
            out.push(d);
        }
        out
    }

    #[test]
    fn a_frame_round_trips_and_a_split_one_waits_for_its_rest() {
        let frame = encode_frame(7, &"hello".to_string(), 1024).unwrap();
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&frame[..10]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&frame[10..]);
        let Some(Decoded::Frame { id, body }) = codec.decode(&mut buf).unwrap() else {
            panic!("no frame")
        };
        assert_eq!(id, 7);
        assert_eq!(postcard::from_bytes::<String>(&body).unwrap(), "hello");
    }

    #[test]
    fn garbage_before_a_frame_is_skipped_and_counted() {
        let mut bytes = b"tail of an older frame SBX".to_vec();
        bytes.extend(encode_frame(9, &1u32, 1024).unwrap());
        let got = decode_all(&mut FrameCodec::new(1024), &bytes);
        let skipped: usize = got
            .iter()
            .map(|d| match d {
                Decoded::Garbage(n) => *n,
                _ => 0,
            })
            .sum();
        assert_eq!(skipped, 26);
        assert!(matches!(got.last(), Some(Decoded::Frame { id: 9, .. })));
    }

    #[test]
    fn a_header_with_a_bad_crc_is_not_a_frame() {
        let mut bad = encode_frame(1, &1u32, 1024).unwrap();
        bad[8] ^= 0xff;
        let mut bytes = bad.clone();
        bytes.extend(encode_frame(2, &2u32, 1024).unwrap());
        let got = decode_all(&mut FrameCodec::new(1024), &bytes);
        let frames: Vec<u64> = got
            .iter()
            .filter_map(|d| match d {
                Decoded::Frame { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(frames, vec![2]);
    }

    #[test]
    fn an_oversized_frame_is_reported_and_skipped() {
        let big = encode_frame(3, &vec![0u8; 100], 1024).unwrap();
        let mut bytes = big.clone();
        bytes.extend(encode_frame(4, &1u32, 1024).unwrap());
        let mut codec = FrameCodec::new(50);
        let got = decode_all(&mut codec, &bytes);
        assert_eq!(
            got[0],
            Decoded::Oversized {
                id: 3,
                len: big.len() - HEADER_BYTES
            }
        );
        assert!(matches!(got[1], Decoded::Frame { id: 4, .. }));
    }

    #[test]
    fn encoding_refuses_a_body_over_the_cap() {
        assert!(matches!(
            encode_frame(1, &vec![1u8; 100], 10),
            Err(EncodeError::TooLarge { .. })
        ));
    }
}
