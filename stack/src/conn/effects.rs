//! What a connection hands back to the stack from each call: the RSTs it
//! decided on (the subflow they concern may already be gone when they are
//! sent) and the requests only the stack can carry out.

use crate::demux::FourTuple;
use crate::mptcp::pm::RemoteAddr;
use crate::tcp::hooks::OptionBytes;
use crate::tcp::tcb::RstReply;

/// A RST to send.
#[derive(Debug, Clone, Copy)]
pub struct RstOut {
    pub tuple: FourTuple,
    pub reply: RstReply,
    /// Options of a layered protocol (MPTCP's MP_FASTCLOSE, MP_TCPRST, MP_FAIL).
    pub extra: OptionBytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Open the connection again, same 4-tuple, offering MPTCP v0 (its v1
    /// SYN got plain TCP back).
    RetryV0,
    /// A subflow was freed: its 4-tuple no longer leads to the connection.
    Unbind(FourTuple),
    /// The MPTCP connection became fully established: the path manager opens
    /// our subflows or announces our addresses.
    StartPathManager,
    /// The peer announced an address: the path manager may join it.
    JoinPeerAddress(RemoteAddr),
}

/// RSTs and requests, in the order they were decided. Most calls have none,
/// and empty `Vec`s do not allocate.
#[derive(Debug, Default)]
#[must_use = "a connection's RSTs and requests must reach the stack"]
pub struct Effects {
    pub rsts: Vec<RstOut>,
    pub requests: Vec<Request>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.rsts.is_empty() && self.requests.is_empty()
    }

    pub fn rst(&mut self, tuple: FourTuple, reply: Option<RstReply>, extra: OptionBytes) {
        if let Some(reply) = reply {
            self.rsts.push(RstOut {
                tuple,
                reply,
                extra,
            });
        }
    }

    pub fn request(&mut self, r: Request) {
        self.requests.push(r);
    }

    pub fn extend(&mut self, other: Effects) {
        self.rsts.extend(other.rsts);
        self.requests.extend(other.requests);
    }
}
