//! `mptun-stack`: a sans-IO TCP and Multipath TCP engine.
//!
//! The engine never reads a clock, touches a socket or draws unseeded randomness.
//! Packets come in through [`Stack::handle_packet`], leave through
//! [`Stack::poll_transmit`], time advances only through the `now` arguments, and all
//! randomness derives from the seed in [`Config`]. Two engines can therefore be run
//! against each other in a simulated network and any run replayed from its seed.

#![forbid(unsafe_code)]

pub mod config;
pub mod conn;
pub mod demux;
pub mod endpoint;
pub mod impair;
pub mod memory;
pub mod mptcp;
pub mod tcp;
pub mod time;
pub mod wire;

pub use config::{
    CcAlgorithm, Config, MptcpConfig, RateLimits, SchedulerKind, Seed, Shard, SynCookies,
    TcpConfig, TokenPrefix,
};
pub use conn::direct_read::DirectReader;
pub use endpoint::{
    BufferInfo, ConnId, ConnInfo, ConnectOptions, Counters, EndedSubflow, EndpointFlags, Error,
    Event, Listen, LocalReset, MptcpInfo, PathEvent, PathEventKind, RuntimeLimits, SharedCounts,
    Stack, Steer, SubflowEnd, SubflowInfo, SubflowRef, TxPacket, TxParts, UnusedPath, UnusedReason,
};
pub use tcp::buffer::Room;
pub use tcp::State;
pub use time::Instant;
