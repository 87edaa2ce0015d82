//! The network model: one direction of a path, a [`Link`].
//!
//! The model itself lives in the engine crate, [`mptun_stack::impair`], shared with
//! the daemon's `--impair`; see its documentation for what a link does to a packet.

pub use mptun_stack::impair::{Link, LinkParams, LinkStats};
