//! `mptun-stack`: a sans-IO TCP (and, later, MPTCP) engine.
//!
//! The engine never reads a clock, touches a socket or draws unseeded randomness.
//! Packets come in through [`Stack::handle_packet`], leave through
//! [`Stack::poll_transmit`], time advances only through the `now` arguments, and all
//! randomness derives from the seed in [`Config`]. Two engines can therefore be run
//! against each other in a simulated network and any run replayed from its seed.

pub mod config;
pub mod conn;
pub mod demux;
pub mod endpoint;
pub mod impair;
pub mod mptcp;
pub mod tcp;
pub mod time;
pub mod wire;

pub use config::{CcAlgorithm, Config, MptcpConfig, SchedulerKind, TcpConfig};
pub use endpoint::{ConnId, Counters, EndpointFlags, Error, Event, Stack, SubflowInfo};
pub use tcp::State;
pub use time::Instant;
