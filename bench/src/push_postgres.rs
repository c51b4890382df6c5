//! P4: push throughput on Postgres (the shared store of several gateway
//! nodes). The same batches as P1 go through the binary started with
//! `--database postgres://...`; the baseline is the least the database must
//! do for the same rows: per batch, one transaction that bumps a counter row
//! and inserts the change-log rows (same table definition, indexes included)
//! with one `unnest`, on one connection per workspace.

use crate::report::{Figure, Goal, Measure};
use crate::run_context::RunContext;
use crate::server::SyncServer;
use crate::stats::per_second;
use crate::workload::{epoch_ms, push_body, MessageOp, OpFactory, DEVICE_ID};
use anyhow::{Context, Result};
use std::time::Instant;
use tokio_postgres::{Client, NoTls};

/// Batches pushed before timing starts (connections, statement caches).
const WARMUP_BATCHES: usize = 5;

/// Runs P4 in a schema of its own on `postgres`, dropped at the end.
pub async fn run(ctx: &RunContext, postgres: &str) -> Result<Vec<Figure>> {
    let schema = format!("or3_bench_{}", std::process::id());
    let admin = connect(postgres).await?;
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    let separator = if postgres.contains('?') { '&' } else { '?' };
    let url = format!("{postgres}{separator}schema={schema}");
    let figures = measure(ctx, postgres, &schema, &url).await;
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    figures
}

async fn connect(postgres: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(postgres, NoTls)
        .await
        .with_context(|| format!("Postgres is not reachable at {postgres}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A connection working in the bench's schema.
async fn connect_in(postgres: &str, schema: &str) -> Result<Client> {
    let client = connect(postgres).await?;
    client
        .batch_execute(&format!("SET search_path = \"{schema}\""))
        .await?;
    Ok(client)
}

async fn measure(ctx: &RunContext, postgres: &str, schema: &str, url: &str) -> Result<Vec<Figure>> {
    let sizes = &ctx.sizes;
    let server = ctx.launcher.start_postgres(url, &ctx.dir).await?;
    // The server made the schema when it migrated; the baseline's tables
    // copy its change log, indexes and all.
    connect_in(postgres, schema)
        .await?
        .batch_execute(
            "CREATE TABLE raw_heads (id text COLLATE \"C\" PRIMARY KEY, head bigint NOT NULL);
             CREATE TABLE raw_log (LIKE change_log INCLUDING ALL);",
        )
        .await?;
    let raw = RawInsert {
        postgres,
        schema,
        batch: sizes.push_batch,
    };
    let mut factory = OpFactory::new();

    let ws = server.create_workspace("p4").await?;
    let warmup: Vec<MessageOp> = (0..WARMUP_BATCHES * sizes.push_batch)
        .map(|_| factory.message(""))
        .collect();
    for chunk in warmup.chunks(sizes.push_batch) {
        server.push(&ws, push_body(chunk)).await?;
    }
    let ops: Vec<MessageOp> = (0..sizes.push_ops).map(|_| factory.message("")).collect();
    let raw_before = raw.rate(std::slice::from_ref(&ops), "one-before").await?;
    let bodies: Vec<String> = ops.chunks(sizes.push_batch).map(push_body).collect();
    let started = Instant::now();
    let mut pushed = 0;
    for body in bodies {
        pushed += server.push(&ws, body).await?;
    }
    let push_rate = per_second(pushed as u64, started.elapsed());
    let raw_after = raw.rate(&[ops], "one-after").await?;
    let mut figures = vec![Figure {
        id: "P4",
        name: format!(
            "push ops/s on Postgres, 1 workspace, batches of {}",
            sizes.push_batch
        ),
        measured: Measure::new(push_rate, "ops/s"),
        baseline: Measure::new(raw_before.max(raw_after), "rows/s"),
        baseline_name: raw.name(1),
        goal: Goal::RatioAtLeast(0.40),
    }];
    crate::report::print_figure(&figures[0]);

    // Workspaces in parallel, against the raw insert on as many connections.
    let workspaces = sizes.parallel_workspaces;
    let per_workspace = sizes.push_ops / workspaces;
    let mut plans = Vec::new();
    let mut raw_ops = Vec::new();
    for i in 0..workspaces {
        let ws = server.create_workspace(&format!("p4-parallel-{i}")).await?;
        let mut factory = OpFactory::new();
        let warm: Vec<MessageOp> = (0..sizes.push_batch).map(|_| factory.message("")).collect();
        server.push(&ws, push_body(&warm)).await?;
        let ops: Vec<MessageOp> = (0..per_workspace).map(|_| factory.message("")).collect();
        plans.push((ws, ops.chunks(sizes.push_batch).map(push_body).collect()));
        raw_ops.push(ops);
    }
    let raw_before = raw.rate(&raw_ops, "parallel-before").await?;
    let push_rate = parallel_push_rate(&server, plans).await?;
    let raw_after = raw.rate(&raw_ops, "parallel-after").await?;
    figures.push(Figure {
        id: "P4",
        name: format!(
            "push ops/s on Postgres, {workspaces} workspaces in parallel, batches of {}",
            sizes.push_batch
        ),
        measured: Measure::new(push_rate, "ops/s"),
        baseline: Measure::new(raw_before.max(raw_after), "rows/s"),
        baseline_name: raw.name(workspaces),
        goal: Goal::RatioAtLeast(0.40),
    });
    crate::report::print_figure(&figures[1]);
    Ok(figures)
}

/// Pushes every workspace's bodies at once, each workspace in order.
async fn parallel_push_rate(server: &SyncServer, plans: Vec<(String, Vec<String>)>) -> Result<f64> {
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

/// The raw baseline: batched `unnest` inserts of change-log rows.
struct RawInsert<'a> {
    postgres: &'a str,
    schema: &'a str,
    batch: usize,
}

impl RawInsert<'_> {
    fn name(&self, connections: usize) -> String {
        format!(
            "raw Postgres insert of the same change-log rows: per {} rows one transaction \
             (counter UPDATE + one unnest INSERT), {connections} connection(s); best of a run \
             before and one after",
            self.batch
        )
    }

    /// Rows per second of inserting each list of ops on a connection of its
    /// own, all at once; `tag` keeps each run's rows apart.
    async fn rate(&self, lists: &[Vec<MessageOp>], tag: &str) -> Result<f64> {
        let mut writers = Vec::new();
        for (i, ops) in lists.iter().enumerate() {
            let client = connect_in(self.postgres, self.schema).await?;
            let ws = format!("raw-{tag}-{i}");
            client
                .execute("INSERT INTO raw_heads (id, head) VALUES ($1, 0)", &[&ws])
                .await?;
            let batches: Vec<Columns> = ops.chunks(self.batch).map(Columns::of).collect();
            writers.push((client, ws, batches));
        }
        let rows: usize = lists.iter().map(Vec::len).sum();
        let started = Instant::now();
        let runs = writers
            .into_iter()
            .map(|(client, ws, batches)| insert_all(client, ws, batches));
        futures_util::future::try_join_all(runs).await?;
        Ok(per_second(rows as u64, started.elapsed()))
    }
}

/// One batch's rows, column by column.
struct Columns {
    pks: Vec<String>,
    payloads: Vec<String>,
    hlcs: Vec<String>,
    op_ids: Vec<String>,
}

impl Columns {
    fn of(ops: &[MessageOp]) -> Columns {
        Columns {
            pks: ops.iter().map(|o| o.pk.clone()).collect(),
            payloads: ops.iter().map(|o| o.payload.clone()).collect(),
            hlcs: ops.iter().map(|o| o.hlc.clone()).collect(),
            op_ids: ops.iter().map(|o| o.op_id.clone()).collect(),
        }
    }
}

async fn insert_all(mut client: Client, ws: String, batches: Vec<Columns>) -> Result<()> {
    let bump = client
        .prepare("UPDATE raw_heads SET head = head + $2 WHERE id = $1 RETURNING head")
        .await?;
    let insert = client
        .prepare(
            "INSERT INTO raw_log (workspace_id, server_version, table_name, pk, operation, payload,
                 clock, hlc, op_id, device_id, scoped, project_id, prev_project_id, scope_change,
                 committed_at)
             SELECT $1, $2 + n, 'messages', pk, 'put', payload, 1, hlc, op_id, $6, true, NULL,
                 NULL, false, $7
             FROM unnest($3::text[], $4::text[], $5::text[], $8::text[])
                 WITH ORDINALITY AS r(pk, payload, hlc, op_id, n)",
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
                &DEVICE_ID,
                &(epoch_ms() as i64),
                &batch.op_ids,
            ],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
