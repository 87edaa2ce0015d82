//! The `mptun` daemon's building blocks, above the `mptun-stack` engine.

pub mod cli;
pub mod config_file;
pub mod config_merge;
pub mod control;
pub mod control_glue;
pub mod daemon;
pub mod driver;
pub mod gateway;
pub mod gso;
pub mod logging;
pub mod manuals;
pub mod metrics;
pub mod metrics_http;
pub mod notify;
pub mod panics;
pub mod pcap;
pub mod relay;
pub mod relays;
pub mod reload;
pub mod services;
pub mod shards;
pub mod socket;
pub mod socks5;
pub mod status;
pub mod tun;
pub mod watchdog;
