//! P7: the server's resident memory with thousands of idle WebSocket
//! subscribers, against its own resident memory before they connected.

use crate::machine::{open_file_limit_of, rss_kib};
use crate::report::{print_figure, Figure, Goal, Measure};
use crate::run_context::RunContext;
use crate::subscribers::{self, Tally};
use crate::workload::{push_body, OpFactory};
use anyhow::{anyhow, bail, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Handshakes in flight while subscribers connect.
const CONNECT_PARALLEL: usize = 100;
/// File descriptors the server needs beside its subscribers.
const SPARE_FILES: u64 = 64;

/// Runs P7.
pub async fn run(ctx: &RunContext) -> Result<Vec<Figure>> {
    let count = ctx.sizes.idle_subscribers;
    let needed = count as u64 + SPARE_FILES;
    if ctx.open_file_limit < needed {
        ctx.note(format!(
            "P7: the bench may open only {} files but needs about {needed}; raise `ulimit -n`",
            ctx.open_file_limit
        ));
    }
    let server = ctx.launcher.start(&ctx.dir.join("idle.db")).await?;
    let pid = server.process.pid();
    match open_file_limit_of(pid) {
        Some(limit) if limit < needed => ctx.note(format!(
            "P7: the server may open only {limit} files but {count} subscribers need about {needed}; run `ulimit -n {needed}` (or more) before bench/run"
        )),
        _ => {}
    }
    let ws = server.create_workspace("p7").await?;
    let mut factory = OpFactory::new();
    server.push(&ws, push_body(&[factory.message("")])).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_kib(pid).ok_or_else(|| anyhow!("cannot read VmRSS of the server"))?;

    // Each subscriber says hello at the head, so no backlog is sent.
    let sockets = subscribers::open_many(
        &server.subscribe_url(&ws),
        Some(&server.token),
        Some(1),
        count,
        CONNECT_PARALLEL,
    )
    .await
    .map_err(|e| {
        anyhow!(
            "{e:#}; last server output:\n{}",
            server.process.recent_output()
        )
    })?;
    let tally = Arc::new(Tally::default());
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|s| subscribers::spawn_reader(s, tally.clone(), stopped.clone()))
        .collect();
    // A push every subscriber must receive: then all have said hello and are live.
    server.push(&ws, push_body(&[factory.message("")])).await?;
    let synced = Tally::wait_for(&tally.synced, count as u64, Duration::from_secs(120)).await;
    if synced < count as u64 {
        bail!("only {synced} of {count} subscribers received a push");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = rss_kib(pid).ok_or_else(|| anyhow!("cannot read VmRSS of the server"))?;
    let _ = stop.send(true);
    for reader in readers {
        let _ = reader.await;
    }
    ctx.note(format!(
        "P7: {:.1} KiB of server RSS per idle subscriber",
        (loaded.saturating_sub(idle)) as f64 / count as f64
    ));
    let figure = Figure {
        id: "P7",
        name: format!("server RSS with {count} idle WS subscribers (after hello)"),
        measured: Measure::new(loaded as f64 / 1024.0, "MiB"),
        baseline: Measure::new(idle as f64 / 1024.0, "MiB"),
        baseline_name: "the same server before any subscriber connected".into(),
        goal: Goal::ValueAtMost(150.0),
    };
    print_figure(&figure);
    Ok(vec![figure])
}
