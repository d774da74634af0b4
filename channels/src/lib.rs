//! Intake channels: the WeChat official account (公众号), the citizen app and the web form. Each
//! turns a citizen's submission into the one `ticketing` intake; none writes ticket rows itself.
//!
//! The protocol cores here are sans-IO: [`wechat::crypto`] (signatures and 安全模式 AES),
//! [`wechat::xml`] (the message format), [`photo`] (content checks, EXIF location, stripping).
//! [`media`] writes media files under `<data_dir>/media/YYYY/MM/DD/`.

pub mod media;
pub mod photo;
pub mod wechat;
