//! Input: one IPv4/IPv6 datagram at a time. ICMP echo requests are answered;
//! a TCP segment is parsed once — its MPTCP options too — and goes to the
//! subflow its 4-tuple names, or opens a connection or a joined subflow, or is
//! answered with a RST (RFC 9293 §3.10.7.1).

use super::cookies::CookieAck;
use super::memory::Refusal;
use super::output::{EchoOut, MAX_PENDING_ECHO_REPLIES};
use super::{time_wait, Listen, Stack};
use crate::conn::{Connection, RstOut};
use crate::demux::FourTuple;
use crate::mptcp::action::rst_reason;
use crate::mptcp::join::{self, JoinRequest};
use crate::mptcp::{options, DataLevel};
use crate::tcp::hooks::OptionBytes;
use crate::tcp::tcb::RstReply;
use crate::time::Instant;
use crate::wire::mptcp::MpCapable;
use crate::wire::{self, IcmpMessage, IpRepr, MptcpOptions, SeqNumber, TcpRepr, WireError};
use rand_core::Rng;
use std::net::{IpAddr, SocketAddr};

fn seg_len(seg: &TcpRepr<'_>) -> usize {
    seg.payload.len() + seg.flags.syn() as usize + seg.flags.fin() as usize
}

fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

impl Stack {
    /// A packet read from the network (an IPv4 or IPv6 datagram).
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.handle_packet_with(now, packet, true, 1);
    }

    /// Like [`handle_packet`](Self::handle_packet), but the TCP checksum is not
    /// verified: for a packet the local kernel hands over with checksum offload,
    /// whose checksum it computed or checked itself, or never computed because the
    /// packet did not leave the machine (the field then holds only a partial sum).
    /// Everything else, the IPv4 header checksum included, is checked as usual.
    pub fn handle_packet_checksum_offloaded(&mut self, now: Instant, packet: &[u8]) {
        self.handle_packet_with(now, packet, false, 1);
    }

    /// A TCP super-packet the local kernel merged from `segments` segments
    /// (GRO), taken as one segment, as Linux's TCP takes it: the kernel
    /// merges only segments that continue one another with identical headers
    /// and options, each one's checksum checked first, so the checksum is
    /// not verified (as [`handle_packet_checksum_offloaded`]). Counted as
    /// the packets and segments it holds, and in `super_packets_in`.
    ///
    /// [`handle_packet_checksum_offloaded`]: Self::handle_packet_checksum_offloaded
    pub fn handle_super_packet(&mut self, now: Instant, packet: &[u8], segments: usize) {
        self.counters.super_packets_in += 1;
        self.handle_packet_with(now, packet, false, segments.max(1) as u64);
    }

    /// `wire`: how many packets this one was on the wire.
    fn handle_packet_with(&mut self, now: Instant, packet: &[u8], verify: bool, wire: u64) {
        self.tick(now);
        self.counters.packets_in += wire;
        let (ip, payload) = match IpRepr::parse(packet) {
            Ok(p) => p,
            Err(e) => {
                self.count_wire_error(e);
                return;
            }
        };
        let ours = self.is_local(ip.dst);
        if !ours && (ip.protocol != wire::IPPROTO_TCP || !self.transparent()) {
            self.counters.drop_not_for_us += 1;
            return;
        }
        if self.is_local(ip.src) {
            // We never send to ourselves through the network: a spoof (a
            // "martian" source), which a RST or echo reply would reflect.
            self.counters.drop_own_source += 1;
            return;
        }
        match ip.protocol {
            wire::IPPROTO_TCP => self.handle_tcp(now, &ip, payload, verify, wire),
            wire::IPPROTO_ICMP if ip.dst.is_ipv4() => self.handle_icmp(now, &ip, payload),
            wire::IPPROTO_ICMPV6 if ip.dst.is_ipv6() => self.handle_icmp(now, &ip, payload),
            _ => self.counters.drop_unsupported_protocol += 1,
        }
    }

    fn count_wire_error(&mut self, e: WireError) {
        match e {
            WireError::BadChecksum => self.counters.drop_bad_checksum += 1,
            WireError::BadOptionLength | WireError::OptionOverrun => {
                self.counters.drop_invalid_option += 1
            }
            _ => self.counters.drop_malformed += 1,
        }
    }

    /// ICMP (IPv4) or ICMPv6 (IPv6) to one of our addresses: echo requests are
    /// answered, a destination unreachable about a connection we are opening
    /// fails it, everything else is counted and dropped. Never sends ICMP errors.
    fn handle_icmp(&mut self, now: Instant, ip: &IpRepr, bytes: &[u8]) {
        let echo = match IcmpMessage::parse(ip.src, ip.dst, bytes) {
            Ok(IcmpMessage::EchoRequest(e)) => e,
            Ok(IcmpMessage::Unreachable { quoted, .. }) => {
                self.icmp_unreachable(now, ip, quoted);
                return;
            }
            Ok(IcmpMessage::EchoReply(_) | IcmpMessage::Other { .. }) => {
                self.counters.drop_icmp_other += 1;
                return;
            }
            Err(e) => {
                self.count_wire_error(e);
                return;
            }
        };
        self.counters.icmp_echo_requests += 1;
        if !is_unicast(ip.src) {
            self.counters.drop_malformed += 1;
            return;
        }
        if wire::icmp::echo_packet_len(ip.dst, echo.data.len()) > self.config.tcp.mtu {
            self.counters.drop_icmp_too_big += 1;
            return;
        }
        if self.echoes.len() >= MAX_PENDING_ECHO_REPLIES {
            self.counters.drop_icmp_queue_full += 1;
            return;
        }
        if !self.echo_bucket.take(self.now) {
            self.counters.drop_icmp_rate_limited += 1;
            return;
        }
        self.echoes.push_back(EchoOut {
            src: ip.dst,
            dst: ip.src,
            ident: echo.ident,
            seq: echo.seq,
            data: echo.data.to_vec(),
        });
    }

    /// A destination unreachable quoting `quoted`: it must be a segment we
    /// sent (from the address the error came to) on a connection we hold.
    fn icmp_unreachable(&mut self, now: Instant, ip: &IpRepr, quoted: wire::QuotedTcp) {
        let tuple = FourTuple {
            local: quoted.src,
            remote: quoted.dst,
        };
        let found = (quoted.src.ip() == ip.dst)
            .then(|| self.conns.lookup(&tuple))
            .flatten();
        let fx = found.and_then(|(id, sub)| {
            let slot = self.conns.get_mut(id)?;
            Some((id, slot.conn.on_icmp_unreachable(now, sub, quoted.seq)?))
        });
        match fx {
            Some((id, fx)) => {
                self.counters.icmp_unreachable += 1;
                self.apply_effects(id, now, fx, true);
                self.touch(id);
            }
            None => self.counters.drop_icmp_other += 1,
        }
    }

    /// Whether TCP to addresses not ours is taken: a transparent listener, or
    /// connections it accepted.
    fn transparent(&self) -> bool {
        self.listeners.contains_key(&Listen::Transparent) || self.transparent_conns > 0
    }

    fn handle_tcp(&mut self, now: Instant, ip: &IpRepr, bytes: &[u8], verify: bool, wire: u64) {
        let seg = match TcpRepr::parse(ip.src, ip.dst, bytes, verify) {
            Ok(s) => s,
            Err(e) => {
                self.count_wire_error(e);
                return;
            }
        };
        self.counters.segments_in += wire;
        if seg.src_port == 0 || seg.dst_port == 0 || !is_unicast(ip.src) {
            self.counters.drop_malformed += 1;
            return;
        }
        let tuple = FourTuple {
            local: SocketAddr::new(ip.dst, seg.dst_port),
            remote: SocketAddr::new(ip.src, seg.src_port),
        };
        if seg.flags.rst() {
            self.counters.resets_received += 1;
        }
        let on = self.listener_for(tuple.local);
        let opts = if self.config.mptcp.enabled && on != Listen::Transparent {
            MptcpOptions::parse(&seg)
        } else {
            MptcpOptions::default()
        };
        self.counters.mptcp_malformed_options += opts.malformed as u64;
        if let Some((id, sub)) = self.conns.lookup(&tuple) {
            let slot = self
                .conns
                .get_mut(id)
                .expect("tuple map points at a live connection");
            let fx = slot
                .conn
                .on_segment(now, sub, &seg, &opts, &mut self.challenge_quota);
            self.apply_effects(id, now, fx, true);
            self.touch(id);
            return;
        }
        let answer = self
            .time_wait
            .on_segment(now, &tuple, &seg, &mut self.challenge_quota);
        if answer == time_wait::Answer::Handled {
            return;
        }
        let f = seg.flags;
        let bare_syn = f.syn() && !f.ack() && !f.rst() && !f.fin();
        if bare_syn {
            if let Some(j) = join::syn_join(opts.join) {
                self.accept_join(now, tuple, &seg, j);
                return;
            }
            if let Some(listener) = self.listeners.get(&on) {
                let pending = listener.pending;
                match self.admit(ip.src, true) {
                    Ok(()) => {}
                    Err(Refusal::Source) => {
                        // A clear refusal: the source holds its share.
                        self.refused(Refusal::Source);
                        self.refuse_syn(tuple, &seg);
                        return;
                    }
                    Err(why) => {
                        // Full (connections or memory): dropped, so that the
                        // client tries again, perhaps once there is room.
                        self.refused(why);
                        return;
                    }
                }
                if self.wants_cookie(pending) {
                    self.send_cookie(now, tuple, &seg, opts.capable);
                } else if listener.pending >= self.config.backlog {
                    self.counters.drop_backlog_full += 1;
                } else {
                    self.accept_syn(now, tuple, &seg, opts.capable);
                }
                return;
            }
        }
        let listening = self.listeners.contains_key(&on);
        let cookie_ack = f.ack() && !f.syn() && !f.rst() && listening;
        if cookie_ack {
            match self.accept_cookie(now, tuple, &seg, &opts) {
                CookieAck::Accepted | CookieAck::Dropped => return,
                CookieAck::NoCookies
                | CookieAck::Failed
                | CookieAck::Unverified
                | CookieAck::Refused => {}
            }
        }
        if on == Listen::Transparent && !listening {
            // Not ours to answer: we speak for others' addresses only while
            // a transparent listener takes them.
            self.counters.drop_not_for_us += 1;
            return;
        }
        self.counters.drop_no_listener += 1;
        if !f.rst() {
            // RFC 9293 §3.10.7.1: a segment to a closed port gets a RST.
            let reply = if f.ack() {
                RstReply {
                    seq: seg.ack,
                    ack: None,
                }
            } else {
                RstReply {
                    seq: SeqNumber(0),
                    ack: Some(seg.seq + seg_len(&seg)),
                }
            };
            self.queue_rsts(vec![RstOut {
                tuple,
                reply,
                extra: OptionBytes::default(),
            }]);
        }
    }

    /// Refuse a SYN with a RST (rate-limited as every answer).
    fn refuse_syn(&mut self, tuple: FourTuple, syn: &TcpRepr<'_>) {
        let reply = RstReply {
            seq: SeqNumber(0),
            ack: Some(syn.seq + seg_len(syn)),
        };
        self.queue_rsts(vec![RstOut {
            tuple,
            reply,
            extra: OptionBytes::default(),
        }]);
    }

    fn accept_syn(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        syn: &TcpRepr<'_>,
        cap: Option<MpCapable>,
    ) {
        let tcb = self.passive_tcb(now, tuple, syn);
        let settings = self.mptcp_settings();
        let version = cap.and_then(|c| DataLevel::syn_version(&c, &settings));
        let conn = match (cap, version) {
            (Some(c), Some(v)) => {
                let key = self.new_key(v);
                Connection::mptcp(tcb, DataLevel::server(&c, v, key, &settings))
            }
            _ => Connection::tcp(tcb),
        };
        let on = self.listener_for(tuple.local);
        if let Some(l) = self.listeners.get_mut(&on) {
            l.pending += 1;
        }
        let id = self.insert(tuple, conn, Some(on), false);
        self.count_source(id, tuple.remote.ip());
        self.touch(id);
    }

    /// A SYN with MP_JOIN (RFC 8684 §3.2): a new subflow of the connection whose
    /// token it names, if that connection takes one more; else RST with MP_TCPRST.
    fn accept_join(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        syn: &TcpRepr<'_>,
        (token, remote_nonce, remote_id, remote_backup): (u32, u32, u8, bool),
    ) {
        let target = self.tokens.get(&token).copied().filter(|&id| {
            self.conns
                .get_mut(id)
                .is_some_and(|s| s.conn.passive_join_allowed(now))
        });
        let admitted = self.admit(tuple.remote.ip(), false);
        if admitted == Err(Refusal::Memory) {
            self.refused(Refusal::Memory);
        }
        let Some(id) = target.filter(|_| admitted.is_ok()) else {
            // One answer for every refusal (unknown token, limits, a spent
            // budget, a connection not ready): nothing tells a token scanner
            // which tokens exist.
            self.counters.mptcp_join_rejected += 1;
            let reply = RstReply {
                seq: SeqNumber(0),
                ack: Some(syn.seq + seg_len(syn)),
            };
            let extra = options::reset_options(rst_reason::MPTCP_ERROR, None);
            self.queue_rsts(vec![RstOut {
                tuple,
                reply,
                extra,
            }]);
            return;
        };
        let tcb = self.passive_tcb(now, tuple, syn);
        let local_nonce = self.rng.nonces.next_u32();
        let (local_id, flags) = self.local_endpoint(id, tuple.local.ip());
        let req = JoinRequest {
            remote_nonce,
            remote_id,
            remote_backup,
            local_nonce,
            local_id,
            local_backup: flags.backup,
        };
        let Some(slot) = self.conns.get_mut(id) else {
            return;
        };
        if let Some(sub) = slot.conn.add_passive_join(now, tcb, &req) {
            self.conns.alias(id, tuple, sub);
        }
        self.touch(id);
    }
}
