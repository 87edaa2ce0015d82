//! Bytes without a mapping on the first subflow, after mappings were seen.
//!
//! RFC 8684 §3.7 reads data that arrives without a DSS as the sign that the
//! peer fell back (or that a middlebox strips options). Before the first
//! mapping that is the only reading, and the data level falls back at once,
//! as Linux does. Later it is ambiguous: a peer still speaking MPTCP sends
//! data again at the data level on the same subflow when a DATA_ACK is late
//! (new subflow sequence numbers, old DSNs, as Linux's `__mptcp_retrans`
//! does), and a middlebox that strips that copy's options makes old bytes
//! look like the next bytes of a fallen-back peer's stream. Taken as such,
//! they would be delivered twice.
//!
//! So the bytes wait in the subflow and the peer is asked (a keepalive
//! probe, which any live TCP answers at once): an answer with MPTCP options
//! says the peer still speaks MPTCP, and the bytes no mapping covers are
//! dropped (never DATA_ACKed, so the peer's data level sends whatever of
//! them was new again); an answer without options says it fell back, and so
//! do we. Options count on any later segment (a peer that fell back never
//! sends them again); their absence only on a segment sent after the peer
//! saw the question (the timestamp echo; without timestamps, or after two
//! questions unanswered so, the next segment).

use super::level::{DataLevel, FallbackReason};
use super::subflow::SubflowMp;
use super::Actions;
use crate::mptcp::mapping::Mappings;
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::TcpRepr;

/// The state of such a wait.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnmappedHold {
    /// When the bytes began to wait: the peer's answer must be later.
    since: Option<Instant>,
    /// The next probe, if no answer came.
    probe_at: Option<Instant>,
    probes: u32,
    /// The peer answered with options: bytes of the first subflow before
    /// this subflow sequence number that no mapping covers are dropped.
    drop_until: Option<u32>,
    /// Such answers on this connection.
    drops: u32,
}

/// Answers with options after which bytes without a mapping are no longer
/// dropped but end the connection: a middlebox that strips the options of
/// every data segment the peer sends (its ACKs keep theirs) would have it
/// send the same bytes again for ever, each copy dropped.
const MAX_DROPS: u32 = 3;

impl UnmappedHold {
    pub fn poll_at(&self) -> Option<Instant> {
        self.probe_at
    }

    /// Whether bytes wait for the peer's answer.
    pub fn waiting(&self) -> bool {
        self.since.is_some()
    }

    /// How many of the `avail` bytes at `ssn` to drop: those before
    /// `drop_until` and before the next mapping.
    pub fn droppable(&mut self, ssn: u32, avail: usize, maps: &Mappings) -> usize {
        self.settle(ssn);
        let Some(end) = self.drop_until else { return 0 };
        let left = end.wrapping_sub(ssn) as i32;
        let next_map = maps
            .iter()
            .map(|m| m.ssn.wrapping_sub(ssn) as i32)
            .filter(|&d| d > 0)
            .min()
            .unwrap_or(i32::MAX);
        avail.min(left.min(next_map) as usize)
    }

    /// The first subflow's next byte is `ssn`: a drop that reached its end
    /// is over (stale, a far later byte would look short of it again).
    pub fn settle(&mut self, ssn: u32) {
        if self
            .drop_until
            .is_some_and(|end| end.wrapping_sub(ssn) as i32 <= 0)
        {
            self.drop_until = None;
        }
    }
}

impl DataLevel {
    /// Bytes with no mapping wait in the first subflow, mappings having
    /// been seen: ask the peer (once; the timer asks again).
    pub(super) fn hold_unmapped(&mut self, now: Instant, tcb: &mut Tcb) {
        if self.unmapped.since.is_some() {
            return;
        }
        self.stats.unmapped_holds += 1;
        self.unmapped.since = Some(now);
        self.unmapped.probe_at = Some(now + tcb.rto());
        // Our ACK first (at once, not delayed), then the probe: the answer's
        // timestamp echo is then that ACK's.
        tcb.force_ack();
        tcb.probe();
    }

    /// A segment on the first subflow, with (`options`) or without MPTCP
    /// options: if it answers our question, the verdict.
    pub(super) fn unmapped_answered(
        &mut self,
        tcb: &mut Tcb,
        seg: &TcpRepr<'_>,
        options: bool,
    ) -> Actions {
        let Some(since) = self.unmapped.since else {
            return Actions::new();
        };
        // Options: a peer that fell back never sends them again. No
        // options: only from a segment sent after the peer saw our question
        // (or, after two unanswered ones, any: a peer whose echo does not
        // move must not leave a fallen-back stream waiting for ever).
        if !options && self.unmapped.probes < 2 && !tcb.answers_since(seg, since) {
            return Actions::new();
        }
        self.forget_unmapped();
        if options {
            // Still MPTCP: what no mapping covers is a copy stripped of its
            // options (or new bytes the peer sends again, not DATA_ACKed).
            if self.unmapped.drops >= MAX_DROPS {
                return vec![self.unmappable_reset()];
            }
            self.stats.unmapped_dropped += 1;
            self.unmapped.drops += 1;
            let end = tcb.recv_ssn().wrapping_add(tcb.recv_available() as u32);
            self.unmapped.drop_until = Some(end);
            // A plain segment that deferred a fallback meanwhile had its
            // options stripped too.
            self.fallback_deferred = false;
            // The dropped bytes come again only from the peer's data level:
            // a fallback now would leave a hole in the stream (as Linux's
            // data-level retransmission ends `allow_infinite_fallback`).
            self.may_fall_back = false;
            Actions::new()
        } else {
            self.fall_back(FallbackReason::NoMapping, tcb)
        }
    }

    /// No answer yet: ask again, backing off like the subflow's RTO.
    pub(super) fn unmapped_timeout(&mut self, now: Instant, tcb: &mut Tcb, sf: &SubflowMp) {
        if self.unmapped.probe_at.is_none_or(|t| t > now) {
            return;
        }
        if self.unmapped.since.is_none() || self.rx_fallback || !sf.is_initial() {
            // Decided meanwhile (a fallback forgets the hold itself), taken
            // raw after our MP_FAIL, or the first subflow (whose bytes
            // waited) is gone.
            self.forget_unmapped();
            return;
        }
        self.unmapped.probes = (self.unmapped.probes + 1).min(6);
        self.unmapped.probe_at = Some(now + tcb.rto_backed_off(self.unmapped.probes));
        tcb.probe();
    }

    /// Falling back (or reset): the bytes are the stream now, or nothing.
    pub(super) fn forget_unmapped(&mut self) {
        self.unmapped = UnmappedHold {
            drops: self.unmapped.drops,
            ..UnmappedHold::default()
        };
    }
}
