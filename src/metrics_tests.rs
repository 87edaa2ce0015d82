//! Tests of the exposition (`metrics.rs`): it parses as the text format,
//! holds every family with the snapshot's values, and no keys.

use super::*;
use crate::status::{
    counters_from, paths_from, BuffersStatus, MemoryStatus, MptcpStatus, RelayStatus, RelaysStatus,
    ServiceStatus, ShardStatus,
};
use mptun_stack::endpoint::Counters;
use std::collections::{BTreeMap, BTreeSet};

const LOCAL_KEY: &str = "0123456789abcdef";
const REMOTE_KEY: &str = "fedcba9876543210";

fn subflow(local: &str, remote: &str, state: &str, backup: bool, sent: u64) -> SubflowStatus {
    SubflowStatus {
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        state: state.into(),
        rtt_us: Some(1500),
        cwnd: 14480,
        backup,
        addr_id: 0,
        remote_addr_id: 0,
        bytes_sent: sent,
        bytes_received: 2 * sent,
        retransmitted_bytes: 7,
        retransmitted_segments: 1,
        rto_us: 200_000,
        ssthresh: 65535,
        snd_wnd: 64240,
        mss: 1448,
        sack: true,
        timestamps: true,
        congestion_control: "cubic".into(),
    }
}

fn conn(
    id: u64,
    shard: u32,
    state: &str,
    mptcp: Option<MptcpStatus>,
    subflows: Vec<SubflowStatus>,
) -> ConnectionStatus {
    ConnectionStatus {
        id,
        shard,
        local: subflows[0].local,
        remote: subflows[0].remote,
        state: state.into(),
        bytes_sent: 1,
        bytes_received: 2,
        buffers: BuffersStatus {
            send_queued: 0,
            send_capacity: 65536,
            recv_queued: 0,
            recv_capacity: 131072,
            memory: 4242,
        },
        mptcp,
        subflows,
        unused_paths: Vec::new(),
    }
}

fn mptcp(fallback: bool) -> MptcpStatus {
    MptcpStatus {
        version: 1,
        local_key: Some(LOCAL_KEY.into()),
        remote_key: Some(REMOTE_KEY.into()),
        local_token: "aabbccdd".into(),
        remote_token: Some("11223344".into()),
        checksum: false,
        fallback,
        fallback_reason: None,
        announced: vec![],
        remote_addrs: vec![],
        scheduler: "minrtt".into(),
        peer_denies_join_initial: false,
    }
}

/// Two threads; an MPTCP connection over two paths (one subflow backup), a
/// fallen-back one, a plain TCP one; a relay; an address without subflows.
pub(crate) fn sample() -> Status {
    let connections = vec![
        conn(
            3,
            0,
            "ESTABLISHED",
            Some(mptcp(false)),
            vec![
                subflow("10.10.1.2:7", "10.1.0.1:41234", "ESTABLISHED", false, 1000),
                subflow("10.10.2.2:7", "10.2.0.1:50000", "ESTABLISHED", true, 500),
            ],
        ),
        conn(
            4,
            1,
            "ESTABLISHED",
            Some(mptcp(true)),
            vec![subflow(
                "10.10.1.2:7",
                "10.1.0.1:41235",
                "ESTABLISHED",
                false,
                10,
            )],
        ),
        conn(
            5,
            1,
            "CLOSE_WAIT",
            None,
            vec![subflow(
                "[fd10:1::2]:9",
                "[fd01::1]:40000",
                "CLOSE_WAIT",
                false,
                20,
            )],
        ),
    ];
    let mut counters = counters_from(&Counters {
        packets_in: 100,
        packets_out: 90,
        mptcp_joins_established: 1,
        mptcp_join_syn_rx: 1,
        ..Counters::default()
    });
    counters.insert("shard_forwarded".into(), 4);
    counters.insert("shard_forward_dropped".into(), 0);
    Status {
        tun: "mpt0".into(),
        addresses: vec![
            "10.10.1.2".parse().unwrap(),
            "10.10.2.2".parse().unwrap(),
            "10.10.3.2".parse().unwrap(),
            "fd10:1::2".parse().unwrap(),
        ],
        uptime_s: 12.5,
        paths: paths_from(&connections),
        connections,
        services: vec![ServiceStatus {
            kind: "echo".into(),
            port: 7,
            connections: 3,
            bytes: 1530,
            sha256: None,
        }],
        counters,
        keys_redacted: false,
        memory: MemoryStatus {
            used_bytes: 12_726,
            peak_bytes: 40_960,
            budget_bytes: 1 << 30,
            pressure: "high".into(),
            time_wait: 2,
        },
        relays: RelaysStatus {
            limit: 16384,
            refused: 1,
            active: vec![RelayStatus {
                service: "forward".into(),
                client: "10.1.0.1:1234".parse().unwrap(),
                target: "127.0.0.1:80".into(),
                upstream: None,
                upstream_subflows: 0,
                bytes_up: 1,
                bytes_down: 2,
                age_s: 1.0,
            }],
        },
        shards: vec![
            ShardStatus {
                index: 0,
                connections: 1,
                connections_accepted: 1,
                connections_opened: 0,
                packets_in: 60,
                packets_out: 50,
            },
            ShardStatus {
                index: 1,
                connections: 2,
                connections_accepted: 2,
                connections_opened: 0,
                packets_in: 40,
                packets_out: 40,
            },
        ],
        limits: Default::default(),
        reload: None,
    }
}

/// A series: its name and labels.
type Series = (String, BTreeMap<String, String>);

/// A strict reading of the text format 0.0.4: `# HELP` then `# TYPE` once
/// per family, each sample after its family's TYPE and named after it (with
/// `_total` for counters), labels `name="value"` with `\\`, `\"` and `\n`
/// escapes, a float value, no series twice. Returns the samples and each
/// family's type.
fn parse(text: &str) -> (BTreeMap<Series, f64>, BTreeMap<String, String>) {
    let mut samples = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<(String, String)> = None;
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(line);
            assert!(!help.is_empty(), "empty help: {line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect(line);
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(["counter", "gauge"].contains(&ty), "{line}");
            assert!(
                types.insert(name.into(), ty.into()).is_none(),
                "TYPE twice: {line}"
            );
            current = Some((name.into(), ty.into()));
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (family, _) = current.as_ref().expect("a sample before any TYPE");
        let name_end = line.find(['{', ' ']).expect(line);
        let name = &line[..name_end];
        assert!(valid_name(name), "bad name: {line}");
        assert_eq!(name, family, "sample outside its family: {line}");
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find('=').expect(line);
                let key = &r[..eq];
                assert!(valid_name(key), "bad label name in {line}");
                r = r[eq + 1..].strip_prefix('"').expect(line);
                let mut value = String::new();
                let mut chars = r.char_indices();
                let end = loop {
                    match chars.next().expect(line) {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next().expect(line).1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        (_, c) => value.push(c),
                    }
                };
                r = &r[end + 1..];
                r = r.strip_prefix(',').unwrap_or(r);
                assert!(labels.insert(key.to_string(), value).is_none(), "{line}");
            }
            rest = r;
        }
        let value: f64 = rest.strip_prefix(' ').expect(line).parse().expect(line);
        assert!(
            samples.insert((name.to_string(), labels), value).is_none(),
            "series twice: {line}"
        );
    }
    (samples, types)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn value(samples: &BTreeMap<Series, f64>, name: &str, l: &[(&str, &str)]) -> f64 {
    *samples
        .get(&(name.to_string(), labels(l)))
        .unwrap_or_else(|| panic!("no {name}{l:?}"))
}

#[test]
fn the_exposition_parses_and_holds_every_family() {
    let s = sample();
    let text = render(&s);
    let (samples, types) = parse(&text);

    // Every stack counter, as a counter.
    for (name, v) in &s.counters {
        let family = format!("mptun_{name}_total");
        assert_eq!(
            types.get(&family).map(String::as_str),
            Some("counter"),
            "{family}"
        );
        assert_eq!(value(&samples, &family, &[]), *v as f64, "{family}");
    }
    assert_eq!(
        value(&samples, "mptun_mptcp_joins_established_total", &[]),
        1.0
    );
    assert!(
        text.contains("MPJoinSynRx"),
        "the Linux name is in the help"
    );

    let up = value(&samples, "mptun_uptime_seconds", &[]);
    assert_eq!(up, 12.5);
    assert_eq!(
        value(
            &samples,
            "mptun_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Connections by state and protocol, zeros included.
    let c = |state, p| {
        value(
            &samples,
            "mptun_connections",
            &[("state", state), ("protocol", p)],
        )
    };
    assert_eq!(c("ESTABLISHED", "mptcp"), 1.0);
    assert_eq!(c("ESTABLISHED", "tcp"), 1.0, "the fallen-back one");
    assert_eq!(c("CLOSE_WAIT", "tcp"), 1.0);
    assert_eq!(c("SYN_SENT", "mptcp"), 0.0);
    assert_eq!(
        value(&samples, "mptun_mptcp_fallback_connections", &[]),
        1.0
    );

    // Per path: status.paths, plus the idle address at zero.
    let p = |name: &str, ip: &str| value(&samples, name, &[("local", ip)]);
    for path in &s.paths {
        let ip = path.local.to_string();
        assert_eq!(p("mptun_path_subflows", &ip), path.subflows as f64);
        assert_eq!(
            p("mptun_path_subflows_established", &ip),
            path.established as f64
        );
        assert_eq!(p("mptun_path_subflows_backup", &ip), path.backup as f64);
        assert_eq!(p("mptun_path_sent_bytes", &ip), path.bytes_sent as f64);
        assert_eq!(
            p("mptun_path_received_bytes", &ip),
            path.bytes_received as f64
        );
        assert_eq!(
            p("mptun_path_retransmitted_bytes", &ip),
            path.retransmitted_bytes as f64
        );
    }
    assert_eq!(p("mptun_path_sent_bytes", "10.10.1.2"), 1010.0);
    assert_eq!(p("mptun_path_subflows_backup", "10.10.2.2"), 1.0);
    assert_eq!(p("mptun_path_subflows", "10.10.3.2"), 0.0);
    assert_eq!(p("mptun_path_cwnd_bytes", "10.10.1.2"), 2.0 * 14480.0);
    assert_eq!(p("mptun_path_rtt_seconds", "10.10.1.2"), 0.0015);

    // Per subflow, labelled.
    let sf = [
        ("conn", "3"),
        ("shard", "0"),
        ("local", "10.10.2.2:7"),
        ("remote", "10.2.0.1:50000"),
    ];
    assert_eq!(value(&samples, "mptun_subflow_rtt_seconds", &sf), 0.0015);
    assert_eq!(value(&samples, "mptun_subflow_cwnd_bytes", &sf), 14480.0);
    assert_eq!(value(&samples, "mptun_subflow_backup", &sf), 1.0);
    assert_eq!(
        value(&samples, "mptun_subflow_sent_bytes_total", &sf),
        500.0
    );
    assert_eq!(
        value(&samples, "mptun_subflow_received_bytes_total", &sf),
        1000.0
    );
    assert_eq!(
        value(&samples, "mptun_subflow_retransmitted_bytes_total", &sf),
        7.0
    );
    let v6 = [
        ("conn", "5"),
        ("shard", "1"),
        ("local", "[fd10:1::2]:9"),
        ("remote", "[fd01::1]:40000"),
    ];
    assert_eq!(value(&samples, "mptun_subflow_sent_bytes_total", &v6), 20.0);
    assert_eq!(value(&samples, "mptun_subflow_series_omitted", &[]), 0.0);

    // The rest.
    assert_eq!(value(&samples, "mptun_memory_used_bytes", &[]), 12_726.0);
    assert_eq!(value(&samples, "mptun_memory_peak_bytes", &[]), 40_960.0);
    assert_eq!(
        value(&samples, "mptun_memory_budget_bytes", &[]),
        (1u64 << 30) as f64
    );
    assert_eq!(value(&samples, "mptun_memory_pressure_level", &[]), 1.0);
    assert_eq!(value(&samples, "mptun_time_wait_records", &[]), 2.0);
    assert_eq!(value(&samples, "mptun_relays_active", &[]), 1.0);
    assert_eq!(value(&samples, "mptun_relays_limit", &[]), 16384.0);
    assert_eq!(value(&samples, "mptun_relays_refused_total", &[]), 1.0);
    assert_eq!(
        value(&samples, "mptun_shard_packets_in_total", &[("shard", "1")]),
        40.0
    );
    assert_eq!(
        value(&samples, "mptun_shard_connections", &[("shard", "1")]),
        2.0
    );
    let svc = [("kind", "echo"), ("port", "7")];
    assert_eq!(
        value(&samples, "mptun_service_connections_total", &svc),
        3.0
    );
    assert_eq!(value(&samples, "mptun_service_bytes_total", &svc), 1530.0);
}

#[test]
fn keys_never_appear_and_tokens_are_not_exported() {
    let text = render(&sample());
    for secret in [LOCAL_KEY, REMOTE_KEY, "aabbccdd", "11223344"] {
        assert!(!text.contains(secret), "{secret} in the exposition");
    }
}

#[test]
fn every_counter_has_its_help() {
    let mut names: Vec<String> = counters_from(&Counters::default()).into_keys().collect();
    names.extend(["shard_forwarded".into(), "shard_forward_dropped".into()]);
    for n in &names {
        assert!(
            COUNTER_HELP.iter().any(|(k, _)| k == n),
            "{n} has no help text"
        );
    }
    for (k, _) in COUNTER_HELP {
        assert!(
            names.iter().any(|n| n == k),
            "help for {k}, which is no counter"
        );
    }
}

#[test]
fn an_unknown_or_odd_counter_keeps_the_scrape_parseable() {
    let mut s = sample();
    s.counters.insert("future_counter".into(), 5);
    s.counters.insert("bad name\n{".into(), 1);
    let (samples, _) = parse(&render(&s));
    assert_eq!(value(&samples, "mptun_future_counter_total", &[]), 5.0);
}

#[test]
fn subflow_series_are_bounded() {
    let mut s = sample();
    let many: Vec<SubflowStatus> = (0..MAX_SUBFLOW_SERIES + 5)
        .map(|i| {
            subflow(
                "10.10.1.2:7",
                &format!("10.1.{}.{}:1000", i / 250, i % 250 + 1),
                "ESTABLISHED",
                false,
                1,
            )
        })
        .collect();
    s.connections = vec![conn(9, 0, "ESTABLISHED", None, many)];
    s.paths = paths_from(&s.connections);
    let (samples, _) = parse(&render(&s));
    let n = samples
        .keys()
        .filter(|(name, _)| name == "mptun_subflow_cwnd_bytes")
        .count();
    assert_eq!(n, MAX_SUBFLOW_SERIES);
    assert_eq!(value(&samples, "mptun_subflow_series_omitted", &[]), 5.0);
    assert_eq!(
        value(&samples, "mptun_path_subflows", &[("local", "10.10.1.2")]),
        (MAX_SUBFLOW_SERIES + 5) as f64
    );
}

#[test]
fn label_values_are_escaped() {
    let mut s = sample();
    s.services[0].kind = "we\"ird\\kind\n".into();
    let (samples, _) = parse(&render(&s));
    assert_eq!(
        value(
            &samples,
            "mptun_service_connections_total",
            &[("kind", "we\"ird\\kind\n"), ("port", "7")]
        ),
        3.0
    );
}

#[test]
fn an_empty_daemon_exposes_the_families_too() {
    let s = Status {
        tun: "mpt0".into(),
        addresses: vec!["10.10.1.2".parse().unwrap()],
        uptime_s: 0.0,
        connections: vec![],
        services: vec![],
        counters: counters_from(&Counters::default()),
        keys_redacted: false,
        memory: MemoryStatus::default(),
        paths: vec![],
        relays: RelaysStatus::default(),
        shards: vec![],
        limits: Default::default(),
        reload: None,
    };
    let text = render(&s);
    let (samples, types) = parse(&text);
    assert_eq!(
        types.get("mptun_subflow_rtt_seconds").map(String::as_str),
        Some("gauge")
    );
    assert_eq!(
        value(
            &samples,
            "mptun_connections",
            &[("state", "ESTABLISHED"), ("protocol", "tcp")]
        ),
        0.0
    );
    assert_eq!(
        value(&samples, "mptun_path_subflows", &[("local", "10.10.1.2")]),
        0.0
    );
}
