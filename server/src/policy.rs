//! What the operator allows: the limits a request gets by default and at most, how many
//! sessions stay open for how long, and what each connection and response may hold.

use std::time::Duration;

use pyeval::{Fuel, Limits};
use serde::Deserialize;

use crate::connections::ConnectionLimits;

/// The operator's rules for every request.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Limits of a request that asks for none; also the most a request may ask for.
    pub limits: Limits,
    /// Sessions open at once at most.
    pub max_sessions: usize,
    /// A session unused this long is closed.
    pub session_idle: Duration,
    /// Longest a client may take to send a whole request body.
    pub body_timeout: Duration,
    /// Connections at once, header and write timeouts, shutdown grace.
    pub connections: ConnectionLimits,
    /// Bytes that responses in flight may hold at once (those waiting for slow clients
    /// included); past it, evaluations are answered 503.
    pub response_memory: usize,
    /// Tools granted to every evaluation (those of other MCP servers).
    pub tools: Vec<pyeval::Tool>,
    /// What every evaluation may reach on the network (none: nothing); a request may
    /// give it up (`"network": false`), never widen it.
    pub network: Option<pyeval::network::Network>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            limits: Limits::default(),
            max_sessions: 100,
            session_idle: Duration::from_secs(600),
            body_timeout: Duration::from_secs(10),
            connections: ConnectionLimits {
                max_connections: 1024,
                header_timeout: Duration::from_secs(10),
                write_timeout: Duration::from_secs(10),
                shutdown_grace: Duration::from_secs(30),
            },
            response_memory: 256 << 20,
            tools: Vec::new(),
            network: None,
        }
    }
}

/// Limits a request asks for; each is capped by the policy's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimits {
    /// Fuel budget (ignored by a server that does not meter fuel).
    pub fuel: Option<u64>,
    /// Memory cap in bytes.
    pub memory_bytes: Option<usize>,
    /// Wall-time limit in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Bytes of stdout and of stderr kept.
    pub max_output_bytes: Option<u32>,
}

impl Policy {
    /// The limits for `asked`: what it asks for where that is within the policy, the
    /// policy's own value elsewhere.
    pub fn limits_for(&self, asked: &RequestLimits) -> Limits {
        let max = &self.limits;
        // A server without fuel metering cannot count a request's budget either.
        let fuel = match (asked.fuel, max.fuel) {
            (Some(asked), Fuel::Limited(cap)) => Fuel::Limited(asked.min(cap)),
            (_, fuel) => fuel,
        };
        let wall_time = asked.timeout_ms.map_or(max.wall_time, |ms| {
            Duration::from_millis(ms.max(1)).min(max.wall_time)
        });
        max.clone()
            .with_fuel(fuel)
            .with_memory_bytes(
                asked
                    .memory_bytes
                    .map_or(max.memory_bytes, |b| b.min(max.memory_bytes)),
            )
            .with_wall_time(wall_time)
            .with_output_bytes(
                asked
                    .max_output_bytes
                    .map_or(max.output_bytes, |b| b.min(max.output_bytes)),
            )
    }

    /// Largest response but for its files: the five texts of an outcome (stdout, stderr,
    /// value, exception message, traceback) at the output limit, and room for the rest. An
    /// outcome whose JSON escapes take more has its texts cut to fit. The files returned
    /// come on top, bounded by the files limits.
    pub fn max_response_bytes(&self) -> usize {
        (self.limits.output_bytes as usize)
            .saturating_mul(5)
            .saturating_add(64 * 1024)
    }

    /// Sessions open at once at most on an evaluator of `instances`: the policy's cap, and
    /// never more than three quarters of the pool, so sessions cannot starve fresh
    /// evaluations of instances.
    pub fn session_cap(&self, instances: u32) -> usize {
        let instances = instances as usize;
        self.max_sessions
            .min(instances - (instances / 4).max(1).min(instances))
    }

    /// Largest request body accepted without files: the code limit, and as much again for
    /// the rest (environment, arguments, stdin, JSON escapes). A body of unknown length
    /// (chunked) may be no larger.
    pub fn body_limit(&self) -> usize {
        self.limits
            .code_bytes
            .saturating_mul(2)
            .saturating_add(64 * 1024)
    }

    /// Largest request body accepted with its length declared: [`Policy::body_limit`] and
    /// the files a request may give, their bytes in base64 and 512 bytes a file for their
    /// paths.
    pub fn body_limit_with_files(&self) -> usize {
        let files = self.limits.files;
        self.body_limit()
            .saturating_add(base64_len(files.max_bytes))
            .saturating_add((files.max_files as usize).saturating_mul(512))
    }

    /// Largest body of a request that opens a session, its length declared: as
    /// [`Policy::body_limit_with_files`], or a session's dump in base64 (a dump holds at
    /// most a session's memory, and compressed memory is rarely larger).
    pub fn body_limit_with_dump(&self) -> usize {
        let dump = self
            .body_limit()
            .saturating_add(base64_len(self.limits.memory_bytes as u64));
        self.body_limit_with_files().max(dump)
    }
}

/// Bytes of `bytes` bytes in base64.
fn base64_len(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(3).saturating_mul(4)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_get_at_most_the_policy() {
        let policy = Policy::default();
        let asked = RequestLimits {
            fuel: Some(u64::MAX),
            memory_bytes: Some(1 << 40),
            timeout_ms: Some(u64::MAX),
            max_output_bytes: Some(u32::MAX),
        };
        assert_eq!(policy.limits_for(&asked), policy.limits);
        let smaller = RequestLimits {
            fuel: Some(1000),
            memory_bytes: Some(32 << 20),
            timeout_ms: Some(250),
            max_output_bytes: Some(10),
        };
        let limits = policy.limits_for(&smaller);
        assert_eq!(limits.fuel, Fuel::Limited(1000));
        assert_eq!(limits.memory_bytes, 32 << 20);
        assert_eq!(limits.wall_time, Duration::from_millis(250));
        assert_eq!(limits.output_bytes, 10);
        assert_eq!(policy.limits_for(&RequestLimits::default()), policy.limits);
    }

    #[test]
    fn sessions_leave_a_quarter_of_the_pool_to_fresh_evaluations() {
        let policy = Policy::default();
        assert_eq!(policy.session_cap(1000), 100);
        assert_eq!(policy.session_cap(100), 75);
        assert_eq!(policy.session_cap(2), 1);
        assert_eq!(policy.session_cap(1), 0);
        assert_eq!(policy.session_cap(0), 0);
    }
}
