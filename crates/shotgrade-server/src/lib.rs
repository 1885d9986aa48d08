//! # shotgrade-server
//!
//! The HTTP scoring service: `POST /v1/score` (one image, raw body or multipart `file`),
//! `POST /v1/score/batch` (multipart, many files), `GET /v1/models`, `GET /healthz`,
//! `GET /readyz`, `GET /metrics` (Prometheus) and `GET /openapi.json`. Images go through a
//! bounded queue to inference threads that batch them dynamically ([`batcher`]); every error
//! is JSON `{error, kind}` with a fitting status: 413 body too large, 422 undecodable or too
//! large image, 503 queue full (with `Retry-After`), 504 not graded within the request
//! timeout, 401 missing or wrong API key. Every response carries an `x-request-id` (the
//! client's, or a new UUID) that is also on the request's log lines. The server never fetches
//! URLs.

pub mod batcher;
pub mod metrics;
pub mod openapi;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Multipart, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shotgrade::core::BACKGROUND_CLASSES;
use shotgrade::{ErrorKind, GradeOptions, Grader, Row};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use batcher::{BatchSettings, Batcher, Job, SubmitError};
pub use metrics::Metrics;

/// Everything that shapes the service besides the grader.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// When set, every `/v1/*` request needs `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// A scoring request not answered within this time gets 504 (its image is skipped if it
    /// has not reached a worker yet).
    pub request_timeout: Duration,
    pub batch: BatchSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_body_bytes: 20 * 1024 * 1024,
            api_key: None,
            request_timeout: Duration::from_secs(30),
            batch: BatchSettings::default(),
        }
    }
}

/// Shared by every request.
pub struct AppState {
    pub grader: Arc<Grader>,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub settings: ServerSettings,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// Stable machine-readable kind; it decides the HTTP status.
    pub kind: ErrorKind,
    /// The image's name (multipart file name, or `body`) when the error is about one image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The HTTP status of a response failing with `kind` ([`ErrorKind::http_status`]).
fn http_status(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error response: status (from its kind) plus `{error, kind}`.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    fn body_too_large() -> Self {
        ApiError::new(
            ErrorKind::BodyTooLarge,
            "the request body is larger than the server accepts",
        )
    }

    fn timeout(limit: Duration) -> Self {
        ApiError::new(
            ErrorKind::Timeout,
            format!(
                "the image was not graded within {:.1} s: the server is overloaded, retry later",
                limit.as_secs_f64()
            ),
        )
    }

    fn shutting_down() -> Self {
        ApiError::new(ErrorKind::ShuttingDown, "the server is shutting down")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = http_status(self.kind);
        let mut r = (
            status,
            Json(ErrorBody {
                error: self.message,
                kind: self.kind,
                path: None,
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if answered_before_the_body(status) {
            // The upload was not read to its end, so this connection cannot carry another
            // request and hyper closes it; saying so keeps a client's keep-alive pool from
            // sending its next request into the closed connection (the soak test found
            // requests after a 413 failing that way).
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// Statuses the service may answer before it has read the request body: a body over the
/// limit (413), a missing key (401), an unknown route (404), a refused option or a malformed
/// form (400).
fn answered_before_the_body(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNAUTHORIZED
            | StatusCode::NOT_FOUND
            | StatusCode::BAD_REQUEST
    )
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::body_too_large()
        } else {
            ApiError::new(ErrorKind::BadRequest, r.body_text())
        }
    }
}

/// Query parameters of the scoring routes.
#[derive(Debug, Default, Deserialize)]
pub struct ScoreQuery {
    pub scene: Option<String>,
    pub profile: Option<String>,
}

impl ScoreQuery {
    /// The request's options, checked against the grader's scenes and profiles (400 if
    /// unknown) before any image is read.
    fn options(self, state: &AppState) -> Result<GradeOptions, ApiError> {
        let options = GradeOptions {
            scene: self.scene,
            profile: self.profile,
        };
        state
            .grader
            .check_options(&options)
            .map_err(|e| ApiError::new(ErrorKind::Config, e.to_string()))?;
        Ok(options)
    }
}

/// Builds the service's routes over a started batcher.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.settings.max_body_bytes;
    let api = Router::new()
        .route("/v1/score", post(score))
        .route("/v1/score/batch", post(score_batch))
        .route("/v1/models", get(models))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .merge(api)
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(|| async { Json(openapi::spec()) }))
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "no such route") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        // Outermost first: give the request an id, log it in a span carrying the id, and
        // return the id to the client.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The span every log line of a request is in: method, path and request id.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// Counts every response by route, method and status and times it.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // The route pattern, never the raw path: unknown paths share one label value.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = request.method().clone();
    let response = next.run(request).await;
    state.metrics.record_request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics`: Prometheus / OpenMetrics text.
async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Constant-time comparison, so the time a wrong key takes says nothing about the right one.
fn same_key(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        diff |= (given.get(i).copied().unwrap_or(0) ^ e) as usize;
    }
    diff == 0
}

async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(key) = &state.settings.api_key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_key(given.as_bytes(), key.as_bytes()) {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "missing or wrong API key (send Authorization: Bearer <key>)",
            ));
        }
    }
    Ok(next.run(request).await)
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.batcher.saturated() {
        ApiError::new(ErrorKind::Saturated, "the inference queue is full").into_response()
    } else {
        Json(serde_json::json!({"status": "ready", "weights": state.grader.models().provenance.source}))
            .into_response()
    }
}

/// Queues one image and waits for its row until `deadline` (504 after it).
async fn grade_one(
    state: &AppState,
    name: String,
    bytes: Vec<u8>,
    options: GradeOptions,
    deadline: Instant,
) -> Result<Row, ApiError> {
    let (reply, rx) = oneshot::channel();
    state
        .batcher
        .submit(Job {
            name,
            bytes,
            options,
            reply,
        })
        .map_err(|e| match e {
            SubmitError::Full => {
                ApiError::new(ErrorKind::QueueFull, "the server is busy: retry shortly")
            }
            SubmitError::Closed => ApiError::shutting_down(),
        })?;
    wait_for_row(rx, deadline, state.settings.request_timeout).await
}

/// Waits for a worker's answer; dropping the receiver on timeout tells the worker to skip
/// the image.
async fn wait_for_row(
    rx: oneshot::Receiver<Row>,
    deadline: Instant,
    limit: Duration,
) -> Result<Row, ApiError> {
    match tokio::time::timeout_at(deadline.into(), rx).await {
        Ok(Ok(row)) => Ok(row),
        Ok(Err(_)) => Err(ApiError::new(
            ErrorKind::Internal,
            "the inference worker stopped",
        )),
        Err(_) => {
            tracing::warn!("request timed out after {:.1} s", limit.as_secs_f64());
            Err(ApiError::timeout(limit))
        }
    }
}

/// `POST /v1/score`: the image as the raw body, or as the multipart field `file`.
async fn score(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ScoreQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + state.settings.request_timeout;
    let options = query.options(&state)?;
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (name, bytes) = if is_multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))?;
        let mut found = None;
        while let Some(field) = form.next_field().await.map_err(multipart_error)? {
            if field.name() == Some("file") {
                let name = field.file_name().unwrap_or("upload").to_string();
                found = Some((name, field.bytes().await.map_err(multipart_error)?));
                break;
            }
        }
        found.ok_or_else(|| {
            ApiError::new(
                ErrorKind::BadRequest,
                "the multipart body has no field named \"file\"",
            )
        })?
    } else {
        let body = Bytes::from_request(request, &()).await?;
        ("body".to_string(), body)
    };
    let row = grade_one(&state, name, bytes.to_vec(), options, deadline).await?;
    Ok(row_response(row))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::body_too_large()
    } else {
        ApiError::new(ErrorKind::BadRequest, e.body_text())
    }
}

/// A scored row is 200; an image that could not be scored gets its error kind's status
/// ([`ErrorKind::http_status`]: 422 for a file, 400 for a refused setting).
fn row_response(row: Row) -> Response {
    match row {
        Row::Scored(_) => Json(row).into_response(),
        Row::Error(e) => (
            http_status(e.error.kind),
            Json(ErrorBody {
                error: e.error.message,
                kind: e.error.kind,
                path: Some(e.path),
            }),
        )
            .into_response(),
    }
}

/// `POST /v1/score/batch`: every multipart part is an image; one row per part, in order
/// (error rows for parts that could not be scored). The whole request shares one timeout.
async fn score_batch(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ScoreQuery>,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + state.settings.request_timeout;
    let options = query.options(&state)?;
    let mut waiting = Vec::new();
    let mut index = 0usize;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        index += 1;
        let name = field
            .file_name()
            .map(str::to_string)
            .or_else(|| field.name().map(str::to_string))
            .unwrap_or_else(|| format!("part-{index}"));
        let bytes = field.bytes().await.map_err(multipart_error)?;
        let (reply, rx) = oneshot::channel();
        let job = Job {
            name: name.clone(),
            bytes: bytes.to_vec(),
            options: options.clone(),
            reply,
        };
        match state.batcher.submit(job) {
            Ok(()) => waiting.push((name, Some(rx))),
            Err(SubmitError::Full) => waiting.push((name, None)),
            Err(SubmitError::Closed) => return Err(ApiError::shutting_down()),
        }
    }
    let mut rows = Vec::with_capacity(waiting.len());
    for (name, rx) in waiting {
        let row = match rx {
            Some(rx) => match wait_for_row(rx, deadline, state.settings.request_timeout).await {
                Ok(row) => row,
                Err(e) if e.kind == ErrorKind::Internal => Row::error(name, e.kind, e.message),
                Err(e) => return Err(e),
            },
            None => Row::error(
                name,
                ErrorKind::QueueFull,
                "the server is busy: retry this image shortly".into(),
            ),
        };
        rows.push(row);
    }
    Ok(Json(rows).into_response())
}

/// `GET /v1/models`: what the service grades with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ModelsInfo {
    /// shotgrade's version.
    pub version: String,
    pub weights: WeightsInfo,
    /// The background network's classes, in output order.
    pub background_classes: Vec<String>,
    /// Scenes the `scene` query parameter accepts.
    pub scenes: Vec<String>,
    pub default_scene: String,
    /// Profiles the `profile` query parameter accepts.
    pub profiles: Vec<String>,
    /// Square input side of each network, in pixels.
    pub inputs: InputSizes,
}

/// Where the weights came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct WeightsInfo {
    /// `embedded`, a folder, or `random` (untrained).
    pub source: String,
    pub trained: bool,
    /// SHA-256 over the three weights files, hex.
    pub sha256: String,
}

/// Input sides of the three networks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct InputSizes {
    pub background: usize,
    pub position: usize,
    pub experience: usize,
}

async fn models(State(state): State<Arc<AppState>>) -> Json<ModelsInfo> {
    let models = state.grader.models();
    let settings = state.grader.settings();
    Json(ModelsInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        weights: WeightsInfo {
            source: models.provenance.source.clone(),
            trained: models.provenance.trained,
            sha256: models.provenance.sha256.clone(),
        },
        background_classes: BACKGROUND_CLASSES
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        scenes: settings.scoring.scenes.keys().cloned().collect(),
        default_scene: settings.scoring.default_scene.clone(),
        profiles: settings.profiles.names().map(str::to_string).collect(),
        inputs: InputSizes {
            background: models.configs.background.input_size,
            position: models.configs.position.input_size,
            experience: models.configs.experience.input_size,
        },
    })
}

/// Serves until `shutdown` resolves, then stops accepting, finishes in-flight requests and
/// lets the inference workers drain the queue.
pub async fn serve(
    listener: tokio::net::TcpListener,
    grader: Arc<Grader>,
    settings: ServerSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = Arc::new(Metrics::new(
        settings.batch.queue_capacity,
        settings.batch.max_batch,
    ));
    let (batcher, workers) = Batcher::start(grader.clone(), settings.batch, metrics.clone());
    let state = Arc::new(AppState {
        grader,
        batcher,
        metrics,
        settings,
    });
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    drop(state);
    for w in workers {
        let _ = tokio::task::spawn_blocking(move || w.join()).await;
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}
