//! `channels::photo` end to end: real JPEG, PNG and WebP files made in the test (with the `image`
//! crate and EXIF written by kamadak-exif), inspected, stripped and decoded again.

use std::io::Cursor;

use channels::photo::{
    GeoPoint, PhotoError, PhotoFormat, PhotoLimits, check_count, inspect, inspect_batch,
};
use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use image::{ExtendedColorType, ImageEncoder};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Fixtures: a phone photo's EXIF and small real images carrying it.

/// Where the test photos were "taken": 33.8446 N, 115.7790 E (Bozhou, Anhui).
const TAKEN_AT: GeoPoint = GeoPoint {
    lat: 33.8446,
    lon: 115.7790,
};
const W: u32 = 64;
const H: u32 = 48;

/// The EXIF a phone writes: make, model, orientation 6 (rotate 90° clockwise), capture time
/// and GPS as degrees/minutes/seconds (33° 50′ 40.56″ N, 115° 46′ 44.4″ E).
fn phone_exif() -> Vec<u8> {
    let r = |num, denom| Rational { num, denom };
    let field = |tag, value| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    };
    let ascii = |s: &str| Value::Ascii(vec![s.as_bytes().to_vec()]);
    let fields = [
        field(Tag::Make, ascii("HUAWEI")),
        field(Tag::Model, ascii("P60 Pro")),
        field(Tag::Orientation, Value::Short(vec![6])),
        field(Tag::DateTimeOriginal, ascii("2024:05:01 14:30:00")),
        field(Tag::GPSLatitudeRef, ascii("N")),
        field(
            Tag::GPSLatitude,
            Value::Rational(vec![r(33, 1), r(50, 1), r(4056, 100)]),
        ),
        field(Tag::GPSLongitudeRef, ascii("E")),
        field(
            Tag::GPSLongitude,
            Value::Rational(vec![r(115, 1), r(46, 1), r(444, 10)]),
        ),
    ];
    let mut writer = Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).expect("EXIF is written");
    out.into_inner()
}

/// A colourful gradient, so that a decode that drops data would show.
fn pixels(w: u32, h: u32) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| [(x * 4) as u8, (y * 5) as u8, ((x + y) * 3) as u8]))
        .collect()
}

const ICC: &[u8] = b"\0\0\0\x80test-only ICC profile bytes, kept verbatim by the stripper";

fn encode_jpeg(exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.set_icc_profile(ICC.to_vec()).unwrap();
    enc.write_image(&pixels(W, H), W, H, ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// JPEG segment `FF marker len data`, inserted right after SOI (and JFIF APP0, if any).
fn with_jpeg_segments(jpeg: &[u8], segments: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for (marker, data) in segments {
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&u16::try_from(data.len() + 2).unwrap().to_be_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>33,50.676N</exif:GPSLatitude></x:xmpmeta>";
const IPTC: &[u8] = b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x10\x1c\x02\x78\0\x0cCity: Bozhou";
const COMMENT: &[u8] = b"shot by citizen 13800138000";

/// What a phone or an editor uploads: EXIF with GPS, XMP, IPTC, a comment, an ICC profile, and
/// bytes after the end marker (as MPF and "motion photo" files carry).
fn phone_jpeg() -> Vec<u8> {
    let mut jpeg = with_jpeg_segments(
        &encode_jpeg(Some(phone_exif())),
        &[(0xE1, XMP), (0xED, IPTC), (0xFE, COMMENT)],
    );
    jpeg.extend_from_slice(b"\xFF\xD8\xFF\xE1\0\x10Exif\0\0trailer-with-HUAWEI");
    jpeg
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    c.extend_from_slice(&crc.finalize().to_be_bytes());
    c
}

/// Inserts chunks after IHDR (8-byte signature + 25-byte IHDR chunk).
fn with_png_chunks(png: &[u8], chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut out = png[..33].to_vec();
    for (kind, data) in chunks {
        out.extend(png_chunk(kind, data));
    }
    out.extend_from_slice(&png[33..]);
    out
}

fn encode_png(exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut out);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.write_image(&pixels(W, H), W, H, ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// A PNG with an eXIf chunk, text chunks (one of them naming a place) and a timestamp.
fn phone_png() -> Vec<u8> {
    let png = encode_png(Some(phone_exif()));
    assert!(contains(&png, b"eXIf"), "the image crate writes eXIf");
    let mut png = with_png_chunks(
        &png,
        &[
            (b"tEXt", b"Comment\0Pothole near No. 3 Middle School"),
            (
                b"iTXt",
                b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>HUAWEI</x:xmpmeta>",
            ),
            (
                b"zTXt",
                b"Raw profile type exif\0\0\x78\x9c\x03\0\0\0\0\x01",
            ),
            (b"tIME", &[0x07, 0xE8, 5, 1, 14, 30, 0]),
            (b"pHYs", &[0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1]),
        ],
    );
    png.extend_from_slice(b"trailing HUAWEI bytes");
    png
}

fn encode_webp(exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.write_image(&pixels(W, H), W, H, ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// Appends a RIFF chunk, sets `flag` in VP8X and fixes the RIFF size.
fn with_webp_chunk(webp: &[u8], kind: &[u8; 4], data: &[u8], flag: u8) -> Vec<u8> {
    let mut out = webp.to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    assert_eq!(&out[12..16], b"VP8X");
    out[20] |= flag;
    let riff = u32::try_from(out.len() - 8).unwrap();
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

/// An extended WebP with EXIF (GPS) and XMP.
fn phone_webp() -> Vec<u8> {
    let webp = encode_webp(Some(phone_exif()));
    assert_eq!(
        &webp[12..16],
        b"VP8X",
        "the image crate writes an extended WebP"
    );
    with_webp_chunk(
        &webp,
        b"XMP ",
        b"<x:xmpmeta>HUAWEI 33.8446</x:xmpmeta>",
        0x04,
    )
}

/// A VP8X + VP8 (lossy) file with the given size: headers only, enough for `inspect`.
fn lossy_webp_header(w: u16, h: u16) -> Vec<u8> {
    let mut vp8 = vec![0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A];
    vp8.extend_from_slice(&w.to_le_bytes());
    vp8.extend_from_slice(&h.to_le_bytes());
    vp8.extend_from_slice(&[0; 10]);
    let mut vp8x = vec![0u8; 10];
    vp8x[4..7].copy_from_slice(&(u32::from(w) - 1).to_le_bytes()[..3]);
    vp8x[7..10].copy_from_slice(&(u32::from(h) - 1).to_le_bytes()[..3]);
    let mut out = b"RIFF\0\0\0\0WEBP".to_vec();
    for (kind, data) in [(b"VP8X", &vp8x), (b"VP8 ", &vp8)] {
        out.extend_from_slice(kind);
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        out.extend_from_slice(data);
    }
    let riff = u32::try_from(out.len() - 8).unwrap();
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The EXIF tags kamadak-exif finds in a whole file (none if it has no EXIF).
fn exif_tags(file: &[u8]) -> Vec<Tag> {
    match exif::Reader::new().read_from_container(&mut Cursor::new(file)) {
        Ok(exif) => exif.fields().map(|f| f.tag).collect(),
        Err(exif::Error::NotFound(_)) => Vec::new(),
        Err(e) => panic!("the cleaned file has unreadable EXIF: {e}"),
    }
}

fn orientation_of(file: &[u8]) -> Option<u32> {
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(file))
        .ok()?;
    exif.get_field(Tag::Orientation, In::PRIMARY)?
        .value
        .get_uint(0)
}

fn decode(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes)
        .expect("the image decodes")
        .to_rgb8()
}

fn refusal(bytes: &[u8]) -> PhotoError {
    inspect(bytes, &PhotoLimits::default()).expect_err("the upload is refused")
}

/// What every format must satisfy after stripping: same format and size, same pixels, no
/// location or camera left, and Orientation 6 kept as the only EXIF tag.
fn assert_stripped(original: &[u8], format: PhotoFormat, leaks: &[&[u8]]) {
    let photo = inspect(original, &PhotoLimits::default()).expect("the photo is accepted");
    assert_eq!((photo.format, photo.width, photo.height), (format, W, H));
    let gps = photo.gps.expect("the location is read");
    assert!(
        (gps.lat - TAKEN_AT.lat).abs() < 1e-5,
        "latitude {}",
        gps.lat
    );
    assert!(
        (gps.lon - TAKEN_AT.lon).abs() < 1e-5,
        "longitude {}",
        gps.lon
    );
    assert_eq!(photo.taken_at.as_deref(), Some("2024-05-01 14:30:00"));
    assert_eq!(photo.orientation, Some(6));

    let cleaned = &photo.cleaned;
    assert_eq!(PhotoFormat::sniff(cleaned), Some(format));
    assert_eq!(
        exif_tags(cleaned),
        vec![Tag::Orientation],
        "only Orientation survives"
    );
    assert_eq!(orientation_of(cleaned), Some(6));
    for leak in leaks {
        assert!(
            !contains(cleaned, leak),
            "{:?} is still in the cleaned file",
            String::from_utf8_lossy(leak)
        );
    }
    let (before, after) = (decode(original), decode(cleaned));
    assert_eq!(after.dimensions(), (W, H));
    assert!(before == after, "stripping changed the pixels");

    // The cleaned file is itself accepted, keeps only the orientation, and cleans to itself.
    let again = inspect(cleaned, &PhotoLimits::default()).expect("the cleaned photo is accepted");
    assert_eq!(
        (again.gps, again.taken_at.as_deref(), again.orientation),
        (None, None, Some(6))
    );
    assert_eq!(&again.cleaned, cleaned);
}

// ---------------------------------------------------------------------------------------------
// Accepted photos.

#[test]
fn phone_jpeg_location_is_read_and_metadata_stripped() {
    let jpeg = phone_jpeg();
    assert!(contains(&jpeg, b"HUAWEI") && contains(&jpeg, b"xmpmeta"));
    assert_stripped(
        &jpeg,
        PhotoFormat::Jpeg,
        &[
            b"HUAWEI",
            b"P60",
            b"xmpmeta",
            b"Photoshop",
            b"13800138000",
            b"trailer",
        ],
    );
    let cleaned = inspect(&jpeg, &PhotoLimits::default()).unwrap().cleaned;
    assert!(contains(&cleaned, b"JFIF\0"), "APP0 JFIF is kept");
    assert!(
        contains(&cleaned, b"ICC_PROFILE\0") && contains(&cleaned, ICC),
        "the ICC profile is kept"
    );
    assert!(cleaned.ends_with(&[0xFF, 0xD9]), "the file ends at EOI");
}

#[test]
fn phone_png_location_is_read_and_text_chunks_dropped() {
    let png = phone_png();
    assert_stripped(
        &png,
        PhotoFormat::Png,
        &[
            b"HUAWEI",
            b"tEXt",
            b"iTXt",
            b"zTXt",
            b"tIME",
            b"Middle School",
            b"trailing",
        ],
    );
    let cleaned = inspect(&png, &PhotoLimits::default()).unwrap().cleaned;
    assert!(contains(&cleaned, b"pHYs"), "rendering chunks are kept");
    assert!(cleaned.ends_with(&png_chunk(b"IEND", b"")));
}

#[test]
fn phone_webp_location_is_read_exif_and_xmp_dropped() {
    let webp = phone_webp();
    assert_stripped(&webp, PhotoFormat::Webp, &[b"HUAWEI", b"XMP ", b"xmpmeta"]);
    let cleaned = inspect(&webp, &PhotoLimits::default()).unwrap().cleaned;
    let riff = u32::from_le_bytes(cleaned[4..8].try_into().unwrap()) as usize;
    assert_eq!(riff + 8, cleaned.len(), "the RIFF size is fixed");
    assert_eq!(cleaned[20] & 0x0C, 0x08, "VP8X says EXIF, not XMP");
}

#[test]
fn photos_without_metadata_pass_through_unchanged() {
    for (bytes, format) in [
        (encode_png(None), PhotoFormat::Png),
        (encode_webp(None), PhotoFormat::Webp),
    ] {
        let photo = inspect(&bytes, &PhotoLimits::default()).unwrap();
        assert_eq!((photo.format, photo.width, photo.height), (format, W, H));
        assert_eq!(
            (photo.gps, photo.taken_at, photo.orientation),
            (None, None, None)
        );
        assert_eq!(photo.cleaned, bytes, "{format}: nothing to strip");
    }
    // A JPEG loses nothing but the metadata; here there is none besides the ICC profile.
    let jpeg = encode_jpeg(None);
    assert_eq!(
        inspect(&jpeg, &PhotoLimits::default()).unwrap().cleaned,
        jpeg
    );
}

#[test]
fn upright_photo_gets_no_exif_block_at_all() {
    let field = Field {
        tag: Tag::Orientation,
        ifd_num: In::PRIMARY,
        value: Value::Short(vec![1]),
    };
    let mut writer = Writer::new();
    writer.push_field(&field);
    let mut exif = Cursor::new(Vec::new());
    writer.write(&mut exif, true).unwrap();
    let photo = inspect(
        &encode_jpeg(Some(exif.into_inner())),
        &PhotoLimits::default(),
    )
    .unwrap();
    assert_eq!(photo.orientation, Some(1));
    assert!(exif_tags(&photo.cleaned).is_empty());
}

#[test]
fn format_comes_from_the_content_not_the_name() {
    // A PNG that the phone named IMG_0001.JPG and sent as image/jpeg is stored as a PNG.
    let photo = inspect(&encode_png(None), &PhotoLimits::default()).unwrap();
    assert_eq!(photo.format, PhotoFormat::Png);
    assert_eq!(
        (photo.format.mime(), photo.format.extension()),
        ("image/png", "png")
    );
    assert_eq!(
        (PhotoFormat::Jpeg.mime(), PhotoFormat::Jpeg.extension()),
        ("image/jpeg", "jpg")
    );
    assert_eq!(
        (PhotoFormat::Webp.mime(), PhotoFormat::Webp.extension()),
        ("image/webp", "webp")
    );
}

#[test]
fn lossy_webp_size_is_read_from_the_vp8_header() {
    let photo = inspect(&lossy_webp_header(1920, 1080), &PhotoLimits::default()).unwrap();
    assert_eq!(
        (photo.format, photo.width, photo.height),
        (PhotoFormat::Webp, 1920, 1080)
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals.

#[test]
fn html_exe_pdf_and_gif_are_refused_by_content() {
    let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xFF\xFF\xFF!\xF9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    let cases: [(&[u8], Option<&str>); 5] = [
        (
            b"<!DOCTYPE html>\n<html><script>alert(1)</script></html>",
            Some("a web page"),
        ),
        (
            b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0",
            Some("a program"),
        ),
        (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n", Some("a PDF document")),
        (gif, Some("a GIF image")),
        (&[0x13, 0x37, 0xC0, 0xDE, 0x00, 0x42, 0x99, 0x01], None),
    ];
    for (bytes, found) in cases {
        let e = refusal(bytes);
        assert_eq!(e, PhotoError::Type { found }, "{e}");
        assert_eq!(e.code(), "photo_type");
        assert!(e.to_string().contains("JPEG, PNG or WebP"), "{e}");
    }
    assert_eq!(refusal(b"").code(), "photo_empty");
}

#[test]
fn truncated_jpeg_is_refused() {
    let jpeg = phone_jpeg();
    let eoi = jpeg.windows(2).rposition(|w| w == [0xFF, 0xD9]).unwrap();
    let jpeg = &jpeg[..eoi + 2];
    for cut in [3, 10, 200, jpeg.len() / 2, jpeg.len() - 2, jpeg.len() - 1] {
        let e = refusal(&jpeg[..cut]);
        assert_eq!(e.code(), "photo_corrupt", "cut at {cut}: {e}");
        assert!(
            e.to_string()
                .contains("JPEG photo is damaged or incomplete"),
            "{e}"
        );
    }
}

#[test]
fn png_with_a_bad_crc_is_refused() {
    let mut png = encode_png(None);
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    png[idat + 10] ^= 0x01;
    assert_eq!(
        refusal(&png),
        PhotoError::Corrupt {
            format: PhotoFormat::Png,
            reason: "a chunk checksum is wrong"
        }
    );
}

#[test]
fn truncated_png_and_webp_are_refused() {
    let png = encode_png(None);
    let webp = phone_webp();
    for bytes in [
        &png[..png.len() - 12],
        &png[..40],
        &webp[..webp.len() - 1],
        &webp[..30],
    ] {
        assert_eq!(refusal(bytes).code(), "photo_corrupt");
    }
    // A RIFF claiming more than the file holds.
    let mut webp = encode_webp(None);
    webp[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(refusal(&webp).code(), "photo_corrupt");
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let limits = PhotoLimits {
        max_bytes: 1000,
        ..PhotoLimits::default()
    };
    let e = inspect(&phone_jpeg(), &limits).unwrap_err();
    assert!(matches!(e, PhotoError::TooLarge { max: 1000, .. }), "{e}");
    assert_eq!(e.code(), "photo_too_large");

    let mut huge = vec![0u8; PhotoLimits::default().max_bytes + 1];
    huge[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
    let e = refusal(&huge);
    assert_eq!(e.code(), "photo_too_large");
    assert!(e.to_string().contains("at most 10.0 MB"), "{e}");
}

#[test]
fn too_many_photos_are_refused() {
    let limits = PhotoLimits::default();
    assert_eq!(limits.max_count, 9);
    assert!(check_count(9, &limits).is_ok());
    assert_eq!(
        check_count(10, &limits),
        Err(PhotoError::TooMany { count: 10, max: 9 })
    );

    let png = encode_png(None);
    let ten = vec![&png[..]; 10];
    assert_eq!(
        inspect_batch(&ten, &limits).unwrap_err().code(),
        "photo_too_many"
    );
    let photos = inspect_batch(&ten[..9], &limits).unwrap();
    assert_eq!(photos.len(), 9);

    let batch: [&[u8]; 3] = [&png, b"<html></html>", &png];
    let e = inspect_batch(&batch, &limits).unwrap_err();
    assert!(matches!(e, PhotoError::InBatch { index: 2, .. }), "{e:?}");
    assert_eq!(e.code(), "photo_type");
    assert!(
        e.to_string()
            .starts_with("photo 2: this file is a web page"),
        "{e}"
    );
}

#[test]
fn huge_dimensions_in_a_header_are_refused() {
    // JPEG: patch the SOF0 frame header to 65000 × 65000 (4.2 gigapixels).
    let mut jpeg = encode_jpeg(None);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
    assert_eq!(
        refusal(&jpeg),
        PhotoError::Dimensions {
            width: 65000,
            height: 65000,
            max_pixels: 100_000_000
        }
    );

    // PNG: a 100000 × 100000 IHDR with a correct CRC (a classic decompression bomb).
    let png = encode_png(None);
    let mut ihdr = png[16..29].to_vec();
    ihdr[..8].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]);
    let mut bomb = png[..8].to_vec();
    bomb.extend(png_chunk(b"IHDR", &ihdr));
    bomb.extend_from_slice(&png[33..]);
    let e = refusal(&bomb);
    assert_eq!(e.code(), "photo_dimensions", "{e}");
    assert!(e.to_string().contains("100000×100000 pixels"), "{e}");

    // WebP: a 16383 × 16383 lossy header (268 megapixels).
    assert_eq!(
        refusal(&lossy_webp_header(16383, 16383)).code(),
        "photo_dimensions"
    );

    // The limit is configurable.
    let small = PhotoLimits {
        max_pixels: u64::from(W * H) - 1,
        ..PhotoLimits::default()
    };
    assert_eq!(
        inspect(&encode_webp(None), &small).unwrap_err().code(),
        "photo_dimensions"
    );
}

#[test]
fn broken_exif_does_not_fail_the_photo() {
    let mut exif = phone_exif();
    exif.truncate(20);
    let photo = inspect(&encode_jpeg(Some(exif)), &PhotoLimits::default()).unwrap();
    assert_eq!((photo.gps, photo.taken_at), (None, None));
    assert!(exif_tags(&photo.cleaned).is_empty());
}

// ---------------------------------------------------------------------------------------------
// No input panics (the fuzz target's contract), and what is accepted cleans to itself.

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(at, byte) in edits {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    bytes
}

/// Whatever is accepted is a file that is accepted again, with the same format and size, and
/// that the stripper leaves unchanged.
fn check_contract(bytes: &[u8]) {
    if let Ok(photo) = inspect(bytes, &PhotoLimits::default()) {
        let again =
            inspect(&photo.cleaned, &PhotoLimits::default()).expect("cleaned bytes are accepted");
        assert_eq!(
            (again.format, again.width, again.height),
            (photo.format, photo.width, photo.height)
        );
        assert_eq!(again.cleaned, photo.cleaned);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_contract(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_signature_never_panic(
        which in 0usize..3,
        rest in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let magic: &[u8] = [&b"\xFF\xD8\xFF"[..], b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x04\0\0WEBP"][which];
        let mut bytes = magic.to_vec();
        bytes.extend(rest);
        check_contract(&bytes);
    }

    #[test]
    fn mutated_real_photos_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let original = FIXTURES.with(|f| f[which].clone());
        check_contract(&mutate(original, &edits, cut));
    }
}

thread_local! {
    static FIXTURES: [Vec<u8>; 3] = [phone_jpeg(), phone_png(), phone_webp()];
}

/// Recomputes every PNG chunk CRC that fits in the file, so that mutations get past the checksum
/// and reach the chunk logic.
fn fix_png_crcs(mut png: Vec<u8>) -> Vec<u8> {
    let mut pos = 8;
    while let Some(len) = png
        .get(pos..pos + 4)
        .map(|l| u32::from_be_bytes(l.try_into().unwrap()) as usize)
    {
        let Some(end) = (pos + 8).checked_add(len).filter(|e| e + 4 <= png.len()) else {
            break;
        };
        let crc = crc32fast::hash(&png[pos + 4..end]);
        png[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        pos = end + 4;
    }
    png
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_png_with_fixed_checksums_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let original = FIXTURES.with(|f| f[1].clone());
        check_contract(&fix_png_crcs(mutate(original, &edits, cut)));
    }
}
