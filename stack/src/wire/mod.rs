//! Packet formats: zero-copy views for parsing, plain `Repr` structs to emit from.
//!
//! Every parser validates lengths before it reads and returns a [`WireError`] on
//! malformed input; nothing here panics on any input bytes.

pub mod checksum;
pub mod dsn;
pub mod error;
pub mod gso;
pub mod icmp;
pub mod ip;
pub mod mptcp;
pub mod seq;
pub mod tcp;

pub use dsn::Dsn;
pub use error::WireError;
pub use icmp::{
    emit_echo_reply, emit_echo_request, emit_unreachable, IcmpEcho, IcmpMessage, QuotedTcp,
};
pub use ip::{IpRepr, Ipv4Packet, Ipv6Packet, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP};
pub use mptcp::{
    mptcp_options, MptcpError, MptcpOption, MptcpOptions, MptcpVersion, ParseCtx, TCPOPT_MPTCP,
};
pub use seq::SeqNumber;
pub use tcp::{
    emit_headers, emit_packet, emit_packet_with, RawOptions, SackBlocks, TcpFlags, TcpOption,
    TcpOptionIter, TcpRepr, TcpSegment, TxChecksum,
};
