//! Output: before each transmission round the connection's data is mapped
//! onto its subflows — all of it onto a single one, else by the MPTCP
//! scheduler, each subflow taking what its congestion window allows — and the
//! subflows then take turns, one packet each (a segment, or a super-packet
//! of several for a device that segments), every segment carrying the
//! options the MPTCP level decides.

use super::{Connection, Effects, Subflow};
use crate::mptcp::options::SubflowHooks;
use crate::mptcp::scheduler::SubflowView;
use crate::mptcp::DataLevel;
use crate::tcp::cc::coupled::{couple_into, SubflowCc};
use crate::tcp::cc::Coupling;
use crate::tcp::hooks::NoHooks;
use crate::tcp::tcb::{PayloadRef, Transmit};
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::Dsn;
use core::time::Duration;

impl Connection {
    /// The next packet: one segment, or with `burst` above 1 possibly a
    /// super-packet of that many for the device to segment
    /// (`Tcb::poll_transmit_with`).
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        hop: u8,
        buf: &mut [u8],
        burst: usize,
    ) -> Option<Transmit> {
        self.transmit(now, hop, buf, burst, false).map(|(t, _)| t)
    }

    /// [`poll_transmit`](Self::poll_transmit) with the payload left out
    /// of the packet (`Tcb::poll_transmit_by_ref`); also which subflow sent
    /// it, for [`sent_payload`](Self::sent_payload).
    pub fn poll_transmit_by_ref(
        &mut self,
        now: Instant,
        hop: u8,
        buf: &mut [u8],
        burst: usize,
    ) -> Option<(Transmit, usize)> {
        self.transmit(now, hop, buf, burst, true)
    }

    /// The bytes of a payload subflow `sf` left out of its packet
    /// ([`poll_transmit_by_ref`](Self::poll_transmit_by_ref)): its own, or
    /// the data level's for a subflow that sends from it.
    pub fn sent_payload(&self, sf: usize, r: PayloadRef) -> Option<(&[u8], &[u8])> {
        let s = self.subflows.get(sf)?;
        match s.tcb.held_payload(r) {
            Some(held) => Some(held),
            None => self.mp.as_deref()?.payload(&s.mp, None, r.ssn, r.len),
        }
    }

    fn transmit(
        &mut self,
        now: Instant,
        hop: u8,
        buf: &mut [u8],
        burst: usize,
        by_ref: bool,
    ) -> Option<(Transmit, usize)> {
        if self.mp.is_none() {
            let tcb = &mut self.subflows[0].tcb;
            let t = match by_ref {
                true => tcb.poll_transmit_by_ref(now, hop, buf, &mut NoHooks, burst),
                false => tcb.poll_transmit_with(now, hop, buf, &mut NoHooks, burst),
            };
            return t.map(|t| (t, 0));
        }
        self.schedule(now);
        let mp = self.mp.as_deref_mut()?;
        let n = self.subflows.len();
        for j in 0..n {
            let k = (self.next_tx + j) % n;
            let s = &mut self.subflows[k];
            let mut hooks = SubflowHooks::new(mp, &mut s.mp);
            let t = match by_ref {
                true => s.tcb.poll_transmit_by_ref(now, hop, buf, &mut hooks, burst),
                false => s.tcb.poll_transmit_with(now, hop, buf, &mut hooks, burst),
            };
            if let Some(t) = t {
                if s.mp.take_data_ack_owed() {
                    s.tcb.force_ack();
                }
                self.next_tx = (k + 1) % n;
                return Some((t, k));
            }
        }
        None
    }

    /// The round before each segment. With one subflow and a steady data
    /// level (`DataLevel::round_steady`) a round repeated with only the
    /// subflow's own segments in between does nothing — a segment sent changes
    /// neither what the subflow holds (its queue counts what is in flight) nor
    /// its window, nor the data level — so a burst's segments after the first
    /// skip it. Debug builds run it all the same and check that it changed
    /// nothing.
    fn schedule(&mut self, now: Instant) {
        if self.settled && !cfg!(debug_assertions) {
            return;
        }
        #[cfg(debug_assertions)]
        let before = self.settled.then(|| self.round_state());
        self.map_pending(now);
        #[cfg(debug_assertions)]
        if let Some(before) = before {
            debug_assert_eq!(before, self.round_state(), "a settled round acted");
        }
        self.settled =
            self.subflows.len() == 1 && self.mp.as_deref().is_some_and(|mp| mp.round_steady());
    }

    /// What a scheduling round may change, to check that a settled one
    /// changes none of it.
    #[cfg(debug_assertions)]
    fn round_state(&self) -> impl PartialEq + core::fmt::Debug {
        let subflows: Vec<_> = self
            .subflows
            .iter()
            .map(|s| {
                let t = &s.tcb;
                (
                    t.next_ssn(),
                    t.sends_mapped(),
                    t.state(),
                    s.mp.round_state(),
                )
            })
            .collect();
        (self.mp.as_deref().map(|mp| mp.round_state()), subflows)
    }

    /// Something other than the connection's own segments (a segment
    /// arriving, a timer, the application, the stack) may change what the
    /// next scheduling round does.
    pub(super) fn unsettle(&mut self) {
        self.settled = false;
    }

    /// Map pending data onto the subflows, then the connection-level upkeep:
    /// the DATA_FIN once everything is mapped, the subflows' FINs once the data
    /// level is done, the data-level retransmission timer.
    fn map_pending(&mut self, now: Instant) {
        self.map_data();
        let primary = self.primary();
        let Connection { mp, subflows, .. } = self;
        // The data level's RTO is the subflows' shortest: worked out only
        // when a timer is to be armed, not in every round.
        let rto = || data_rto(subflows, primary);
        let acts = match mp.as_deref_mut() {
            Some(mp) if !mp.is_fallback() => mp.upkeep(now, rto),
            _ => return,
        };
        if !acts.is_empty() {
            let mut fx = Effects::default();
            self.apply(now, primary, acts, &mut fx);
            debug_assert!(fx.is_empty(), "upkeep decides only ACKs");
        }
        let Connection { mp, subflows, .. } = self;
        let Some(mp) = mp.as_deref_mut() else {
            return;
        };
        if mp.subflows_may_close() {
            // Both directions done at the data level (or nobody will read any
            // more): close the subflows.
            for s in subflows.iter_mut() {
                s.tcb.shutdown();
            }
        }
        mp.arm_rtx(now, || {
            (data_rto(subflows, primary), subflows[primary].tcb.max_rto())
        });
    }

    /// The retransmission timeout of the data level: the shortest of the
    /// subflows that can carry data (the primary's when none can).
    pub(super) fn data_rto(&self) -> Duration {
        data_rto(&self.subflows, self.primary())
    }

    fn map_data(&mut self) {
        let Connection {
            mp,
            subflows,
            round,
            ..
        } = self;
        let Some(mp) = mp.as_deref_mut() else {
            return;
        };
        if mp.is_fallback() {
            settle_sends(mp, subflows);
            let s = &mut subflows[0];
            mp.push(&mut s.tcb, &mut s.mp, 0);
            return;
        }
        for s in subflows.iter_mut().filter(|s| !s.mp.is_closed()) {
            mp.subflow_upkeep(&s.tcb, &mut s.mp);
        }
        if subflows.len() == 1 && mp.send_idle() && !mp.has_pending() {
            // Nothing queued (a receiver's rounds): nothing to map, and the
            // send buffer is sized when there is something to send.
            return;
        }
        settle_sends(mp, subflows);
        let cwnd = subflows
            .iter()
            .filter(|s| !s.mp.is_closed() && !s.mp.is_backup())
            .map(|s| s.tcb.cwnd())
            .sum();
        mp.autotune_send(cwnd);
        if subflows.len() == 1 {
            if !mp.has_pending() {
                // Nothing to map (the rest of the queue is in flight).
                return;
            }
            // Data handed to the only subflow stays there: keep it to what the
            // subflow can soon send, so that a subflow joining later gets its
            // share (and a dead one leaves little to reinject).
            let room = view_of(&subflows[0], 0).map_or(0, |v| v.room);
            let budget = if mp.may_join() { room } else { usize::MAX };
            let s = &mut subflows[0];
            mp.push(&mut s.tcb, &mut s.mp, budget);
            return;
        }
        couple_cc(subflows, round);
        if mp.is_redundant() {
            // Every usable subflow carries every byte.
            for (k, s) in subflows.iter_mut().enumerate() {
                if let Some(v) = view_of(s, k) {
                    mp.redundant_push(&mut s.tcb, &mut s.mp, v.room);
                }
            }
            return;
        }
        // The views are taken once per round and only the chosen subflow's is
        // refreshed after it took data.
        let views = &mut round.views;
        views.clear();
        views.extend(
            subflows
                .iter()
                .enumerate()
                .filter_map(|(k, s)| view_of(s, k)),
        );
        // A stalled subflow (its data already reinjected) gets no more while
        // another can take it.
        let stalled = |v: &SubflowView| subflows[v.index].mp.is_stalled();
        if views.iter().any(|v| !stalled(v)) {
            views.retain(|v| !stalled(v));
        }
        while mp.has_pending() {
            let Some(k) = mp.pick_subflow(views) else {
                break;
            };
            let Some(at) = views.iter().position(|v| v.index == k) else {
                break;
            };
            let s = &mut subflows[k];
            let refreshed = match mp.push(&mut s.tcb, &mut s.mp, views[at].room) {
                0 => None,
                _ => view_of(s, k),
            };
            match refreshed {
                Some(v) => views[at] = v,
                None => {
                    views.swap_remove(at);
                }
            }
        }
    }
}

/// See `Connection::data_rto`.
fn data_rto(subflows: &[Subflow], primary: usize) -> Duration {
    (0..subflows.len())
        .filter_map(|k| view_of(&subflows[k], k).map(|_| subflows[k].tcb.rto()))
        .min()
        .unwrap_or_else(|| subflows[primary].tcb.rto())
}

/// Which subflows send straight from the data level's buffer
/// (`mptcp/send_mapped.rs`): one that should no longer takes a copy of what
/// it holds, an empty one that may starts to; then the buffer frees what
/// none of them needs any more.
pub(super) fn settle_sends(mp: &mut DataLevel, subflows: &mut [Subflow]) {
    if mp.send_idle() {
        // Nothing queued: no subflow holds any of it, nothing to free.
        return;
    }
    let mut pin: Option<Dsn> = None;
    for s in subflows.iter_mut() {
        if s.mp.is_closed() || s.tcb.state() == State::Closed {
            // It sends nothing any more (its mappings are gone with it).
            continue;
        }
        let wants = mp.wants_mapped(&s.mp);
        if !s.tcb.sends_mapped() {
            if wants {
                s.tcb.map_sends();
            }
            continue;
        }
        let p = mp.subflow_pin(&s.tcb, &mut s.mp);
        let keeps = wants && !p.is_some_and(|p| mp.pins_too_much(p));
        if !keeps && mp.hold_for(&mut s.tcb, &s.mp) {
            continue;
        }
        debug_assert!(keeps, "a subflow's bytes not found in the data level");
        if let Some(p) = p {
            pin = Some(pin.map_or(p, |q| q.min(p)));
        }
    }
    mp.release_sent(pin);
}

/// A multipath transmission round's working space: the same few entries
/// are rebuilt for every segment scheduled, so they keep their allocation.
#[derive(Debug, Default)]
pub(super) struct Round {
    views: Vec<SubflowView>,
    live: Vec<usize>,
    subs: Vec<SubflowCc>,
    couplings: Vec<Coupling>,
}

/// Coupled congestion control (LIA, OLIA): every usable subflow learns the
/// others' windows and RTTs (algorithms that are not coupled ignore it).
fn couple_cc(subflows: &mut [Subflow], round: &mut Round) {
    let Round {
        live,
        subs,
        couplings,
        ..
    } = round;
    live.clear();
    live.extend(
        (0..subflows.len())
            .filter(|&k| view_of(&subflows[k], k).is_some() && subflows[k].tcb.srtt().is_some()),
    );
    subs.clear();
    subs.extend(live.iter().map(|&k| {
        let t = &subflows[k].tcb;
        SubflowCc {
            cwnd: t.cwnd(),
            mss: t.mss(),
            srtt: t.srtt().unwrap_or_default(),
            loss_interval: t.cc_loss_interval(),
        }
    }));
    couplings.clear();
    if subs.len() > 1 {
        couple_into(subs, couplings);
    }
    for (j, &k) in live.iter().enumerate() {
        subflows[k].tcb.set_coupling(couplings.get(j).copied());
    }
}

/// A subflow may carry data once its join is done, while it is established.
fn view_of(s: &Subflow, index: usize) -> Option<SubflowView> {
    let t = &s.tcb;
    let usable = !s.mp.is_closed()
        && s.mp.join_established()
        && matches!(t.state(), State::Established | State::CloseWait);
    usable.then(|| SubflowView {
        index,
        srtt: t.srtt(),
        backup: s.mp.is_backup(),
        // Up to two windows queued, like a subflow's send buffer in Linux:
        // enough for loss recovery to send new data (RFC 6675) while the
        // window is reduced, little enough to keep the subflows' queues short.
        room: (2 * t.cwnd()).saturating_sub(t.send_queued()),
    })
}
