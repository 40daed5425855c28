//! Network egress: the HTTP(S) requests evaluated code may send, through the standard
//! `wasi:http/outgoing-handler` import, to the hosts a [`Network`] grant allows.
//!
//! The host decides everything: it matches the request against the allowed hosts, resolves
//! the name itself and checks every address it resolves to (loopback, private, link-local,
//! metadata and the other special ranges are refused unless the grant names them),
//! connects to an address it checked, makes and verifies the TLS connection, puts secrets
//! into the headers of requests to their hosts, and caps the requests, the response bytes
//! and the time of each evaluation.

mod address;
mod body;
mod rule;
mod secret;
mod send;

use std::time::Duration;

pub use address::{AddressRange, AddressRangeError};
pub use rule::{HostRule, HostRuleError};
pub use secret::{Secret, SecretError};
pub(crate) use send::NetworkCalls;

/// Requests one evaluation may send by default.
pub const DEFAULT_MAX_REQUESTS: u32 = 100;
/// Response bytes (bodies) one evaluation may receive by default, all requests together.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 << 20;
/// How long a connection (resolving, connecting, TLS) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What evaluated code may reach on the network. Nothing without it: every request is
/// refused. Requests are further bounded by the evaluation's wall time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Network {
    /// The hosts requests may go to.
    pub hosts: Vec<HostRule>,
    /// Addresses requests may reach although they are special (loopback, private, ...).
    pub addresses: Vec<AddressRange>,
    /// Secrets: a placeholder in the guest's environment, the value in requests' headers.
    pub secrets: Vec<Secret>,
    /// Certificates (DER) trusted besides the public roots, for a private CA.
    pub ca_certificates: Vec<Vec<u8>>,
    /// Requests each evaluation may send (those refused count too).
    pub max_requests: u32,
    /// Response body bytes each evaluation may receive.
    pub max_response_bytes: u64,
    /// How long a connection may take to open.
    pub connect_timeout: Duration,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            hosts: Vec::new(),
            addresses: Vec::new(),
            secrets: Vec::new(),
            ca_certificates: Vec::new(),
            max_requests: DEFAULT_MAX_REQUESTS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Why certificates given for a private CA were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no certificate in the PEM text given as a CA{0}")]
pub struct CaCertificateError(String);

impl Network {
    /// No host allowed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// This grant and the hosts of `rule`.
    pub fn allow_host(mut self, rule: HostRule) -> Self {
        self.hosts.push(rule);
        self
    }

    /// This grant, letting requests reach the special addresses of `range`.
    pub fn allow_addresses(mut self, range: AddressRange) -> Self {
        self.addresses.push(range);
        self
    }

    /// This grant and `secret`.
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// This grant, trusting the certificates of the PEM text `pem` (one or more) besides
    /// the public roots.
    pub fn trust_pem(mut self, pem: &[u8]) -> Result<Self, CaCertificateError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| CaCertificateError(format!(": {e}")))?;
            self.ca_certificates.push(cert.to_vec());
            found += 1;
        }
        if found == 0 {
            return Err(CaCertificateError(String::new()));
        }
        Ok(self)
    }

    /// The environment variables the guest gets for the secrets: their placeholders.
    pub(crate) fn secret_env(&self) -> impl Iterator<Item = (&str, String)> {
        self.secrets.iter().map(|s| (s.name(), s.placeholder()))
    }
}
