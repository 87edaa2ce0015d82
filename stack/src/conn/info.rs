//! Snapshots of a connection for status displays and tests, and the
//! statistics it adds to the stack's counters.

use super::Connection;
use crate::mptcp::stats::MptcpStats;
use crate::tcp::tcb::TcbStats;
use crate::tcp::State;
use core::time::Duration;
use std::net::{IpAddr, SocketAddr};

/// One subflow of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct SubflowInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub srtt: Option<Duration>,
    pub cwnd: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub bytes_retransmitted: u64,
    /// MPTCP address ids of the local and remote address (0 for plain TCP).
    pub local_id: u8,
    pub remote_id: u8,
    pub backup: bool,
    /// The MP_JOIN handshake is done (always true for the first subflow).
    pub established: bool,
    /// Repeated timeouts without progress: it gets no new data while another
    /// subflow can take it.
    pub stalled: bool,
}

/// A connection's buffers: the data level's for an MPTCP connection (its
/// subflows' own hold only what is in passage), else its TCB's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferInfo {
    /// Bytes queued to send and not yet acknowledged, and the most that may be.
    pub send_queued: usize,
    pub send_capacity: usize,
    /// Bytes received and not yet read, and the most the window may offer now.
    pub recv_queued: usize,
    pub recv_capacity: usize,
    /// Heap bytes the whole connection holds (every buffer, out-of-order
    /// data, the records), as the memory budget counts them.
    pub memory: usize,
}

/// One connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub bytes_retransmitted: u64,
    pub segments_retransmitted: u64,
    pub srtt: Option<Duration>,
    pub rto: Duration,
    pub cwnd: usize,
    pub ssthresh: usize,
    pub snd_wnd: usize,
    pub mss: usize,
    pub sack: bool,
    pub timestamps: bool,
    pub congestion_control: &'static str,
    pub buffers: BufferInfo,
    /// `None` for a plain TCP connection.
    pub mptcp: Option<MptcpInfo>,
    /// Every subflow still held, the first one first (a plain TCP connection
    /// has one; closed subflows of an MPTCP connection are freed).
    pub subflows: Vec<SubflowInfo>,
}

/// The MPTCP level of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MptcpInfo {
    pub version: u8,
    pub local_key: u64,
    pub remote_key: Option<u64>,
    pub local_token: u32,
    pub remote_token: Option<u32>,
    pub checksum: bool,
    pub fallback: bool,
    /// Why it fell back, if it did.
    pub fallback_reason: Option<String>,
    /// Our addresses announced on it: (address id, address, echoed by the peer).
    pub announced: Vec<(u8, IpAddr, bool)>,
    /// The peer's announced addresses: (address id, address, port).
    pub remote_addrs: Vec<(u8, IpAddr, Option<u16>)>,
    /// Its scheduler (`minrtt`, `roundrobin`, `redundant`, `overflow`).
    pub scheduler: &'static str,
    /// The peer asked for no subflow to its first address (MP_CAPABLE's
    /// "C" flag): only its announced addresses are joined.
    pub peer_denies_join_initial: bool,
}

impl Connection {
    pub fn info(&self) -> ConnInfo {
        let t = &self.subflows[self.primary()].tcb;
        let mptcp = self.mp.as_deref().map(|m| MptcpInfo {
            version: m.version().number(),
            local_key: m.local_key(),
            remote_key: m.remote_key(),
            local_token: m.local_token(),
            remote_token: m.remote_token(),
            checksum: m.checksum(),
            fallback: m.is_fallback(),
            fallback_reason: m.fallback_reason().map(|r| format!("{r:?}")),
            scheduler: m.scheduler_kind().as_str(),
            peer_denies_join_initial: m.remote_deny_join_id0(),
            announced: m
                .announced()
                .iter()
                .map(|a| (a.id, a.addr, a.echoed))
                .collect(),
            remote_addrs: m
                .remote_addrs()
                .iter()
                .map(|a| (a.id, a.addr, a.port))
                .collect(),
        });
        let s = self.tcp_stats();
        // An MPTCP connection's bytes are the data level's (its subflows may carry
        // some twice); after a fallback the subflow's.
        let (bytes_sent, bytes_received) = match self.mp.as_deref() {
            Some(m) if !m.is_fallback() => (m.data_bytes_acked(), m.data_bytes_received()),
            _ => (s.bytes_acked, s.bytes_received),
        };
        ConnInfo {
            local: self.local,
            remote: self.remote,
            state: self.state(),
            bytes_sent,
            bytes_received,
            bytes_retransmitted: s.bytes_retransmitted,
            segments_retransmitted: s.segments_retransmitted,
            srtt: t.srtt(),
            rto: t.rto(),
            cwnd: t.cwnd(),
            ssthresh: t.ssthresh(),
            snd_wnd: t.snd_wnd(),
            mss: t.mss(),
            sack: t.sack_enabled(),
            timestamps: t.timestamps_enabled(),
            congestion_control: t.cc_name(),
            buffers: self.buffers(),
            mptcp,
            subflows: self
                .subflows
                .iter()
                .map(|s| {
                    let st = s.tcb.stats();
                    SubflowInfo {
                        local: s.tcb.local(),
                        remote: s.tcb.remote(),
                        state: s.tcb.state(),
                        srtt: s.tcb.srtt(),
                        cwnd: s.tcb.cwnd(),
                        bytes_sent: st.bytes_acked,
                        bytes_received: st.bytes_received,
                        bytes_retransmitted: st.bytes_retransmitted,
                        local_id: s.mp.local_id,
                        remote_id: s.mp.remote_id,
                        backup: s.mp.is_backup(),
                        established: s.mp.join_established(),
                        stalled: s.mp.is_stalled(),
                    }
                })
                .collect(),
        }
    }

    fn buffers(&self) -> BufferInfo {
        let t = &self.subflows[self.primary()].tcb;
        let (send_queued, send_capacity, recv_queued, recv_capacity) = match self.mp.as_deref() {
            Some(m) if !m.is_fallback() => m.buffer_sizes(),
            _ => t.buffer_sizes(),
        };
        BufferInfo {
            send_queued,
            send_capacity,
            recv_queued,
            recv_capacity,
            memory: self.memory(),
        }
    }

    /// TCP statistics of every subflow it ever had.
    pub fn tcp_stats(&self) -> TcbStats {
        let mut s = self.freed_stats;
        for sub in &self.subflows {
            s.add(sub.tcb.stats());
        }
        s
    }

    pub fn mptcp_stats(&self) -> Option<MptcpStats> {
        self.mp.as_deref().map(|m| m.stats())
    }
}
