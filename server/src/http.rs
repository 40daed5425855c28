//! The HTTP/JSON API.
//!
//! | route | |
//! |---|---|
//! | `POST /v1/eval` | `{code, limits?, env?, argv?, stdin?, files?, tools?, client_tools?, network?}` -> the outcome |
//! | `POST /v1/sessions` | `{limits?, env?, argv?, stdin?, files?, tools?, client_tools?, network?, dump?}` (or no body, or a dump as `application/octet-stream`) -> `201 {"id"}` |
//! | `GET /v1/sessions/{id}/dump` | the session's state as bytes (`application/octet-stream`), which `POST /v1/sessions` restores |
//! | `POST /v1/resume` | `{suspension, result? or error?, limits?, env?, argv?, stdin?, tools?, client_tools?, network?}` -> the outcome of the suspended evaluation, its session in `Location` |
//! | `POST /v1/sessions/{id}/eval` | `{code}` -> the outcome |
//! | `DELETE /v1/sessions/{id}` | `204` |
//! | `PUT /v1/sessions/{id}/files/{path}` | the body becomes that file before the next evaluation -> `204` |
//! | `GET /v1/sessions/{id}/files/{path}` | the file's bytes, with its media type |
//! | `GET /v1/tools` | the configured tools and their stubs |
//! | `POST /v1/calls/{id}` | `{result}` or `{error}`: a client tool's answer -> `204` |
//!
//! An evaluation asked for with `Accept: text/event-stream` answers with server-sent
//! events instead: output as it is written, calls of the client's tools, then the outcome
//! (see `events`).
//! | `GET /healthz`, `GET /metrics` | liveness; Prometheus text |
//!
//! A run that produced no outcome is `{"error": {"kind", "message"}}` with a status per
//! kind (see `wire`); a full pool answers 503 with `Retry-After` at once, a busy session
//! 409. Bodies must be JSON; requests from web pages (an `Origin`) and, without a token,
//! for hosts that are not loopback names are refused (403).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use pyeval::{EvalError, Evaluator, Outcome};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client_tools::{self, Answer, Calls};
use crate::events;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::response::BoundedJson;
use crate::session_store::SessionStore;
use crate::sessions::{Refused, Sessions};
use crate::wire::{
    grants, EvalRequest, Failure, NetworkChoice, SessionEvalRequest, SessionRequest,
};

/// Everything a request handler needs.
struct Service {
    evaluator: Evaluator,
    policy: Policy,
    sessions: Arc<Sessions>,
    metrics: Metrics,
    /// The bearer token every request but `/healthz` must carry, if any.
    token: Option<String>,
    /// KiB of response bodies held at once, sent or waiting for slow clients.
    responses: Arc<Semaphore>,
    /// Calls of clients' tools waiting for their answers.
    calls: Arc<Calls>,
    /// Where sessions are kept beside memory, if anywhere (`--session-store`).
    store: Option<SessionStore>,
}

/// Serves the API on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    evaluator: Evaluator,
    policy: Policy,
    token: Option<String>,
    store: Option<SessionStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = policy.connections;
    let sessions = Arc::new(Sessions::new(
        policy.session_cap(evaluator.max_instances()),
        policy.session_idle,
    ));
    let service = Arc::new(Service {
        responses: Arc::new(Semaphore::new(policy.response_memory >> 10)),
        sessions,
        evaluator,
        metrics: Metrics::default(),
        token,
        policy,
        calls: Arc::default(),
        store,
    });
    let sweeper = service.sessions.sweeper();
    let app = router(service);
    let served = crate::connections::serve(listener, app, connections, shutdown).await;
    sweeper.abort();
    served
}

fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/v1/tools", get(tools))
        .route("/v1/eval", post(eval))
        .route("/v1/sessions", post(open_session))
        .route("/v1/sessions/{id}/eval", post(eval_in_session))
        .route("/v1/sessions/{id}", delete(close_session))
        .route("/v1/sessions/{id}/dump", get(dump_session))
        .route("/v1/resume", post(resume))
        .route(
            "/v1/sessions/{id}/files/{*path}",
            get(read_session_file).put(put_session_file),
        )
        .route("/v1/calls/{id}", post(answer_call))
        .fallback(|| async { Failure::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(middleware::from_fn_with_state(service.clone(), authorize))
        .layer(middleware::from_fn_with_state(
            service.clone(),
            not_from_browsers,
        ))
        .with_state(service)
}

/// Refuses what a web page could make a browser send: a request naming an `Origin` (a
/// page's script, or a form), and, on a server without a token, one whose `Host` is not a
/// loopback name (a page that rebinds its own host name to 127.0.0.1).
async fn not_from_browsers(
    State(service): State<Arc<Service>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if headers.contains_key(header::ORIGIN) {
        return Failure::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "requests from web pages (with an Origin header) are refused",
        )
        .into_response();
    }
    if service.token.is_none() && !loopback_host(headers) {
        return Failure::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "this server has no token, so it answers only requests for a loopback host \
             (Host: localhost, 127.0.0.1 or [::1])",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether the `Host` header names a loopback address (any port).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn authorize(State(service): State<Arc<Service>>, request: Request, next: Next) -> Response {
    if let Some(token) = &service.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let allowed = request.uri().path() == "/healthz"
            || given.is_some_and(|given| same(given.as_bytes(), token.as_bytes()));
        if !allowed {
            let mut response = Failure::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required (Authorization: Bearer ...)",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so timing does not tell how much of
/// a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A request body, read whole within the policy's size and body timeout (however it is
/// trickled). Its bytes hold their share of the memory responses hold (see
/// `response`) until the request is answered: a body of declared length up to the limit
/// with files, one of unknown length up to the limit without.
struct Body {
    bytes: Bytes,
    _memory: OwnedSemaphorePermit,
}

/// A [`Body`] that is JSON (sent as `application/json`), or empty.
struct JsonBody(Body);

/// A [`Body`] that may be a session's dump (`POST /v1/sessions`): a declared length may be
/// as long as a dump can be.
struct SessionBody(Body);

impl Body {
    async fn read(request: Request, service: &Arc<Service>, dump: bool) -> Result<Self, Failure> {
        let policy = &service.policy;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let refuse = || {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than this server accepts",
            )
        };
        let limit = match declared {
            Some(length) if length > declared_limit(policy, dump) => return Err(refuse()),
            Some(length) => length,
            None => policy.body_limit(),
        };
        let kib = u32::try_from(limit.div_ceil(1024)).unwrap_or(u32::MAX);
        let memory = service
            .responses
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| {
                Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_busy",
                    "requests and responses in flight hold all the memory this server gives \
                     them; retry shortly",
                )
                .retry_after(1)
            })?;
        let read = axum::body::to_bytes(request.into_body(), limit);
        let bytes = match tokio::time::timeout(policy.body_timeout, read).await {
            Err(_) => {
                return Err(Failure::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_unread",
                    format!(
                        "the request body did not arrive within {:?}",
                        policy.body_timeout
                    ),
                ))
            }
            Ok(Err(error)) if too_large(&error) => return Err(refuse()),
            Ok(Err(error)) => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "body_unread",
                    format!("the request body could not be read: {error}"),
                ))
            }
            Ok(Ok(body)) => body,
        };
        Ok(Body {
            bytes,
            _memory: memory,
        })
    }
}

impl FromRequest<Arc<Service>> for Body {
    type Rejection = Failure;

    async fn from_request(request: Request, service: &Arc<Service>) -> Result<Self, Failure> {
        Body::read(request, service, false).await
    }
}

impl FromRequest<Arc<Service>> for SessionBody {
    type Rejection = Failure;

    async fn from_request(request: Request, service: &Arc<Service>) -> Result<Self, Failure> {
        Body::read(request, service, true).await.map(SessionBody)
    }
}

/// The largest declared body accepted: with files, or (`dump`) with a session's dump.
fn declared_limit(policy: &Policy, dump: bool) -> usize {
    if dump {
        policy.body_limit_with_dump()
    } else {
        policy.body_limit_with_files()
    }
}

/// Whether `headers` say the body is of media type `media`.
fn body_is(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|given| given.trim().eq_ignore_ascii_case(media))
}

/// The media type of a session's dump.
const DUMP_MEDIA_TYPE: &str = "application/octet-stream";

impl FromRequest<Arc<Service>> for JsonBody {
    type Rejection = Failure;

    async fn from_request(request: Request, service: &Arc<Service>) -> Result<Self, Failure> {
        let json = body_is(request.headers(), "application/json");
        let body = Body::read(request, service, false).await?;
        if !body.bytes.is_empty() && !json {
            return Err(Failure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        Ok(JsonBody(body))
    }
}

fn too_large(error: &axum::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

impl JsonBody {
    /// The body parsed; no body at all reads as `empty`.
    fn parse<T: DeserializeOwned>(&self, empty: Option<T>) -> Result<T, Failure> {
        match (self.0.bytes.is_empty(), empty) {
            (true, Some(empty)) => Ok(empty),
            _ => serde_json::from_slice(&self.0.bytes).map_err(|e| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("bad JSON body: {e}"),
                )
            }),
        }
    }
}

impl Service {
    /// A request's grants: `given` (its environment, arguments, stdin and files), the
    /// configured tools it names (by server or by tool), or all of them, and its own tools.
    /// A request narrows what the operator configured, never widens it (its own tools
    /// call only itself).
    fn grants(
        &self,
        mut grants: pyeval::Grants,
        (tools, declared): (Option<Vec<String>>, Vec<client_tools::Declared>),
    ) -> Result<pyeval::Grants, Failure> {
        let own = client_tools::tools(declared, &self.policy.tools, &self.calls)?;
        let configured = &self.policy.tools;
        match tools {
            None => grants.tools.extend(configured.iter().cloned()),
            Some(asked) => {
                for name in &asked {
                    let known = configured.iter().any(|t| names(t, name));
                    if !known {
                        return Err(Failure::new(
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            format!("no configured tool or server is named {name:?}"),
                        ));
                    }
                }
                grants.tools.extend(
                    configured
                        .iter()
                        .filter(|t| asked.iter().any(|n| names(t, n)))
                        .cloned(),
                );
            }
        }
        grants.tools.extend(own);
        Ok(grants)
    }

    /// The network a request gets: the operator's, all of it, none, or the rules it names
    /// (refused if the operator granted no such rule).
    fn network(&self, wanted: NetworkChoice) -> Result<Option<pyeval::network::Network>, Failure> {
        let granted = self.policy.network.clone();
        match wanted {
            NetworkChoice::All(true) => Ok(granted),
            NetworkChoice::All(false) => Ok(None),
            NetworkChoice::Rules(names) => {
                let mut network = granted.unwrap_or_default();
                let kept: Vec<_> = network
                    .hosts
                    .iter()
                    .filter(|rule| names.contains(&rule.to_string()))
                    .cloned()
                    .collect();
                if let Some(unknown) = names
                    .iter()
                    .find(|name| !kept.iter().any(|rule| rule.to_string() == **name))
                {
                    return Err(Failure::new(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("network: the server grants no host rule {unknown:?}"),
                    ));
                }
                network.hosts = kept;
                Ok(Some(network))
            }
        }
    }

    /// The response to an evaluation: the outcome as JSON within the response limits.
    fn answer(&self, result: Result<Outcome, EvalError>) -> Result<Response, Failure> {
        let outcome = result?;
        BoundedJson::new(&outcome, self.policy.max_response_bytes(), &self.responses)
            .map(IntoResponse::into_response)
    }
}

async fn metrics(State(service): State<Arc<Service>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        service.metrics.render(service.sessions.len()),
    )
}

/// Whether a request's `name` names `tool`: the tool itself, or its server (group).
fn names(tool: &pyeval::Tool, name: &str) -> bool {
    tool.name() == name
        || tool
            .name()
            .split_once('.')
            .is_some_and(|(group, _)| group == name)
}

/// The tools every evaluation is granted, and their Python stubs for a model's prompt.
async fn tools(State(service): State<Arc<Service>>) -> Json<serde_json::Value> {
    let tools = &service.policy.tools;
    let listed: Vec<_> = tools
        .iter()
        .map(|tool| {
            json!({
                "name": tool.name(),
                "description": tool.description(),
                "parameters": tool.parameters(),
            })
        })
        .collect();
    Json(json!({"tools": listed, "stubs": pyeval::tool_stubs(tools)}))
}

async fn eval(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, Failure> {
    let request: EvalRequest = body.parse(None)?;
    let streamed = events::wanted(&headers);
    if !streamed && !request.client_tools.is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "client_tools are called over a stream of events: send Accept: text/event-stream",
        ));
    }
    let limits = service.policy.limits_for(&request.limits);
    let tools = (request.tools, request.client_tools);
    let given = grants(request.env, request.argv, request.stdin, request.files)?;
    let mut grants = service.grants(given, tools)?;
    grants.network = service.network(request.network)?;
    let code = request.code;
    if !streamed {
        return service.answer(service.evaluate(&code, &limits, &grants).await);
    }
    grants.live_output = Some(events::live_output());
    let max_bytes = service.policy.max_response_bytes();
    let memory = service.responses.clone();
    Ok(events::stream(
        async move {
            // The body's share of the memory is held until the evaluation ends.
            let _body = body;
            Ok(service.evaluate(&code, &limits, &grants).await)
        },
        max_bytes,
        memory,
    ))
}

impl Service {
    /// A fresh evaluation, counted in the metrics.
    async fn evaluate(
        &self,
        code: &str,
        limits: &pyeval::Limits,
        grants: &pyeval::Grants,
    ) -> Result<Outcome, EvalError> {
        let _running = self.metrics.running();
        let started = Instant::now();
        let result = self.evaluator.eval_async(code, limits, grants).await;
        self.metrics.record(result.as_ref(), started.elapsed());
        result
    }

    /// An evaluation in the session `id`, counted in the metrics.
    async fn evaluate_in(
        &self,
        id: &str,
        code: &str,
        live: Option<pyeval::LiveOutput>,
    ) -> Result<Result<Outcome, EvalError>, Failure> {
        let _running = self.metrics.running();
        let started = Instant::now();
        let result = self
            .on_session(id, true, async |session: &mut pyeval::Session| {
                session.set_live_output(live);
                session.eval_async(code).await
            })
            .await?;
        self.metrics.record(result.as_ref(), started.elapsed());
        Ok(result)
    }

    /// Adds `session` to the registry (and the store, if there is one, with `kept`, the
    /// request that opened it) under a new id.
    async fn register(&self, session: pyeval::Session, kept: &str) -> Result<String, Failure> {
        let id = self
            .sessions
            .open(session)
            .map_err(|refused| refusal(self, "", refused))?;
        if let Some(store) = &self.store {
            let stored = async {
                let dump = self.dump_of(&id).await?;
                store
                    .create(&id, kept, &dump)
                    .await
                    .map_err(store_failure)?;
                self.sessions.set_version(&id, 1);
                Ok::<_, Failure>(())
            };
            if let Err(failure) = stored.await {
                self.sessions.close(&id);
                return Err(failure);
            }
        }
        Ok(id)
    }

    /// The dump of the session `id` in this replica's registry.
    async fn dump_of(&self, id: &str) -> Result<Vec<u8>, Failure> {
        let dump = self
            .sessions
            .with(id, async |session: &mut pyeval::Session| {
                session.dump_async().await
            })
            .await
            .map_err(|refused| refusal(self, id, refused))??;
        Ok(dump)
    }

    /// The limits and grants of a session `request` asks for.
    fn session_parts(
        &self,
        request: SessionRequest,
    ) -> Result<(pyeval::Limits, pyeval::Grants), Failure> {
        let limits = self.policy.limits_for(&request.limits);
        let tools = (request.tools, request.client_tools);
        let mut grants = self.grants(
            grants(request.env, request.argv, request.stdin, request.files)?,
            tools,
        )?;
        grants.network = self.network(request.network)?;
        Ok((limits, grants))
    }

    /// Runs `work` on the session `id`: in memory, or with the session store, under the
    /// session's lease, on this replica's copy made current first, and (when `changes`)
    /// with the session's new state stored after.
    async fn on_session<T>(
        &self,
        id: &str,
        changes: bool,
        work: impl AsyncFnOnce(&mut pyeval::Session) -> Result<T, EvalError>,
    ) -> Result<Result<T, EvalError>, Failure> {
        let refused = |refused| refusal(self, id, refused);
        let Some(store) = &self.store else {
            return self.sessions.with(id, work).await.map_err(refused);
        };
        // Past the longest run a session may have, with room to restore and store it.
        let ttl = 2 * self.policy.limits.wall_time + std::time::Duration::from_secs(1);
        let lease = store
            .lease(id, ttl)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| refused(Refused::Busy))?;
        let result = async {
            let (version, ended) = store
                .version(id)
                .await
                .map_err(store_failure)?
                .ok_or_else(|| refused(Refused::Unknown))?;
            if let Some(reason) = ended {
                return Err(Failure::new(
                    StatusCode::GONE,
                    pyeval::FailureKind::SessionEnded.as_str(),
                    format!("this session has ended ({reason}); start a new one"),
                ));
            }
            if self.sessions.version(id) != Some(version) {
                self.take_over(store, id).await?;
            }
            let result = self.sessions.with(id, work).await.map_err(refused)?;
            match &result {
                Err(EvalError::Stopped(stop)) => {
                    store
                        .end(&lease, &stop.to_string())
                        .await
                        .map_err(store_failure)?;
                }
                Ok(_) if changes => {
                    let dump = self.dump_of(id).await?;
                    if store
                        .save(&lease, version + 1, &dump)
                        .await
                        .map_err(store_failure)?
                    {
                        self.sessions.set_version(id, version + 1);
                    }
                }
                _ => {}
            }
            Ok(result)
        }
        .await;
        // A lease not given back lapses by itself.
        let _ = store.release(lease).await;
        result
    }

    /// Makes this replica's copy of the session `id` the store's: restored from its dump,
    /// with the limits and grants of the request that opened it.
    async fn take_over(&self, store: &SessionStore, id: &str) -> Result<(), Failure> {
        let stored = store
            .load(id)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| refusal(self, id, Refused::Unknown))?;
        let dump = stored
            .dump
            .ok_or_else(|| refusal(self, id, Refused::Unknown))?;
        let request: SessionRequest = serde_json::from_str(&stored.request).map_err(|e| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "session_store",
                format!("the stored session's request is not one: {e}"),
            )
        })?;
        let (limits, grants) = self.session_parts(request)?;
        let session = self
            .evaluator
            .restore_async(&dump, &limits, &grants)
            .await?;
        self.sessions
            .put(id, session, stored.version)
            .map_err(|refused| refusal(self, id, refused))
    }
}

/// The session store could not be reached or failed.
fn store_failure(error: redis::RedisError) -> Failure {
    Failure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "session_store_unavailable",
        format!("the session store failed: {error}"),
    )
    .retry_after(1)
}

async fn open_session(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    SessionBody(body): SessionBody,
) -> Result<Response, Failure> {
    // A dump on its own restores with what a request without a body gets.
    let (request, dump, kept) = if body_is(&headers, DUMP_MEDIA_TYPE) {
        (
            SessionRequest::default(),
            Some(body.bytes.to_vec()),
            "{}".to_owned(),
        )
    } else if body.bytes.is_empty() || body_is(&headers, "application/json") {
        let body = JsonBody(body);
        let request: SessionRequest = body.parse(Some(SessionRequest::default()))?;
        let dump = request.dump.as_deref().map(crate::wire::dump).transpose()?;
        (request, dump, crate::wire::kept_request(&body.0.bytes))
    } else {
        return Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body must be JSON (Content-Type: application/json), or a session's dump \
                 (Content-Type: {DUMP_MEDIA_TYPE})"
            ),
        ));
    };
    let (limits, grants) = service.session_parts(request)?;
    let session = match dump {
        Some(dump) => {
            service
                .evaluator
                .restore_async(&dump, &limits, &grants)
                .await?
        }
        None => service.evaluator.session_with(&limits, &grants)?,
    };
    let id = service.register(session, &kept).await?;
    let location = format!("/v1/sessions/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(json!({ "id": id })),
    )
        .into_response())
}

/// Why a session request was refused, as the client sees it.
fn refusal(service: &Service, id: &str, refused: Refused) -> Failure {
    match refused {
        Refused::Unknown => Failure::new(
            StatusCode::NOT_FOUND,
            "unknown_session",
            format!("no session {id:?}: it was closed, expired, or never opened"),
        ),
        Refused::Busy => Failure::new(
            StatusCode::CONFLICT,
            "session_busy",
            "the session is running another evaluation; send this one when it has finished",
        ),
        Refused::Ended(stop) => EvalError::SessionEnded(stop).into(),
        Refused::Closed => Failure::new(
            StatusCode::GONE,
            "session_closed",
            "the session was closed while this evaluation ran; it was stopped",
        ),
        Refused::Full(max) => Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sessions",
            format!("{max} sessions are open, the most this server keeps; close one"),
        )
        .retry_after(service.sessions.sweep_interval().as_secs().max(1) as u32),
    }
}

async fn eval_in_session(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, Failure> {
    let request: SessionEvalRequest = body.parse(None)?;
    if !events::wanted(&headers) {
        let result = service.evaluate_in(&id, &request.code, None).await?;
        return service.answer(result);
    }
    let max_bytes = service.policy.max_response_bytes();
    let live = Some(events::live_output());
    let memory = service.responses.clone();
    Ok(events::stream(
        async move { service.evaluate_in(&id, &request.code, live).await },
        max_bytes,
        memory,
    ))
}

/// Goes on with a suspended evaluation: its session restored, the suspended call
/// answered; the outcome (or events, streamed), and the session under a new id
/// (`Location`, or a `session` event before the outcome).
async fn resume(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    SessionBody(body): SessionBody,
) -> Result<Response, Failure> {
    if !body_is(&headers, "application/json") {
        return Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    let kept = crate::wire::kept_request(&body.bytes);
    let (suspension, answer, request) = crate::wire::resume_request(&body.bytes)?;
    let streamed = events::wanted(&headers);
    let (limits, mut grants) = service.session_parts(request)?;
    if streamed {
        grants.live_output = Some(events::live_output());
    }
    let run = {
        let service = service.clone();
        async move {
            let _running = service.metrics.running();
            let started = Instant::now();
            let resumed = service
                .evaluator
                .resume_async(&suspension, answer, &limits, &grants)
                .await;
            let outcome = resumed.as_ref().map(|(_, outcome)| outcome);
            service.metrics.record(outcome, started.elapsed());
            Ok::<_, Failure>(match resumed {
                Ok((session, outcome)) => Ok((service.register(session, &kept).await?, outcome)),
                Err(error) => Err(error),
            })
        }
    };
    if !streamed {
        let (id, outcome) = run.await??;
        let mut response = service.answer(Ok(outcome))?;
        let location =
            HeaderValue::from_str(&format!("/v1/sessions/{id}")).expect("an id is a header value");
        response.headers_mut().insert(header::LOCATION, location);
        return Ok(response);
    }
    let max_bytes = service.policy.max_response_bytes();
    let memory = service.responses.clone();
    Ok(events::stream(
        async move {
            Ok(run.await?.map(|(id, outcome)| {
                if let Some(events) = events::current() {
                    events.send("session", json!({ "id": id }).to_string());
                }
                outcome
            }))
        },
        max_bytes,
        memory,
    ))
}

/// A session's state as bytes, for `POST /v1/sessions` to restore.
async fn dump_session(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let dump = service
        .on_session(&id, false, async |session: &mut pyeval::Session| {
            session.dump_async().await
        })
        .await??;
    let body = crate::response::held(dump, &service.responses)?;
    Ok(([(header::CONTENT_TYPE, DUMP_MEDIA_TYPE)], body).into_response())
}

/// A file of a session's working directory, with its media type.
async fn read_session_file(
    State(service): State<Arc<Service>>,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let read = service
        .on_session(&id, false, async |session: &mut pyeval::Session| {
            session.read_file_async(&path).await
        })
        .await??;
    let body = crate::response::held(read, &service.responses)?;
    let media_type = HeaderValue::from_str(&pyeval::media_type(&path))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(([(header::CONTENT_TYPE, media_type)], body).into_response())
}

/// Puts the body as a file in a session's working directory before its next evaluation.
async fn put_session_file(
    State(service): State<Arc<Service>>,
    Path((id, path)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, Failure> {
    let file = pyeval::InputFile::new(path, body.bytes.clone());
    service
        .on_session(&id, true, async |session: &mut pyeval::Session| {
            session.add_files(vec![file])
        })
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// A client's answer to a call of one of its tools.
async fn answer_call(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<StatusCode, Failure> {
    let answer: Answer = body.parse(None)?;
    if service.calls.answer(&id, answer) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure::new(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no call {id:?} waits for an answer: it was answered, given up, or never made"),
        ))
    }
}

async fn close_session(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    let stored = match &service.store {
        Some(store) => store.delete(&id).await.map_err(store_failure)?,
        None => false,
    };
    if service.sessions.close(&id) || stored {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(refusal(&service, &id, Refused::Unknown))
    }
}
