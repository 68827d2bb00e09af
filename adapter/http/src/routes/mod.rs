//! Route handlers, one module per group of DESIGN section 6.

pub mod files;
pub mod nodes;
pub mod ops;
pub mod processes;
pub mod pty;
pub mod sandbox;

use std::sync::Arc;

use crate::state::ApiState;

pub type ApiStateRef = axum::extract::State<Arc<ApiState>>;
