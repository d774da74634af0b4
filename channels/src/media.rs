//! Where citizens' media files live: `<data_dir>/media/YYYY/MM/DD/<name>.<ext>`, written to a
//! `.part` file first and renamed, so a crash never leaves a half-written file under its final
//! name. Used by the WeChat worker (downloaded media) and the app and web-form uploads.
//!
//! Stored attachment URIs are the path relative to the data directory (`media/2026/12/02/…`).

use std::path::{Path, PathBuf};

use jiff::civil::Date;

/// The directory under the data directory that holds every media file.
pub const DIR: &str = "media";

/// The relative path (`media/YYYY/MM/DD/<stem>.<ext>`) for a file received on `day`.
pub fn relative_path(day: Date, stem: &str, ext: &str) -> String {
    format!(
        "{DIR}/{:04}/{:02}/{:02}/{stem}.{ext}",
        day.year(),
        day.month(),
        day.day()
    )
}

/// A random file stem (32 hex digits) that tells nothing about the ticket or the citizen.
pub fn random_stem() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// Writes `bytes` at `data_dir/rel` (creating the directories): to `<path>.part`, then renamed.
/// Returns the full path.
pub async fn write(data_dir: &Path, rel: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let path = data_dir.join(rel);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("part");
    if let Err(e) = tokio::fs::write(&tmp, bytes).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, &path).await?;
    Ok(path)
}

/// Removes files written by [`write`] that ended up unused (a refused or retried report). A file
/// already gone is not an error; other failures are logged, never returned.
pub async fn remove<I>(data_dir: &Path, rels: I)
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    for rel in rels {
        let rel = rel.as_ref();
        // Only our own relative paths, never anything outside the media directory.
        if !rel.starts_with("media/") || rel.split('/').any(|p| p == "..") {
            continue;
        }
        match tokio::fs::remove_file(data_dir.join(rel)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(%rel, error = %e, "unused media file not removed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_by_day_and_stems_are_random() {
        let day = jiff::civil::date(2026, 3, 7);
        assert_eq!(
            relative_path(day, "12319-20260307-000001-4", "jpg"),
            "media/2026/03/07/12319-20260307-000001-4.jpg"
        );
        let (a, b) = (random_stem(), random_stem());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn write_renames_and_remove_cleans_up() {
        let dir = tempfile_dir();
        let rel = relative_path(jiff::civil::date(2026, 12, 2), "x", "jpg");
        let path = write(&dir, &rel, b"abc").await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert!(!path.with_extension("part").exists());
        remove(&dir, &[rel.as_str(), "../etc/passwd", rel.as_str()]).await;
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("channels-media-{}", random_stem()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
