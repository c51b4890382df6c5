//! Runs every vector in the repository's `conformance/` folder against
//! sync-core. The same files run in the TypeScript client and the Convex
//! backend, so the three implementations cannot drift apart.

use serde_json::Value;
use std::cmp::Ordering;
use sync_core::hlc::{Hlc, HlcState};
use sync_core::validate::{validate_op, TableConfig, ValidationLimits};
use sync_core::Stamp;

fn load(name: &str) -> Value {
    let path = format!("{}/../../conformance/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn vectors(file: &Value) -> &Vec<Value> {
    file["vectors"].as_array().expect("a vectors array")
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn state(v: &Value) -> HlcState {
    HlcState {
        ms: u(v, "ms"),
        counter: u(v, "counter") as u32,
    }
}

fn ordering(n: i64) -> Ordering {
    n.cmp(&0)
}

#[test]
fn hlc_vectors() {
    let file = load("hlc.json");
    let mut failures = Vec::new();
    for v in vectors(&file) {
        let why = v["why"].as_str().unwrap_or("?");
        let ok = match v["kind"].as_str().unwrap_or("") {
            "format" => {
                let expect = v["expect"].as_str().unwrap();
                let device = v["device_id"].as_str().unwrap();
                let built =
                    Hlc::new(u(v, "ms"), u(v, "counter") as u32, device).map(|h| h.to_string());
                let parsed = Hlc::parse(expect).ok();
                built.as_deref() == Some(expect)
                    && parsed.is_some_and(|h| {
                        h.ms() == u(v, "ms")
                            && u64::from(h.counter()) == u(v, "counter")
                            && h.device_id() == device
                    })
            }
            "parse_error" => Hlc::parse(v["hlc"].as_str().unwrap()).is_err(),
            "compare" => {
                let (a, b) = (v["a"].as_str().unwrap(), v["b"].as_str().unwrap());
                let expect = ordering(v["expect"].as_i64().unwrap());
                let parsed = Hlc::parse(a).unwrap().cmp(&Hlc::parse(b).unwrap());
                a.as_bytes().cmp(b.as_bytes()) == expect && parsed == expect
            }
            "send" => state(&v["state"]).send(u(v, "now")) == state(&v["expect"]),
            "receive" => {
                state(&v["state"]).receive(state(&v["remote"]), u(v, "now")) == state(&v["expect"])
            }
            other => panic!("unknown hlc vector kind `{other}`"),
        };
        if !ok {
            failures.push(format!("{why}: {v}"));
        }
    }
    assert!(
        failures.is_empty(),
        "hlc vectors failed:\n{}",
        failures.join("\n")
    );
    assert!(vectors(&file).len() >= 30);
}

fn stamp(v: &Value) -> Stamp {
    Stamp {
        clock: u(v, "clock"),
        hlc: v["hlc"].as_str().unwrap().to_owned(),
        op_id: v["op_id"].as_str().unwrap().to_owned(),
    }
}

#[test]
fn lww_vectors() {
    let file = load("lww.json");
    for v in vectors(&file) {
        let (a, b) = (stamp(&v["a"]), stamp(&v["b"]));
        let expect = match v["expect"].as_str() {
            Some("a") => Ordering::Greater,
            Some("b") => Ordering::Less,
            Some("equal") => Ordering::Equal,
            other => panic!("bad expect {other:?}"),
        };
        assert_eq!(a.compare(&b), expect, "{}", v["why"]);
        assert_eq!(b.compare(&a), expect.reverse(), "swapped: {}", v["why"]);
        assert_eq!(a.beats(&b), expect == Ordering::Greater, "{}", v["why"]);
    }
    assert!(vectors(&file).len() >= 20);
}

struct Config {
    tables: TableConfig,
    limits: ValidationLimits,
    now_ms: u64,
}

fn config(base: &Value, overrides: Option<&Value>) -> Config {
    let mut merged = base.as_object().unwrap().clone();
    if let Some(o) = overrides.and_then(Value::as_object) {
        for (k, v) in o {
            merged.insert(k.clone(), v.clone());
        }
    }
    let tables = merged["tables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, f)| (t.clone(), f.as_str().unwrap().to_owned()));
    Config {
        tables: TableConfig::from_pairs(tables),
        limits: ValidationLimits {
            max_payload_bytes: merged["max_payload_bytes"].as_u64().unwrap() as usize,
            max_clock_skew_ms: merged["max_clock_skew_ms"].as_u64().unwrap(),
        },
        now_ms: merged["now_ms"].as_u64().unwrap(),
    }
}

#[test]
fn validation_vectors() {
    let file = load("validation.json");
    let mut failures = Vec::new();
    for v in vectors(&file) {
        let c = config(&file["config"], v.get("config"));
        let got = match validate_op(&v["op"], &c.tables, &c.limits, c.now_ms) {
            Ok(_) => "ok".to_owned(),
            Err(r) => r.code.as_str().to_owned(),
        };
        let expect = match &v["expect"] {
            Value::String(s) if s == "ok" => "ok".to_owned(),
            other => other["rejected"]
                .as_str()
                .expect("rejected code")
                .to_owned(),
        };
        if got != expect {
            failures.push(format!("{}: expected {expect}, got {got}", v["why"]));
        }
    }
    assert!(
        failures.is_empty(),
        "validation vectors failed:\n{}",
        failures.join("\n")
    );
    assert!(vectors(&file).len() >= 30);
}
