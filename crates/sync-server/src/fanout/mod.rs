//! Commit fanout, below the routes and the subscription transports: the
//! per-workspace [`hub::Hub`] that serializes each commit once and hands it
//! to this node's subscribers, the frames it writes, and the [`bus::Bus`]
//! that tells the other nodes of a commit (in process, or [`pg_bus::PgBus`]
//! over Postgres `LISTEN/NOTIFY`). `AppState` holds the hub, so nothing here
//! may know `AppState`, a route or a transport.

pub mod bus;
pub mod frames;
pub mod hub;
pub mod pg_bus;
