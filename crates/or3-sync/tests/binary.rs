//! The real `or3-sync` binary: dev auth, restart, crash safety under kill -9.

mod support;

use serde_json::{json, Value};
use std::process::Command;
use support::{check_operator_commands, dev_token, now_ms, post, run, Server};

#[tokio::test]
async fn acknowledged_pushes_survive_kill_9() {
    acknowledged_pushes_survive_kill_9_with(&[], "synchronous=Full").await;
}

/// `--sqlite-synchronous normal` gives up durability across a power loss,
/// never across a crash of the server.
#[tokio::test]
async fn acknowledged_pushes_survive_kill_9_with_synchronous_normal() {
    acknowledged_pushes_survive_kill_9_with(
        &["--sqlite-synchronous", "normal"],
        "synchronous=Normal",
    )
    .await;
}

async fn acknowledged_pushes_survive_kill_9_with(flags: &[&str], logged: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let http = reqwest::Client::new();
    let server = Server::start_with(&db, flags);
    assert!(
        server.startup.iter().any(|l| l.contains(logged)),
        "the server says how it commits ({logged}): {:?}",
        server.startup
    );
    let token = dev_token(&http, &server.base, "alice").await;
    let (_, ws) = post(
        &http,
        format!("{}/v1/workspaces", server.base),
        Some(&token),
        json!({"name": "w"}),
    )
    .await;
    let ws = ws["workspace_id"].as_str().unwrap().to_owned();

    let device = "0123456789abcdef";
    let mut acknowledged = Vec::new();
    let mut batches = Vec::new();
    for b in 0..20u32 {
        let t = now_ms();
        let ops: Vec<Value> = (0..50u32)
            .map(|i| {
                let n = b * 50 + i;
                json!({"op_id": format!("00000000-0000-4000-8000-{n:012x}"), "table_name": "messages",
                       "operation": "put", "pk": format!("m{n}"), "payload": {"id": format!("m{n}"), "n": n},
                       "clock": 1, "hlc": format!("{t:013}-{i:06}-{device}"), "device_id": device})
            })
            .collect();
        let (status, body) = post(
            &http,
            format!("{}/v1/workspaces/{ws}/push", server.base),
            Some(&token),
            json!({"ops": ops}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        for r in body["results"].as_array().unwrap() {
            assert_eq!(r["status"], "applied");
            acknowledged.push(r["op_id"].as_str().unwrap().to_owned());
        }
        batches.push(ops);
    }
    server.kill9();

    let server = Server::start_with(&db, flags);
    let token = dev_token(&http, &server.base, "alice").await;
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let res = http
            .get(format!(
                "{}/v1/workspaces/{ws}/changes?cursor={cursor}&limit=1000",
                server.base
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let page: Value = res.json().await.unwrap();
        for c in page["changes"].as_array().unwrap() {
            seen.push(c["op_id"].as_str().unwrap().to_owned());
        }
        cursor = page["cursor"].as_u64().unwrap();
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen, acknowledged, "every acknowledged op, once, in order");

    // Retrying every batch after the crash is safe: all duplicates.
    for ops in batches.into_iter().take(3) {
        let (_, body) = post(
            &http,
            format!("{}/v1/workspaces/{ws}/push", server.base),
            Some(&token),
            json!({"ops": ops}),
        )
        .await;
        assert!(body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "duplicate"));
    }
}

#[tokio::test]
async fn dev_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dev.db");
    let http = reqwest::Client::new();
    let server = Server::start(&db);
    let token = dev_token(&http, &server.base, "alice").await;
    drop(server);
    let server = Server::start(&db);
    let res = http
        .get(format!("{}/v1/workspaces", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        200,
        "the dev key is kept beside the database"
    );
}

#[test]
fn dev_auth_refuses_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_or3-sync"))
        .args(["serve", "--listen", "0.0.0.0:0", "--database"])
        .arg(format!("sqlite://{}", dir.path().join("x.db").display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only listens on loopback"));
}

#[test]
fn operator_commands_manage_workspaces_and_members() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ops.db").display());
    check_operator_commands(&db);
    let (ok, out) = run(&["gc", "--database", &db, "--min-retention-hours", "0.5"]);
    assert!(!ok && out.contains("at least one hour"), "{out}");
}

/// A command that names a workspace on the wrong (missing) database file
/// must say so, never create an empty database and report success.
#[test]
fn commands_on_a_missing_database_fail_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let db = format!("sqlite://{}", missing.display());
    for args in [
        vec![
            "member",
            "set",
            "--database",
            &db,
            "team-1",
            "bob",
            "editor",
        ],
        vec!["member", "remove", "--database", &db, "team-1", "bob"],
        vec!["gc", "--database", &db, "--workspace", "team-1"],
        vec!["gc", "--database", &db],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_or3-sync"))
            .args(&args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains("no database at") && stderr.contains("typo.db"),
            "{args:?}: {stderr}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}
