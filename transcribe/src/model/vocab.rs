//! Whisper's vocabulary as whisper.cpp wants it: the bytes of each token. CTranslate2's
//! `vocabulary.txt` (or `.json`) holds GPT-2 byte-level BPE strings, where every byte is shown as
//! a printable character (`Ġ` for a space); this undoes that mapping.

/// How many ordinary tokens the multilingual vocabulary has: whisper.cpp adds the special ones
/// (`<|endoftext|>`, languages, timestamps) itself from `n_vocab`.
pub const TEXT_TOKENS: usize = 50_257;

/// GPT-2's `bytes_to_unicode` inverted: character → byte.
fn char_to_byte() -> std::collections::HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~'))
        .chain(u32::from('¡')..=u32::from('¬'))
        .chain(u32::from('®')..=u32::from('ÿ'))
        .collect();
    let mut chars = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    printable
        .iter()
        .zip(&chars)
        .filter_map(|(&b, &c)| Some((char::from_u32(c)?, b as u8)))
        .collect()
}

/// The bytes of each token string; a character outside the byte alphabet is an error (the
/// vocabulary is not byte-level BPE).
pub fn decode(tokens: &[String]) -> Result<Vec<Vec<u8>>, String> {
    let map = char_to_byte();
    tokens
        .iter()
        .map(|t| {
            t.chars()
                .map(|c| {
                    map.get(&c)
                        .copied()
                        .ok_or_else(|| format!("token {t:?} is not byte-level BPE"))
                })
                .collect()
        })
        .collect()
}

/// Tokens from `vocabulary.txt` (one per line) or `vocabulary.json` (an array of strings).
pub fn parse(text: &str, json: bool) -> Result<Vec<String>, String> {
    if json {
        serde_json::from_str(text).map_err(|e| format!("vocabulary.json: {e}"))
    } else {
        Ok(text.lines().map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_strings_become_bytes() {
        let t = vec!["Ġthe".to_string(), "Ċ".into(), "ä½ł".into(), "!".into()];
        let b = decode(&t).unwrap();
        assert_eq!(b[0], b" the");
        assert_eq!(b[1], b"\n");
        assert_eq!(String::from_utf8(b[2].clone()).unwrap(), "你");
        assert_eq!(b[3], b"!");
        assert!(decode(&["好".to_string()]).is_err());
    }

    #[test]
    fn every_byte_has_one_character() {
        let map = char_to_byte();
        assert_eq!(map.len(), 256);
        let mut bytes: Vec<u8> = map.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
    }
}
