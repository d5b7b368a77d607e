//! Owner-only files under `$SANDBOX_HOME`: directories 0700, files 0600 (0700 when executable),
//! whatever the process's umask.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `path` and its missing parents as 0700 directories; an existing `path` is made 0700.
pub fn dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, Permissions::from_mode(0o700))
}

/// Writes `data` to `path` as a 0600 file (replacing its content and mode).
pub fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(0o600))?;
    f.write_all(data)
}

/// Opens `path` for appending as a 0600 file.
pub fn append(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(0o600))?;
    Ok(f)
}

/// The owner-only form of a file mode: the owner's bits, nothing for group and others.
pub fn owner_only(mode: u32) -> u32 {
    mode & 0o700
}
