//! pyeval as a service. [`http::serve`] answers an HTTP/JSON API (fresh evaluations,
//! sessions, health, Prometheus metrics) and [`mcp::serve_stdio`] is a Model Context
//! Protocol server with a `run_python` tool; both run on one [`pyeval::Evaluator`] under
//! the operator's [`Policy`].

pub mod http;
pub mod mcp;
mod metrics;
mod policy;
mod sessions;
mod wire;

pub use policy::{Policy, RequestLimits};
