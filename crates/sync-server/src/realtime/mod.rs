//! Realtime delivery (PROTOCOL.md section 4, "Subscribe"): a per-workspace
//! hub that serializes each commit once and fans it out, the subscription
//! session that chains backlog and live commits without gap or duplicate,
//! and its two transports, WebSocket and Server-Sent Events.

pub mod bus;
pub mod frames;
pub mod hub;
pub mod session;
pub mod sse;
pub mod ws;
