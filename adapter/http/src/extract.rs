//! Extractors that turn raw requests into domain values, refusing bad input
//! with the documented codes before any use case runs.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use sandboxer_core::domain::{ChatId, ProcessId, WorkspacePath};
use sandboxer_core::trace::attr::ErrorClass;

use crate::error::ApiError;

/// The `{chat_id}` of the route, validated.
pub struct ChatPath(pub ChatId);

/// The `{chat_id}` and `{*path}` of a file route, validated.
pub struct FilePath(pub ChatId, pub WorkspacePath);

async fn path_params<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<HashMap<String, String>, ApiError> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(params)| params)
        .map_err(|rejection| ApiError::new(ErrorClass::InvalidRequest, rejection.body_text()))
}

impl<S: Send + Sync> FromRequestParts<S> for ChatPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = path_params(parts, state).await?;
        let raw = params.get("chat_id").map_or("", String::as_str);
        Ok(Self(ChatId::parse(raw)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FilePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = path_params(parts, state).await?;
        let chat = ChatId::parse(params.get("chat_id").map_or("", String::as_str))?;
        let path = WorkspacePath::parse(params.get("path").map_or("", String::as_str))?;
        Ok(Self(chat, path))
    }
}

/// The `{chat_id}` and `{process_id}` of a process route, validated.
pub struct ProcessPath(pub ChatId, pub ProcessId);

impl<S: Send + Sync> FromRequestParts<S> for ProcessPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = path_params(parts, state).await?;
        let chat = ChatId::parse(params.get("chat_id").map_or("", String::as_str))?;
        let id = ProcessId::parse(params.get("process_id").map_or("", String::as_str))
            .map_err(|e| ApiError::new(ErrorClass::InvalidRequest, e.to_string()))?;
        Ok(Self(chat, id))
    }
}

/// The query string's pairs; each parameter read through it is given at
/// most once and parsed strictly (`invalid_request` otherwise). Parameters
/// nobody reads are ignored.
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// # Errors
    /// `invalid_request` when `name` is given more than once.
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(n, _)| n == name);
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some((_, v)), None) => Ok(Some(v.as_str())),
            (Some(_), Some(_)) => Err(ApiError::new(
                ErrorClass::InvalidRequest,
                format!("the query parameter `{name}` is given more than once"),
            )),
        }
    }

    /// A byte offset: a whole number from 0 to 2^63 - 1 (the document's
    /// `int64`).
    ///
    /// # Errors
    /// `invalid_request` for anything else.
    pub fn offset(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.one(name)?
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorClass::InvalidRequest,
                            format!("the query parameter `{name}` is a whole number from 0 to 2^63 - 1, got {v:?}"),
                        )
                    })
            })
            .transpose()
    }

    /// # Errors
    /// `invalid_request` unless `true` or `false`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.one(name)?
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::new(
                    ErrorClass::InvalidRequest,
                    format!("the query parameter `{name}` is `true` or `false`, got {v:?}"),
                )),
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Self(pairs))
            .map_err(|rejection| ApiError::new(ErrorClass::InvalidRequest, rejection.body_text()))
    }
}

/// The `list` query parameter of the file routes: `true` asks for a
/// directory's entries; absent or `false`, for a file's bytes. Any other
/// value, or `list` given twice, is `invalid_request`; other parameters are
/// ignored.
pub struct ListQuery(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|rejection| {
                ApiError::new(ErrorClass::InvalidRequest, rejection.body_text())
            })?;
        let mut values = pairs.into_iter().filter(|(name, _)| name == "list");
        match (values.next(), values.next()) {
            (None, _) => Ok(Self(false)),
            (Some(_), Some(_)) => Err(ApiError::new(
                ErrorClass::InvalidRequest,
                "the query parameter `list` is given more than once",
            )),
            (Some((_, value)), None) => match value.as_str() {
                "true" => Ok(Self(true)),
                "false" => Ok(Self(false)),
                _ => Err(ApiError::new(
                    ErrorClass::InvalidRequest,
                    format!("the query parameter `list` is `true` or `false`, got {value:?}"),
                )),
            },
        }
    }
}

/// The raw body, within the route's size limit (413 `body_too_large` past it).
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorClass::BodyTooLarge,
                        "the request body is over the size limit",
                    )
                } else {
                    ApiError::new(ErrorClass::InvalidRequest, rejection.body_text())
                }
            })
    }
}

/// A JSON body; `None` when the body is empty or JSON `null` (the document
/// states an optional body as nullable, and clients that serialize "no
/// options" as `null` mean the same). Malformed JSON is `invalid_json`,
/// well-formed JSON of the wrong shape `invalid_request`.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Body(bytes) = Body::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        parse_json(&bytes).map(Self)
    }
}

/// A required JSON body: empty is `invalid_json`, `null` a wrong shape.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Body(bytes) = Body::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(
                ErrorClass::InvalidJson,
                "a JSON body is required",
            ));
        }
        parse_json(&bytes).map(Self)
    }
}

/// Syntax first, then shape: a streaming parse would report `[1,2` as a
/// wrong type before noticing it is not JSON at all.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::new(
            ErrorClass::InvalidJson,
            format!("request body is not JSON: {err}"),
        )
    })?;
    serde_json::from_value(value)
        .map_err(|err| ApiError::new(ErrorClass::InvalidRequest, format!("request body: {err}")))
}
