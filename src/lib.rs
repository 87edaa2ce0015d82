//! The `mptun` daemon's building blocks, above the `mptun-stack` engine.

pub mod cli;
pub mod control;
pub mod pcap;
pub mod status;
pub mod tun;
