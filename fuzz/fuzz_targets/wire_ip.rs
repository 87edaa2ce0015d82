//! IPv4 / IPv6 header parsing. Besides "never panics": whatever parses, emitted
//! again (our header form: no IPv4 options, no IPv6 extension headers) with the
//! same upper-layer bytes, parses to the same `IpRepr` and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptun_stack::wire::{IpRepr, Ipv4Packet, Ipv6Packet};

fuzz_target!(|data: &[u8]| {
    // The raw accessors must not panic on anything `new_checked` lets through.
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (
            p.header_len(),
            p.total_len(),
            p.frag_offset(),
            p.is_fragment(),
        );
        let _ = (
            p.src_addr(),
            p.dst_addr(),
            p.protocol(),
            p.verify_checksum(),
        );
        let _ = p.payload().len();
    }
    if let Ok(p) = Ipv6Packet::new_checked(data) {
        let _ = (
            p.payload_len(),
            p.next_header(),
            p.flow_label(),
            p.traffic_class(),
        );
        let _ = (p.src_addr(), p.dst_addr(), p.hop_limit(), p.payload().len());
    }
    let Ok((ip, payload)) = IpRepr::parse(data) else {
        return;
    };
    assert_eq!(ip.payload_len, payload.len());
    let hl = ip.header_len();
    let mut buf = vec![0u8; hl + payload.len()];
    match ip.emit(&mut buf) {
        Ok(()) => {}
        // Only an IPv4 packet whose options made its payload too long for a
        // 20-byte header can fail (its total length fits 16 bits with them).
        Err(e) => panic!("re-emit of {ip:?} failed: {e:?}"),
    }
    buf[hl..].copy_from_slice(payload);
    let (again, payload2) = IpRepr::parse(&buf).expect("our own header parses");
    assert_eq!(again, ip);
    assert_eq!(payload2, payload);
});
