//! `GET /v1/workspaces/{workspace_id}/events?cursor=N[&project_id=P]`: the
//! same frames as Server-Sent Events, for clients that read a streaming
//! `fetch` body with an `Authorization` header. SSE cannot carry a new
//! `hello`, so where a WebSocket would wait for one (after a poke or
//! `cursor_expired`) the stream ends and the client reconnects.

use super::frames::ClientFrame;
use super::session::{Outbound, Session};
use crate::error::ApiError;
use crate::extract::{device_id_header, parse_query, parse_workspace_id, path_params, Caller};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::Utf8Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::convert::Infallible;
use tokio::sync::mpsc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    cursor: Option<u64>,
    project_id: Option<String>,
}

/// Streams a subscription as SSE.
pub async fn events(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let raw = path_params(path)?;
    let ws = parse_workspace_id(&raw)?;
    let params: Params = parse_query(query.as_deref())?;
    let device_id = device_id_header(&headers)?;
    let access = state.access(&identity, &ws).await?;
    state.store.role_of(&ws, &access).await?;
    let slot = state.subscription_slot(&identity)?;
    let (tx, rx) = mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        // No client frames over SSE; the sender lives as long as the session.
        let (_client_tx, client_rx) = mpsc::channel(1);
        let hello = ClientFrame::Hello {
            cursor: params.cursor.unwrap_or(0),
            device_id,
            project_id: params.project_id,
        };
        let mut out = SseOut { tx };
        Session::new(state, ws, identity, false)
            .run(Some(hello), client_rx, &mut out)
            .await;
        drop(slot);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), rx))
    });
    Ok(Sse::new(stream).into_response())
}

struct SseOut {
    tx: mpsc::Sender<Event>,
}

impl Outbound for SseOut {
    async fn send(&mut self, frame: Utf8Bytes) -> bool {
        self.tx
            .send(Event::default().data(frame.as_str()))
            .await
            .is_ok()
    }

    async fn ping(&mut self) -> bool {
        self.tx.send(Event::default().comment("ping")).await.is_ok()
    }

    async fn close(&mut self, _going_away: bool) {
        // Dropping the sender ends the stream once the session returns.
    }
}
