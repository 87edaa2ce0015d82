//! ICMP / ICMPv6 parsing, as the stack sees it: an IP datagram (`IpRepr`) whose
//! payload goes to `IcmpMessage::parse`. The fuzzer's message gets a correct
//! checksum when its first byte says so (else nearly every input would stop at
//! the checksum). An echo request or reply that parses, emitted again by our
//! emitters, parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptun_stack::wire::checksum;
use mptun_stack::wire::{
    emit_echo_reply, emit_echo_request, emit_unreachable, IcmpMessage, IpRepr, IPPROTO_ICMP,
    IPPROTO_ICMPV6,
};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    // Whole datagrams too: what the stack does first with an ICMP packet.
    if sel & 4 != 0 {
        if let Ok((ip, payload)) = IpRepr::parse(body) {
            let _ = IcmpMessage::parse(ip.src, ip.dst, payload);
        }
        return;
    }
    let (src, dst): (IpAddr, IpAddr) = if sel & 1 == 0 {
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
    } else {
        ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
    };
    let mut msg = body.to_vec();
    if sel & 2 != 0 && msg.len() >= 8 {
        msg[2] = 0;
        msg[3] = 0;
        let acc = if src.is_ipv6() {
            checksum::pseudo_header(src, dst, IPPROTO_ICMPV6, msg.len() as u32)
        } else {
            0
        };
        let c = !checksum::fold(u64::from(checksum::accumulate(acc, &msg)));
        msg[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let Ok(parsed) = IcmpMessage::parse(src, dst, &msg) else {
        return;
    };
    let (echo, request) = match parsed {
        IcmpMessage::EchoRequest(e) => (e, true),
        IcmpMessage::EchoReply(e) => (e, false),
        IcmpMessage::Unreachable { code, .. } => {
            // What it quotes, quoted again by our emitter, parses the same.
            let mut buf = vec![0u8; 40 + msg.len()];
            let n = emit_unreachable(src, dst, 64, code, &msg[8..], &mut buf)
                .expect("an unreachable emits");
            let (_, payload) = IpRepr::parse(&buf[..n]).expect("its IP header parses");
            let again = IcmpMessage::parse(src, dst, payload).expect("our unreachable parses");
            assert_eq!(again, parsed);
            return;
        }
        IcmpMessage::Other { .. } => return,
    };
    let emit = if request {
        emit_echo_request
    } else {
        emit_echo_reply
    };
    let mut buf = vec![0u8; 40 + 8 + echo.data.len()];
    let n = emit(src, dst, 64, echo.ident, echo.seq, echo.data, &mut buf).expect("echo emits");
    let (ip, payload) = IpRepr::parse(&buf[..n]).expect("our echo's IP header parses");
    let proto = if src.is_ipv6() {
        IPPROTO_ICMPV6
    } else {
        IPPROTO_ICMP
    };
    assert_eq!((ip.src, ip.dst, ip.protocol), (src, dst, proto));
    let again = IcmpMessage::parse(src, dst, payload).expect("our echo parses");
    assert_eq!(again, parsed);
});
