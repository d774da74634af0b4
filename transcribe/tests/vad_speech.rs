//! The tone check of voice activity ([`transcribe::vad`]) on real speech: the spoken corpus
//! (espeak-ng through the telephone band) loses nothing to it, and a beep spliced in front of
//! a sentence does not open the sentence's region.

use transcribe::audio;
use transcribe::testing;
use transcribe::vad::{self, VadConfig};

fn speech(u: &testing::Utterance) -> Vec<f32> {
    let wav = testing::telephone_wav(u).unwrap();
    audio::decode_file(&wav).unwrap().channels.remove(0)
}

#[test]
fn spoken_sentences_hold_no_tone() {
    let without = VadConfig {
        min_tone_ms: 0,
        ..VadConfig::default()
    };
    let set: Vec<_> = testing::corpus()
        .into_iter()
        .chain(testing::heldout())
        .collect();
    assert!(set.len() >= 25);
    for u in &set {
        let samples = speech(u);
        let found = vad::detect(&samples, &VadConfig::default());
        assert!(!found.is_empty(), "{}: no speech found", u.id);
        assert_eq!(
            found,
            vad::detect(&samples, &without),
            "{} ({}): the tone check took speech",
            u.id,
            u.text
        );
    }
}

#[test]
fn a_beep_spliced_before_a_sentence_is_left_out() {
    let u = testing::corpus()
        .into_iter()
        .find(|u| u.id == "zh01")
        .unwrap();
    let sentence = speech(&u);
    let rate = VadConfig::default().rate as usize;
    // Half a second of a 1 kHz beep at −12 dBFS, a second of silence, the sentence.
    let mut samples: Vec<f32> = (0..rate / 2)
        .map(|i| 0.35 * (std::f32::consts::TAU * 1000.0 * i as f32 / rate as f32).sin())
        .collect();
    samples.resize(samples.len() + rate, 0.0);
    // The same without the beep: silence in its place.
    let mut quiet = vec![0.0; samples.len()];
    samples.extend_from_slice(&sentence);
    quiet.extend_from_slice(&sentence);
    let spliced = vad::detect(&samples, &VadConfig::default());
    let shifted = vad::detect(&quiet, &VadConfig::default());
    assert!(!shifted.is_empty());
    assert_eq!(spliced, shifted, "the beep is not speech");
    let without = VadConfig {
        min_tone_ms: 0,
        ..VadConfig::default()
    };
    assert_ne!(
        vad::detect(&samples, &without),
        shifted,
        "loud enough to pass for speech without the tone check"
    );
}
