//! P6: does a pull page get slower as the log grows? The latency of a
//! 1000-change page from a cursor in the middle of a large log, against the
//! same on a small log. Both logs are seeded straight into the database
//! file, then served by a fresh server.

use crate::push_pull::pull_page;
use crate::raw_sqlite::seed_log;
use crate::report::{print_figure, Figure, Goal, Measure};
use crate::run_context::RunContext;
use crate::server::BENCH_USER;
use crate::stats::percentile;
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

/// Page size of every timed pull.
const PAGE: usize = 1000;
/// Untimed pulls before timing.
const WARMUP: usize = 10;

/// Runs P6.
pub async fn run(ctx: &RunContext) -> Result<Vec<Figure>> {
    let sizes = &ctx.sizes;
    let small = page_latency(ctx, sizes.depth_small).await?;
    let large = page_latency(ctx, sizes.depth_large).await?;
    ctx.note(format!(
        "P6: p99 {:.2} ms with {} entries, {:.2} ms with {}",
        large.1, sizes.depth_large, small.1, sizes.depth_small
    ));
    let figure = Figure {
        id: "P6",
        name: format!(
            "pull page p50 (limit {PAGE}, mid-log cursors), {} log entries",
            sizes.depth_large
        ),
        measured: Measure::new(large.0, "ms"),
        baseline: Measure::new(small.0, "ms"),
        baseline_name: format!("the same with {} log entries", sizes.depth_small),
        goal: Goal::RatioAtMost(1.5),
    };
    print_figure(&figure);
    Ok(vec![figure])
}

/// (p50, p99) in ms of page pulls from cursors in the middle half of a log
/// of `entries`.
async fn page_latency(ctx: &RunContext, entries: u64) -> Result<(f64, f64)> {
    let db = ctx.dir.join(format!("depth-{entries}.db"));
    let url = format!("sqlite://{}", db.display());
    let ws = "bench-depth";
    ctx.launcher.run_command(&["migrate", "--database", &url])?;
    ctx.launcher.run_command(&[
        "workspace",
        "create",
        "--database",
        &url,
        "--name",
        "p6",
        "--owner",
        BENCH_USER,
        "--id",
        ws,
    ])?;
    let seeded = Instant::now();
    let path = db.clone();
    tokio::task::spawn_blocking(move || seed_log(&path, ws, entries)).await??;
    println!(
        "    seeded {entries} log entries in {:.1?}",
        seeded.elapsed()
    );

    let server = ctx.launcher.start(&db).await?;
    let cursors = middle_cursors(entries, WARMUP + ctx.sizes.depth_requests);
    let mut latencies = Vec::with_capacity(ctx.sizes.depth_requests);
    for (i, cursor) in cursors.into_iter().enumerate() {
        let started = Instant::now();
        let bytes = pull_page(&server, ws, cursor, PAGE).await?;
        let took = started.elapsed();
        let page: serde_json::Value = serde_json::from_slice(&bytes)?;
        let expected = PAGE.min((entries - cursor) as usize);
        if page["changes"].as_array().map(Vec::len) != Some(expected) {
            bail!("a page from cursor {cursor} did not hold {expected} changes");
        }
        if i >= WARMUP {
            latencies.push(took);
        }
    }
    latencies.sort_unstable();
    let ms = |q| percentile(&latencies, q).map_or(0.0, |d: Duration| d.as_secs_f64() * 1000.0);
    Ok((ms(0.50), ms(0.99)))
}

/// `count` cursors spread over the middle half of a log of `entries`
/// (a fixed pseudo-random sequence, so runs compare).
fn middle_cursors(entries: u64, count: usize) -> Vec<u64> {
    let (low, span) = (entries / 4, (entries / 2).max(1));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            low + state % span
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::middle_cursors;

    #[test]
    fn cursors_stay_in_the_middle_half() {
        let cursors = middle_cursors(1_000_000, 500);
        assert!(cursors.iter().all(|c| (250_000..750_000).contains(c)));
        assert!(cursors.windows(2).any(|w| w[0] != w[1]));
    }
}
