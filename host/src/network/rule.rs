//! The hosts a grant allows: `api.github.com`, `*.example.com`, `GET,HEAD
//! api.example.com:443`, `127.0.0.1:8080`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::address::parse_numeric_host;

/// Where a request goes, as the rules match it: its method, host (lower case, without a
/// trailing dot; a numeric host as its address) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub method: String,
    pub host: Host,
    pub port: u16,
}

/// A request's host: a name, or an address however it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Address(IpAddr),
}

impl Host {
    /// `text` (from a URL's authority) made plain for matching.
    pub fn parse(text: &str) -> Host {
        match parse_numeric_host(text) {
            Some(ip) => Host::Address(ip),
            None => Host::Name(text.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Address(ip) => write!(f, "{ip}"),
        }
    }
}

/// One allowed host: which methods, which host or hosts, which ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// Upper-case methods; empty allows every method.
    methods: Vec<String>,
    pattern: Pattern,
    /// `None` allows every port.
    ports: Option<Vec<u16>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `*`: every host (special addresses stay refused).
    Any,
    /// `*.example.com`: every name ending in `.example.com` (not `example.com` itself).
    Subdomains(String),
    Name(String),
    Address(IpAddr),
}

/// The ports a rule without one allows: HTTP's and HTTPS's.
const DEFAULT_PORTS: [u16; 2] = [80, 443];

impl HostRule {
    /// Whether this rule lets `destination` through.
    pub fn allows(&self, destination: &Destination) -> bool {
        let method = self.methods.is_empty() || self.methods.contains(&destination.method);
        let port = match &self.ports {
            None => true,
            Some(ports) => ports.contains(&destination.port),
        };
        let host = match (&self.pattern, &destination.host) {
            (Pattern::Any, _) => true,
            (Pattern::Subdomains(suffix), Host::Name(name)) => {
                name.len() > suffix.len() && name.ends_with(suffix.as_str())
            }
            (Pattern::Name(pattern), Host::Name(name)) => pattern == name,
            (Pattern::Address(pattern), Host::Address(ip)) => pattern == ip,
            _ => false,
        };
        method && port && host
    }
}

/// Why a host rule did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{rule:?}: {why} (a rule is [METHOD,...] HOST[:PORT], e.g. `api.example.com`, \
     `*.example.com:8443`, `GET,HEAD example.com:*`)"
)]
pub struct HostRuleError {
    rule: String,
    why: &'static str,
}

impl FromStr for HostRule {
    type Err = HostRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |why| HostRuleError {
            rule: text.to_string(),
            why,
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let (methods, target) = match words[..] {
            [target] => (Vec::new(), target),
            [methods, target] => {
                let methods: Vec<String> = methods.split(',').map(str::to_string).collect();
                let valid = |m: &String| {
                    !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
                };
                if !methods.iter().all(valid) {
                    return Err(error("methods are upper-case names separated by commas"));
                }
                (methods, target)
            }
            _ => return Err(error("expected a host, optionally after methods")),
        };
        let (host, port) = split_port(target).ok_or_else(|| error("bad port"))?;
        let ports = match port {
            None => Some(DEFAULT_PORTS.to_vec()),
            Some("*") => None,
            Some(port) => Some(vec![port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| error("a port is a number from 1 to 65535, or *"))?]),
        };
        let pattern = if host == "*" {
            Pattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if !is_name(suffix) {
                return Err(error("not a host name after `*.`"));
            }
            Pattern::Subdomains(format!(".{}", suffix.to_ascii_lowercase()))
        } else {
            match Host::parse(host) {
                Host::Address(ip) => Pattern::Address(ip),
                Host::Name(name) if is_name(&name) => Pattern::Name(name),
                Host::Name(_) => return Err(error("not a host name or an address")),
            }
        };
        Ok(HostRule {
            methods,
            pattern,
            ports,
        })
    }
}

/// `host[:port]`, `[v6][:port]` or a bare IPv6 address as host and port; `None` when the
/// port part is empty.
fn split_port(target: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => after
                .strip_prefix(':')
                .filter(|p| !p.is_empty())
                .map(|p| (host, Some(p))),
        };
    }
    match target.matches(':').count() {
        0 => Some((target, None)),
        1 => {
            let (host, port) = target.split_once(':')?;
            (!port.is_empty()).then_some((host, Some(port)))
        }
        _ => Some((target, None)),
    }
}

/// Whether `name` is a DNS name: dot-separated labels of letters, digits and hyphens.
fn is_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.methods.is_empty() {
            write!(f, "{} ", self.methods.join(","))?;
        }
        match &self.pattern {
            Pattern::Any => f.write_str("*")?,
            Pattern::Subdomains(suffix) => write!(f, "*{suffix}")?,
            Pattern::Name(name) => f.write_str(name)?,
            Pattern::Address(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            Pattern::Address(ip) => write!(f, "{ip}")?,
        }
        match &self.ports {
            None => f.write_str(":*"),
            Some(ports) if ports[..] == DEFAULT_PORTS => Ok(()),
            Some(ports) => write!(f, ":{}", ports[0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(method: &str, host: &str, port: u16) -> Destination {
        Destination {
            method: method.into(),
            host: Host::parse(host),
            port,
        }
    }

    fn rule(text: &str) -> HostRule {
        text.parse().unwrap()
    }

    #[test]
    fn names_ports_and_methods() {
        let plain = rule("api.example.com");
        assert!(plain.allows(&to("GET", "api.example.com", 443)));
        assert!(plain.allows(&to("POST", "API.Example.com.", 80)));
        assert!(!plain.allows(&to("GET", "api.example.com", 8080)));
        assert!(!plain.allows(&to("GET", "example.com", 443)));
        assert!(!plain.allows(&to("GET", "evil-api.example.com", 443)));

        let wild = rule("*.example.com:*");
        assert!(wild.allows(&to("GET", "a.b.example.com", 9000)));
        assert!(!wild.allows(&to("GET", "example.com", 443)));
        assert!(!wild.allows(&to("GET", "badexample.com", 443)));

        let read_only = rule("GET,HEAD example.com:8443");
        assert!(read_only.allows(&to("HEAD", "example.com", 8443)));
        assert!(!read_only.allows(&to("POST", "example.com", 8443)));
        assert!(!read_only.allows(&to("GET", "example.com", 443)));
    }

    #[test]
    fn addresses_match_in_any_form() {
        let loopback = rule("127.0.0.1:8080");
        for form in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f.1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(loopback.allows(&to("GET", form, 8080)), "{form}");
        }
        assert!(!loopback.allows(&to("GET", "localhost", 8080)));
        let v6 = rule("[::1]:8080");
        assert!(v6.allows(&to("GET", "[::1]", 8080)));
        assert!(rule("*").allows(&to("GET", "10.0.0.1", 443)));
    }

    #[test]
    fn bad_rules_say_why() {
        for bad in [
            "",
            "get example.com",
            "GET HEAD example.com",
            "example.com:0",
            "example.com:x",
            "example.com:",
            "*.",
            "exa mple.com x",
            "bad/host",
        ] {
            let error = bad.parse::<HostRule>().unwrap_err().to_string();
            assert!(error.contains("a rule is"), "{bad}: {error}");
        }
        assert_eq!(rule("GET example.com:*").to_string(), "GET example.com:*");
        assert_eq!(rule("*.Example.com").to_string(), "*.example.com");
    }
}
