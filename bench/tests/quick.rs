//! The smoke run of the whole suite (`or3-bench --quick`), so the benchmarks
//! keep working as the server changes. It checks that every figure can be
//! measured, not that it meets its goal (debug builds are slow).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The debug `or3-sync` beside this package's binary, built if missing
/// (`cargo test --workspace` builds it anyway).
fn server_binary(bench: &Path) -> PathBuf {
    let server = bench.with_file_name(format!("or3-sync{}", std::env::consts::EXE_SUFFIX));
    if !server.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "or3-sync"])
            .status()
            .expect("run cargo build -p or3-sync");
        assert!(status.success(), "cargo build -p or3-sync failed");
    }
    server
}

#[test]
fn quick_mode_measures_every_figure() {
    let bench = Path::new(env!("CARGO_BIN_EXE_or3-bench"));
    let server = server_binary(bench);
    let scratch = tempfile::tempdir().unwrap();
    let results = scratch.path().join("RESULTS.md");
    let out = Command::new(bench)
        .args(["all", "--quick", "--server-bin"])
        .arg(&server)
        .arg("--work-dir")
        .arg(scratch.path())
        .arg("--results")
        .arg(&results)
        .output()
        .expect("run or3-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "or3-bench --quick failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let written = std::fs::read_to_string(&results).unwrap();
    for id in [
        "| P1 |",
        "| P2 |",
        "| P3 |",
        "| P1-pg |",
        "| P6 |",
        "| P7 |",
        "| P8 |",
        "| P8-pg |",
    ] {
        assert!(
            written.contains(id),
            "{id} missing from the results:\n{written}"
        );
    }
    // P8 and P8-pg each set their pushes against the server's no-op requests too.
    assert_eq!(
        written.matches("request-path ceiling").count(),
        2,
        "the P8 and P8-pg ceiling rows:\n{written}"
    );
    assert!(written.contains("Machine:") && written.contains("Command:"));
}
