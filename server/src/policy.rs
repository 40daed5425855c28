//! What the operator allows: the limits a request gets by default and at most, and how
//! many sessions stay open for how long.

use std::time::Duration;

use pyeval::{Fuel, Limits};
use serde::Deserialize;

/// The operator's rules for every request.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Limits of a request that asks for none; also the most a request may ask for.
    pub limits: Limits,
    /// Sessions open at once at most.
    pub max_sessions: usize,
    /// A session unused this long is closed.
    pub session_idle: Duration,
    /// Longest a client may take to send a request body.
    pub body_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            limits: Limits::default(),
            max_sessions: 100,
            session_idle: Duration::from_secs(600),
            body_timeout: Duration::from_secs(10),
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

    /// Largest request body accepted: the code limit, and as much again for the rest
    /// (environment, arguments, stdin, JSON escapes).
    pub fn body_limit(&self) -> usize {
        self.limits
            .code_bytes
            .saturating_mul(2)
            .saturating_add(64 * 1024)
    }
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
}
