//! Multipath TCP (RFC 8684 "v1", and RFC 6824 "v0"): the connection level above
//! TCP subflows.

pub mod connection;
pub mod crypto;
pub mod handshake;
pub mod join;
pub mod mapping;
pub mod pm;
mod retransmit;
pub mod scheduler;
pub mod subflow;
