//! Running the router on a listener with a connection cap, and graceful shutdown: on the signal the server stops
//! accepting, lets in-flight requests finish, then flushes device positions.

use crate::app::router;
use crate::listener::LimitedListener;
use crate::state::AppState;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state
        .positions
        .spawn_flusher(state.store.clone(), Duration::from_secs(1));
    let listener = LimitedListener::new(listener, state.config.max_connections);
    crate::rate_limit::spawn_janitor(state.rate_limits.clone());
    let hub = state.hub.clone();
    let draining = state.draining.clone();
    let shutdown = async move {
        shutdown.await;
        draining.store(true, std::sync::atomic::Ordering::SeqCst);
        // Streams never end by themselves: tell them to close with a frame.
        hub.shut_down();
    };
    let app =
        router(state.clone()).into_make_service_with_connect_info::<crate::listener::ClientAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    state.positions.flush(state.store.as_ref()).await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
