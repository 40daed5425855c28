//! The HTTP/JSON API.
//!
//! | route | |
//! |---|---|
//! | `POST /v1/eval` | `{code, limits?, env?, argv?, stdin?}` -> the outcome |
//! | `POST /v1/sessions` | `{limits?, env?, argv?, stdin?}` (or no body) -> `201 {"id"}` |
//! | `POST /v1/sessions/{id}/eval` | `{code}` -> the outcome |
//! | `DELETE /v1/sessions/{id}` | `204` |
//! | `GET /healthz`, `GET /metrics` | liveness; Prometheus text |
//!
//! A run that produced no outcome is `{"error": {"kind", "message"}}` with a status per
//! kind (see `wire`); a full pool answers 503 with `Retry-After` at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use pyeval::{Evaluator, Outcome};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::sessions::{Full, Sessions};
use crate::wire::{grants, EvalRequest, Failure, SessionEvalRequest, SessionRequest};

/// Everything a request handler needs.
struct Service {
    evaluator: Evaluator,
    policy: Policy,
    sessions: Sessions,
    metrics: Metrics,
    /// The bearer token every request but `/healthz` must carry, if any.
    token: Option<String>,
}

/// Serves the API on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    evaluator: Evaluator,
    policy: Policy,
    token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = Arc::new(Service {
        sessions: Sessions::new(policy.max_sessions, policy.session_idle),
        evaluator,
        metrics: Metrics::default(),
        token,
        policy,
    });
    let sweeper = tokio::spawn({
        let service = service.clone();
        async move {
            let mut tick = tokio::time::interval(service.sessions.sweep_interval());
            loop {
                tick.tick().await;
                service.sessions.expire();
            }
        }
    });
    let app = router(service);
    // Small responses go out at once, not after a delayed acknowledgement.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    served
}

fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/v1/eval", post(eval))
        .route("/v1/sessions", post(open_session))
        .route("/v1/sessions/{id}/eval", post(eval_in_session))
        .route("/v1/sessions/{id}", delete(close_session))
        .fallback(|| async { Failure::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(service.policy.body_limit()))
        .layer(RequestBodyTimeoutLayer::new(service.policy.body_timeout))
        .layer(middleware::from_fn_with_state(service.clone(), authorize))
        .with_state(service)
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

/// The JSON body of a request; no body at all reads as `empty`.
fn parse<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    empty: Option<T>,
) -> Result<T, Failure> {
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than this server accepts",
            )
        }
        other => Failure::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_unread",
            format!("the request body could not be read: {}", other.body_text()),
        ),
    })?;
    match (body.is_empty(), empty) {
        (true, Some(empty)) => Ok(empty),
        _ => serde_json::from_slice(&body).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("bad JSON body: {e}"),
            )
        }),
    }
}

async fn metrics(State(service): State<Arc<Service>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        service.metrics.render(service.sessions.len()),
    )
}

async fn eval(
    State(service): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Failure> {
    let request: EvalRequest = parse(body, None)?;
    let limits = service.policy.limits_for(&request.limits);
    let grants = grants(request.env, request.argv, request.stdin);
    let _running = service.metrics.running();
    let started = Instant::now();
    let result = service
        .evaluator
        .eval_async(&request.code, &limits, &grants)
        .await;
    service.metrics.record(&result, started.elapsed());
    Ok(Json(result?))
}

async fn open_session(
    State(service): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let request: SessionRequest = parse(body, Some(SessionRequest::default()))?;
    let limits = service.policy.limits_for(&request.limits);
    let session = service
        .evaluator
        .session_with(&limits, &grants(request.env, request.argv, request.stdin))?;
    let id = service.sessions.open(session).map_err(|Full(max)| {
        Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sessions",
            format!("{max} sessions are open, the most this server keeps; close one"),
        )
        .retry_after(service.sessions.sweep_interval().as_secs().max(1) as u32)
    })?;
    let location = format!("/v1/sessions/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(json!({ "id": id })),
    )
        .into_response())
}

fn unknown(id: &str) -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        "unknown_session",
        format!("no session {id:?}: it was closed, expired, or never opened"),
    )
}

async fn eval_in_session(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Outcome>, Failure> {
    let request: SessionEvalRequest = parse(body, None)?;
    let entry = service.sessions.get(&id).ok_or_else(|| unknown(&id))?;
    let mut session = entry.session.lock().await;
    entry.touch();
    let _running = service.metrics.running();
    let started = Instant::now();
    let result = session.eval_async(&request.code).await;
    service.metrics.record(&result, started.elapsed());
    entry.touch();
    Ok(Json(result?))
}

async fn close_session(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    if service.sessions.close(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(&id))
    }
}
