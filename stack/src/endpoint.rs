//! The `Stack`: the engine's whole surface. Demultiplexes packets to connections,
//! runs their timers, queues their output and reports events to the application.
//!
//! STUB API: bodies under construction.

use crate::config::Config;
use crate::tcp::State;
use crate::time::Instant;
use core::fmt;
use core::time::Duration;
use std::net::{IpAddr, SocketAddr};

/// Handle of a connection, stable for its life; never reused within one `Stack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both FINs exchanged and acknowledged.
    Normal,
    /// The peer sent a RST.
    Reset,
    /// The peer refused the connection (RST in answer to our SYN).
    Refused,
    /// Retransmissions (or keepalive probes) exhausted.
    TimedOut,
    /// The application aborted it.
    Aborted,
}

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

/// Stack-wide counters, exported by the daemon's `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub segments_in: u64,
    pub segments_out: u64,
    pub retransmitted_segments: u64,
    pub retransmitted_bytes: u64,
    pub resets_sent: u64,
    pub resets_received: u64,
    pub connections_accepted: u64,
    pub connections_opened: u64,
    pub drop_malformed: u64,
    pub drop_bad_checksum: u64,
    pub drop_not_for_us: u64,
    pub drop_no_listener: u64,
    pub drop_invalid_option: u64,
    pub drop_backlog_full: u64,
    pub drop_out_of_window: u64,
    pub drop_paws: u64,
    pub drop_ooo_overflow: u64,
    pub challenge_acks: u64,
}

/// A snapshot of one connection for status displays and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub bytes_retransmitted: u64,
    pub segments_retransmitted: u64,
    pub srtt: Option<Duration>,
    pub rto: Duration,
    pub cwnd: usize,
    pub ssthresh: usize,
    pub snd_wnd: usize,
    pub mss: usize,
    pub sack: bool,
    pub timestamps: bool,
}

pub struct Stack {
    config: Config,
}

impl Stack {
    pub fn new(config: Config) -> Self {
        Stack { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Answer for `addr` (packets to other addresses are dropped).
    pub fn add_address(&mut self, addr: IpAddr) {
        let _ = addr;
        todo!()
    }

    pub fn remove_address(&mut self, addr: IpAddr) {
        let _ = addr;
        todo!()
    }

    pub fn addresses(&self) -> &[IpAddr] {
        todo!()
    }

    /// Accept connections to `port` on every local address.
    pub fn listen(&mut self, port: u16) -> Result<(), Error> {
        let _ = port;
        todo!()
    }

    /// Stop accepting on `port`; established connections are unaffected.
    pub fn unlisten(&mut self, port: u16) {
        let _ = port;
        todo!()
    }

    /// Open a connection to `remote` from `local` (or the first local address of the
    /// remote's family) and an ephemeral port.
    pub fn connect(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<ConnId, Error> {
        let _ = (now, local, remote);
        todo!()
    }

    /// Queue data; returns bytes accepted (0 when the send buffer is full).
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        let _ = (id, data);
        todo!()
    }

    /// Read in-order data. `Ok(0)`: nothing yet. `Err(Finished)`: the peer's FIN has
    /// been read past. `Err(Reset)`: the connection was reset.
    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, Error> {
        let _ = (id, buf);
        todo!()
    }

    /// Bytes that `send` would accept now.
    pub fn send_capacity(&self, id: ConnId) -> Result<usize, Error> {
        let _ = id;
        todo!()
    }

    /// Close our direction once queued data is sent (half-close).
    pub fn shutdown(&mut self, id: ConnId) -> Result<(), Error> {
        let _ = id;
        todo!()
    }

    /// Send a RST and drop the connection at once.
    pub fn abort(&mut self, id: ConnId) -> Result<(), Error> {
        let _ = id;
        todo!()
    }

    /// The application is done with the handle: after this the stack finishes the
    /// close on its own (data still arriving is answered with RST) and frees it.
    pub fn release(&mut self, id: ConnId) -> Result<(), Error> {
        let _ = id;
        todo!()
    }

    pub fn state(&self, id: ConnId) -> Option<State> {
        let _ = id;
        todo!()
    }

    pub fn info(&self, id: ConnId) -> Option<ConnInfo> {
        let _ = id;
        todo!()
    }

    /// Handles of every connection not yet released.
    pub fn connections(&self) -> Vec<ConnId> {
        todo!()
    }

    pub fn counters(&self) -> &Counters {
        todo!()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// A packet read from the network (an IPv4 or IPv6 datagram).
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        let _ = (now, packet);
        todo!()
    }

    /// Write the next packet to send into `buf` (at least the MTU long); its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let _ = (now, buf);
        todo!()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }
}
