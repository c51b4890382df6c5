//! What Postgres `text` cannot hold: the NUL character. Keys, table names,
//! op ids and stamps are validated before they reach a store, and payloads
//! are JSON text (where NUL is escaped), but the project and thread ids the
//! store reads out of a row's payload are any JSON string. SQLite stores
//! them as they are; here they are mapped so that a client's odd id is never
//! a database error (a 500).
//!
//! - Project ids are only ever compared with other project ids, so they go
//!   through an injective escape that leaves every id without NUL and
//!   without [`MARKER`] as it is.
//! - Thread ids are compared with thread keys, which never contain NUL: a
//!   thread id with NUL names no thread, exactly like no thread id at all.

use std::borrow::Cow;

/// Starts an escaped project id (a private-use character).
const MARKER: char = '\u{E000}';

/// A project id as stored: unchanged, unless it holds NUL or [`MARKER`];
/// then [`MARKER`] followed by the hex of its UTF-8 bytes.
pub(super) fn project_to_db(id: &str) -> Cow<'_, str> {
    if !id.contains(['\0', MARKER]) {
        return Cow::Borrowed(id);
    }
    let mut escaped = String::with_capacity(1 + 2 * id.len());
    escaped.push(MARKER);
    for byte in id.bytes() {
        escaped.push_str(&format!("{byte:02x}"));
    }
    Cow::Owned(escaped)
}

/// The project id a stored one stands for.
pub(super) fn project_from_db(stored: String) -> String {
    let Some(hex) = stored.strip_prefix(MARKER) else {
        return stored;
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or(stored)
}

/// A thread id as stored: none when it holds NUL (it names no thread).
pub(super) fn thread_to_db(id: Option<&str>) -> Option<&str> {
    id.filter(|id| !id.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_are_stored_as_they_are() {
        assert!(matches!(project_to_db("p1"), Cow::Borrowed("p1")));
        assert_eq!(project_from_db("p1".into()), "p1");
    }

    #[test]
    fn odd_project_ids_round_trip_and_never_collide() {
        let odd = ["a\0b", "\u{E000}", "\u{E000}61", "\0"];
        let stored: Vec<String> = odd
            .iter()
            .map(|id| project_to_db(id).into_owned())
            .collect();
        for (id, s) in odd.iter().zip(&stored) {
            assert!(!s.contains('\0'));
            assert_eq!(project_from_db(s.clone()), *id);
        }
        let mut unique = stored.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), stored.len());
        assert!(!stored.contains(&"a".to_owned()));
    }

    #[test]
    fn a_thread_id_with_nul_names_no_thread() {
        assert_eq!(thread_to_db(Some("t\0")), None);
        assert_eq!(thread_to_db(Some("t1")), Some("t1"));
    }
}
