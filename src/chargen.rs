//! The character generator service (RFC 864), `--chargen PORT`: every
//! connection gets an endless stream of text lines until the client closes it;
//! what the client sends is read and thrown away. The other half of `--sink`:
//! a download test that needs nothing but a client reading what it wants.
//!
//! The pattern is RFC 864's: lines of 72 printable ASCII characters and CR LF,
//! each starting one character further along the 95 printable ones, so it
//! repeats every 95 lines. A connection holds no buffer of its own: it writes
//! from one shared copy of the pattern, a few periods long.

use crate::services::{spawn_accept_loop, ServiceStats};
use crate::socket::Handle;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Characters per line, before CR LF.
const LINE: usize = 72;
/// The printable ASCII characters, ' ' to '~'.
const PRINTABLE: usize = 95;
/// Bytes after which the pattern repeats.
pub const PERIOD: usize = PRINTABLE * (LINE + 2);
/// Periods in the shared copy: a write from any offset within the first
/// period still offers 8 periods (56 KB), enough for a large send buffer.
const PERIODS: usize = 9;

static PATTERN: LazyLock<Box<[u8]>> = LazyLock::new(|| {
    let mut p = Vec::with_capacity(PERIOD * PERIODS);
    for _ in 0..PERIODS {
        for line in 0..PRINTABLE {
            p.extend((0..LINE).map(|i| b' ' + ((line + i) % PRINTABLE) as u8));
            p.extend_from_slice(b"\r\n");
        }
    }
    p.into_boxed_slice()
});

/// The first `len` bytes a chargen connection sends (for tests and clients
/// that check what they read).
pub fn pattern(len: usize) -> Vec<u8> {
    PATTERN.iter().copied().cycle().take(len).collect()
}

/// Listens on `port` and serves the character generator on every connection.
pub fn chargen(handle: &Handle, port: u16) -> io::Result<Arc<ServiceStats>> {
    let listener = handle.listen(port)?;
    let stats = ServiceStats::new("chargen", port);
    spawn_accept_loop(listener, stats.clone(), |stream, stats| async move {
        let send = async {
            let mut wr = &stream;
            let mut at = 0;
            loop {
                let n = wr.write(&PATTERN[at..]).await?;
                if n == 0 {
                    return Err::<(), _>(io::Error::from(io::ErrorKind::WriteZero));
                }
                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                at = (at + n) % PERIOD;
            }
        };
        let discard = async {
            let mut rd = &stream;
            // Small: a client that only reads leaves this waiting for good.
            let mut scrap = [0u8; 256];
            while rd.read(&mut scrap).await? > 0 {}
            // Half-closed by the client: the stream goes on until it closes.
            std::future::pending::<io::Result<()>>().await
        };
        match tokio::try_join!(send, discard) {
            Ok(_) => Ok(()),
            // How a chargen connection ends: the client closes, and its
            // stack answers the data still coming with a RST.
            Err(e) if is_client_gone(&e) => Ok(()),
            Err(e) => Err(e),
        }
    });
    Ok(stats)
}

fn is_client_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_rfc_864s() {
        let p = pattern(2 * PERIOD + 10);
        let first = &p[..LINE + 2];
        assert_eq!(&first[..4], b" !\"#");
        assert_eq!(&first[LINE - 1..], b"g\r\n");
        // The second line starts one character on; line 95 is the first again.
        assert_eq!(&p[LINE + 2..LINE + 5], b"!\"#");
        assert_eq!(&p[PERIOD..PERIOD + LINE + 2], first);
        let lines: Vec<&[u8]> = p[..2 * PERIOD].split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 2 * PRINTABLE + 1);
        assert!(lines[..2 * PRINTABLE]
            .iter()
            .all(|l| l.len() == LINE + 1 && l[LINE] == b'\r'));
        assert!(p
            .iter()
            .all(|&b| (b' '..=b'~').contains(&b) || b == b'\r' || b == b'\n'));
        // Any offset in the first period offers the pattern on from there.
        let at = 1234;
        assert_eq!(
            &PATTERN[at..at + 3 * PERIOD],
            &pattern(at + 3 * PERIOD)[at..]
        );
    }
}
