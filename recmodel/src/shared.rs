//! Locating the shared datasets and models that tests and benchmarks read.
//!
//! They live outside the repository in a folder named `shared` beside it
//! (`shared/data`, `shared/models`), or wherever `MPOREC_SHARED` points.

use std::path::{Path, PathBuf};

/// Finds the shared folder: `$MPOREC_SHARED` if set, else the first `shared`
/// folder holding `data/` found beside the current directory or one of its
/// ancestors. Cargo runs tests from each crate's folder, hence the walk up.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MPOREC_SHARED") {
        return Some(PathBuf::from(dir));
    }
    let start = std::env::current_dir().ok()?;
    let mut dir: Option<&Path> = Some(start.as_path());
    while let Some(d) = dir {
        let candidate = d.join("shared");
        if candidate.join("data").is_dir() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

/// Returns the path `relative` inside the shared folder, or `None` with a message on
/// stderr when it is absent outside CI.
///
/// # Panics
/// Panics when the file is absent and the `CI` environment variable is set:
/// CI always has the shared data, so a missing file there is a failure.
#[track_caller]
pub fn require_shared(relative: &str) -> Option<PathBuf> {
    let found = shared_dir().map(|d| d.join(relative)).filter(|p| p.exists());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("shared file {relative} not found (set MPOREC_SHARED to the folder holding data/ and models/)");
        }
        eprintln!("skipping: shared file {relative} not found (set MPOREC_SHARED to the folder holding data/ and models/)");
    }
    found
}
