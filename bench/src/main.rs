//! `or3-bench`: the or3-sync benchmark suite. Each figure is measured against
//! a baseline taken in the same run (machines are noisy) and printed as a
//! ratio; `--results` writes them to a Markdown file (bench/RESULTS.md).
//! See bench/README.md for what each figure measures.

mod concurrent_pushes;
mod fanout;
mod fanout_floor;
mod http_load;
mod idle_memory;
mod machine;
mod pull_depth;
mod push_postgres;
mod push_pull;
mod raw_sqlite;
mod report;
mod run_context;
mod server;
mod stats;
mod subscribers;
mod workload;

use anyhow::{bail, Context, Result};
use clap::Parser;
use report::{Figure, RunReport};
use run_context::{RunContext, Sizes};
use server::ServerLauncher;
use std::path::PathBuf;
use std::time::Duration;

/// The or3-sync benchmarks.
#[derive(Parser)]
#[command(name = "or3-bench", about)]
struct Cli {
    /// Which figures: all, p1, p2 (p1 and p2 run together), p1-pg (P1 on
    /// Postgres), p3, p6, p7, p8, p8-pg (P8 on Postgres). P4, P5 and P10 are
    /// client figures, run by npm (bench/README.md).
    #[arg(default_value = "all")]
    figures: Vec<String>,
    /// Smoke run with tiny sizes (a few seconds); fails only if a figure
    /// cannot be measured, never because it misses its goal.
    #[arg(long)]
    quick: bool,
    /// Write the figures to this Markdown file (notes after its marker are kept).
    #[arg(long)]
    results: Option<PathBuf>,
    /// The `or3-sync` binary (default: next to this one).
    #[arg(long, env = "OR3_BENCH_SERVER")]
    server_bin: Option<PathBuf>,
    /// P1-pg and P8-pg: the Postgres server and database (the bench works in a schema of
    /// its own there and drops it at the end).
    #[arg(
        long,
        env = "OR3_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Where the scratch databases go (default: the system temp folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// P3: milliseconds between the timed pushes (default 10; quick 2).
    #[arg(long)]
    fanout_interval_ms: Option<u64>,
    /// P1/P2: ops pushed (default 100,000; quick 1,600).
    #[arg(long)]
    push_ops: Option<usize>,
    /// P2: passes over the log (default 3; quick 1).
    #[arg(long)]
    pull_passes: Option<usize>,
    /// The command line to record in the results (bench/run passes its own).
    #[arg(long, hide = true)]
    command_line: Option<String>,
    /// Serve the bare fanout baseline of P3 (started by the bench itself).
    #[arg(long, hide = true)]
    serve_fanout_floor: bool,
}

/// A benchmark and the figures it yields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bench {
    PushPull,
    PushPostgres,
    Fanout,
    PullDepth,
    IdleMemory,
    ConcurrentPushes,
    ConcurrentPushesPostgres,
}

impl Bench {
    fn label(self) -> &'static str {
        match self {
            Bench::PushPull => "P1/P2 push and pull throughput",
            Bench::PushPostgres => "P1-pg push throughput on Postgres",
            Bench::Fanout => "P3 realtime fanout",
            Bench::PullDepth => "P6 pull page latency vs log size",
            Bench::IdleMemory => "P7 memory of idle subscribers",
            Bench::ConcurrentPushes => "P8 concurrent single-op pushes",
            Bench::ConcurrentPushesPostgres => "P8-pg concurrent single-op pushes on Postgres",
        }
    }

    /// Longest a benchmark may run before it counts as not measured.
    fn time_limit(self, quick: bool) -> Duration {
        Duration::from_secs(if quick { 60 } else { 900 })
    }
}

/// Every gateway benchmark, in the order `all` runs them.
const ALL_BENCHES: [Bench; 7] = [
    Bench::PushPull,
    Bench::PushPostgres,
    Bench::Fanout,
    Bench::PullDepth,
    Bench::IdleMemory,
    Bench::ConcurrentPushes,
    Bench::ConcurrentPushesPostgres,
];

fn selected(names: &[String]) -> Result<Vec<Bench>> {
    let mut benches = Vec::new();
    for name in names {
        let add: &[Bench] = match name.to_ascii_lowercase().as_str() {
            "all" => &ALL_BENCHES,
            "p1" | "p2" => &[Bench::PushPull],
            "p3" => &[Bench::Fanout],
            "p1-pg" | "pg" => &[Bench::PushPostgres],
            "p6" => &[Bench::PullDepth],
            "p7" => &[Bench::IdleMemory],
            "p8" => &[Bench::ConcurrentPushes],
            "p8-pg" => &[Bench::ConcurrentPushesPostgres],
            other => {
                bail!("unknown figure `{other}`: use all, p1, p2, p1-pg, p3, p6, p7, p8 or p8-pg")
            }
        };
        for bench in add {
            if !benches.contains(bench) {
                benches.push(*bench);
            }
        }
    }
    Ok(benches)
}

/// The `or3-sync` binary: given, or beside this executable (a test binary
/// lives one folder deeper, in `deps/`).
fn server_binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no folder for the bench binary")?;
    let name = format!("or3-sync{}", std::env::consts::EXE_SUFFIX);
    [dir.join(&name), dir.join("..").join(&name)]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no or3-sync binary next to {}; build it (cargo build --release -p or3-sync) or pass --server-bin",
                exe.display()
            )
        })
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if cli.serve_fanout_floor {
        if let Err(e) = fanout_floor::serve().await {
            eprintln!("fanout floor: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    match run(cli).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("or3-bench: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Runs the selected benchmarks; `Ok(false)` when a figure could not be measured.
async fn run(cli: Cli) -> Result<bool> {
    let benches = selected(&cli.figures)?;
    let every_figure = ALL_BENCHES.iter().all(|b| benches.contains(b));
    let binary = server_binary(cli.server_bin.clone())?;
    let open_file_limit = machine::raise_open_file_limit();
    let machine = machine::Machine::describe();
    let load_before = machine::load_average();
    let mut sizes = if cli.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(ms) = cli.fanout_interval_ms {
        sizes.fanout_interval = Duration::from_millis(ms);
    }
    if let Some(passes) = cli.pull_passes {
        sizes.pull_passes = passes.max(1);
    }
    if let Some(ops) = cli.push_ops {
        // Whole batches for every workspace in every round.
        let unit = sizes.push_rounds * sizes.parallel_workspaces * sizes.push_batch;
        sizes.push_ops = ops.div_ceil(unit).max(1) * unit;
    }
    let parent = cli.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix("or3-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot make a scratch folder in {}", parent.display()))?;
    let server_note = format!(
        "{} as a separate process (dev auth, SQLite WAL with synchronous=FULL, periodic GC off, \
         rate limits and the per-user subscription cap raised for the one bench user), \
         databases in {}; clients in the bench process, over loopback",
        binary.display(),
        parent.display()
    );
    println!(
        "or3-bench: {} cores, {} RAM, {}; load {load_before}; {} sizes; open-file limit {open_file_limit}",
        machine.cores,
        machine.memory,
        machine.cpu,
        if cli.quick { "quick" } else { "full" }
    );
    println!("server: {server_note}");
    let ctx = RunContext::new(
        ServerLauncher::new(binary),
        scratch.path().to_owned(),
        sizes,
        open_file_limit,
    );

    let mut figures: Vec<Figure> = Vec::new();
    let mut failures: Vec<(String, String)> = Vec::new();
    for bench in benches {
        println!("\n== {}", bench.label());
        let outcome = tokio::time::timeout(bench.time_limit(cli.quick), async {
            match bench {
                Bench::PushPull => push_pull::run(&ctx).await,
                Bench::PushPostgres => push_postgres::run(&ctx, &cli.postgres).await,
                Bench::Fanout => fanout::run(&ctx).await,
                Bench::PullDepth => pull_depth::run(&ctx).await,
                Bench::IdleMemory => idle_memory::run(&ctx).await,
                Bench::ConcurrentPushes => concurrent_pushes::run_sqlite(&ctx).await,
                Bench::ConcurrentPushesPostgres => {
                    concurrent_pushes::run_postgres(&ctx, &cli.postgres).await
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(measured)) => figures.extend(measured),
            Ok(Err(e)) => {
                eprintln!("   NOT MEASURED: {e:#}");
                failures.push((bench.label().to_owned(), format!("{e:#}")));
            }
            Err(_) => {
                eprintln!(
                    "   NOT MEASURED: took longer than {:?}",
                    bench.time_limit(cli.quick)
                );
                failures.push((bench.label().to_owned(), "timed out".to_owned()));
            }
        }
    }

    let misses = figures.iter().filter(|f| !f.passes()).count();
    println!(
        "\n{} figures, {} missing their goal, {} benchmarks not measured",
        figures.len(),
        misses,
        failures.len()
    );
    if let Some(path) = &cli.results {
        let command = cli
            .command_line
            .clone()
            .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
        let notes = ctx.notes();
        report::write_results(
            path,
            &RunReport {
                machine: &machine,
                date: machine::utc_now(),
                command,
                quick: cli.quick,
                server: server_note,
                load: (load_before, machine::load_average()),
                figures: &figures,
                failures: &failures,
                notes: &notes,
                every_figure,
            },
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(failures.is_empty())
}
