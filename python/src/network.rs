//! `Network`: what evaluated code may reach, as the library's grant.

use std::collections::BTreeMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::options::Input;

/// The hosts evaluated code may send HTTP(S) requests to: `Network(["api.github.com",
/// "GET,HEAD *.example.com:8443"])`. `addresses` lets requests reach special addresses
/// (`"127.0.0.1"`, `"10.0.0.0/8"`), refused otherwise; `secrets` maps an environment
/// variable to `(value, hosts)`: the code sees a placeholder, the value goes only into
/// headers of requests to those hosts; `ca_cert` is PEM text of CA certificates trusted
/// besides the public roots; `max_requests` and `max_response_bytes` bound each
/// evaluation. `Evaluator.eval(network=...)` also takes a plain list of host rules.
#[pyclass(module = "pyeval", frozen)]
pub struct Network {
    pub(crate) inner: pyeval::network::Network,
}

#[pymethods]
impl Network {
    #[new]
    #[pyo3(signature = (hosts, *, addresses=None, secrets=None, ca_cert=None,
                        max_requests=None, max_response_bytes=None))]
    fn new(
        hosts: Vec<String>,
        addresses: Option<Vec<String>>,
        secrets: Option<BTreeMap<String, (String, Vec<String>)>>,
        ca_cert: Option<Input>,
        max_requests: Option<u32>,
        max_response_bytes: Option<u64>,
    ) -> PyResult<Self> {
        let value_error = |e: &dyn std::fmt::Display| PyValueError::new_err(e.to_string());
        let mut inner = rules(hosts)?;
        for range in addresses.unwrap_or_default() {
            inner = inner.allow_addresses(range.parse().map_err(|e| value_error(&e))?);
        }
        for (name, (value, hosts)) in secrets.unwrap_or_default() {
            let hosts = hosts
                .iter()
                .map(|h| h.parse())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| value_error(&e))?;
            let secret =
                pyeval::network::Secret::new(name, value, hosts).map_err(|e| value_error(&e))?;
            inner = inner.with_secret(secret);
        }
        if let Some(pem) = ca_cert {
            inner = inner
                .trust_pem(&pem.into_bytes())
                .map_err(|e| value_error(&e))?;
        }
        if let Some(n) = max_requests {
            inner.max_requests = n;
        }
        if let Some(n) = max_response_bytes {
            inner.max_response_bytes = n;
        }
        Ok(Network { inner })
    }

    /// The host rules, as text.
    #[getter]
    fn hosts(&self) -> Vec<String> {
        self.inner.hosts.iter().map(ToString::to_string).collect()
    }

    fn __repr__(&self) -> String {
        format!("Network({:?})", self.hosts())
    }
}

/// A grant allowing the host rules `hosts`.
fn rules(hosts: Vec<String>) -> PyResult<pyeval::network::Network> {
    let mut network = pyeval::network::Network::new();
    for rule in hosts {
        network =
            network.allow_host(rule.parse().map_err(|e: pyeval::network::HostRuleError| {
                PyValueError::new_err(e.to_string())
            })?);
    }
    Ok(network)
}

/// The `network` keyword argument: a `Network`, or a list of host rules.
pub fn network(value: Option<Bound<'_, PyAny>>) -> PyResult<Option<pyeval::network::Network>> {
    let Some(value) = value else {
        return Ok(None);
    };
    if let Ok(network) = value.cast::<Network>() {
        return Ok(Some(network.get().inner.clone()));
    }
    let hosts: Vec<String> = value.extract().map_err(|_| {
        PyValueError::new_err("network: a pyeval.Network or a list of host rules (str)")
    })?;
    rules(hosts).map(Some)
}
