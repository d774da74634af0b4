//! A citizen's report as a `multipart/form-data` upload, shared by the city app
//! (`/api/v1/app/reports`) and the public web form.
//!
//! [`ReportForm::read`] reads and checks every field and photo before anything is stored: photos
//! are checked by content ([`channels::photo::inspect`]), never by name or declared type, and each
//! is read in chunks so a huge field is refused at the limit instead of being buffered. Any bad
//! field is a [`Problem`] whose `detail` a citizen can read (Chinese). [`ReportForm::save_photos`]
//! then writes the metadata-stripped photos with [`channels::media`].
//!
//! The routes that take a report need a body limit above the API's 2 MiB: see
//! [`upload_body_limit`].

use std::path::Path;

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use channels::media;
use channels::photo::{self, Photo, PhotoError, PhotoLimits};
use ticketing::model::{Attachment, AttachmentKind, PhoneNumber};

use super::problem::Problem;

/// Most bytes of a text field (content is at most 5,000 characters, 3 bytes each in UTF-8).
const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Most characters of a name, an address or a category code.
const MAX_SHORT_CHARS: usize = 200;

/// The body limit for a route taking a [`ReportForm`]: every photo at its largest, plus room for
/// the text fields and the multipart framing.
pub fn upload_body_limit(limits: &PhotoLimits) -> usize {
    limits
        .max_bytes
        .saturating_mul(limits.max_count)
        .saturating_add(1024 * 1024)
}

/// A citizen's report as sent by the app or the web form (multipart/form-data).
#[derive(Debug, Clone)]
pub struct ReportForm {
    /// What the citizen says (field `content`, required, trimmed).
    pub content: String,
    /// A category code such as `C0101` (field `category`), if chosen.
    pub category: Option<String>,
    /// Where, in words (field `address`).
    pub address: Option<String>,
    /// WGS-84 latitude (field `lat`, or the first located photo's EXIF GPS).
    pub lat: Option<f64>,
    /// WGS-84 longitude (field `lon`, or the first located photo's EXIF GPS).
    pub lon: Option<f64>,
    /// The name the citizen gives (field `name`).
    pub name: Option<String>,
    /// A phone number to be called back on (field `phone`), checked with [`PhoneNumber::parse`].
    pub phone: Option<String>,
    /// The accepted photos (fields named `photo`), metadata already stripped in `cleaned`.
    pub photos: Vec<Photo>,
}

/// [`Multipart`] whose rejection (not a multipart request, no boundary) is a [`Problem`].
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(Problem::from)
    }
}

impl From<MultipartRejection> for Problem {
    fn from(r: MultipartRejection) -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_multipart",
            format!(
                "请以 multipart/form-data 格式提交（the report must be multipart/form-data: {}）",
                r.body_text()
            ),
        )
    }
}

fn bad(code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, code, detail)
}

/// A broken upload: the body limit (413) or malformed multipart framing (400).
fn multipart_problem(e: MultipartError) -> Problem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "report_too_large",
            "提交的内容过大，请减少或压缩照片后重试",
        )
    } else {
        bad(
            "invalid_multipart",
            format!("提交的表单格式有误，请重试（{}）", e.body_text()),
        )
    }
}

/// The Chinese problem for a refused photo; `index` counts from 1.
pub fn photo_problem(index: usize, e: &PhotoError) -> Problem {
    let (status, what) = match e {
        PhotoError::Empty => (StatusCode::BAD_REQUEST, "是空文件，请重新选择".to_owned()),
        PhotoError::TooLarge { max, .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("超过 {} MB，请压缩后再传", max.div_ceil(1024 * 1024)),
        ),
        PhotoError::Type { found } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "不是可接受的图片（{}），只接受 JPEG、PNG 或 WebP 格式的照片",
                found_in_chinese(*found)
            ),
        ),
        PhotoError::Corrupt { .. } => (
            StatusCode::BAD_REQUEST,
            "已损坏或不完整，请重新拍摄或保存后再传".to_owned(),
        ),
        PhotoError::Dimensions { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "像素过大，请缩小后再传".to_owned(),
        ),
        PhotoError::TooMany { max, .. } => {
            return too_many(*max);
        }
        PhotoError::InBatch { index, source } => return photo_problem(*index, source),
    };
    Problem::new(status, e.code(), format!("第 {index} 张照片{what}（{e}）"))
}

fn too_many(max: usize) -> Problem {
    bad(
        "photo_too_many",
        format!("最多可上传 {max} 张照片，请删去多余的照片"),
    )
}

fn found_in_chinese(found: Option<&str>) -> &'static str {
    match found {
        Some(f) if f.contains("HEIC") => {
            "HEIC 格式；iPhone 可在“设置 > 相机 > 格式”中选择“兼容性最佳”"
        }
        Some("a GIF image") => "GIF 动图",
        Some("an AVIF image") => "AVIF 图片",
        Some("a video") | Some("an audio or video file") => "音频或视频文件",
        Some("a BMP image") => "BMP 图片",
        Some("a TIFF image") => "TIFF 图片",
        Some("a PDF document") => "PDF 文档",
        Some("a program") => "程序文件",
        Some("a ZIP archive or Office document") => "压缩包或 Office 文档",
        Some("a web page") => "网页",
        Some("an XML or SVG document") => "XML 或 SVG 文档",
        _ => "无法识别的文件",
    }
}

/// Reads a field to its end, refusing it as soon as it passes `max` bytes.
async fn read_bounded(field: &mut Field<'_>, max: usize) -> Result<Option<Vec<u8>>, Problem> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_problem)? {
        if buf.len() + chunk.len() > max {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf))
}

/// A text field: UTF-8, trimmed; an empty one is `None` (web forms send empty inputs).
async fn text(field: &mut Field<'_>, label: &str) -> Result<Option<String>, Problem> {
    let Some(bytes) = read_bounded(field, MAX_TEXT_BYTES).await? else {
        return Err(bad("field_too_long", format!("“{label}”内容过长")));
    };
    let s = String::from_utf8(bytes).map_err(|_| {
        bad(
            "invalid_field",
            format!("“{label}”不是有效的文字（须为 UTF-8）"),
        )
    })?;
    let s = s.trim();
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

fn short(value: Option<String>, label: &str) -> Result<Option<String>, Problem> {
    match value {
        Some(v) if v.chars().count() > MAX_SHORT_CHARS => Err(bad(
            "field_too_long",
            format!("“{label}”最多 {MAX_SHORT_CHARS} 个字"),
        )),
        v => Ok(v),
    }
}

fn coordinate(value: Option<String>, label: &str, max: f64) -> Result<Option<f64>, Problem> {
    let Some(v) = value else {
        return Ok(None);
    };
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x.abs() <= max => Ok(Some(x)),
        _ => Err(bad(
            "invalid_location",
            format!("{label}“{v}”无效：应为 -{max} 到 {max} 之间的十进制度数"),
        )),
    }
}

impl ReportForm {
    /// Reads the fields `content`, `category`, `address`, `lat`, `lon`, `name`, `phone` and up to
    /// `limits.max_count` files named `photo` (each checked by content with
    /// [`channels::photo::inspect`]); when no lat/lon was given, takes the EXIF GPS of the first
    /// photo that has one. Any bad field or photo → [`Problem`] (400/413/415 with a
    /// Chinese-readable detail), nothing stored. Unknown fields are read and ignored; an empty
    /// file part (a file input left empty) is skipped.
    pub async fn read(
        mut multipart: Multipart,
        limits: &PhotoLimits,
    ) -> Result<ReportForm, Problem> {
        let mut content = None;
        let mut category = None;
        let mut address = None;
        let (mut lat, mut lon) = (None, None);
        let mut name = None;
        let mut phone = None;
        let mut photos = Vec::new();
        while let Some(mut field) = multipart.next_field().await.map_err(multipart_problem)? {
            let field_name = field.name().unwrap_or_default().to_owned();
            let slot = match field_name.as_str() {
                "content" => &mut content,
                "category" => &mut category,
                "address" => &mut address,
                "lat" => &mut lat,
                "lon" => &mut lon,
                "name" => &mut name,
                "phone" => &mut phone,
                "photo" => {
                    let Some(bytes) = read_bounded(&mut field, limits.max_bytes).await? else {
                        let e = PhotoError::TooLarge {
                            size: limits.max_bytes + 1,
                            max: limits.max_bytes,
                        };
                        return Err(photo_problem(photos.len() + 1, &e));
                    };
                    if bytes.is_empty() && field.file_name().is_none_or(str::is_empty) {
                        continue;
                    }
                    if photos.len() >= limits.max_count {
                        return Err(too_many(limits.max_count));
                    }
                    let p = photo::inspect(&bytes, limits)
                        .map_err(|e| photo_problem(photos.len() + 1, &e))?;
                    photos.push(p);
                    continue;
                }
                _ => {
                    // Read and drop: the body limit bounds it.
                    while field.chunk().await.map_err(multipart_problem)?.is_some() {}
                    continue;
                }
            };
            if slot.is_some() {
                return Err(bad("repeated_field", format!("字段“{field_name}”重复提交")));
            }
            *slot = Some(text(&mut field, &field_name).await?);
        }
        let content = content.flatten().ok_or_else(|| {
            bad(
                "content_missing",
                "请填写问题描述（field `content` is required）",
            )
        })?;
        if content.chars().count() > 5000 {
            return Err(bad("field_too_long", "问题描述最多 5000 个字"));
        }
        let mut lat = coordinate(lat.flatten(), "纬度", 90.0)?;
        let mut lon = coordinate(lon.flatten(), "经度", 180.0)?;
        if lat.is_some() != lon.is_some() {
            return Err(bad(
                "invalid_location",
                "位置须同时给出纬度（lat）和经度（lon）",
            ));
        }
        if lat.is_none()
            && let Some(gps) = photos.iter().find_map(|p| p.gps)
        {
            (lat, lon) = (Some(gps.lat), Some(gps.lon));
        }
        let phone = match phone.flatten() {
            None => None,
            Some(p) => Some(
                PhoneNumber::parse(&p)
                    .map_err(|_| bad("invalid_phone", "手机号码格式不正确"))?
                    .full()
                    .to_owned(),
            ),
        };
        Ok(ReportForm {
            content,
            category: short(category.flatten(), "问题类别")?,
            address: short(address.flatten(), "地址")?,
            lat,
            lon,
            name: short(name.flatten(), "姓名")?,
            phone,
            photos,
        })
    }

    /// Writes the (metadata-stripped) photos under `<data_dir>/media/YYYY/MM/DD/<random>.<ext>`
    /// (to `.part`, then renamed) and returns the attachments (kind photo, uri = relative path,
    /// content_type). On a failure the photos already written are removed.
    pub async fn save_photos(
        &self,
        data_dir: &Path,
        day: jiff::civil::Date,
    ) -> Result<Vec<Attachment>, Problem> {
        let mut saved: Vec<Attachment> = Vec::with_capacity(self.photos.len());
        for p in &self.photos {
            let rel = media::relative_path(day, &media::random_stem(), p.format.extension());
            if let Err(e) = media::write(data_dir, &rel, &p.cleaned).await {
                discard_photos(data_dir, &saved).await;
                return Err(Problem::internal(&format_args!("cannot write {rel}: {e}")));
            }
            saved.push(Attachment {
                kind: AttachmentKind::Photo,
                uri: rel,
                content_type: Some(p.format.mime().to_owned()),
                note: None,
            });
        }
        Ok(saved)
    }
}

/// Removes photos saved by [`ReportForm::save_photos`] that no ticket uses (the intake refused
/// the report, or it was a retry of one already stored).
pub async fn discard_photos(data_dir: &Path, attachments: &[Attachment]) {
    let mut rels = Vec::with_capacity(attachments.len());
    for a in attachments {
        rels.push(a.uri.clone());
    }
    media::remove(data_dir, &rels).await;
}

/// The one intake of a citizen's report whose photos `new.attachments` were already saved: a
/// refused report or a retry of one already stored leaves no files behind.
pub async fn intake_saved(
    tickets: &ticketing::Tickets,
    data_dir: &Path,
    new: ticketing::NewTicket,
    origin: &ticketing::store::Origin<'_>,
    actor: &ticketing::Actor,
    now: jiff::Timestamp,
) -> Result<ticketing::Intake, Problem> {
    let photos = new.attachments.clone();
    match tickets.intake_once(new, origin, actor, now).await {
        Ok(intake) => {
            if intake.replayed {
                discard_photos(data_dir, &photos).await;
            }
            Ok(intake)
        }
        Err(e) => {
            discard_photos(data_dir, &photos).await;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_refusals_read_in_chinese_with_the_right_status() {
        let p = photo_problem(
            2,
            &PhotoError::Type {
                found: Some("a PDF document"),
            },
        );
        assert_eq!((p.status, p.code), (415, "photo_type"));
        assert!(
            p.detail
                .starts_with("第 2 张照片不是可接受的图片（PDF 文档）"),
            "{}",
            p.detail
        );
        let p = photo_problem(
            1,
            &PhotoError::InBatch {
                index: 3,
                source: Box::new(PhotoError::TooLarge {
                    size: 11 << 20,
                    max: 10 << 20,
                }),
            },
        );
        assert_eq!((p.status, p.code), (413, "photo_too_large"));
        assert!(
            p.detail.starts_with("第 3 张照片超过 10 MB"),
            "{}",
            p.detail
        );
        let p = photo_problem(10, &PhotoError::TooMany { count: 10, max: 9 });
        assert_eq!((p.status, p.code), (400, "photo_too_many"));
        assert!(p.detail.contains("最多可上传 9 张照片"));
    }

    #[test]
    fn coordinates_are_checked() {
        assert_eq!(
            coordinate(Some("33.85".into()), "纬度", 90.0).unwrap(),
            Some(33.85)
        );
        assert_eq!(coordinate(None, "纬度", 90.0).unwrap(), None);
        for bad in ["91", "NaN", "inf", "北纬33"] {
            let p = coordinate(Some(bad.into()), "纬度", 90.0).unwrap_err();
            assert_eq!((p.status, p.code), (400, "invalid_location"), "{bad}");
        }
    }

    #[test]
    fn the_upload_limit_fits_nine_full_photos() {
        let l = PhotoLimits::default();
        assert!(upload_body_limit(&l) > 9 * l.max_bytes);
    }
}
