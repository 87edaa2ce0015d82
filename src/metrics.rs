//! `--metrics`: the daemon's state in the Prometheus text exposition format
//! (version 0.0.4), computed at scrape time from the same [`Status`] that
//! `mptun status` shows (`control_glue::snapshot`), so the two never disagree.
//!
//! The encoding (names, `_total` suffixes, escaping of help texts and label
//! values, number formatting) is `prometheus-client`'s; this module only
//! says which families there are and what goes into them, through a
//! [`Collector`] over one snapshot.
//!
//! What is exported, with the prefix `mptun_`:
//! - every stack counter of `status.counters` as a counter `mptun_NAME_total`
//!   (help from [`COUNTER_HELP`], naming Linux's counter where one matches);
//! - connections by state and protocol (`mptun_connections{state,protocol}`);
//! - per local address (`status.paths`, plus the stack's addresses that carry
//!   nothing, at zero) and per live subflow: RTT, cwnd, bytes, backup;
//! - memory, TIME_WAIT records, relays, each engine thread, services,
//!   uptime and `mptun_build_info`.
//!
//! Never exported: MPTCP keys (the snapshot's keys are withheld before
//! encoding) and tokens (not needed; they identify connections on the
//! wire). Addresses are, so the listener belongs on a local or firewalled
//! address.

use crate::status::{ConnectionStatus, PathStatus, Status, SubflowStatus};
use mptun_stack::State;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Subflows that get series of their own, at most: with `--max-connections`
/// in the tens of thousands, one series per subflow and family would swamp a
/// Prometheus server. The per-address families cover all of them; the rest
/// is counted in `mptun_subflow_series_omitted`.
pub const MAX_SUBFLOW_SERIES: usize = 1000;

/// Help texts of the stack counters (`status::counters_from` and the
/// daemon's own `shard_*`), with Linux's name where one counts the same
/// event (MPTcpExt and TcpExt of `nstat`). A counter missing here is still
/// exported, with a generic help (a unit test keeps the list complete).
pub const COUNTER_HELP: &[(&str, &str)] = &[
    ("packets_in", "IP packets the engines took in (from the TUN or from another thread)."),
    ("packets_out", "IP packets the engines sent."),
    ("segments_in", "TCP segments received (Linux: Tcp InSegs)."),
    (
        "super_packets_in",
        "TCP super-packets the kernel merged (GRO) and the engine took whole; their segments count in segments_in.",
    ),
    ("segments_out", "TCP segments sent (Linux: Tcp OutSegs)."),
    (
        "super_packets_out",
        "TCP super-packets the engine wrote for the kernel to segment (TSO); their segments count in segments_out.",
    ),
    ("retransmitted_segments", "TCP segments retransmitted (Linux: Tcp RetransSegs)."),
    ("retransmitted_bytes", "TCP payload bytes retransmitted."),
    ("resets_sent", "RST segments sent (Linux: Tcp OutRsts)."),
    ("resets_received", "RST segments received and accepted."),
    ("connections_accepted", "Connections accepted by listeners (Linux: Tcp PassiveOpens)."),
    ("connections_opened", "Connections opened by mptun (Linux: Tcp ActiveOpens)."),
    ("drop_malformed", "Packets dropped: malformed IP or TCP headers."),
    ("drop_bad_checksum", "Packets dropped: bad checksum (Linux: Tcp InCsumErrors)."),
    ("drop_not_for_us", "Packets dropped: destination is not one of the stack's addresses."),
    ("drop_no_listener", "SYNs to a port without a listener (answered with RST)."),
    ("drop_invalid_option", "Segments dropped: invalid TCP option."),
    ("drop_backlog_full", "SYNs dropped: the listener's backlog was full (Linux: TcpExt ListenOverflows)."),
    ("syncookies_sent", "SYN cookies sent (Linux: TcpExt SyncookiesSent)."),
    ("syncookies_recv", "Valid SYN cookies received (Linux: TcpExt SyncookiesRecv)."),
    ("syncookies_failed", "Invalid SYN cookies received, answered with RST (Linux: TcpExt SyncookiesFailed, which also counts syncookies_dropped)."),
    ("syncookies_dropped", "ACKs whose SYN cookie did not verify but could be current (a segment that overtook or outlived the third ACK), dropped unanswered."),
    ("drop_out_of_window", "Segments dropped: outside the receive window."),
    ("drop_paws", "Segments dropped by PAWS (Linux: TcpExt PAWSEstab)."),
    ("drop_ooo_overflow", "Out-of-order segments dropped: reassembly queue full."),
    ("drop_ooo_memory", "Out-of-order segments dropped: memory budget exhausted."),
    ("drop_memory", "SYNs and MP_JOINs refused: memory budget exhausted."),
    ("memory_pressure", "Times the stack came under memory pressure (buffers stopped growing)."),
    ("time_wait_overflow", "Connections that skipped TIME_WAIT: record table full (Linux: TcpExt TCPTimeWaitOverflow)."),
    ("drop_source_limit", "SYNs refused: the source had --max-conns-per-source connections."),
    ("challenge_acks", "Challenge ACKs sent (RFC 5961; Linux: TcpExt TCPChallengeACK)."),
    ("challenge_acks_limited", "Challenge ACKs withheld by the rate limit."),
    ("oow_acks_limited", "Duplicate ACKs to out-of-window segments withheld by the rate limit."),
    ("drop_unsupported_protocol", "Packets dropped: IP protocol other than TCP and ICMP."),
    ("drop_rst_queue_full", "RSTs not sent: their queue was full."),
    ("path_events_dropped", "Path events not published: the engine's event queue was full."),
    ("drop_rst_rate_limited", "RSTs not sent: rate limit."),
    ("drop_own_source", "Packets dropped: source is one of the stack's own addresses (spoofed)."),
    ("icmp_echo_requests", "ICMP/ICMPv6 echo requests received."),
    ("icmp_echo_replies_sent", "ICMP/ICMPv6 echo replies sent."),
    ("icmp_unreachable", "Destination unreachable errors that failed a connection being opened."),
    ("drop_icmp_other", "ICMP/ICMPv6 messages ignored."),
    ("drop_icmp_queue_full", "Echo requests dropped: too many replies waiting."),
    ("drop_icmp_rate_limited", "Echo requests dropped: rate limit."),
    ("drop_icmp_too_big", "Echo requests dropped: the reply would not fit the MTU."),
    ("mptcp_connections", "MPTCP connections closed that ran MPTCP to the end."),
    ("mptcp_fallbacks", "MPTCP connections that fell back to plain TCP (Linux: MPTcpExt MPCapableFallbackACK, MPCapableFallbackSYNACK, DssFallback)."),
    ("mptcp_checksum_errors", "DSS checksum failures (Linux: MPTcpExt DataCsumErr)."),
    ("mptcp_mp_fail_tx", "MP_FAIL options sent (Linux: MPTcpExt MPFailTx)."),
    ("mptcp_mp_fail_rx", "MP_FAIL options received (Linux: MPTcpExt MPFailRx)."),
    ("mptcp_infinite_map_tx", "Infinite mappings sent (Linux: MPTcpExt InfiniteMapTx)."),
    ("mptcp_infinite_map_rx", "Infinite mappings received (Linux: MPTcpExt InfiniteMapRx)."),
    ("mptcp_join_syn_rx", "MP_JOIN SYNs accepted (Linux: MPTcpExt MPJoinSynRx)."),
    ("mptcp_join_rejected", "MP_JOINs refused: unknown token or limits (Linux: MPTcpExt MPJoinRejected, MPJoinNoTokenFound)."),
    ("mptcp_joins_established", "Joined subflows established, either role (Linux: MPTcpExt MPJoinAckRx as server, MPJoinSynAckRx as client)."),
    ("mptcp_join_hmac_failures", "MP_JOIN HMAC failures (Linux: MPTcpExt MPJoinAckHMacFailure, MPJoinSynAckHMacFailure)."),
    ("mptcp_reinjected_bytes", "Bytes sent again on another subflow after theirs died or stalled."),
    ("mptcp_data_retransmits", "Data-level retransmission timeouts that sent data again."),
    ("mptcp_window_probes", "Probes of a peer's closed connection-level window (data waiting, none outstanding)."),
    ("mptcp_mp_prio_tx", "MP_PRIO options sent (Linux: MPTcpExt MPPrioTx)."),
    ("mptcp_mp_prio_rx", "MP_PRIO options received (Linux: MPTcpExt MPPrioRx)."),
    ("mptcp_add_addr_tx", "ADD_ADDR options sent, repeats included (Linux: MPTcpExt AddAddrTx)."),
    ("mptcp_add_addr_rx", "Valid ADD_ADDR options received (Linux: MPTcpExt AddAddr)."),
    ("mptcp_add_addr_echo_rx", "Echoes of our ADD_ADDR received (Linux: MPTcpExt EchoAdd)."),
    ("mptcp_add_addr_hmac_failures", "ADD_ADDR options dropped for a wrong HMAC."),
    ("mptcp_add_addr_ignored", "v0 ADD_ADDR options ignored."),
    ("mptcp_add_addr_refused", "Announced addresses the path manager would not join."),
    ("mptcp_reinject_overflow", "Reinjection ranges dropped from a full queue."),
    ("mptcp_ofo_dropped_bytes", "Out-of-order bytes the connection level could not keep, dropped for the peer to send again."),
    ("mptcp_unmapped_held", "Data without a DSS mapping after mappings were seen, held while the peer was asked whether it fell back."),
    ("mptcp_unmapped_dropped", "Such data dropped: the peer answered with MPTCP options (a copy stripped of its options)."),
    ("mptcp_rm_addr_tx", "REMOVE_ADDR options sent (Linux: MPTcpExt RmAddrTx)."),
    ("mptcp_rm_addr_rx", "REMOVE_ADDR options received (Linux: MPTcpExt RmAddr)."),
    ("mptcp_v0_retries", "Connections opened again with MPTCP v0 after v1 got plain TCP."),
    ("mptcp_bad_data_acks", "DATA_ACKs beyond what was sent, ignored."),
    ("mptcp_bad_mappings", "DSS mappings beyond the window or conflicting, ignored."),
    ("mptcp_malformed_options", "MPTCP options that did not decode, ignored."),
    ("shard_forwarded", "Packets handed to the engine thread that owns their connection."),
    ("shard_forward_dropped", "Packets for another engine thread dropped: its queue was full."),
];

/// The whole exposition of one snapshot, in the Prometheus text format.
pub fn render(status: &Status) -> String {
    let mut status = status.clone();
    // Belt and braces: nothing below reads them, and nothing ever may.
    status.redact_keys();
    let mut registry = Registry::with_prefix("mptun");
    registry.register_collector(Box::new(StatusCollector(status)));
    let mut out = String::new();
    // Writing to a String cannot fail; an encoder error would be a bug in
    // a family here, and an empty scrape is better than a panic.
    if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
        tracing::warn!("metrics: encoding failed");
        out.clear();
    }
    out
}

/// One snapshot, encoded family by family at scrape time.
#[derive(Debug)]
struct StatusCollector(Status);

type Labels = Vec<(&'static str, String)>;

impl Collector for StatusCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = &self.0;
        build_info(&mut enc)?;
        gauge(
            &mut enc,
            "uptime",
            "Seconds since the daemon started.",
            Some(&Unit::Seconds),
            s.uptime_s,
        )?;
        stack_counters(&mut enc, &s.counters)?;
        connections(&mut enc, &s.connections)?;
        paths(&mut enc, s)?;
        subflows(&mut enc, &s.connections)?;
        memory(&mut enc, s)?;
        relays(&mut enc, s)?;
        shards(&mut enc, s)?;
        services(&mut enc, s)
    }
}

fn build_info(enc: &mut DescriptorEncoder) -> fmt::Result {
    let labels: Labels = vec![("version", env!("CARGO_PKG_VERSION").to_string())];
    enc.encode_descriptor(
        "build",
        "The mptun version running (always 1).",
        None,
        MetricType::Info,
    )?
    .encode_info(&labels)
}

fn gauge<V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: V,
) -> fmt::Result {
    enc.encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn counter<V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: V,
) -> fmt::Result {
    enc.encode_descriptor(name, help, unit, MetricType::Counter)?
        .encode_counter::<NoLabelSet, V, f64>(&v, None::<&Exemplar<NoLabelSet, f64>>)
}

/// A family of gauges, one series per row.
fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: &[(L, V)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, v) in rows {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

/// A family of counters, one series per row.
fn counters<L: EncodeLabelSet, V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: &[(L, V)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(labels)?
            .encode_counter::<NoLabelSet, V, f64>(v, None::<&Exemplar<NoLabelSet, f64>>)?;
    }
    Ok(())
}

/// A metric name's characters (`[a-zA-Z_][a-zA-Z0-9_]*`): counter names
/// are the engine's field names, but a scrape must stay parseable whatever
/// they become.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn stack_counters(enc: &mut DescriptorEncoder, map: &BTreeMap<String, u64>) -> fmt::Result {
    for (name, &v) in map {
        if !valid_name(name) {
            continue;
        }
        let generic;
        let help = match COUNTER_HELP.iter().find(|(n, _)| n == name) {
            Some((_, h)) => *h,
            None => {
                generic = format!("The stack counter {name} (see `mptun status`).");
                &generic
            }
        };
        counter(enc, name, help, None, v)?;
    }
    Ok(())
}

/// Every TCP state, so that each (state, protocol) series exists from the
/// start (at 0) instead of appearing with the first such connection.
const STATES: [State; 11] = [
    State::Closed,
    State::Listen,
    State::SynSent,
    State::SynReceived,
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
];

/// `mptcp` for a connection running MPTCP, `tcp` for plain TCP and for an
/// MPTCP connection that fell back (it runs plain TCP now).
fn protocol(c: &ConnectionStatus) -> &'static str {
    match &c.mptcp {
        Some(m) if !m.fallback => "mptcp",
        _ => "tcp",
    }
}

fn connections(enc: &mut DescriptorEncoder, conns: &[ConnectionStatus]) -> fmt::Result {
    let mut by: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for st in STATES {
        for p in ["tcp", "mptcp"] {
            by.insert((st.as_str().to_string(), p), 0);
        }
    }
    for c in conns {
        *by.entry((c.state.clone(), protocol(c))).or_insert(0) += 1;
    }
    let rows: Vec<(Labels, u64)> = by
        .into_iter()
        .map(|((state, p), n)| (vec![("state", state), ("protocol", p.to_string())], n))
        .collect();
    gauges(
        enc,
        "connections",
        "Open connections by TCP state (an MPTCP connection's data-level state) and protocol (mptcp, or tcp: plain TCP and MPTCP fallen back to it).",
        None,
        &rows,
    )?;
    let fallback = conns
        .iter()
        .filter(|c| c.mptcp.as_ref().is_some_and(|m| m.fallback))
        .count() as u64;
    gauge(
        enc,
        "mptcp_fallback_connections",
        "Open MPTCP connections that fell back to plain TCP (counted as tcp in mptun_connections).",
        None,
        fallback,
    )
}

/// Per local address: `status.paths`, and the stack's addresses without a
/// subflow at zero (a WAN that carries nothing must show, not vanish).
fn path_rows(s: &Status) -> Vec<PathStatus> {
    let mut by: BTreeMap<IpAddr, PathStatus> =
        s.paths.iter().map(|p| (p.local, p.clone())).collect();
    for a in &s.addresses {
        let ip = a.to_canonical();
        by.entry(ip).or_insert_with(|| PathStatus::idle(ip));
    }
    by.into_values().collect()
}

fn paths(enc: &mut DescriptorEncoder, s: &Status) -> fmt::Result {
    let rows = path_rows(s);
    let label = |p: &PathStatus| -> Labels { vec![("local", p.local.to_string())] };
    let col = |f: fn(&PathStatus) -> u64| -> Vec<(Labels, u64)> {
        rows.iter().map(|p| (label(p), f(p))).collect()
    };
    gauges(
        enc,
        "path_subflows",
        "Subflows (and plain TCP connections) open on a local address.",
        None,
        &col(|p| p.subflows),
    )?;
    gauges(
        enc,
        "path_subflows_established",
        "Of mptun_path_subflows, those ESTABLISHED.",
        None,
        &col(|p| p.established),
    )?;
    gauges(
        enc,
        "path_subflows_backup",
        "Of mptun_path_subflows, those marked backup.",
        None,
        &col(|p| p.backup),
    )?;
    // Sums over the subflows open now: they fall when a subflow closes, so
    // they are gauges (the stack keeps no per-address totals).
    let bytes_note = "summed over the subflows open now (falls when one closes).";
    gauges(
        enc,
        "path_sent",
        &format!("Bytes sent from a local address, {bytes_note}"),
        Some(&Unit::Bytes),
        &col(|p| p.bytes_sent),
    )?;
    gauges(
        enc,
        "path_received",
        &format!("Bytes received on a local address, {bytes_note}"),
        Some(&Unit::Bytes),
        &col(|p| p.bytes_received),
    )?;
    gauges(
        enc,
        "path_retransmitted",
        &format!("Bytes retransmitted from a local address, {bytes_note}"),
        Some(&Unit::Bytes),
        &col(|p| p.retransmitted_bytes),
    )?;

    // RTT and cwnd of a path: over its established subflows.
    let mut cwnd: BTreeMap<IpAddr, u64> = rows.iter().map(|p| (p.local, 0)).collect();
    let mut rtt: BTreeMap<IpAddr, (u64, u64)> = BTreeMap::new();
    for sf in s.connections.iter().flat_map(|c| &c.subflows) {
        if sf.state != "ESTABLISHED" {
            continue;
        }
        let ip = sf.local.ip().to_canonical();
        *cwnd.entry(ip).or_insert(0) += sf.cwnd;
        if let Some(us) = sf.rtt_us {
            let e = rtt.entry(ip).or_insert((0, 0));
            e.0 += us;
            e.1 += 1;
        }
    }
    let cwnd: Vec<(Labels, u64)> = cwnd
        .into_iter()
        .map(|(ip, v)| (vec![("local", ip.to_string())], v))
        .collect();
    gauges(
        enc,
        "path_cwnd",
        "Congestion windows of a local address's established subflows, added up.",
        Some(&Unit::Bytes),
        &cwnd,
    )?;
    let rtt: Vec<(Labels, f64)> = rtt
        .into_iter()
        .map(|(ip, (sum, n))| (vec![("local", ip.to_string())], sum as f64 / n as f64 / 1e6))
        .collect();
    gauges(
        enc,
        "path_rtt",
        "Mean smoothed RTT of a local address's established subflows with an RTT sample.",
        Some(&Unit::Seconds),
        &rtt,
    )
}

fn subflows(enc: &mut DescriptorEncoder, conns: &[ConnectionStatus]) -> fmt::Result {
    let live: Vec<(&ConnectionStatus, &SubflowStatus)> = conns
        .iter()
        .flat_map(|c| c.subflows.iter().map(move |s| (c, s)))
        .filter(|(_, s)| s.state != State::Closed.as_str())
        .collect();
    let omitted = live.len().saturating_sub(MAX_SUBFLOW_SERIES) as u64;
    let shown = &live[..live.len().min(MAX_SUBFLOW_SERIES)];
    let label = |c: &ConnectionStatus, s: &SubflowStatus| -> Labels {
        vec![
            ("conn", c.id.to_string()),
            ("shard", c.shard.to_string()),
            ("local", s.local.to_string()),
            ("remote", s.remote.to_string()),
        ]
    };
    let col = |f: fn(&SubflowStatus) -> u64| -> Vec<(Labels, u64)> {
        shown.iter().map(|(c, s)| (label(c, s), f(s))).collect()
    };
    let rtt: Vec<(Labels, f64)> = shown
        .iter()
        .filter_map(|(c, s)| Some((label(c, s), s.rtt_us? as f64 / 1e6)))
        .collect();
    gauges(
        enc,
        "subflow_rtt",
        "Smoothed RTT of a subflow (absent before its first sample).",
        Some(&Unit::Seconds),
        &rtt,
    )?;
    gauges(
        enc,
        "subflow_cwnd",
        "Congestion window of a subflow.",
        Some(&Unit::Bytes),
        &col(|s| s.cwnd),
    )?;
    gauges(
        enc,
        "subflow_backup",
        "1 if the subflow is an MPTCP backup, else 0.",
        None,
        &col(|s| u64::from(s.backup)),
    )?;
    counters(
        enc,
        "subflow_sent",
        "Bytes a subflow sent.",
        Some(&Unit::Bytes),
        &col(|s| s.bytes_sent),
    )?;
    counters(
        enc,
        "subflow_received",
        "Bytes a subflow received.",
        Some(&Unit::Bytes),
        &col(|s| s.bytes_received),
    )?;
    counters(
        enc,
        "subflow_retransmitted",
        "Bytes a subflow retransmitted.",
        Some(&Unit::Bytes),
        &col(|s| s.retransmitted_bytes),
    )?;
    gauge(
        enc,
        "subflow_series_omitted",
        "Live subflows beyond the first 1000, which get no mptun_subflow_* series (the mptun_path_* families include them).",
        None,
        omitted,
    )
}

fn memory(enc: &mut DescriptorEncoder, s: &Status) -> fmt::Result {
    let m = &s.memory;
    gauge(
        enc,
        "memory_used",
        "Heap memory the connections hold (buffers and records).",
        Some(&Unit::Bytes),
        m.used_bytes,
    )?;
    gauge(
        enc,
        "memory_peak",
        "Each engine thread's peak of the heap memory its connections held, summed: the most ever held at once is at most this.",
        Some(&Unit::Bytes),
        m.peak_bytes,
    )?;
    gauge(
        enc,
        "memory_budget",
        "The memory budget (--max-memory).",
        Some(&Unit::Bytes),
        m.budget_bytes,
    )?;
    let level: u64 = match m.pressure.as_str() {
        "high" => 1,
        "exhausted" => 2,
        _ => 0,
    };
    gauge(enc, "memory_pressure_level", "0 none; 1 high (past half the budget: buffers do not grow); 2 exhausted (new connections refused).", None, level)?;
    gauge(
        enc,
        "time_wait_records",
        "Closed connections waiting out TIME_WAIT as small records.",
        None,
        m.time_wait,
    )
}

fn relays(enc: &mut DescriptorEncoder, s: &Status) -> fmt::Result {
    let r = &s.relays;
    gauge(
        enc,
        "relays_active",
        "Relayed connections in progress (--forward, --local-forward, --socks5, --transparent).",
        None,
        r.active.len() as u64,
    )?;
    gauge(
        enc,
        "relays_limit",
        "The most relayed connections at a time (--max-relays).",
        None,
        r.limit,
    )?;
    counter(
        enc,
        "relays_refused",
        "Clients refused because --max-relays relays were in progress.",
        None,
        r.refused,
    )
}

fn shards(enc: &mut DescriptorEncoder, s: &Status) -> fmt::Result {
    let col = |f: fn(&crate::status::ShardStatus) -> u64| -> Vec<(Labels, u64)> {
        s.shards
            .iter()
            .map(|t| (vec![("shard", t.index.to_string())], f(t)))
            .collect()
    };
    gauges(
        enc,
        "shard_connections",
        "Connections an engine thread holds now.",
        None,
        &col(|t| t.connections),
    )?;
    counters(
        enc,
        "shard_connections_accepted",
        "Connections an engine thread accepted.",
        None,
        &col(|t| t.connections_accepted),
    )?;
    counters(
        enc,
        "shard_connections_opened",
        "Connections an engine thread opened.",
        None,
        &col(|t| t.connections_opened),
    )?;
    counters(
        enc,
        "shard_packets_in",
        "Packets an engine thread took in.",
        None,
        &col(|t| t.packets_in),
    )?;
    counters(
        enc,
        "shard_packets_out",
        "Packets an engine thread sent.",
        None,
        &col(|t| t.packets_out),
    )
}

fn services(enc: &mut DescriptorEncoder, s: &Status) -> fmt::Result {
    let col = |f: fn(&crate::status::ServiceStatus) -> u64| -> Vec<(Labels, u64)> {
        s.services
            .iter()
            .map(|v| {
                (
                    vec![("kind", v.kind.clone()), ("port", v.port.to_string())],
                    f(v),
                )
            })
            .collect()
    };
    counters(
        enc,
        "service_connections",
        "Connections a service handled.",
        None,
        &col(|v| v.connections),
    )?;
    counters(
        enc,
        "service",
        "Payload bytes a service handled.",
        Some(&Unit::Bytes),
        &col(|v| v.bytes),
    )
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
