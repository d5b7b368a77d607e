//! Where the tests find Garage; shared by objstore's tests and the charm's (tests/support).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Garage binary: `$GARAGE_BIN`, else where `scripts/build-garage` caches it; panics naming
/// the remedy when it is missing.
pub fn garage_bin() -> PathBuf {
    let path = std::env::var_os("GARAGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // The workspace root: this crate's manifest dir is it, or a member inside it.
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            let root = manifest
                .ancestors()
                .find(|d| d.join("scripts/build-garage").is_file())
                .expect("scripts/build-garage in the workspace");
            let out = Command::new(root.join("scripts/build-garage"))
                .arg("--path")
                .output()
                .expect("scripts/build-garage runs");
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        });
    assert!(
        path.is_file(),
        "Garage not found at {}: run scripts/build-garage (or scripts/install-deps), or set GARAGE_BIN",
        path.display()
    );
    path
}
