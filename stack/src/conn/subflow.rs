//! One subflow as one value: its TCB and what the MPTCP level keeps for it,
//! created together, freed together. A plain TCP connection is a connection of
//! one subflow whose MPTCP part is never used.

pub use crate::demux::SubflowId;
use crate::mptcp::SubflowMp;
use crate::tcp::Tcb;

#[derive(Debug)]
pub struct Subflow {
    /// Stable for the subflow's life and never reused within its connection;
    /// the demux maps the subflow's 4-tuple straight to it.
    pub id: SubflowId,
    pub tcb: Tcb,
    pub mp: SubflowMp,
    /// What the path-event monitor was told about it.
    pub reported: super::SubflowReported,
}

impl Subflow {
    pub fn new(id: SubflowId, tcb: Tcb, mp: SubflowMp) -> Subflow {
        Subflow {
            id,
            tcb,
            mp,
            reported: Default::default(),
        }
    }

    pub fn tuple(&self) -> crate::demux::FourTuple {
        crate::demux::FourTuple {
            local: self.tcb.local(),
            remote: self.tcb.remote(),
        }
    }
}
