//! Running the router on a listener with connection caps and deadlines, and
//! graceful shutdown: on the signal the server stops accepting, lets
//! in-flight requests finish, then flushes device positions.
//!
//! Connections are served by hyper's HTTP/1.1 connection directly (not
//! `axum::serve`) for its `header_read_timeout`: hyper starts that timer
//! whenever it waits for a request head (after accept, and after each
//! response on a kept-alive connection), so it bounds both a head that never
//! ends and an idle keep-alive. HTTP/2 is not offered: browsers speak it only
//! over TLS, which a proxy in front terminates.

use crate::app::router;
use crate::listener::{ClientAddr, LimitedListener, ListenerLimits};
use crate::state::AppState;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state
        .positions
        .spawn_flusher(state.store.clone(), Duration::from_secs(1));
    let timeouts = state.config.timeouts;
    let mut listener = LimitedListener::new(
        listener,
        ListenerLimits {
            max_connections: state.config.max_connections,
            max_connections_per_ip: state.config.max_connections_per_ip,
            first_byte_timeout: timeouts.first_byte,
            write_stall_timeout: timeouts.write_stall,
        },
    );
    crate::limiter::spawn_janitor(state.rate_limits.clone());
    let app = router(state.clone());
    // Dropped when shutdown begins: each connection then finishes its
    // request in flight and closes. Each holds a receiver of `open` until it
    // ends, so `closed()` waits for all of them.
    let (stop_tx, stop_rx) = watch::channel(());
    let (open_tx, open_rx) = watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request
                .extensions_mut()
                .insert(ConnectInfo(ClientAddr(addr)));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop_rx = stop_rx.clone();
        let open_rx = open_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop_rx.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                if e.is_timeout() {
                    metrics::counter!("or3_connections_closed_total", "reason" => "header_timeout")
                        .increment(1);
                }
                tracing::debug!("connection from {addr} ended: {e}");
            }
            drop(open_rx);
        });
    }
    state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // Streams never end by themselves: tell them to close with a frame.
    state.hub.shut_down();
    drop(listener);
    drop(stop_tx);
    drop(open_rx);
    open_tx.closed().await;
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
