//! Sending one request the guest made: admitted by the grant, resolved and checked,
//! connected, sent, its response bounded.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::HeaderValue;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::address::special_range;
use super::body::{replace_all, Masks, ResponseBody};
use super::rule::{Destination, Host};
use super::Network;

/// The network side of a store: the grant, and what the current evaluation has used of it.
pub(crate) struct NetworkCalls {
    grant: Option<Arc<Network>>,
    requests_left: u32,
    bytes_left: Arc<AtomicU64>,
    deadline: Instant,
}

impl Default for NetworkCalls {
    fn default() -> Self {
        NetworkCalls {
            grant: None,
            requests_left: 0,
            bytes_left: Arc::default(),
            deadline: Instant::now(),
        }
    }
}

impl NetworkCalls {
    /// Makes `network` the grant of later evaluations (none: every request refused).
    pub(crate) fn grant(&mut self, network: Option<&Network>) {
        self.grant = network.cloned().map(Arc::new);
    }

    /// Starts an evaluation that ends at `deadline` (its guard's): its requests and bytes
    /// afresh.
    pub(crate) fn start_evaluation(&mut self, deadline: std::time::Instant) {
        if let Some(grant) = &self.grant {
            self.requests_left = grant.max_requests;
            self.bytes_left = Arc::new(AtomicU64::new(grant.max_response_bytes));
        }
        self.deadline = Instant::from_std(deadline);
    }

    /// Checks `request` against the grant and counts it.
    fn admit(&mut self, request: &http::Request<WasiBody>) -> Result<Admitted, HttpError> {
        let grant = self
            .grant
            .clone()
            .ok_or_else(|| refused("no network is granted".into()))?;
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = uri.authority().ok_or(HttpError::HttpRequestUriInvalid)?;
        let host_text = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let destination = Destination {
            method: request.method().as_str().to_string(),
            host: Host::parse(host_text),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        };
        if self.requests_left == 0 {
            return Err(refused(format!(
                "the evaluation's {} requests are used up",
                grant.max_requests
            )));
        }
        self.requests_left -= 1;
        if !grant.hosts.iter().any(|rule| rule.allows(&destination)) {
            return Err(refused(format!(
                "{} {}:{} is not in the allowlist",
                destination.method, destination.host, destination.port
            )));
        }
        Ok(Admitted {
            grant,
            server_name: host_text.to_string(),
            destination,
            https,
            deadline: self.deadline,
            bytes_left: self.bytes_left.clone(),
        })
    }
}

/// A request the grant lets through, and what sending it needs.
struct Admitted {
    grant: Arc<Network>,
    destination: Destination,
    /// The host as the URL gave it, for TLS.
    server_name: String,
    https: bool,
    deadline: Instant,
    bytes_left: Arc<AtomicU64>,
}

/// The error the guest sees as `PermissionError`, naming `why`.
fn refused(why: String) -> HttpError {
    HttpError::InternalError(Some(format!("refused: {why}")))
}

type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for NetworkCalls {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        drop(fut);
        let admitted = self.admit(&request);
        let Some(runtime) = runtime() else {
            let why = "the host could not start its network runtime".to_string();
            return Box::new(async move { Sent::Err(HttpError::InternalError(Some(why))) });
        };
        let task =
            AbortOnDrop(runtime.spawn(async move { send(admitted?, request, options).await }));
        Box::new(async move {
            let mut task = task;
            (&mut task.0)
                .await
                .unwrap_or(Err(HttpError::ConnectionTerminated))
        })
    }
}

/// The runtime requests are sent on: whatever runtime drives the evaluation (one of the
/// embedder's, perhaps without I/O), connections need tokio's I/O driver. None if it
/// could not start.
fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("pyeval-network")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
}

/// A task stopped when the evaluation waiting for it is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A connection, plain or TLS.
trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// Connects, sends `request` and returns its response, all within the evaluation's
/// deadline and the timeouts the guest asked for.
async fn send(
    admitted: Admitted,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Sent {
    let deadline = admitted.deadline;
    let left = || deadline.saturating_duration_since(Instant::now());
    let asked = |pick: fn(&RequestOptions) -> Option<Duration>| options.as_ref().and_then(pick);
    let connect_limit = asked(|o| o.connect_timeout)
        .unwrap_or(admitted.grant.connect_timeout)
        .min(admitted.grant.connect_timeout)
        .min(left());
    let connection = tokio::time::timeout(connect_limit, connect(&admitted))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;

    let masks = put_secrets(&admitted, &mut request);
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let (mut sender, driver) =
        hyper::client::conn::http1::handshake::<_, WasiBody>(TokioIo::new(connection)).await?;
    let driver = tokio::spawn(tokio::time::timeout_at(deadline, driver));

    let first_byte = asked(|o| o.first_byte_timeout)
        .unwrap_or(Duration::MAX)
        .min(left());
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let idle = asked(|o| o.between_bytes_timeout).map(|idle| idle.min(left()));
    let (mut parts, incoming) = response.into_parts();
    if !masks.is_empty() {
        for value in parts.headers.values_mut() {
            let masked = replace_all(value.as_bytes().to_vec(), &masks);
            if let Ok(masked) = HeaderValue::from_bytes(&masked) {
                *value = masked;
            }
        }
    }
    let body = ResponseBody::new(incoming, admitted.bytes_left, idle, deadline, masks);
    let io = async move {
        match driver.await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(HttpError::from(e)),
            Ok(Err(_)) => Err(HttpError::ConnectionReadTimeout),
            Err(_) => Err(HttpError::ConnectionTerminated),
        }
    };
    Ok((
        http::Response::from_parts(parts, body.boxed_unsync()),
        Box::new(io),
    ))
}

/// Resolves the destination, checks every address, and connects to one (with TLS for
/// HTTPS).
async fn connect(admitted: &Admitted) -> Result<Box<dyn Connection>, HttpError> {
    let port = admitted.destination.port;
    let addresses: Vec<IpAddr> = match &admitted.destination.host {
        Host::Address(ip) => vec![*ip],
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|e| HttpError::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            })?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err(HttpError::DestinationNotFound);
    }
    // Every address is checked, not only the one used: a name must not lead anywhere
    // special, whichever answer a later lookup would pick.
    for ip in &addresses {
        let allowed = admitted.grant.addresses.iter().any(|r| r.contains(*ip));
        if let (Some(why), false) = (special_range(*ip), allowed) {
            return Err(refused(match &admitted.destination.host {
                Host::Address(_) => format!("{ip} is {why}"),
                Host::Name(name) => format!("{name} resolves to {ip}, {why}"),
            }));
        }
    }
    let mut last = None;
    let mut tcp = None;
    for ip in addresses {
        match TcpStream::connect(SocketAddr::new(ip, port)).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = match (tcp, last) {
        (Some(tcp), _) => tcp,
        (None, Some(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(HttpError::ConnectionRefused)
        }
        (None, e) => {
            return Err(HttpError::Connect(
                e.unwrap_or_else(|| std::io::Error::other("no address")),
            ))
        }
    };
    let _ = tcp.set_nodelay(true);
    if !admitted.https {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(admitted.server_name.clone())
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let config = tls_config(&admitted.grant.ca_certificates)?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| HttpError::InternalError(Some(format!("tls: {e}"))))?;
    Ok(Box::new(tls))
}

/// Puts the value of each secret whose placeholder is in a header into it, when the
/// request goes to one of the secret's hosts; returns what the response must mask.
fn put_secrets(admitted: &Admitted, request: &mut http::Request<WasiBody>) -> Masks {
    let mut masks = Masks::new();
    for secret in &admitted.grant.secrets {
        if !secret.goes_to(&admitted.destination) {
            continue;
        }
        let placeholder = secret.placeholder().into_bytes();
        let value = secret.value().as_bytes().to_vec();
        let pair = vec![(placeholder.clone(), value.clone())];
        let mut used = false;
        for header in request.headers_mut().values_mut() {
            let bytes = header.as_bytes();
            if bytes
                .windows(placeholder.len())
                .any(|w| w == &placeholder[..])
            {
                if let Ok(filled) = HeaderValue::from_bytes(&replace_all(bytes.to_vec(), &pair)) {
                    *header = filled;
                    used = true;
                }
            }
        }
        if used {
            masks.push((value, placeholder));
        }
    }
    masks
}

/// The TLS settings: the public roots (webpki-roots, Mozilla's list) and `extra` (DER).
fn tls_config(extra: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, HttpError> {
    static PUBLIC: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let build = |extra: &[Vec<u8>]| -> Result<Arc<rustls::ClientConfig>, HttpError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in extra {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|_| HttpError::TlsCertificateError)?;
        }
        // ring: the provider already in the tree (aws-lc-rs, with post-quantum key
        // exchange, is far heavier to build).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| HttpError::TlsProtocolError)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    };
    if extra.is_empty() {
        if let Some(config) = PUBLIC.get() {
            return Ok(config.clone());
        }
        let config = build(extra)?;
        return Ok(PUBLIC.get_or_init(|| config).clone());
    }
    build(extra)
}
