//! `photo::inspect` on any uploaded bytes: a `Photo` or a `PhotoError`, never a panic. When a
//! photo is accepted, its stripped copy (`Photo::cleaned`, what is stored and served) must be
//! accepted again as the same image: same format and size, the orientation kept (values 2–8 are
//! written back, except in a simple WebP, which cannot hold EXIF), no location or capture time left.

#![no_main]

use channels::photo::{PhotoLimits, inspect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let limits = PhotoLimits::DEFAULT;
    let Ok(photo) = inspect(bytes, &limits) else {
        return;
    };
    let again = inspect(&photo.cleaned, &limits)
        .unwrap_or_else(|e| panic!("the cleaned copy of an accepted photo is refused: {e}"));
    assert_eq!(
        (again.format, again.width, again.height),
        (photo.format, photo.width, photo.height),
        "the cleaned copy is another image"
    );
    // A simple (non-VP8X) WebP cannot carry EXIF: there the orientation is reported to the
    // caller but, as documented, not written back.
    let simple_webp = photo.format == channels::photo::PhotoFormat::Webp
        && photo.cleaned.get(12..16) != Some(b"VP8X".as_slice());
    if let Some(o) = photo.orientation.filter(|o| (2..=8).contains(o))
        && !simple_webp
    {
        assert_eq!(again.orientation, Some(o), "the orientation was lost");
    }
    assert_eq!(again.gps, None, "the location was not stripped");
    assert_eq!(again.taken_at, None, "the capture time was not stripped");
});
