//! Reading a file whose contents the daemon trusts (its configuration, a
//! password list): whoever can write it controls the daemon (its keys' seed,
//! who may use the control socket, where captures go), so it must belong to
//! root or the daemon's user and be writable by no one else. The checks are
//! made on the file opened, not on its path (no race between them).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Who else may write or read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Others may read it (a configuration); none may write it but its owner
    /// (and root's group).
    Readable,
    /// Only its owner may read it (it holds passwords).
    Secret,
}

/// Why a file was not read.
#[derive(Debug)]
pub enum Refused {
    /// It could not be opened or read.
    Io(String),
    /// Its owner or mode would let someone else control the daemon.
    Untrusted(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Io(m) | Refused::Untrusted(m) => f.write_str(m),
        }
    }
}

/// The file's text, if its owner and mode allow `exposure`; otherwise what
/// is wrong and how to mend it.
pub fn read(path: &Path, exposure: Exposure) -> Result<String, Refused> {
    let (euid, _) = crate::control::process_ids().map_err(|e| Refused::Io(e.to_string()))?;
    read_as(path, exposure, euid)
}

fn read_as(path: &Path, exposure: Exposure, euid: u32) -> Result<String, Refused> {
    let shown = path.display();
    let io = |e: std::io::Error| Refused::Io(format!("{shown}: {e}"));
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Refused::Untrusted(format!("{shown}: not a regular file")));
    }
    let mode = meta.mode() & 0o7777;
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(Refused::Untrusted(format!(
            "{shown}: owned by uid {}, neither root nor this daemon's user (uid {euid}); \
             whoever owns it would control the daemon: chown it",
            meta.uid()
        )));
    }
    let writable_by_others = mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != 0);
    if writable_by_others {
        return Err(Refused::Untrusted(format!(
            "{shown}: writable by others (mode {mode:o}, group {}); chmod go-w it",
            meta.gid()
        )));
    }
    if exposure == Exposure::Secret && mode & 0o077 != 0 {
        return Err(Refused::Untrusted(format!(
            "{shown}: readable by others (mode {mode:o}); chmod 600 it"
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(name: &str, mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mptun-trusted-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, "x = 1\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn owner_and_mode_decide() {
        let (me, _) = crate::control::process_ids().unwrap();
        let ok = file("ok", 0o644);
        assert_eq!(read_as(&ok, Exposure::Readable, me).unwrap(), "x = 1\n");
        let e = read_as(&ok, Exposure::Secret, me).unwrap_err().to_string();
        assert!(e.contains("readable by others"), "{e}");
        let secret = file("secret", 0o600);
        assert!(read_as(&secret, Exposure::Secret, me).is_ok());
        let open = file("open", 0o666);
        let e = read_as(&open, Exposure::Readable, me)
            .unwrap_err()
            .to_string();
        assert!(e.contains("writable by others"), "{e}");
        // Owned by someone who is neither root nor the daemon's user (as
        // this test pretends to be another daemon user, unless it runs as
        // root, whose files are always trusted).
        if me != 0 {
            let e = read_as(&ok, Exposure::Readable, me + 1)
                .unwrap_err()
                .to_string();
            assert!(e.contains("neither root nor"), "{e}");
        }
        let e = read_as(ok.parent().unwrap(), Exposure::Readable, me)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a regular file") || e.contains("directory"),
            "{e}"
        );
    }
}
