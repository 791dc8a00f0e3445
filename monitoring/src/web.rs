//! The dashboard's HTTP side: the page and its script and style (embedded in the binary),
//! `/metrics`, `/api/snapshot` and the `/api/events` Server-Sent Events stream that pushes
//! an update to every open page after each poll round.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use axum::{Router, middleware};
use futures::stream::{self, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::access;
use crate::dashboard::Dashboard;
use crate::metrics;
use crate::page_safety::{self, MAX_EVENT_STREAMS};
use crate::picture::SnapshotScope;
use crate::snapshot::Snapshot;
use crate::telemetry::BrowserGuard;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// How often an idle event stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    dashboard: Arc<Dashboard>,
    shutdown: CancellationToken,
}

/// The dashboard's routes. Event streams end when `shutdown` is cancelled, so a graceful
/// shutdown does not wait on open pages.
pub(crate) fn router(
    dashboard: Arc<Dashboard>,
    shutdown: CancellationToken,
    trusted: access::Trusted,
    allowed_hosts: page_safety::AllowedHosts,
) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
        .route("/metrics", get(prometheus))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(events))
        .with_state(AppState {
            dashboard,
            shutdown,
        })
        .layer(middleware::from_fn_with_state(
            trusted,
            access::require_reader,
        ))
        .layer(middleware::from_fn(page_safety::security_headers))
        .layer(middleware::from_fn_with_state(
            allowed_hosts,
            page_safety::check_host,
        ))
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
}

async fn prometheus(State(state): State<AppState>) -> Response {
    let counters = &state.dashboard.counters;
    counters.metrics_scrapes.fetch_add(1, Ordering::Relaxed);
    let snapshot = state.dashboard.picture().snapshot(SnapshotScope::Whole);
    match metrics::render(&snapshot) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            warn!(%error, "cannot encode /metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn snapshot(State(state): State<AppState>) -> Json<Snapshot> {
    Json(state.dashboard.picture().snapshot(SnapshotScope::Whole))
}

/// The whole picture at once (`snapshot`), then after every poll round what changed
/// (`update`): the page needs no reload and no polling of its own.
async fn events(State(state): State<AppState>) -> Response {
    let open = state.dashboard.counters.browsers.load(Ordering::Relaxed);
    if open >= MAX_EVENT_STREAMS {
        let body = format!("503: {open} event streams are open, the most this dashboard serves");
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    event_stream(state).into_response()
}

fn event_stream(state: AppState) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let guard = BrowserGuard::new(state.dashboard.clone());
    let mut rounds = state.dashboard.subscribe_rounds();
    rounds.borrow_and_update();
    let whole = guard.dashboard().picture().snapshot(SnapshotScope::Whole);
    let first = sse_event("snapshot", &whole);
    let cursor = Cursor {
        guard,
        rounds,
        event_seq: whole.last_event_seq,
    };
    let updates = stream::unfold(cursor, next_update);
    let stream = stream::once(async { Ok(first) })
        .chain(updates)
        .take_until(state.shutdown.cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// Where one browser's stream stands.
struct Cursor {
    guard: BrowserGuard,
    rounds: watch::Receiver<u64>,
    event_seq: u64,
}

/// Waits for the next poll round and describes what changed since the cursor.
async fn next_update(mut cursor: Cursor) -> Option<(Result<Event, Infallible>, Cursor)> {
    cursor.rounds.changed().await.ok()?;
    let scope = SnapshotScope::Since {
        event_seq: cursor.event_seq,
    };
    let update = cursor.guard.dashboard().picture().snapshot(scope);
    cursor.event_seq = update.last_event_seq;
    Some((Ok(sse_event("update", &update)), cursor))
}

fn sse_event(name: &str, data: &impl Serialize) -> Event {
    let json = serde_json::to_string(data).unwrap_or_else(|error| {
        warn!(%error, "cannot encode a dashboard update");
        "{}".into()
    });
    Event::default().event(name).data(json)
}
