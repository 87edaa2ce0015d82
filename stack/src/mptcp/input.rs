//! The MPTCP options of an incoming segment, acted on only after the subflow's
//! TCB found the segment acceptable (`tcp::tcb::Verdict`): a blind attacker
//! who knows the 4-tuple but not the sequence numbers gets no further than the
//! TCB's checks. Where RFC 8684 is stricter than TCP, so is this: MP_CAPABLE
//! keys come only from a SYN/ACK that acknowledges our SYN (the TCB's verdict
//! in SYN_SENT); a DATA_ACK beyond what was sent is ignored; data mapped beyond
//! the receive window is dropped at the data level (`recv.rs`), as Linux does;
//! MP_FASTCLOSE must carry our key; a DATA_FIN is the first one the peer named.

use super::action::{Action, Actions};
use super::level::{DataLevel, FallbackReason, Phase, Role};
use super::mapping::{Mapping, MappingError};
use super::subflow::SubflowMp;
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::mptcp::{Dss, MpCapable, MptcpOptions, MptcpVersion};
use crate::wire::{Dsn, TcpRepr};

/// Data may reach this far past the end of the receive buffer: a window
/// advertised on one subflow, rounded up by window scaling, may run a little
/// past the buffer's free space as seen later on another.
pub(super) const WINDOW_SLACK: u64 = 1 << 16;

impl DataLevel {
    /// The options of a segment on the subflow (`tcb`, `sf`) that its TCB
    /// accepted. Never call this for a segment the TCB dropped.
    pub fn on_segment(
        &mut self,
        now: Instant,
        tcb: &mut Tcb,
        sf: &mut SubflowMp,
        seg: &TcpRepr<'_>,
        o: &MptcpOptions,
    ) -> Actions {
        if self.phase == Phase::Fallback || sf.closed {
            return Actions::new();
        }
        if o.fastclose
            .is_some_and(|f| f.receiver_key == self.local_key)
        {
            return vec![Action::FastClosed];
        }
        if seg.flags.rst() {
            // An acceptable RST closed the subflow; nothing else on it counts.
            return Actions::new();
        }
        let mut acts = Actions::new();
        if let Some(m) = o.fail {
            self.on_mp_fail(tcb, m);
        }
        if let Some(a) = o.add_addr {
            if let Some(r) = self.on_add_addr(&a) {
                acts.push(Action::PeerAddress(r));
            }
            if self.echo_pending() {
                // The echo goes on the next pure ACK.
                tcb.force_ack();
            }
        }
        if let Some(r) = o.remove_addr {
            self.stats.rm_addr_rx += 1;
            for &id in r.as_slice() {
                self.pm.remote.retain(|a| a.id != id);
                acts.push(Action::RemoveRemote(id));
            }
        }
        if let Some(p) = o.prio {
            self.stats.mp_prio_rx += 1;
            // v1 MP_PRIO applies to the subflow it arrives on (RFC 8684
            // §3.3.8); a v0 one with an address id to every subflow to that
            // address of the peer (RFC 6824 §3.3.8).
            match p.addr_id.filter(|_| self.version == MptcpVersion::V0) {
                Some(id) => acts.push(Action::RemoteBackup {
                    id,
                    backup: p.backup,
                }),
                None => sf.remote_backup = p.backup,
            }
        }
        if !seg.flags.syn() {
            self.peer_speaks_mptcp = o.any;
        }
        if !sf.is_initial() {
            acts.extend(self.on_join_segment(now, tcb, sf, seg, o.join));
            if sf.join_established() {
                if let Some(d) = o.dss {
                    acts.extend(self.on_dss(tcb, sf, seg, &d));
                }
            }
            return acts;
        }
        let f = seg.flags;
        match (self.role, self.phase) {
            (Role::Client, Phase::Handshake) if f.syn() && f.ack() => {
                acts.extend(self.on_synack(tcb, sf, o.capable));
                return acts;
            }
            (Role::Server, Phase::Handshake) if !f.syn() => {
                match o.capable {
                    Some(c) if c.receiver_key == Some(self.local_key) => {
                        if let Some(key) = c.sender_key {
                            self.learn_remote_key(key);
                        }
                        self.phase = Phase::Established;
                        sf.mapping_seen = true;
                    }
                    // v0: the keys came with the SYN; a DSS means the third ACK
                    // was lost and the client went on.
                    _ if self.version == MptcpVersion::V0 && o.dss.is_some() => {
                        self.phase = Phase::Established;
                        sf.mapping_seen = true;
                    }
                    // Only the in-order segment decides (as in Linux): with the
                    // third ACK lost, later data may overtake the MP_CAPABLE one.
                    _ if seg.seq != tcb.irs() + 1 => {}
                    _ => {
                        acts.extend(self.fall_back(FallbackReason::NoMpCapableAck, tcb));
                        return acts;
                    }
                }
            }
            _ => {}
        }
        if let (Role::Server, Some(c)) = (self.role, o.capable) {
            self.map_first_data(tcb, sf, seg, &c);
        }
        if let Some(d) = o.dss {
            acts.extend(self.on_dss(tcb, sf, seg, &d));
        } else if self.rx_fallback && !seg.payload.is_empty() {
            acts.extend(self.on_unmapped_after_mp_fail(tcb));
        } else if self.phase == Phase::PreEstablished
            && self.role == Role::Client
            && o.add_addr.is_none()
        {
            // Linux falls back when the first segment from the server after the
            // handshake carries no DSS (RFC 8684 §3.1).
            acts.extend(self.fall_back(FallbackReason::NoMapping, tcb));
        }
        acts
    }

    /// The SYN/ACK of our MP_CAPABLE SYN: the server's key, or plain TCP.
    fn on_synack(&mut self, tcb: &mut Tcb, sf: &mut SubflowMp, cap: Option<MpCapable>) -> Actions {
        let capable = cap.filter(|c| c.version == self.version);
        match capable.and_then(|c| c.sender_key) {
            Some(key) => {
                if capable.is_some_and(|c| c.flags.checksum_required()) {
                    self.checksum = true;
                }
                self.learn_remote_key(key);
                // Fully established at the server's first DATA_ACK. v0: the
                // third ACK echoes both keys once (the server has had ours since
                // the SYN), then data goes with DSS at once.
                self.phase = Phase::PreEstablished;
                if self.version == MptcpVersion::V0 {
                    self.v0_keys_pending = true;
                    sf.mapping_seen = true;
                }
                Actions::new()
            }
            None if self.version == MptcpVersion::V1 && self.may_retry_v0 => {
                vec![Action::RetryV0]
            }
            None => self.fall_back(FallbackReason::NoMpCapableSynAck, tcb),
        }
    }

    /// The client's first data carries its mapping in MP_CAPABLE (RFC 8684
    /// §3.1): the first mapping, from SSN 1 at the client's IDSN + 1. Linux
    /// repeats it, with the same length, on every segment of that mapping until
    /// it sees a DATA_ACK; each names the mapping, not itself.
    fn map_first_data(&mut self, tcb: &Tcb, sf: &mut SubflowMp, seg: &TcpRepr<'_>, c: &MpCapable) {
        let (Some(len), Some(key)) = (c.data_len, self.remote_key) else {
            return;
        };
        let unread = 1u32.wrapping_add(len as u32).wrapping_sub(tcb.recv_ssn()) as i32 > 0;
        if c.sender_key == Some(key) && !seg.payload.is_empty() && unread {
            let dsn = Dsn(super::crypto::idsn(self.alg(), key)) + 1u64;
            let _ = sf.rx_map.insert(Mapping {
                ssn: 1,
                dsn,
                len,
                checksum: c.checksum,
                data_fin: false,
            });
        }
    }

    fn on_dss(&mut self, tcb: &mut Tcb, sf: &mut SubflowMp, seg: &TcpRepr<'_>, d: &Dss) -> Actions {
        if self.role == Role::Client && self.phase == Phase::PreEstablished && d.data_ack.is_some()
        {
            self.phase = Phase::Established;
        }
        if let Some(ack) = d.data_ack {
            let ack = match ack.is_64bit {
                true => Dsn(ack.value),
                false => self.snd_una.expand32(ack.value as u32),
            };
            self.on_data_ack(tcb, seg, ack);
        }
        let Some(m) = d.mapping else {
            return Actions::new();
        };
        if m.data_len == 0 {
            return self.on_infinite_mapping(tcb);
        }
        if self.checksum && m.checksum.is_none() {
            // RFC 8684 §3.3: once checksums are negotiated, a mapping without
            // one is invalid and its subflow closed ("MPTCP-specific error").
            self.stats.bad_mappings += 1;
            return vec![Action::ResetSubflow {
                reason: super::action::rst_reason::MPTCP_ERROR,
                fail: None,
            }];
        }
        sf.mapping_seen = true;
        let dsn = match m.dsn_64bit {
            true => Dsn(m.dsn),
            false => self.rcv_nxt.expand32(m.dsn as u32),
        };
        if d.data_fin {
            let fin = dsn + (m.data_len as u64 - 1);
            // The first DATA_FIN counts (as in Linux); it cannot precede what
            // was already delivered, nor lie beyond any window we offered.
            if self.peer_data_fin.is_none()
                && fin.diff(self.rcv_nxt) >= 0
                && fin.diff(self.rcv_nxt) <= self.window_limit() as i64
            {
                self.peer_data_fin = Some(fin);
            }
        }
        // A DATA_FIN alone has SSN 0 and occupies no subflow byte. Otherwise a
        // mapping travels with (the first segment of) its data, as Linux sends
        // and reads it: one on a segment without data maps nothing.
        let data_len = m.data_len - d.data_fin as u16;
        if m.ssn != 0 && data_len > 0 && !self.rx_fallback && !seg.payload.is_empty() {
            // A mapping of subflow bytes already handed up is old news; one
            // far past what the subflow may receive is bogus.
            let rel = m.ssn.wrapping_sub(tcb.recv_ssn()) as i32 as i64;
            let stale = rel + data_len as i64 <= 0;
            let beyond = rel > (tcb.recv_capacity() as u64 + WINDOW_SLACK) as i64;
            if beyond {
                self.stats.bad_mappings += 1;
            } else if !stale {
                let r = sf.rx_map.insert(Mapping {
                    ssn: m.ssn,
                    dsn,
                    len: data_len,
                    checksum: m.checksum,
                    data_fin: d.data_fin,
                });
                if r == Err(MappingError::Conflict) {
                    self.stats.bad_mappings += 1;
                }
            }
        }
        self.check_data_fin();
        Actions::new()
    }

    /// A DATA_ACK (RFC 8684 §3.3.2): it frees acknowledged data and, with the
    /// segment's window, sets the connection-level window (§3.3.5). One beyond
    /// what was sent is ignored, window and all.
    fn on_data_ack(&mut self, tcb: &Tcb, seg: &TcpRepr<'_>, ack: Dsn) {
        let data_end = self.data_end();
        // The DATA_FIN takes one DSN after the data (RFC 8684 §3.3.3).
        let fin_sent = self.data_fin_queued && self.snd_nxt == data_end;
        let limit = if fin_sent {
            data_end + 1u64
        } else {
            self.snd_nxt
        };
        if ack.diff(limit) > 0 {
            self.stats.bad_data_acks += 1;
            return;
        }
        if ack.diff(self.snd_una) < 0 {
            // Overtaken by a later one (on another subflow): nothing to learn.
            return;
        }
        let data_ack = if fin_sent && ack == data_end + 1u64 {
            self.data_fin_acked = true;
            data_end
        } else {
            ack
        };
        let advance = data_ack.since(self.snd_una);
        if advance > 0 {
            let data = (advance as usize).min(self.snd_buf.len());
            self.snd_buf.discard(data);
            self.snd_una = data_ack;
            self.rtx_progress();
            if self.send_was_full && data > 0 {
                self.send_was_full = false;
                self.writable = true;
            }
        }
        // The subflow window is relative to the DATA_ACK.
        self.snd_wnd_end = ack + tcb.scaled_window(seg.window) as u64;
        self.snd_wnd_known = true;
    }

    /// How far past `rcv_nxt` the peer's data may reach: what we can have
    /// offered, with some slack.
    pub(super) fn window_limit(&self) -> u64 {
        self.rcv_max as u64 + WINDOW_SLACK
    }

    pub(super) fn check_data_fin(&mut self) {
        if let Some(fin) = self.peer_data_fin {
            if !self.peer_data_fin_done && fin == self.rcv_nxt {
                self.rcv_nxt += 1u64;
                self.peer_data_fin_done = true;
                self.data_fin_ack_owed = true;
                self.readable = true;
            }
        }
    }
}
