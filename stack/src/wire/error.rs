use core::fmt;

/// Why a packet was rejected. Each variant is a drop reason the daemon counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Fewer bytes than a header (or a declared length) needs.
    Truncated,
    /// IP version nibble is neither 4 nor 6 (or not the expected one).
    BadVersion,
    /// IPv4 IHL < 5, or a header length that runs past the packet.
    BadHeaderLength,
    /// IPv4 total length / IPv6 payload length disagrees with the buffer.
    BadTotalLength,
    /// IPv4 header checksum or TCP checksum is wrong.
    BadChecksum,
    /// TCP data offset < 5 or past the segment.
    BadDataOffset,
    /// A TCP option with a length byte < 2, or a known option with the wrong length.
    BadOptionLength,
    /// A TCP option runs past the end of the option space.
    OptionOverrun,
    /// A fragment (IPv4 MF/offset or IPv6 fragment header): not reassembled.
    Fragmented,
    /// Output buffer too small, or options do not fit in 40 bytes.
    BufferTooSmall,
    /// Not a TCP packet (where only one will do).
    NotTcp,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            WireError::Truncated => "truncated packet",
            WireError::BadVersion => "bad IP version",
            WireError::BadHeaderLength => "bad header length",
            WireError::BadTotalLength => "bad total length",
            WireError::BadChecksum => "bad checksum",
            WireError::BadDataOffset => "bad TCP data offset",
            WireError::BadOptionLength => "bad TCP option length",
            WireError::OptionOverrun => "TCP option runs past header",
            WireError::Fragmented => "fragmented packet",
            WireError::BufferTooSmall => "buffer too small",
            WireError::NotTcp => "not a TCP packet",
        };
        f.write_str(s)
    }
}

impl std::error::Error for WireError {}
