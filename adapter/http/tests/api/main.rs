//! The API through `Router::oneshot` over fake ports: routes, shapes, the
//! documented error codes, auth, limits, the request span and the OpenAPI
//! document. Bad input never reaches the runtime and harms no session.

mod harness;
mod hibernation;
mod lifecycle;
mod listing;
mod openapi;
mod processes;
mod refusals;
