//! pyeval as a service. [`http::serve`] answers an HTTP/JSON API (fresh evaluations,
//! sessions, health, Prometheus metrics) and [`mcp::serve_stdio`] is a Model Context
//! Protocol server with a `run_python` tool; both run on one [`pyeval::Evaluator`] under
//! the operator's [`Policy`].

mod client_tools;
mod connections;
mod events;
pub mod http;
pub mod mcp;
pub mod mcp_tools;
mod metrics;
mod policy;
mod response;
pub mod session_file;
pub mod session_store;
mod sessions;
mod wire;

pub use connections::ConnectionLimits;
pub use policy::{Policy, RequestLimits};
pub use session_store::SessionStore;
