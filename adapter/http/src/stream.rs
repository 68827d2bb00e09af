//! A process's output on the wire: follow events as NDJSON lines or as
//! Server-Sent Events, and a streamed exec's lines. The body pulls one event
//! at a time from the follower, so a slow client slows the reads (and past
//! the agent's patience sees `cursor_expired`) instead of the service
//! buffering without end; a client that leaves drops the follower.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::Stream;

use sandboxer_core::domain::{OutputCursor, ProcessInfo};
use sandboxer_core::usecase::{ExecError, FollowEvent, OutputFollower, OutputStream};

use crate::error::ApiError;
use crate::process_dto::{
    ExecStreamResult, OutputData, OutputEnd, OutputError, OutputEvent, StreamErrorDetail,
};

pub const NDJSON: &str = "application/x-ndjson";

/// How output bytes are put in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Text when the bytes are UTF-8, else base64.
    Auto,
    Base64,
}

/// One follow event as its JSON shape, with its SSE event name.
pub fn event_view(event: &FollowEvent, encoding: Encoding) -> (&'static str, OutputEvent) {
    match event {
        FollowEvent::Output {
            stream,
            offset,
            data,
        } => {
            let (data, encoding) = encode(data, encoding);
            let view = OutputData {
                stream: stream.as_str().to_owned(),
                offset: *offset,
                data,
                encoding: encoding.to_owned(),
            };
            ("output", OutputEvent::Output(view))
        }
        FollowEvent::Position { info, cursor } => (
            "position",
            OutputEvent::End(end_view(info, cursor.stdout, cursor.stderr)),
        ),
        FollowEvent::Exited(info) => (
            "exit",
            OutputEvent::End(end_view(info, info.stdout.end, info.stderr.end)),
        ),
    }
}

fn encode(data: &[u8], encoding: Encoding) -> (String, &'static str) {
    match (encoding, std::str::from_utf8(data)) {
        (Encoding::Auto, Ok(text)) => (text.to_owned(), "utf-8"),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(data),
            "base64",
        ),
    }
}

fn end_view(info: &ProcessInfo, stdout: u64, stderr: u64) -> OutputEnd {
    OutputEnd {
        status: info.state.as_str().to_owned(),
        exit_code: info.state.exit_code(),
        timed_out: info.state.timed_out(),
        killed: info.state.killed(),
        stdout_offset: stdout,
        stderr_offset: stderr,
    }
}

/// The error that ended a stream, as its last event. 5xx detail is logged
/// by `ApiError`, not sent.
pub fn error_view(err: ExecError) -> OutputEvent {
    api_error_view(ApiError::from(err))
}

/// An `ApiError` as a stream's error event.
pub fn api_error_view(api: ApiError) -> OutputEvent {
    OutputEvent::Error(OutputError {
        error: StreamErrorDetail {
            code: api.code.as_str().to_owned(),
            message: api.message,
            oldest: api.oldest,
        },
    })
}

fn line(event: &impl serde::Serialize) -> Bytes {
    let mut bytes = serde_json::to_vec(event).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The follower's events as NDJSON.
pub fn ndjson(follower: OutputFollower, encoding: Encoding) -> Response {
    let lines = futures::stream::unfold(Some(follower), move |state| async move {
        let mut follower = state?;
        match follower.next().await? {
            Ok(event) => {
                let (_, view) = event_view(&event, encoding);
                Some((Ok::<_, Infallible>(line(&view)), Some(follower)))
            }
            Err(err) => Some((Ok(line(&error_view(err))), None)),
        }
    });
    streaming(Body::from_stream(lines), NDJSON)
}

/// The follower's events as Server-Sent Events: `output`, `position`,
/// `exit`, `error`; each event's id is `<stdout_offset>.<stderr_offset>`
/// after it, which a reconnecting `EventSource` sends back as `Last-Event-ID`.
pub fn sse(follower: OutputFollower, from: OutputCursor, encoding: Encoding) -> Response {
    let events = futures::stream::unfold(Some((follower, from)), move |state| async move {
        let (mut follower, mut at) = state?;
        match follower.next().await? {
            Ok(event) => {
                let (name, view) = event_view(&event, encoding);
                at = after(&event, at);
                let sse = Event::default()
                    .event(name)
                    .id(format!("{}.{}", at.stdout, at.stderr))
                    .json_data(&view)
                    .unwrap_or_default();
                Some((Ok::<_, Infallible>(sse), Some((follower, at))))
            }
            Err(err) => {
                let sse = Event::default()
                    .event("error")
                    .json_data(error_view(err))
                    .unwrap_or_default();
                Some((Ok(sse), None))
            }
        }
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    no_buffering(&mut response);
    response
}

/// Where a reader stands after `event`.
fn after(event: &FollowEvent, mut at: OutputCursor) -> OutputCursor {
    match event {
        FollowEvent::Output {
            stream,
            offset,
            data,
        } => {
            let end = offset + data.len() as u64;
            match stream {
                OutputStream::Stdout => at.stdout = end,
                OutputStream::Stderr => at.stderr = end,
            }
            at
        }
        FollowEvent::Position { cursor, .. } => *cursor,
        FollowEvent::Exited(info) => OutputCursor {
            stdout: info.stdout.end,
            stderr: info.stderr.end,
        },
    }
}

/// A streamed exec: output lines as they come, then the result line.
pub fn exec_lines(follower: OutputFollower) -> Response {
    let lines = exec_events(follower);
    streaming(Body::from_stream(lines), NDJSON)
}

fn exec_events(follower: OutputFollower) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::unfold(Some(follower), |state| async move {
        let mut follower = state?;
        loop {
            let bytes = match follower.next().await? {
                Ok(FollowEvent::Position { .. }) => continue,
                Ok(FollowEvent::Exited(info)) => line(&exec_result(&info, &follower)),
                Ok(event) => line(&event_view(&event, Encoding::Auto).1),
                Err(err) => line(&error_view(err)),
            };
            return Some((Ok(bytes), Some(follower)));
        }
    })
}

fn exec_result(info: &ProcessInfo, follower: &OutputFollower) -> ExecStreamResult {
    let duration = info
        .ended_at
        .map(|end| (end - info.started_at).num_milliseconds())
        .unwrap_or_default();
    ExecStreamResult {
        exit_code: info.state.exit_code().unwrap_or(-1),
        timed_out: info.state.timed_out(),
        truncated: false,
        duration_ms: u64::try_from(duration).unwrap_or(0),
        session_id: follower.session().id.to_string(),
        process_id: follower.process_id().to_string(),
    }
}

fn streaming(body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    no_buffering(&mut response);
    response
}

/// Proxies must pass each event on as it comes.
fn no_buffering(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}
