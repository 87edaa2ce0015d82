//! Fallback to plain TCP and the MP_FAIL exchange (RFC 8684 §3.7, as Linux
//! does it).
//!
//! A connection falls back — keeping every byte — when the handshake or the
//! first data show that the peer or a middlebox does not carry MPTCP, or after
//! a DSS checksum failure on a connection that never had a second subflow. The
//! side that saw the bad checksum keeps delivering the subflow's bytes in order
//! as the data stream (what the middlebox made of them, as plain TCP would) and
//! repeats MP_FAIL until the peer answers; the other side echoes MP_FAIL and
//! puts an infinite mapping (data-level length 0) on its next data, then is
//! plain TCP. Anything else resets.

use super::action::{rst_reason, Action, Actions};
use super::level::{DataLevel, FallbackReason, Phase};
use super::mapping::{Mapping, Mappings};
use super::subflow::{SubflowMp, MAX_MAPPINGS};
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::mptcp::{MpFail, MptcpOptions};
use crate::wire::{Dsn, TcpRepr};

/// MP_FAIL repeats before the connection is reset instead.
const MAX_MP_FAIL_TRIES: u32 = 5;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FailState {
    /// We saw the bad checksum: DSN of the failed mapping, sent in MP_FAIL.
    pub(super) sent_dsn: Option<Dsn>,
    /// The peer answered (MP_FAIL echo, infinite mapping, unmapped data).
    pub(super) answered: bool,
    /// Put MP_FAIL with this DSN on the next segment.
    pub(super) send: Option<Dsn>,
    /// The peer's MP_FAIL asks us for an infinite mapping on our next data.
    pub(super) infinite_map_pending: bool,
    pub(super) timer: Option<Instant>,
    pub(super) tries: u32,
    /// Data-level timeouts spent waiting, data unacknowledged, for the
    /// exchange to end in a fallback.
    pub(super) stalled: u32,
}

/// Where a subflow's bytes taken as they come (after a fallback or our
/// MP_FAIL) put subflow byte `ssn` in the data stream, when byte `anchor.0`
/// is at DSN `anchor.1`: a mapping that says otherwise places its bytes
/// elsewhere than that raw stream does.
pub(super) fn raw_stream_dsn(anchor: (u32, Dsn), ssn: u32) -> Dsn {
    let off = i64::from(ssn.wrapping_sub(anchor.0) as i32);
    anchor.1 + off as u64
}

impl DataLevel {
    /// Plain TCP from now on. With a subflow ever joined there is no plain
    /// TCP to fall back to: the connection is reset instead, as Linux does.
    pub(super) fn fall_back(&mut self, reason: FallbackReason, tcb: &mut Tcb) -> Actions {
        if self.phase == Phase::Fallback {
            return Actions::new();
        }
        if !self.may_fall_back {
            return vec![Action::ResetAll {
                reason: rst_reason::MPTCP_ERROR,
                fail: None,
            }];
        }
        self.phase = Phase::Fallback;
        self.fallback_reason = Some(reason);
        self.fallback_at = Some((tcb.recv_ssn(), self.rcv_nxt));
        self.forget_unmapped();
        // Unmapped data now goes to the subflow as plain TCP bytes.
        self.flush_fallback(tcb);
        tcb.set_window_cap(None);
        Actions::new()
    }

    /// After our fallback, a segment whose mapping puts its bytes elsewhere
    /// in the data stream than the fallback does: the peer did not fall back
    /// (it had sent data again at the data level on this subflow, which
    /// forbids it one), and read as they come those bytes would be delivered
    /// twice or in the wrong place. Only mappings of bytes past the fallback
    /// point count; those before it were placed by their mappings already.
    pub fn contradicts_fallback(&mut self, seg: &TcpRepr<'_>, o: &MptcpOptions) -> bool {
        let (Some((ssn0, dsn0)), Some(m)) = (self.fallback_at, o.dss.and_then(|d| d.mapping))
        else {
            return false;
        };
        if m.ssn == 0 || m.data_len == 0 || seg.payload.is_empty() {
            return false;
        }
        let end = m.ssn.wrapping_add(u32::from(m.data_len));
        if end.wrapping_sub(ssn0) as i32 <= 0 {
            return false;
        }
        let contradicts = Dsn(m.expand_dsn(dsn0.0)) != raw_stream_dsn((ssn0, dsn0), m.ssn);
        self.stats.bad_mappings += u64::from(contradicts);
        contradicts
    }

    /// In fallback: move what the data level still holds to the subflow, and
    /// let the subflow's acknowledgements free it.
    pub fn flush_fallback(&mut self, tcb: &mut Tcb) {
        // A subflow that sends from our buffer takes a copy of what it holds
        // first (the connection has it do so before the next round,
        // `send_mapped.rs`); holding nothing, it just holds its bytes from
        // now on.
        if tcb.sends_mapped() && !tcb.hold_sends(|_, _| {}) {
            return;
        }
        let end = self.data_end();
        let offset = self.snd_nxt.since(self.snd_buf_dsn) as usize;
        let mut moved = 0;
        for part in self.snd_buf.slices(offset, usize::MAX) {
            moved += tcb.send(part).unwrap_or(0);
        }
        self.snd_nxt += moved;
        // Handed down, the bytes are the subflow's to deliver (there is no
        // data level left to send them again).
        let handed = self.snd_nxt.since(self.snd_buf_dsn) as usize;
        if handed > 0 {
            self.snd_buf.discard(handed);
            self.snd_buf_dsn = self.snd_nxt;
            if self.snd_nxt.diff(self.snd_una) > 0 {
                self.snd_una = self.snd_nxt;
            }
            if self.send_was_full {
                self.send_was_full = false;
                self.writable = true;
            }
        }
        if self.data_fin_queued && self.snd_nxt == end {
            tcb.shutdown();
        }
    }

    /// MP_FAIL from the peer (on an acceptable segment): either the answer to
    /// ours, or the peer saw a bad checksum in our data and wants an infinite
    /// mapping.
    ///
    /// A bare MP_FAIL (one on a RST closes its subflow anyway) asks for an
    /// infinite mapping: the peer takes this subflow's bytes as they come
    /// from now on. After a join there is none to give, and the peer,
    /// whose joins may not have been complete when it decided, may not
    /// reset the subflow either; anything sent on it then (a copy of data
    /// sent again, stripped of its options by the same middlebox) would be
    /// read as new bytes. So the subflow goes, with "middlebox
    /// interference", and the connection goes on over the others.
    pub(super) fn on_mp_fail(&mut self, tcb: &mut Tcb, m: MpFail) -> Actions {
        self.stats.mp_fail_rx += 1;
        if self.fail.sent_dsn.is_some() {
            self.fail.answered = true;
            self.fail.timer = None;
            return Actions::new();
        }
        if !self.may_fall_back {
            return vec![Action::ResetSubflow {
                reason: rst_reason::MIDDLEBOX,
                fail: None,
            }];
        }
        if !self.fail.infinite_map_pending {
            self.fail.infinite_map_pending = true;
            self.fail.send = Some(Dsn(m.dsn));
            tcb.force_ack();
        }
        Actions::new()
    }

    /// An infinite mapping arrived: the peer answers our MP_FAIL, or falls back
    /// on its own.
    pub(super) fn on_infinite_mapping(&mut self, tcb: &mut Tcb) -> Actions {
        self.stats.infinite_map_rx += 1;
        self.fail.answered = true;
        self.fall_back(FallbackReason::InfiniteMapping, tcb)
    }

    /// A mapping failed its DSS checksum. On a connection that may still fall
    /// back, with the data level in order up to the mapping: MP_FAIL and take
    /// the subflow's bytes as they are. Otherwise reset this subflow (the peer
    /// sends the data again on another) or, alone, the connection.
    pub(super) fn on_checksum_error(
        &mut self,
        now: Instant,
        tcb: &mut Tcb,
        sf: &mut SubflowMp,
        m: &Mapping,
    ) -> Actions {
        self.stats.checksum_errors += 1;
        if !self.may_fall_back {
            return vec![Action::ResetSubflow {
                reason: rst_reason::MIDDLEBOX,
                fail: Some(m.dsn),
            }];
        }
        let in_order = m.dsn == self.rcv_nxt && self.assembler.is_empty();
        // From here the subflow's bytes would be taken as they come: a later
        // mapping already known that puts its bytes elsewhere (data the peer
        // sent again on this subflow) shows they are not one stream.
        let raw_is_stream = sf.rx_map.iter().all(|k| {
            k.ssn.wrapping_sub(m.ssn) as i32 <= 0 || k.dsn == raw_stream_dsn((m.ssn, m.dsn), k.ssn)
        });
        if !in_order || !raw_is_stream || self.fail.infinite_map_pending {
            return vec![Action::ResetAll {
                reason: rst_reason::MIDDLEBOX,
                fail: Some(m.dsn),
            }];
        }
        self.rx_fallback = true;
        sf.rx_map = Mappings::new(MAX_MAPPINGS);
        self.fail.sent_dsn = Some(m.dsn);
        self.fail.send = Some(m.dsn);
        self.fail.timer = Some(now + tcb.rto());
        tcb.force_ack();
        Actions::new()
    }

    /// Checksummed data that no mapping will ever cover (see `pull_mapped`):
    /// the subflow goes if others can carry the connection, else all of it.
    pub(super) fn unmappable_reset(&mut self) -> Action {
        self.stats.bad_mappings += 1;
        if self.may_fall_back {
            Action::ResetAll {
                reason: rst_reason::MPTCP_ERROR,
                fail: None,
            }
        } else {
            Action::ResetSubflow {
                reason: rst_reason::MPTCP_ERROR,
                fail: None,
            }
        }
    }

    /// Data without DSS after our MP_FAIL: the peer fell back, its infinite
    /// mapping was lost.
    pub(super) fn on_unmapped_after_mp_fail(&mut self, tcb: &mut Tcb) -> Actions {
        self.fail.answered = true;
        self.fall_back(FallbackReason::InfiniteMapping, tcb)
    }

    /// The MP_FAIL repeat timer.
    pub(super) fn fail_timeout(&mut self, now: Instant, tcb: &mut Tcb) -> Actions {
        if self.fail.timer.is_none_or(|t| t > now) {
            return Actions::new();
        }
        self.fail.tries += 1;
        if self.fail.answered || self.phase == Phase::Fallback {
            self.fail.timer = None;
        } else if self.fail.tries > MAX_MP_FAIL_TRIES {
            // Linux resets too when MP_FAIL stays unanswered.
            self.fail.timer = None;
            return vec![Action::ResetAll {
                reason: rst_reason::MIDDLEBOX,
                fail: self.fail.sent_dsn,
            }];
        } else {
            self.fail.send = self.fail.sent_dsn;
            tcb.force_ack();
            self.fail.timer = Some(now + tcb.rto_backed_off(self.fail.tries));
        }
        Actions::new()
    }

    /// A data-level timeout while the MP_FAIL exchange holds retransmissions
    /// back. The exchange ends in a fallback only when the side owing the
    /// infinite mapping sends data; if it has none while ours stays
    /// unacknowledged (its data level waits for the rest of a mapping that a
    /// middlebox altered, say), neither side would ever move again. After
    /// [`MAX_MP_FAIL_TRIES`] such timeouts the connection is reset instead,
    /// as an unanswered MP_FAIL is.
    pub(super) fn fail_stalled(&mut self) -> Option<Action> {
        self.fail.stalled += 1;
        (self.fail.stalled > MAX_MP_FAIL_TRIES).then_some(Action::ResetAll {
            reason: rst_reason::MIDDLEBOX,
            fail: self.fail.sent_dsn,
        })
    }

    /// An MP_FAIL exchange is under way (or done): the connection is heading
    /// for a fallback, and takes no more subflows (as Linux).
    pub(super) fn checksum_failure_pending(&self) -> bool {
        self.fail.sent_dsn.is_some() || self.fail.infinite_map_pending || self.rx_fallback
    }

    /// An MP_FAIL waits to go out (on the next segment).
    pub(super) fn mp_fail_pending(&self) -> bool {
        self.fail.send.is_some()
    }

    /// MP_FAIL to put on the next segment (taken: sent once per request).
    pub(super) fn take_mp_fail(&mut self) -> Option<Dsn> {
        let dsn = self.fail.send.take()?;
        self.stats.mp_fail_tx += 1;
        Some(dsn)
    }

    /// Whether the next data segment must carry an infinite mapping.
    pub(super) fn infinite_map_pending(&self) -> bool {
        self.fail.infinite_map_pending && self.phase != Phase::Fallback
    }

    /// The infinite mapping went out: from now on this is plain TCP. The data
    /// level moves its unmapped bytes to the subflow on the next round.
    pub(super) fn infinite_map_sent(&mut self) {
        self.stats.infinite_map_tx += 1;
        self.phase = Phase::Fallback;
        self.forget_unmapped();
        self.fallback_reason = Some(FallbackReason::MpFail);
    }
}
