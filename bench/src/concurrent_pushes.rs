//! P8 and P8-pg: chat-shaped load. Many clients at once (one device each,
//! spread over several workspaces), each pushing one message per push as
//! fast as the answers come, against the disk's own rate of single-row
//! commits: one transaction (on SQLite one fsync) per op, measured in
//! rounds interleaved with the server's.
//!
//! The load must cost less than the server it measures (they share the
//! machine's cores), so the clients are lean (`http_load.rs`): each is a task
//! on a one-thread runtime of its own with a kept-alive connection of its
//! own, its push request prepared once and rewritten in place for each op.
//! After each push round the same clients send the server's cheapest
//! authenticated request (`GET /v1/config`: the token check, the rate
//! limiter and the rest of the middleware, no storage) for as long: the
//! request path's ceiling, reported beside the pushes. The run notes the
//! CPU the bench and the server used per request, and the peaks of requests
//! in flight and of connections open to the server.

use crate::http_load::{contains, request_head, KeepAliveConnection, LoadRuntime};
use crate::machine::cpu_time;
use crate::push_postgres::{self, RawPostgres};
use crate::raw_sqlite::{RawRows, RawWriter};
use crate::report::{Figure, Goal, Measure};
use crate::run_context::RunContext;
use crate::server::SyncServer;
use crate::stats::{per_second, percentile};
use crate::workload::{MessageOp, OpFactory, SinglePushRequest};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The goal: this many times the single-commit rate…
const RATIO_GOAL: f64 = 3.0;
/// …with the push latency's p99 at most this (ms).
const P99_GOAL_MS: f64 = 50.0;

/// Runs P8: the load against `or3-sync` on SQLite (`synchronous=FULL`),
/// and single-op commits into a file of the server's schema beside it.
pub async fn run_sqlite(ctx: &RunContext) -> Result<Vec<Figure>> {
    let server = Arc::new(ctx.launcher.start(&ctx.dir.join("p8.db")).await?);
    let raw_path = ctx.dir.join("p8-raw-single-commits.db");
    let url = format!("sqlite://{}", raw_path.display());
    ctx.launcher.run_command(&["migrate", "--database", &url])?;
    let writer = RawWriter::open(&raw_path, RawRows::SameAsServer)?;
    let ops = RawOps::new(ctx.sizes.concurrent_workspaces);
    let mut baseline = Baseline::Sqlite(Some((writer, ops)));
    let measured = measure(ctx, &server, "P8", &mut baseline).await?;
    Ok(measured.figures(
        ctx,
        "P8",
        "HTTP+auth+LWW, SQLite synchronous=FULL",
        "raw single-op commits of the rows the server stores per op (change_log, records, \
         applied_ops; its schema): BEGIN IMMEDIATE, the rows, COMMIT, one fsync each, WAL, \
         synchronous=FULL",
    ))
}

/// Runs P8-pg: the same load against `or3-sync` on Postgres, and single-op
/// transactions of the server's rows on one connection, in schemas of their
/// own that are dropped at the end.
pub async fn run_postgres(ctx: &RunContext, postgres: &str) -> Result<Vec<Figure>> {
    let tag = format!("or3_bench_{}_p8", std::process::id());
    push_postgres::in_scratch_schemas(postgres, &tag, async |server, raw| {
        measure_postgres(ctx, postgres, server, raw).await
    })
    .await
}

async fn measure_postgres(
    ctx: &RunContext,
    postgres: &str,
    server_schema: &str,
    raw_schema: &str,
) -> Result<Vec<Figure>> {
    let server = Arc::new(
        ctx.launcher
            .start_postgres(
                &push_postgres::with_schema(postgres, server_schema),
                &ctx.dir,
            )
            .await?,
    );
    let raw = RawPostgres::open(ctx, postgres, raw_schema).await?;
    let ops = RawOps::new(ctx.sizes.concurrent_workspaces);
    for ws in &ops.workspaces {
        raw.add_workspace(ws).await?;
    }
    let mut baseline = Baseline::Postgres(raw.same_rows_inserter().await?, ops);
    let measured = measure(ctx, &server, "P8-pg", &mut baseline).await?;
    Ok(measured.figures(
        ctx,
        "P8-pg",
        "HTTP+auth+LWW, Postgres",
        "raw single-op transactions of the rows the server stores per op (change_log and \
         records, its schema) on one connection: BEGIN, counter UPDATE, one INSERT for both \
         tables, COMMIT (synchronous_commit as the database has it)",
    ))
}

/// The raw single-op commits a figure is measured against.
enum Baseline {
    /// On SQLite, on a blocking thread (`None` while it runs there).
    Sqlite(Option<(RawWriter, RawOps)>),
    /// On Postgres, one connection.
    Postgres(push_postgres::RawInserter, RawOps),
}

impl Baseline {
    /// Commits single ops until the commits took `budget`; each commit's time.
    async fn commit_for(&mut self, budget: Duration) -> Result<Vec<Duration>> {
        match self {
            Baseline::Sqlite(slot) => {
                let (mut writer, mut ops) = slot.take().context("a raw round failed earlier")?;
                let (writer, ops, commits) = tokio::task::spawn_blocking(move || {
                    let commits = writer.commit_single_ops_for(budget, || ops.next());
                    (writer, ops, commits)
                })
                .await?;
                *slot = Some((writer, ops));
                commits
            }
            Baseline::Postgres(inserter, ops) => {
                inserter.commit_single_ops_for(budget, || ops.next()).await
            }
        }
    }
}

/// The baseline's ops: one device per workspace, taken in turn.
struct RawOps {
    workspaces: Vec<String>,
    factories: Vec<OpFactory>,
    turn: usize,
}

impl RawOps {
    fn new(workspaces: usize) -> RawOps {
        let workspaces = workspaces.max(1);
        RawOps {
            workspaces: (0..workspaces).map(|i| format!("p8-raw-{i}")).collect(),
            factories: (0..workspaces)
                .map(|i| OpFactory::for_device(&device_id(1_000_000 + i)))
                .collect(),
            turn: 0,
        }
    }

    fn next(&mut self) -> (String, MessageOp) {
        let i = self.turn % self.workspaces.len();
        self.turn += 1;
        (self.workspaces[i].clone(), self.factories[i].message(""))
    }
}

/// The `n`th bench device's id (16 lowercase hex characters).
fn device_id(n: usize) -> String {
    format!("be08{:012x}", n)
}

/// The request the no-op rounds send: authenticated, and touching no storage.
const NO_OP_PATH: &str = "/v1/config";

/// One client: a device pushing to its workspace over a connection of its own.
struct PushClient {
    factory: OpFactory,
    /// Its push, rewritten in place for each op.
    request: SinglePushRequest,
    /// What the answer to its current push holds when the op was applied.
    applied: Vec<u8>,
    /// Its pushes answered in the timed rounds (fairness shows in the spread).
    pushed: u64,
}

impl PushClient {
    /// Makes its next push: a new op, and the answer that applies it.
    fn next_push(&mut self) -> &[u8] {
        self.factory.message_into(&mut self.request);
        self.applied.clear();
        self.applied.extend_from_slice(br#""op_id":""#);
        self.applied.extend_from_slice(self.request.op_id());
        self.applied.extend_from_slice(br#"","status":"applied""#);
        self.request.bytes()
    }
}

/// What the clients send in a round.
#[derive(Clone)]
enum Requests {
    /// Each its own single-op pushes.
    Pushes,
    /// The authenticated no-op request (its whole bytes), over and over.
    NoOps(Arc<[u8]>),
}

/// What one round of load did.
#[derive(Default)]
struct LoadTally {
    requests: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time used during the round by the bench (the clients) and the server.
    bench_cpu: Duration,
    server_cpu: Duration,
}

impl LoadTally {
    fn add(&mut self, round: LoadTally) {
        self.requests += round.requests;
        self.elapsed += round.elapsed;
        self.latencies.extend(round.latencies);
        self.bench_cpu += round.bench_cpu;
        self.server_cpu += round.server_cpu;
    }
}

/// The server's and the baseline's totals over all rounds.
struct Measured {
    clients: usize,
    workspaces: usize,
    server: LoadTally,
    /// The no-op rounds: the request path's ceiling.
    no_ops: LoadTally,
    raw_commits: Vec<Duration>,
    raw_elapsed: Duration,
    peak_in_flight: usize,
    peak_connections: Option<usize>,
    /// Pushes answered per client, fewest first.
    per_client: Vec<u64>,
}

/// Starts the clients, warms the server up, then runs rounds of load, each
/// followed by a no-op round and the baseline for as long.
async fn measure(
    ctx: &RunContext,
    server: &Arc<SyncServer>,
    id: &str,
    baseline: &mut Baseline,
) -> Result<Measured> {
    let sizes = &ctx.sizes;
    let addr = server.socket_addr()?;
    let mut clients = Vec::new();
    let per_workspace = sizes
        .concurrent_clients
        .div_ceil(sizes.concurrent_workspaces);
    for w in 0..sizes.concurrent_workspaces {
        let ws = server.create_workspace(&format!("{id}-{w}")).await?;
        let path = format!("/v1/workspaces/{ws}/push");
        for c in 0..per_workspace {
            if clients.len() == sizes.concurrent_clients {
                break;
            }
            let factory = OpFactory::for_device(&device_id(w * per_workspace + c));
            let request = SinglePushRequest::new(&factory, |len| {
                request_head("POST", &path, addr, &server.token, Some(len))
            });
            clients.push(PushClient {
                factory,
                request,
                applied: Vec::new(),
                pushed: 0,
            });
        }
    }
    let no_ops = Requests::NoOps(request_head("GET", NO_OP_PATH, addr, &server.token, None).into());
    let load = Load {
        runtime: LoadRuntime::new()?,
        addr,
        server_pid: server.process.pid(),
    };
    let peaks = Peaks::default();
    let (warm_clients, _) = load
        .run(clients, sizes.concurrent_warmup, Requests::Pushes, &peaks)
        .await
        .context("warm-up")?;
    clients = warm_clients;
    for client in &mut clients {
        client.pushed = 0;
    }
    baseline
        .commit_for(Duration::from_millis(200))
        .await
        .context("raw warm-up")?;

    let mut measured = Measured {
        clients: sizes.concurrent_clients,
        workspaces: sizes.concurrent_workspaces,
        server: LoadTally::default(),
        no_ops: LoadTally::default(),
        raw_commits: Vec::new(),
        raw_elapsed: Duration::ZERO,
        peak_in_flight: 0,
        peak_connections: None,
        per_client: Vec::new(),
    };
    let peaks = Peaks::default();
    for n in 1..=sizes.concurrent_rounds {
        let sampler = peaks.sample_connections(addr.port(), sizes.concurrent_round / 2);
        let (back, pushes) = load
            .run(clients, sizes.concurrent_round, Requests::Pushes, &peaks)
            .await
            .with_context(|| format!("round {n}"))?;
        sampler.abort();
        let (back, ceiling) = load
            .run(back, pushes.elapsed, no_ops.clone(), &Peaks::default())
            .await
            .with_context(|| format!("no-op round {n}"))?;
        clients = back;
        let commits = baseline
            .commit_for(pushes.elapsed)
            .await
            .with_context(|| format!("raw round {n}"))?;
        measured.server.add(pushes);
        measured.no_ops.add(ceiling);
        measured.raw_elapsed += commits.iter().sum::<Duration>();
        measured.raw_commits.extend(commits);
    }
    measured.per_client = clients.iter().map(|c| c.pushed).collect();
    measured.per_client.sort_unstable();
    measured.peak_in_flight = peaks.in_flight_peak.load(Ordering::Relaxed);
    let connections = peaks.connections_peak.load(Ordering::Relaxed);
    measured.peak_connections = (connections > 0).then_some(connections);
    Ok(measured)
}

impl Measured {
    /// P8's figures: pushes/s against the raw single commits, and against
    /// the same server's no-op requests/s.
    fn figures(
        mut self,
        ctx: &RunContext,
        id: &'static str,
        what: &str,
        baseline: &str,
    ) -> Vec<Figure> {
        self.server.latencies.sort_unstable();
        self.no_ops.latencies.sort_unstable();
        self.raw_commits.sort_unstable();
        let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        let (p50, p99) = (
            ms(percentile(&self.server.latencies, 0.50)),
            ms(percentile(&self.server.latencies, 0.99)),
        );
        let (p90, max) = (
            ms(percentile(&self.server.latencies, 0.90)),
            ms(self.server.latencies.last().copied()),
        );
        let (raw_p50, raw_p99) = (
            ms(percentile(&self.raw_commits, 0.50)),
            ms(percentile(&self.raw_commits, 0.99)),
        );
        let (no_op_p50, no_op_p99) = (
            ms(percentile(&self.no_ops.latencies, 0.50)),
            ms(percentile(&self.no_ops.latencies, 0.99)),
        );
        let sizes = &ctx.sizes;
        ctx.note(format!(
            "{id}: {} pushes acknowledged in {:.1} s over {} rounds ({:.1} s of warm-up first, not counted); \
             peak {} pushes in flight, {} connections open to the server mid-round (most of the rounds); push latency p90 {p90:.1} ms, \
             max {max:.1} ms; pushes per client: fewest {}, median {}, most {}; the baseline made {} commits \
             in {:.1} s, commit latency p50 {raw_p50:.2} ms, p99 {raw_p99:.2} ms",
            self.server.requests,
            self.server.elapsed.as_secs_f64(),
            sizes.concurrent_rounds,
            sizes.concurrent_warmup.as_secs_f64(),
            self.peak_in_flight,
            self.peak_connections
                .map_or_else(|| "(unknown)".to_owned(), |n| n.to_string()),
            self.per_client.first().copied().unwrap_or(0),
            percentile(&self.per_client, 0.5).unwrap_or(0),
            self.per_client.last().copied().unwrap_or(0),
            self.raw_commits.len(),
            self.raw_elapsed.as_secs_f64(),
        ));
        ctx.note(format!(
            "{id}: CPU per request (user + system, /proc/PID/stat) during the push rounds: the bench \
             (its clients) {}, the server {}; during the no-op rounds ({NO_OP_PATH}, {} requests, latency \
             p50 {no_op_p50:.1} ms, p99 {no_op_p99:.1} ms): the bench {}, the server {}",
            self.server.cpu_per_request(),
            self.server.server_cpu_per_request(),
            self.no_ops.requests,
            self.no_ops.cpu_per_request(),
            self.no_ops.server_cpu_per_request(),
        ));
        let pushes_per_second = per_second(self.server.requests, self.server.elapsed);
        let name = format!(
            "single-op pushes/s, {} clients at once ({} workspaces, one device per client), \
             each pushing as soon as its last push is answered, {what}",
            self.clients, self.workspaces
        );
        let rounds = format!(
            "{} rounds of {:.1} s interleaved with the server's, each as long as the server's round",
            sizes.concurrent_rounds,
            sizes.concurrent_round.as_secs_f64()
        );
        let figures = vec![
            Figure {
                id,
                name: format!(
                    "{name}; push latency (request → answer) p50 {p50:.1} ms, p99 {p99:.1} ms"
                ),
                measured: Measure::new(pushes_per_second, "pushes/s"),
                baseline: Measure::new(
                    per_second(self.raw_commits.len() as u64, self.raw_elapsed),
                    "commits/s",
                ),
                baseline_name: format!("{baseline}; {rounds}"),
                goal: Goal::RatioAtLeastWithP99 {
                    ratio: RATIO_GOAL,
                    p99_ms: p99,
                    max_p99_ms: P99_GOAL_MS,
                },
            },
            Figure {
                id,
                name: format!("{name}, against the same server's request-path ceiling"),
                measured: Measure::new(pushes_per_second, "pushes/s"),
                baseline: Measure::new(
                    per_second(self.no_ops.requests, self.no_ops.elapsed),
                    "requests/s",
                ),
                baseline_name: format!(
                    "the same clients and connections sending the server's cheapest authenticated \
                     request, `GET {NO_OP_PATH}` (token check, rate limiter, metrics, request id, \
                     no storage); {rounds}"
                ),
                goal: Goal::Report,
            },
        ];
        figures.iter().for_each(crate::report::print_figure);
        figures
    }
}

impl LoadTally {
    /// The bench's CPU time per request, and its share of one core.
    fn cpu_per_request(&self) -> String {
        self.describe_cpu(self.bench_cpu)
    }

    /// The server's CPU time per request, and its share of one core.
    fn server_cpu_per_request(&self) -> String {
        self.describe_cpu(self.server_cpu)
    }

    fn describe_cpu(&self, cpu: Duration) -> String {
        let per_request = cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64;
        let cores = cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        format!("{per_request:.0} µs ({cores:.2} of a core)")
    }
}

/// Peaks seen during the rounds: pushes in flight, connections to the server.
#[derive(Default, Clone)]
struct Peaks {
    in_flight: Arc<AtomicUsize>,
    in_flight_peak: Arc<AtomicUsize>,
    connections_peak: Arc<AtomicUsize>,
}

impl Peaks {
    /// Counts the connections to the server's `port` once, `after` from now.
    /// Once a round: reading `/proc/net/tcp` costs milliseconds of kernel
    /// time (it walks every socket of the machine), which sampling every
    /// 100 ms made half of the old client's CPU time.
    fn sample_connections(&self, port: u16, after: Duration) -> tokio::task::JoinHandle<()> {
        let peak = self.connections_peak.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let count = tokio::task::spawn_blocking(move || connections_to(port))
                .await
                .ok()
                .flatten();
            if let Some(n) = count {
                peak.fetch_max(n, Ordering::Relaxed);
            }
        })
    }
}

/// Established TCP connections whose local end is `port`: the server's ends
/// of its clients' connections (Linux `/proc/net/tcp`, IPv4 loopback).
fn connections_to(port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!(":{port:04X}");
    Some(
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let mut fields = line.split_whitespace().skip(1);
                let (addr, state) = (fields.next(), fields.nth(1));
                addr.is_some_and(|a| a.ends_with(&local)) && state == Some("01")
            })
            .count(),
    )
}

/// The load's clients' runtime, and where they send.
struct Load {
    runtime: LoadRuntime,
    addr: SocketAddr,
    /// The server's process, whose CPU time a round notes.
    server_pid: u32,
}

impl Load {
    /// Every client opens a connection (before the clock starts: the
    /// server closes a connection idle for longer than its header timeout,
    /// 10 s, and the baseline takes as long as a round), then sends one
    /// request at a time, the next as soon as the last is answered, until
    /// `duration` has passed since the start; requests in flight then are
    /// finished and counted. Every answer is checked: 200, and for a push
    /// its op applied. Returns the clients for the next round.
    async fn run(
        &self,
        clients: Vec<PushClient>,
        duration: Duration,
        requests: Requests,
        peaks: &Peaks,
    ) -> Result<(Vec<PushClient>, LoadTally)> {
        let opening: Vec<_> = clients
            .iter()
            .map(|_| self.runtime.spawn(KeepAliveConnection::open(self.addr)))
            .collect();
        let mut connections = Vec::with_capacity(opening.len());
        for connection in opening {
            connections.push(connection.await??);
        }
        let cpu_before = self.cpu_times();
        let started = Instant::now();
        let deadline = started + duration;
        let tasks: Vec<_> = clients
            .into_iter()
            .zip(connections)
            .map(|(mut client, mut connection)| {
                let (requests, peaks) = (requests.clone(), peaks.clone());
                self.runtime.spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let request = match &requests {
                            Requests::Pushes => client.next_push(),
                            Requests::NoOps(bytes) => &bytes[..],
                        };
                        let in_flight = peaks.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                        peaks.in_flight_peak.fetch_max(in_flight, Ordering::Relaxed);
                        let sent = Instant::now();
                        let answer = connection.exchange(request).await?;
                        let took = sent.elapsed();
                        peaks.in_flight.fetch_sub(1, Ordering::Relaxed);
                        match &requests {
                            Requests::Pushes if answer.status == 200 => {
                                if !contains(answer.body, &client.applied) {
                                    bail!(
                                        "a single-op push was answered without its op applied: {}",
                                        answer.body_excerpt()
                                    );
                                }
                                client.pushed += 1;
                            }
                            Requests::NoOps(_) if answer.status == 200 => {}
                            _ => bail!("answered {}: {}", answer.status, answer.body_excerpt()),
                        }
                        latencies.push(took);
                    }
                    Ok::<_, anyhow::Error>((client, latencies))
                })
            })
            .collect();
        let mut tally = LoadTally::default();
        let mut back = Vec::new();
        let mut first_error = None;
        for task in tasks {
            match task.await.context("a client task failed")? {
                Ok((client, latencies)) => {
                    tally.requests += latencies.len() as u64;
                    tally.latencies.extend(latencies);
                    back.push(client);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        tally.elapsed = started.elapsed();
        let cpu_after = self.cpu_times();
        tally.bench_cpu = cpu_after.0.saturating_sub(cpu_before.0);
        tally.server_cpu = cpu_after.1.saturating_sub(cpu_before.1);
        Ok((back, tally))
    }

    /// CPU time used so far by the bench and by the server (zero where unknown).
    fn cpu_times(&self) -> (Duration, Duration) {
        let of = |pid| cpu_time(pid).unwrap_or_default();
        (of(std::process::id()), of(self.server_pid))
    }
}
