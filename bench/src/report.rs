//! Figures, their goals, the console table and `RESULTS.md`.

use crate::machine::Machine;
use std::fmt::Write as _;
use std::path::Path;

/// A measured quantity with its unit.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    /// The number.
    pub value: f64,
    /// Its unit, e.g. `ops/s`, `ms`, `MB`.
    pub unit: &'static str,
}

impl Measure {
    /// A value in `unit`.
    pub fn new(value: f64, unit: &'static str) -> Measure {
        Measure { value, unit }
    }
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.value;
        if v >= 100.0 {
            write!(f, "{} {}", group_thousands(v.round() as u64), self.unit)
        } else if v >= 10.0 {
            write!(f, "{v:.1} {}", self.unit)
        } else {
            write!(f, "{v:.2} {}", self.unit)
        }
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a figure must reach.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// measured / baseline ≥ this.
    RatioAtLeast(f64),
    /// measured / baseline ≤ this.
    RatioAtMost(f64),
    /// The measured value itself ≤ this (in its own unit).
    ValueAtMost(f64),
    /// measured / baseline ≥ `ratio`, and the p99 latency measured with
    /// it, `p99_ms`, at most `max_p99_ms` (both must hold).
    RatioAtLeastWithP99 {
        /// The least ratio.
        ratio: f64,
        /// The p99 latency measured (ms).
        p99_ms: f64,
        /// The most it may be (ms).
        max_p99_ms: f64,
    },
    /// No goal: reported for context.
    Report,
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goal::RatioAtLeast(r) => write!(f, "ratio ≥ {r:.2}"),
            Goal::RatioAtMost(r) => write!(f, "ratio ≤ {r:.2}"),
            Goal::ValueAtMost(v) => write!(f, "≤ {v}"),
            Goal::RatioAtLeastWithP99 {
                ratio, max_p99_ms, ..
            } => write!(f, "ratio ≥ {ratio:.2}, p99 ≤ {max_p99_ms} ms"),
            Goal::Report => write!(f, "—"),
        }
    }
}

/// One benchmark figure, with the baseline it was measured against.
#[derive(Debug, Clone)]
pub struct Figure {
    /// `P1` … `P7`.
    pub id: &'static str,
    /// What was measured.
    pub name: String,
    /// The measurement.
    pub measured: Measure,
    /// The baseline from the same run and what it is.
    pub baseline: Measure,
    /// What the baseline measured.
    pub baseline_name: String,
    /// The goal.
    pub goal: Goal,
}

impl Figure {
    /// measured / baseline.
    pub fn ratio(&self) -> f64 {
        self.measured.value / self.baseline.value.max(f64::MIN_POSITIVE)
    }

    /// Whether the goal is met.
    pub fn passes(&self) -> bool {
        match self.goal {
            Goal::RatioAtLeast(r) => self.ratio() >= r,
            Goal::RatioAtMost(r) => self.ratio() <= r,
            Goal::ValueAtMost(v) => self.measured.value <= v,
            // A NaN p99 (nothing measured) fails.
            Goal::RatioAtLeastWithP99 {
                ratio,
                p99_ms,
                max_p99_ms,
            } => self.ratio() >= ratio && p99_ms <= max_p99_ms,
            Goal::Report => true,
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Goal::ValueAtMost(v) => format!("≤ {}", Measure::new(v, self.measured.unit)),
            goal => goal.to_string(),
        }
    }

    fn verdict(&self) -> &'static str {
        if let Goal::Report = self.goal {
            "—"
        } else if self.passes() {
            "PASS"
        } else {
            "MISS"
        }
    }
}

/// Prints one figure as soon as it is measured.
pub fn print_figure(figure: &Figure) {
    println!("{:<3} {}", figure.id, figure.name);
    println!(
        "    {:>22}   baseline {:>22}   ratio {:>6.2}   goal {:<14} {}",
        figure.measured.to_string(),
        figure.baseline.to_string(),
        figure.ratio(),
        figure.goal_text(),
        figure.verdict()
    );
}

/// Everything a run produced.
pub struct RunReport<'a> {
    /// The machine.
    pub machine: &'a Machine,
    /// When.
    pub date: String,
    /// The command as the user typed it.
    pub command: String,
    /// Quick (smoke) or full sizes.
    pub quick: bool,
    /// How the server ran.
    pub server: String,
    /// 1-minute load average before and after the run.
    pub load: (String, String),
    /// The figures, in order.
    pub figures: &'a [Figure],
    /// Benchmarks that could not be measured, with why.
    pub failures: &'a [(String, String)],
    /// Notes printed during the run (limits, pokes, warnings).
    pub notes: &'a [String],
    /// Whether the run tried every gateway figure (then no earlier row is
    /// kept, not even of a figure that no longer exists).
    pub every_figure: bool,
}

/// Marks the end of the generated part of RESULTS.md; text after it is kept.
const GENERATED_END: &str =
    "<!-- end of generated results: notes below this line are kept by bench/run -->";

/// Writes the run to `path`, keeping any hand-written notes after the marker.
/// A run of some figures keeps the others: their table rows (their result
/// marked with the date of the run that measured them) and the client's
/// figure blocks, which `bench/run` rewrites in place when it runs them.
pub fn write_results(path: &Path, run: &RunReport<'_>) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let (old_generated, kept) = match old.split_once(GENERATED_END) {
        Some((generated, rest)) => (generated, rest.to_owned()),
        None => ("", "\n".to_owned()),
    };
    // A failure is named by its benchmark's label ("P1/P2 push and pull throughput").
    let failed_ids = run
        .failures
        .iter()
        .flat_map(|(label, _)| label.split_whitespace().next().unwrap_or("").split('/'));
    let measured: Vec<&str> = run.figures.iter().map(|f| f.id).chain(failed_ids).collect();
    let mut earlier = EarlierRun::parse(old_generated);
    if run.every_figure {
        earlier.rows.clear();
    }
    let mut out = String::new();
    let _ = writeln!(out, "# or3-sync benchmark results\n");
    let _ = writeln!(
        out,
        "Written by `bench/run` (see `bench/README.md` for what each figure means). \
         Every figure is a ratio against a baseline measured in the same run.\n"
    );
    let _ = writeln!(
        out,
        "- Machine: {} cores (`nproc`), {} RAM (`free -h`), {}",
        run.machine.cores, run.machine.memory, run.machine.cpu
    );
    let _ = writeln!(out, "- Date: {}", run.date);
    let _ = writeln!(out, "- Command: `{}`", run.command);
    let _ = writeln!(
        out,
        "- Sizes: {}",
        if run.quick {
            "quick (smoke test; figures are not meaningful)"
        } else {
            "full"
        }
    );
    let _ = writeln!(out, "- Server: {}", run.server);
    let _ = writeln!(
        out,
        "- Load average (1 min) before / after the run: {} / {} (on {} cores; other tenants' work counts)\n",
        run.load.0, run.load.1, run.machine.cores
    );
    let _ = writeln!(
        out,
        "| id | figure | measured | baseline (same run) | ratio | goal | result |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
    for row in earlier.rows_not_in(&measured) {
        let _ = writeln!(out, "{row}");
    }
    for f in run.figures {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {:.2} | {} | {} |",
            f.id,
            f.name,
            f.measured,
            f.baseline,
            f.baseline_name,
            f.ratio(),
            f.goal_text(),
            f.verdict()
        );
    }
    if !run.failures.is_empty() {
        let _ = writeln!(out, "\nNot measured:\n");
        for (id, why) in run.failures {
            let _ = writeln!(out, "- {id}: {why}");
        }
    }
    if !run.notes.is_empty() {
        let _ = writeln!(out, "\nNotes from the run:\n");
        for note in run.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    for block in &earlier.client_blocks {
        let _ = writeln!(out, "\n{block}");
    }
    let _ = write!(out, "\n{GENERATED_END}{kept}");
    std::fs::write(path, out)
}

/// What the generated part of an earlier RESULTS.md holds that a run of
/// other figures keeps.
struct EarlierRun {
    /// Its gateway table rows, each with the figure id it starts with.
    rows: Vec<(String, String)>,
    /// The client's figure blocks, marker lines included.
    client_blocks: Vec<String>,
}

impl EarlierRun {
    fn parse(generated: &str) -> EarlierRun {
        let date = generated
            .lines()
            .find_map(|line| line.strip_prefix("- Date: "))
            .unwrap_or("an earlier run")
            .trim()
            .to_owned();
        let (gateway, client) = match generated.find("<!-- client figure ") {
            Some(at) => generated.split_at(at),
            None => (generated, ""),
        };
        let rows = gateway
            .lines()
            .filter(|line| line.starts_with("| P"))
            .filter_map(|line| {
                let id = line
                    .trim_start_matches('|')
                    .split('|')
                    .next()?
                    .trim()
                    .to_owned();
                let row = line.trim_end();
                // A row kept once already says when it was measured.
                let row = if row.contains(" (measured ") {
                    row.to_owned()
                } else {
                    format!(
                        "{} (measured {date}) |",
                        row.trim_end_matches('|').trim_end()
                    )
                };
                Some((id, row))
            })
            .collect();
        const START: &str = "<!-- client figure ";
        let mut client_blocks = Vec::new();
        let mut rest = client;
        while let Some(at) = rest.find(START) {
            let from = &rest[at..];
            let Some(id_len) = from[START.len()..].find(" -->") else {
                break;
            };
            let id = &from[START.len()..START.len() + id_len];
            let end_marker = format!("<!-- end client figure {id} -->");
            let Some(end) = from.find(&end_marker) else {
                break;
            };
            let block_len = end + end_marker.len();
            client_blocks.push(from[..block_len].to_owned());
            rest = &from[block_len..];
        }
        EarlierRun {
            rows,
            client_blocks,
        }
    }

    /// The rows of figures this run did not measure, in their order.
    fn rows_not_in<'a>(&'a self, measured: &'a [&str]) -> impl Iterator<Item = &'a String> {
        self.rows
            .iter()
            .filter(|(id, _)| !measured.contains(&id.as_str()))
            .map(|(_, row)| row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(measured: f64, baseline: f64, goal: Goal) -> Figure {
        Figure {
            id: "P0",
            name: "x".into(),
            measured: Measure::new(measured, "ms"),
            baseline: Measure::new(baseline, "ms"),
            baseline_name: "y".into(),
            goal,
        }
    }

    #[test]
    fn goals_compare_ratio_or_value() {
        assert!(figure(4.0, 10.0, Goal::RatioAtLeast(0.4)).passes());
        assert!(!figure(3.9, 10.0, Goal::RatioAtLeast(0.4)).passes());
        assert!(figure(15.0, 10.0, Goal::RatioAtMost(1.5)).passes());
        assert!(!figure(16.0, 10.0, Goal::RatioAtMost(1.5)).passes());
        assert!(figure(5.0, 1.0, Goal::ValueAtMost(5.0)).passes());
        assert!(!figure(5.1, 1.0, Goal::ValueAtMost(5.0)).passes());
    }

    #[test]
    fn a_ratio_with_a_latency_goal_needs_both() {
        let goal = |p99_ms| Goal::RatioAtLeastWithP99 {
            ratio: 3.0,
            p99_ms,
            max_p99_ms: 50.0,
        };
        assert!(figure(30.0, 10.0, goal(50.0)).passes());
        assert!(!figure(29.0, 10.0, goal(10.0)).passes());
        assert!(!figure(30.0, 10.0, goal(50.1)).passes());
        assert!(!figure(30.0, 10.0, goal(f64::NAN)).passes());
        assert_eq!(goal(1.0).to_string(), "ratio ≥ 3.00, p99 ≤ 50 ms");
    }

    #[test]
    fn large_numbers_are_grouped() {
        assert_eq!(
            Measure::new(1_234_567.4, "ops/s").to_string(),
            "1,234,567 ops/s"
        );
        assert_eq!(Measure::new(4.256, "ms").to_string(), "4.26 ms");
    }

    fn test_machine() -> Machine {
        Machine {
            cores: "2".into(),
            memory: "1Gi".into(),
            cpu: "cpu".into(),
        }
    }

    #[test]
    fn notes_after_the_marker_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RESULTS.md");
        let machine = test_machine();
        let figures = [figure(1.0, 2.0, Goal::RatioAtLeast(0.4))];
        let run = RunReport {
            machine: &machine,
            date: "today".into(),
            command: "bench/run".into(),
            quick: true,
            server: "s".into(),
            load: ("0.1".into(), "0.2".into()),
            figures: &figures,
            failures: &[],
            notes: &[],
            every_figure: true,
        };
        write_results(&path, &run).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{first}\n## Before/after\nkept\n")).unwrap();
        write_results(&path, &run).unwrap();
        let second = std::fs::read_to_string(&path).unwrap();
        assert!(second.contains("## Before/after\nkept"));
        assert_eq!(second.matches(GENERATED_END).count(), 1);
    }

    #[test]
    fn a_run_of_some_figures_keeps_the_others_and_says_when_they_were_measured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RESULTS.md");
        let machine = test_machine();
        let report_with =
            |date: &str, figures: &[Figure], failures: &[(String, String)], every_figure| {
                let run = RunReport {
                    machine: &machine,
                    date: date.into(),
                    command: "bench/run".into(),
                    quick: false,
                    server: "s".into(),
                    load: ("0.1".into(), "0.2".into()),
                    figures,
                    failures,
                    notes: &[],
                    every_figure,
                };
                write_results(&path, &run).unwrap();
                std::fs::read_to_string(&path).unwrap()
            };
        let report = |date: &str, figures: &[Figure]| report_with(date, figures, &[], false);
        let with_id = |id: &'static str, measured: f64| Figure {
            id,
            ..figure(measured, 2.0, Goal::RatioAtLeast(0.4))
        };
        report(
            "monday",
            &[with_id("P1", 1.0), with_id("P1", 1.5), with_id("P8", 3.0)],
        );
        // A client figure's block, as packages/client/bench writes it.
        let client = "<!-- client figure P4 -->\n### P4\n| P4 | c | 1 | 2 | 0.50 | g | PASS |\n<!-- end client figure P4 -->";
        let old = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            old.replacen(GENERATED_END, &format!("{client}\n\n{GENERATED_END}"), 1),
        )
        .unwrap();

        let tuesday = report("tuesday", &[with_id("P8", 4.0)]);
        let rows: Vec<&str> = tuesday.lines().filter(|l| l.starts_with("| P")).collect();
        assert_eq!(rows.len(), 4, "{tuesday}");
        assert!(
            rows[0].starts_with("| P1 |") && rows[0].ends_with("(measured monday) |"),
            "{}",
            rows[0]
        );
        assert!(
            rows[1].starts_with("| P1 |") && rows[1].contains("1.50 ms"),
            "{}",
            rows[1]
        );
        assert!(
            rows[2].starts_with("| P8 |")
                && rows[2].contains("4.00 ms")
                && !rows[2].contains("measured")
        );
        assert!(
            tuesday.contains(client),
            "the client's block is kept: {tuesday}"
        );
        assert!(!tuesday.contains("3.00 ms"), "the earlier P8 is replaced");

        // Kept twice, a row still names the run that measured it.
        let wednesday = report("wednesday", &[with_id("P8", 5.0)]);
        assert_eq!(
            wednesday.matches("(measured monday)").count(),
            2,
            "{wednesday}"
        );
        assert!(!wednesday.contains("tuesday"));
        assert_eq!(wednesday.matches(GENERATED_END).count(), 1);

        // A figure that failed to measure is not kept as if it had passed.
        let failed = [(
            "P1/P2 push and pull throughput".to_owned(),
            "boom".to_owned(),
        )];
        let thursday = report_with("thursday", &[with_id("P8", 6.0)], &failed, false);
        assert!(!thursday.contains("| P1 |"), "{thursday}");
        // A run of every figure keeps no earlier row (the client's blocks stay).
        report("friday", &[with_id("P1", 1.0), with_id("P3", 1.0)]);
        let saturday = report_with("saturday", &[with_id("P8", 7.0)], &[], true);
        assert!(
            !saturday.contains("| P1 |") && !saturday.contains("| P3 |"),
            "{saturday}"
        );
        assert!(saturday.contains(client));
    }
}
