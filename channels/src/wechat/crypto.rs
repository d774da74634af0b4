//! Signatures and 安全模式 (AES) for WeChat messages: the scheme of WeChat's own message-encryption
//! library (WXBizMsgCrypt), written against its published sample values.
//!
//! - URL check and plain-mode requests: `signature = sha1(sort(token, timestamp, nonce))`.
//! - Safe mode: `msg_signature = sha1(sort(token, timestamp, nonce, Encrypt))`; the AES key is the
//!   base64 of the 43-character EncodingAESKey plus `=`; the IV is its first 16 bytes; the plain
//!   text is `random(16) ‖ u32 big-endian length ‖ message ‖ AppID`, PKCS#7-padded to a multiple
//!   of 32 and encrypted with AES-256-CBC.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// WeChat pads to this many bytes, not to the AES block size.
const PAD_TO: usize = 32;

/// Why a message could not be verified, decrypted or encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The EncodingAESKey is not 43 base64 characters.
    #[error("the EncodingAESKey must be 43 characters of base64 (a-z, A-Z, 0-9)")]
    BadKey,
    /// The signature does not match: forged, or signed with another token.
    #[error("signature mismatch")]
    BadSignature,
    /// `Encrypt` is not base64 of whole AES blocks.
    #[error("the encrypted text is not base64 of whole AES blocks")]
    BadCipherText,
    /// The decrypted text does not have the random ‖ length ‖ message ‖ AppID layout.
    #[error("the decrypted text is malformed ({0})")]
    BadPlainText(&'static str),
    /// The message was encrypted for another official account.
    #[error("the message is for AppID `{0}`, not this account")]
    WrongAppId(String),
}

impl CryptoError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::BadKey => "wechat_bad_key",
            CryptoError::BadSignature => "wechat_bad_signature",
            CryptoError::BadCipherText => "wechat_bad_ciphertext",
            CryptoError::BadPlainText(_) => "wechat_bad_plaintext",
            CryptoError::WrongAppId(_) => "wechat_wrong_appid",
        }
    }
}

/// The SHA-1 of the sorted, concatenated parts, in lower-case hex: WeChat's one signature scheme
/// (three parts for `signature`, four with `Encrypt` for `msg_signature`).
pub fn sign(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut sha = Sha1::new();
    for p in sorted {
        sha.update(p.as_bytes());
    }
    hex::encode(sha.finalize())
}

/// Checks a signature given in a request against the parts, in constant time.
pub fn verify(parts: &[&str], given: &str) -> Result<(), CryptoError> {
    let expected = sign(parts);
    let given = given.trim().to_ascii_lowercase();
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

/// An account's message key (from the 43-character EncodingAESKey) with its AppID: what safe mode
/// needs to open and seal messages.
#[derive(Clone)]
pub struct MessageCipher {
    key: [u8; 32],
    app_id: String,
}

impl std::fmt::Debug for MessageCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageCipher")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl MessageCipher {
    /// Decodes the EncodingAESKey as configured in the official account's settings.
    pub fn new(encoding_aes_key: &str, app_id: &str) -> Result<Self, CryptoError> {
        let encoding_aes_key = encoding_aes_key.trim();
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        // WeChat's keys may leave non-zero bits in the last character: decode leniently.
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let bytes = engine
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(MessageCipher {
            key,
            app_id: app_id.trim().to_owned(),
        })
    }

    /// The AppID messages must carry.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    /// Seals `message` as the base64 `Encrypt` text. `random` is the 16-byte prefix WeChat
    /// expects; pass fresh random bytes (tests pass fixed ones to compare with the samples).
    pub fn encrypt(&self, message: &[u8], random: [u8; 16]) -> String {
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        let mut plain = Vec::with_capacity(20 + message.len() + self.app_id.len() + PAD_TO);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(message);
        plain.extend_from_slice(self.app_id.as_bytes());
        let pad = PAD_TO - plain.len() % PAD_TO;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let n = plain.len();
        let sealed = Encryptor::new(&self.key.into(), &self.iv().into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, n)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        STANDARD.encode(sealed)
    }

    /// Opens a base64 `Encrypt` text and returns the message, after checking the layout and
    /// that it was meant for this account's AppID.
    pub fn decrypt(&self, encrypted: &str) -> Result<Vec<u8>, CryptoError> {
        let mut data = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| CryptoError::BadCipherText)?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(CryptoError::BadCipherText);
        }
        let plain = Decryptor::new(&self.key.into(), &self.iv().into())
            .decrypt_padded_mut::<NoPadding>(&mut data)
            .map_err(|_| CryptoError::BadCipherText)?;
        let pad = usize::from(*plain.last().ok_or(CryptoError::BadPlainText("empty"))?);
        if !(1..=PAD_TO).contains(&pad) || pad > plain.len() {
            return Err(CryptoError::BadPlainText("padding"));
        }
        let body = &plain[..plain.len() - pad];
        if body.len() < 20 {
            return Err(CryptoError::BadPlainText("too short"));
        }
        let len = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
        let rest = &body[20..];
        if len > rest.len() {
            return Err(CryptoError::BadPlainText("length"));
        }
        let (message, app_id) = rest.split_at(len);
        if app_id != self.app_id.as_bytes() {
            return Err(CryptoError::WrongAppId(
                String::from_utf8_lossy(app_id).chars().take(32).collect(),
            ));
        }
        Ok(message.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The sample account of WeChat's message-encryption library (Sample.py / WXBizMsgCryptTest).
    const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    #[test]
    fn decrypts_the_official_sample_and_checks_its_msg_signature() {
        let token = "spamtest";
        let timestamp = "1409735669";
        let nonce = "1320562132";
        let encrypt = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
        verify(
            &[token, timestamp, nonce, encrypt],
            "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
        )
        .unwrap();
        let cipher = MessageCipher::new(SAMPLE_KEY, "wx2c2769f8efd9abc2").unwrap();
        let xml = String::from_utf8(cipher.decrypt(encrypt).unwrap()).unwrap();
        assert!(xml.starts_with("<xml>"), "{xml}");
        assert!(
            xml.contains("<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]>"),
            "{xml}"
        );
        assert!(
            xml.contains("<Content><![CDATA[abcdteT]]></Content>"),
            "{xml}"
        );
        assert!(xml.contains("<MsgId>6054768590064713728</MsgId>"), "{xml}");
        // Another account's AppID is refused after decryption.
        let other = MessageCipher::new(SAMPLE_KEY, "wx0000000000000000").unwrap();
        assert_eq!(
            other.decrypt(encrypt),
            Err(CryptoError::WrongAppId("wx2c2769f8efd9abc2".into()))
        );
    }

    #[test]
    fn encrypts_like_the_official_java_sample() {
        let cipher = MessageCipher::new(SAMPLE_KEY, "wxb11529c136998cb6").unwrap();
        let sealed = cipher.encrypt("我是中文abcd123".as_bytes(), *b"aaaabbbbccccdddd");
        assert_eq!(
            sealed,
            "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
        );
        assert_eq!(
            cipher.decrypt(&sealed).unwrap(),
            "我是中文abcd123".as_bytes()
        );
    }

    #[test]
    fn url_signature_is_the_sha1_of_the_sorted_parts() {
        // sha1("1409735669" + "1320562132" + "spamtest") with the parts sorted.
        let s = sign(&["spamtest", "1409735669", "1320562132"]);
        assert_eq!(s, sign(&["1320562132", "spamtest", "1409735669"]));
        assert_eq!(s.len(), 40);
        let mut sha = Sha1::new();
        sha.update(b"13205621321409735669spamtest");
        assert_eq!(s, hex::encode(sha.finalize()));
        assert!(verify(&["spamtest", "1409735669", "1320562132"], &s.to_uppercase()).is_ok());
        assert_eq!(
            verify(&["spamtest", "1409735669", "1320562133"], &s),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(verify(&["a"], ""), Err(CryptoError::BadSignature));
    }

    #[test]
    fn refuses_bad_keys_and_broken_cipher_text() {
        assert_eq!(
            MessageCipher::new("short", "wx1").unwrap_err(),
            CryptoError::BadKey
        );
        assert_eq!(
            MessageCipher::new(&"!".repeat(43), "wx1").unwrap_err(),
            CryptoError::BadKey
        );
        let cipher = MessageCipher::new(SAMPLE_KEY, "wx1").unwrap();
        assert_eq!(
            cipher.decrypt("not base64!"),
            Err(CryptoError::BadCipherText)
        );
        assert_eq!(cipher.decrypt("AAAA"), Err(CryptoError::BadCipherText));
        assert_eq!(cipher.decrypt(""), Err(CryptoError::BadCipherText));
        // Whole blocks of garbage decrypt to garbage: a clear refusal, not a panic.
        let garbage = STANDARD.encode([7u8; 64]);
        assert!(matches!(
            cipher.decrypt(&garbage),
            Err(CryptoError::BadPlainText(_) | CryptoError::WrongAppId(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn sealed_messages_open_again(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..600), random: [u8; 16]) {
            let cipher = MessageCipher::new(SAMPLE_KEY, "wx2c2769f8efd9abc2").unwrap();
            let sealed = cipher.encrypt(&msg, random);
            proptest::prop_assert_eq!(STANDARD.decode(&sealed).unwrap().len() % 32, 0);
            proptest::prop_assert_eq!(cipher.decrypt(&sealed).unwrap(), msg);
        }

        #[test]
        fn any_text_is_refused_or_opened_without_panic(text in ".{0,200}") {
            let cipher = MessageCipher::new(SAMPLE_KEY, "wx1").unwrap();
            let _ = cipher.decrypt(&text);
        }
    }
}
