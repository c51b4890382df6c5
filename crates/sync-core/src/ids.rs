//! Newtypes for the identifiers and numbers the protocol passes around.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A workspace id: 1 to 128 characters of `[A-Za-z0-9_-]`, so it is safe in
/// paths, logs and database names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    /// Parses a workspace id, refusing anything outside the safe alphabet.
    pub fn parse(text: &str) -> Option<WorkspaceId> {
        let ok = (1..=128).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| WorkspaceId(text.to_owned()))
    }

    /// A new random workspace id (a UUID v7, so ids sort by creation).
    pub fn generate() -> WorkspaceId {
        WorkspaceId(uuid::Uuid::now_v7().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An op id: a UUID, kept in its canonical lowercase form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OpId(String);

impl OpId {
    /// Parses a hyphenated 36-character UUID; the stored form is lowercase.
    pub fn parse(text: &str) -> Option<OpId> {
        if text.len() != 36 {
            return None;
        }
        uuid::Uuid::try_parse(text)
            .ok()
            .map(|u| OpId(u.hyphenated().to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A device id: 16 to 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    /// Parses a device id.
    pub fn parse(text: &str) -> Option<DeviceId> {
        crate::hlc::is_device_id(text).then(|| DeviceId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A position in a workspace's change log. Version 0 means "before everything".
pub type ServerVersion = u64;

/// What a member may do in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Pull only.
    Viewer,
    /// Push and pull.
    Editor,
    /// Everything, including membership.
    Owner,
}

impl Role {
    /// The wire name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// Maps a Clerk organization role (`org:admin`, `admin`, `org:member`, ...).
    pub fn from_clerk_org_role(text: &str) -> Role {
        match text.strip_prefix("org:").unwrap_or(text) {
            "admin" => Role::Owner,
            "member" => Role::Editor,
            _ => Role::Viewer,
        }
    }
}
