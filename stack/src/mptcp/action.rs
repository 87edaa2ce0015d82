//! What the MPTCP level decides and the connection carries out. The data level
//! owns no subflow but the one it is handed; whatever concerns the others, or
//! the connection as a whole, or the stack, comes back from its input and timer
//! functions as an [`Action`] — never as a flag for someone to poll.

use super::pm::RemoteAddr;
use crate::wire::Dsn;

/// MP_TCPRST reason codes (RFC 8684 §3.6).
pub mod rst_reason {
    pub const UNSPECIFIED: u8 = 0;
    pub const MPTCP_ERROR: u8 = 1;
    pub const ADMIN_PROHIBITED: u8 = 3;
    pub const MIDDLEBOX: u8 = 6;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reset the subflow at hand alone: RST with MP_TCPRST `reason`, and
    /// MP_FAIL at `fail` after a DSS checksum failure.
    ResetSubflow { reason: u8, fail: Option<Dsn> },
    /// The peer withdrew its address `id` (REMOVE_ADDR): its subflows go.
    RemoveRemote(u8),
    /// v0 MP_PRIO naming the peer's address `id`: every subflow to it becomes
    /// a backup or not (RFC 6824 §3.3.8).
    RemoteBackup { id: u8, backup: bool },
    /// The connection cannot go on (a checksum failure it cannot fall back
    /// from, an unanswered MP_FAIL): every subflow is reset.
    ResetAll { reason: u8, fail: Option<Dsn> },
    /// The peer fast-closed the connection with our key (RFC 8684 §3.5).
    FastClosed,
    /// Data arrived that nobody will read (released): abort, MP_FASTCLOSE.
    Abort,
    /// Our v1 SYN got plain TCP back and v0 is allowed: refuse this SYN/ACK
    /// and open the connection again offering v0 (RFC 8684 §3.1).
    RetryV0,
    /// Every live subflow sends a pure ACK (a DATA_FIN goes on all of them).
    AckAll,
    /// One live subflow sends a pure ACK (an address option waits for one).
    Ack,
    /// The peer's connection-level window is closed on our data: every live
    /// subflow sends a probe its peer must answer (`Tcb::probe`), with the
    /// window as it is now.
    ProbeWindow,
    /// Data-level retransmission under the redundant scheduler: every
    /// subflow's cursor goes back to the DATA_ACK.
    RewindRedundant,
    /// The peer announced an address (ADD_ADDR, checked) for the path manager.
    PeerAddress(RemoteAddr),
}

/// The actions of one call, in order. Most calls decide nothing, and an empty
/// `Vec` does not allocate.
pub type Actions = Vec<Action>;
