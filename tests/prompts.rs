//! `hotline prompts generate` speaks the shipped catalogue with the real espeak-ng into files the
//! gateway can play, and a second run changes nothing.

use std::process::Command;

use sip_gateway::prompt::Prompt;

const BIN: &str = env!("CARGO_BIN_EXE_hotline");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/hotline.toml");

fn generate(data: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .args(["--config", CONFIG, "prompts", "generate"])
        .env("HOTLINE_DATA_DIR", data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn prompts_are_spoken_in_both_languages_and_regenerated_only_when_changed() {
    let data = tempfile::tempdir().unwrap();
    let first = generate(data.path());
    assert!(first.contains(" written, 0 unchanged"), "{first}");
    let prompts = data.path().join("prompts");
    for lang in ["zh", "en"] {
        for name in [
            "welcome_12319",
            "welcome_12345",
            "menu_12319",
            "digits/7",
            "status/dispatched",
            "goodbye",
        ] {
            let path = prompts.join(lang).join(format!("{name}.wav"));
            let p = Prompt::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                p.duration().as_millis() > 300,
                "{lang}/{name} lasts {:?}",
                p.duration()
            );
            let loud = p
                .samples()
                .iter()
                .filter(|s| s.unsigned_abs() > 1000)
                .count();
            assert!(
                loud > 800,
                "{lang}/{name}: only {loud} loud samples: silence?"
            );
        }
    }
    // The Chinese welcome is spoken in Mandarin, so it differs from the English one.
    let zh = Prompt::load(&prompts.join("zh/welcome_12319.wav")).unwrap();
    let en = Prompt::load(&prompts.join("en/welcome_12319.wav")).unwrap();
    assert_ne!(zh.samples().len(), en.samples().len());
    let beep = Prompt::load(&prompts.join("zh/beep.wav")).unwrap();
    assert_eq!(beep.duration().as_millis(), 400);

    let second = generate(data.path());
    assert!(second.contains(": 0 written,"), "{second}");
    // A changed file on disk with an unchanged text is left alone; a deleted one comes back.
    std::fs::remove_file(prompts.join("en/goodbye.wav")).unwrap();
    let third = generate(data.path());
    assert!(third.contains(": 1 written,"), "{third}");
}
