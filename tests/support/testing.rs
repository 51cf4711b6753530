//! Helpers for the crate's unit tests: directories that clean up after themselves, and a
//! deadline for tests of code that loops.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[allow(dead_code)] // the driver tests (tests/common) use the rest of it
#[path = "deadline.rs"]
mod deadline;
pub(crate) use deadline::Deadline;

/// How long one unit test may run: they take milliseconds, and `scripts/mutants.sh` gives a
/// whole unit test run more than this before it counts a mutant as a timeout, not caught.
const UNIT_TEST_DEADLINE: Duration = if cfg!(miri) {
    Duration::from_secs(3600)
} else {
    Duration::from_secs(10)
};

/// Starts a [`Deadline`] of [`UNIT_TEST_DEADLINE`] for the calling unit test: a loop that
/// never ends fails the run with the test's name instead of hanging it.
pub(crate) fn deadline() -> Deadline {
    deadline::deadline_of(UNIT_TEST_DEADLINE)
}

/// A fresh directory under the system's temporary directory, removed with everything in
/// it when dropped — also when the test that made it fails.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/ixy-<tag>-<pid>-<n>`, unique within the process.
    pub(crate) fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ixy-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::TempDir;

    #[test]
    fn a_temp_dir_is_removed_even_when_its_test_panics() {
        let kept = std::panic::catch_unwind(|| {
            let dir = TempDir::new("panics");
            std::fs::write(dir.join("file"), "x").unwrap();
            let path = dir.to_path_buf();
            assert!(path.join("file").exists());
            std::panic::panic_any(path);
        })
        .unwrap_err();
        let path = kept.downcast::<std::path::PathBuf>().unwrap();
        assert!(!path.exists(), "{} left behind", path.display());
        let (a, b) = (TempDir::new("t"), TempDir::new("t"));
        assert_ne!(*a, *b, "each directory is new");
    }
}
