//! The or3-sync gateway as a library: the HTTP API ([`app::router`]), token
//! checks ([`auth`]), the storage contract and its SQLite implementation
//! ([`store`]), and the serve loop ([`serve`]). The `or3-sync` binary is a thin
//! CLI over this crate; tests drive the same router on an ephemeral port.

pub mod app;
pub mod auth;
pub mod body_deadline;
pub mod clock;
pub mod config;
pub mod error;
pub mod extract;
pub mod fanout;
pub mod gc;
pub mod limiter;
pub mod listener;
pub mod positions;
pub mod push;
pub mod rate_limit;
pub mod realtime;
pub mod routes;
pub mod serve;
pub mod state;
pub mod store;
