//! P1 (push throughput) and P2 (pull throughput) against the raw SQLite
//! work on the same rows: inserting them, and scanning them back.

use crate::raw_sqlite::{self, RawRows, RawWriter};
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

/// Time spent and ops written by the server and by each raw baseline,
/// summed over interleaved rounds (so background load hits all alike).
#[derive(Default)]
struct Tally {
    ops: u64,
    server: Duration,
    raw_same: Duration,
    raw_log: Duration,
}

impl Tally {
    fn rates(&self) -> (f64, f64, f64) {
        (
            per_second(self.ops, self.server),
            per_second(self.ops, self.raw_same),
            per_second(self.ops, self.raw_log),
        )
    }
}

/// The raw baselines' connections, kept across rounds.
struct RawWriters {
    same: Option<RawWriter>,
    log: Option<RawWriter>,
}

impl RawWriters {
    async fn open(ctx: &RunContext) -> Result<RawWriters> {
        let same_path = ctx.dir.join("raw-same-rows.db");
        let url = format!("sqlite://{}", same_path.display());
        ctx.launcher.run_command(&["migrate", "--database", &url])?;
        // The log-only baseline appends to the server's own change_log table
        // (the schema's other tables stay empty).
        let log_path = ctx.dir.join("raw-log-only.db");
        let log_url = format!("sqlite://{}", log_path.display());
        ctx.launcher
            .run_command(&["migrate", "--database", &log_url])?;
        Ok(RawWriters {
            same: Some(RawWriter::open(&same_path, RawRows::SameAsServer)?),
            log: Some(RawWriter::open(&log_path, RawRows::LogOnly)?),
        })
    }

    /// Inserts `batches` with both baselines; returns (same rows, log only) times.
    async fn insert(
        &mut self,
        batches: Vec<(String, Vec<MessageOp>)>,
    ) -> Result<(Duration, Duration)> {
        let batches = std::sync::Arc::new(batches);
        let same = insert_with(&mut self.same, batches.clone()).await?;
        let log = insert_with(&mut self.log, batches).await?;
        Ok((same, log))
    }
}

async fn insert_with(
    slot: &mut Option<RawWriter>,
    batches: std::sync::Arc<Vec<(String, Vec<MessageOp>)>>,
) -> Result<Duration> {
    let mut writer = slot.take().context("a raw writer failed earlier")?;
    let (writer, took) = tokio::task::spawn_blocking(move || {
        let took = writer.insert(&batches);
        (writer, took)
    })
    .await?;
    *slot = Some(writer);
    took
}

/// Runs P1 (one workspace, then parallel workspaces) and P2 on one server.
pub async fn run(ctx: &RunContext) -> Result<Vec<Figure>> {
    let sizes = &ctx.sizes;
    let server = ctx.launcher.start(&ctx.dir.join("push-pull.db")).await?;
    let ws = server.create_workspace("p1").await?;
    let mut raw = RawWriters::open(ctx).await?;
    let mut factory = OpFactory::new();

    let warmup: Vec<MessageOp> = (0..WARMUP_BATCHES * sizes.push_batch)
        .map(|_| factory.message(""))
        .collect();
    for chunk in warmup.chunks(sizes.push_batch) {
        server.push(&ws, push_body(chunk)).await?;
    }
    raw.insert(batches_of(&ws, &warmup, sizes.push_batch))
        .await?;

    // P1, one workspace: rounds alternate server and raw inserts; every
    // request body is built before its round's clock starts.
    let per_round = sizes.push_ops / sizes.push_rounds;
    let mut single = Tally::default();
    for _ in 0..sizes.push_rounds {
        let ops: Vec<MessageOp> = (0..per_round).map(|_| factory.message("")).collect();
        let bodies: Vec<String> = ops.chunks(sizes.push_batch).map(push_body).collect();
        let started = Instant::now();
        let mut pushed = 0;
        for body in bodies {
            pushed += server.push(&ws, body).await?;
        }
        single.server += started.elapsed();
        let (same, log) = raw.insert(batches_of(&ws, &ops, sizes.push_batch)).await?;
        single.raw_same += same;
        single.raw_log += log;
        single.ops += pushed as u64;
    }

    // P1, workspaces in parallel: the same number of ops in all.
    let parallel = parallel_rounds(ctx, &server, &mut raw)
        .await
        .context("parallel pushes")?;

    let baseline_name = format!(
        "raw INSERTs of the rows the server stores per op (change_log, records, applied_ops; \
         its schema), {} ops per transaction, WAL, synchronous=FULL; rounds interleaved with the server's",
        sizes.push_batch
    );
    let mut figures = Vec::new();
    for (tally, what) in [
        (&single, "1 workspace".to_owned()),
        (
            &parallel,
            format!("{} workspaces in parallel", sizes.parallel_workspaces),
        ),
    ] {
        let (server_rate, same_rate, log_rate) = tally.rates();
        ctx.note(format!(
            "P1 {what}: a bare change-log append of the same ops (one row per op) ran at {} rows/s; the server reaches {:.2} of that",
            Measure::new(log_rate, "rows/s").to_string().trim_end_matches(" rows/s"),
            server_rate / log_rate
        ));
        figures.push(Figure {
            id: "P1",
            name: format!(
                "push ops/s, {what}, batches of {}, HTTP+auth+LWW",
                sizes.push_batch
            ),
            measured: Measure::new(server_rate, "ops/s"),
            baseline: Measure::new(same_rate, "ops/s"),
            baseline_name: baseline_name.clone(),
            goal: Goal::RatioAtLeast(0.40),
        });
        crate::report::print_figure(figures.last().context("a figure")?);
    }

    // P2: pull the one-workspace log back page by page, passes interleaved
    // with raw scans of the same rows in the same file.
    let total = (single.ops as usize + warmup.len()) as u64;
    let (mut pull_time, mut scan_time, mut parse_time) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..sizes.pull_passes {
        let started = Instant::now();
        let pass = pull_everything(&server, &ws, sizes.pull_page).await?;
        pull_time += started.elapsed();
        parse_time += pass.parsing;
        let pulled = pass.changes;
        if pulled != total {
            bail!("pulled {pulled} changes, expected {total}");
        }
        let (path, ws, page) = (server.database.clone(), ws.clone(), sizes.pull_page);
        let (rows, took) =
            tokio::task::spawn_blocking(move || raw_sqlite::scan_log(&path, &ws, page)).await??;
        if rows != total {
            bail!("the raw scan read {rows} rows, expected {total}");
        }
        scan_time += took;
    }
    let passes = sizes.pull_passes as u64;
    ctx.note(format!(
        "P2: the client spent {:.0}% of the pull time parsing pages (it shares the two cores with the server)",
        100.0 * parse_time.as_secs_f64() / pull_time.as_secs_f64().max(1e-9)
    ));
    figures.push(Figure {
        id: "P2",
        name: format!("pull changes/s over HTTP, pages of {}", sizes.pull_page),
        measured: Measure::new(per_second(total * passes, pull_time), "changes/s"),
        baseline: Measure::new(per_second(total * passes, scan_time), "rows/s"),
        baseline_name: format!(
            "rusqlite scan of the same rows in the same file with the server's pull query \
             (same WHERE/ORDER BY/LIMIT), every column read; {passes} passes interleaved with the pulls"
        ),
        goal: Goal::RatioAtLeast(0.30),
    });
    crate::report::print_figure(figures.last().context("a figure")?);
    Ok(figures)
}

/// `ops` as batches of `size`, all for `ws`.
fn batches_of(ws: &str, ops: &[MessageOp], size: usize) -> Vec<(String, Vec<MessageOp>)> {
    ops.chunks(size)
        .map(|chunk| (ws.to_owned(), chunk.to_vec()))
        .collect()
}

/// P1 with workspaces pushed in parallel, in rounds interleaved with raw
/// inserts of the same batches (round-robin over the workspaces).
async fn parallel_rounds(
    ctx: &RunContext,
    server: &SyncServer,
    raw: &mut RawWriters,
) -> Result<Tally> {
    let sizes = &ctx.sizes;
    let mut workspaces = Vec::new();
    for i in 0..sizes.parallel_workspaces {
        let ws = server.create_workspace(&format!("p1-parallel-{i}")).await?;
        let mut factory = OpFactory::new();
        let warm: Vec<MessageOp> = (0..sizes.push_batch).map(|_| factory.message("")).collect();
        server.push(&ws, push_body(&warm)).await?;
        raw.insert(batches_of(&ws, &warm, sizes.push_batch)).await?;
        workspaces.push((ws, factory));
    }
    let per_workspace = sizes.push_ops / sizes.push_rounds / sizes.parallel_workspaces;
    let mut tally = Tally::default();
    for _ in 0..sizes.push_rounds {
        let mut plans = Vec::new();
        let mut raw_batches = Vec::new();
        for (ws, factory) in &mut workspaces {
            let ops: Vec<MessageOp> = (0..per_workspace).map(|_| factory.message("")).collect();
            raw_batches.push(batches_of(ws, &ops, sizes.push_batch));
            let bodies: Vec<String> = ops.chunks(sizes.push_batch).map(push_body).collect();
            plans.push((ws.clone(), bodies));
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
        tally.server += started.elapsed();
        tally.ops += pushed as u64;
        let (same, log) = raw.insert(round_robin(raw_batches)).await?;
        tally.raw_same += same;
        tally.raw_log += log;
    }
    Ok(tally)
}

/// Batches of every workspace, taking one of each in turn.
fn round_robin(per_workspace: Vec<Vec<(String, Vec<MessageOp>)>>) -> Vec<(String, Vec<MessageOp>)> {
    let mut queues: Vec<_> = per_workspace.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for queue in &mut queues {
            out.extend(queue.next());
        }
        if out.len() == before {
            return out;
        }
    }
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

/// What pulling a whole log took.
pub struct PullPass {
    /// Changes received.
    pub changes: u64,
    /// Time spent parsing pages in the client (part of the pass's time).
    pub parsing: Duration,
}

/// Pulls the whole log of `ws` from cursor 0, parsing every page.
pub async fn pull_everything(server: &SyncServer, ws: &str, page: usize) -> Result<PullPass> {
    let mut pass = PullPass {
        changes: 0,
        parsing: Duration::ZERO,
    };
    let mut cursor = 0u64;
    loop {
        let bytes = pull_page(server, ws, cursor, page).await?;
        let parse_started = Instant::now();
        let page: Page<'_> = serde_json::from_slice(&bytes)?;
        pass.parsing += parse_started.elapsed();
        pass.changes += page.changes.len() as u64;
        cursor = page.cursor;
        if !page.has_more {
            return Ok(pass);
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
