//! How far a transcript is from a reference: character error rate for Chinese (the measure
//! whisper's Chinese results are reported in) and word error rate for English, after the same
//! normalisation, so tests and benchmarks can hold a model to a number.
//!
//! Normalisation keeps letters and digits only (ASCII and CJK punctuation, symbols and
//! whitespace go; word error rate keeps whitespace as the word separator), folds full-width
//! ASCII (`ＡＢＣ１２３`) to half-width and lowercases. Traditional characters are not mapped to
//! simplified.

/// The edit operations turning a reference into a hypothesis (a minimal Levenshtein alignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EditCounts {
    /// Reference items replaced by another.
    pub substitutions: usize,
    /// Reference items missing from the hypothesis.
    pub deletions: usize,
    /// Hypothesis items not in the reference.
    pub insertions: usize,
    /// Items (characters or words) in the reference.
    pub reference_len: usize,
}

impl EditCounts {
    /// Total edits: the Levenshtein distance.
    pub fn distance(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Edits per reference item. May exceed 1 (many insertions). An empty reference gives 0 for
    /// an empty hypothesis and 1 for any other.
    pub fn rate(&self) -> f64 {
        match (self.reference_len, self.distance()) {
            (0, 0) => 0.0,
            (0, _) => 1.0,
            (n, d) => d as f64 / n as f64,
        }
    }
}

/// Character error rate of `hypothesis` against `reference`, after [`normalize`].
pub fn char_error_rate(reference: &str, hypothesis: &str) -> f64 {
    char_edits(reference, hypothesis).rate()
}

/// The character edits behind [`char_error_rate`].
pub fn char_edits(reference: &str, hypothesis: &str) -> EditCounts {
    let r: Vec<char> = normalize(reference).chars().collect();
    let h: Vec<char> = normalize(hypothesis).chars().collect();
    edits(&r, &h)
}

/// Word error rate of `hypothesis` against `reference`: words split on whitespace after
/// [`normalize_words`].
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    word_edits(reference, hypothesis).rate()
}

/// The word edits behind [`word_error_rate`].
pub fn word_edits(reference: &str, hypothesis: &str) -> EditCounts {
    let r = normalize_words(reference);
    let h = normalize_words(hypothesis);
    let r: Vec<&str> = r.split_whitespace().collect();
    let h: Vec<&str> = h.split_whitespace().collect();
    edits(&r, &h)
}

/// Text reduced to what [`char_error_rate`] compares: letters and digits, full-width ASCII
/// folded to half-width, lowercased; whitespace, punctuation and symbols removed.
pub fn normalize(text: &str) -> String {
    normalized(text, false)
}

/// Like [`normalize`] but whitespace is kept (runs of it as one space) to separate words;
/// punctuation is removed without splitting ("don't" → "dont").
pub fn normalize_words(text: &str) -> String {
    normalized(text, true)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn normalized(text: &str, keep_spaces: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = fold_width(c);
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if keep_spaces && c.is_whitespace() {
            out.push(' ');
        }
    }
    out
}

/// Full-width ASCII forms (U+FF01..U+FF5E) and the ideographic space to their ASCII
/// counterparts.
fn fold_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    }
}

/// A minimal alignment of `reference` to `hypothesis` and its operation counts, in
/// O(len(reference) × len(hypothesis)) time and O(len(hypothesis)) memory.
pub fn edits<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> EditCounts {
    // Each cell: (distance, substitutions, deletions, insertions) of the best alignment of the
    // prefixes; ties prefer substitution, then deletion, then insertion.
    type Cell = (usize, usize, usize, usize);
    let mut prev: Vec<Cell> = (0..=hypothesis.len()).map(|j| (j, 0, 0, j)).collect();
    let mut row: Vec<Cell> = vec![(0, 0, 0, 0); hypothesis.len() + 1];
    for (i, r) in reference.iter().enumerate() {
        row[0] = (i + 1, 0, i + 1, 0);
        for (j, h) in hypothesis.iter().enumerate() {
            let diagonal = prev[j];
            let substitute = if r == h {
                diagonal
            } else {
                (diagonal.0 + 1, diagonal.1 + 1, diagonal.2, diagonal.3)
            };
            let up = prev[j + 1];
            let delete = (up.0 + 1, up.1, up.2 + 1, up.3);
            let left = row[j];
            let insert = (left.0 + 1, left.1, left.2, left.3 + 1);
            let mut best = substitute;
            if delete.0 < best.0 {
                best = delete;
            }
            if insert.0 < best.0 {
                best = insert;
            }
            row[j + 1] = best;
        }
        std::mem::swap(&mut prev, &mut row);
    }
    let (_, substitutions, deletions, insertions) = prev[hypothesis.len()];
    EditCounts {
        substitutions,
        deletions,
        insertions,
        reference_len: reference.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn punctuation_width_and_case_do_not_count() {
        assert_eq!(normalize("您好，12345热线！请讲。"), "您好12345热线请讲");
        assert_eq!(
            normalize("“井盖”（幸福路）《通知》、；：‘’？！…—·【】"),
            "井盖幸福路通知"
        );
        assert_eq!(
            normalize("ＡＢＣ　１２３ Hello, World!"),
            "abc123helloworld"
        );
        assert_eq!(
            char_error_rate("我家门口的井盖坏了。", "我家门口的井盖坏了"),
            0.0
        );
        assert_eq!(
            char_error_rate("Hello, World!", "hello world"),
            0.0,
            "case and punctuation"
        );
    }

    #[test]
    fn chinese_errors_are_counted_by_kind() {
        // One substitution (盖→改), one deletion (的), one insertion (啊).
        let e = char_edits("我家门口的井盖坏了", "我家门口井改坏了啊");
        assert_eq!(
            e,
            EditCounts {
                substitutions: 1,
                deletions: 1,
                insertions: 1,
                reference_len: 9
            }
        );
        assert!((e.rate() - 3.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn rates_at_the_edges() {
        assert_eq!(char_error_rate("", ""), 0.0);
        assert_eq!(
            char_error_rate("，。", ""),
            0.0,
            "punctuation only is empty"
        );
        assert_eq!(char_error_rate("", "多余"), 1.0);
        assert_eq!(char_error_rate("井盖", ""), 1.0);
        assert_eq!(
            char_error_rate("井", "井盖坏了"),
            3.0,
            "insertions can exceed 1"
        );
    }

    #[test]
    fn english_words() {
        let e = word_edits(
            "The manhole cover on Station Road is broken.",
            "the man hole cover on station road broken",
        );
        // "manhole" → "man" + inserted "hole"; "is" deleted.
        assert_eq!(e.substitutions, 1);
        assert_eq!(e.insertions, 1);
        assert_eq!(e.deletions, 1);
        assert_eq!(e.reference_len, 8);
        assert!((word_error_rate("Don't  go!", "dont go") - 0.0).abs() < 1e-12);
        assert_eq!(normalize_words("  Don't,\tgo!  now "), "dont go now");
        assert_eq!(word_error_rate("one two three four", "one too three"), 0.5);
    }

    proptest! {
        #[test]
        fn identical_text_has_no_errors(x in "\\PC{0,40}") {
            prop_assert_eq!(char_error_rate(&x, &x), 0.0);
            prop_assert_eq!(word_error_rate(&x, &x), 0.0);
        }

        #[test]
        fn empty_hypothesis_deletes_everything(x in "[a-z井盖坏了，。 ]{0,40}") {
            let reference = normalize(&x);
            let e = char_edits(&x, "");
            prop_assert_eq!(e.deletions, reference.chars().count());
            if !reference.is_empty() {
                prop_assert_eq!(char_error_rate(&x, ""), 1.0);
            }
        }

        #[test]
        fn distance_is_symmetric_and_bounded(a in "[abc井盖]{0,20}", b in "[abc井盖]{0,20}") {
            let ab = char_edits(&a, &b);
            let ba = char_edits(&b, &a);
            prop_assert_eq!(ab.distance(), ba.distance());
            let (la, lb) = (a.chars().count(), b.chars().count());
            prop_assert!(ab.distance() >= la.abs_diff(lb));
            prop_assert!(ab.distance() <= la.max(lb));
            // The counts describe a real alignment: hypothesis length is reconstructible.
            prop_assert_eq!(la - ab.deletions + ab.insertions, lb);
        }

        #[test]
        fn triangle_inequality(a in "[ab井]{0,12}", b in "[ab井]{0,12}", c in "[ab井]{0,12}") {
            let d = |x: &str, y: &str| char_edits(x, y).distance();
            prop_assert!(d(&a, &c) <= d(&a, &b) + d(&b, &c));
        }
    }
}
