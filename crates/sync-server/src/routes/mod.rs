//! One file per route of the HTTP API.

pub mod changes;
pub mod dev_token;
pub mod device_cursor;
pub mod health;
pub mod members;
pub mod push;
pub mod records;
pub mod snapshot;
pub mod web_app;
pub mod workspace;
pub mod workspaces;
