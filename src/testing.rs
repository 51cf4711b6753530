//! Helpers for the crate's unit tests: directories that clean up after themselves.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

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
