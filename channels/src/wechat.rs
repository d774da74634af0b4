//! The WeChat official account's server protocol (公众号消息接口).

pub mod account;
pub mod api;
pub mod crypto;
#[cfg(feature = "testing")]
pub mod standin;
pub mod worker;
pub mod xml;
