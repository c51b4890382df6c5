//! The server tells its configuration (`GET /v1/config`), and a rejection
//! caused by that configuration names the server flag that fixes it.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use sync_core::TableConfig;
use sync_server::clock::SystemClock;
use sync_server::config::ServerConfig;

async fn notes_server() -> TestServer {
    let config = ServerConfig {
        tables: TableConfig::from_names(["notes:noteId", "tags"]),
        max_ops_per_push: 50,
        ..ServerConfig::default()
    };
    start_with(config, Arc::new(SystemClock)).await
}

#[tokio::test]
async fn config_lists_the_synced_tables_with_their_pk_fields_and_the_push_limits() {
    let s = notes_server().await;
    let (status, body) = s.get("/v1/config", "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "tables": [{"name": "notes", "pk": "noteId"}, {"name": "tags", "pk": "id"}],
            "max_ops_per_push": 50,
            "max_payload_bytes": 1 << 20,
        })
    );
}

#[tokio::test]
async fn config_needs_a_valid_token() {
    let s = notes_server().await;
    let (status, body) = s
        .request(reqwest::Method::GET, "/v1/config", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "missing_token");
}

#[tokio::test]
async fn unknown_table_rejection_says_to_add_the_table_to_the_tables_flag() {
    let s = notes_server().await;
    let ws = s.workspace("alice").await;
    let results = s
        .push_ok(
            &ws,
            "alice",
            vec![put(
                "notebooks",
                "b1",
                1,
                &hlc(now_ms(), 0, DEVICE_A),
                json!({}),
            )],
        )
        .await;
    assert_eq!(results[0]["error"]["code"], "unknown_table");
    let message = results[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`notebooks` is not synced by this server: add it to --tables"),
        "{message}"
    );
    let (status, body) = s
        .get(
            &format!("/v1/workspaces/{ws}/records/notebooks/b1"),
            "alice",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "unknown_table");
    assert_eq!(body["error"]["message"], message, "one message for both");
}

#[tokio::test]
async fn pk_mismatch_rejection_names_the_tables_flag_with_the_field() {
    let s = notes_server().await;
    let ws = s.workspace("alice").await;
    // The app keys notes by `id`; the server by `noteId`.
    let op = put("notes", "n1", 1, &hlc(now_ms(), 0, DEVICE_A), json!({}));
    let results = s.push_ok(&ws, "alice", vec![op]).await;
    assert_eq!(results[0]["error"]["code"], "pk_mismatch");
    let message = results[0]["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("payload.noteId must be"), "{message}");
    assert!(message.contains("--tables notes:field"), "{message}");
}
