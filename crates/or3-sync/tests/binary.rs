//! The real `or3-sync` binary: dev auth, restart, crash safety under kill -9.

mod support;

use serde_json::{json, Value};
use std::process::Command;
use support::{
    check_commands_refuse_a_missing_store, check_operator_commands, dev_token, now_ms, post, run,
    Server,
};

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
    let seen: Vec<String> = whole_log(&http, &server.base, &token, &ws)
        .await
        .iter()
        .map(|c| c["op_id"].as_str().unwrap().to_owned())
        .collect();
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

/// Group commit under a crash: 48 clients over 4 workspaces push one op at a
/// time as fast as answers come (so commits are shared), the server is
/// killed with pushes in flight, and after the restart every acknowledged op
/// is in its workspace's log, once, in a gap-free log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_pushes_survive_kill_9_during_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("group.db");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let flags = [
        "--rate-push-per-minute",
        "1000000",
        "--rate-pull-per-minute",
        "1000000",
    ];
    let server = Server::start_with(&db, &flags);
    let token = dev_token(&http, &server.base, "alice").await;
    let mut workspaces = Vec::new();
    for w in 0..4 {
        let (_, ws) = post(
            &http,
            format!("{}/v1/workspaces", server.base),
            Some(&token),
            json!({ "name": format!("w{w}") }),
        )
        .await;
        workspaces.push(ws["workspace_id"].as_str().unwrap().to_owned());
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..48u32 {
        let (http, token, base, stop) = (
            http.clone(),
            token.clone(),
            server.base.clone(),
            stop.clone(),
        );
        let ws = workspaces[c as usize % 4].clone();
        clients.push(tokio::spawn(async move {
            let device = format!("{c:016x}");
            let mut acknowledged = Vec::new();
            for n in 0u32.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) && n > 0 {
                    break;
                }
                let op_id = format!("00000000-0000-4000-8000-{:04x}{n:08x}", c);
                let op = json!({"op_id": op_id, "table_name": "messages", "operation": "put",
                    "pk": format!("c{c}-m{n}"), "payload": {"id": format!("c{c}-m{n}"), "text": "x".repeat(200)},
                    "clock": 1, "hlc": format!("{:013}-{:06}-{device}", now_ms(), n % 1_000_000), "device_id": device});
                let sent = http
                    .post(format!("{base}/v1/workspaces/{ws}/push"))
                    .bearer_auth(&token)
                    .json(&json!({ "ops": [op] }))
                    .send()
                    .await;
                // Once the server is gone, requests fail: stop there.
                let Ok(res) = sent else { break };
                if res.status() != 200 {
                    break;
                }
                let Ok(body) = res.json::<Value>().await else { break };
                assert_eq!(body["results"][0]["status"], "applied", "{body}");
                acknowledged.push(op_id);
            }
            (ws, acknowledged)
        }));
    }
    // Let groups form, then kill the server with pushes in flight.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let figure = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{metrics}"))
    };
    let (grouped, groups) = (
        figure("or3_sqlite_group_pushes_sum"),
        figure("or3_sqlite_group_pushes_count"),
    );
    assert!(
        grouped > groups,
        "concurrent pushes shared commits ({grouped} pushes in {groups} groups)"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.kill9();
    let mut acknowledged: std::collections::HashMap<String, Vec<String>> = Default::default();
    for client in clients {
        let (ws, ops) = client.await.unwrap();
        acknowledged.entry(ws).or_default().extend(ops);
    }
    let total: usize = acknowledged.values().map(Vec::len).sum();
    assert!(
        total >= 48,
        "the clients pushed before the kill ({total} acknowledged)"
    );

    let server = Server::start_with(&db, &flags);
    let token = dev_token(&http, &server.base, "alice").await;
    for ws in &workspaces {
        let (mut versions, mut seen) = (Vec::new(), std::collections::HashSet::new());
        for c in whole_log(&http, &server.base, &token, ws).await {
            versions.push(c["server_version"].as_u64().unwrap());
            assert!(
                seen.insert(c["op_id"].as_str().unwrap().to_owned()),
                "an op logged twice"
            );
        }
        assert_eq!(
            versions,
            (1..=versions.len() as u64).collect::<Vec<_>>(),
            "gap-free log"
        );
        for op in acknowledged.get(ws).into_iter().flatten() {
            assert!(seen.contains(op), "acknowledged op {op} lost in the crash");
        }
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
    assert!(
        dir.path().join("dev.devkey.pem").exists(),
        "the dev key is named after the database file"
    );
}

#[test]
fn serve_logs_the_tables_it_serves_with_their_pk_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("t.db"), &["--tables", "tags,notes:noteId"]);
    let logged = server
        .startup
        .iter()
        .find(|line| line.contains("syncing tables"))
        .unwrap_or_else(|| panic!("no tables line in {:?}", server.startup));
    assert!(logged.contains("notes:noteId,tags:id"), "{logged}");
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
    check_commands_refuse_a_missing_store(&db, &format!("no database at {}", missing.display()));
    assert!(!missing.exists(), "a command created {}", missing.display());
}

/// Every change of a workspace's log, pulled page by page.
async fn whole_log(http: &reqwest::Client, base: &str, token: &str, ws: &str) -> Vec<Value> {
    let (mut cursor, mut changes) = (0, Vec::new());
    loop {
        let page: Value = http
            .get(format!(
                "{base}/v1/workspaces/{ws}/changes?cursor={cursor}&limit=1000"
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        changes.extend(page["changes"].as_array().unwrap().iter().cloned());
        cursor = page["cursor"].as_u64().unwrap();
        if !page["has_more"].as_bool().unwrap() {
            return changes;
        }
    }
}
