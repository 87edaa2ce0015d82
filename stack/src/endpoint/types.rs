//! What the stack tells the application, and how its calls fail.

pub use crate::demux::ConnId;
pub use crate::tcp::state::CloseReason;
use core::fmt;
use std::net::SocketAddr;

/// What a connection opened by [`Stack::connect_with`](super::Stack::connect_with)
/// does differently from the stack's configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The MPTCP scheduler (default: `MptcpConfig::scheduler`).
    pub scheduler: Option<crate::config::SchedulerKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A listener accepted a connection (handshake complete).
    Accepted {
        id: ConnId,
        /// The listener that took it.
        on: Listen,
        /// The address the peer connected to: one of ours, or for
        /// [`Listen::Transparent`] the destination it meant to reach.
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// An active open completed.
    Connected(ConnId),
    /// New data (or the peer's FIN) is ready for `recv`.
    Readable(ConnId),
    /// Send-buffer space became free after being full.
    Writable(ConnId),
    /// The connection has ended; the handle stays valid for `recv` of any
    /// remaining data until `release`.
    Closed { id: ConnId, reason: CloseReason },
}

/// What a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listen {
    /// Connections to this port on every local address.
    Port(u16),
    /// Connections to any port of any address that is not ours: the host routes
    /// traffic meant for others into the stack, which answers as its
    /// destination (a transparent proxy, as tun2socks-style stacks are). Plain
    /// TCP only: MPTCP options are ignored, since the stack cannot speak for the
    /// destination's other addresses.
    Transparent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No connection with this handle (never existed, or released).
    InvalidConnection,
    /// Already listening on this port.
    AddrInUse,
    /// No local address to connect from (none configured for the remote's family).
    NoLocalAddress,
    /// All ephemeral ports to this remote are in use, or the connection table is full.
    Exhausted,
    /// Sending after `shutdown`, or on a connection that is closed.
    NotWritable,
    /// The peer closed its direction and every byte has been read.
    Finished,
    /// The connection was reset or aborted; no more data will come.
    Reset,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::InvalidConnection => "no such connection",
            Error::AddrInUse => "address in use",
            Error::NoLocalAddress => "no local address for that family",
            Error::Exhausted => "no free port or connection slot",
            Error::NotWritable => "connection not writable",
            Error::Finished => "peer closed the connection",
            Error::Reset => "connection reset",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// What MPTCP's path manager does with one of our addresses (Linux's endpoint
/// flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointFlags {
    /// Announce it (ADD_ADDR) on connections accepted on another address.
    pub signal: bool,
    /// Open a subflow from it on connections we initiate.
    pub subflow: bool,
    /// Subflows on it are backups (MP_JOIN / MP_PRIO B bit).
    pub backup: bool,
}
