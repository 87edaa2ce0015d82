//! Compact TIME_WAIT records. A released connection whose subflows all wait
//! out TIME_WAIT with nothing left to send gives up its whole record (buffers,
//! congestion state, the MPTCP level: a few KiB) for one small record per
//! 4-tuple, as Linux's `tcp_timewait_sock`: enough to acknowledge a FIN the
//! peer sends again (our last ACK was lost) and to keep the 4-tuple from
//! being reused while old segments may still be in flight (RFC 9293
//! §3.6.1). The table is bounded (`Config::max_time_wait`, as Linux's
//! `tcp_max_tw_buckets`): past it a connection skips TIME_WAIT.

use crate::demux::FourTuple;
use crate::tcp::ratelimit::ChallengeQuota;
use crate::tcp::tcb::TimeWaitState;
use crate::time::Instant;
use crate::wire::{self, SeqNumber, TcpFlags, TcpRepr};
use core::time::Duration;
use std::collections::{HashMap, VecDeque};

/// One ACK per record per this interval at most, as the TCB's out-of-window
/// ACKs: a peer replaying segments cannot make us answer each.
use crate::tcp::tcb::OOW_ACK_INTERVAL as ACK_INTERVAL;
/// ACKs waiting to go out are bounded; past this they are dropped.
const MAX_PENDING_ACKS: usize = 1024;
/// What a record costs, for the memory budget: the record and its key, twice
/// over for the hash table's spare room, and its place in the expiry queue.
pub(super) const RECORD_BYTES: usize = 2
    * (core::mem::size_of::<FourTuple>() + core::mem::size_of::<Record>())
    + core::mem::size_of::<(Instant, FourTuple)>();

#[derive(Debug, Clone, Copy)]
struct Record {
    seq: SeqNumber,
    ack: SeqNumber,
    window: u16,
    timestamps: Option<(u32, u32)>,
    until: Instant,
    acked_at: Option<Instant>,
    /// Twice the MSL, for a FIN that restarts the wait.
    wait: Duration,
}

/// The records, their expiry order and the ACKs they owe.
#[derive(Debug, Default)]
pub(super) struct TimeWaitTable {
    records: HashMap<FourTuple, Record>,
    /// In order of `until` as first set: a record whose wait restarted is
    /// found on pop and queued again at the back (later than all others).
    expiry: VecDeque<(Instant, FourTuple)>,
    acks: VecDeque<FourTuple>,
}

/// What became of a segment for a record's 4-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// Dropped, or acknowledged (the ACK is queued).
    Handled,
    /// No record for the 4-tuple.
    Unknown,
}

impl TimeWaitTable {
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn contains(&self, tuple: &FourTuple) -> bool {
        self.records.contains_key(tuple)
    }

    /// Take over a TCB's TIME_WAIT; false if `limit` records are held.
    pub(super) fn insert(&mut self, st: &TimeWaitState, msl: Duration, limit: usize) -> bool {
        let tuple = FourTuple {
            local: st.local,
            remote: st.remote,
        };
        if self.records.len() >= limit && !self.records.contains_key(&tuple) {
            return false;
        }
        let r = Record {
            seq: st.seq,
            ack: st.ack,
            window: st.window,
            timestamps: st.timestamps,
            until: st.until,
            acked_at: None,
            wait: msl * 2,
        };
        if self.records.insert(tuple, r).is_none() {
            self.expiry.push_back((st.until, tuple));
        }
        true
    }

    /// When the next record may expire.
    pub(super) fn poll_at(&self) -> Option<Instant> {
        self.expiry.front().map(|(at, _)| *at)
    }

    /// Forget the records whose wait is over; how many.
    pub(super) fn expire(&mut self, now: Instant) -> usize {
        let mut gone = 0;
        while let Some(&(at, tuple)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            match self.records.get(&tuple) {
                Some(r) if r.until > now => self.expiry.push_back((r.until, tuple)),
                Some(_) => {
                    self.records.remove(&tuple);
                    gone += 1;
                }
                None => {}
            }
        }
        gone
    }

    /// A segment for `tuple` (RFC 9293 §3.10.7.4 in TIME_WAIT): a RST is
    /// ignored (RFC 1337); a SYN gets a challenge ACK within the stack-wide
    /// quota (RFC 5961 §4); anything else is a retransmission from a peer
    /// that missed our last ACK, acknowledged again at most once per
    /// `ACK_INTERVAL`; a FIN restarts the wait.
    pub(super) fn on_segment(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        seg: &TcpRepr<'_>,
        quota: &mut ChallengeQuota,
    ) -> Answer {
        let Some(r) = self.records.get_mut(tuple) else {
            return Answer::Unknown;
        };
        let f = seg.flags;
        if f.rst() {
            return Answer::Handled;
        }
        if f.syn() {
            if quota.take(now) {
                queue_ack(&mut self.acks, *tuple);
            }
            return Answer::Handled;
        }
        if f.fin() {
            r.until = now + r.wait;
        }
        if let Some((_, recent)) = r.timestamps.as_mut() {
            if let Some((tsval, _)) = seg.timestamp {
                if seg.seq.diff(r.ack) <= 0 && tsval.wrapping_sub(*recent) as i32 > 0 {
                    *recent = tsval;
                }
            }
        }
        if r.acked_at
            .is_some_and(|t| now.saturating_since(t) < ACK_INTERVAL)
        {
            return Answer::Handled;
        }
        r.acked_at = Some(now);
        queue_ack(&mut self.acks, *tuple);
        Answer::Handled
    }

    /// The next ACK a record owes, written into `buf`; its length.
    pub(super) fn poll_transmit(&mut self, now: Instant, hop: u8, buf: &mut [u8]) -> Option<usize> {
        while let Some(tuple) = self.acks.pop_front() {
            let Some(r) = self.records.get(&tuple) else {
                continue;
            };
            let mut seg = TcpRepr::new(tuple.local.port(), tuple.remote.port());
            seg.seq = r.seq;
            seg.ack = r.ack;
            seg.flags = TcpFlags(TcpFlags::ACK);
            seg.window = r.window;
            seg.timestamp = r
                .timestamps
                .map(|(offset, recent)| ((now.as_millis() as u32).wrapping_add(offset), recent));
            if let Ok(n) =
                wire::emit_packet(tuple.local.ip(), tuple.remote.ip(), hop, &seg, &[], buf)
            {
                return Some(n);
            }
        }
        None
    }

    pub(super) fn wants_transmit(&self) -> bool {
        !self.acks.is_empty()
    }
}

fn queue_ack(acks: &mut VecDeque<FourTuple>, tuple: FourTuple) {
    if acks.len() < MAX_PENDING_ACKS {
        acks.push_back(tuple);
    }
}
