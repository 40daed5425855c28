//! Secrets the guest uses without seeing them: its environment holds a placeholder, which
//! the host replaces with the value in the headers of requests to the secret's hosts.

use std::fmt;
use std::str::FromStr;

use super::rule::{Destination, HostRule};

/// A value for requests to some hosts, named by an environment variable whose value in the
/// guest is [`Secret::placeholder`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    name: String,
    value: String,
    hosts: Vec<HostRule>,
}

impl Secret {
    /// The secret `name` holding `value`, sent only to hosts matching `hosts`.
    pub fn new(
        name: impl Into<String>,
        value: impl Into<String>,
        hosts: Vec<HostRule>,
    ) -> Result<Self, SecretError> {
        let (name, value) = (name.into(), value.into());
        let text = format!("{name}=...@...");
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(SecretError::new(&text, "the name is letters, digits and _"));
        }
        if value.is_empty() || value.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(SecretError::new(
                &text,
                "the value is not empty and has no control characters",
            ));
        }
        if hosts.is_empty() {
            return Err(SecretError::new(&text, "name at least one host"));
        }
        Ok(Secret { name, value, hosts })
    }

    /// The environment variable that holds the placeholder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the guest sees in place of the value: `pyeval-secret:NAME`.
    pub fn placeholder(&self) -> String {
        format!("pyeval-secret:{}", self.name)
    }

    /// Whether requests to `destination` get the value.
    pub fn goes_to(&self, destination: &Destination) -> bool {
        self.hosts.iter().any(|rule| rule.allows(destination))
    }

    /// The value itself (only the host's request to an allowed host carries it).
    pub(crate) fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("value", &"<hidden>")
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret {text}: {why} (a secret is NAME=VALUE@HOST[,HOST...])")]
pub struct SecretError {
    text: String,
    why: String,
}

impl SecretError {
    fn new(text: &str, why: impl Into<String>) -> Self {
        SecretError {
            text: text.to_string(),
            why: why.into(),
        }
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    /// `NAME=VALUE@HOST[,HOST...]`; the value may hold `@` (the last one starts the hosts).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shown = match text.split_once('=') {
            Some((name, _)) => format!("{name}=...@..."),
            None => "(no =)".to_string(),
        };
        let (name, rest) = text
            .split_once('=')
            .ok_or_else(|| SecretError::new(&shown, "no ="))?;
        let (value, hosts) = rest
            .rsplit_once('@')
            .ok_or_else(|| SecretError::new(&shown, "no @ before its hosts"))?;
        let hosts = hosts
            .split(',')
            .map(str::parse::<HostRule>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SecretError::new(&shown, e.to_string()))?;
        Secret::new(name, value, hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::rule::Host;

    #[test]
    fn parses_and_hides_its_value() {
        let secret: Secret = "TOKEN=abc@def@api.example.com,*.example.org:8443"
            .parse()
            .unwrap();
        assert_eq!(secret.value(), "abc@def");
        assert_eq!(secret.placeholder(), "pyeval-secret:TOKEN");
        assert!(!format!("{secret:?}").contains("abc"));
        let to = |host: &str, port| Destination {
            method: "GET".into(),
            host: Host::parse(host),
            port,
        };
        assert!(secret.goes_to(&to("api.example.com", 443)));
        assert!(secret.goes_to(&to("x.example.org", 8443)));
        assert!(!secret.goes_to(&to("evil.com", 443)));
        for bad in [
            "TOKEN",
            "TOKEN=abc",
            "=abc@x.com",
            "T-K=abc@x.com",
            "T=@x.com",
            "T=a@",
        ] {
            let error = bad.parse::<Secret>().unwrap_err().to_string();
            assert!(!error.contains("abc"), "{error}");
            assert!(error.contains("NAME=VALUE@HOST"), "{error}");
        }
    }
}
