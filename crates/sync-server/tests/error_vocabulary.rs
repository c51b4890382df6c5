//! One error vocabulary: the codes `docs/ERRORS.md` documents for the
//! gateway are exactly the codes it can send ([`ErrorCode`] for requests and
//! stream frames, [`RejectCode`] for per-op rejections), and the codes it
//! documents as Convex's or the client's own are none of them.

use std::collections::BTreeSet;
use sync_core::validate::RejectCode;
use sync_server::error::ErrorCode;

/// The codes in the `code` column of every table under the `## heading`.
fn documented(heading: &str) -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ERRORS.md");
    let text = std::fs::read_to_string(path).expect("docs/ERRORS.md");
    let mut codes = BTreeSet::new();
    let (mut in_section, mut column) = (false, None);
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_section = title == heading;
            column = None;
            continue;
        }
        if !in_section || !line.starts_with('|') {
            column = None;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        match column {
            None => column = cells.iter().position(|c| c.starts_with("code")),
            Some(at) => codes.extend(cells[at].split('`').skip(1).step_by(2).map(str::to_owned)),
        }
    }
    assert!(!codes.is_empty(), "no codes under `## {heading}`");
    codes
}

fn names(codes: impl IntoIterator<Item = &'static str>) -> BTreeSet<String> {
    codes.into_iter().map(str::to_owned).collect()
}

#[test]
fn every_gateway_error_code_is_documented_and_every_documented_one_is_sent() {
    let mut docs = documented("Request errors");
    docs.extend(documented("Stream frames"));
    let sent = names(ErrorCode::ALL.iter().map(|c| c.as_str()));
    assert_eq!(
        docs.difference(&sent).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented in docs/ERRORS.md but not an ErrorCode"
    );
    assert_eq!(
        sent.difference(&docs).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "ErrorCodes missing from docs/ERRORS.md"
    );
}

#[test]
fn every_rejection_code_is_documented_and_every_documented_one_is_sent() {
    let sent = names(RejectCode::ALL.iter().map(|c| c.as_str()));
    assert_eq!(documented("Per-op rejections"), sent);
}

#[test]
fn codes_of_convex_or_the_client_alone_are_not_gateway_codes() {
    let gateway = names(
        ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .chain(RejectCode::ALL.iter().map(|c| c.as_str())),
    );
    let convex = documented("Convex");
    let (shared, own): (BTreeSet<String>, BTreeSet<String>) =
        convex.into_iter().partition(|c| gateway.contains(c));
    for code in ["unknown_workspace", "forbidden", "store_unavailable"] {
        assert!(
            shared.contains(code),
            "Convex answers `{code}` as the gateway does"
        );
    }
    for code in [
        "invalid_input",
        "unauthorized",
        "batch_too_large",
        "network_error",
    ] {
        assert!(
            own.contains(code),
            "`{code}` is documented as Convex's or the client's own"
        );
    }
}
