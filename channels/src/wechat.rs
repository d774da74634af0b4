//! The WeChat official account's server protocol (公众号消息接口).

pub mod crypto;
pub mod xml;
