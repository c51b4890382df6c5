//! `push_pg`: push throughput through the HTTP API on Postgres, as a ratio
//! to a raw batched insert of the same rows into the same database in the
//! same run. Two scenarios, 100-op batches: one workspace (one client
//! pushing batch after batch), and 8 workspaces in parallel (one client
//! each). The raw baseline does what the database must do at least: per
//! batch, one transaction that bumps a counter row and inserts the rows with
//! one `unnest`, on one connection per workspace.
//!
//! The gateway runs in this process (router, PostgresStore, PgBus) on a
//! loopback port; request bodies are built before the clock starts, so the
//! client's own JSON work is not measured.
//!
//! Usage: `push_pg [--quick] [--database postgres://...]` (see README.md).

use serde_json::{json, Value};
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use sync_core::validate::validate_op;
use sync_core::{TableConfig, ValidOp, ValidationLimits, WorkspaceId};
use sync_server::app::AppState;
use sync_server::auth::DevIssuer;
use sync_server::clock::SystemClock;
use sync_server::config::ServerConfig;
use sync_server::store::postgres::{PgBus, PgOptions, PostgresStore};
use sync_server::store::{Access, Store};
use tokio_postgres::{Client, NoTls};

const DEFAULT_DATABASE: &str = "postgres://postgres@127.0.0.1:5432/test";
const OPS_PER_BATCH: usize = 100;
const PARALLEL_WORKSPACES: usize = 8;
const DEVICE: &str = "0123456789abcdef";

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    quick: bool,
    database: String,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        quick: false,
        database: DEFAULT_DATABASE.to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--database" => args.database = it.next().ok_or("--database needs a URL")?,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: push_pg [--quick] [--database URL]"
                )
                .into())
            }
        }
    }
    Ok(args)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One op as a client sends it: a new chat message.
fn message_op(workspace: usize, batch: usize, i: usize, ms: u64) -> Value {
    let pk = format!("m{workspace}-{batch}-{i}");
    let hlc = format!("{ms:013}-{:06}-{DEVICE}", batch * OPS_PER_BATCH + i);
    json!({
        "op_id": uuid::Uuid::new_v4().to_string(),
        "table_name": "messages", "operation": "put", "pk": pk,
        "payload": {
            "id": pk, "thread_id": format!("t{workspace}"), "role": "user",
            "content": "The quick brown fox jumps over the lazy dog. ".repeat(4),
            "index": batch * OPS_PER_BATCH + i, "order_key": hlc,
            "created_at": ms / 1000, "updated_at": ms / 1000,
            "clock": 1, "hlc": hlc, "deleted": false,
        },
        "clock": 1, "hlc": hlc, "device_id": DEVICE,
    })
}

/// The batches of one workspace.
fn batches(workspace: usize, count: usize) -> Vec<Vec<Value>> {
    let ms = now_ms();
    (0..count)
        .map(|b| {
            (0..OPS_PER_BATCH)
                .map(|i| message_op(workspace, b, i, ms))
                .collect()
        })
        .collect()
}

async fn admin(database: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(database, NoTls)
        .await
        .map_err(|e| format!("Postgres is not reachable at {database}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The gateway on a loopback port.
struct Gateway {
    base: String,
    /// A token its clients use.
    token: String,
    http: reqwest::Client,
    /// The gateway's store, to measure pushes without HTTP.
    store: PostgresStore,
    _bus: Arc<PgBus>,
}

async fn start_gateway(url: &str) -> Result<Gateway> {
    let store = PostgresStore::connect(url, TableConfig::or3_chat(), PgOptions::default()).await?;
    let bus = Arc::new(PgBus::new(&store));
    let (issuer, verifier) = DevIssuer::load_or_create(None, "or3-sync-bench")?;
    let state = AppState::new(
        Arc::new(store.clone()),
        bus.clone(),
        verifier,
        Arc::new(SystemClock),
        ServerConfig::default(),
    );
    bus.listen(Arc::downgrade(&state.hub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(sync_server::serve::run(
        listener,
        state,
        std::future::pending(),
    ));
    let token = issuer
        .issue("bench", now_ms() / 1000, 24 * 3600)
        .map_err(|e| e.message)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .timeout(Duration::from_secs(60))
        .build()?;
    Ok(Gateway {
        base,
        token,
        http,
        store,
        _bus: bus,
    })
}

async fn create_workspace(gateway: &Gateway) -> Result<String> {
    let body: Value = gateway
        .http
        .post(format!("{}/v1/workspaces", gateway.base))
        .bearer_auth(&gateway.token)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["workspace_id"]
        .as_str()
        .ok_or("no workspace id")?
        .to_owned())
}

/// Pushes every batch of every workspace (workspaces in parallel, batches
/// in order); returns ops per second.
async fn api_run(gateway: &Gateway, workloads: Vec<(String, Vec<Vec<Value>>)>) -> Result<f64> {
    let bodies: Vec<(String, Vec<Vec<u8>>)> = workloads
        .into_iter()
        .map(|(ws, batches)| {
            let bodies = batches
                .into_iter()
                .map(|ops| serde_json::to_vec(&json!({ "ops": ops })).unwrap_or_default())
                .collect();
            (ws, bodies)
        })
        .collect();
    let ops: usize = bodies.iter().map(|(_, b)| b.len() * OPS_PER_BATCH).sum();
    let started = Instant::now();
    let mut clients = Vec::new();
    for (ws, bodies) in bodies {
        let (http, url, token) = (
            gateway.http.clone(),
            format!("{}/v1/workspaces/{ws}/push", gateway.base),
            gateway.token.clone(),
        );
        clients.push(tokio::spawn(async move {
            for body in bodies {
                let res = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = res.status();
                let text = res.text().await?;
                if !status.is_success() || !text.contains("\"applied\"") {
                    return Err(format!("push failed: {status} {text:.300}").into());
                }
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        }));
    }
    for client in clients {
        client.await??;
    }
    Ok(ops as f64 / started.elapsed().as_secs_f64())
}

/// Pushes the same kind of batches straight into the store (validated
/// before the clock starts): the API's cost without HTTP, JSON and auth.
async fn store_run(gateway: &Gateway, workloads: Vec<(String, Vec<Vec<Value>>)>) -> Result<f64> {
    let tables = TableConfig::or3_chat();
    let limits = ValidationLimits::default();
    let now = now_ms();
    let mut validated = Vec::new();
    for (ws, batches) in workloads {
        let ws = WorkspaceId::parse(&ws).ok_or("bad workspace id")?;
        let mut ops = Vec::new();
        for batch in batches {
            let batch: std::result::Result<Vec<ValidOp>, _> = batch
                .iter()
                .map(|op| validate_op(op, &tables, &limits, now))
                .collect();
            ops.push(batch.map_err(|r| r.message)?);
        }
        validated.push((ws, ops));
    }
    let count: usize = validated.iter().map(|(_, b)| b.len() * OPS_PER_BATCH).sum();
    let access = Access::Member {
        user_id: "bench".into(),
    };
    let started = Instant::now();
    let mut writers = Vec::new();
    for (ws, batches) in validated {
        let (store, access) = (gateway.store.clone(), access.clone());
        writers.push(tokio::spawn(async move {
            for ops in batches {
                store.push(&ws, &access, ops, now_ms()).await?;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The rows of one batch as the log stores them, column by column.
struct RawBatch {
    pks: Vec<String>,
    payloads: Vec<String>,
    hlcs: Vec<String>,
    op_ids: Vec<String>,
    projects: Vec<Option<String>>,
}

fn raw_batch(ops: &[Value]) -> RawBatch {
    let text = |op: &Value, field: &str| op[field].as_str().unwrap_or_default().to_owned();
    RawBatch {
        pks: ops.iter().map(|op| text(op, "pk")).collect(),
        payloads: ops.iter().map(|op| op["payload"].to_string()).collect(),
        hlcs: ops.iter().map(|op| text(op, "hlc")).collect(),
        op_ids: ops.iter().map(|op| text(op, "op_id")).collect(),
        projects: ops.iter().map(|_| None).collect(),
    }
}

/// Inserts the same rows with a counter bump and one `unnest` per batch, one
/// connection per workspace; returns rows per second.
async fn raw_run(
    database: &str,
    schema: &str,
    workloads: Vec<(String, Vec<Vec<Value>>)>,
) -> Result<f64> {
    let mut prepared = Vec::new();
    for (ws, batches) in workloads {
        let client = admin(database).await?;
        client
            .batch_execute(&format!("SET search_path = \"{schema}\""))
            .await?;
        client
            .execute("INSERT INTO raw_heads (id, head) VALUES ($1, 0)", &[&ws])
            .await?;
        let batches: Vec<RawBatch> = batches.iter().map(|b| raw_batch(b)).collect();
        prepared.push((ws, client, batches));
    }
    let rows: usize = prepared
        .iter()
        .map(|(_, _, b)| b.len() * OPS_PER_BATCH)
        .sum();
    let started = Instant::now();
    let mut writers = Vec::new();
    for (ws, mut client, batches) in prepared {
        writers.push(tokio::spawn(async move {
            let bump = client
                .prepare("UPDATE raw_heads SET head = head + $2 WHERE id = $1 RETURNING head")
                .await?;
            let insert = client
                .prepare(
                    "INSERT INTO raw_log (workspace_id, server_version, table_name, pk, operation,
                         payload, clock, hlc, op_id, device_id, scoped, project_id,
                         prev_project_id, scope_change, committed_at)
                     SELECT $1, $2 + n, 'messages', pk, 'put', payload, 1, hlc, op_id, $6, true,
                         project, NULL, false, $7
                     FROM unnest($3::text[], $4::text[], $5::text[], $8::text[], $9::text[])
                         WITH ORDINALITY AS r(pk, payload, hlc, op_id, project, n)",
                )
                .await?;
            for batch in &batches {
                let tx = client.transaction().await?;
                let n = batch.pks.len() as i64;
                let head: i64 = tx.query_one(&bump, &[&ws, &n]).await?.try_get(0)?;
                tx.execute(
                    &insert,
                    &[
                        &ws,
                        &(head - n),
                        &batch.pks,
                        &batch.payloads,
                        &batch.hlcs,
                        &DEVICE,
                        &(now_ms() as i64),
                        &batch.op_ids,
                        &batch.projects,
                    ],
                )
                .await?;
                tx.commit().await?;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

struct Scenario {
    name: &'static str,
    api: f64,
    store: f64,
    raw: f64,
}

/// Runs the raw insert, the store and the API on fresh workspaces each.
async fn scenario(
    name: &'static str,
    workspaces: usize,
    batch_count: usize,
    database: &str,
    schema: &str,
    gateway: &Gateway,
) -> Result<Scenario> {
    let work = |offset| {
        let gateway = &gateway;
        async move {
            let mut all = Vec::new();
            for w in 0..workspaces {
                let ws = create_workspace(gateway).await?;
                all.push((ws, batches(offset + w, batch_count)));
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(all)
        }
    };
    let raw = raw_run(database, schema, work(0).await?).await?;
    let store = store_run(gateway, work(100).await?).await?;
    let api = api_run(gateway, work(200).await?).await?;
    Ok(Scenario {
        name,
        api,
        store,
        raw,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let schema = format!("or3_bench_{}", std::process::id());
    let admin_client = admin(&args.database).await?;
    admin_client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    let separator = if args.database.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!("{}{separator}schema={schema}", args.database);
    let outcome = run(&args, &schema, &url).await;
    admin_client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    outcome
}

async fn run(args: &Args, schema: &str, url: &str) -> Result<()> {
    let gateway = start_gateway(url).await?;
    admin(&args.database)
        .await?
        .batch_execute(&format!(
            "SET search_path = \"{schema}\";
             CREATE TABLE raw_heads (id text COLLATE \"C\" PRIMARY KEY, head bigint NOT NULL);
             CREATE TABLE raw_log (LIKE change_log INCLUDING ALL);"
        ))
        .await?;
    let gateway = &gateway;
    // Warm up: connections, prepared statements, the allocator.
    scenario("warm-up", 2, 3, &args.database, schema, gateway).await?;

    let batch_count = if args.quick { 20 } else { 200 };
    let results = vec![
        scenario(
            "1 workspace",
            1,
            batch_count * 2,
            &args.database,
            schema,
            gateway,
        )
        .await?,
        scenario(
            "8 workspaces in parallel",
            PARALLEL_WORKSPACES,
            batch_count,
            &args.database,
            schema,
            gateway,
        )
        .await?,
    ];
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "push_pg ({build} build{}): batches of {OPS_PER_BATCH} ops",
        if args.quick { ", --quick" } else { "" }
    );
    println!(
        "{:<26} {:>11} {:>13} {:>11} {:>7} {:>13}",
        "scenario", "API ops/s", "store ops/s", "raw rows/s", "ratio", "store ratio"
    );
    for r in &results {
        println!(
            "{:<26} {:>11.0} {:>13.0} {:>11.0} {:>7.2} {:>13.2}",
            r.name,
            r.api,
            r.store,
            r.raw,
            r.api / r.raw,
            r.store / r.raw
        );
    }
    println!("ratio = API ops/s / raw rows/s (the issue's goal: >= 0.40)");
    Ok(())
}
