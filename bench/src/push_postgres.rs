//! P1-pg: push throughput on Postgres (the shared store of several gateway
//! nodes), measured like P1: the same batches go through the binary started
//! with `--database postgres://...`, in rounds interleaved with the raw
//! baselines, on the same database:
//!
//! - the figure's baseline writes the rows the server stores per op, in its
//!   schema (a second schema made by `or3-sync migrate`): per batch one
//!   transaction that bumps the workspace's counter row, inserts the
//!   change-log rows with one `unnest` and the record rows with another;
//! - a note gives a bare change-log append (counter bump and one `unnest`
//!   into a copy of `change_log`, indexes included).
//!
//! Workspaces in parallel use one connection per workspace in the baselines
//! too: Postgres, unlike SQLite, writes on many connections at once.

use crate::report::{Figure, Goal, Measure};
use crate::run_context::RunContext;
use crate::server::SyncServer;
use crate::stats::per_second;
use crate::workload::{epoch_ms, push_body, MessageOp, OpFactory, DEVICE_ID};
use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// Batches pushed before timing starts (connections, statement caches).
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

/// Runs P1-pg in schemas of its own on `postgres`, dropped at the end.
pub async fn run(ctx: &RunContext, postgres: &str) -> Result<Vec<Figure>> {
    let tag = format!("or3_bench_{}", std::process::id());
    in_scratch_schemas(postgres, &tag, async |server, raw| {
        measure(ctx, postgres, server, raw).await
    })
    .await
}

/// Runs `work` with two schema names of its own on `postgres` (`<tag>_server`
/// for the server under test, `<tag>_raw` for the baseline), dropped before
/// and after, whatever `work` returns.
pub async fn in_scratch_schemas<T>(
    postgres: &str,
    tag: &str,
    work: impl AsyncFnOnce(&str, &str) -> Result<T>,
) -> Result<T> {
    let schemas = [format!("{tag}_server"), format!("{tag}_raw")];
    let admin = connect(postgres).await?;
    let drop_schemas = || async {
        for schema in &schemas {
            admin
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    drop_schemas().await?;
    let result = work(&schemas[0], &schemas[1]).await;
    drop_schemas().await?;
    result
}

pub async fn connect(postgres: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(postgres, NoTls)
        .await
        .with_context(|| format!("Postgres is not reachable at {postgres}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

pub fn with_schema(postgres: &str, schema: &str) -> String {
    let separator = if postgres.contains('?') { '&' } else { '?' };
    format!("{postgres}{separator}schema={schema}")
}

async fn measure(
    ctx: &RunContext,
    postgres: &str,
    server_schema: &str,
    raw_schema: &str,
) -> Result<Vec<Figure>> {
    let sizes = &ctx.sizes;
    let server = ctx
        .launcher
        .start_postgres(&with_schema(postgres, server_schema), &ctx.dir)
        .await?;
    let raw = RawPostgres::open(ctx, postgres, raw_schema).await?;
    let mut factory = OpFactory::new();

    let ws = server.create_workspace("p1-pg").await?;
    raw.add_workspace(&ws).await?;
    let warmup: Vec<MessageOp> = (0..WARMUP_BATCHES * sizes.push_batch)
        .map(|_| factory.message(""))
        .collect();
    for chunk in warmup.chunks(sizes.push_batch) {
        server.push(&ws, push_body(chunk)).await?;
    }
    raw.insert(&[(ws.clone(), warmup)]).await?;

    // One workspace: rounds alternate the server and the raw inserts.
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
        single.ops += pushed as u64;
        let (same, log) = raw.insert(&[(ws.clone(), ops)]).await?;
        single.raw_same += same;
        single.raw_log += log;
    }

    let parallel = parallel_rounds(ctx, &server, &raw)
        .await
        .context("parallel pushes")?;

    let baseline_name = format!(
        "raw Postgres inserts of the rows the server stores per op (change_log and records, \
         its schema): per {} ops one transaction, counter UPDATE + one unnest INSERT per table, \
         one connection per workspace; rounds interleaved with the server's",
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
        let server_rate = per_second(tally.ops, tally.server);
        let same_rate = per_second(tally.ops, tally.raw_same);
        let log_rate = per_second(tally.ops, tally.raw_log);
        ctx.note(format!(
            "P1-pg {what}: a bare change-log append of the same ops on Postgres (counter UPDATE + one unnest INSERT) ran at {} rows/s; the server reaches {:.2} of that",
            Measure::new(log_rate, "rows/s").to_string().trim_end_matches(" rows/s"),
            server_rate / log_rate
        ));
        figures.push(Figure {
            id: "P1-pg",
            name: format!(
                "push ops/s on Postgres, {what}, batches of {}, HTTP+auth+LWW",
                sizes.push_batch
            ),
            measured: Measure::new(server_rate, "ops/s"),
            baseline: Measure::new(same_rate, "ops/s"),
            baseline_name: baseline_name.clone(),
            goal: Goal::RatioAtLeast(0.40),
        });
        crate::report::print_figure(figures.last().context("a figure")?);
    }
    Ok(figures)
}

/// Workspaces pushed at once, each in order, in rounds with the baselines.
async fn parallel_rounds(
    ctx: &RunContext,
    server: &SyncServer,
    raw: &RawPostgres<'_>,
) -> Result<Tally> {
    let sizes = &ctx.sizes;
    let mut workspaces = Vec::new();
    for i in 0..sizes.parallel_workspaces {
        let ws = server.create_workspace(&format!("p4-parallel-{i}")).await?;
        raw.add_workspace(&ws).await?;
        let mut factory = OpFactory::new();
        let warm: Vec<MessageOp> = (0..sizes.push_batch).map(|_| factory.message("")).collect();
        server.push(&ws, push_body(&warm)).await?;
        raw.insert(&[(ws.clone(), warm)]).await?;
        workspaces.push((ws, factory));
    }
    let per_workspace = sizes.push_ops / sizes.push_rounds / sizes.parallel_workspaces;
    let mut tally = Tally::default();
    for _ in 0..sizes.push_rounds {
        let mut plans = Vec::new();
        let mut raw_work = Vec::new();
        for (ws, factory) in &mut workspaces {
            let ops: Vec<MessageOp> = (0..per_workspace).map(|_| factory.message("")).collect();
            plans.push((
                ws.clone(),
                ops.chunks(sizes.push_batch)
                    .map(push_body)
                    .collect::<Vec<_>>(),
            ));
            raw_work.push((ws.clone(), ops));
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
        let (same, log) = raw.insert(&raw_work).await?;
        tally.raw_same += same;
        tally.raw_log += log;
    }
    Ok(tally)
}

/// The raw baselines: a schema made by the server's own migrations, plus a
/// copy of its change log for the bare append.
pub struct RawPostgres<'a> {
    postgres: &'a str,
    schema: &'a str,
    batch: usize,
}

impl<'a> RawPostgres<'a> {
    pub async fn open(
        ctx: &RunContext,
        postgres: &'a str,
        schema: &'a str,
    ) -> Result<RawPostgres<'a>> {
        let url = with_schema(postgres, schema);
        let launcher = &ctx.launcher;
        tokio::task::block_in_place(|| launcher.run_command(&["migrate", "--database", &url]))?;
        let raw = RawPostgres {
            postgres,
            schema,
            batch: ctx.sizes.push_batch,
        };
        raw.connection()
            .await?
            .batch_execute("CREATE TABLE raw_log (LIKE change_log INCLUDING ALL)")
            .await?;
        Ok(raw)
    }

    async fn connection(&self) -> Result<Client> {
        let client = connect(self.postgres).await?;
        client
            .batch_execute(&format!("SET search_path = \"{}\"", self.schema))
            .await?;
        Ok(client)
    }

    /// The counter row the baselines bump.
    pub async fn add_workspace(&self, ws: &str) -> Result<()> {
        self.connection()
            .await?
            .execute(
                "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $1, 0)",
                &[&ws],
            )
            .await?;
        Ok(())
    }

    /// A connection that commits what the figure's baseline writes (the
    /// server's rows), one transaction per call.
    pub async fn same_rows_inserter(&self) -> Result<RawInserter> {
        RawInserter::prepare(self.connection().await?, Rows::SameAsServer).await
    }

    /// Inserts each workspace's ops on a connection of its own, all at once,
    /// with both baselines; returns (same rows, log only) times.
    async fn insert(&self, work: &[(String, Vec<MessageOp>)]) -> Result<(Duration, Duration)> {
        let mut times = [Duration::ZERO; 2];
        for (kind, time) in [Rows::SameAsServer, Rows::LogOnly]
            .into_iter()
            .zip(&mut times)
        {
            let mut writers = Vec::new();
            for (ws, ops) in work {
                let client = self.connection().await?;
                let batches: Vec<Columns> = ops.chunks(self.batch).map(Columns::of).collect();
                writers.push((client, ws.clone(), batches));
            }
            let started = Instant::now();
            let runs = writers
                .into_iter()
                .map(|(client, ws, batches)| insert_all(client, ws, batches, kind));
            futures_util::future::try_join_all(runs).await?;
            *time = started.elapsed();
        }
        Ok((times[0], times[1]))
    }
}

#[derive(Clone, Copy)]
enum Rows {
    /// Change-log and record rows, like the server.
    SameAsServer,
    /// Change-log rows only, into the copy.
    LogOnly,
}

/// One batch's rows, column by column.
struct Columns {
    pks: Vec<String>,
    payloads: Vec<String>,
    hlcs: Vec<String>,
    op_ids: Vec<String>,
    threads: Vec<Option<String>>,
}

impl Columns {
    fn of(ops: &[MessageOp]) -> Columns {
        Columns {
            pks: ops.iter().map(|o| o.pk.clone()).collect(),
            payloads: ops.iter().map(|o| o.payload.clone()).collect(),
            hlcs: ops.iter().map(|o| o.hlc.clone()).collect(),
            op_ids: ops.iter().map(|o| o.op_id.clone()).collect(),
            threads: ops.iter().map(|o| Some(o.thread_id.clone())).collect(),
        }
    }
}

const LOG_COLUMNS: &str = "workspace_id, server_version, table_name, pk, operation, payload, \
     clock, hlc, op_id, device_id, scoped, project_id, prev_project_id, scope_change, committed_at";

async fn insert_all(client: Client, ws: String, batches: Vec<Columns>, rows: Rows) -> Result<()> {
    let mut inserter = RawInserter::prepare(client, rows).await?;
    for batch in &batches {
        inserter.commit(&ws, batch).await?;
    }
    Ok(())
}

/// A connection with the baseline's statements prepared: each batch is one
/// transaction (counter `UPDATE`, then the rows with `unnest`).
pub struct RawInserter {
    client: Client,
    bump: tokio_postgres::Statement,
    insert: tokio_postgres::Statement,
}

impl RawInserter {
    async fn prepare(client: Client, rows: Rows) -> Result<RawInserter> {
        let bump = client
            .prepare("UPDATE workspaces SET head = head + $2 WHERE id = $1 RETURNING head")
            .await?;
        let log_rows =
            "SELECT $1, $2 + n, 'messages', pk, 'put', payload, 1, hlc, op_id, $6, true, \
             NULL, NULL, false, $7
             FROM unnest($3::text[], $4::text[], $5::text[], $8::text[], $9::text[])
                 WITH ORDINALITY AS r(pk, payload, hlc, op_id, thread_id, n)";
        let insert = client
            .prepare(&match rows {
                Rows::SameAsServer => format!(
                    "WITH log AS (
                         INSERT INTO change_log ({LOG_COLUMNS}) {log_rows}
                         RETURNING server_version, pk, payload, hlc, op_id
                     )
                     INSERT INTO records (workspace_id, table_name, pk, clock, hlc, op_id,
                         server_version, deleted, payload, scope_kind, project_id, thread_id,
                         committed_at)
                     SELECT $1, 'messages', l.pk, 1, l.hlc, l.op_id, l.server_version, false,
                         l.payload, 2, NULL, r.thread_id, $7
                     FROM log l JOIN unnest($3::text[], $9::text[]) AS r(pk, thread_id) USING (pk)"
                ),
                Rows::LogOnly => format!("INSERT INTO raw_log ({LOG_COLUMNS}) {log_rows}"),
            })
            .await?;
        Ok(RawInserter {
            client,
            bump,
            insert,
        })
    }

    /// Commits `batch` of `ws` in one transaction.
    async fn commit(&mut self, ws: &str, batch: &Columns) -> Result<()> {
        let tx = self.client.transaction().await?;
        let n = batch.pks.len() as i64;
        let head: i64 = tx.query_one(&self.bump, &[&ws, &n]).await?.try_get(0)?;
        tx.execute(
            &self.insert,
            &[
                &ws,
                &(head - n),
                &batch.pks,
                &batch.payloads,
                &batch.hlcs,
                &DEVICE_ID,
                &(epoch_ms() as i64),
                &batch.op_ids,
                &batch.threads,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Commits one op at a time until the commits have taken `budget` in
    /// all; `next` makes each op and its workspace, off the clock. Returns
    /// each commit's time.
    pub async fn commit_single_ops_for(
        &mut self,
        budget: Duration,
        mut next: impl FnMut() -> (String, MessageOp),
    ) -> Result<Vec<Duration>> {
        let mut commits = Vec::new();
        let mut spent = Duration::ZERO;
        while spent < budget {
            let (ws, op) = next();
            let batch = Columns::of(std::slice::from_ref(&op));
            let started = Instant::now();
            self.commit(&ws, &batch).await?;
            let took = started.elapsed();
            spent += took;
            commits.push(took);
        }
        Ok(commits)
    }
}
