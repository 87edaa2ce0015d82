//! From the data stream onto subflows: connection data is handed to a subflow's
//! TCB one recorded mapping per chunk (a mapping none of whose bytes left yet
//! grows instead of adding another), reinjections before new data, within the
//! peer's connection-level window. A subflow that times out has what it holds
//! queued for the others (reinjection, RFC 8684 §3.3.6); one that closes too.

use super::action::{Action, Actions};
use super::crypto::DssChecksum;
use super::level::{DataLevel, Phase};
use super::mapping::{Mapping, Mappings};
use super::subflow::SubflowMp;
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::mptcp::MptcpVersion;
use crate::wire::Dsn;
use core::time::Duration;

/// Largest mapping: the DSS data-level length field is 16 bits.
pub(super) const MAX_MAPPING: usize = 65535;

/// Ranges the reinjection queue holds at most (contiguous ones merge); beyond,
/// a range is dropped and left to the data-level retransmission.
const MAX_REINJECT_RANGES: usize = 1024;

/// Retransmission timeouts in a row after which what a subflow holds is sent
/// again on the others: one, as a timeout means the path lost a whole window
/// or died, and waiting for a second (twice as long) is that much more stall on
/// failover. It counts as stalled (no new data; backups take over) only after
/// two, so that one timeout on a live path does not wake a backup.
const REINJECT_BACKOFF: u32 = 1;
const STALL_BACKOFF: u32 = 2;

impl DataLevel {
    /// Connection-wide upkeep before a scheduling round: the DATA_FIN goes out
    /// (on every live subflow) once all data is mapped, and the repeat timers
    /// of DATA_FIN and address options are armed.
    pub fn upkeep(&mut self, now: Instant, rto: impl FnOnce() -> Duration) -> Actions {
        let mut acts = Actions::new();
        if self.phase == Phase::Fallback {
            return acts;
        }
        if self.pending_data_fin().is_some() {
            if self.fin_timer.is_none() {
                // The DATA_FIN rides on segments without data.
                acts.push(Action::AckAll);
                self.fin_timer = Some(now + rto());
            } else if !self.data_fin_sent && self.dss_in_use() {
                // A data segment took the ACK it was to ride on: ask again
                // rather than wait for the repeat timer.
                acts.push(Action::AckAll);
            }
        } else {
            self.fin_timer = None;
        }
        if self.pm_timers(now) {
            acts.push(Action::Ack);
        }
        acts
    }

    /// Whether a scheduling round, repeated with nothing but the subflows'
    /// own segments in between, finds nothing to do: once established, but
    /// not while a segment sent changes what the round does or when — the
    /// DATA_FIN once all data is mapped (it asks for an ACK again when a
    /// data segment took its ride), the MP_FAIL exchange (the infinite
    /// mapping ends in a fallback), address options (repeats timed from when
    /// they went out).
    pub fn round_steady(&self) -> bool {
        self.phase == Phase::Established
            && self.pending_data_fin().is_none()
            && self.fin_timer.is_none()
            && !self.fail.infinite_map_pending
            && self.fail.send.is_none()
            && self.fail.timer.is_none()
            && self.pm_quiet()
    }

    /// What a scheduling round may change at the data level (see
    /// `Connection::schedule`).
    #[cfg(debug_assertions)]
    pub fn round_state(&self) -> impl PartialEq + core::fmt::Debug {
        (
            (self.snd_nxt, self.snd_pin, self.snd_buf_dsn),
            (self.snd_buf.capacity(), self.reinject.len()),
            (self.fin_timer, self.rtx_timer, self.rtx_backoff),
        )
    }

    /// A subflow's housekeeping before it is given data: forget what it had
    /// acknowledged, and reinject its data when it times out. A stalled
    /// subflow gets no new data until it makes progress again.
    pub fn subflow_upkeep(&mut self, tcb: &Tcb, sf: &mut SubflowMp) {
        sf.tx_map.release_before(tcb.acked_ssn());
        if !self.joined {
            // A single subflow ever: there is nowhere else to reinject to.
            return;
        }
        let backoff = tcb.rto_backoff();
        if backoff >= REINJECT_BACKOFF && !sf.reinjected {
            self.reinject_from(sf);
            sf.reinjected = true;
        }
        if backoff >= STALL_BACKOFF {
            sf.stalled = true;
        } else if backoff == 0 {
            sf.stalled = false;
            sf.reinjected = false;
        }
    }

    /// Map up to `budget` bytes onto the subflow (reinjections first, then new
    /// data); the bytes mapped.
    pub fn push(&mut self, tcb: &mut Tcb, sf: &mut SubflowMp, budget: usize) -> usize {
        if self.phase == Phase::Fallback {
            tcb.set_window_cap(None);
            self.flush_fallback(tcb);
            return 0;
        }
        if sf.closed || !sf.join_established() {
            return 0;
        }
        self.map_data(tcb, sf, budget)
    }

    /// Queue what the subflow holds beyond the DATA_ACK for the others.
    fn reinject_from(&mut self, sf: &SubflowMp) {
        let una = self.snd_una;
        for m in sf.tx_map.iter() {
            let end = m.dsn_end();
            if end.diff(una) <= 0 {
                continue;
            }
            let start = m.dsn.max(una);
            self.queue_reinjection(start, end.since(start) as u32);
        }
    }

    /// Queue `len` bytes from DSN `start` for sending again, merged with the
    /// last range when contiguous, within [`MAX_REINJECT_RANGES`].
    fn queue_reinjection(&mut self, start: Dsn, len: u32) {
        if let Some(last) = self.reinject.back_mut() {
            let merged = last.1 as u64 + len as u64;
            if last.0 + last.1 as u64 == start && merged <= u32::MAX as u64 {
                last.1 = merged as u32;
                return;
            }
        }
        if self.reinject.len() >= MAX_REINJECT_RANGES {
            self.stats.reinject_overflow += 1;
            return;
        }
        self.reinject.push_back((start, len));
    }

    /// The subflow closed or was reset: what it carried goes to the others.
    pub fn subflow_closed(&mut self, sf: &mut SubflowMp) {
        if sf.closed {
            return;
        }
        if !sf.reinjected {
            self.reinject_from(sf);
        }
        sf.closed = true;
        sf.tx_map = Mappings::new(0);
        sf.rx_map = Mappings::new(0);
    }

    /// Whether data waits to be mapped onto a subflow.
    pub fn has_pending(&self) -> bool {
        self.send_pending() > 0 || !self.reinject.is_empty()
    }

    fn map_data(&mut self, tcb: &mut Tcb, sf: &mut SubflowMp, budget: usize) -> usize {
        // v1's first data rides in MP_CAPABLE, alone; v0 has no such form.
        let v1_first = self.phase == Phase::PreEstablished && self.version == MptcpVersion::V1;
        match self.phase {
            Phase::Handshake => return 0,
            // Until the server acknowledged the keys, only the first mapping goes
            // out (it rides in MP_CAPABLE).
            Phase::PreEstablished
                if v1_first && (self.snd_nxt != self.snd_una || !sf.tx_map.is_empty()) =>
            {
                return 0
            }
            _ => {}
        }
        let mut left = budget;
        let mss = tcb.mss().max(1);
        let chunk_max = if v1_first {
            // One segment: it carries its mapping in MP_CAPABLE, and a server that
            // lost the third ACK would fall back on seeing a DSS first.
            mss.min(MAX_MAPPING)
        } else {
            (MAX_MAPPING / mss * mss).max(mss).min(MAX_MAPPING)
        };
        while left > 0 {
            if !self.reinject.is_empty() {
                // Nothing taken: no room (new data gets none either), or the
                // queue's head is this subflow's own (it waits for another).
                let n = self.map_reinjection(tcb, sf, left.min(chunk_max));
                if n > 0 {
                    left -= n;
                    continue;
                }
            }
            let n = self
                .send_pending()
                .min(self.window_left(tcb, mss))
                .min(tcb.send_capacity())
                .min(chunk_max)
                .min(left);
            if n == 0 {
                break;
            }
            let taken = match self.grow_last_mapping(tcb, sf, n, chunk_max) {
                0 => self.map_range(tcb, sf, self.snd_nxt, n),
                t => t,
            };
            if taken == 0 {
                break;
            }
            self.snd_nxt += taken;
            left -= taken.min(left);
            if v1_first {
                break;
            }
        }
        budget - left
    }

    /// New data the peer's connection-level window still admits.
    fn window_left(&self, tcb: &Tcb, mss: usize) -> usize {
        let window = self.snd_wnd_end.diff(self.snd_nxt).max(0) as usize;
        // Before the first DATA_ACK the subflow window is the only bound. After
        // it, a zero window means zero: a subflow's own window may be stale (the
        // peer's updates went out on the others), and a receiver such as Linux
        // drops data beyond its connection-level window even though the subflow
        // acknowledges it.
        if !self.snd_wnd_known && window == 0 {
            tcb.snd_wnd().max(mss)
        } else {
            window
        }
    }

    /// Data never goes to the subflow without its mapping recorded. A mapping
    /// none of whose bytes went out yet simply grows by up to `n` new bytes
    /// (not with checksums: its checksum is already computed); the bytes taken.
    fn grow_last_mapping(
        &mut self,
        tcb: &mut Tcb,
        sf: &mut SubflowMp,
        n: usize,
        chunk_max: usize,
    ) -> usize {
        if self.checksum {
            return 0;
        }
        let (ssn, unsent, snd_nxt) = (tcb.next_ssn(), tcb.sent_ssn(), self.snd_nxt);
        let Some(last) = sf.tx_map.last_mut() else {
            return 0;
        };
        let grows = last.ssn_end() == ssn
            && last.dsn_end() == snd_nxt
            && (last.ssn.wrapping_sub(unsent) as i32) >= 0
            && last.len as usize + n <= chunk_max;
        if !grows {
            return 0;
        }
        let taken = if tcb.sends_mapped() {
            tcb.send_mapped(n).unwrap_or(0)
        } else {
            let offset = snd_nxt.since(self.snd_buf_dsn) as usize;
            let (a, b) = self.snd_buf.peek(offset, n);
            tcb.send(a).unwrap_or(0) + tcb.send(b).unwrap_or(0)
        };
        last.len += taken as u16;
        carried(sf, snd_nxt + taken);
        taken
    }

    /// Send the front of the reinjection queue on the subflow under a new
    /// mapping (same DSNs); the bytes mapped.
    fn map_reinjection(&mut self, tcb: &mut Tcb, sf: &mut SubflowMp, max: usize) -> usize {
        while let Some(&(dsn, len)) = self.reinject.front() {
            let end = dsn + len as u64;
            let una = self.snd_una;
            if end.diff(una) <= 0 {
                self.reinject.pop_front();
                continue;
            }
            let start = dsn.max(una);
            // Never onto a subflow that still holds these bytes: its own
            // retransmission delivers them, and the same bytes twice in one
            // subflow's stream are what a peer that loses this mapping to a
            // middlebox (and falls back) would deliver twice.
            let mut held_from = end;
            for m in sf.tx_map.iter() {
                if m.dsn <= start && m.dsn_end() > start {
                    return 0;
                }
                if m.dsn > start && m.dsn < held_from {
                    held_from = m.dsn;
                }
            }
            let n = (held_from.since(start) as usize).min(max);
            let taken = self.map_range(tcb, sf, start, n);
            let rest = end.since(start) as usize - taken;
            if rest == 0 {
                self.reinject.pop_front();
            } else if let Some(front) = self.reinject.front_mut() {
                *front = (start + taken, rest as u32);
            }
            self.stats.reinjected_bytes += taken as u64;
            return taken;
        }
        0
    }

    /// Put up to `n` bytes from DSN `start` (not below the DATA_ACK) on the
    /// subflow under a new mapping; the bytes taken.
    fn map_range(&mut self, tcb: &mut Tcb, sf: &mut SubflowMp, start: Dsn, n: usize) -> usize {
        let n = n.min(tcb.send_capacity()).min(MAX_MAPPING);
        if n == 0 || sf.tx_map.is_full() {
            return 0;
        }
        let ssn = tcb.next_ssn();
        let offset = start.since(self.snd_buf_dsn) as usize;
        let (a, b) = self.snd_buf.peek(offset, n);
        let mut sum = self
            .checksum
            .then(|| DssChecksum::new(start.0, ssn, n as u16));
        let mut taken = 0;
        for part in [a, b] {
            if let Some(s) = &mut sum {
                s.update(part);
            }
            if !tcb.sends_mapped() {
                taken += tcb.send(part).unwrap_or(0);
            }
        }
        if tcb.sends_mapped() {
            // The bytes stay here until the subflow no longer needs them.
            taken = tcb.send_mapped(n).unwrap_or(0);
            self.snd_pin = Some(self.snd_pin.map_or(start, |p| p.min(start)));
        }
        debug_assert_eq!(taken, n, "the subflow took less than its capacity");
        let _ = sf.tx_map.append(Mapping {
            ssn,
            dsn: start,
            len: taken as u16,
            checksum: sum.map(|s| s.finish()),
            data_fin: false,
        });
        carried(sf, start + taken);
        taken
    }

    /// The redundant scheduler: the subflow carries the whole data stream in
    /// order from where it stands, within `room` and the peer's window; whoever
    /// runs ahead hands out new data.
    pub fn redundant_push(&mut self, tcb: &mut Tcb, sf: &mut SubflowMp, room: usize) {
        let limit = self.data_end().min(self.snd_wnd_end);
        let mut left = room;
        while left > 0 {
            let una = self.snd_una;
            let from = match sf.carried_end {
                Some(c) if c.diff(una) > 0 => c,
                _ => una,
            };
            let n = limit.since(from) as usize;
            if n == 0 {
                break;
            }
            let taken = self.map_range(tcb, sf, from, n.min(left));
            if taken == 0 {
                break;
            }
            self.snd_nxt = self.snd_nxt.max(from + taken);
            left -= taken;
        }
    }

    /// Which usable subflow the scheduler picks for the next chunk.
    pub fn pick_subflow(&mut self, views: &[super::scheduler::SubflowView]) -> Option<usize> {
        self.scheduler.pick(views)
    }
}

/// The subflow has carried data up to DSN `end`.
fn carried(sf: &mut SubflowMp, end: Dsn) {
    if sf.carried_end.is_none_or(|c| end.diff(c) > 0) {
        sf.carried_end = Some(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchedulerKind;
    use crate::mptcp::level::MptcpSettings;

    fn level() -> DataLevel {
        let s = MptcpSettings {
            allow_v1: true,
            allow_v0: false,
            retry_v0: false,
            scheduler: SchedulerKind::MinRtt,
            max_subflows: 2,
            checksum: false,
            send_buffer: 1 << 20,
            recv_buffer: 1 << 20,
            join_attempts: 8,
            join_refill: Duration::from_secs(10),
            accept_v0_add_addr: false,
            deny_join_id0: false,
        };
        DataLevel::client(MptcpVersion::V1, 7, &s)
    }

    /// The reinjection queue merges contiguous ranges and holds a bounded
    /// number of ranges; what does not fit is counted and left to the
    /// data-level retransmission.
    #[test]
    fn reinjection_queue_merges_and_is_bounded() {
        let mut c = level();
        c.queue_reinjection(Dsn(100), 50);
        c.queue_reinjection(Dsn(150), 50);
        assert_eq!(
            c.reinject.iter().copied().collect::<Vec<_>>(),
            [(Dsn(100), 100)]
        );
        for i in 0..5000u64 {
            c.queue_reinjection(Dsn(1_000 + i * 10), 5);
        }
        assert_eq!(c.reinject.len(), MAX_REINJECT_RANGES);
        assert_eq!(
            c.stats.reinject_overflow,
            5000 - (MAX_REINJECT_RANGES as u64 - 1)
        );
    }
}
