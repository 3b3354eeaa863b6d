//! Images: root filesystem tarballs imported once into a read-only tree.
//!
//! Layout under the state root:
//!
//! ```text
//! root/images/<name>/rootfs/      extracted tree, the overlayfs lower layer;
//!                                 never written after import
//! root/images/<name>/image.json   { name, sha256, size, created, source }
//! root/image/<name>.tar           dropped-in tarballs, imported on first use
//! ```
//!
//! An import extracts into a private temporary directory inside
//! `root/images` (same filesystem), writes `image.json`, syncs, and then
//! renames the directory into place with `renameat2(RENAME_NOREPLACE)`. A
//! crash or a bad tarball therefore never leaves a half image under a valid
//! name, and of two concurrent imports of one name exactly one wins; the
//! other gets [`ImageError::Exists`]. Where the filesystem lacks
//! `RENAME_NOREPLACE`, the check and the rename are done under an `flock` on
//! `root/images/.lock` instead.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tar::EntryType;

/// Longest accepted image name.
pub const MAX_NAME_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "invalid image name '{0}': use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    InvalidName(String),
    #[error("image {0} not found (import one with `mydocker image import FILE.tar {0}`)")]
    NotFound(String),
    #[error("image {0} already exists; remove it first with `mydocker image rm {0}`")]
    Exists(String),
    #[error("cannot import {path}: {message}")]
    Import { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("image {name} is used by container(s) {containers}")]
    InUse { name: String, containers: String },
}

/// The metadata of an imported image, as stored in its `image.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Image {
    pub name: String,
    /// Lowercase hex SHA-256 of the tarball it was imported from.
    pub sha256: String,
    /// Bytes of regular files extracted.
    pub size: u64,
    /// Unix seconds of the import.
    pub created: u64,
    /// Path of the tarball it was imported from.
    pub source: String,
}

/// The images under a state root.
pub struct ImageStore {
    root: PathBuf,
}

fn io_err(path: &Path, err: impl std::fmt::Display) -> ImageError {
    ImageError::Io {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

fn import_err(path: &Path, message: impl std::fmt::Display) -> ImageError {
    ImageError::Import {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Checks an image name: `[a-z0-9][a-z0-9._-]*`, at most [`MAX_NAME_LEN`]
/// bytes. This also rules out "", ".", ".." and anything with a '/', so a
/// valid name is always a single path component.
pub fn validate_name(name: &str) -> Result<(), ImageError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ImageError::InvalidName(name.to_string()))
    }
}

/// Creates `dir` (and missing parents) with mode 0700; an existing
/// directory is left as it is.
fn ensure_private_dir(dir: &Path) -> Result<(), ImageError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(dir, e))
}

fn fsync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Writes `bytes` to `path` with mode 0600: temp file, fsync, rename, fsync
/// of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| io_err(dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_err(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| io_err(path, e.error))?;
    fsync_dir(dir)
}

fn sha256_file(path: &Path) -> Result<String, ImageError> {
    let mut file = File::open(path).map_err(|e| import_err(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(import_err(path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn cstring(path: &Path) -> Result<CString, ImageError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| io_err(path, e))
}

/// `renameat2(from, to, RENAME_NOREPLACE)`. `Ok(false)` when `to` exists;
/// `Err(EINVAL/ENOSYS)` when the filesystem or kernel lacks the flag.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<bool> {
    let (Ok(f), Ok(t)) = (cstring(from), cstring(to)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: both pointers are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => Ok(false),
        _ => Err(err),
    }
}

/// An exclusive `flock` held until dropped (the file closes).
struct DirLock {
    _file: File,
}

impl DirLock {
    fn acquire(path: &Path) -> Result<DirLock, ImageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(DirLock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(io_err(path, err));
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ImageStore {
    pub fn new(root: &Path) -> ImageStore {
        ImageStore {
            root: root.to_path_buf(),
        }
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn image_dir(&self, name: &str) -> PathBuf {
        self.images_dir().join(name)
    }

    /// Where a dropped-in tarball for `name` is looked for.
    pub fn dropin_tarball(&self, name: &str) -> PathBuf {
        self.root.join("image").join(format!("{name}.tar"))
    }

    /// Imports `tarball` as image `name`.
    ///
    /// The tarball is extracted into a temporary directory inside
    /// `root/images`, `image.json` is written, everything is synced and the
    /// directory is renamed to `root/images/<name>` without replacing an
    /// existing one, so a crash or a bad tarball never leaves a half image.
    ///
    /// Extraction keeps modes (set-id bits included), symlinks, hard links,
    /// mtimes and, when running as root, numeric ownership. Entries with a
    /// ".." component are skipped, leading '/' are stripped, and nothing is
    /// written through a symlink or hard link leading outside the tree (the
    /// tar crate's `unpack_in` checks); such an entry fails the import.
    /// Character and block devices and FIFOs are skipped: the runtime
    /// provides /dev itself.
    pub fn import(&self, tarball: &Path, name: &str) -> Result<Image, ImageError> {
        validate_name(name)?;
        let images = self.images_dir();
        ensure_private_dir(&images)?;
        let target = self.image_dir(name);
        // Cheap early answer; the rename below is what settles races.
        if target.symlink_metadata().is_ok() {
            return Err(ImageError::Exists(name.to_string()));
        }

        let meta = fs::metadata(tarball).map_err(|e| import_err(tarball, e))?;
        if !meta.is_file() {
            return Err(import_err(tarball, "not a regular file"));
        }
        let sha256 = sha256_file(tarball)?;

        // The temporary directory is created 0700 and removed on drop, so every
        // early return below cleans up after itself.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".import-{name}-"))
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(&images)
            .map_err(|e| io_err(&images, e))?;
        let rootfs = tmp.path().join("rootfs");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&rootfs)
            .map_err(|e| io_err(&rootfs, e))?;

        let size = extract(tarball, &rootfs)?;

        let source = fs::canonicalize(tarball).unwrap_or_else(|_| tarball.to_path_buf());
        let image = Image {
            name: name.to_string(),
            sha256,
            size,
            created: now_secs(),
            source: source.to_string_lossy().into_owned(),
        };
        let json = serde_json::to_vec_pretty(&image).map_err(|e| io_err(tmp.path(), e))?;
        write_atomic(&tmp.path().join("image.json"), &json)?;

        // Make the extracted files durable before the image becomes visible.
        sync_filesystem(tmp.path())?;

        self.publish(tmp.path(), &target, name)?;
        // Renamed away: nothing left for the guard to remove.
        let _ = tmp.keep();
        fsync_dir(&images)?;
        Ok(image)
    }

    /// Moves the finished temporary directory to its final name, failing
    /// with `Exists` if that name is taken.
    fn publish(&self, tmp: &Path, target: &Path, name: &str) -> Result<(), ImageError> {
        match rename_noreplace(tmp, target) {
            Ok(true) => return Ok(()),
            Ok(false) => return Err(ImageError::Exists(name.to_string())),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {}
            Err(e) => return Err(io_err(target, e)),
        }
        // No RENAME_NOREPLACE here: check and rename under the store lock.
        let _lock = DirLock::acquire(&self.images_dir().join(".lock"))?;
        if target.symlink_metadata().is_ok() {
            return Err(ImageError::Exists(name.to_string()));
        }
        fs::rename(tmp, target).map_err(|e| io_err(target, e))
    }

    fn read_image(&self, name: &str) -> Result<Option<Image>, ImageError> {
        let path = self.image_dir(name).join("image.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_err(&path, format!("invalid image metadata: {e}")))
    }

    /// The image, importing `root/image/<name>.tar` on first use if present.
    pub fn get(&self, name: &str) -> Result<Image, ImageError> {
        validate_name(name)?;
        if let Some(image) = self.read_image(name)? {
            return Ok(image);
        }
        let dropin = self.dropin_tarball(name);
        if !dropin.is_file() {
            return Err(ImageError::NotFound(name.to_string()));
        }
        match self.import(&dropin, name) {
            Ok(image) => Ok(image),
            // Another process imported it first: use theirs.
            Err(ImageError::Exists(_)) => self
                .read_image(name)?
                .ok_or_else(|| ImageError::NotFound(name.to_string())),
            Err(e) => Err(e),
        }
    }

    /// Path of the read-only rootfs of an existing image. The name is not
    /// checked here: call [`ImageStore::get`] first.
    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.image_dir(name).join("rootfs")
    }

    /// All images, sorted by name. Directories without a valid `image.json`
    /// (or whose name is not a valid image name, like import temp dirs) are
    /// skipped.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let images = self.images_dir();
        let entries = match fs::read_dir(&images) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&images, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&images, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_name(&name).is_err() {
                continue;
            }
            if let Ok(Some(image)) = self.read_image(&name) {
                if image.name == name {
                    out.push(image);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes an image. `in_use` lists the ids of containers using it (the
    /// caller computes it): when non-empty, nothing is removed.
    ///
    /// The directory is first renamed to a hidden name, so the image
    /// disappears at once and a crash mid-removal leaves only a hidden
    /// directory, never a half image. A tarball in `root/image/` is left
    /// alone (so a later `get` imports it again).
    pub fn remove(&self, name: &str, in_use: &[String]) -> Result<(), ImageError> {
        validate_name(name)?;
        let dir = self.image_dir(name);
        if dir.symlink_metadata().is_err() {
            return Err(ImageError::NotFound(name.to_string()));
        }
        if !in_use.is_empty() {
            return Err(ImageError::InUse {
                name: name.to_string(),
                containers: in_use.join(", "),
            });
        }
        let images = self.images_dir();
        let trash = tempfile::Builder::new()
            .prefix(&format!(".rm-{name}-"))
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(&images)
            .map_err(|e| io_err(&images, e))?;
        let doomed = trash.path().join(name);
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::NotFound(name.to_string()))
            }
            Err(e) => return Err(io_err(&dir, e)),
        }
        fsync_dir(&images)?;
        let trash_path = trash.keep();
        fs::remove_dir_all(&trash_path).map_err(|e| io_err(&trash_path, e))
    }
}

/// `syncfs` on the filesystem holding `dir`.
fn sync_filesystem(dir: &Path) -> Result<(), ImageError> {
    let d = File::open(dir).map_err(|e| io_err(dir, e))?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io_err(dir, io::Error::last_os_error()));
    }
    Ok(())
}

/// An error with its causes ("a: b: c"), on one line and of bounded length:
/// tar's messages can embed raw header bytes of hostile input.
fn describe(err: &io::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    one_line(&text)
}

/// `text` with control characters blanked, cut to 300 characters.
fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if text.chars().count() > 300 {
        line.push_str("...");
    }
    line
}

/// Extracts `tarball` into the existing directory `dst`; returns the bytes
/// of regular files written.
fn extract(tarball: &Path, dst: &Path) -> Result<u64, ImageError> {
    let mut file = File::open(tarball).map_err(|e| import_err(tarball, e))?;
    let mut magic = [0u8; 6];
    let n = file.read(&mut magic).map_err(|e| import_err(tarball, e))?;
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        return Err(import_err(
            tarball,
            "gzip-compressed; decompress it first (gunzip)",
        ));
    }
    if n >= 3 && magic[..3] == *b"BZh" {
        return Err(import_err(
            tarball,
            "bzip2-compressed; decompress it first (bunzip2)",
        ));
    }
    if n >= 6 && magic == [0xfd, b'7', b'z', b'X', b'Z', 0x00] {
        return Err(import_err(
            tarball,
            "xz-compressed; decompress it first (unxz)",
        ));
    }
    let file = File::open(tarball).map_err(|e| import_err(tarball, e))?;

    let bad = |e: io::Error, count: usize| {
        if count == 0 {
            import_err(tarball, "not a tar archive (no valid header at the start)")
        } else {
            import_err(
                tarball,
                format!(
                    "corrupt tar archive after {count} entries: {}",
                    describe(&e)
                ),
            )
        }
    };
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    // chown needs root; an unprivileged import keeps the caller's ids.
    // SAFETY: geteuid has no preconditions.
    archive.set_preserve_ownerships(unsafe { libc::geteuid() } == 0);

    let mut size = 0u64;
    let mut count = 0usize;
    // Directories are applied last, deepest first, so a read-only directory
    // does not block its own contents (as tar's Archive::unpack does).
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(|e| bad(e, 0))? {
        let mut entry = entry.map_err(|e| bad(e, count))?;
        count += 1;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Char | EntryType::Block | EntryType::Fifo => continue,
            EntryType::Directory => {
                dirs.push(entry);
                continue;
            }
            _ => {}
        }
        let is_file = matches!(kind, EntryType::Regular | EntryType::Continuous);
        let entry_size = entry.header().size().unwrap_or(0);
        let path = entry.path_bytes().into_owned();
        let unpacked = entry.unpack_in(dst).map_err(|e| {
            import_err(
                tarball,
                format!(
                    "entry {}: {}",
                    one_line(&String::from_utf8_lossy(&path)),
                    describe(&e)
                ),
            )
        })?;
        if unpacked && is_file {
            size += entry_size;
        }
    }
    if count == 0 {
        return Err(import_err(tarball, "not a tar archive (no entries found)"));
    }
    dirs.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut dir in dirs {
        let path = dir.path_bytes().into_owned();
        dir.unpack_in(dst).map_err(|e| {
            import_err(
                tarball,
                format!(
                    "entry {}: {}",
                    one_line(&String::from_utf8_lossy(&path)),
                    describe(&e)
                ),
            )
        })?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A tar builder with explicit headers (so modes and owners are exact).
    struct Tb {
        b: tar::Builder<Vec<u8>>,
    }

    impl Tb {
        fn new() -> Tb {
            Tb {
                b: tar::Builder::new(Vec::new()),
            }
        }

        fn header(kind: EntryType, mode: u32, size: u64) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h
        }

        fn dir(mut self, path: &str, mode: u32) -> Tb {
            let mut h = Self::header(EntryType::Directory, mode, 0);
            self.b.append_data(&mut h, path, io::empty()).unwrap();
            self
        }

        fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Tb {
            let mut h = Self::header(EntryType::Regular, mode, data.len() as u64);
            self.b.append_data(&mut h, path, data).unwrap();
            self
        }

        fn symlink(mut self, path: &str, target: &str) -> Tb {
            let mut h = Self::header(EntryType::Symlink, 0o777, 0);
            self.b.append_link(&mut h, path, target).unwrap();
            self
        }

        fn device(mut self, path: &str) -> Tb {
            let mut h = Self::header(EntryType::Char, 0o666, 0);
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
            self.b.append_data(&mut h, path, io::empty()).unwrap();
            self
        }

        /// Appends an entry whose name is written raw into the header, so
        /// names the builder refuses ("..", absolute) can be tested.
        fn raw_file(mut self, name: &str, data: &[u8]) -> Tb {
            let mut h = Self::header(EntryType::Regular, 0o644, data.len() as u64);
            let field = &mut h.as_old_mut().name;
            field.fill(0);
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            self.b.append(&h, data).unwrap();
            self
        }

        fn write(self, path: &Path) -> PathBuf {
            let bytes = self.b.into_inner().unwrap();
            fs::write(path, bytes).unwrap();
            path.to_path_buf()
        }
    }

    fn sample(path: &Path) -> PathBuf {
        Tb::new()
            .dir("bin", 0o755)
            .dir("etc", 0o755)
            .dir("ro", 0o555)
            .file("ro/inside", 0o644, b"under a read-only dir")
            .file("bin/tool", 0o4755, b"#!/bin/sh\necho hi\n")
            .symlink("bin/sh", "/bin/tool")
            .file("etc/passwd", 0o600, b"root:x:0:0:root:/root:/bin/sh\n")
            .device("dev-null")
            .write(path)
    }

    fn setup() -> (tempfile::TempDir, ImageStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(&dir.path().join("state"));
        (dir, store)
    }

    fn leftovers(store: &ImageStore) -> Vec<String> {
        match fs::read_dir(store.images_dir()) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".lock")
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn import_extracts_tree_with_modes_and_symlinks() {
        let (tmp, store) = setup();
        let tarball = sample(&tmp.path().join("s.tar"));
        let image = store.import(&tarball, "sample").unwrap();

        let rootfs = store.rootfs("sample");
        assert_eq!(rootfs, tmp.path().join("state/images/sample/rootfs"));
        assert_eq!(
            fs::read(rootfs.join("bin/tool")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(mode(&rootfs.join("bin/tool")), 0o4755);
        assert_eq!(mode(&rootfs.join("etc/passwd")), 0o600);
        assert_eq!(mode(&rootfs.join("ro")), 0o555);
        assert_eq!(
            fs::read(rootfs.join("ro/inside")).unwrap(),
            b"under a read-only dir"
        );
        let link = fs::symlink_metadata(rootfs.join("bin/sh")).unwrap();
        assert!(link.file_type().is_symlink());
        assert_eq!(
            fs::read_link(rootfs.join("bin/sh")).unwrap(),
            Path::new("/bin/tool")
        );
        // Device nodes are skipped.
        assert!(fs::symlink_metadata(rootfs.join("dev-null")).is_err());
        if unsafe { libc::geteuid() } == 0 {
            let m = fs::metadata(rootfs.join("bin/tool")).unwrap();
            assert_eq!((m.uid(), m.gid()), (0, 0));
        }

        // Private directories and metadata file.
        assert_eq!(mode(&store.images_dir()), 0o700);
        assert_eq!(mode(&store.image_dir("sample")), 0o700);
        let json_path = store.image_dir("sample").join("image.json");
        assert_eq!(mode(&json_path), 0o600);

        // image.json fields.
        let on_disk: Image = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
        assert_eq!(on_disk, image);
        assert_eq!(image.name, "sample");
        let expected_sha = hex::encode(Sha256::digest(fs::read(&tarball).unwrap()));
        assert_eq!(image.sha256, expected_sha);
        let expected_size = (b"under a read-only dir".len()
            + b"#!/bin/sh\necho hi\n".len()
            + b"root:x:0:0:root:/root:/bin/sh\n".len()) as u64;
        assert_eq!(image.size, expected_size);
        assert!(image.created > 1_700_000_000);
        assert_eq!(
            image.source,
            fs::canonicalize(&tarball).unwrap().to_string_lossy()
        );
        let raw: serde_json::Value =
            serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
        for key in ["name", "sha256", "size", "created", "source"] {
            assert!(raw.get(key).is_some(), "image.json lacks {key}");
        }

        // No temp dirs left behind.
        assert_eq!(leftovers(&store), vec!["sample".to_string()]);
        assert_eq!(store.get("sample").unwrap(), image);
    }

    #[test]
    fn list_is_sorted_and_skips_invalid_dirs() {
        let (tmp, store) = setup();
        assert!(store.list().unwrap().is_empty());
        let tarball = sample(&tmp.path().join("s.tar"));
        store.import(&tarball, "zeta").unwrap();
        store.import(&tarball, "alpha").unwrap();
        store.import(&tarball, "m.1_x-2").unwrap();
        fs::create_dir(store.images_dir().join("broken")).unwrap();
        fs::create_dir(store.images_dir().join("garbage-json")).unwrap();
        fs::write(store.images_dir().join("garbage-json/image.json"), "{nope").unwrap();
        fs::create_dir(store.images_dir().join(".import-x-123")).unwrap();
        let names: Vec<String> = store.list().unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["alpha", "m.1_x-2", "zeta"]);
    }

    #[test]
    fn get_imports_dropin_tarball_on_first_use() {
        let (_tmp, store) = setup();
        fs::create_dir_all(store.root.join("image")).unwrap();
        let tarball = sample(&store.dropin_tarball("busybox"));
        assert_eq!(tarball, store.root.join("image/busybox.tar"));
        assert!(store.list().unwrap().is_empty());
        let image = store.get("busybox").unwrap();
        assert_eq!(image.name, "busybox");
        assert!(store.rootfs("busybox").join("bin/tool").is_file());
        // The second get reads the stored image, not the tarball again.
        assert_eq!(store.get("busybox").unwrap(), image);
        assert_eq!(store.list().unwrap(), vec![image]);
    }

    #[test]
    fn get_unknown_is_not_found() {
        let (_tmp, store) = setup();
        let err = store.get("nothere").unwrap_err();
        assert!(matches!(err, ImageError::NotFound(ref n) if n == "nothere"));
        assert!(err
            .to_string()
            .contains("mydocker image import FILE.tar nothere"));
    }

    #[test]
    fn invalid_names_are_refused() {
        let (tmp, store) = setup();
        let tarball = sample(&tmp.path().join("s.tar"));
        let long = "a".repeat(200);
        for name in [
            "Busybox",
            "../x",
            "a/b",
            "",
            long.as_str(),
            ".hidden",
            "-x",
            "a b",
        ] {
            assert!(
                matches!(store.import(&tarball, name), Err(ImageError::InvalidName(ref n)) if n == name),
                "import accepted {name:?}"
            );
            assert!(matches!(store.get(name), Err(ImageError::InvalidName(_))));
            assert!(matches!(
                store.remove(name, &[]),
                Err(ImageError::InvalidName(_))
            ));
        }
        assert!(leftovers(&store).is_empty());
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(validate_name("0.1-a_b").is_ok());
    }

    #[test]
    fn reimport_is_refused_and_changes_nothing() {
        let (tmp, store) = setup();
        let first = store
            .import(&sample(&tmp.path().join("s.tar")), "img")
            .unwrap();
        let other = Tb::new()
            .file("other", 0o644, b"x")
            .write(&tmp.path().join("o.tar"));
        let err = store.import(&other, "img").unwrap_err();
        assert!(matches!(err, ImageError::Exists(ref n) if n == "img"));
        assert!(err.to_string().contains("mydocker image rm img"));
        assert_eq!(store.get("img").unwrap(), first);
        assert!(!store.rootfs("img").join("other").exists());
        assert_eq!(leftovers(&store), vec!["img".to_string()]);
    }

    #[test]
    fn concurrent_imports_of_one_name_have_one_winner() {
        let (tmp, store) = setup();
        let tarball = sample(&tmp.path().join("s.tar"));
        let root = store.root.clone();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (root, tarball) = (root.clone(), tarball.clone());
                std::thread::spawn(move || ImageStore::new(&root).import(&tarball, "race"))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{results:?}");
        assert!(results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(ImageError::Exists(_)))));
        assert_eq!(leftovers(&store), vec!["race".to_string()]);
    }

    #[test]
    fn garbage_file_is_an_import_error_without_leftovers() {
        let (tmp, store) = setup();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("text.tar", b"this is not a tarball\n".repeat(100)),
            ("short.tar", b"hello".to_vec()),
            ("empty.tar", Vec::new()),
            ("gz.tar", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0]),
        ];
        for (file, bytes) in cases {
            let path = tmp.path().join(file);
            fs::write(&path, bytes).unwrap();
            let err = store.import(&path, "junk").unwrap_err();
            match &err {
                ImageError::Import { path: p, .. } => assert_eq!(p, &path),
                other => panic!("{file}: expected Import error, got {other:?}"),
            }
            assert!(err.to_string().contains(file), "{err}");
            assert!(
                leftovers(&store).is_empty(),
                "{file}: {:?}",
                leftovers(&store)
            );
        }
        let missing = tmp.path().join("missing.tar");
        assert!(matches!(
            store.import(&missing, "junk"),
            Err(ImageError::Import { .. })
        ));
        assert!(matches!(
            store.import(tmp.path(), "junk"),
            Err(ImageError::Import { .. })
        ));
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn hostile_paths_do_not_escape() {
        let (tmp, store) = setup();
        let tarball = Tb::new()
            .file("ok", 0o644, b"fine")
            .raw_file("../../escape", b"dotdot")
            .raw_file("a/../../../escape2", b"dotdot")
            .raw_file("/abs-escape", b"absolute")
            .write(&tmp.path().join("evil.tar"));
        store.import(&tarball, "evil").unwrap();
        let rootfs = store.rootfs("evil");
        assert!(rootfs.join("ok").is_file());
        // Absolute names land inside the tree.
        assert_eq!(fs::read(rootfs.join("abs-escape")).unwrap(), b"absolute");
        assert!(!Path::new("/abs-escape").exists());
        for name in ["escape", "escape2"] {
            for dir in [
                tmp.path().to_path_buf(),
                tmp.path().join("state"),
                store.images_dir(),
                store.image_dir("evil"),
            ] {
                assert!(
                    !dir.join(name).exists(),
                    "{} escaped",
                    dir.join(name).display()
                );
            }
        }
        assert!(!rootfs.join("escape").exists());

        // Writing through a symlink that leads outside fails the import
        // and leaves nothing behind, inside or outside.
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let tarball = Tb::new()
            .symlink("link", outside.to_str().unwrap())
            .file("link/pwned", 0o644, b"x")
            .write(&tmp.path().join("evil2.tar"));
        let err = store.import(&tarball, "evil2").unwrap_err();
        assert!(matches!(err, ImageError::Import { .. }), "{err:?}");
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(!outside.join("pwned").exists());
        assert_eq!(leftovers(&store), vec!["evil".to_string()]);

        // Same with a hard link to a file outside.
        let victim = tmp.path().join("victim");
        fs::write(&victim, "secret").unwrap();
        let mut h = Tb::header(EntryType::Link, 0o644, 0);
        let mut b = tar::Builder::new(Vec::new());
        // rootfs is <tmp>/state/images/.import-*/rootfs: four levels up is <tmp>.
        b.append_link(&mut h, "hl", "../../../../victim").unwrap();
        fs::write(tmp.path().join("evil3.tar"), b.into_inner().unwrap()).unwrap();
        let r = store.import(&tmp.path().join("evil3.tar"), "evil3");
        assert!(matches!(r, Err(ImageError::Import { .. })), "{r:?}");
        assert!(r.unwrap_err().to_string().contains("outside"));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "secret");
        assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1);
        assert_eq!(leftovers(&store), vec!["evil".to_string()]);
    }

    #[test]
    fn remove_refuses_in_use_then_works() {
        let (tmp, store) = setup();
        let tarball = sample(&tmp.path().join("s.tar"));
        store.import(&tarball, "img").unwrap();
        let users = vec!["c1".to_string(), "c2".to_string()];
        let err = store.remove("img", &users).unwrap_err();
        assert!(matches!(err, ImageError::InUse { .. }));
        assert_eq!(err.to_string(), "image img is used by container(s) c1, c2");
        assert!(store.get("img").is_ok());
        assert!(store.rootfs("img").join("bin/tool").is_file());

        store.remove("img", &[]).unwrap();
        assert!(matches!(store.get("img"), Err(ImageError::NotFound(_))));
        assert!(store.list().unwrap().is_empty());
        assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
        assert!(matches!(
            store.remove("img", &[]),
            Err(ImageError::NotFound(_))
        ));
        // Can be imported again afterwards.
        store.import(&tarball, "img").unwrap();
    }

    #[test]
    fn busybox_script_image_imports() {
        // In the project the script sits beside the crate (host/../scripts);
        // CI runs from a fresh clone elsewhere, so prefer that copy.
        let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-image.sh");
        let script = if beside.is_file() {
            beside
        } else {
            PathBuf::from("/work/main/scripts/make-busybox-image.sh")
        };
        let script = script.as_path();
        let (tmp, store) = setup();
        let out = tmp.path().join("busybox.tar");
        let output = std::process::Command::new(script)
            .arg(&out)
            .output()
            .expect("run make-busybox-image.sh");
        assert!(
            output.status.success(),
            "script failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            out.to_str().unwrap()
        );
        let image = store.import(&out, "busybox").unwrap();
        let rootfs = store.rootfs("busybox");
        let sh = rootfs.join("bin/sh");
        assert!(fs::symlink_metadata(&sh).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_link(&sh).unwrap(), Path::new("/bin/busybox"));
        let bb = fs::metadata(rootfs.join("bin/busybox")).unwrap();
        assert!(bb.is_file() && bb.permissions().mode() & 0o111 == 0o111);
        assert_eq!(mode(&rootfs.join("tmp")), 0o1777);
        assert!(fs::read_to_string(rootfs.join("etc/passwd"))
            .unwrap()
            .contains("root:x:0:0:root:/root:/bin/sh"));
        assert!(image.size >= bb.len());
        // The busybox binary runs (it is static) and knows its applets.
        let run = std::process::Command::new(rootfs.join("bin/busybox"))
            .arg("true")
            .status()
            .unwrap();
        assert!(run.success());

        // Idempotent and reproducible: a second run gives the same bytes.
        let again = std::process::Command::new(script)
            .arg(&out)
            .output()
            .unwrap();
        assert!(again.status.success());
        assert_eq!(sha256_file(&out).unwrap(), image.sha256);
    }
}
