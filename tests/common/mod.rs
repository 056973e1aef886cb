//! Helpers shared by the end-to-end tests: running the binary and finding
//! the shared datasets.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `mporec` with `args` on two threads and returns its output.
pub fn mporec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mporec"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the mporec binary runs")
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Finds the Scientific dataset folder, or returns `None` (with a message) when the
/// shared data is absent outside CI.
pub fn scientific() -> Option<PathBuf> {
    recmodel::shared::require_shared("data/scientific/Scientific.train.inter").map(|p| p.parent().expect("file in a folder").to_path_buf())
}

/// Returns the path of Scientific's reference MiniLM features.
pub fn scientific_features(dir: &Path) -> PathBuf {
    dir.join("Scientific.minilm-l6.f32")
}

/// Path as `&str` for command lines.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
