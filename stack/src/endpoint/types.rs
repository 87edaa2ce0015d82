//! What the stack tells the application, and how its calls fail.

pub use crate::demux::ConnId;
pub use crate::tcp::state::CloseReason;
use core::fmt;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A listener accepted a connection (handshake complete).
    Accepted {
        id: ConnId,
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
