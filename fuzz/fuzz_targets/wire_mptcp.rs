//! MPTCP option decoding, v1 (RFC 8684) and v0 (RFC 6824) forms. Whatever
//! decodes must encode again (the engine re-encodes options it relays in
//! tests and middlebox code), and the encoding must decode to the same value
//! under the same segment context; encoding that again gives the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptun_stack::wire::{MptcpOption, ParseCtx};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, opt)) = data.split_first() else {
        return;
    };
    let ctx = ParseCtx {
        syn: sel & 1 != 0,
        ack: sel & 2 != 0,
        has_payload: sel & 4 != 0,
    };
    // An option's data is at most 38 bytes (40 of options, minus kind and length).
    let opt = &opt[..opt.len().min(38)];
    let Ok(parsed) = MptcpOption::parse(opt, ctx) else {
        return;
    };
    let _ = parsed.subtype();
    let enc = parsed
        .encode()
        .unwrap_or_else(|e| panic!("{parsed:?} (from {opt:02x?}, {ctx:?}) does not encode: {e:?}"));
    assert_eq!(enc.as_slice().len(), parsed.encoded_len());
    let again = MptcpOption::parse(enc.as_slice(), ctx)
        .unwrap_or_else(|e| panic!("{parsed:?} encoded as {enc:?} does not decode: {e:?}"));
    assert_eq!(again, parsed, "round trip of {opt:02x?} under {ctx:?}");
    assert_eq!(again.encode().unwrap(), enc);
});
