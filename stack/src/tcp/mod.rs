//! TCP (RFC 9293) with window scaling, timestamps and PAWS (RFC 7323), SACK (RFC 2018)
//! and SACK-based recovery (RFC 6675), NewReno (RFC 6582), RTO (RFC 6298), RFC 5961
//! protections and RFC 6528 ISNs.

pub mod assembler;
pub mod buffer;
pub mod cc;
pub mod hooks;
pub mod isn;
pub mod ratelimit;
pub mod rtt;
pub mod sack;
pub mod state;
pub mod tcb;
#[cfg(test)]
mod test_util;

pub use crate::wire::SeqNumber;
pub use state::State;
pub use tcb::Tcb;
