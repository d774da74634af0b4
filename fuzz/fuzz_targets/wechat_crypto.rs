//! 安全模式 with the sample account of WeChat's WXBizMsgCrypt library:
//!
//! - any text given as `Encrypt` is opened or refused, never a panic;
//! - any plain text sealed with the account's key (so the fuzzer reaches the padding, length and
//!   AppID checks that come after AES) is opened or refused, never a panic;
//! - the input split as a 16-byte random and a message: encrypt → decrypt gives the message back;
//! - signatures: `verify` never panics, and accepts what `sign` made, in either case of hex.

#![no_main]

use std::sync::LazyLock;

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use channels::wechat::crypto::{MessageCipher, sign, verify};
use libfuzzer_sys::fuzz_target;

const ENCODING_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP_ID: &str = "wx2c2769f8efd9abc2";

static CIPHER: LazyLock<MessageCipher> = LazyLock::new(|| {
    MessageCipher::new(ENCODING_AES_KEY, APP_ID).expect("the sample key is valid")
});

/// The AES-256 key behind the EncodingAESKey; the IV is its first 16 bytes.
static KEY: LazyLock<[u8; 32]> = LazyLock::new(|| {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    engine
        .decode(format!("{ENCODING_AES_KEY}="))
        .expect("the sample key is base64")
        .try_into()
        .expect("the sample key is 32 bytes")
});

/// AES-256-CBC over whole blocks, no padding added: the plain text is the fuzzer's, as is.
fn seal_raw(plain: &[u8]) -> String {
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&KEY[..16]);
    let mut buf = plain.to_vec();
    let n = buf.len();
    let sealed = cbc::Encryptor::<aes::Aes256>::new(&(*KEY).into(), &iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, n)
        .expect("whole blocks");
    STANDARD.encode(sealed)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = CIPHER.decrypt(text);

        let parts: Vec<&str> = text.split('\n').collect();
        let (given, parts) = parts.split_last().expect("split gives one part at least");
        let _ = verify(parts, given);
        let signature = sign(parts);
        assert_eq!(verify(parts, &signature), Ok(()));
        assert_eq!(verify(parts, &signature.to_uppercase()), Ok(()));
    }

    let whole_blocks = &data[..data.len() - data.len() % 16];
    if !whole_blocks.is_empty()
        && let Ok(message) = CIPHER.decrypt(&seal_raw(whole_blocks))
    {
        // Only a plain text with this account's layout opens; what it says is within it.
        assert!(message.len() + 20 + APP_ID.len() <= whole_blocks.len());
    }

    if let Some((random, message)) = data.split_first_chunk::<16>() {
        let sealed = CIPHER.encrypt(message, *random);
        assert_eq!(CIPHER.decrypt(&sealed).as_deref(), Ok(message));
    }
});
