//! P3: write → delivery latency and deliveries/s to many WebSocket
//! subscribers of one workspace, against the same fanout through the bare
//! broadcast server of `fanout_floor.rs`.
//!
//! Each measured push carries its send time (µs on this process's clock) in
//! its payload; a subscriber's latency is its receive time minus that. The
//! publisher runs on a thread and runtime of its own, so the subscribers'
//! reading does not delay its sends.

use crate::report::{print_figure, Figure, Goal, Measure};
use crate::run_context::RunContext;
use crate::server::{ChildServer, SyncServer};
use crate::stats::percentile;
use crate::subscribers::{self, Tally, BURST_MARKER, LATENCY_MARKER};
use crate::workload::{now_us, push_body, MessageOp, OpFactory, DEVICE_ID};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

/// Handshakes in flight while subscribers connect.
const CONNECT_PARALLEL: usize = 64;
/// Pushes in flight at once during the burst (the floor's publisher never
/// waits for an answer; the gateway's would otherwise be bound by one
/// request's round trip rather than by fanout).
const BURST_IN_FLIGHT: usize = 8;
/// How long deliveries may trail the last push.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

/// Runs P3: the floor first, then the gateway.
pub async fn run(ctx: &RunContext) -> Result<Vec<Figure>> {
    let sizes = &ctx.sizes;
    let subscribers = sizes.fanout_subscribers;
    let floor = measure_floor(ctx)
        .await
        .context("fanout floor (baseline)")?;
    let gateway = measure_gateway(ctx, "fanout.db", &[]).await?;
    // The same without an fsync per push: how much of the gap to the floor the commit is.
    let unsynced = measure_gateway(ctx, "fanout-normal.db", &["--sqlite-synchronous", "normal"])
        .await
        .context("fanout with --sqlite-synchronous normal")?;
    ctx.note(format!(
        "P3 with `--sqlite-synchronous normal` (commits fsynced at checkpoints, not per push): \
         p50 {:.1} ms, p99 {:.1} ms, {:.0} deliveries/s; pushes {:.2} ms (p50) from request to answer",
        unsynced.p50_ms, unsynced.p99_ms, unsynced.deliveries_per_s, unsynced.push_round_trip_ms[0]
    ));
    ctx.note(format!(
        "P3: the timed pushes took {:.2} ms (p50) and {:.2} ms (p99) from request to answer, \
         commit included; the floor's publisher does not wait for an answer ({:.2} ms to send)",
        gateway.push_round_trip_ms[0], gateway.push_round_trip_ms[1], floor.push_round_trip_ms[0]
    ));
    for (who, r) in [("floor", &floor), ("gateway", &gateway)] {
        if r.pokes > 0 {
            ctx.note(format!(
                "P3 {who}: {} pokes (a subscriber fell more than the queue behind)",
                r.pokes
            ));
        }
    }
    let floor_name = format!(
        "bare tokio-tungstenite broadcast server (separate process), same frames, {subscribers} subscribers"
    );
    let name = |what: &str| {
        format!(
            "{what}, {subscribers} WS subscribers, {} single-op pushes every {} ms",
            sizes.fanout_pushes,
            sizes.fanout_interval.as_millis()
        )
    };
    let figures = vec![
        Figure {
            id: "P3",
            name: name("write→delivery p50"),
            measured: Measure::new(gateway.p50_ms, "ms"),
            baseline: Measure::new(floor.p50_ms, "ms"),
            baseline_name: floor_name.clone(),
            goal: Goal::ValueAtMost(5.0),
        },
        Figure {
            id: "P3",
            name: name("write→delivery p99"),
            measured: Measure::new(gateway.p99_ms, "ms"),
            baseline: Measure::new(floor.p99_ms, "ms"),
            baseline_name: floor_name.clone(),
            goal: Goal::ValueAtMost(25.0),
        },
        Figure {
            id: "P3",
            name: format!(
                "deliveries/s, {subscribers} WS subscribers, {} pushes, {BURST_IN_FLIGHT} in flight",
                sizes.burst_pushes
            ),
            measured: Measure::new(gateway.deliveries_per_s, "deliveries/s"),
            baseline: Measure::new(floor.deliveries_per_s, "deliveries/s"),
            baseline_name: floor_name,
            goal: Goal::Report,
        },
    ];
    figures.iter().for_each(print_figure);
    Ok(figures)
}

/// What one fanout run measured.
struct FanoutResult {
    p50_ms: f64,
    p99_ms: f64,
    deliveries_per_s: f64,
    pokes: u64,
    /// The publisher's send → answer time, p50 and p99 (for the gateway:
    /// the push request).
    push_round_trip_ms: [f64; 2],
}

async fn measure_gateway(ctx: &RunContext, file: &str, flags: &[&str]) -> Result<FanoutResult> {
    let server = ctx.launcher.start_with(&ctx.dir.join(file), flags).await?;
    let ws = server.create_workspace("p3").await?;
    let publisher = Publisher::spawn(PublishTarget::Gateway {
        base: server.base.clone(),
        token: server.token.clone(),
        ws: ws.clone(),
    });
    let url = server.subscribe_url(&ws);
    measure(ctx, &url, Some(&server.token), publisher)
        .await
        .map_err(|e| with_server_output(e, &server))
}

async fn measure_floor(ctx: &RunContext) -> Result<FanoutResult> {
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command.arg("--serve-fanout-floor");
    let floor = tokio::task::spawn_blocking(move || {
        ChildServer::spawn(command, crate::fanout_floor::LISTENING)
    })
    .await??;
    let base = floor.addr.clone();
    let publisher = Publisher::spawn(PublishTarget::Floor {
        url: format!("{base}/publish"),
    });
    measure(ctx, &format!("{base}/subscribe"), None, publisher).await
}

fn with_server_output(e: anyhow::Error, server: &SyncServer) -> anyhow::Error {
    anyhow!(
        "{e:#}\nlast server output:\n{}",
        server.process.recent_output()
    )
}

/// Subscribes, syncs, times the paced pushes, then the burst.
async fn measure(
    ctx: &RunContext,
    url: &str,
    token: Option<&str>,
    publisher: Publisher,
) -> Result<FanoutResult> {
    let sizes = &ctx.sizes;
    let n = sizes.fanout_subscribers as u64;
    let sockets = subscribers::open_many(
        url,
        token,
        Some(0),
        sizes.fanout_subscribers,
        CONNECT_PARALLEL,
    )
    .await?;
    let tally = Arc::new(Tally::default());
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|s| subscribers::spawn_reader(s, tally.clone(), stopped.clone()))
        .collect();

    // One unmarked push: once every subscriber has it, all are live.
    publisher.run(Job::paced("", 1, Duration::ZERO)).await?;
    let synced = Tally::wait_for(&tally.synced, n, Duration::from_secs(60)).await;
    if synced < n {
        bail!("only {synced} of {n} subscribers received the first push");
    }

    let pushes = sizes.fanout_pushes as u64;
    let mut paced = publisher
        .run(Job::paced(LATENCY_MARKER, pushes, sizes.fanout_interval))
        .await?;
    let delivered = Tally::wait_for(&tally.latency_deliveries, n * pushes, DELIVERY_DEADLINE).await;

    let burst = sizes.burst_pushes as u64;
    let burst_started = publisher
        .run(Job::burst(BURST_MARKER, burst, BURST_IN_FLIGHT))
        .await?
        .first_sent_us;
    let burst_delivered =
        Tally::wait_for(&tally.burst_deliveries, n * burst, DELIVERY_DEADLINE).await;

    let _ = stop.send(true);
    let mut latencies = Vec::with_capacity((n * pushes) as usize);
    for reader in readers {
        latencies.extend(reader.await?);
    }
    let pokes = tally.pokes.load(Ordering::Relaxed);
    let summary = format!(
        "pokes {pokes}, error frames {}, closed early {}",
        tally.errors.load(Ordering::Relaxed),
        tally.closed.load(Ordering::Relaxed)
    );
    if delivered < n * pushes {
        bail!(
            "{delivered} of {} latency deliveries arrived ({summary})",
            n * pushes
        );
    }
    if burst_delivered < n * burst {
        bail!(
            "{burst_delivered} of {} burst deliveries arrived ({summary})",
            n * burst
        );
    }
    latencies.sort_unstable();
    let ms = |q: f64| percentile(&latencies, q).map_or(0.0, |us| f64::from(us) / 1000.0);
    let burst_us = tally
        .last_burst_us
        .load(Ordering::Relaxed)
        .saturating_sub(burst_started)
        .max(1);
    paced.round_trips_us.sort_unstable();
    Ok(FanoutResult {
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        deliveries_per_s: (n * burst) as f64 / (burst_us as f64 / 1e6),
        pokes,
        push_round_trip_ms: [0.5, 0.99]
            .map(|q| percentile(&paced.round_trips_us, q).unwrap_or(0) as f64 / 1000.0),
    })
}

/// Where the publisher sends.
enum PublishTarget {
    /// `POST /v1/workspaces/{ws}/push` of the gateway, one op per push.
    Gateway {
        base: String,
        token: String,
        ws: String,
    },
    /// The floor server's `/publish` socket, one changes frame per push.
    Floor { url: String },
}

/// `count` pushes whose payloads carry `marker` and their send time: one
/// every `interval` (back to back when zero), or `in_flight` at a time.
struct Job {
    marker: &'static str,
    count: u64,
    interval: Duration,
    in_flight: usize,
}

impl Job {
    fn paced(marker: &'static str, count: u64, interval: Duration) -> Job {
        Job {
            marker,
            count,
            interval,
            in_flight: 1,
        }
    }

    fn burst(marker: &'static str, count: u64, in_flight: usize) -> Job {
        Job {
            marker,
            count,
            interval: Duration::ZERO,
            in_flight,
        }
    }
}

/// A publisher on its own thread and runtime; answers each job with a
/// [`JobReport`].
struct Publisher {
    jobs: mpsc::UnboundedSender<(Job, oneshot::Sender<Result<JobReport>>)>,
}

impl Publisher {
    fn spawn(target: PublishTarget) -> Publisher {
        let (jobs, mut queue) =
            mpsc::unbounded_channel::<(Job, oneshot::Sender<Result<JobReport>>)>();
        std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    if let Some((_, reply)) = queue.blocking_recv() {
                        let _ = reply.send(Err(e.into()));
                    }
                    return;
                }
            };
            runtime.block_on(async move {
                let mut sender = None;
                while let Some((job, reply)) = queue.recv().await {
                    if sender.is_none() {
                        match Sender::connect(&target).await {
                            Ok(s) => sender = Some(s),
                            Err(e) => {
                                let _ = reply.send(Err(e));
                                return;
                            }
                        }
                    }
                    if let Some(sender) = sender.as_mut() {
                        let _ = reply.send(sender.run(job).await);
                    }
                }
            });
        });
        Publisher { jobs }
    }

    async fn run(&self, job: Job) -> Result<JobReport> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((job, reply))
            .map_err(|_| anyhow!("the publisher thread ended"))?;
        answer
            .await
            .map_err(|_| anyhow!("the publisher thread ended"))?
    }
}

/// The publisher's connection.
enum Sender {
    Gateway {
        http: reqwest::Client,
        url: String,
        token: String,
        factory: OpFactory,
    },
    Floor {
        socket: Box<subscribers::Socket>,
        factory: OpFactory,
        version: u64,
    },
}

impl Sender {
    async fn connect(target: &PublishTarget) -> Result<Sender> {
        Ok(match target {
            PublishTarget::Gateway { base, token, ws } => Sender::Gateway {
                http: reqwest::Client::builder().tcp_nodelay(true).build()?,
                url: format!("{base}/v1/workspaces/{ws}/push"),
                token: token.clone(),
                factory: OpFactory::new(),
            },
            PublishTarget::Floor { url } => Sender::Floor {
                socket: Box::new(subscribers::open(url, None, None).await?),
                factory: OpFactory::new(),
                version: 0,
            },
        })
    }

    /// Sends the job's pushes; returns the first send time and the round
    /// trip of each push (for the gateway: request to answer, commit included).
    async fn run(&mut self, job: Job) -> Result<JobReport> {
        let mut report = JobReport {
            first_sent_us: now_us(),
            round_trips_us: Vec::with_capacity(job.count as usize),
        };
        if let (
            Sender::Gateway {
                http,
                url,
                token,
                factory,
            },
            true,
        ) = (&mut *self, job.in_flight > 1)
        {
            // Several pushes in flight: each op is made (and stamped) as its
            // request starts.
            let (http, url, token) = (&*http, url.as_str(), token.as_str());
            let round_trips: Vec<u64> = futures_util::stream::iter(0..job.count)
                .map(|_| {
                    let sent = now_us();
                    let body = push_body(&[factory.message(&marked(job.marker, sent))]);
                    async move {
                        push_one(http, url, token, body).await?;
                        Ok::<_, anyhow::Error>(now_us() - sent)
                    }
                })
                .buffer_unordered(job.in_flight)
                .try_collect()
                .await?;
            report.round_trips_us = round_trips;
            return Ok(report);
        }
        let mut ticks = tokio::time::interval(job.interval.max(Duration::from_micros(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for i in 0..job.count {
            if !job.interval.is_zero() {
                ticks.tick().await;
            }
            let sent = now_us();
            if i == 0 {
                report.first_sent_us = sent;
            }
            self.publish(&marked(job.marker, sent)).await?;
            report.round_trips_us.push(now_us() - sent);
        }
        Ok(report)
    }

    async fn publish(&mut self, extra: &str) -> Result<()> {
        match self {
            Sender::Gateway {
                http,
                url,
                token,
                factory,
            } => push_one(http, url, token, push_body(&[factory.message(extra)])).await,
            Sender::Floor {
                socket,
                factory,
                version,
            } => {
                *version += 1;
                let frame = floor_frame(&factory.message(extra), *version);
                socket.send(Message::text(frame)).await?;
                Ok(())
            }
        }
    }
}

/// What a publisher job did.
struct JobReport {
    /// Send time of the first push (µs, [`now_us`]).
    first_sent_us: u64,
    /// Each push's round trip (µs).
    round_trips_us: Vec<u64>,
}

/// The row fields that mark a push: `,"sent_us":T` (none for an unmarked push).
fn marked(marker: &str, sent_us: u64) -> String {
    if marker.is_empty() {
        String::new()
    } else {
        format!(",{marker}{sent_us}")
    }
}

/// One push of a prepared body; every op must be applied.
async fn push_one(http: &reqwest::Client, url: &str, token: &str, body: String) -> Result<()> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() || !text.contains(r#""status":"applied""#) {
        bail!("push answered {status}: {text}");
    }
    Ok(())
}

/// A `changes` frame shaped like the gateway's for one op.
fn floor_frame(op: &MessageOp, version: u64) -> String {
    format!(
        r#"{{"type":"changes","from":{},"to":{version},"changes":[{{"server_version":{version},"table_name":"messages","pk":"{}","operation":"put","payload":{},"clock":1,"hlc":"{}","op_id":"{}","device_id":"{DEVICE_ID}","scope_change":false}}]}}"#,
        version - 1,
        op.pk,
        op.payload,
        op.hlc,
        op.op_id
    )
}
