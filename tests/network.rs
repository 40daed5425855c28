//! Network egress against real servers on 127.0.0.1 (HTTP, and HTTPS with a test CA),
//! which the tests allow explicitly: loopback is refused otherwise.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::evaluator;
use pyeval::network::Network;
use pyeval::{EvalError, Evaluator, Grants, Limits, Outcome, Stopped};

/// A request a test server received.
#[derive(Debug, Clone)]
struct Seen {
    /// `METHOD /path?query`.
    request: String,
    headers: Vec<(String, String)>,
}

/// A server on 127.0.0.1 answering by path:
/// `/hello`: `hello`; `/echo`: the request's method, path, headers and body as text;
/// `/redirect?to=URL`: a 302 to URL; `/big?n=N`: N bytes; `/trickle`: a byte every 100 ms;
/// anything else: 404.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, tls) = (log.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        Some(config) => {
                            let connection = rustls::ServerConnection::new(config).unwrap();
                            serve(rustls::StreamOwned::new(connection, stream), &log);
                        }
                        None => serve(stream, &log),
                    }
                });
            }
        });
        Server { addr, seen }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve<S: Read + Write>(stream: S, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        let (name, value) = header.trim().split_once(':').unwrap_or((header.trim(), ""));
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    log.lock().unwrap().push(Seen {
        request: format!("{method} {path}"),
        headers: headers.clone(),
    });
    let stream = reader.get_mut();
    let (route, query) = path.split_once('?').unwrap_or((&path, ""));
    let respond = |stream: &mut S, status: &str, extra: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let _ = stream.flush();
    };
    match route {
        "/hello" => respond(stream, "200 OK", "", b"hello"),
        "/echo" => {
            let mut text = format!("{method} {path}\n");
            for (name, value) in &headers {
                text.push_str(&format!("{name}: {value}\n"));
            }
            text.push_str(&String::from_utf8_lossy(&body));
            let extra = headers
                .iter()
                .find(|(n, _)| n == "authorization")
                .map(|(_, v)| format!("X-Echo-Authorization: {v}\r\n"))
                .unwrap_or_default();
            respond(stream, "200 OK", &extra, text.as_bytes());
        }
        "/redirect" => {
            let to = query.strip_prefix("to=").unwrap_or("/hello");
            respond(stream, "302 Found", &format!("Location: {to}\r\n"), b"");
        }
        "/big" => {
            let n: usize = query
                .strip_prefix("n=")
                .and_then(|n| n.parse().ok())
                .unwrap();
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = n;
            while left > 0 {
                let now = left.min(chunk.len());
                if stream.write_all(&chunk[..now]).is_err() {
                    return;
                }
                left -= now;
            }
            let _ = stream.flush();
        }
        "/trickle" => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            for _ in 0..1000 {
                if stream
                    .write_all(b"x")
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        _ => respond(stream, "404 Not Found", "", b"no such page"),
    }
}

/// A grant for `rules`, with loopback reachable (the servers are on 127.0.0.1).
fn loopback(rules: &[String]) -> Network {
    let mut network = Network::new().allow_addresses("127.0.0.0/8".parse().unwrap());
    for rule in rules {
        network = network.allow_host(rule.parse().unwrap());
    }
    network
}

fn run(code: &str, network: Network) -> Outcome {
    let grants = Grants::new().with_network(network);
    evaluator()
        .eval_with(code, &Limits::default(), &grants)
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

/// The stdout of `code`, which must not fail.
fn stdout(code: &str, network: Network) -> String {
    let outcome = run(code, network);
    assert!(outcome.error.is_none(), "{code}: {:?}", outcome.error);
    outcome.stdout
}

/// The `type: message` of the exception `code` raised.
fn raised(code: &str, network: Network) -> String {
    let outcome = run(code, network);
    let error = outcome
        .error
        .unwrap_or_else(|| panic!("{code} raised nothing: {}", outcome.stdout));
    format!("{}: {}", error.type_name, error.message)
}

#[test]
fn urllib_and_http_client_reach_an_allowed_host() {
    let server = Server::start(None);
    let port = server.port();
    let network = loopback(&[format!("127.0.0.1:{port}")]);
    let code = format!(
        r#"
import urllib.request, http.client
with urllib.request.urlopen("http://127.0.0.1:{port}/hello") as r:
    print(r.status, r.read())
c = http.client.HTTPConnection("127.0.0.1", {port})
c.request("POST", "/echo", body=b"payload", headers={{"X-Test": "1"}})
r = c.getresponse()
body = r.read().decode()
print(r.status, body.splitlines()[0], "x-test: 1" in body, body.endswith("payload"))
c.request("HEAD", "/hello")
r = c.getresponse()
print(r.status, r.getheader("Content-Length"), r.read())
"#
    );
    assert_eq!(
        stdout(&code, network),
        "200 b'hello'\n200 POST /echo True True\n200 5 b''\n"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let host = &seen[0].headers.iter().find(|(n, _)| n == "host").unwrap().1;
    assert_eq!(host, &format!("127.0.0.1:{port}"));
}

#[test]
fn nothing_is_reachable_without_a_grant() {
    let server = Server::start(None);
    let code = format!(
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{}/hello')",
        server.port()
    );
    let outcome = evaluator().eval(&code, &Limits::default()).unwrap();
    let error = outcome.error.unwrap();
    assert_eq!(error.type_name, "urllib.error.URLError");
    assert!(
        error.message.contains("no network is granted"),
        "{}",
        error.message
    );
    assert!(
        error.traceback.contains("PermissionError"),
        "{}",
        error.traceback
    );
    assert!(server.seen().is_empty());
}

#[test]
fn hosts_ports_and_methods_outside_the_allowlist_are_refused() {
    let server = Server::start(None);
    let port = server.port();
    let get = |url: &str, method: &str| {
        format!(
            "import urllib.request\nurllib.request.urlopen(urllib.request.Request('{url}', method='{method}'))"
        )
    };
    let url = format!("http://127.0.0.1:{port}/hello");
    // The host, but another port; the port, but another method.
    let error = raised(&get(&url, "GET"), loopback(&["127.0.0.1:1".into()]));
    assert!(
        error.contains(&format!("GET 127.0.0.1:{port} is not in the allowlist")),
        "{error}"
    );
    let read_only = loopback(&[format!("GET,HEAD 127.0.0.1:{port}")]);
    assert!(stdout(
        &format!("{}\nprint('ok')", get(&url, "HEAD")),
        read_only.clone()
    )
    .contains("ok"));
    let error = raised(&get(&url, "DELETE"), read_only);
    assert!(error.contains("DELETE 127.0.0.1"), "{error}");
    // A wildcard for names does not let an address through.
    let error = raised(&get(&url, "GET"), loopback(&["*.example.com:*".into()]));
    assert!(error.contains("not in the allowlist"), "{error}");
    let seen: Vec<String> = server.seen().into_iter().map(|s| s.request).collect();
    assert_eq!(seen, ["HEAD /hello"], "only the HEAD went out");
}

#[test]
fn special_addresses_are_refused_in_every_form_and_behind_names() {
    let server = Server::start(None);
    let port = server.port();
    // Every host allowed, but no special address.
    let any = || Network::new().allow_host(format!("*:{port}").parse().unwrap());
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "localhost",
    ] {
        let code =
            format!("import urllib.request\nurllib.request.urlopen('http://{host}:{port}/hello')");
        let error = raised(&code, any());
        assert!(error.contains("loopback address"), "{host}: {error}");
        if host == "localhost" {
            assert!(error.contains("localhost resolves to"), "{error}");
        }
    }
    for (host, why) in [
        ("169.254.169.254", "cloud metadata"),
        ("10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "carrier-grade NAT"),
    ] {
        let code =
            format!("import urllib.request\nurllib.request.urlopen('http://{host}:{port}/')");
        let error = raised(&code, any());
        assert!(error.contains(why), "{host}: {error}");
    }
    assert!(server.seen().is_empty());
    // Named explicitly, loopback is reachable in its numeric forms too.
    let code = format!(
        "import urllib.request\nprint(urllib.request.urlopen('http://0x7f.1:{port}/hello').read())"
    );
    let allowed = any().allow_addresses("127.0.0.1".parse().unwrap());
    assert_eq!(stdout(&code, allowed), "b'hello'\n");
}

#[test]
fn a_redirect_to_a_refused_host_is_refused() {
    let server = Server::start(None);
    let port = server.port();
    let code = format!(
        r#"
import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:{port}/redirect?to=/hello").read())
urllib.request.urlopen("http://127.0.0.1:{port}/redirect?to=http://169.254.169.254/latest/")
"#
    );
    let outcome = run(&code, loopback(&[format!("127.0.0.1:{port}"), "*".into()]));
    assert_eq!(outcome.stdout, "b'hello'\n");
    let error = outcome.error.expect("the second redirect is refused");
    assert!(
        error
            .message
            .contains("169.254.169.254 is a cloud metadata address"),
        "{}",
        error.message
    );
}

#[test]
fn responses_and_requests_are_bounded_per_evaluation() {
    let server = Server::start(None);
    let port = server.port();
    let mut network = loopback(&[format!("127.0.0.1:{port}")]);
    network.max_response_bytes = 1 << 20;
    network.max_requests = 3;
    let code = format!(
        r#"
import urllib.request
base = "http://127.0.0.1:{port}"
print(len(urllib.request.urlopen(base + "/big?n=600000").read()))
try:
    urllib.request.urlopen(base + "/big?n=50000000").read()
except Exception as e:
    print("big:", type(e).__name__)
print(urllib.request.urlopen(base + "/hello").read())
try:
    urllib.request.urlopen(base + "/hello")
except Exception as e:
    print("fourth:", e)
"#
    );
    let out = stdout(&code, network.clone());
    assert!(out.starts_with("600000\nbig: "), "{out}");
    assert!(out.contains("b'hello'\n"), "{out}");
    assert!(out.contains("fourth: <urlopen error network access refused: the evaluation's 3 requests are used up>"), "{out}");
    // The next evaluation has its own requests and bytes.
    let again = format!(
        "import urllib.request\nprint(len(urllib.request.urlopen('http://127.0.0.1:{port}/big?n=900000').read()))"
    );
    assert_eq!(stdout(&again, network), "900000\n");
}

#[test]
fn a_trickling_server_meets_the_timeout_or_the_deadline() {
    let server = Server::start(None);
    let port = server.port();
    let network = loopback(&[format!("127.0.0.1:{port}")]);
    let url = format!("http://127.0.0.1:{port}/trickle");
    // The evaluation's deadline stops a read that would take 100 s.
    let limits = Limits::default().with_wall_time(Duration::from_secs(2));
    let code = format!("import urllib.request\nurllib.request.urlopen('{url}').read()");
    let started = std::time::Instant::now();
    let grants = Grants::new().with_network(network.clone());
    match evaluator().eval_with(&code, &limits, &grants) {
        Err(EvalError::Stopped(Stopped::Timeout { .. })) => {}
        Ok(outcome) => {
            let error = outcome.error.expect("the read cannot finish");
            assert!(error.type_name.contains("Timeout"), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // A socket timeout shorter than the gaps between bytes ends it as TimeoutError.
    let code = format!(
        "import urllib.request\ntry:\n    urllib.request.urlopen('{url}', timeout=0.05).read()\nexcept Exception as e:\n    print(type(getattr(e, 'reason', e)).__name__)"
    );
    let started = std::time::Instant::now();
    assert_eq!(stdout(&code, network), "TimeoutError\n");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn https_is_verified_by_the_host() {
    let (ca_pem, config) = test_pki();
    let server = Server::start(Some(config));
    let port = server.port();
    let code = format!(
        r#"
import urllib.request, ssl
r = urllib.request.urlopen("https://localhost:{port}/hello")
print(r.status, r.read())
print(ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED)
"#
    );
    let trusting = loopback(&[format!("localhost:{port}")])
        .trust_pem(ca_pem.as_bytes())
        .unwrap();
    assert_eq!(stdout(&code, trusting), "200 b'hello'\nTrue\n");
    // Without the CA the certificate is not trusted, whatever the guest's context says.
    let unverified = format!(
        "import urllib.request, ssl\nurllib.request.urlopen('https://localhost:{port}/hello', context=ssl._create_unverified_context())"
    );
    let error = raised(&unverified, loopback(&[format!("localhost:{port}")]));
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

#[test]
fn secrets_reach_their_hosts_only_and_never_the_guest() {
    let server = Server::start(None);
    let port = server.port();
    let other = Server::start(None);
    let value = "s3cr3t-value-123";
    let network = loopback(&[
        format!("127.0.0.1:{port}"),
        format!("localhost:{}", other.port()),
    ])
    .with_secret(
        format!("API_TOKEN={value}@127.0.0.1:{port}")
            .parse()
            .unwrap(),
    );
    let code = format!(
        r#"
import os, urllib.request
token = os.environ["API_TOKEN"]
print(token)
req = urllib.request.Request("http://127.0.0.1:{port}/echo", headers={{"Authorization": "Bearer " + token}})
r = urllib.request.urlopen(req)
body = r.read().decode()
print(r.headers["X-Echo-Authorization"])
print([line for line in body.splitlines() if line.startswith("authorization")])
req = urllib.request.Request("http://localhost:{other}/echo", headers={{"Authorization": "Bearer " + token}})
urllib.request.urlopen(req).read()
"#,
        other = other.port()
    );
    let outcome = run(&code, network);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        outcome.stdout,
        "pyeval-secret:API_TOKEN\nBearer pyeval-secret:API_TOKEN\n['authorization: Bearer pyeval-secret:API_TOKEN']\n"
    );
    assert!(!format!("{outcome:?}").contains(value));
    let auth = |seen: Vec<Seen>| {
        seen.iter()
            .flat_map(|s| s.headers.clone())
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v)
    };
    assert_eq!(auth(server.seen()), Some(format!("Bearer {value}")));
    assert_eq!(
        auth(other.seen()),
        Some("Bearer pyeval-secret:API_TOKEN".to_string())
    );
}

#[test]
fn a_failed_connection_names_where_and_why() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let code = format!(
        "import http.client\nhttp.client.HTTPConnection('127.0.0.1', {port}).request('GET', '/')"
    );
    let error = raised(&code, loopback(&[format!("127.0.0.1:{port}")]));
    assert_eq!(
        error,
        format!("ConnectionRefusedError: 127.0.0.1:{port}: connection refused")
    );
}

#[test]
fn a_sessions_heap_never_holds_a_secret() {
    let server = Server::start(None);
    let port = server.port();
    let value = "pl41n-s3cret-for-the-heap";
    let network = loopback(&[format!("127.0.0.1:{port}")])
        .with_secret(format!("KEY={value}@127.0.0.1:{port}").parse().unwrap());
    let grants = Grants::new().with_network(network);
    let mut session = evaluator()
        .session_with(&Limits::default(), &grants)
        .unwrap();
    let sent = session
        .eval(&format!(
            "import os, urllib.request\n\
             kept = urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:{port}/echo',\
             headers={{'X-Key': os.environ['KEY']}})).read()"
        ))
        .unwrap();
    assert!(sent.error.is_none(), "{:?}", sent.error);
    // Every object the interpreter holds, and what each refers to, as text and bytes (the
    // value looked for is made at run time, and skipped).
    let reversed: String = value.chars().rev().collect();
    let scan = format!(
        "import gc\n\
         needle = {reversed:?}[::-1]\n\
         found = 0\n\
         for obj in gc.get_objects():\n\
         \x20   for item in [obj, *gc.get_referents(obj)]:\n\
         \x20       if item is needle or not isinstance(item, (str, bytes, bytearray)):\n\
         \x20           continue\n\
         \x20       found += needle in (item if isinstance(item, str) else item.decode('latin-1'))\n\
         (found, b'pyeval-secret:KEY' in kept)"
    );
    let scanned = session.eval(&scan).unwrap();
    assert_eq!(scanned.value.as_deref(), Some("(0, True)"), "{scanned:?}");
    let seen = server.seen();
    assert!(seen[0]
        .headers
        .contains(&("x-key".to_string(), value.to_string())));
}

/// The sci component's evaluator, which carries requests and httpx.
fn sci() -> &'static Evaluator {
    static EVALUATOR: OnceLock<Evaluator> = OnceLock::new();
    EVALUATOR.get_or_init(|| {
        Evaluator::builder()
            .component_file(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/pyeval-sci.wasm"
            ))
            .build()
            .expect("the sci component loads (`just build-sci`)")
    })
}

#[test]
fn requests_and_httpx_reach_allowed_hosts_over_http_and_https() {
    let (ca_pem, config) = test_pki();
    let plain = Server::start(None);
    let tls = Server::start(Some(config));
    let (http_port, https_port) = (plain.port(), tls.port());
    let network = loopback(&[
        format!("127.0.0.1:{http_port}"),
        format!("localhost:{https_port}"),
    ])
    .trust_pem(ca_pem.as_bytes())
    .unwrap()
    .with_secret(
        format!("TOKEN=v4lue@localhost:{https_port}")
            .parse()
            .unwrap(),
    );
    let code = format!(
        r#"
import asyncio, os, requests, httpx
plain, tls = "http://127.0.0.1:{http_port}", "https://localhost:{https_port}"
r = requests.get(plain + "/hello")
print("requests", r.status_code, r.text)
r = requests.post(tls + "/echo", json={{"a": 1}}, headers={{"Authorization": os.environ["TOKEN"]}})
print("requests tls", r.status_code, r.text.splitlines()[0], r.headers["X-Echo-Authorization"])
print("httpx", httpx.get(plain + "/hello").text, httpx.get(tls + "/hello").text)
with httpx.Client() as client:
    print("client", client.get(tls + "/redirect?to=/hello", follow_redirects=True).text)
async def main():
    async with httpx.AsyncClient() as client:
        replies = await asyncio.gather(client.get(plain + "/hello"), client.get(tls + "/hello"))
        return [r.text for r in replies]
print("async", asyncio.run(main()))
for call in (lambda: requests.get("http://localhost:{http_port}/hello"),
             lambda: httpx.get("http://10.0.0.1/")):
    try:
        call()
    except Exception as e:
        print(type(e).__name__, "refused" in str(e))
"#
    );
    let grants = Grants::new().with_network(network);
    let outcome = sci().eval_with(&code, &Limits::default(), &grants).unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        outcome.stdout,
        "requests 200 hello
\
         requests tls 200 POST /echo pyeval-secret:TOKEN
\
         httpx hello hello
\
         client hello
\
         async ['hello', 'hello']
\
         ConnectionError True
\
         ReadError True
"
    );
    let seen = tls.seen();
    let auth = seen[0].headers.iter().find(|(n, _)| n == "authorization");
    assert_eq!(auth.map(|(_, v)| v.as_str()), Some("v4lue"));
}

/// A test CA (its certificate as PEM) and a server configuration whose certificate, for
/// `localhost` and 127.0.0.1, it signed.
fn test_pki() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pyeval test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), Arc::new(config))
}

#[test]
fn a_grant_of_every_host_opens_no_raw_socket() {
    let server = Server::start(None);
    let everything = Network::new()
        .allow_host("*:*".parse().unwrap())
        .allow_addresses("0.0.0.0/0".parse().unwrap())
        .allow_addresses("::/0".parse().unwrap());
    let code = format!(
        "import socket\nsocket.create_connection(('127.0.0.1', {}), timeout=1)",
        server.port()
    );
    let error = raised(&code, everything);
    assert!(
        error.starts_with("AttributeError") || error.starts_with("OSError"),
        "{error}"
    );
    assert!(server.seen().is_empty());
}
