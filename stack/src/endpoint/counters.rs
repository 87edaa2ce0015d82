//! Stack-wide counters: what the stack saw, sent and refused, and what its
//! connections (live and gone) counted.

use crate::mptcp::stats::MptcpStats;
use crate::tcp::tcb::TcbStats;

/// Stack-wide counters, exported by the daemon's `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub segments_in: u64,
    /// TCP super-packets the host merged (GRO) and handed over whole
    /// (`Stack::handle_super_packet`); their segments count in
    /// `packets_in` and `segments_in`.
    pub super_packets_in: u64,
    pub segments_out: u64,
    /// TCP super-packets the engine sent for the device to segment
    /// (`Stack::poll_transmit_gso`); their segments count in `packets_out`
    /// and `segments_out`.
    pub super_packets_out: u64,
    pub retransmitted_segments: u64,
    pub retransmitted_bytes: u64,
    pub resets_sent: u64,
    pub resets_received: u64,
    pub connections_accepted: u64,
    pub connections_opened: u64,
    pub drop_malformed: u64,
    pub drop_bad_checksum: u64,
    pub drop_not_for_us: u64,
    pub drop_no_listener: u64,
    pub drop_invalid_option: u64,
    pub drop_backlog_full: u64,
    /// SYN cookies sent, third ACKs that carried a valid one, and ACKs to a
    /// listener that had sent cookies whose cookie (or MP_CAPABLE key) was
    /// wrong (Linux: SyncookiesSent, SyncookiesRecv, SyncookiesFailed).
    pub syncookies_sent: u64,
    pub syncookies_recv: u64,
    pub syncookies_failed: u64,
    /// ACKs whose cookie did not verify but names a current tick: a segment
    /// that overtook the third ACK or outlived its loss (or a forgery that
    /// guessed the tick), dropped without an answer. Linux counts these as
    /// SyncookiesFailed.
    pub syncookies_dropped: u64,
    pub drop_out_of_window: u64,
    pub drop_paws: u64,
    pub drop_ooo_overflow: u64,
    /// Out-of-order segments dropped while the memory budget was exhausted.
    pub drop_ooo_memory: u64,
    /// SYNs and MP_JOINs refused because the memory budget was exhausted
    /// (`Config::max_memory`), and times the stack came under memory
    /// pressure (buffers stopped growing and shrank).
    pub drop_memory: u64,
    pub memory_pressure: u64,
    /// Connections that skipped TIME_WAIT: the table of TIME_WAIT records
    /// was full (Linux's `TCPTimeWaitOverflow`).
    pub time_wait_overflow: u64,
    /// SYNs refused because their source already had
    /// `Config::max_conns_per_source` connections.
    pub drop_source_limit: u64,
    pub challenge_acks: u64,
    /// Challenge ACKs withheld by the stack-wide quota; duplicate ACKs to
    /// unacceptable segments without data withheld by the per-connection
    /// limit.
    pub challenge_acks_limited: u64,
    pub oow_acks_limited: u64,
    pub drop_unsupported_protocol: u64,
    pub drop_rst_queue_full: u64,
    /// Path events not queued: the monitor's queue was full.
    pub path_events_dropped: u64,
    /// RSTs in answer to segments withheld by `Config::limits`.
    pub drop_rst_rate_limited: u64,
    /// Packets from one of our own addresses (spoofed).
    pub drop_own_source: u64,
    /// ICMP / ICMPv6 echo requests to one of our addresses with a valid checksum.
    pub icmp_echo_requests: u64,
    pub icmp_echo_replies_sent: u64,
    /// Destination unreachable errors that failed a connection we were
    /// opening (its SYN quoted).
    pub icmp_unreachable: u64,
    /// ICMP / ICMPv6 messages other than echo requests and those (echo
    /// replies, errors about nothing we are opening, ...).
    pub drop_icmp_other: u64,
    /// Echo requests dropped because too many replies were already waiting,
    /// or by the rate limit.
    pub drop_icmp_queue_full: u64,
    pub drop_icmp_rate_limited: u64,
    /// Echo requests whose reply would not fit the MTU (we do not fragment).
    pub drop_icmp_too_big: u64,
    /// Closed connections that ran MPTCP to the end, and those that fell back.
    pub mptcp_connections: u64,
    pub mptcp_fallbacks: u64,
    /// DSS checksum failures, and the MP_FAIL / infinite mapping exchange that
    /// follows them (RFC 8684 §3.7), as Linux counts them.
    pub mptcp_checksum_errors: u64,
    pub mptcp_mp_fail_tx: u64,
    pub mptcp_mp_fail_rx: u64,
    pub mptcp_infinite_map_tx: u64,
    pub mptcp_infinite_map_rx: u64,
    /// MP_JOIN SYNs accepted, joins refused (unknown token, limits: RST with
    /// MP_TCPRST), joins completed in either role, HMAC failures.
    pub mptcp_join_syn_rx: u64,
    pub mptcp_join_rejected: u64,
    pub mptcp_joins_established: u64,
    pub mptcp_join_hmac_failures: u64,
    /// Bytes sent again on another subflow after theirs died or stalled.
    pub mptcp_reinjected_bytes: u64,
    /// Data-level retransmission timeouts that sent data again (the DATA_ACK
    /// stalled although the subflows had delivered it).
    pub mptcp_data_retransmits: u64,
    /// Data-level timeouts that probed the peer's closed connection-level
    /// window (data waiting, none outstanding).
    pub mptcp_window_probes: u64,
    pub mptcp_mp_prio_tx: u64,
    pub mptcp_mp_prio_rx: u64,
    /// ADD_ADDR sent (repeats included) and valid ones received; echoes of ours
    /// received; received ones dropped for a wrong HMAC; REMOVE_ADDR both ways.
    pub mptcp_add_addr_tx: u64,
    pub mptcp_add_addr_rx: u64,
    pub mptcp_add_addr_echo_rx: u64,
    pub mptcp_add_addr_hmac_failures: u64,
    /// v0 ADD_ADDRs ignored (`accept_v0_add_addr` off), and announced
    /// addresses the path manager would not join (ours, loopback, multicast,
    /// unspecified, link-local).
    pub mptcp_add_addr_ignored: u64,
    pub mptcp_add_addr_refused: u64,
    /// Reinjection ranges dropped from a full queue.
    pub mptcp_reinject_overflow: u64,
    /// Out-of-order bytes the connection level could not keep (beyond its
    /// free space, too many holes, memory exhausted): dropped there although
    /// a subflow acknowledged them, for the peer to send again at the data
    /// level (Linux counts such drops as MPTcpExt NoDSSInWindow, OFOQueue
    /// pruning).
    pub mptcp_ofo_dropped_bytes: u64,
    /// Data without a DSS mapping on a first subflow that had seen mappings:
    /// held while the peer was asked whether it fell back; and the times it
    /// answered with MPTCP options, so the bytes were a copy stripped of its
    /// options (dropped; the peer's data level sends what was new again).
    pub mptcp_unmapped_held: u64,
    pub mptcp_unmapped_dropped: u64,
    pub mptcp_rm_addr_tx: u64,
    pub mptcp_rm_addr_rx: u64,
    /// Connections opened again with v0 after their v1 SYN got plain TCP back.
    pub mptcp_v0_retries: u64,
    /// DATA_ACKs beyond what was sent, and mappings beyond the receive window
    /// or conflicting with known ones, on otherwise acceptable segments:
    /// ignored.
    pub mptcp_bad_data_acks: u64,
    pub mptcp_bad_mappings: u64,
    /// MPTCP options that did not decode (ignored).
    pub mptcp_malformed_options: u64,
}

impl Counters {
    pub(super) fn add_mptcp(&mut self, st: &MptcpStats) {
        self.mptcp_checksum_errors += st.checksum_errors;
        self.mptcp_mp_fail_tx += st.mp_fail_tx;
        self.mptcp_mp_fail_rx += st.mp_fail_rx;
        self.mptcp_infinite_map_tx += st.infinite_map_tx;
        self.mptcp_infinite_map_rx += st.infinite_map_rx;
        self.mptcp_join_syn_rx += st.join_syn_rx;
        self.mptcp_joins_established += st.joins_established;
        self.mptcp_join_hmac_failures += st.join_hmac_failures;
        self.mptcp_reinjected_bytes += st.reinjected_bytes;
        self.mptcp_data_retransmits += st.data_rtx;
        self.mptcp_window_probes += st.window_probes;
        self.mptcp_mp_prio_tx += st.mp_prio_tx;
        self.mptcp_mp_prio_rx += st.mp_prio_rx;
        self.mptcp_add_addr_tx += st.add_addr_tx;
        self.mptcp_add_addr_rx += st.add_addr_rx;
        self.mptcp_add_addr_echo_rx += st.add_addr_echo_rx;
        self.mptcp_add_addr_hmac_failures += st.add_addr_hmac_failures;
        self.mptcp_add_addr_ignored += st.add_addr_ignored;
        self.mptcp_reinject_overflow += st.reinject_overflow;
        self.mptcp_ofo_dropped_bytes += st.ofo_dropped_bytes;
        self.mptcp_unmapped_held += st.unmapped_holds;
        self.mptcp_unmapped_dropped += st.unmapped_dropped;
        self.mptcp_rm_addr_tx += st.rm_addr_tx;
        self.mptcp_rm_addr_rx += st.rm_addr_rx;
        self.mptcp_bad_data_acks += st.bad_data_acks;
        self.mptcp_bad_mappings += st.bad_mappings;
    }

    pub(super) fn add_tcb(&mut self, s: &TcbStats) {
        self.retransmitted_segments += s.segments_retransmitted;
        self.retransmitted_bytes += s.bytes_retransmitted;
        self.drop_paws += s.drop_paws;
        self.drop_out_of_window += s.drop_out_of_window;
        self.drop_ooo_overflow += s.drop_ooo_overflow;
        self.drop_ooo_memory += s.drop_ooo_memory;
        self.challenge_acks += s.challenge_acks;
        self.challenge_acks_limited += s.challenge_acks_limited;
        self.oow_acks_limited += s.oow_acks_limited;
    }
}
