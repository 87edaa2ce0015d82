//! TCP header and option parsing. Whatever parses and whose options fit,
//! emitted by `emit_packet` and parsed again (checksum verified), gives the same
//! `TcpRepr` (every field, options and payload), and the MPTCP options it
//! carries decode the same way in both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptun_stack::wire::tcp::TcpOptionIter;
use mptun_stack::wire::{emit_packet, IpRepr, MptcpOptions, TcpRepr, TcpSegment, IPPROTO_TCP};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, seg)) = data.split_first() else {
        return;
    };
    let (src, dst): (IpAddr, IpAddr) = if sel & 1 == 0 {
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
    } else {
        ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
    };
    if let Ok(s) = TcpSegment::new_checked(seg) {
        for o in TcpOptionIter::new(s.options()) {
            let _ = o;
        }
        let _ = (s.payload().len(), s.verify_checksum(src, dst));
    }
    let Ok(repr) = TcpRepr::parse(src, dst, seg, sel & 2 != 0) else {
        return;
    };
    let mp = MptcpOptions::parse(&repr);
    if repr.options_len() > 40 {
        // Only possible when parsing dropped nothing yet our layout is longer
        // (e.g. padding NOPs we add); such a repr is not re-emittable.
        return;
    }
    let mut buf = vec![0u8; 60 + 40 + repr.payload.len()];
    let n = emit_packet(src, dst, 64, &repr, &[repr.payload], &mut buf)
        .unwrap_or_else(|e| panic!("emit of {repr:?} failed: {e:?}"));
    let (ip, tcp) = IpRepr::parse(&buf[..n]).expect("our IP header parses");
    assert_eq!((ip.src, ip.dst, ip.protocol), (src, dst, IPPROTO_TCP));
    let again = TcpRepr::parse(src, dst, tcp, true).expect("our segment parses");
    assert_eq!(again, repr);
    assert_eq!(MptcpOptions::parse(&again), mp);
});
