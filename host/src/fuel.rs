//! The fuel budget: how many wasm instructions (roughly) a run may execute.

use std::fmt;
use std::str::FromStr;

/// Default budget, as in the original fuel demo.
pub const DEFAULT_FUEL: u64 = 1_000_000_000;

/// A fuel budget: a number of units, or no limit at all (metering off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fuel {
    /// Stop the run once this much fuel is consumed.
    Limited(u64),
    /// No budget: the engine does not meter fuel.
    Unlimited,
}

impl Fuel {
    /// A budget given as a number: -1 for no limit, else at least 0.
    pub fn from_signed(units: i64) -> Result<Fuel, crate::LimitError> {
        match units {
            -1 => Ok(Fuel::Unlimited),
            n => u64::try_from(n)
                .map(Fuel::Limited)
                .map_err(|_| crate::LimitError::Fuel),
        }
    }

    /// Whether runs under this budget need an engine that meters fuel: exactly when it is
    /// limited (metering costs time, so an unlimited budget runs unmetered).
    pub fn needs_metering(&self) -> bool {
        matches!(self, Fuel::Limited(_))
    }
}

impl Default for Fuel {
    fn default() -> Self {
        Fuel::Limited(DEFAULT_FUEL)
    }
}

/// Why a fuel budget could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid fuel budget {0:?}: expected a whole number (underscores allowed, e.g. 10_000_000) or -1 for no limit")]
pub struct ParseFuelError(String);

impl FromStr for Fuel {
    type Err = ParseFuelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed == "-1" {
            return Ok(Fuel::Unlimited);
        }
        let digits: String = trimmed.chars().filter(|c| *c != '_').collect();
        let well_formed = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !trimmed.starts_with('_')
            && !trimmed.ends_with('_');
        if !well_formed {
            return Err(ParseFuelError(s.to_owned()));
        }
        digits
            .parse()
            .map(Fuel::Limited)
            .map_err(|_| ParseFuelError(s.to_owned()))
    }
}

impl fmt::Display for Fuel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fuel::Limited(n) => f.write_str(&group_thousands(*n)),
            Fuel::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// Formats a number with `,` between groups of three digits: `1,000,000`.
pub(crate) fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_underscored_and_unlimited() {
        assert_eq!("1000".parse(), Ok(Fuel::Limited(1000)));
        assert_eq!("10_000_000_000".parse(), Ok(Fuel::Limited(10_000_000_000)));
        assert_eq!("-1".parse(), Ok(Fuel::Unlimited));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "_",
            "abc",
            "-2",
            "1e9",
            "1__",
            "_1",
            "99999999999999999999999",
        ] {
            assert!(bad.parse::<Fuel>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1_000_000_000), "1,000,000,000");
    }
}
