//! Whisper's vocabulary as whisper.cpp wants it: the raw bytes of each ordinary token.
//!
//! CTranslate2's `vocabulary.txt` (one token a line) or `vocabulary.json` (an array) holds
//! GPT-2 byte-level BPE strings, where each byte is shown as one printable character (`Ġ` is a
//! space, `Ċ` a newline); [`decode`] undoes GPT-2's `bytes_to_unicode`. whisper.cpp stores only
//! the ordinary tokens and names the special ones (`<|endoftext|>`, languages, timestamps)
//! itself from `n_vocab`, so [`text_tokens`] cuts the list where they begin.

/// The first special token: everything before it is ordinary text.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Why a vocabulary cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabError {
    /// `vocabulary.json` is not an array of strings.
    #[error("vocabulary.json is not an array of strings: {0}")]
    Json(String),
    /// A token has a character outside GPT-2's byte alphabet.
    #[error("token {index} ({token:?}) is not a byte-level BPE string")]
    NotByteLevel {
        /// Its id.
        index: usize,
        /// The token as written.
        token: String,
    },
}

/// The byte a character of GPT-2's byte alphabet stands for.
///
/// GPT-2 maps the printable bytes `!`..=`~`, `¡`..=`¬` and `®`..=`ÿ` to the characters of the
/// same code, and the other 68 bytes (0–32, 127–160 and 173), in order, to U+0100 onwards.
pub fn byte_of(c: char) -> Option<u8> {
    let code = u32::from(c);
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    if code < 0x100 {
        return printable(code).then_some(code as u8);
    }
    match code - 0x100 {
        n @ 0..=32 => Some(n as u8),
        n @ 33..=66 => Some((0x7f + n - 33) as u8),
        67 => Some(0xad),
        _ => None,
    }
}

/// The bytes of each token string.
pub fn decode(tokens: &[String]) -> Result<Vec<Vec<u8>>, VocabError> {
    tokens
        .iter()
        .enumerate()
        .map(|(index, token)| {
            token
                .chars()
                .map(byte_of)
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| VocabError::NotByteLevel {
                    index,
                    token: token.clone(),
                })
        })
        .collect()
}

/// The ordinary tokens: those before the first `<|endoftext|>` (all of them when it is absent).
pub fn text_tokens(tokens: &[String]) -> &[String] {
    let end = tokens
        .iter()
        .position(|t| t == END_OF_TEXT)
        .unwrap_or(tokens.len());
    &tokens[..end]
}

/// The tokens of `vocabulary.txt` (`json` false: one a line, an empty line being the empty
/// token) or of `vocabulary.json` (an array of strings).
pub fn parse(text: &str, json: bool) -> Result<Vec<String>, VocabError> {
    if json {
        serde_json::from_str(text).map_err(|e| VocabError::Json(e.to_string()))
    } else {
        Ok(text.lines().map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GPT-2's `bytes_to_unicode`, transcribed from its encoder.py: byte → character.
    fn gpt2_bytes_to_unicode() -> Vec<(u8, char)> {
        let mut bs: Vec<u32> = (0x21..=0x7e).chain(0xa1..=0xac).chain(0xae..=0xff).collect();
        let mut cs = bs.clone();
        let mut n = 0;
        for b in 0..256 {
            if !bs.contains(&b) {
                bs.push(b);
                cs.push(256 + n);
                n += 1;
            }
        }
        bs.into_iter()
            .zip(cs)
            .map(|(b, c)| (b as u8, char::from_u32(c).unwrap()))
            .collect()
    }

    #[test]
    fn byte_of_inverts_gpt2s_table_for_all_256_bytes() {
        let table = gpt2_bytes_to_unicode();
        assert_eq!(table.len(), 256);
        for (b, c) in table {
            assert_eq!(byte_of(c), Some(b), "{c:?} should be byte {b}");
        }
        for c in ['\0', ' ', '\n', '\u{7f}', '\u{ad}', '\u{144}', '好', 'Ā' ] {
            let expected = match c {
                'Ā' => Some(0),
                _ => None,
            };
            assert_eq!(byte_of(c), expected, "{c:?}");
        }
    }

    #[test]
    fn byte_level_strings_become_their_bytes() {
        let t: Vec<String> = ["Ġthe", "Ċ", "ä½ł", "!", "", "ĠâĢĶ"].map(String::from).into();
        let b = decode(&t).unwrap();
        assert_eq!(b[0], b" the");
        assert_eq!(b[1], b"\n");
        assert_eq!(std::str::from_utf8(&b[2]).unwrap(), "你");
        assert_eq!(b[3], b"!");
        assert_eq!(b[4], b"");
        assert_eq!(std::str::from_utf8(&b[5]).unwrap(), " —");
        let e = decode(&["ok".into(), "好".into()]).unwrap_err();
        assert_eq!(e, VocabError::NotByteLevel { index: 1, token: "好".into() });
    }

    #[test]
    fn the_ordinary_tokens_end_where_the_special_ones_begin() {
        let text = "!\n\"\n\n<|endoftext|>\n<|startoftranscript|>\n";
        let tokens = parse(text, false).unwrap();
        assert_eq!(tokens, ["!", "\"", "", "<|endoftext|>", "<|startoftranscript|>"]);
        assert_eq!(text_tokens(&tokens), ["!", "\"", ""]);
        let json = parse(r#"["a", "Ġb", "<|endoftext|>"]"#, true).unwrap();
        assert_eq!(text_tokens(&json), ["a", "Ġb"]);
        assert!(matches!(parse("{\"a\": 1}", true), Err(VocabError::Json(_))));
    }
}
