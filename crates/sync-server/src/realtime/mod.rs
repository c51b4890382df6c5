//! Realtime delivery (PROTOCOL.md section 4, "Subscribe"): the subscription
//! session that chains backlog and live commits without gap or duplicate,
//! and its two transports, WebSocket and Server-Sent Events. The commits
//! come from the hub in [`crate::fanout`].

pub mod frames;
pub mod session;
pub mod sse;
pub mod ws;
