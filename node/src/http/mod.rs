//! The HTTP servers: the main node's API and explorer ([`router`], feature `node`) and the
//! light peer's API (`crate::light`) share how clients are served and limited ([`serve`],
//! [`limits`]) and how receipts are shown ([`views`]).

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

#[cfg(feature = "node")]
mod api;
pub mod limits;
pub(crate) mod views;

#[cfg(feature = "node")]
pub use api::{Api, MAX_EVENT_STREAMS, OPENAPI, router};

/// An API error: a status, a stable code and a message for people.
pub struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": { "code": self.1, "message": self.2 } }))).into_response()
    }
}

/// Serves `router` on `listener`, each client held to `limits` ([`limits`]), until `shutdown`
/// completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: limits::ClientLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limiter = limits::Limiter::new(limits);
    let router = router.layer(axum::middleware::from_fn_with_state(limiter, limits::enforce));
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds the API's listening socket (port 0 picks a free port).
pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await
}
