//! What one MPTCP connection counted, folded into the stack's counters when it
//! ends (the names follow Linux's `MPTcpExt` counters where they match).

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MptcpStats {
    /// MP_JOIN SYNs accepted, joins completed (both roles), HMAC failures.
    pub join_syn_rx: u64,
    pub joins_established: u64,
    pub join_hmac_failures: u64,
    /// Bytes sent again on another subflow after theirs died or stalled.
    pub reinjected_bytes: u64,
    /// Data-level retransmission timeouts that mapped data again.
    pub data_rtx: u64,
    /// Probes of the peer's closed connection-level window.
    pub window_probes: u64,
    pub mp_prio_rx: u64,
    pub mp_prio_tx: u64,
    pub add_addr_tx: u64,
    pub add_addr_rx: u64,
    pub add_addr_echo_rx: u64,
    pub add_addr_hmac_failures: u64,
    /// v0 ADD_ADDRs ignored (no HMAC: `accept_v0_add_addr` off).
    pub add_addr_ignored: u64,
    pub rm_addr_tx: u64,
    pub rm_addr_rx: u64,
    /// DSS checksum failures and the MP_FAIL / infinite mapping exchange that
    /// follows them (RFC 8684 §3.7).
    pub mp_fail_tx: u64,
    pub mp_fail_rx: u64,
    pub infinite_map_tx: u64,
    pub infinite_map_rx: u64,
    pub checksum_errors: u64,
    /// DATA_ACKs and mappings refused as implausible (outside what was sent,
    /// or far outside the receive window).
    pub bad_data_acks: u64,
    pub bad_mappings: u64,
    /// Reinjection ranges not queued because the queue was full (the
    /// data-level retransmission covers them).
    pub reinject_overflow: u64,
    /// Out-of-order bytes the connection level could not keep (beyond its
    /// free space, too many holes, memory exhausted): dropped there for the
    /// peer to send again.
    pub ofo_dropped_bytes: u64,
    /// Data without a mapping on the first subflow after mappings were seen:
    /// held while the peer was asked whether it still speaks MPTCP
    /// (`unmapped.rs`); and the answers that said so (the bytes dropped).
    pub unmapped_holds: u64,
    pub unmapped_dropped: u64,
}
