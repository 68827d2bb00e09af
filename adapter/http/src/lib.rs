//! The HTTP API (axum) and its OpenAPI document.
