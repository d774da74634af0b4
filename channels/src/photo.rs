//! Photo uploads: checked by content, EXIF location read, metadata stripped.
//!
//! Citizens attach up to nine photos to a report (city app, web form, WeChat image). Before a
//! photo is stored, [`inspect`] turns the uploaded bytes into a [`Photo`]:
//!
//! 1. **Type by content.** The file name and the declared `Content-Type` are never trusted: the
//!    bytes must be a JPEG, PNG or WebP ([`ACCEPTED_FORMATS`]) whose structure holds together
//!    (JPEG segments and an end marker, PNG chunk CRCs and `IEND`, WebP RIFF sizes and an image
//!    chunk). Anything else, or a truncated or corrupt file, is refused with a [`PhotoError`].
//! 2. **Size and dimensions.** [`PhotoLimits`] bounds the byte size, the pixel count read from the
//!    header (so a small file that would decode to gigabytes is refused) and the number of photos
//!    in one report ([`check_count`], [`inspect_batch`]).
//! 3. **Location and time.** The EXIF GPS position (WGS-84 decimal degrees, as the camera wrote
//!    it) and `DateTimeOriginal` are read with kamadak-exif. Bad EXIF never fails the photo: the
//!    field is just `None`.
//! 4. **Metadata stripped.** [`Photo::cleaned`] is the same image with EXIF, XMP, IPTC, comments
//!    and text chunks removed (an allow-list: only what a decoder needs, plus the ICC colour
//!    profile, is kept). **Orientation choice:** because dropping EXIF would show phone photos
//!    sideways, a minimal EXIF block holding *only* the Orientation tag is written back when the
//!    original had a non-default orientation (JPEG APP1, PNG `eXIf`, WebP `EXIF` in an extended
//!    file). The value is also reported in [`Photo::orientation`] for callers that make thumbnails.
//!
//! *Invariant:* sans-IO and panic-free. [`inspect`] is a pure function of `&[u8]`; every read is
//! bounds-checked, so arbitrary bytes yield `Ok` or `Err`, never a panic (it is a fuzz target).
//! Pixel data is never decoded.

use std::fmt;

/// The formats [`inspect`] accepts, as a citizen-facing phrase.
pub const ACCEPTED_FORMATS: &str = "JPEG, PNG or WebP";

/// Limits applied to uploaded photos. [`PhotoLimits::default`] is 10 MiB, 100 megapixels and 9
/// photos per report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoLimits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width × height, in pixels (stops decompression bombs).
    pub max_pixels: u64,
    /// Most photos accepted in one report.
    pub max_count: usize,
}

impl PhotoLimits {
    /// The default limits: 10 MiB, 100 megapixels, 9 photos.
    pub const DEFAULT: PhotoLimits = PhotoLimits {
        max_bytes: 10 * 1024 * 1024,
        max_pixels: 100_000_000,
        max_count: 9,
    };
}

impl Default for PhotoLimits {
    fn default() -> Self {
        PhotoLimits::DEFAULT
    }
}

/// An accepted image format, as detected from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoFormat {
    /// JPEG (JFIF or Exif), baseline or progressive.
    Jpeg,
    /// PNG, including APNG.
    Png,
    /// WebP: lossy, lossless or extended.
    Webp,
}

impl PhotoFormat {
    /// Every accepted format.
    pub const ALL: [PhotoFormat; 3] = [PhotoFormat::Jpeg, PhotoFormat::Png, PhotoFormat::Webp];

    /// The MIME type to store and serve the photo with (`image/jpeg`, ...).
    pub fn mime(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "image/jpeg",
            PhotoFormat::Png => "image/png",
            PhotoFormat::Webp => "image/webp",
        }
    }

    /// The file extension to store the photo under, without the dot (`jpg`, `png`, `webp`).
    pub fn extension(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "jpg",
            PhotoFormat::Png => "png",
            PhotoFormat::Webp => "webp",
        }
    }

    /// The format's usual name (`JPEG`, `PNG`, `WebP`).
    pub fn name(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "JPEG",
            PhotoFormat::Png => "PNG",
            PhotoFormat::Webp => "WebP",
        }
    }

    /// The format whose signature starts `bytes`, if any. This looks at the magic bytes only;
    /// [`inspect`] also checks the structure.
    pub fn sniff(bytes: &[u8]) -> Option<PhotoFormat> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(PhotoFormat::Jpeg)
        } else if bytes.starts_with(&PNG_SIGNATURE) {
            Some(PhotoFormat::Png)
        } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
            Some(PhotoFormat::Webp)
        } else {
            None
        }
    }
}

impl fmt::Display for PhotoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A position in WGS-84 decimal degrees, as recorded by the camera. Chinese web maps use GCJ-02:
/// convert before drawing it on one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Latitude, −90 to 90, north positive.
    pub lat: f64,
    /// Longitude, −180 to 180, east positive.
    pub lon: f64,
}

/// An accepted photo: what was read from it, and the bytes to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Photo {
    /// The format found in the content (not the file name).
    pub format: PhotoFormat,
    /// Width in pixels, as stored (before any EXIF rotation).
    pub width: u32,
    /// Height in pixels, as stored (before any EXIF rotation).
    pub height: u32,
    /// The EXIF GPS position, if present and sensible.
    pub gps: Option<GeoPoint>,
    /// EXIF `DateTimeOriginal` as `YYYY-MM-DD HH:MM:SS` camera-local time (no zone), if present
    /// and well formed.
    pub taken_at: Option<String>,
    /// EXIF Orientation (1–8; 6 means "rotate 90° clockwise to view"), if present. Values 2–8
    /// are also kept in [`Photo::cleaned`] as a one-tag EXIF block.
    pub orientation: Option<u16>,
    /// The image with its metadata stripped: same format, same pixels, safe to store and serve.
    pub cleaned: Vec<u8>,
}

/// Why a photo was refused. The message tells the citizen what to do; [`PhotoError::code`] is
/// stable for logs, metrics and API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    /// The upload has no bytes.
    #[error("the photo is empty; please attach it again")]
    Empty,
    /// The file is larger than [`PhotoLimits::max_bytes`].
    #[error(
        "the photo is {} but at most {} is accepted; please send a smaller photo",
        human_size(*.size),
        human_size(*.max)
    )]
    TooLarge {
        /// The upload's size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The content is not JPEG, PNG or WebP, whatever its name says.
    #[error("{}", type_message(*.found))]
    Type {
        /// What the content looks like, when recognised (e.g. `a GIF image`).
        found: Option<&'static str>,
    },
    /// The content starts like an accepted format but is truncated or damaged.
    #[error(
        "the {format} photo is damaged or incomplete ({reason}); please save or take it again and resend it"
    )]
    Corrupt {
        /// The format the content claimed to be.
        format: PhotoFormat,
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// The header declares more pixels than [`PhotoLimits::max_pixels`].
    #[error(
        "the photo is {width}×{height} pixels, more than the {} limit; please send a smaller photo",
        pixel_count(*.max_pixels)
    )]
    Dimensions {
        /// Declared width in pixels.
        width: u32,
        /// Declared height in pixels.
        height: u32,
        /// The limit in pixels.
        max_pixels: u64,
    },
    /// More photos than [`PhotoLimits::max_count`] in one report.
    #[error("{count} photos were attached but at most {max} are accepted; please remove some")]
    TooMany {
        /// How many were attached.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// One photo of a batch was refused ([`inspect_batch`]); `index` counts from 1.
    #[error("photo {index}: {source}")]
    InBatch {
        /// Position of the refused photo, counting from 1 as a citizen would.
        index: usize,
        /// Why it was refused.
        source: Box<PhotoError>,
    },
}

impl PhotoError {
    /// A stable code for logs, metrics and API clients. [`PhotoError::InBatch`] gives the code
    /// of the photo that was refused.
    pub fn code(&self) -> &'static str {
        match self {
            PhotoError::Empty => "photo_empty",
            PhotoError::TooLarge { .. } => "photo_too_large",
            PhotoError::Type { .. } => "photo_type",
            PhotoError::Corrupt { .. } => "photo_corrupt",
            PhotoError::Dimensions { .. } => "photo_dimensions",
            PhotoError::TooMany { .. } => "photo_too_many",
            PhotoError::InBatch { source, .. } => source.code(),
        }
    }
}

/// Checks that a report may carry `count` photos.
pub fn check_count(count: usize, limits: &PhotoLimits) -> Result<(), PhotoError> {
    if count > limits.max_count {
        return Err(PhotoError::TooMany {
            count,
            max: limits.max_count,
        });
    }
    Ok(())
}

/// Inspects every photo of one report: first the count, then each photo with [`inspect`]. The
/// first refusal is returned as [`PhotoError::InBatch`] naming the photo.
pub fn inspect_batch(photos: &[&[u8]], limits: &PhotoLimits) -> Result<Vec<Photo>, PhotoError> {
    check_count(photos.len(), limits)?;
    photos
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            inspect(bytes, limits).map_err(|e| PhotoError::InBatch {
                index: i + 1,
                source: Box::new(e),
            })
        })
        .collect()
}

/// Checks one uploaded photo by its content, reads its size, location and capture time, and
/// returns it with its metadata stripped. See the module documentation for what is checked.
pub fn inspect(bytes: &[u8], limits: &PhotoLimits) -> Result<Photo, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(PhotoError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let Some(format) = PhotoFormat::sniff(bytes) else {
        return Err(PhotoError::Type {
            found: describe_other(bytes),
        });
    };
    let parsed = match format {
        PhotoFormat::Jpeg => jpeg::parse(bytes)?,
        PhotoFormat::Png => png::parse(bytes)?,
        PhotoFormat::Webp => webp::parse(bytes)?,
    };
    let (width, height) = (parsed.width, parsed.height);
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PhotoError::Dimensions {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    let meta = parsed.exif.map(exif_meta::read).unwrap_or_default();
    let keep_orientation = meta.orientation.filter(|&o| o != 1);
    let cleaned = parsed.clean(keep_orientation);
    Ok(Photo {
        format,
        width,
        height,
        gps: meta.gps,
        taken_at: meta.taken_at,
        orientation: meta.orientation,
        cleaned,
    })
}

/// What a refused file looks like, for the error message.
fn describe_other(b: &[u8]) -> Option<&'static str> {
    let text = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    let text = &text[text
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(text.len())..];
    let starts_ci = |p: &[u8]| {
        text.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    let ftyp = b.get(4..8) == Some(b"ftyp");
    let brand = b.get(8..12).unwrap_or_default();
    Some(if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        "a GIF image"
    } else if ftyp
        && matches!(
            brand,
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1"
        )
    {
        "a HEIC photo (on an iPhone, choose Settings > Camera > Formats > Most Compatible)"
    } else if ftyp && brand == b"avif" {
        "an AVIF image"
    } else if ftyp {
        "a video"
    } else if b.starts_with(b"BM") && b.len() > 14 {
        "a BMP image"
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        "a TIFF image"
    } else if b.starts_with(b"%PDF") {
        "a PDF document"
    } else if b.starts_with(b"MZ") || b.starts_with(b"\x7FELF") {
        "a program"
    } else if b.starts_with(b"PK\x03\x04") {
        "a ZIP archive or Office document"
    } else if b.starts_with(b"RIFF") {
        "an audio or video file"
    } else if starts_ci(b"<!doctype html") || starts_ci(b"<html") {
        "a web page"
    } else if starts_ci(b"<?xml") || starts_ci(b"<svg") {
        "an XML or SVG document"
    } else {
        return None;
    })
}

fn type_message(found: Option<&str>) -> String {
    let what = found.unwrap_or("not a photo in a format we accept");
    format!(
        "this file is {what}: only {ACCEPTED_FORMATS} photos are accepted; please send the photo as one of those"
    )
}

fn pixel_count(pixels: u64) -> String {
    if pixels >= 1_000_000 {
        format!("{} megapixel", (pixels + 500_000) / 1_000_000)
    } else {
        format!("{pixels} pixel")
    }
}

fn human_size(bytes: usize) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= MIB {
        format!("{:.1} MB", b / MIB)
    } else {
        format!("{:.0} KB", (b / 1024.0).ceil())
    }
}

/// A structurally valid image: its size, its raw EXIF (TIFF) block if any, and how to rebuild
/// it without metadata.
struct Parsed<'a> {
    width: u32,
    height: u32,
    exif: Option<&'a [u8]>,
    body: Body<'a>,
}

enum Body<'a> {
    Jpeg(jpeg::Layout<'a>),
    Png(png::Layout<'a>),
    Webp(webp::Layout<'a>),
}

impl Parsed<'_> {
    /// The image without metadata; with a one-tag EXIF block if `orientation` is given.
    fn clean(&self, orientation: Option<u16>) -> Vec<u8> {
        let exif = orientation.map(orientation_tiff);
        match &self.body {
            Body::Jpeg(l) => l.write(exif.as_ref().map(|e| &e[..])),
            Body::Png(l) => l.write(exif.as_ref().map(|e| &e[..])),
            Body::Webp(l) => l.write(exif.as_ref().map(|e| &e[..])),
        }
    }
}

/// A big-endian TIFF block with one IFD holding one tag: Orientation (0x0112, SHORT).
fn orientation_tiff(orientation: u16) -> [u8; 26] {
    let mut t = [0u8; 26];
    t[..8].copy_from_slice(b"MM\0\x2a\0\0\0\x08");
    t[8..10].copy_from_slice(&1u16.to_be_bytes());
    t[10..12].copy_from_slice(&0x0112u16.to_be_bytes());
    t[12..14].copy_from_slice(&3u16.to_be_bytes());
    t[14..18].copy_from_slice(&1u32.to_be_bytes());
    t[18..20].copy_from_slice(&orientation.to_be_bytes());
    // t[20..22] pads the value; t[22..26] = 0 ends the IFD chain.
    t
}

/// EXIF blocks in PNG and WebP should be bare TIFF, but some writers keep JPEG's prefix.
fn strip_exif_prefix(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"Exif\0\0").unwrap_or(data)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(3)?)?;
    Some(u32::from_le_bytes([*s.first()?, *s.get(1)?, *s.get(2)?, 0]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// JPEG: SOI, marker segments with in-bounds lengths, a frame header (SOFn) before the first
/// scan, entropy-coded data walked to the next marker, and EOI. Bytes after EOI (trailers,
/// MPF secondary images with their own EXIF) are dropped.
mod jpeg {
    use super::{Body, Parsed, PhotoError, PhotoFormat, be16};

    const fn corrupt(reason: &'static str) -> PhotoError {
        PhotoError::Corrupt {
            format: PhotoFormat::Jpeg,
            reason,
        }
    }

    const TRUNCATED: PhotoError = corrupt("the file ends too early");

    /// The pieces of the original to copy, in order, and where a new EXIF APP1 goes.
    pub(super) struct Layout<'a> {
        pieces: Vec<&'a [u8]>,
        exif_at: usize,
    }

    impl Layout<'_> {
        pub(super) fn write(&self, exif: Option<&[u8]>) -> Vec<u8> {
            let mut out =
                Vec::with_capacity(self.pieces.iter().map(|p| p.len()).sum::<usize>() + 64);
            for (i, piece) in self.pieces.iter().enumerate() {
                if i == self.exif_at
                    && let Some(tiff) = exif
                {
                    // APP1 length counts itself (2) + "Exif\0\0" (6) + the TIFF block.
                    let len = u16::try_from(2 + 6 + tiff.len()).unwrap_or(u16::MAX);
                    out.extend_from_slice(&[0xFF, 0xE1]);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(b"Exif\0\0");
                    out.extend_from_slice(tiff);
                }
                out.extend_from_slice(piece);
            }
            out
        }
    }

    fn is_sof(m: u8) -> bool {
        matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC)
    }

    pub(super) fn parse(b: &[u8]) -> Result<Parsed<'_>, PhotoError> {
        let soi = b
            .get(..2)
            .filter(|s| *s == [0xFF, 0xD8])
            .ok_or(corrupt("no start marker"))?;
        let mut pieces = vec![soi];
        let mut exif_at = 1;
        let mut exif = None;
        let mut frame: Option<(u32, u32)> = None;
        let mut scanned = false;
        let mut pos = 2;
        loop {
            match b.get(pos) {
                Some(0xFF) => {}
                Some(_) => return Err(corrupt("stray bytes between segments")),
                None => return Err(TRUNCATED),
            }
            // Any number of 0xFF fill bytes may precede a marker.
            let mut at = pos + 1;
            while b.get(at) == Some(&0xFF) {
                at += 1;
            }
            let marker = *b.get(at).ok_or(TRUNCATED)?;
            let start = at - 1;
            match marker {
                0xD9 => {
                    if !scanned {
                        return Err(corrupt("it ends before the image data"));
                    }
                    pieces.push(b.get(start..at + 1).ok_or(TRUNCATED)?);
                    break;
                }
                0x00 | 0xD8 => return Err(corrupt("unexpected marker")),
                0x01 | 0xD0..=0xD7 => {
                    // Stand-alone markers without a length.
                    pieces.push(b.get(start..at + 1).ok_or(TRUNCATED)?);
                    pos = at + 1;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(be16(b, at + 1).ok_or(TRUNCATED)?);
            if len < 2 {
                return Err(corrupt("a segment has an impossible length"));
            }
            let end = at + 1 + len;
            let segment = b.get(start..end).ok_or(TRUNCATED)?;
            let data = b.get(at + 3..end).ok_or(TRUNCATED)?;
            pos = end;
            let keep = match marker {
                m if is_sof(m) => {
                    if frame.is_some() {
                        return Err(corrupt("two frame headers"));
                    }
                    frame = Some(frame_size(data)?);
                    true
                }
                0xDA => {
                    if frame.is_none() {
                        return Err(corrupt("image data before the frame header"));
                    }
                    pieces.push(segment);
                    scanned = true;
                    let next = scan_end(b, end)?;
                    pieces.push(b.get(end..next).ok_or(TRUNCATED)?);
                    pos = next;
                    continue;
                }
                // APP0 JFIF: needed by some decoders; an Exif APP1 follows it.
                0xE0 if data.starts_with(b"JFIF\0") => {
                    if pieces.len() == 1 {
                        exif_at = 2;
                    }
                    true
                }
                0xE1 => {
                    if exif.is_none()
                        && let Some(tiff) = data.strip_prefix(b"Exif\0")
                    {
                        // "Exif\0\0" normally; some writers put 0xFF as the pad byte.
                        exif = tiff.get(1..);
                    }
                    false
                }
                0xE2 => data.starts_with(b"ICC_PROFILE\0"),
                // APP14 Adobe tells decoders the colour transform (RGB vs YCbCr, CMYK).
                0xEE => data.starts_with(b"Adobe"),
                // Other APPn (XMP, IPTC/Photoshop APP13, MPF, maker data) and COM: metadata.
                0xE0..=0xEF | 0xFE => false,
                // DQT, DHT, DRI, DAC, DNL and the rest: needed to decode.
                _ => true,
            };
            if keep {
                pieces.push(segment);
            }
        }
        let (width, height) = frame.ok_or(corrupt("no frame header"))?;
        Ok(Parsed {
            width,
            height,
            exif,
            body: Body::Jpeg(Layout { pieces, exif_at }),
        })
    }

    /// Width and height from a SOFn segment body.
    fn frame_size(data: &[u8]) -> Result<(u32, u32), PhotoError> {
        let bad = corrupt("the frame header is malformed");
        let height = be16(data, 1).ok_or(bad.clone())?;
        let width = be16(data, 3).ok_or(bad.clone())?;
        let components = usize::from(*data.get(5).ok_or(bad.clone())?);
        if !(1..=4).contains(&components) || data.len() < 6 + 3 * components {
            return Err(bad);
        }
        if width == 0 || height == 0 {
            return Err(corrupt("the frame header gives no width or height"));
        }
        Ok((u32::from(width), u32::from(height)))
    }

    /// The offset of the marker that ends the entropy-coded data starting at `from`
    /// (skipping stuffed `FF 00`, restart markers and fill bytes).
    fn scan_end(b: &[u8], from: usize) -> Result<usize, PhotoError> {
        let mut i = from;
        loop {
            let ff = i + b
                .get(i..)
                .ok_or(TRUNCATED)?
                .iter()
                .position(|&x| x == 0xFF)
                .ok_or(TRUNCATED)?;
            match *b.get(ff + 1).ok_or(TRUNCATED)? {
                0x00 | 0xD0..=0xD7 => i = ff + 2,
                0xFF => i = ff + 1,
                _ => return Ok(ff),
            }
        }
    }
}

/// PNG: signature, IHDR first, every chunk in bounds with a good CRC, IDAT, IEND. Only chunks a
/// decoder needs (and colour information) are kept; bytes after IEND are dropped.
mod png {
    use super::{Body, PNG_SIGNATURE, Parsed, PhotoError, PhotoFormat, be32, strip_exif_prefix};

    const fn corrupt(reason: &'static str) -> PhotoError {
        PhotoError::Corrupt {
            format: PhotoFormat::Png,
            reason,
        }
    }

    const TRUNCATED: PhotoError = corrupt("the file ends too early");

    /// Ancillary chunks kept: colour, transparency, density and APNG animation. Everything else
    /// ancillary (tEXt, zTXt, iTXt, eXIf, tIME, private chunks) is metadata and dropped.
    const KEPT_ANCILLARY: [&[u8; 4]; 15] = [
        b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs", b"hIST", b"cICP",
        b"mDCv", b"cLLI", b"acTL", b"fcTL", b"fdAT",
    ];

    /// The original chunks to copy (whole, with length and CRC) after the signature; IHDR first.
    pub(super) struct Layout<'a> {
        chunks: Vec<&'a [u8]>,
    }

    impl Layout<'_> {
        pub(super) fn write(&self, exif: Option<&[u8]>) -> Vec<u8> {
            let mut out =
                Vec::with_capacity(self.chunks.iter().map(|c| c.len()).sum::<usize>() + 64);
            out.extend_from_slice(&PNG_SIGNATURE);
            for (i, chunk) in self.chunks.iter().enumerate() {
                out.extend_from_slice(chunk);
                if i == 0
                    && let Some(tiff) = exif
                {
                    // eXIf must come before IDAT: right after IHDR is always allowed.
                    let len = u32::try_from(tiff.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&len.to_be_bytes());
                    let body_at = out.len();
                    out.extend_from_slice(b"eXIf");
                    out.extend_from_slice(tiff);
                    let crc = super::crc32(out.get(body_at..).unwrap_or_default());
                    out.extend_from_slice(&crc.to_be_bytes());
                }
            }
            out
        }
    }

    pub(super) fn parse(b: &[u8]) -> Result<Parsed<'_>, PhotoError> {
        if !b.starts_with(&PNG_SIGNATURE) {
            return Err(corrupt("no PNG signature"));
        }
        let mut pos = PNG_SIGNATURE.len();
        let mut chunks = Vec::new();
        let mut size = None;
        let mut indexed = false;
        let (mut palette, mut image_data, mut exif) = (false, false, None);
        loop {
            let len = be32(b, pos).ok_or(TRUNCATED)?;
            if len > 0x7FFF_FFFF {
                return Err(corrupt("a chunk has an impossible length"));
            }
            let data_at = pos + 8;
            let data_end = data_at.checked_add(len as usize).ok_or(TRUNCATED)?;
            let chunk_end = data_end.checked_add(4).ok_or(TRUNCATED)?;
            let chunk = b.get(pos..chunk_end).ok_or(TRUNCATED)?;
            let kind: [u8; 4] = b
                .get(pos + 4..data_at)
                .and_then(|k| k.try_into().ok())
                .ok_or(TRUNCATED)?;
            let data = b.get(data_at..data_end).ok_or(TRUNCATED)?;
            if !kind.iter().all(u8::is_ascii_alphabetic) {
                return Err(corrupt("a chunk has an invalid name"));
            }
            let stored_crc = be32(b, data_end).ok_or(TRUNCATED)?;
            if super::crc32(b.get(pos + 4..data_end).ok_or(TRUNCATED)?) != stored_crc {
                return Err(corrupt("a chunk checksum is wrong"));
            }
            pos = chunk_end;
            if size.is_none() && &kind != b"IHDR" {
                return Err(corrupt("the header chunk is missing"));
            }
            let keep = match &kind {
                b"IHDR" => {
                    if size.is_some() {
                        return Err(corrupt("two header chunks"));
                    }
                    let (w, h, colour) = header(data)?;
                    size = Some((w, h));
                    indexed = colour == 3;
                    true
                }
                b"PLTE" => {
                    palette = true;
                    true
                }
                b"IDAT" => {
                    image_data = true;
                    true
                }
                b"IEND" => {
                    chunks.push(chunk);
                    break;
                }
                b"eXIf" => {
                    if exif.is_none() {
                        exif = Some(strip_exif_prefix(data));
                    }
                    false
                }
                k if k[0].is_ascii_uppercase() => {
                    return Err(corrupt("it uses a required chunk this service cannot read"));
                }
                k => KEPT_ANCILLARY.contains(&k),
            };
            if keep {
                chunks.push(chunk);
            }
        }
        if !image_data {
            return Err(corrupt("there is no image data"));
        }
        if indexed && !palette {
            return Err(corrupt("the palette is missing"));
        }
        let (width, height) = size.ok_or(corrupt("the header chunk is missing"))?;
        Ok(Parsed {
            width,
            height,
            exif,
            body: Body::Png(Layout { chunks }),
        })
    }

    /// Width, height and colour type from IHDR, with the field combinations the spec allows.
    fn header(d: &[u8]) -> Result<(u32, u32, u8), PhotoError> {
        let bad = corrupt("the header chunk is malformed");
        let [
            w0,
            w1,
            w2,
            w3,
            h0,
            h1,
            h2,
            h3,
            depth,
            colour,
            compression,
            filter,
            interlace,
        ] = *<&[u8; 13]>::try_from(d).map_err(|_| bad.clone())?;
        let (width, height) = (
            u32::from_be_bytes([w0, w1, w2, w3]),
            u32::from_be_bytes([h0, h1, h2, h3]),
        );
        if width == 0 || height == 0 || width > 0x7FFF_FFFF || height > 0x7FFF_FFFF {
            return Err(corrupt("the header gives an impossible width or height"));
        }
        let depth_ok = match colour {
            0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
            3 => matches!(depth, 1 | 2 | 4 | 8),
            2 | 4 | 6 => matches!(depth, 8 | 16),
            _ => false,
        };
        if !depth_ok || compression != 0 || filter != 0 || interlace > 1 {
            return Err(bad);
        }
        Ok((width, height, colour))
    }
}

/// WebP: a RIFF whose size fits the file, chunks in bounds, and a VP8 (lossy), VP8L (lossless)
/// or VP8X (extended) image. EXIF, XMP and unknown chunks are dropped; VP8X flags and the RIFF
/// size are rewritten.
mod webp {
    use super::{Body, Parsed, PhotoError, PhotoFormat, le16, le24, le32, strip_exif_prefix};

    const fn corrupt(reason: &'static str) -> PhotoError {
        PhotoError::Corrupt {
            format: PhotoFormat::Webp,
            reason,
        }
    }

    const TRUNCATED: PhotoError = corrupt("the file ends too early");

    const FLAG_ICC: u8 = 0x20;
    const FLAG_EXIF: u8 = 0x08;
    const FLAG_ANIMATION: u8 = 0x02;
    /// Alpha, animation and ICC are the VP8X flags that describe kept data (EXIF is set again
    /// only for a written orientation block; XMP, reserved bits and unknown bits are cleared).
    const FLAGS_KEPT: u8 = 0x10 | FLAG_ANIMATION | FLAG_ICC;

    /// The chunks to keep (fourcc and payload), in order; VP8X, if present, is first.
    pub(super) struct Layout<'a> {
        chunks: Vec<(&'a [u8; 4], &'a [u8])>,
    }

    impl Layout<'_> {
        pub(super) fn write(&self, exif: Option<&[u8]>) -> Vec<u8> {
            let extended = self.chunks.first().is_some_and(|(k, _)| *k == b"VP8X");
            let exif = exif.filter(|_| extended);
            let has_icc = self.chunks.iter().any(|(k, _)| *k == b"ICCP");
            let mut out = Vec::with_capacity(
                self.chunks.iter().map(|(_, d)| d.len() + 9).sum::<usize>() + 64,
            );
            out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
            for (i, (kind, data)) in self.chunks.iter().enumerate() {
                if i == 0 && extended {
                    let mut vp8x = data.to_vec();
                    if let Some(flags) = vp8x.first_mut() {
                        *flags &= FLAGS_KEPT & !FLAG_ICC;
                        if has_icc {
                            *flags |= FLAG_ICC;
                        }
                        if exif.is_some() {
                            *flags |= FLAG_EXIF;
                        }
                    }
                    put_chunk(&mut out, b"VP8X", &vp8x);
                } else {
                    put_chunk(&mut out, kind, data);
                }
            }
            if let Some(tiff) = exif {
                // EXIF follows the image data (and precedes XMP, which is gone).
                put_chunk(&mut out, b"EXIF", tiff);
            }
            let riff_size = u32::try_from(out.len() - 8).unwrap_or(u32::MAX);
            if let Some(size) = out.get_mut(4..8) {
                size.copy_from_slice(&riff_size.to_le_bytes());
            }
            out
        }
    }

    fn put_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(kind);
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
    }

    pub(super) fn parse(b: &[u8]) -> Result<Parsed<'_>, PhotoError> {
        if b.get(..4) != Some(b"RIFF") || b.get(8..12) != Some(b"WEBP") {
            return Err(corrupt("no RIFF WEBP header"));
        }
        let riff_size = le32(b, 4).ok_or(TRUNCATED)? as usize;
        let riff_end = riff_size.checked_add(8).ok_or(TRUNCATED)?;
        if riff_size < 4 + 8 {
            return Err(corrupt("the RIFF size is too small"));
        }
        if riff_end > b.len() {
            return Err(TRUNCATED);
        }
        let mut all = Vec::new();
        let mut pos = 12;
        while pos < riff_end {
            let kind: &[u8; 4] = b
                .get(pos..pos + 4)
                .and_then(|k| k.try_into().ok())
                .ok_or(TRUNCATED)?;
            let len = le32(b, pos + 4).ok_or(TRUNCATED)? as usize;
            let data_at = pos + 8;
            let data_end = data_at.checked_add(len).filter(|&e| e <= riff_end);
            let data = data_end
                .and_then(|e| b.get(data_at..e))
                .ok_or(corrupt("a chunk runs past the end of the file"))?;
            // Chunks are padded to an even size; tolerate a missing pad on the last one.
            pos = (data_at + len + len % 2).min(riff_end);
            all.push((kind, data));
        }
        let (first_kind, first) = *all.first().ok_or(corrupt("there is no image data"))?;
        let mut exif = None;
        let (width, height, chunks) = match first_kind {
            b"VP8 " | b"VP8L" => {
                let (w, h) = bitstream_size(first_kind, first)?;
                for (kind, data) in &all[1..] {
                    if *kind == b"EXIF" && exif.is_none() {
                        exif = Some(strip_exif_prefix(data));
                    }
                }
                (w, h, vec![(first_kind, first)])
            }
            b"VP8X" => {
                if first.len() < 10 {
                    return Err(corrupt("the extended header is malformed"));
                }
                let flags = *first.first().ok_or(TRUNCATED)?;
                let w = le24(first, 4).ok_or(TRUNCATED)? + 1;
                let h = le24(first, 7).ok_or(TRUNCATED)? + 1;
                let mut kept = vec![(first_kind, first)];
                let mut image = None;
                let (mut anim, mut frames) = (false, 0usize);
                for &(kind, data) in &all[1..] {
                    let keep = match kind {
                        b"VP8 " | b"VP8L" => {
                            if image.is_none() {
                                image = Some(bitstream_size(kind, data)?);
                            }
                            true
                        }
                        b"ANIM" => {
                            anim = true;
                            true
                        }
                        b"ANMF" => {
                            if data.len() < 16 {
                                return Err(corrupt("an animation frame is malformed"));
                            }
                            frames += 1;
                            true
                        }
                        b"ICCP" | b"ALPH" => true,
                        b"EXIF" => {
                            if exif.is_none() {
                                exif = Some(strip_exif_prefix(data));
                            }
                            false
                        }
                        // XMP and unknown chunks.
                        _ => false,
                    };
                    if keep {
                        kept.push((kind, data));
                    }
                }
                if flags & FLAG_ANIMATION != 0 {
                    if !anim || frames == 0 {
                        return Err(corrupt("the animation has no frames"));
                    }
                } else {
                    let (iw, ih) = image.ok_or(corrupt("there is no image data"))?;
                    if (iw, ih) != (w, h) {
                        return Err(corrupt("the image size does not match the canvas"));
                    }
                }
                (w, h, kept)
            }
            _ => return Err(corrupt("there is no image data")),
        };
        Ok(Parsed {
            width,
            height,
            exif,
            body: Body::Webp(Layout { chunks }),
        })
    }

    /// Width and height from a VP8 key-frame header or a VP8L header.
    fn bitstream_size(kind: &[u8; 4], d: &[u8]) -> Result<(u32, u32), PhotoError> {
        let bad = corrupt("the image header is malformed");
        if kind == b"VP8 " {
            let tag = *d.first().ok_or(bad.clone())?;
            if tag & 1 != 0 || d.get(3..6) != Some(&[0x9D, 0x01, 0x2A]) {
                return Err(bad);
            }
            let w = u32::from(le16(d, 6).ok_or(bad.clone())? & 0x3FFF);
            let h = u32::from(le16(d, 8).ok_or(bad.clone())? & 0x3FFF);
            if w == 0 || h == 0 {
                return Err(bad);
            }
            Ok((w, h))
        } else {
            let bits = le32(d, 1).ok_or(bad.clone())?;
            if d.first() != Some(&0x2F) || bits >> 29 != 0 {
                return Err(bad);
            }
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
    }
}

/// Reading location, time and orientation from a raw EXIF (TIFF) block with kamadak-exif.
mod exif_meta {
    use super::GeoPoint;
    use exif::{In, Tag, Value};

    #[derive(Default)]
    pub(super) struct Meta {
        pub(super) gps: Option<GeoPoint>,
        pub(super) taken_at: Option<String>,
        pub(super) orientation: Option<u16>,
    }

    /// Whatever can be read; a broken block gives `Meta::default()` or a partial result.
    pub(super) fn read(tiff: &[u8]) -> Meta {
        let parsed = exif::Reader::new()
            .continue_on_error(true)
            .read_raw(tiff.to_vec())
            .or_else(|e| e.distill_partial_result(|_| {}));
        let Ok(exif) = parsed else {
            return Meta::default();
        };
        let field = |tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
        let lat = coordinate(
            field(Tag::GPSLatitude),
            field(Tag::GPSLatitudeRef),
            b'N',
            b'S',
            90.0,
        );
        let lon = coordinate(
            field(Tag::GPSLongitude),
            field(Tag::GPSLongitudeRef),
            b'E',
            b'W',
            180.0,
        );
        let gps = match (lat, lon) {
            // 0/0 is what many devices write when they had no fix.
            (Some(lat), Some(lon)) if lat != 0.0 || lon != 0.0 => Some(GeoPoint { lat, lon }),
            _ => None,
        };
        let taken_at = match field(Tag::DateTimeOriginal) {
            Some(Value::Ascii(v)) => v.first().and_then(|s| exif::DateTime::from_ascii(s).ok()),
            _ => None,
        }
        .filter(|t| {
            (1..=12).contains(&t.month)
                && (1..=31).contains(&t.day)
                && t.hour < 24
                && t.minute < 60
                && t.second < 61
        })
        .map(|t| t.to_string());
        let orientation = match field(Tag::Orientation) {
            Some(Value::Short(v)) => v.first().copied().filter(|o| (1..=8).contains(o)),
            _ => None,
        };
        Meta {
            gps,
            taken_at,
            orientation,
        }
    }

    /// Degrees, minutes, seconds (rationals) and a hemisphere letter → signed decimal degrees;
    /// `None` for a missing reference, a zero denominator, minutes or seconds ≥ 60, or a value
    /// beyond `max`.
    pub(super) fn coordinate(
        dms: Option<&Value>,
        reference: Option<&Value>,
        pos: u8,
        neg: u8,
        max: f64,
    ) -> Option<f64> {
        let Some(Value::Rational(parts)) = dms else {
            return None;
        };
        let sign = match reference {
            Some(Value::Ascii(v)) => match v.first()?.first()?.to_ascii_uppercase() {
                c if c == pos => 1.0,
                c if c == neg => -1.0,
                _ => return None,
            },
            _ => return None,
        };
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|r| r.denom == 0) {
            return None;
        }
        let mut degrees = 0.0;
        for (i, r) in parts.iter().enumerate() {
            let v = r.to_f64();
            if i > 0 && v >= 60.0 {
                return None;
            }
            degrees += v / [1.0, 60.0, 3600.0][i];
        }
        (degrees.is_finite() && degrees <= max).then_some(sign * degrees)
    }
}

/// CRC-32 (ISO-HDLC, as PNG uses it), table-driven.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    };
    let mut c = 0xFFFF_FFFFu32;
    for &byte in data {
        c = TABLE[((c ^ u32::from(byte)) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_png_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn orientation_block_is_read_back_by_kamadak_exif() {
        let meta = exif_meta::read(&orientation_tiff(6));
        assert_eq!(meta.orientation, Some(6));
        assert!(meta.gps.is_none() && meta.taken_at.is_none());
    }

    #[test]
    fn sniffing_looks_at_magic_bytes_only() {
        assert_eq!(
            PhotoFormat::sniff(b"\xFF\xD8\xFF\xE0"),
            Some(PhotoFormat::Jpeg)
        );
        assert_eq!(PhotoFormat::sniff(&PNG_SIGNATURE), Some(PhotoFormat::Png));
        assert_eq!(
            PhotoFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(PhotoFormat::Webp)
        );
        assert_eq!(PhotoFormat::sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(PhotoFormat::sniff(b""), None);
    }

    #[test]
    fn refusals_name_what_the_file_is() {
        let limits = PhotoLimits::default();
        let found = |b: &[u8]| match inspect(b, &limits) {
            Err(PhotoError::Type { found }) => found,
            other => panic!("expected a type refusal, got {other:?}"),
        };
        assert_eq!(found(b"GIF89a\x01\0\x01\0"), Some("a GIF image"));
        assert_eq!(found(b"%PDF-1.7\n"), Some("a PDF document"));
        assert_eq!(found(b"MZ\x90\0"), Some("a program"));
        assert_eq!(
            found(b"\xEF\xBB\xBF  <!DOCTYPE html><html>"),
            Some("a web page")
        );
        assert!(
            found(b"\0\0\0\x18ftypheic\0\0\0\0")
                .unwrap()
                .contains("HEIC")
        );
        assert_eq!(found(b"hello"), None);
        assert_eq!(inspect(b"", &limits), Err(PhotoError::Empty));
    }

    #[test]
    fn messages_tell_the_citizen_what_to_do() {
        let e = PhotoError::TooLarge {
            size: 12 * 1024 * 1024,
            max: 10 * 1024 * 1024,
        };
        assert_eq!(e.code(), "photo_too_large");
        assert_eq!(
            e.to_string(),
            "the photo is 12.0 MB but at most 10.0 MB is accepted; please send a smaller photo"
        );
        let e = PhotoError::Type { found: None };
        assert_eq!(
            e.to_string(),
            "this file is not a photo in a format we accept: only JPEG, PNG or WebP photos are accepted; please send the photo as one of those"
        );
        let e = PhotoError::InBatch {
            index: 2,
            source: Box::new(PhotoError::Dimensions {
                width: 20000,
                height: 20000,
                max_pixels: 100_000_000,
            }),
        };
        assert_eq!(e.code(), "photo_dimensions");
        assert_eq!(
            e.to_string(),
            "photo 2: the photo is 20000×20000 pixels, more than the 100 megapixel limit; please send a smaller photo"
        );
    }

    #[test]
    fn minimal_jpeg_structure_is_walked() {
        // SOI, SOF0 1×1 grey, SOS, two bytes of "entropy data" with a stuffed FF 00, EOI.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 1, 0, 1, 1, 1, 0x11, 0, 0xFF, 0xDA, 0, 8, 1, 1, 0,
            0, 63, 0, 0x12, 0xFF, 0x00, 0xFF, 0xD9, 0xAA,
        ];
        let p = inspect(&jpeg, &PhotoLimits::default()).unwrap();
        assert_eq!((p.format, p.width, p.height), (PhotoFormat::Jpeg, 1, 1));
        // The trailing byte after EOI is gone; everything else is kept.
        assert_eq!(p.cleaned, jpeg[..jpeg.len() - 1]);
        // Without EOI it is truncated.
        let e = inspect(&jpeg[..jpeg.len() - 3], &PhotoLimits::default()).unwrap_err();
        assert_eq!(e.code(), "photo_corrupt");
    }

    #[test]
    fn gps_nonsense_is_none() {
        use exif::{Rational, Value};
        let dms = |parts: &[(u32, u32)]| {
            Value::Rational(
                parts
                    .iter()
                    .map(|&(num, denom)| Rational { num, denom })
                    .collect(),
            )
        };
        let hemisphere = |h: &str| Value::Ascii(vec![h.as_bytes().to_vec()]);
        let lat = |d: &Value, h: &str| {
            exif_meta::coordinate(Some(d), Some(&hemisphere(h)), b'N', b'S', 90.0)
        };
        assert_eq!(lat(&dms(&[(33, 1), (30, 1), (0, 1)]), "N"), Some(33.5));
        assert_eq!(lat(&dms(&[(33, 1), (30, 1), (0, 1)]), "S"), Some(-33.5));
        assert_eq!(lat(&dms(&[(3350, 100)]), "N"), Some(33.5));
        assert_eq!(lat(&dms(&[(33, 0), (30, 1), (0, 1)]), "N"), None);
        assert_eq!(lat(&dms(&[(91, 1), (0, 1), (0, 1)]), "N"), None);
        assert_eq!(lat(&dms(&[(33, 1), (61, 1), (0, 1)]), "N"), None);
        assert_eq!(lat(&dms(&[(33, 1), (30, 1), (0, 1)]), "X"), None);
        assert_eq!(lat(&dms(&[]), "N"), None);
        assert_eq!(
            exif_meta::coordinate(Some(&dms(&[(33, 1)])), None, b'N', b'S', 90.0),
            None
        );
    }
}
