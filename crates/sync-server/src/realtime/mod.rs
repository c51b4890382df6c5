//! Realtime delivery (PROTOCOL.md section 4, "Subscribe"): a per-workspace
//! hub that serializes each commit once and fans it out, the subscription
//! session that chains backlog and live commits without gap or duplicate,
//! and its two transports, WebSocket and Server-Sent Events; between nodes,
//! the [`bus::Bus`] (in process, or [`pg_bus::PgBus`] over Postgres
//! `LISTEN/NOTIFY`).

pub mod bus;
pub mod frames;
pub mod hub;
pub mod pg_bus;
pub mod session;
pub mod sse;
pub mod ws;
