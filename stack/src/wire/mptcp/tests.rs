//! Round trips, known byte layouts and rejected lengths of every MPTCP option.

use super::*;
use crate::wire::{emit_packet, IpRepr, SeqNumber, TcpFlags};
use proptest::prelude::*;

const SYN: ParseCtx = ParseCtx {
    syn: true,
    ack: false,
    has_payload: false,
};
const SYNACK: ParseCtx = ParseCtx {
    syn: true,
    ack: true,
    has_payload: false,
};
const ACK: ParseCtx = ParseCtx {
    syn: false,
    ack: true,
    has_payload: false,
};
const DATA: ParseCtx = ParseCtx {
    syn: false,
    ack: true,
    has_payload: true,
};
const ALL_CTX: [ParseCtx; 4] = [SYN, SYNACK, ACK, DATA];

/// Emit, check the length bookkeeping, parse back in `ctx` and compare.
fn rt(opt: MptcpOption<'_>, ctx: ParseCtx) -> Vec<u8> {
    let mut buf = [0xeeu8; 64];
    let n = opt.emit(&mut buf).unwrap();
    assert_eq!(n, opt.encoded_len(), "{opt:?}");
    assert!(n <= MAX_OPTION_DATA_LEN);
    assert_eq!(buf[n], 0xee, "wrote past encoded_len");
    assert_eq!(buf[0] >> 4, opt.subtype());
    assert_eq!(MptcpOption::parse(&buf[..n], ctx), Ok(opt), "{opt:?}");
    assert_eq!(opt.encode().unwrap().as_slice(), &buf[..n]);
    let mut short = [0u8; 64];
    assert_eq!(
        opt.emit(&mut short[..n - 1]),
        Err(MptcpError::BufferTooSmall)
    );
    buf[..n].to_vec()
}

fn parse(data: &[u8], ctx: ParseCtx) -> Result<MptcpOption<'_>, MptcpError> {
    MptcpOption::parse(data, ctx)
}

fn cap(
    version: MptcpVersion,
    sk: Option<u64>,
    rk: Option<u64>,
    dl: Option<u16>,
    cs: Option<u16>,
) -> MptcpOption<'static> {
    MptcpOption::MpCapable(MpCapable {
        version,
        flags: MpCapableFlags(MpCapableFlags::A | MpCapableFlags::H),
        sender_key: sk,
        receiver_key: rk,
        data_len: dl,
        checksum: cs,
    })
}

const KA: u64 = 0x0102_0304_0506_0708;
const KB: u64 = 0x1112_1314_1516_1718;

#[test]
fn mptcp_mp_capable_roundtrip_all_forms() {
    use MptcpVersion::{V0, V1};
    let v1 = [
        (cap(V1, None, None, None, None), SYN, 4),
        (cap(V1, Some(KA), None, None, None), SYNACK, 12),
        (cap(V1, Some(KA), Some(KB), None, None), ACK, 20),
        (cap(V1, Some(KA), Some(KB), Some(1400), None), DATA, 22),
        (cap(V1, Some(KA), Some(KB), Some(7), Some(0xbeef)), DATA, 24),
        (cap(V0, Some(KA), None, None, None), SYN, 12),
        (cap(V0, Some(KB), None, None, None), SYNACK, 12),
        (cap(V0, Some(KA), Some(KB), None, None), ACK, 20),
        (cap(V0, Some(KA), Some(KB), None, None), DATA, 20),
    ];
    for (opt, ctx, len) in v1 {
        let bytes = rt(opt, ctx);
        assert_eq!(bytes.len() + 2, len);
        // Segment types whose lengths do not include this one reject it.
        let nibble = bytes[0] & 0x0f;
        for other in ALL_CTX {
            if !allowed(0, nibble, other).unwrap().contains(&len) {
                assert_eq!(
                    parse(&bytes, other),
                    Err(MptcpError::BadLength { subtype: 0, len }),
                    "{opt:?} in {other:?}"
                );
            }
        }
    }
    // Flag byte kept raw, including reserved and B bits.
    for flags in [0u8, 0xff, MpCapableFlags::C | MpCapableFlags::H] {
        rt(
            MptcpOption::MpCapable(MpCapable {
                version: V1,
                flags: MpCapableFlags(flags),
                sender_key: Some(u64::MAX),
                receiver_key: None,
                data_len: None,
                checksum: None,
            }),
            SYNACK,
        );
    }
    // Field combinations no form has.
    for bad in [
        cap(V1, None, Some(KA), None, None),
        cap(V1, Some(KA), None, Some(1), None),
        cap(V1, Some(KA), Some(KB), None, Some(1)),
        cap(V0, None, None, None, None),
        cap(V0, Some(KA), Some(KB), Some(1), None),
    ] {
        assert!(matches!(
            bad.emit(&mut [0; 40]),
            Err(MptcpError::InvalidRepr(_))
        ));
    }
}

#[test]
fn mptcp_mp_capable_versions() {
    // A SYN may offer a higher version: read as a v1 offer.
    let o = parse(&[0x05, 0x81], SYN).unwrap();
    assert!(matches!(o, MptcpOption::MpCapable(c) if c.version == MptcpVersion::V1));
    // Anywhere else, version 2+ is refused.
    let mut d = [0u8; 22];
    d[0] = 0x02;
    assert_eq!(
        parse(&d[..10], SYNACK),
        Err(MptcpError::BadVersion { version: 2 })
    );
    assert_eq!(
        parse(&d[..18], ACK),
        Err(MptcpError::BadVersion { version: 2 })
    );
    assert_eq!(
        parse(&d[..20], DATA),
        Err(MptcpError::BadVersion { version: 2 })
    );
    // Length is checked first.
    assert_eq!(
        parse(&d[..12], ACK),
        Err(MptcpError::BadLength {
            subtype: 0,
            len: 14
        })
    );
}

#[test]
fn mptcp_mp_join_roundtrip() {
    for backup in [false, true] {
        let b = rt(
            MptcpOption::MpJoin(MpJoin::Syn {
                backup,
                addr_id: 3,
                token: 0x6684_0dda,
                nonce: 0x0102_0304,
            }),
            SYN,
        );
        assert_eq!(b.len() + 2, 12);
        let b = rt(
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup,
                addr_id: 255,
                hmac: 0x65ee_0968_33f6_61d9,
                nonce: 0x0506_0708,
            }),
            SYNACK,
        );
        assert_eq!(b.len() + 2, 16);
    }
    let mut hmac = [0u8; 20];
    for (i, h) in hmac.iter_mut().enumerate() {
        *h = 0xa0 + i as u8;
    }
    for ctx in [ACK, DATA] {
        let b = rt(MptcpOption::MpJoin(MpJoin::Ack { hmac }), ctx);
        assert_eq!(b.len() + 2, 24);
    }
}

/// Every DSS flag combination (A, a, M, m, F; a and m also without A/M) with
/// and without checksum: hand-built bytes parse to the expected value, and the
/// value round-trips.
#[test]
fn mptcp_dss_all_flag_combinations() {
    for flags in 0u8..32 {
        for csum in [false, true] {
            let a = flags & 0x01 != 0;
            let a64 = flags & 0x02 != 0;
            let m = flags & 0x04 != 0;
            let m64 = flags & 0x08 != 0;
            let f = flags & 0x10 != 0;
            let ack_val: u64 = if a64 {
                0x8877_6655_4433_2211
            } else {
                0x4433_2211
            };
            let dsn: u64 = if m64 {
                0xf5a1_01d3_d29d_6f73
            } else {
                0xd29d_6f73
            };
            let mut d = vec![0x20, flags];
            if a {
                if a64 {
                    d.extend_from_slice(&ack_val.to_be_bytes());
                } else {
                    d.extend_from_slice(&(ack_val as u32).to_be_bytes());
                }
            }
            if m {
                if m64 {
                    d.extend_from_slice(&dsn.to_be_bytes());
                } else {
                    d.extend_from_slice(&(dsn as u32).to_be_bytes());
                }
                d.extend_from_slice(&1u32.to_be_bytes());
                d.extend_from_slice(&1400u16.to_be_bytes());
            }
            if csum {
                d.extend_from_slice(&0x01aeu16.to_be_bytes());
            }
            let len = d.len() + 2;
            if csum && !m {
                // A checksum without a mapping is a bad length.
                assert_eq!(
                    parse(&d, ACK),
                    Err(MptcpError::BadLength { subtype: 2, len })
                );
                continue;
            }
            let want = Dss {
                data_fin: f,
                data_ack: a.then_some(DataAck {
                    value: ack_val,
                    is_64bit: a64,
                }),
                mapping: m.then_some(Mapping {
                    dsn,
                    dsn_64bit: m64,
                    ssn: 1,
                    data_len: 1400,
                    checksum: csum.then_some(0x01ae),
                }),
            };
            assert_eq!(
                len,
                4 + [0, 4, 0, 8][usize::from(flags & 3)]
                    + if m {
                        if m64 {
                            14
                        } else {
                            10
                        }
                    } else {
                        0
                    }
                    + if csum { 2 } else { 0 }
            );
            for ctx in ALL_CTX {
                assert_eq!(parse(&d, ctx), Ok(MptcpOption::Dss(want)), "{flags:#x}");
            }
            let out = rt(MptcpOption::Dss(want), DATA);
            // Re-emitted bytes equal the input except meaningless a/m bits.
            let mut expect = d.clone();
            expect[1] &= !(if a { 0 } else { 0x02 } | if m { 0 } else { 0x08 });
            assert_eq!(out, expect, "{flags:#x} csum {csum}");
            // One byte more or less is rejected (except the checksum step).
            for bad in [len - 1, len + 1, len + 3] {
                let mut b = d.clone();
                b.resize(bad - 2, 0);
                assert_eq!(
                    parse(&b, ACK),
                    Err(MptcpError::BadLength {
                        subtype: 2,
                        len: bad
                    }),
                    "{flags:#x} len {bad}"
                );
            }
        }
    }
    // Reserved bits in byte 2 and the flag byte are ignored.
    assert_eq!(
        parse(&[0x2f, 0xe0], ACK),
        Ok(MptcpOption::Dss(Dss {
            data_fin: false,
            data_ack: None,
            mapping: None
        }))
    );
    assert_eq!(
        parse(&[0x20], ACK),
        Err(MptcpError::BadLength { subtype: 2, len: 3 })
    );
}

#[test]
fn mptcp_dss_32bit_truncates_and_expands() {
    let d = Dss {
        data_fin: false,
        data_ack: Some(DataAck {
            value: 0x1_0000_0005,
            is_64bit: false,
        }),
        mapping: Some(Mapping {
            dsn: 0xabcd_ffff_fff0,
            dsn_64bit: false,
            ssn: 9,
            data_len: 4,
            checksum: None,
        }),
    };
    let enc = MptcpOption::Dss(d).encode().unwrap();
    let MptcpOption::Dss(p) = parse(enc.as_slice(), ACK).unwrap() else {
        panic!()
    };
    let (ack, map) = (p.data_ack.unwrap(), p.mapping.unwrap());
    assert_eq!(ack.value, 5);
    assert_eq!(map.dsn, 0xffff_fff0);
    assert_eq!(ack.expand(0x1_0000_0000), 0x1_0000_0005);
    assert_eq!(ack.expand(0xffff_fff0), 0x1_0000_0005);
    assert_eq!(map.expand_dsn(0xabce_0000_0010), 0xabcd_ffff_fff0);
    assert_eq!(expand_seq32(7, 0x5_0000_0007), 0x5_0000_0007);
    assert_eq!(expand_seq32(0, u64::MAX), 0);
    assert_eq!(expand_seq32(u32::MAX, 0), u64::MAX);
    let full = DataAck {
        value: 42,
        is_64bit: true,
    };
    assert_eq!(full.expand(1 << 40), 42);
}

fn v4() -> IpAddr {
    Ipv4Addr::new(10, 0, 2, 1).into()
}
fn v6() -> IpAddr {
    "dead:beef:2::1".parse::<Ipv6Addr>().unwrap().into()
}

#[test]
fn mptcp_add_addr_roundtrip() {
    for addr in [v4(), v6()] {
        for port in [None, Some(10100)] {
            for echo in [false, true] {
                let hmac = (!echo).then_some(0x014b_3007_310c_639c);
                let o = MptcpOption::AddAddr(AddAddr::V1 {
                    echo,
                    addr_id: 7,
                    addr,
                    port,
                    hmac,
                });
                let len = rt(o, ACK).len() + 2;
                let want = match (addr.is_ipv4(), echo) {
                    (true, false) => 16,
                    (true, true) => 8,
                    (false, false) => 28,
                    (false, true) => 20,
                } + if port.is_some() { 2 } else { 0 };
                assert_eq!(len, want);
                // echo and hmac must agree.
                let bad = MptcpOption::AddAddr(AddAddr::V1 {
                    echo: !echo,
                    addr_id: 7,
                    addr,
                    port,
                    hmac,
                });
                assert!(matches!(
                    bad.emit(&mut [0; 40]),
                    Err(MptcpError::InvalidRepr(_))
                ));
            }
            let o = MptcpOption::AddAddr(AddAddr::V0 {
                addr_id: 2,
                addr,
                port,
            });
            let b = rt(o, SYNACK);
            let want = if addr.is_ipv4() { 8 } else { 20 } + if port.is_some() { 2 } else { 0 };
            assert_eq!(b.len() + 2, want);
            assert_eq!(b[0], 0x30 | if addr.is_ipv4() { 4 } else { 6 });
            // The IP-version nibble must agree with the length.
            let mut flipped = b.clone();
            flipped[0] ^= 4 ^ 6;
            assert_eq!(parse(&flipped, ACK), Err(MptcpError::BadAddressFamily));
        }
    }
}

#[test]
fn mptcp_remove_addr_prio_fail_fastclose_rst_roundtrip() {
    let ids: Vec<u8> = (1..=MAX_REMOVE_ADDR_IDS as u8).collect();
    for n in 1..=MAX_REMOVE_ADDR_IDS {
        let r = RemoveAddr::new(&ids[..n]).unwrap();
        assert_eq!(r.as_slice(), &ids[..n]);
        assert_eq!(rt(MptcpOption::RemoveAddr(r), ACK).len() + 2, 3 + n);
    }
    assert!(RemoveAddr::new(&[]).is_none());
    assert!(RemoveAddr::new(&[0; MAX_REMOVE_ADDR_IDS + 1]).is_none());
    let mut r = RemoveAddr::new(&[9]).unwrap();
    assert!(r.push(10));
    assert_eq!(r, RemoveAddr::new(&[9, 10]).unwrap());
    let mut full = RemoveAddr::new(&ids).unwrap();
    assert!(!full.push(1));
    assert_eq!(full.len(), MAX_REMOVE_ADDR_IDS);

    for backup in [false, true] {
        for addr_id in [None, Some(0), Some(200)] {
            let b = rt(MptcpOption::MpPrio(MpPrio { backup, addr_id }), ACK);
            assert_eq!(b.len() + 2, if addr_id.is_some() { 4 } else { 3 });
        }
    }
    for dsn in [0, 1, u64::MAX, 0xf5a1_01d3_d29d_6f77] {
        assert_eq!(rt(MptcpOption::MpFail(MpFail { dsn }), ACK).len(), 10);
        let fc = MptcpOption::FastClose(FastClose { receiver_key: dsn });
        assert_eq!(rt(fc, ACK).len(), 10);
    }
    for flags in 0..16 {
        for reason in [0, 1, 6, 255] {
            assert_eq!(
                rt(MptcpOption::TcpRst(TcpRst { flags, reason }), ACK).len(),
                2
            );
        }
    }
    assert!(matches!(
        MptcpOption::TcpRst(TcpRst {
            flags: 0x10,
            reason: 0
        })
        .emit(&mut [0; 4]),
        Err(MptcpError::InvalidRepr(_))
    ));
}

#[test]
fn mptcp_unknown_subtypes() {
    for st in 9u8..16 {
        let data = [st << 4 | 3, 1, 2, 3];
        let o = parse(&data, ACK).unwrap();
        assert_eq!(
            o,
            MptcpOption::Unknown {
                subtype: st,
                data: &data
            }
        );
        assert_eq!(o.subtype(), st);
        assert_eq!(rt(o, ACK), data);
    }
    let bad = MptcpOption::Unknown {
        subtype: 9,
        data: &[0xa0],
    };
    assert!(matches!(
        bad.emit(&mut [0; 4]),
        Err(MptcpError::InvalidRepr(_))
    ));
    let bad = MptcpOption::Unknown {
        subtype: 2,
        data: &[0x20, 0],
    };
    assert!(matches!(
        bad.emit(&mut [0; 4]),
        Err(MptcpError::InvalidRepr(_))
    ));
    let long = [0x90u8; 39];
    let bad = MptcpOption::Unknown {
        subtype: 9,
        data: &long,
    };
    assert!(matches!(
        bad.emit(&mut [0; 64]),
        Err(MptcpError::InvalidRepr(_))
    ));
    assert_eq!(parse(&[], ACK), Err(MptcpError::Truncated));
}

/// Allowed option lengths (kind and length included) per subtype, first-byte
/// low nibble and segment, written out from docs/PROTOCOL.md; `None` for DSS,
/// whose lengths depend on the flags (tested above).
fn allowed(st: u8, nibble: u8, ctx: ParseCtx) -> Option<&'static [usize]> {
    Some(match st {
        0 => match (nibble, ctx.syn, ctx.ack, ctx.has_payload) {
            (1, true, false, _) => &[4],
            (1, true, true, _) => &[12],
            (1, false, _, false) => &[20],
            (1, false, _, true) => &[22, 24],
            (0, true, _, _) => &[12],
            (0, false, _, _) => &[20],
            _ => unreachable!(),
        },
        1 => match (ctx.syn, ctx.ack) {
            (true, false) => &[12],
            (true, true) => &[16],
            _ => &[24],
        },
        2 => return None,
        3 => match nibble {
            0 => &[16, 18, 28, 30],
            1 => &[8, 10, 20, 22],
            // v0: the other family's lengths are BadAddressFamily.
            4 => &[8, 10, 20, 22],
            6 => &[8, 10, 20, 22],
            _ => unreachable!(),
        },
        4 => &[
            4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
            27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
        ],
        5 => &[3, 4],
        6 | 7 => &[12],
        8 => &[4],
        _ => unreachable!(),
    })
}

#[test]
fn mptcp_every_bad_length_rejected() {
    let mut checked = 0;
    for st in 0u8..=8 {
        let nibbles: &[u8] = match st {
            0 => &[0, 1],
            3 => &[0, 1, 4, 6],
            _ => &[0, 1],
        };
        for &nib in nibbles {
            for ctx in ALL_CTX {
                let Some(ok) = allowed(st, nib, ctx) else {
                    continue;
                };
                for len in 3..=MAX_OPTION_DATA_LEN + 2 {
                    let mut d = vec![0x5au8; len - 2];
                    d[0] = st << 4 | nib;
                    let r = parse(&d, ctx);
                    if ok.contains(&len) {
                        if st == 3 && nib >= 4 {
                            let v6_len = len >= 20;
                            if v6_len != (nib == 6) {
                                assert_eq!(r, Err(MptcpError::BadAddressFamily));
                                continue;
                            }
                        }
                        assert!(r.is_ok(), "st {st} nib {nib} {ctx:?} len {len}: {r:?}");
                    } else {
                        assert_eq!(
                            r,
                            Err(MptcpError::BadLength { subtype: st, len }),
                            "st {st} nib {nib} {ctx:?} len {len}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 500);
}

/// Bytes laid out by hand from docs/PROTOCOL.md, one or more per subtype
/// (kind 0x1e and length included, then stripped for the codec).
#[test]
fn mptcp_known_bytes() {
    fn check(wire: &[u8], ctx: ParseCtx, want: MptcpOption<'_>) {
        assert_eq!(wire[0], TCPOPT_MPTCP);
        assert_eq!(usize::from(wire[1]), wire.len());
        assert_eq!(parse(&wire[2..], ctx), Ok(want), "{wire:02x?}");
        assert_eq!(want.encode().unwrap().as_slice(), &wire[2..]);
    }
    // v1 MP_CAPABLE SYN (A, H), SYN/ACK (H) with key A, data form with checksum.
    check(
        &[0x1e, 0x04, 0x01, 0x81],
        SYN,
        cap(MptcpVersion::V1, None, None, None, None),
    );
    check(
        &[0x1e, 0x0c, 0x01, 0x01, 1, 2, 3, 4, 5, 6, 7, 8],
        SYNACK,
        MptcpOption::MpCapable(MpCapable {
            version: MptcpVersion::V1,
            flags: MpCapableFlags(MpCapableFlags::H),
            sender_key: Some(KA),
            receiver_key: None,
            data_len: None,
            checksum: None,
        }),
    );
    check(
        &[
            0x1e, 0x18, 0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
            0x17, 0x18, 0x00, 0x04, 0x01, 0xae,
        ],
        DATA,
        cap(MptcpVersion::V1, Some(KA), Some(KB), Some(4), Some(0x01ae)),
    );
    // v0 MP_CAPABLE SYN carries the key.
    check(
        &[0x1e, 0x0c, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8],
        SYN,
        cap(MptcpVersion::V0, Some(KA), None, None, None),
    );
    // MP_JOIN SYN: backup, id 2, token(B) v1, nonce R_A.
    check(
        &[0x1e, 0x0c, 0x11, 0x02, 0xcc, 0xad, 0x45, 0xac, 1, 2, 3, 4],
        SYN,
        MptcpOption::MpJoin(MpJoin::Syn {
            backup: true,
            addr_id: 2,
            token: 0xccad_45ac,
            nonce: 0x0102_0304,
        }),
    );
    // MP_JOIN SYN/ACK: B's truncated HMAC and R_B.
    check(
        &[
            0x1e, 0x10, 0x10, 0x00, 0x65, 0xee, 0x09, 0x68, 0x33, 0xf6, 0x61, 0xd9, 5, 6, 7, 8,
        ],
        SYNACK,
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup: false,
            addr_id: 0,
            hmac: 0x65ee_0968_33f6_61d9,
            nonce: 0x0506_0708,
        }),
    );
    // MP_JOIN third ACK with A's HMAC.
    let h: [u8; 20] = [
        0x24, 0xbd, 0xde, 0x08, 0xdf, 0xc5, 0x5c, 0x9b, 0x41, 0x85, 0xe1, 0xb5, 0x6b, 0x2f, 0x89,
        0xdb, 0x24, 0x1a, 0xc0, 0xf2,
    ];
    let mut w = vec![0x1e, 24, 0x10, 0x00];
    w.extend_from_slice(&h);
    check(&w, ACK, MptcpOption::MpJoin(MpJoin::Ack { hmac: h }));
    // DSS: 64-bit DSN f5a101d3d29d6f73, SSN 1, DLL 4, checksum 0x01ae, 32-bit ack.
    check(
        &[
            0x1e, 0x18, 0x20, 0x0d, 0x53, 0x5b, 0xee, 0xa4, 0xf5, 0xa1, 0x01, 0xd3, 0xd2, 0x9d,
            0x6f, 0x73, 0, 0, 0, 1, 0, 4, 0x01, 0xae,
        ],
        DATA,
        MptcpOption::Dss(Dss {
            data_fin: false,
            data_ack: Some(DataAck {
                value: 0x535b_eea4,
                is_64bit: false,
            }),
            mapping: Some(Mapping {
                dsn: 0xf5a1_01d3_d29d_6f73,
                dsn_64bit: true,
                ssn: 1,
                data_len: 4,
                checksum: Some(0x01ae),
            }),
        }),
    );
    // DSS: DATA_FIN-only mapping, 64-bit ack, no checksum.
    check(
        &[
            0x1e, 0x1a, 0x20, 0x1f, 0x53, 0x5b, 0xee, 0xa3, 0x8e, 0x08, 0x7c, 0x8f, 0xf5, 0xa1,
            0x01, 0xd3, 0xd2, 0x9d, 0x6f, 0x77, 0, 0, 0, 0, 0, 1,
        ][..],
        ACK,
        MptcpOption::Dss(Dss {
            data_fin: true,
            data_ack: Some(DataAck {
                value: 0x535b_eea3_8e08_7c8f,
                is_64bit: true,
            }),
            mapping: Some(Mapping {
                dsn: 0xf5a1_01d3_d29d_6f77,
                dsn_64bit: true,
                ssn: 0,
                data_len: 1,
                checksum: None,
            }),
        }),
    );
    // ADD_ADDR v1 from docs/PROTOCOL.md's vectors: id 1, 10.0.2.1, with and without port.
    check(
        &[
            0x1e, 0x10, 0x30, 0x01, 10, 0, 2, 1, 0x01, 0x4b, 0x30, 0x07, 0x31, 0x0c, 0x63, 0x9c,
        ],
        ACK,
        MptcpOption::AddAddr(AddAddr::V1 {
            echo: false,
            addr_id: 1,
            addr: v4(),
            port: None,
            hmac: Some(0x014b_3007_310c_639c),
        }),
    );
    check(
        &[
            0x1e, 0x12, 0x30, 0x01, 10, 0, 2, 1, 0x27, 0x74, 0x20, 0xdd, 0xbe, 0x46, 0x68, 0xd5,
            0xc1, 0xbd,
        ],
        ACK,
        MptcpOption::AddAddr(AddAddr::V1 {
            echo: false,
            addr_id: 1,
            addr: v4(),
            port: Some(10100),
            hmac: Some(0x20dd_be46_68d5_c1bd),
        }),
    );
    // ADD_ADDR v1 echo of an IPv6 address, id 2.
    let mut w = vec![0x1e, 20, 0x31, 0x02];
    w.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    check(
        &w,
        ACK,
        MptcpOption::AddAddr(AddAddr::V1 {
            echo: true,
            addr_id: 2,
            addr: v6(),
            port: None,
            hmac: None,
        }),
    );
    // ADD_ADDR v0, IPv4 with port.
    check(
        &[0x1e, 0x0a, 0x34, 0x03, 10, 0, 2, 1, 0x1f, 0x90],
        ACK,
        MptcpOption::AddAddr(AddAddr::V0 {
            addr_id: 3,
            addr: v4(),
            port: Some(8080),
        }),
    );
    check(
        &[0x1e, 0x06, 0x40, 1, 2, 3],
        ACK,
        MptcpOption::RemoveAddr(RemoveAddr::new(&[1, 2, 3]).unwrap()),
    );
    check(
        &[0x1e, 0x03, 0x51],
        ACK,
        MptcpOption::MpPrio(MpPrio {
            backup: true,
            addr_id: None,
        }),
    );
    check(
        &[0x1e, 0x04, 0x50, 0x07],
        ACK,
        MptcpOption::MpPrio(MpPrio {
            backup: false,
            addr_id: Some(7),
        }),
    );
    check(
        &[
            0x1e, 0x0c, 0x60, 0x00, 0xf5, 0xa1, 0x01, 0xd3, 0xd2, 0x9d, 0x6f, 0x73,
        ],
        ACK,
        MptcpOption::MpFail(MpFail {
            dsn: 0xf5a1_01d3_d29d_6f73,
        }),
    );
    check(
        &[
            0x1e, 0x0c, 0x70, 0x00, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
        ],
        ACK,
        MptcpOption::FastClose(FastClose { receiver_key: KB }),
    );
    check(
        &[0x1e, 0x04, 0x81, 0x02],
        ACK,
        MptcpOption::TcpRst(TcpRst {
            flags: TcpRst::FLAG_T,
            reason: TcpRst::REASON_LACK_OF_RESOURCES,
        }),
    );
}

#[test]
fn mptcp_end_to_end_through_tcp_repr() {
    let capable = cap(MptcpVersion::V1, Some(KA), Some(KB), Some(5), None);
    let dss = MptcpOption::Dss(Dss {
        data_fin: false,
        data_ack: Some(DataAck {
            value: 0x535b_eea3_8e08_7c8f,
            is_64bit: true,
        }),
        mapping: Some(Mapping {
            dsn: 0xf5a1_01d3_d29d_6f73,
            dsn_64bit: true,
            ssn: 1,
            data_len: 5,
            checksum: None,
        }),
    });
    let (e1, e2) = (capable.encode().unwrap(), dss.encode().unwrap());
    let mut repr = TcpRepr {
        seq: SeqNumber(1000),
        ack: SeqNumber(2000),
        flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
        window: 500,
        ..TcpRepr::new(40000, 80)
    };
    repr.unknown.push(TCPOPT_MPTCP, e1.as_slice());
    repr.unknown.push(253, &[1, 2]);
    repr.unknown.push(TCPOPT_MPTCP, e2.as_slice());
    // MP_CAPABLE (22) + kind 253 (4) + DSS with 64-bit ack and DSN (26) = 52 > 40:
    // the budget forces a DSS without the DATA_ACK and no other option.
    assert!(repr.options_len() > 40);
    let dss = MptcpOption::Dss(Dss {
        data_fin: false,
        data_ack: None,
        mapping: match dss {
            MptcpOption::Dss(d) => d.mapping,
            _ => unreachable!(),
        },
    });
    let e2 = dss.encode().unwrap();
    let mut repr2 = TcpRepr {
        unknown: Default::default(),
        ..repr
    };
    repr2.unknown.push(TCPOPT_MPTCP, e1.as_slice());
    repr2.unknown.push(TCPOPT_MPTCP, e2.as_slice());
    assert_eq!(
        repr2.options_len(),
        2 + e1.as_slice().len() + 2 + dss.encoded_len()
    );
    assert!(repr2.options_len() <= 40);

    let src: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let dst: IpAddr = Ipv4Addr::new(198, 51, 100, 7).into();
    let mut buf = [0u8; 200];
    let n = emit_packet(src, dst, 64, &repr2, &[b"hello"], &mut buf).unwrap();
    let (_, seg) = IpRepr::parse(&buf[..n]).unwrap();
    let parsed = TcpRepr::parse(src, dst, seg, true).unwrap();
    assert_eq!(parsed.payload, b"hello");
    let ctx = ParseCtx::from_repr(&parsed);
    assert_eq!(ctx, DATA);
    let opts: Vec<_> = mptcp_options(&parsed)
        .map(|d| MptcpOption::parse(d, ctx))
        .collect();
    assert_eq!(opts, vec![Ok(capable), Ok(dss)]);

    // Other kinds are skipped by the iterator.
    let kinds: Vec<_> = mptcp_options(&repr).map(|d| d.len()).collect();
    assert_eq!(kinds, vec![e1.as_slice().len(), 24]);
}

#[test]
fn mptcp_error_display() {
    assert_eq!(
        MptcpError::BadLength { subtype: 2, len: 7 }.to_string(),
        "MPTCP option subtype 2 with bad length 7"
    );
    for e in [
        MptcpError::Truncated,
        MptcpError::BadVersion { version: 3 },
        MptcpError::BadAddressFamily,
        MptcpError::BufferTooSmall,
        MptcpError::InvalidRepr("x"),
    ] {
        assert!(!e.to_string().is_empty());
    }
}

/// The DSS decoder as first written (lengths tabulated from the flags, then
/// fields read at offsets): the oracle for [`Dss::parse`].
fn dss_oracle(data: &[u8]) -> Result<Dss, MptcpError> {
    fn be(d: &[u8], off: usize, n: usize) -> u64 {
        d.get(off..off + n)
            .map_or(0, |s| s.iter().fold(0, |v, &b| v << 8 | u64::from(b)))
    }
    let len = data.len() + 2;
    let bad = MptcpError::BadLength {
        subtype: subtype::DSS,
        len,
    };
    let Some(&flags) = data.get(1) else {
        return Err(bad);
    };
    let has_ack = flags & Dss::FLAG_A != 0;
    let ack64 = flags & Dss::FLAG_ACK64 != 0;
    let has_map = flags & Dss::FLAG_M != 0;
    let dsn64 = flags & Dss::FLAG_DSN64 != 0;
    let ack_len = match (has_ack, ack64) {
        (false, _) => 0,
        (true, false) => 4,
        (true, true) => 8,
    };
    let dsn_len = if dsn64 { 8 } else { 4 };
    let map_len = if has_map { dsn_len + 6 } else { 0 };
    let base = 4 + ack_len + map_len;
    let csum = match len {
        l if l == base => false,
        l if has_map && l == base + 2 => true,
        _ => return Err(bad),
    };
    let m = 2 + ack_len;
    Ok(Dss {
        data_fin: flags & Dss::FLAG_F != 0,
        data_ack: has_ack.then(|| DataAck {
            value: be(data, 2, ack_len),
            is_64bit: ack64,
        }),
        mapping: has_map.then(|| Mapping {
            dsn: be(data, m, dsn_len),
            dsn_64bit: dsn64,
            ssn: be(data, m + dsn_len, 4) as u32,
            data_len: be(data, m + dsn_len + 4, 2) as u16,
            checksum: csum.then(|| be(data, m + dsn_len + 6, 2) as u16),
        }),
    })
}

/// A segment carrying `options` as raw (kind, data) options.
fn repr_with<'a>(options: &'a [(u8, Vec<u8>)], ctx: ParseCtx) -> TcpRepr<'a> {
    let mut flags = TcpFlags(0);
    if ctx.syn {
        flags.0 |= TcpFlags::SYN;
    }
    if ctx.ack {
        flags.0 |= TcpFlags::ACK;
    }
    let mut repr = TcpRepr {
        flags,
        payload: if ctx.has_payload { b"x" } else { b"" },
        ..TcpRepr::new(40000, 80)
    };
    for (kind, data) in options {
        repr.unknown.push(*kind, data);
    }
    repr
}

#[test]
fn mptcp_options_only_dss_fast_path() {
    let dss = Dss {
        data_fin: false,
        data_ack: Some(DataAck {
            value: 7,
            is_64bit: false,
        }),
        mapping: None,
    };
    let enc = MptcpOption::Dss(dss).encode().unwrap().as_slice().to_vec();
    let o = MptcpOptions::parse(&repr_with(&[(TCPOPT_MPTCP, enc.clone())], ACK));
    let want = MptcpOptions {
        dss: Some(dss),
        any: true,
        ..MptcpOptions::default()
    };
    assert_eq!(o, want);
    // One byte short: malformed, counted and otherwise ignored.
    let short = enc[..enc.len() - 1].to_vec();
    let o = MptcpOptions::parse(&repr_with(&[(TCPOPT_MPTCP, short)], ACK));
    let want = MptcpOptions {
        malformed: 1,
        ..MptcpOptions::default()
    };
    assert_eq!(o, want);
    // A DSS after another kind goes the general way, to the same result.
    let o = MptcpOptions::parse(&repr_with(&[(253, vec![1]), (TCPOPT_MPTCP, enc)], ACK));
    assert_eq!(o.dss, Some(dss));
    assert!(o.any);
}

/// Raw options as segments carry them: mostly kind 30, DSS often, lengths
/// around the valid ones.
fn raw_options() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    let data = (
        prop_oneof![Just(subtype::DSS), 0u8..16],
        0u8..16,
        proptest::collection::vec(any::<u8>(), 0..=30),
    )
        .prop_map(|(st, nibble, rest)| {
            let mut d = vec![st << 4 | nibble];
            d.extend(rest);
            d
        });
    let data = prop_oneof![Just(Vec::new()), data];
    let kind = prop_oneof![Just(TCPOPT_MPTCP), Just(TCPOPT_MPTCP), any::<u8>()];
    proptest::collection::vec((kind, data), 0..=5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn mptcp_parse_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..=64),
        syn in any::<bool>(),
        ack in any::<bool>(),
        has_payload in any::<bool>(),
    ) {
        let ctx = ParseCtx { syn, ack, has_payload };
        let parsed = MptcpOption::parse(&data, ctx);
        if let (Ok(opt), true) = (parsed, data.len() <= MAX_OPTION_DATA_LEN) {
            // Whatever parses re-emits (within the option space) and parses
            // back to the same value.
            let mut buf = [0u8; 64];
            let n = opt.emit(&mut buf).unwrap();
            prop_assert_eq!(n, opt.encoded_len());
            prop_assert!(n <= MAX_OPTION_DATA_LEN);
            prop_assert_eq!(MptcpOption::parse(&buf[..n], ctx), Ok(opt));
        }
    }

    #[test]
    fn mptcp_parse_subtype_prefixed_never_panics(
        st in 0u8..16,
        nibble in 0u8..16,
        rest in proptest::collection::vec(any::<u8>(), 0..=38),
        syn in any::<bool>(),
        ack in any::<bool>(),
        has_payload in any::<bool>(),
    ) {
        let mut data = vec![st << 4 | nibble];
        data.extend_from_slice(&rest);
        data.truncate(MAX_OPTION_DATA_LEN);
        let ctx = ParseCtx { syn, ack, has_payload };
        if let Ok(opt) = MptcpOption::parse(&data, ctx) {
            prop_assert_eq!(opt.subtype(), st);
            prop_assert_eq!(opt.encoded_len(), data.len());
            let enc = opt.encode().unwrap();
            prop_assert_eq!(MptcpOption::parse(enc.as_slice(), ctx), Ok(opt));
        }
    }

    #[test]
    fn mptcp_dss_parse_matches_oracle(
        flags in any::<u8>(),
        nibble in 0u8..16,
        rest in proptest::collection::vec(any::<u8>(), 0..=36),
    ) {
        let mut data = vec![subtype::DSS << 4 | nibble, flags];
        data.extend_from_slice(&rest);
        for n in 1..=data.len() {
            prop_assert_eq!(Dss::parse(&data[..n]), dss_oracle(&data[..n]));
        }
    }

    #[test]
    fn mptcp_options_parse_matches_one_at_a_time(
        options in raw_options(),
        syn in any::<bool>(),
        ack in any::<bool>(),
        has_payload in any::<bool>(),
    ) {
        let ctx = ParseCtx { syn, ack, has_payload };
        let repr = repr_with(&options, ctx);
        prop_assert_eq!(MptcpOptions::parse(&repr), MptcpOptions::parse_each(&repr));
    }
}
