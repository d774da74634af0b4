//! One transcript of a call: the caller's and the hotline side's segments (decoded per channel)
//! merged on one clock, and the forms it is shown and stored in: SRT subtitles for the recording
//! player, a plain text listing for the ticket page, JSON for the store, and all text joined for
//! full-text search and a voicemail ticket's content. Labels are in Chinese, the UI's language.
//!
//! Also [`collapse_repeats`], which undoes whisper's best-known failure: a phrase repeated over
//! and over when the decoder gets stuck ("谢谢。谢谢。谢谢。谢谢。").

use serde::{Deserialize, Serialize};

/// Who is speaking: the channel a segment was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The citizen calling (channel 0 of a call recording; the only voice of a voicemail).
    Caller,
    /// The hotline side: the agent and the IVR's prompts (channel 1).
    Hotline,
}

impl Speaker {
    /// The label shown before the speaker's words: "市民" or "话务员".
    pub fn label(self) -> &'static str {
        match self {
            Speaker::Caller => "市民",
            Speaker::Hotline => "话务员",
        }
    }
}

/// A stretch of speech from one speaker, on the recording's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Start, in milliseconds from the start of the recording.
    pub start_ms: u64,
    /// End, in milliseconds from the start of the recording.
    pub end_ms: u64,
    /// Who said it.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
}

/// A whole recording's transcript, as stored (JSON) and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// Language decoded in (`zh`, `en`...).
    pub language: String,
    /// Length of the recording, in milliseconds.
    pub duration_ms: u64,
    /// Segments in time order (see [`merge`]).
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// The transcript as JSON, for the store.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored transcript read back.
    pub fn from_json(json: &str) -> Result<Transcript, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// One timeline from each channel's segments: every segment takes its channel's speaker, its
/// text is trimmed and cleared of runaway repetitions ([`collapse_repeats`]), an end before the
/// start is raised to the start, segments left without text are dropped, and the rest are sorted
/// by start time (ties: caller first; otherwise the channel's own order is kept).
pub fn merge(channels: Vec<(Speaker, Vec<Segment>)>) -> Vec<Segment> {
    let mut all: Vec<Segment> = channels
        .into_iter()
        .flat_map(|(speaker, segments)| {
            segments.into_iter().filter_map(move |segment| {
                let text = collapse_repeats(segment.text.trim());
                let text = text.trim();
                (!text.is_empty()).then(|| Segment {
                    start_ms: segment.start_ms,
                    end_ms: segment.end_ms.max(segment.start_ms),
                    speaker,
                    text: text.to_string(),
                })
            })
        })
        .collect();
    all.sort_by_key(|s| (s.start_ms, s.speaker));
    all
}

/// The segments as SubRip subtitles: cues numbered from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`,
/// the text prefixed with the speaker ("市民：..."). Line breaks inside a text become spaces,
/// since a blank line would end the cue.
pub fn to_srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, segment) in segments.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}：{}\n\n",
            i + 1,
            srt_time(segment.start_ms),
            srt_time(segment.end_ms.max(segment.start_ms)),
            segment.speaker.label(),
            one_line(&segment.text)
        ));
    }
    out
}

/// The segments as a listing, one line each: `[mm:ss] 市民：text` (minutes keep counting past
/// 59, so a 75-minute call shows `[75:03]`).
pub fn to_text(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        let secs = segment.start_ms / 1000;
        out.push_str(&format!(
            "[{:02}:{:02}] {}：{}\n",
            secs / 60,
            secs % 60,
            segment.speaker.label(),
            one_line(&segment.text)
        ));
    }
    out
}

/// All the text, without times or speakers, for full-text search and as a voicemail ticket's
/// content. Segments are joined directly, with a space only between two Latin letters or
/// digits (Chinese needs none; "broken" + "today" must not become "brokentoday").
pub fn plain_text(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        let text = one_line(segment.text.trim());
        if text.is_empty() {
            continue;
        }
        let needs_space = match (out.chars().last(), text.chars().next()) {
            (Some(a), Some(b)) => {
                let ends_latin = !is_cjk(a) && (a.is_alphanumeric() || ".,!?;:".contains(a));
                ends_latin && !is_cjk(b) && b.is_alphanumeric()
            }
            _ => false,
        };
        if needs_space {
            out.push(' ');
        }
        out.push_str(&text);
    }
    out
}

/// Collapses a phrase repeated in a row into one occurrence: whisper, when stuck, writes
/// "井盖井盖井盖井盖" or "谢谢。谢谢。谢谢。谢谢。". Conservative, so real speech survives:
/// a phrase of two or more characters must occur 3 times in a row, a single character 5 times
/// ("对对对" and "哈哈哈" are how people talk); anything holding a digit or only numerals is left
/// alone (phone numbers, "100000"); a Latin phrase only counts when it ends at a word boundary
/// ("hahaha" stays, "thank you thank you thank you" goes). A final occurrence missing only its
/// trailing space or punctuation still counts.
pub fn collapse_repeats(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match longest_repeat(&chars, i) {
            Some((len, span)) => {
                let unit: String = chars[i..i + len].iter().collect();
                // A run ending on a shortened last occurrence is replaced by the short form.
                if span % len != 0 {
                    out.push_str(unit.trim_end_matches(is_trailer));
                } else {
                    out.push_str(&unit);
                }
                i += span;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Longest repeated phrase the rules accept.
const MAX_UNIT: usize = 40;

/// The repetition starting at `i` covering the most characters: `(unit length, span)`; the
/// shortest unit wins a tie.
fn longest_repeat(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let rest = chars.len() - i;
    for len in 1..=MAX_UNIT.min(rest / 2) {
        let unit = &chars[i..i + len];
        if !acceptable_unit(unit, chars, i) {
            continue;
        }
        let mut count = 1;
        while i + (count + 1) * len <= chars.len()
            && chars[i + count * len..i + (count + 1) * len] == *unit
        {
            count += 1;
        }
        let mut span = count * len;
        // A last occurrence without its trailing space or punctuation.
        let trimmed = unit.len() - unit.iter().rev().take_while(|c| is_trailer(**c)).count();
        if trimmed > 0 && trimmed < len {
            let tail = &chars[i + span..];
            if tail.len() >= trimmed
                && tail[..trimmed] == unit[..trimmed]
                && !tail.get(trimmed).is_some_and(|c| is_latin_word(*c))
            {
                count += 1;
                span += trimmed;
            }
        }
        let needed = if len == 1 { 5 } else { 3 };
        if count < needed {
            continue;
        }
        if unit.iter().any(|c| is_latin_word(*c)) {
            let (first, last) = (unit[0], unit[len - 1]);
            // Glued to itself ("hahaha"): a repetition inside one word.
            if is_latin_word(first) && is_latin_word(last) {
                continue;
            }
            // The run would end in the middle of a word.
            if is_latin_word(last) && chars.get(i + span).is_some_and(|c| is_latin_word(*c)) {
                continue;
            }
        }
        if best.is_none_or(|(_, s)| span > s) {
            best = Some((len, span));
        }
    }
    best
}

/// A unit may collapse when it is more than punctuation, holds no digit, is not numerals only,
/// and (if Latin) starts at a word boundary.
fn acceptable_unit(unit: &[char], chars: &[char], i: usize) -> bool {
    if unit.iter().all(|c| is_trailer(*c)) {
        return false;
    }
    if unit.iter().any(|c| c.is_numeric()) {
        return false;
    }
    if unit
        .iter()
        .filter(|c| !is_trailer(**c))
        .all(|c| CHINESE_NUMERALS.contains(*c))
    {
        return false;
    }
    if is_latin_word(unit[0]) && i > 0 && is_latin_word(chars[i - 1]) {
        return false;
    }
    true
}

const CHINESE_NUMERALS: &str = "零〇一二三四五六七八九十百千万亿幺两壹贰叁肆伍陆柒捌玖拾佰仟";

/// Whitespace or punctuation that may end a repeated phrase.
fn is_trailer(c: char) -> bool {
    c.is_whitespace() || c.is_ascii_punctuation() || "，。！？、；：…".contains(c)
}

fn is_latin_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '\''
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF
        | 0x20000..=0x3FFFF)
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn srt_time(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02},{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_ms: u64, end_ms: u64, speaker: Speaker, text: &str) -> Segment {
        Segment {
            start_ms,
            end_ms,
            speaker,
            text: text.to_string(),
        }
    }

    fn call() -> Vec<Segment> {
        merge(vec![
            (
                Speaker::Caller,
                vec![
                    seg(3_200, 6_100, Speaker::Caller, " 我家门口的井盖坏了。 "),
                    seg(9_000, 9_000, Speaker::Caller, "   "),
                    seg(10_500, 12_000, Speaker::Caller, "在幸福路12号。"),
                ],
            ),
            (
                Speaker::Hotline,
                vec![
                    seg(0, 2_900, Speaker::Hotline, "您好，12345热线。"),
                    seg(6_400, 8_800, Speaker::Hotline, "请问具体地址是哪里？"),
                ],
            ),
        ])
    }

    #[test]
    fn merge_interleaves_channels_by_time_and_drops_empty_text() {
        let merged = call();
        let got: Vec<(u64, Speaker, &str)> = merged
            .iter()
            .map(|s| (s.start_ms, s.speaker, s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, Speaker::Hotline, "您好，12345热线。"),
                (3_200, Speaker::Caller, "我家门口的井盖坏了。"),
                (6_400, Speaker::Hotline, "请问具体地址是哪里？"),
                (10_500, Speaker::Caller, "在幸福路12号。"),
            ]
        );
    }

    #[test]
    fn merge_ties_put_the_caller_first_and_keep_channel_order() {
        let merged = merge(vec![
            (
                Speaker::Hotline,
                vec![seg(1_000, 2_000, Speaker::Caller, "喂？")],
            ),
            (
                Speaker::Caller,
                vec![
                    seg(1_000, 1_500, Speaker::Caller, "你好"),
                    seg(1_000, 1_200, Speaker::Caller, "我要投诉"),
                ],
            ),
        ]);
        let got: Vec<(&str, Speaker)> = merged
            .iter()
            .map(|s| (s.text.as_str(), s.speaker))
            .collect();
        // The channel decides the speaker, whatever the segment said.
        assert_eq!(
            got,
            vec![
                ("你好", Speaker::Caller),
                ("我要投诉", Speaker::Caller),
                ("喂？", Speaker::Hotline)
            ]
        );
    }

    #[test]
    fn merge_repairs_inverted_times_and_collapses_runaway_text() {
        let merged = merge(vec![(
            Speaker::Caller,
            vec![seg(
                5_000,
                4_000,
                Speaker::Caller,
                "谢谢。谢谢。谢谢。谢谢。",
            )],
        )]);
        assert_eq!(merged, vec![seg(5_000, 5_000, Speaker::Caller, "谢谢。")]);
    }

    #[test]
    fn srt_has_numbered_cues_times_and_chinese_speaker_labels() {
        let srt = to_srt(&call());
        let expected = "\
1
00:00:00,000 --> 00:00:02,900
话务员：您好，12345热线。

2
00:00:03,200 --> 00:00:06,100
市民：我家门口的井盖坏了。

3
00:00:06,400 --> 00:00:08,800
话务员：请问具体地址是哪里？

4
00:00:10,500 --> 00:00:12,000
市民：在幸福路12号。

";
        assert_eq!(srt, expected);
        assert_eq!(srt_time(3_723_004), "01:02:03,004");
        assert_eq!(to_srt(&[]), "");
    }

    #[test]
    fn srt_cue_text_never_contains_a_blank_line() {
        let srt = to_srt(&[seg(0, 1_000, Speaker::Caller, "第一行\n\n第二行\r\n")]);
        assert_eq!(
            srt,
            "1\n00:00:00,000 --> 00:00:01,000\n市民：第一行 第二行\n\n"
        );
    }

    #[test]
    fn text_listing_has_minutes_and_seconds_and_labels() {
        let mut segments = call();
        segments.push(seg(4_503_000, 4_504_000, Speaker::Caller, "还在吗"));
        assert_eq!(
            to_text(&segments),
            "[00:00] 话务员：您好，12345热线。\n\
             [00:03] 市民：我家门口的井盖坏了。\n\
             [00:06] 话务员：请问具体地址是哪里？\n\
             [00:10] 市民：在幸福路12号。\n\
             [75:03] 市民：还在吗\n"
        );
    }

    #[test]
    fn plain_text_joins_chinese_directly_and_latin_with_a_space() {
        assert_eq!(
            plain_text(&call()),
            "您好，12345热线。我家门口的井盖坏了。请问具体地址是哪里？在幸福路12号。"
        );
        let english = [
            seg(0, 1, Speaker::Caller, "The manhole cover is broken."),
            seg(1, 2, Speaker::Caller, "Please come today"),
            seg(2, 3, Speaker::Caller, "  "),
            seg(3, 4, Speaker::Caller, "thanks"),
        ];
        assert_eq!(
            plain_text(&english),
            "The manhole cover is broken. Please come today thanks"
        );
        assert_eq!(plain_text(&[]), "");
    }

    #[test]
    fn transcript_json_is_clean_and_round_trips() {
        let transcript = Transcript {
            language: "zh".into(),
            duration_ms: 12_500,
            segments: vec![
                seg(0, 2_900, Speaker::Hotline, "您好"),
                seg(3_200, 6_100, Speaker::Caller, "井盖坏了"),
            ],
        };
        let json = transcript.to_json();
        assert_eq!(
            json,
            r#"{"language":"zh","duration_ms":12500,"segments":[{"start_ms":0,"end_ms":2900,"speaker":"hotline","text":"您好"},{"start_ms":3200,"end_ms":6100,"speaker":"caller","text":"井盖坏了"}]}"#
        );
        assert_eq!(Transcript::from_json(&json).unwrap(), transcript);
        assert!(Transcript::from_json(r#"{"language":"zh","duration_ms":1,"segments":[{"start_ms":0,"end_ms":1,"speaker":"agent","text":"x"}]}"#).is_err());
    }

    #[test]
    fn runaway_repetitions_collapse_to_one() {
        let cases = [
            ("井盖井盖井盖井盖", "井盖"),
            ("谢谢。谢谢。谢谢。谢谢。", "谢谢。"),
            ("谢谢。谢谢。谢谢。谢谢", "谢谢"),
            ("我家门口的井盖井盖井盖井盖坏了", "我家门口的井盖坏了"),
            ("请尽快处理请尽快处理请尽快处理", "请尽快处理"),
            ("谢谢 谢谢 谢谢", "谢谢"),
            ("Thank you. Thank you. Thank you. Thank you.", "Thank you."),
            ("thank you thank you thank you", "thank you"),
            ("啊啊啊啊啊啊啊啊", "啊"),
            ("好的，好的，好的，好的，我知道了", "好的，我知道了"),
        ];
        for (input, want) in cases {
            assert_eq!(collapse_repeats(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_speech_is_left_alone() {
        let cases = [
            "对对对",
            "好好好，我记下了",
            "哈哈哈哈",
            "谢谢谢谢",
            "井盖井盖",
            "电话是13800000000",
            "一共100000元",
            "房间号三三三",
            "号码是一一一一一九",
            "hahaha that's funny",
            "Mississippi",
            "bananas",
            "……",
            "No, no, no.",
            "",
        ];
        for input in cases {
            assert_eq!(collapse_repeats(input), input, "{input}");
        }
    }

    proptest::proptest! {
        #[test]
        fn collapsing_never_panics_or_lengthens(text in "[谢井盖。， a-c1]{0,60}|\\PC{0,60}") {
            let out = collapse_repeats(&text);
            proptest::prop_assert!(out.chars().count() <= text.chars().count());
            // Text with no repetition at all comes back unchanged.
            let distinct: std::collections::HashSet<char> = text.chars().collect();
            if distinct.len() == text.chars().count() {
                proptest::prop_assert_eq!(&out, &text);
            }
        }
    }
}
