//! Workspaces and their members over HTTP.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn any_member_lists_the_members_ordered_by_user_id() {
    let s = start().await;
    let ws = s.workspace("bob").await;
    s.add_member(&ws, "bob", "victor", "viewer").await;
    s.add_member(&ws, "bob", "alice", "editor").await;
    let (status, body) = s
        .get(&format!("/v1/workspaces/{ws}/members"), "victor")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"members": [
            {"user_id": "alice", "role": "editor"},
            {"user_id": "bob", "role": "owner"},
            {"user_id": "victor", "role": "viewer"},
        ]})
    );
    let (status, _) = s
        .get(&format!("/v1/workspaces/{ws}/members"), "mallory")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
