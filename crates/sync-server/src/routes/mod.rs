//! One file per route of the HTTP API.

pub mod changes;
pub mod config;
pub mod dev_token;
pub mod health;
pub mod members;
pub mod push;
pub mod records;
pub mod snapshot;
pub mod web_app;
pub mod workspaces;
