//! The send side's reaction to an acceptable ACK: RTT measurement, window update,
//! congestion control, and loss recovery — SACK-based (RFC 6675) when SACK was
//! negotiated, NewReno (RFC 6582) otherwise.

use super::Tcb;
use crate::tcp::autotune::{MIN_RTT_FLOOR, QUEUE_RTTS};
use crate::tcp::hystart::{Growth, CSS_GROWTH_DIVISOR};
use crate::time::Instant;
use crate::wire::TcpRepr;
use core::time::Duration;

impl Tcb {
    pub(super) fn on_ack(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        let ack = seg.ack;
        let flight_before = self.snd_max.since(self.snd_una);
        let mut newly_sacked = 0;
        if self.sack_ok && !seg.sack_blocks.is_empty() {
            newly_sacked =
                self.scoreboard
                    .update(self.snd_una, self.snd_max, seg.sack_blocks.as_slice());
        }
        let acked = if ack.diff(self.snd_una) > 0 {
            ack.since(self.snd_una)
        } else {
            0
        };

        let window_changed = self.update_window(seg);
        if self.zwp_outstanding && (acked > 0 || self.snd_wnd > 0) {
            self.zwp_outstanding = false;
            if acked == 0 {
                self.unsend_probe();
            }
        }

        let mut growth = Growth::Full;
        if acked > 0 {
            let sample = self.take_rtt_sample(now, seg);
            if self.cc.cwnd() < self.cc.ssthresh() && !self.in_recovery {
                growth = self.hystart.on_ack(ack, self.snd_nxt, sample);
                if growth == Growth::Exit {
                    self.cc.exit_slow_start();
                }
            }
            self.snd_una = ack;
            if self.snd_nxt.diff(ack) < 0 {
                self.snd_nxt = ack;
            }
            if self.high_rxt.diff(ack) < 0 {
                self.high_rxt = ack;
            }
            let data_acked = ack.since(self.buf_seq).min(self.send_buf.len());
            if data_acked > 0 {
                self.send_buf.discard(data_acked);
                self.buf_seq += data_acked;
                self.stats.bytes_acked += data_acked as u64;
                if self.send_was_full {
                    self.send_was_full = false;
                    self.events.writable = true;
                }
            }
            self.scoreboard.advance(ack);
            self.retries = 0;
            self.backoff = 0;

            if self.in_recovery {
                if ack.diff(self.recovery_point) >= 0 {
                    self.in_recovery = false;
                    self.rtx_una = false;
                    self.dupacks = 0;
                    self.cc.on_recovery_exit(now);
                } else if !self.sack_ok {
                    // NewReno partial ACK (RFC 6582 §3.2 step 5): retransmit the next
                    // hole and deflate the window by what was acknowledged.
                    self.rtx_una = true;
                    let cwnd = self.cc.cwnd();
                    let mss = self.eff_mss();
                    let deflated = cwnd.saturating_sub(acked) + if acked >= mss { mss } else { 0 };
                    self.cc.set_cwnd(deflated.max(mss));
                }
            } else {
                self.dupacks = 0;
                // Keep the recovery point just behind snd_una so the comparison
                // above stays valid across sequence-number wrap.
                if ack.diff(self.recovery_point) > 0 {
                    self.recovery_point = ack;
                }
                let srtt = self.rtt.srtt().unwrap_or(Duration::from_millis(100));
                // Conservative slow start: a quarter of the growth.
                let counted = match growth {
                    Growth::Conservative => acked.div_ceil(CSS_GROWTH_DIVISOR),
                    _ => acked,
                };
                // Growth while our own queue makes the round trip would only
                // lengthen that queue: the algorithm sees the sender as not
                // limited by its window (no growth, CUBIC's curve paused).
                let flight = if self.own_queue_in_rtt(srtt) {
                    0
                } else {
                    flight_before
                };
                self.cc.on_ack(now, counted, flight, srtt);
                self.cwnd_peak = self.cwnd_peak.max(self.cc.cwnd());
            }

            // RFC 6298 §5.3: restart the timer on new data acknowledged.
            self.rto_at = if self.snd_una == self.snd_max {
                None
            } else {
                Some(now + self.rtt.rto())
            };
        } else if self.is_dupack(seg, window_changed, newly_sacked) {
            self.on_dupack(now);
        }

        if self.in_recovery && self.sack_ok {
            self.set_pipe();
        }
        self.autotune_send();
    }

    /// The host queues what arrives (a CPU-bound daemon found more than a
    /// batch waiting in its TUN) and the smoothed round trip is more than
    /// `QUEUE_RTTS` of the least one we measured as a sender (taken no
    /// shorter than 1 ms; the receiver's estimate can read 0 within one
    /// batch): the time is spent in our own queue, which a larger window
    /// only lengthens. A path's own delay (a WAN's 100 ms) raises the bar
    /// with it. Only growth past the largest window so far, and past the
    /// initial one, is held: the flag is the host's, set for every
    /// connection while any keeps the daemon busy, and a window a loss or
    /// a timeout cut must be able to grow back.
    pub(super) fn own_queue_in_rtt(&self, srtt: Duration) -> bool {
        if !self.rcv_space.host_queue {
            return false;
        }
        let cwnd = self.cc.cwnd();
        if cwnd <= self.initial_window() || cwnd < self.cwnd_peak {
            return false;
        }
        let Some(least) = self.rtt.min_rtt() else {
            return false;
        };
        srtt.as_micros() > least.max(MIN_RTT_FLOOR).as_micros() * QUEUE_RTTS
    }

    /// The window reopened without the probe's byte: the peer dropped it
    /// (beyond a zero window). It goes again with the data behind it, at
    /// once, not as a retransmission the probes' backoff (up to the maximum
    /// RTO) times and Nagle holds the rest behind; the probes said nothing
    /// about the path, so the backoff ends too (Linux: `tcp_ack_probe`).
    fn unsend_probe(&mut self) {
        self.snd_nxt = self.snd_una;
        self.snd_max = self.snd_una;
        self.rtt_probe = None;
        self.backoff = 0;
        self.rto_at = None;
    }

    /// RFC 9293 §3.10.7.4: take the window from the most recent segment.
    fn update_window(&mut self, seg: &TcpRepr<'_>) -> bool {
        let newer = self.snd_wl1.diff(seg.seq) < 0
            || (self.snd_wl1 == seg.seq && self.snd_wl2.diff(seg.ack) <= 0);
        if !newer {
            return false;
        }
        let wnd = (seg.window as usize) << self.snd_wscale;
        let changed = wnd != self.snd_wnd;
        self.snd_wnd = wnd;
        self.max_snd_wnd = self.max_snd_wnd.max(wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        changed
    }

    /// The round-trip sample the ACK gives, if any (also fed to the estimator).
    fn take_rtt_sample(&mut self, now: Instant, seg: &TcpRepr<'_>) -> Option<Duration> {
        // Karn's rule, also for timestamps: an ACK covering retransmitted data
        // echoes a TSval from before the loss (the duplicate that triggered it was
        // out of window), which would count the recovery time as path delay.
        if self.rtx_end.diff(self.snd_una) > 0 {
            return None;
        }
        if self.ts_ok {
            if let Some((_, tsecr)) = seg.timestamp {
                if tsecr != 0 {
                    let sent_ms = tsecr.wrapping_sub(self.ts_offset);
                    let now_ms = now.as_millis() as u32;
                    let ms = now_ms.wrapping_sub(sent_ms);
                    if (ms as i32) >= 0 && ms < 3_600_000 {
                        // Millisecond clock: never claim less than a tick's worth.
                        let r = Duration::from_millis(ms.max(1) as u64);
                        self.rtt.sample(now, r);
                        return Some(r);
                    }
                    return None;
                }
            }
        }
        // Karn: `rtt_probe` is cleared whenever its segment is retransmitted.
        if let Some((seq, sent)) = self.rtt_probe {
            if seg.ack.diff(seq) >= 0 {
                let r = now.saturating_since(sent);
                self.rtt.sample(now, r);
                self.rtt_probe = None;
                return Some(r);
            }
        }
        None
    }

    /// RFC 5681 §2 duplicate ACK; with SACK, an ACK that SACKs new data also counts
    /// (RFC 6675 §2).
    fn is_dupack(&self, seg: &TcpRepr<'_>, window_changed: bool, newly_sacked: usize) -> bool {
        if seg.ack != self.snd_una || self.snd_max == self.snd_una {
            return false;
        }
        if self.sack_ok && newly_sacked > 0 {
            return true;
        }
        // Answers to zero-window probes repeat the same ACK and window but say
        // nothing about loss.
        seg.payload.is_empty()
            && !seg.flags.syn()
            && !seg.flags.fin()
            && !window_changed
            && self.snd_wnd > 0
    }

    fn on_dupack(&mut self, now: Instant) {
        self.dupacks += 1;
        let mss = self.eff_mss();
        if self.in_recovery {
            if !self.sack_ok {
                // NewReno window inflation: each dupack means a segment left.
                let cwnd = self.cc.cwnd();
                self.cc.set_cwnd(cwnd + mss);
            }
            return;
        }
        // RFC 6582 §3.2 step 2 / RFC 6675 §5: only a loss after the last recovery
        // point starts a new recovery.
        if self.snd_una.diff(self.recovery_point) < 0 {
            return;
        }
        let lost = if self.sack_ok {
            self.dupacks >= self.cfg.dupthresh
                || self
                    .scoreboard
                    .is_lost(self.snd_una, mss, self.cfg.dupthresh)
        } else {
            self.dupacks >= self.cfg.dupthresh
        };
        if !lost {
            return;
        }
        let flight = self.snd_max.since(self.snd_una);
        self.in_recovery = true;
        self.recovery_point = self.snd_max;
        self.high_rxt = self.snd_una;
        self.cc.on_loss(now, flight);
        self.hystart.finish();
        self.rtx_una = true;
        self.rtt_probe = None;
        if !self.sack_ok {
            let cwnd = self.cc.ssthresh() + 3 * mss;
            self.cc.set_cwnd(cwnd);
        } else {
            self.set_pipe();
        }
    }

    /// RFC 6675 SetPipe(): bytes believed to be in the network.
    pub(super) fn set_pipe(&mut self) {
        let mss = self.eff_mss();
        let dupthresh = self.cfg.dupthresh;
        let mut pipe = 0usize;
        let mut from = self.snd_una;
        while let Some((start, end)) = self.scoreboard.next_hole(from, self.snd_max) {
            let len = end.since(start);
            let rxt = if self.high_rxt.diff(start) > 0 {
                self.high_rxt.min(end).since(start)
            } else {
                0
            };
            if self.scoreboard.is_lost(start, mss, dupthresh) {
                pipe += rxt;
            } else {
                pipe += len + rxt;
            }
            if end == self.snd_max {
                break;
            }
            from = end;
        }
        self.pipe = pipe;
    }

    /// Bytes in flight as the congestion window sees them.
    pub(super) fn flight(&self) -> usize {
        if self.in_recovery && self.sack_ok {
            self.pipe
        } else {
            self.snd_nxt.since(self.snd_una)
        }
    }
}
