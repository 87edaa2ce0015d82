//! Rewriting captured packets for tests that play a middlebox or an attacker:
//! the TCP options of a packet changed, the packet emitted again with valid
//! checksums. Shared by the MPTCP tests that alter options in flight.

#![allow(dead_code)]

use mptun_stack::wire::TCPOPT_MPTCP;
use mptun_stack::wire::{emit_packet, IpRepr, MptcpOption, ParseCtx, RawOptions, TcpRepr};

/// A packet's TCP options, owned: (kind, data).
pub type Options = Vec<(u8, Vec<u8>)>;

/// `pkt` with its TCP options as `f` leaves them (`f` also gets the parse
/// context of the segment), re-emitted with valid checksums; `None` when it does
/// not parse, when `f` says it changed nothing, or when the options no longer fit.
pub fn rewrite_options(
    pkt: &[u8],
    f: impl FnOnce(&mut Options, ParseCtx) -> bool,
) -> Option<Vec<u8>> {
    let (ip, tcp) = IpRepr::parse(pkt).ok()?;
    let seg = TcpRepr::parse(ip.src, ip.dst, tcp, false).ok()?;
    let mut opts: Options = seg.unknown.iter().map(|(k, d)| (k, d.to_vec())).collect();
    if !f(&mut opts, ParseCtx::from_repr(&seg)) {
        return None;
    }
    let mut raw = RawOptions::new();
    for (kind, data) in &opts {
        raw.push(*kind, data);
    }
    let mut out = seg;
    out.unknown = raw;
    let mut buf = vec![0u8; pkt.len() + 80];
    let n = emit_packet(ip.src, ip.dst, ip.hop_limit, &out, &[seg.payload], &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// `pkt` with every MPTCP option that `f` replaces re-encoded (checksums
/// valid); `None` when `f` replaced none.
pub fn rewrite_mptcp(
    pkt: &[u8],
    mut f: impl FnMut(MptcpOption<'_>) -> Option<MptcpOption<'_>>,
) -> Option<Vec<u8>> {
    rewrite_options(pkt, |opts, ctx| {
        let mut hit = false;
        for (_, data) in opts.iter_mut().filter(|(k, _)| *k == TCPOPT_MPTCP) {
            let new = MptcpOption::parse(data, ctx)
                .ok()
                .and_then(&mut f)
                .map(|o| {
                    o.encode()
                        .expect("a re-encodable option")
                        .as_slice()
                        .to_vec()
                });
            if let Some(new) = new {
                *data = new;
                hit = true;
            }
        }
        hit
    })
}
