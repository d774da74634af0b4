//! Writes the generated seeds: tiny JPEG, PNG and WebP files (with and without a phone's EXIF)
//! for `photo`, and sealed texts for `wechat_crypto`. The XML and SIP seeds are written by hand;
//! this checks that they say what their names say (a message that parses, a request delivered).
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`.
//! The output is deterministic; re-running it leaves the checked-in seeds unchanged.

use std::io::Cursor;
use std::path::Path;

use channels::photo::{PhotoLimits, inspect};
use channels::wechat::crypto::{MessageCipher, sign};
use channels::wechat::xml::Inbound;
use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use image::{ExtendedColorType, ImageEncoder};
use sip_gateway::guard::{self, Inspection};

const W: u32 = 16;
const H: u32 = 12;

/// A phone's EXIF: make, orientation 6, capture time and GPS (Bozhou, Anhui).
fn phone_exif() -> Vec<u8> {
    let r = |num, denom| Rational { num, denom };
    let ascii = |s: &str| Value::Ascii(vec![s.as_bytes().to_vec()]);
    let fields = [
        (Tag::Make, ascii("HUAWEI")),
        (Tag::Orientation, Value::Short(vec![6])),
        (Tag::DateTimeOriginal, ascii("2024:05:01 14:30:00")),
        (Tag::GPSLatitudeRef, ascii("N")),
        (
            Tag::GPSLatitude,
            Value::Rational(vec![r(33, 1), r(50, 1), r(4056, 100)]),
        ),
        (Tag::GPSLongitudeRef, ascii("E")),
        (
            Tag::GPSLongitude,
            Value::Rational(vec![r(115, 1), r(46, 1), r(444, 10)]),
        ),
    ]
    .map(|(tag, value)| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    });
    let mut writer = Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).expect("EXIF is written");
    out.into_inner()
}

fn pixels() -> Vec<u8> {
    (0..H)
        .flat_map(|y| {
            (0..W).flat_map(move |x| [(x * 16) as u8, (y * 20) as u8, ((x + y) * 8) as u8])
        })
        .collect()
}

fn jpeg(exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 50);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.write_image(&pixels(), W, H, ExtendedColorType::Rgb8)
        .unwrap();
    // A comment segment after SOI, which the stripper must drop.
    let comment = b"shot by citizen 13800138000";
    let mut with_comment = out[..2].to_vec();
    with_comment.extend_from_slice(&[0xFF, 0xFE]);
    with_comment.extend_from_slice(&(comment.len() as u16 + 2).to_be_bytes());
    with_comment.extend_from_slice(comment);
    with_comment.extend_from_slice(&out[2..]);
    with_comment
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    c.extend_from_slice(&crc.finalize().to_be_bytes());
    c
}

fn png(exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut out);
    let with_exif = exif.is_some();
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.write_image(&pixels(), W, H, ExtendedColorType::Rgb8)
        .unwrap();
    if !with_exif {
        return out;
    }
    // A text chunk after IHDR (8-byte signature + 25-byte IHDR), which the stripper must drop.
    let mut with_text = out[..33].to_vec();
    with_text.extend(png_chunk(
        b"tEXt",
        b"Comment\0Pothole near No. 3 Middle School",
    ));
    with_text.extend_from_slice(&out[33..]);
    with_text
}

fn webp_lossless(exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.write_image(&pixels(), W, H, ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// VP8X + VP8 (lossy) headers only: enough for `inspect`, which never decodes pixels.
fn webp_lossy_header(w: u16, h: u16) -> Vec<u8> {
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
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    println!("{:>6} bytes  {}", bytes.len(), dir.join(name).display());
}

/// The seeds in `dir`, by file name.
fn seeds_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

fn main() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");

    for (name, xml) in seeds_in(&seeds.join("wechat_xml")) {
        // The safe-mode envelope has no sender: its fields parse, the message does not.
        let parsed = Inbound::parse(&xml);
        assert_eq!(
            parsed.is_ok(),
            name != "encrypt-envelope.xml",
            "{name}: {parsed:?}"
        );
    }
    for (name, datagram) in seeds_in(&seeds.join("sip_guard")) {
        let verdict = guard::inspect(&datagram);
        match name.as_str() {
            // Bare LF line ends: the stack's parser refuses them, so the guard answers 400.
            "bad-cseq.sip" | "options-lf.sip" => {
                assert!(matches!(verdict, Inspection::Reply(_)), "{name}")
            }
            _ => assert_eq!(verdict, Inspection::Deliver, "{name}"),
        }
    }

    let photo = seeds.join("photo");
    for (name, bytes) in [
        ("phone.jpg", jpeg(Some(phone_exif()))),
        ("plain.jpg", jpeg(None)),
        ("phone.png", png(Some(phone_exif()))),
        ("plain.png", png(None)),
        ("phone-lossless.webp", webp_lossless(Some(phone_exif()))),
        ("plain-lossless.webp", webp_lossless(None)),
        ("lossy-header.webp", webp_lossy_header(640, 480)),
    ] {
        // Accepted, so that the target's check of the cleaned copy starts from every format.
        let accepted = inspect(&bytes, &PhotoLimits::DEFAULT)
            .unwrap_or_else(|e| panic!("{name} is refused: {e}"));
        if name.starts_with("phone") {
            assert!(
                accepted.gps.is_some() && accepted.orientation == Some(6),
                "{name}"
            );
        }
        write(&photo, name, &bytes);
    }

    // The sample account of WeChat's WXBizMsgCrypt library, as in the target.
    let app_id = "wx2c2769f8efd9abc2";
    let cipher = MessageCipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", app_id).unwrap();
    let crypto = seeds.join("wechat_crypto");
    let message = std::fs::read(seeds.join("wechat_xml/text.xml")).unwrap();
    let random = *b"aaaabbbbccccdddd";
    // WeChat's own sample `Encrypt`, and its msg_signature as `verify` parts (one per line).
    let sample = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
    write(&crypto, "encrypt-sample.txt", sample.as_bytes());
    let parts = ["spamtest", "1409735669", "1320562132", sample];
    assert_eq!(sign(&parts), "5d197aaffba7e9b25a30732f161a50dee96bd5fa");
    write(
        &crypto,
        "msg-signature.txt",
        format!("{}\n{}", parts.join("\n"), sign(&parts)).as_bytes(),
    );
    write(
        &crypto,
        "encrypt-text-message.txt",
        cipher.encrypt(&message, random).as_bytes(),
    );
    // 16 bytes of random, then a message: the round-trip half of the target.
    let mut random_and_message = random.to_vec();
    random_and_message.extend_from_slice(&message);
    write(&crypto, "random-and-message.bin", &random_and_message);
    // A plain text in the safe-mode layout (random ‖ length ‖ message ‖ AppID ‖ padding to 32),
    // which the target seals itself: it opens, and its mutations reach every layout check.
    let short = b"<xml><MsgType>text</MsgType></xml>";
    let mut plain = random.to_vec();
    plain.extend_from_slice(&(short.len() as u32).to_be_bytes());
    plain.extend_from_slice(short);
    plain.extend_from_slice(app_id.as_bytes());
    let pad = 32 - plain.len() % 32;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    write(&crypto, "plain-layout.bin", &plain);
    assert_eq!(
        cipher.decrypt(&cipher.encrypt(short, random)).unwrap(),
        short
    );
}
