//! State on disk: the state root, atomic JSON files and advisory locks.
//!
//! Every state file is written whole to a temporary file in the same
//! directory, fsynced, renamed over the old one and the directory fsynced, so
//! a crash leaves either the old or the new content, never a torn file.
//! Concurrent mydocker processes serialize through `flock` on lock files.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "state file {path} is corrupt ({reason}); it was left untouched: fix or remove it by hand"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("refusing to use state root {path}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
}

impl StoreError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            error: source,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Creates a directory (and parents) readable only by its owner.
pub fn ensure_private_dir(path: &Path) -> Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Refuses a state root that someone else could tamper with: owned by
/// another user, or writable by group or others.
pub fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).map_err(|e| StoreError::io(path, e))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(StoreError::Unsafe {
            path: path.to_path_buf(),
            reason: format!(
                "it is owned by uid {}, not by the user running mydocker (uid {me})",
                meta.uid()
            ),
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(StoreError::Unsafe {
            path: path.to_path_buf(),
            reason: format!(
                "it is writable by other users (mode {:o}); run `chmod 700 {}`",
                meta.mode() & 0o777,
                path.display()
            ),
        });
    }
    Ok(())
}

/// Reads and parses a JSON state file; `Ok(None)` if it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Writes `value` as JSON to `path` atomically (temp + fsync + rename + dir fsync).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &encode(path, serde_json::to_vec_pretty(value))?)
}

/// Writes state that lives only as long as the current boot (IPAM
/// allocations, endpoint records): compact JSON, replaced atomically by a
/// rename but not flushed to disk.
///
/// A process crash cannot tear it (the rename is atomic and the page cache
/// outlives the process). A power loss can, but a power loss is a reboot,
/// and after a reboot the runtime resets exactly this state (see
/// `Runtime::notice_reboot`), because every link and process it described
/// is gone. Flushing it would buy nothing and costs two disk cache flushes
/// per write — about a third of a connect on a typical VM disk.
pub fn write_json_for_this_boot<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = encode(path, serde_json::to_vec(value))?;
    let tmp = temp_with(path, &bytes)?;
    tmp.persist(path)
        .map_err(|e| StoreError::io(path, e.error))?;
    Ok(())
}

/// Removes a file of boot-scoped state (see [`write_json_for_this_boot`]);
/// missing is fine.
pub fn remove_file_for_this_boot(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn encode(path: &Path, result: serde_json::Result<Vec<u8>>) -> Result<Vec<u8>> {
    result.map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot serialize: {e}"),
    })
}

/// A 0600 temporary file next to `path` holding `bytes`.
fn temp_with(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| StoreError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    Ok(tmp)
}

/// Writes bytes to `path` atomically and durably, with mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_with(path, bytes)?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| StoreError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| StoreError::io(path, e.error))?;
    sync_dir(dir)
}

/// Removes a file and makes the removal durable; missing is fine.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(path, e)),
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// An exclusive advisory lock, released on drop (the kernel also releases
/// it if the process dies, so a crash never leaves a stale lock).
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// Blocks until the lock file at `path` is exclusively ours.
    pub fn exclusive(path: &Path) -> Result<Lock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::io(path, e))?;
        file.lock_exclusive().map_err(|e| StoreError::io(path, e))?;
        Ok(Lock { file })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_round_trips_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_json(&path, &vec![1, 2, 3]).unwrap();
        let back: Option<Vec<i32>> = read_json(&path).unwrap();
        assert_eq!(back, Some(vec![1, 2, 3]));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn boot_scoped_write_replaces_whole_files_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ipam.json");
        write_json_for_this_boot(&path, &vec![1; 1000]).unwrap();
        write_json_for_this_boot(&path, &vec![2, 3]).unwrap();
        // Compact, and the shorter second write replaced the file whole.
        assert_eq!(fs::read(&path).unwrap(), b"[2,3]");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        remove_file_for_this_boot(&path).unwrap();
        remove_file_for_this_boot(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn corrupt_file_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, b"{not json").unwrap();
        let err = read_json::<Vec<i32>>(&path).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"{not json");
    }

    #[test]
    fn missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_json::<Vec<i32>>(&dir.path().join("nope.json"))
            .unwrap()
            .is_none());
    }
}
