//! P1 (push throughput) and P2 (pull throughput) against the raw SQLite
//! work on the same rows: inserting them, and scanning them back.

use crate::raw_sqlite;
use crate::report::{Figure, Goal, Measure};
use crate::run_context::RunContext;
use crate::server::SyncServer;
use crate::stats::per_second;
use crate::workload::{push_body, MessageOp, OpFactory, DEVICE_ID};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::time::{Duration, Instant};

/// Batches pushed before timing starts (statement caches, page cache).
const WARMUP_BATCHES: usize = 5;

/// Runs P1 (one workspace and parallel workspaces) and P2 on one server.
pub async fn run(ctx: &RunContext) -> Result<Vec<Figure>> {
    let sizes = &ctx.sizes;
    let server = ctx.launcher.start(&ctx.dir.join("push-pull.db")).await?;
    let ws = server.create_workspace("p1").await?;
    let mut factory = OpFactory::new();

    let warmup: Vec<MessageOp> = (0..WARMUP_BATCHES * sizes.push_batch)
        .map(|_| factory.message(""))
        .collect();
    for chunk in warmup.chunks(sizes.push_batch) {
        server.push(&ws, push_body(chunk)).await?;
    }

    // P1, one workspace: every batch is prepared before the clock starts.
    let ops: Vec<MessageOp> = (0..sizes.push_ops).map(|_| factory.message("")).collect();
    let raw_before = raw_insert_rate(ctx, &ws, &ops, "raw-insert-1.db").await?;
    let bodies: Vec<String> = ops.chunks(sizes.push_batch).map(push_body).collect();
    let started = Instant::now();
    let mut pushed = 0;
    for body in bodies {
        pushed += server.push(&ws, body).await?;
    }
    let push_rate = per_second(pushed as u64, started.elapsed());
    let raw_after = raw_insert_rate(ctx, &ws, &ops, "raw-insert-2.db").await?;
    // The faster of the two raw runs: noise never flatters the server.
    let raw_rate = raw_before.max(raw_after);
    let baseline_name = format!(
        "raw INSERT of the same change-log rows, {} per transaction, WAL, synchronous=FULL; best of 2",
        sizes.push_batch
    );
    let mut figures = vec![Figure {
        id: "P1",
        name: format!(
            "push ops/s, 1 workspace, batches of {}, HTTP+auth+LWW",
            sizes.push_batch
        ),
        measured: Measure::new(push_rate, "ops/s"),
        baseline: Measure::new(raw_rate, "rows/s"),
        baseline_name: baseline_name.clone(),
        goal: Goal::RatioAtLeast(0.40),
    }];
    crate::report::print_figure(&figures[0]);

    // P1, workspaces in parallel: the same number of ops in all.
    let parallel = parallel_push_rate(
        &server,
        sizes.parallel_workspaces,
        sizes.push_ops,
        sizes.push_batch,
    )
    .await
    .context("parallel pushes")?;
    figures.push(Figure {
        id: "P1",
        name: format!(
            "push ops/s, {} workspaces in parallel, batches of {}",
            sizes.parallel_workspaces, sizes.push_batch
        ),
        measured: Measure::new(parallel, "ops/s"),
        baseline: Measure::new(raw_rate, "rows/s"),
        baseline_name,
        goal: Goal::RatioAtLeast(0.40),
    });
    crate::report::print_figure(&figures[1]);

    // P2: pull the one-workspace log back, page by page.
    let total = (pushed + warmup.len()) as u64;
    let mut best_pull = 0f64;
    for _ in 0..sizes.pull_passes {
        let started = Instant::now();
        let pulled = pull_everything(&server, &ws, sizes.pull_page).await?;
        if pulled != total {
            bail!("pulled {pulled} changes, expected {total}");
        }
        best_pull = best_pull.max(per_second(pulled, started.elapsed()));
    }
    let mut best_scan = 0f64;
    for _ in 0..sizes.pull_passes.max(3) {
        let (path, ws, page) = (server.database.clone(), ws.clone(), sizes.pull_page);
        let (rows, took) =
            tokio::task::spawn_blocking(move || raw_sqlite::scan_log(&path, &ws, page)).await??;
        if rows != total {
            bail!("the raw scan read {rows} rows, expected {total}");
        }
        best_scan = best_scan.max(per_second(rows, took));
    }
    figures.push(Figure {
        id: "P2",
        name: format!("pull changes/s over HTTP, pages of {}", sizes.pull_page),
        measured: Measure::new(best_pull, "changes/s"),
        baseline: Measure::new(best_scan, "rows/s"),
        baseline_name: format!(
            "rusqlite cursor scan of the same rows in the same file, same WHERE/ORDER BY/LIMIT, every column; best of {}",
            sizes.pull_passes.max(3)
        ),
        goal: Goal::RatioAtLeast(0.30),
    });
    crate::report::print_figure(&figures[2]);
    Ok(figures)
}

/// Rows per second of the raw batched insert of `ops` into a new file.
async fn raw_insert_rate(ctx: &RunContext, ws: &str, ops: &[MessageOp], file: &str) -> Result<f64> {
    let (path, ops, batch) = (ctx.dir.join(file), ops.to_vec(), ctx.sizes.push_batch);
    let ws = ws.to_owned();
    let rows = ops.len() as u64;
    let took = tokio::task::spawn_blocking(move || {
        let took = raw_sqlite::insert_batched(&path, &ws, &ops, batch);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        took
    })
    .await??;
    Ok(per_second(rows, took))
}

/// Pushes `total` ops spread over `workspaces` new workspaces at once.
async fn parallel_push_rate(
    server: &SyncServer,
    workspaces: usize,
    total: usize,
    batch: usize,
) -> Result<f64> {
    let mut plans = Vec::new();
    for i in 0..workspaces {
        let ws = server.create_workspace(&format!("p1-parallel-{i}")).await?;
        let mut factory = OpFactory::new();
        let warm: Vec<MessageOp> = (0..batch).map(|_| factory.message("")).collect();
        server.push(&ws, push_body(&warm)).await?;
        let ops: Vec<MessageOp> = (0..total / workspaces)
            .map(|_| factory.message(""))
            .collect();
        let bodies: Vec<String> = ops.chunks(batch).map(push_body).collect();
        plans.push((ws, bodies));
    }
    let started = Instant::now();
    let pushes = plans.into_iter().map(|(ws, bodies)| async move {
        let mut pushed = 0;
        for body in bodies {
            pushed += server.push(&ws, body).await?;
        }
        Ok::<_, anyhow::Error>(pushed)
    });
    let pushed: usize = futures_util::future::try_join_all(pushes)
        .await?
        .into_iter()
        .sum();
    Ok(per_second(pushed as u64, started.elapsed()))
}

/// A pull page as a client reads it: every change parsed, payloads kept raw.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    changes: Vec<PulledChange<'a>>,
    cursor: u64,
    has_more: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)] // Fields are parsed as a client would; only their count is used.
struct PulledChange<'a> {
    server_version: u64,
    table_name: &'a str,
    pk: &'a str,
    operation: &'a str,
    #[serde(borrow)]
    payload: &'a RawValue,
    clock: u64,
    hlc: &'a str,
    op_id: &'a str,
    device_id: &'a str,
    scope_change: bool,
}

/// Pulls the whole log of `ws` from cursor 0; returns the number of changes.
pub async fn pull_everything(server: &SyncServer, ws: &str, page: usize) -> Result<u64> {
    let (mut cursor, mut pulled) = (0u64, 0u64);
    loop {
        let bytes = pull_page(server, ws, cursor, page).await?;
        let page: Page<'_> = serde_json::from_slice(&bytes)?;
        pulled += page.changes.len() as u64;
        cursor = page.cursor;
        if !page.has_more {
            return Ok(pulled);
        }
    }
}

/// One `GET changes` answer, as bytes.
pub async fn pull_page(
    server: &SyncServer,
    ws: &str,
    cursor: u64,
    limit: usize,
) -> Result<bytes::Bytes> {
    let response = server
        .http
        .get(format!(
            "{}/v1/workspaces/{ws}/changes?cursor={cursor}&limit={limit}",
            server.base
        ))
        .bearer_auth(&server.token)
        .header("x-device-id", DEVICE_ID)
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "pull answered {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
    }
    Ok(bytes)
}
