//! pcap capture of TUN traffic (`--pcap FILE`).
//!
//! Every packet read from or written to the TUN device is appended to a classic pcap
//! file with link type `LINKTYPE_RAW` (101): each record is a bare IPv4 or IPv6
//! datagram, which is exactly what a TUN device carries (no Ethernet header, no packet
//! information prefix).
//!
//! The file format is written by the `pcap-file` crate (see docs/DEPENDENCIES.md).
//! Its `PcapWriter` owns its output and has no way to reach it between packets, so it
//! writes into a shared buffered sink that this module keeps a handle to and flushes
//! after every packet: once [`PcapWriter::write_packet`] returns, the packet is
//! completely in the file, and a live reader (`tshark -r FILE`,
//! `tail -c +1 -f FILE | tshark -i -`) sees whole records only.
//!
//! The capture holds every payload and the MPTCP keys of every connection, so
//! [`PcapWriter::create`] makes a new file readable by its owner only (mode 0600)
//! and never writes through a symbolic link or over an existing file
//! (`O_CREAT | O_EXCL | O_NOFOLLOW`): a root daemon cannot be tricked into
//! clobbering or disclosing another file.

use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest packet stored whole: libpcap's maximum snapshot length, well above the
/// 65535 bytes an IP datagram (without jumbograms) or a TUN MTU can reach. Longer
/// packets are truncated and their original length recorded.
pub const SNAPLEN: u32 = 262_144;

/// A pcap file of raw IP packets, flushed after each packet.
#[derive(Debug)]
pub struct PcapWriter {
    inner: pcap_file::pcap::PcapWriter<SharedSink>,
    sink: SharedSink,
}

impl PcapWriter {
    /// Create `path`, which must not exist (not even as a symbolic link), mode
    /// 0600, and write the pcap global header. An existing file is an
    /// `AlreadyExists` error ("... exists; remove it or choose another file").
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::from_writer(Box::new(create_new_private(path)?))
    }

    /// Write the capture to any byte sink (a file, a pipe, a buffer in tests).
    pub fn from_writer(out: Box<dyn Write + Send>) -> io::Result<Self> {
        let sink = SharedSink(Arc::new(Mutex::new(BufWriter::new(out))));
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::RAW,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let inner =
            pcap_file::pcap::PcapWriter::with_header(sink.clone(), header).map_err(to_io)?;
        sink.lock().flush()?;
        Ok(PcapWriter { inner, sink })
    }

    /// Append one raw IPv4/IPv6 packet captured at `timestamp`, then flush.
    pub fn write_packet(&mut self, timestamp: SystemTime, data: &[u8]) -> io::Result<()> {
        let since_epoch = timestamp.duration_since(UNIX_EPOCH).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "pcap timestamp before the Unix epoch",
            )
        })?;
        let orig_len = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "packet longer than 4 GiB cannot be captured",
            )
        })?;
        let kept = &data[..data.len().min(SNAPLEN as usize)];
        let packet = PcapPacket::new(since_epoch, orig_len, kept);
        self.inner.write_packet(&packet).map_err(to_io)?;
        self.sink.lock().flush()
    }
}

/// Opens `path` for writing as a new file, mode 0600: `O_CREAT | O_EXCL` (an
/// existing file, or a symbolic link even to nowhere, is an error) and
/// `O_NOFOLLOW`. The mode is set again after creation, as the umask may have
/// taken bits off (never added any).
fn create_new_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                let what = match std::fs::symlink_metadata(path) {
                    Ok(m) if m.file_type().is_symlink() => "is a symbolic link",
                    _ => "exists",
                };
                io::Error::new(
                    e.kind(),
                    format!("{what}; the capture must be a new file: remove it or choose another"),
                )
            } else {
                e
            }
        })?;
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// A clonable handle to one buffered output: `pcap_file`'s writer writes through one
/// clone, [`PcapWriter`] flushes through the other.
#[derive(Clone)]
struct SharedSink(Arc<Mutex<BufWriter<Box<dyn Write + Send>>>>);

impl SharedSink {
    fn lock(&self) -> MutexGuard<'_, BufWriter<Box<dyn Write + Send>>> {
        // A panic while holding the lock cannot leave the BufWriter inconsistent in a
        // way that matters here; keep capturing.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for SharedSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSink")
    }
}

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.lock().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }
}

fn to_io(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use std::time::Duration;

    fn ipv4_packet() -> Vec<u8> {
        // 20-byte IPv4 header (UDP, 10.0.0.1 -> 10.0.0.2) + 8-byte UDP header + 4 bytes.
        let mut p = vec![
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0]);
        p.extend_from_slice(b"ping");
        p
    }

    fn ipv6_packet() -> Vec<u8> {
        // 40-byte IPv6 header (no next header, ::1 -> ::2) + 3 payload bytes.
        let mut p = vec![0x60, 0, 0, 0, 0, 3, 59, 64];
        let mut src = [0u8; 16];
        src[15] = 1;
        let mut dst = [0u8; 16];
        dst[15] = 2;
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(b"abc");
        p
    }

    fn read_all(path: &Path) -> (PcapHeader, Vec<(Duration, u32, Vec<u8>)>) {
        let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
        let header = r.header();
        let mut out = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.expect("complete, well-formed packet record");
            out.push((p.timestamp, p.orig_len, p.data.into_owned()));
        }
        (header, out)
    }

    #[test]
    fn writes_raw_ip_packets_flushed_each_time() {
        let dir = std::env::temp_dir().join(format!("mptun-pcap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cap.pcap");
        let _ = std::fs::remove_file(&path);
        let mut w = PcapWriter::create(&path).unwrap();

        // The header alone is already on disk.
        let (header, pkts) = read_all(&path);
        assert_eq!(header.datalink, DataLink::RAW);
        assert_eq!(header.snaplen, SNAPLEN);
        assert!(pkts.is_empty());

        let t0 = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let packets = [ipv4_packet(), ipv6_packet(), ipv4_packet()];
        for (i, p) in packets.iter().enumerate() {
            w.write_packet(t0 + Duration::from_millis(i as u64), p)
                .unwrap();
            // Readable without dropping the writer: everything so far is complete.
            let (_, got) = read_all(&path);
            assert_eq!(got.len(), i + 1);
            for (j, (ts, orig_len, data)) in got.iter().enumerate() {
                assert_eq!(data, &packets[j]);
                assert_eq!(*orig_len as usize, packets[j].len());
                assert_eq!(
                    *ts,
                    t0.duration_since(UNIX_EPOCH).unwrap() + Duration::from_millis(j as u64)
                );
            }
        }
        assert_eq!(packets[0][0] >> 4, 4);
        assert_eq!(packets[1][0] >> 4, 6);
        drop(w);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn oversized_packet_is_truncated_to_snaplen() {
        let dir = std::env::temp_dir().join(format!("mptun-pcap-trunc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cap.pcap");
        let _ = std::fs::remove_file(&path);
        let mut w = PcapWriter::create(&path).unwrap();
        let big = vec![0x45u8; SNAPLEN as usize + 10];
        w.write_packet(SystemTime::now(), &big).unwrap();
        // pcap-file's validating reader rejects orig_len > snaplen; read the raw record.
        let mut r = PcapReader::new(File::open(&path).unwrap()).unwrap();
        let raw = r.next_raw_packet().unwrap().unwrap();
        assert_eq!(raw.orig_len as usize, big.len());
        assert_eq!(raw.incl_len, SNAPLEN);
        assert_eq!(raw.data.len(), SNAPLEN as usize);
        assert!(r.next_raw_packet().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_is_new_private_and_never_through_a_link() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("mptun-pcap-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();

        let path = dir.join("cap.pcap");
        drop(PcapWriter::create(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);

        // The file now exists: refused, left as it is.
        let len = std::fs::metadata(&path).unwrap().len();
        let e = PcapWriter::create(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(
            e.to_string()
                .starts_with("exists; the capture must be a new file"),
            "{e}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);

        // A symbolic link to a file: the file is not touched.
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.join("link.pcap");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = PcapWriter::create(&link).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(e.to_string().starts_with("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::metadata(&victim).unwrap().mode() & 0o7777, 0o644);

        // A dangling one: nothing is created where it points.
        let dangling = dir.join("dangling.pcap");
        std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
        assert!(PcapWriter::create(&dangling).is_err());
        assert!(!dir.join("nowhere").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timestamp_before_epoch_is_an_error() {
        let mut w = PcapWriter::from_writer(Box::new(io::sink())).unwrap();
        let err = w
            .write_packet(UNIX_EPOCH - Duration::from_secs(1), &ipv4_packet())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
