//! Multipath TCP (RFC 8684 v1, RFC 6824 v0).
//!
//! So far only the cryptographic building blocks; the option codecs and the
//! connection-level state machine build on them.

pub mod crypto;
