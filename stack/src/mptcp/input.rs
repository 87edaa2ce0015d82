//! The MPTCP options of an incoming segment, acted on only after the subflow's
//! TCB found the segment acceptable (`tcp::tcb::Verdict`): a blind attacker
//! who knows the 4-tuple but not the sequence numbers gets no further than the
//! TCB's checks. Where RFC 8684 is stricter than TCP, so is this: MP_CAPABLE
//! keys come only from a SYN/ACK that acknowledges our SYN (the TCB's verdict
//! in SYN_SENT); a DATA_ACK beyond what was sent is ignored; data mapped beyond
//! the receive window is dropped at the data level (`recv.rs`), as Linux does;
//! MP_FASTCLOSE must carry our key; a DATA_FIN is the first one the peer named.

use super::action::{Action, Actions};
use super::crypto::DssChecksum;
use super::fail::raw_stream_dsn;
use super::level::{DataLevel, FallbackReason, Phase, Role};
use super::mapping::{Mapping, MappingError};
use super::subflow::SubflowMp;
use crate::tcp::{State, Tcb};
use crate::time::Instant;
use crate::wire::mptcp::{Dss, MpCapable, MptcpOptions, MptcpVersion};
use crate::wire::{Dsn, TcpRepr};

/// Data may reach this far past the end of the receive buffer: a window
/// advertised on one subflow, rounded up by window scaling, may run a little
/// past the buffer's free space as seen later on another.
pub(super) const WINDOW_SLACK: u64 = 1 << 16;

/// Whether an acceptable segment (already processed by `tcb`) tells us
/// something new about the peer's side of the subflow: it acknowledges data of
/// ours not acknowledged before (the FIN aside), or brings the peer's FIN in
/// order for the first time. (Payload is judged by its mapping, in `recv.rs`.) What such
/// a segment lacks in options means something; a duplicate ACK, a window
/// update or a challenge ACK (sent without options by some stacks) does not.
fn brings_news(tcb: &Tcb, sf: &mut SubflowMp) -> bool {
    let data_acked = tcb.acked_ssn().min(tcb.next_ssn());
    let acked_news = data_acked.wrapping_sub(sf.data_acked.max(1)) as i32 > 0;
    if acked_news {
        sf.data_acked = data_acked;
    }
    // The FIN counts when the TCB takes it in order, which may be on a later
    // segment that fills a hole before it.
    let fin_news = !sf.fin_seen
        && matches!(
            tcb.state(),
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait
        );
    if fin_news {
        sf.fin_seen = true;
    }
    acked_news || fin_news
}

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
        if !sf.is_initial() {
            // The MP_JOIN handshake first: until its HMAC has checked (the
            // SYN/ACK's on the active side, the third ACK's on the passive
            // one) the subflow is anyone's who knows the token, and nothing
            // else it carries may act on the connection (an MP_FAIL there
            // would force a fallback, a REMOVE_ADDR close paths).
            acts = self.on_join_segment(now, tcb, sf, seg, o.join);
            if !acts.is_empty() || !sf.join_handshake_done() {
                return acts;
            }
        }
        if let Some(m) = o.fail {
            acts.extend(self.on_mp_fail(tcb, m));
            if !acts.is_empty() {
                return acts;
            }
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
            if sf.is_initial() && self.unmapped.waiting() {
                acts.extend(self.unmapped_answered(tcb, seg, o.any));
                if self.phase == Phase::Fallback {
                    return acts;
                }
            }
        }
        if seg.flags.fin() && !o.any {
            sf.plain_fin = true;
        }
        let acked_before = sf.data_acked;
        let fin_before = sf.fin_seen;
        let news = brings_news(tcb, sf);
        // A FIN that came plain, out of order, and is taken in order now by a
        // segment with options (the hole before it filled by a retransmission
        // the peer sent before it fell back) is the plain FIN it was.
        let plain = !o.any || (!fin_before && sf.fin_seen && sf.plain_fin);
        if o.any && sf.data_acked != acked_before {
            // The peer acknowledged more of our data with options, so after
            // any plain segment acknowledging less: it still speaks MPTCP. (A
            // FIN taken in order now may have come on an earlier plain
            // segment: not a sign either way.)
            self.fallback_deferred = false;
        }
        if news
            && plain
            && sf.is_initial()
            && matches!(self.phase, Phase::Established | Phase::PreEstablished)
        {
            // RFC 8684 §3.7: a segment without DSS that acknowledges our data,
            // or carries the peer's FIN, means the peer fell back (our first
            // data reached it without DSS: a middlebox stripped it) or options
            // are stripped on the way back. Fall back too: the data level
            // would wait for a DATA_ACK or DATA_FIN that never comes, holding
            // our DATA_FIN and so the subflow's FIN. Only news counts: a
            // duplicate or challenge ACK's missing options say nothing.
            if self.may_fall_back {
                // Not while bytes the subflow took are still short of the data
                // level (an incomplete or unchecked mapping): the peer, having
                // no DATA_ACK for them, may send them again at the data level
                // on this subflow, and read as plain TCP they would arrive
                // twice. The decision waits until the data level has taken
                // what it can (`recv.rs`).
                if tcb.recv_available() == 0 {
                    acts.extend(self.fall_back(FallbackReason::NoDataAck, tcb));
                } else {
                    self.fallback_deferred = true;
                }
            } else {
                // Too late to fall back (a join was tried): data sent again
                // on this subflow at the data level would reach a peer that
                // reads plain TCP as new bytes. The subflow goes.
                acts.push(Action::ResetSubflow {
                    reason: super::action::rst_reason::MPTCP_ERROR,
                    fail: None,
                });
            }
            return acts;
        }
        if !sf.is_initial() {
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
            if self.checksum && c.data_len.is_some() && c.checksum.is_none() {
                // RFC 8684 §3.3: with checksums negotiated, a mapping without
                // one (here MP_CAPABLE's, for the first data) is invalid, as
                // for a DSS mapping in `on_dss`: never take data unverified.
                acts.push(self.unmappable_reset());
                return acts;
            }
            self.map_first_data(tcb, sf, seg, &c);
        }
        if let Some(d) = o.dss {
            acts.extend(self.on_dss(tcb, sf, seg, &d));
        } else if self.rx_fallback && !seg.payload.is_empty() {
            acts.extend(self.on_unmapped_after_mp_fail(tcb));
        } else if self.phase == Phase::PreEstablished
            && self.role == Role::Client
            && o.add_addr.is_none()
            && (news || !seg.payload.is_empty())
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
                if self.version == MptcpVersion::V1
                    && capable.is_some_and(|c| c.flags.no_join_initial())
                {
                    self.remote_deny_join_id0 = true;
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
            sf.mapped_rx |= sf
                .rx_map
                .insert(Mapping {
                    ssn: 1,
                    dsn,
                    len,
                    checksum: c.checksum,
                    data_fin: false,
                })
                .is_ok();
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
        if sf.direct_map.take() == Some(m) && !d.data_fin {
            // The segment's bytes went straight to the data level by this
            // very mapping (`direct.rs`, which checked it and recorded it as
            // what follows would): only a DATA_FIN they complete is left.
            self.check_data_fin();
            return Actions::new();
        }
        let dsn = match m.dsn_64bit {
            true => Dsn(m.dsn),
            false => self.rcv_nxt.expand32(m.dsn as u32),
        };
        if self.rx_fallback && m.ssn != 0 && !seg.payload.is_empty() {
            // After our MP_FAIL the subflow's bytes are the data stream as
            // they come (fail.rs). A mapping that puts them elsewhere means
            // the peer sent data again at the data level on this subflow (it
            // had tried a join, so could not take our MP_FAIL, or it did so
            // before our MP_FAIL reached it, and its infinite mapping then
            // rides on those bytes, placing them where they really belong):
            // taken as they come, those bytes would be delivered twice. The
            // connection cannot go on.
            if dsn != raw_stream_dsn((tcb.recv_ssn(), self.rcv_nxt), m.ssn) {
                self.stats.bad_mappings += 1;
                return vec![Action::ResetAll {
                    reason: super::action::rst_reason::MIDDLEBOX,
                    fail: None,
                }];
            }
        }
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
        // A DATA_FIN alone (SSN 0: no subflow byte) has a data-level length
        // of exactly 1 (RFC 8684 §3.3.3) and, with checksums, a checksum over
        // its pseudo-header. One that fails either was altered on the way and
        // must not count: the first DATA_FIN that counts is final, and one
        // placed beyond the data would leave us waiting for bytes that never
        // come.
        let bare_fin_ok = m.ssn != 0
            || (m.data_len == 1
                && (!self.checksum
                    || m.checksum
                        .is_some_and(|c| DssChecksum::new(dsn.0, 0, 1).verify(c))));
        if d.data_fin && !bare_fin_ok {
            self.stats.bad_mappings += 1;
        }
        if d.data_fin && bare_fin_ok {
            let fin = dsn + (m.data_len as u64 - 1);
            // The first DATA_FIN counts (as in Linux); it cannot precede what
            // was already delivered, nor lie beyond any window we offered.
            if self.peer_data_fin.is_none()
                && fin.diff(self.rcv_nxt) >= 0
                && fin.diff(self.rcv_nxt) <= self.window_limit() as i64
            {
                self.peer_data_fin = Some(fin);
                // Bytes kept beyond the end of the stream came under a
                // mapping that cannot be true: never deliver them.
                if self.assembler.truncate(fin.since(self.rcv_nxt) as usize) > 0 {
                    self.stats.bad_mappings += 1;
                }
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
                sf.mapped_rx |= r.is_ok();
                if r == Err(MappingError::Conflict) {
                    if self.checksum {
                        // With checksums two mappings of the same bytes must
                        // be identical: one of them was altered on the way,
                        // and which cannot be told. Taking the bytes raw
                        // after a failed check could deliver data twice.
                        return vec![self.unmappable_reset()];
                    }
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
            self.snd_una = data_ack;
            self.free_sent();
            self.rtx_progress();
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
