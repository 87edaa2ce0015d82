//! The `mptun` daemon's building blocks, above the `mptun-stack` engine.

pub mod cli;
pub mod pcap;
