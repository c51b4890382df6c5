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

#[tokio::test]
async fn owners_rename_and_delete_a_workspace_any_member_reads_it() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "bob", "editor").await;
    let path = format!("/v1/workspaces/{ws}");
    let (status, body) = s.get(&path, "bob").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"workspace_id": ws, "name": "test", "role": "editor"})
    );
    let patch = |user: &'static str, body: serde_json::Value| {
        s.request(reqwest::Method::PATCH, &path, Some(user), Some(body))
    };
    let (status, _) = patch("bob", json!({"name": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = patch("alice", json!({"name": ""})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("name"))
    );
    let (status, body) = patch("alice", json!({"name": "Team"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"workspace_id": ws, "name": "Team", "role": "owner"})
    );

    let (status, _) = s
        .request(reqwest::Method::DELETE, &path, Some("bob"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .request(reqwest::Method::DELETE, &path, Some("alice"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for route in ["", "/changes", "/snapshot", "/members"] {
        let (status, body) = s.get(&format!("{path}{route}"), "alice").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{route}");
        assert_eq!(body["error"]["code"], "unknown_workspace", "{route}");
    }
}
