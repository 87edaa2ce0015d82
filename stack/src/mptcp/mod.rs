//! Multipath TCP (RFC 8684 "v1", and RFC 6824 "v0"): the connection level above
//! TCP subflows.
//!
//! [`level::DataLevel`] is one connection's MPTCP level; [`subflow::SubflowMp`]
//! what it keeps per subflow, beside that subflow's TCB. The data level acts on
//! the options of segments their TCB accepted (`input`), moves bytes between
//! the subflows and the data stream (`recv`, `send`; subflows send straight
//! from the data level's buffer, `send_mapped`), falls back or exchanges
//! MP_FAIL (`fail`), takes in-order bytes straight from segments (`direct`), retransmits at the data level (`retransmit`), joins
//! subflows (`join`) and keeps the path manager's per-connection state (`pm`);
//! `options` builds every option we send. What concerns more than the subflow
//! at hand comes back as [`action::Action`]s.

pub mod action;
pub mod crypto;
pub mod direct;
mod fail;
mod input;
pub mod join;
pub mod level;
pub mod mapping;
pub mod options;
pub mod pm;
mod recv;
mod retransmit;
pub mod scheduler;
mod send;
mod send_mapped;
pub mod stats;
pub mod subflow;
mod unmapped;

pub use action::{rst_reason, Action, Actions};
pub use level::{DataLevel, FallbackReason, MptcpSettings, Phase, Role};
pub use subflow::SubflowMp;
