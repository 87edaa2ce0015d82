//! TCP (RFC 9293) with window scaling, timestamps and PAWS (RFC 7323), SACK (RFC 2018)
//! and SACK-based recovery (RFC 6675), NewReno (RFC 6582), RTO (RFC 6298), RFC 5961
//! protections, RFC 6528 ISNs and SYN cookies (RFC 4987).

pub mod assembler;
pub mod autotune;
pub mod buffer;
pub mod cc;
pub mod hooks;
pub mod hystart;
pub mod isn;
mod min_filter;
pub mod ratelimit;
pub mod rtt;
pub mod sack;
pub mod send_queue;
mod spare_chunks;
pub mod state;
pub mod syncookie;
pub mod tcb;
#[cfg(test)]
mod test_util;

pub use crate::wire::SeqNumber;
pub use state::State;
pub use tcb::Tcb;
