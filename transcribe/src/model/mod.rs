//! Speech models: a CTranslate2 (faster-whisper) conversion of Whisper, as PyPI wheels carry it,
//! converted to whisper.cpp's format ([`import`]) and kept in `<data dir>/models/` with a
//! manifest and checksum each ([`list`], [`default_model`]).
//!
//! The conversion follows whisper.cpp's loader: CTranslate2 fuses the attention projections
//! (q, k, v in self-attention; k, v in cross-attention), whisper.cpp keeps them apart and has no
//! key bias (CTranslate2 stores it as zeros); matrices are f16 or q8_0, convolution kernels f16,
//! everything else (biases, norms, positional embeddings) f32, conv biases as `[n, 1]`.

pub mod ct2;
pub mod ggml;
pub mod mel;
pub mod vocab;

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use ct2::Ct2Model;
use ggml::{GgmlType, Hparams, Tensor};

/// Why a model could not be imported or found.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The sources hold no model.
    #[error(
        "no CTranslate2 whisper model in {0} (looked for model.bin or model.bin.part1.. and vocabulary.txt)"
    )]
    NotFound(String),
    /// The model file is broken.
    #[error(transparent)]
    Ct2(#[from] ct2::Ct2Error),
    /// The model is not a whisper model as whisper.cpp knows it.
    #[error("not a whisper model whisper.cpp can run: {0}")]
    Unsupported(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How the weight matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantize {
    /// As shipped (half precision).
    #[default]
    F16,
    /// 8-bit blocks: half the size, a little less accurate.
    Q8_0,
}

/// What `hotline model import` asks for.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Name of the model; default `whisper-<size>` (`-q8_0` when quantized).
    pub name: Option<String>,
    /// Weight format.
    pub quantize: Quantize,
    /// Make it the default even when there is one.
    pub make_default: bool,
}

/// An imported model, as its manifest (`<name>.json`) describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// Its name.
    pub name: String,
    /// The ggml file.
    #[serde(skip)]
    pub path: PathBuf,
    /// `f16` or `q8_0`.
    pub ftype: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The header.
    pub hparams: Hparams,
    /// What it was made from (file names).
    pub sources: Vec<String>,
    /// Seconds since the Unix epoch.
    pub imported_at: u64,
    /// Whether it is the default model.
    #[serde(skip)]
    pub is_default: bool,
}

/// whisper.cpp's header, the vocabulary's bytes and the tensors.
pub type Converted = (Hparams, Vec<Vec<u8>>, Vec<Tensor>);

/// Converts a CTranslate2 whisper model to whisper.cpp's header and tensors.
pub fn convert(
    model: &Ct2Model,
    tokens: &[String],
    quantize: Quantize,
) -> Result<Converted, ModelError> {
    if model.spec != "WhisperSpec" {
        return Err(ModelError::Unsupported(format!("spec {}", model.spec)));
    }
    let get = |name: &str| {
        model
            .get(name)
            .ok_or_else(|| ModelError::Unsupported(format!("{name} is missing")))
    };
    let layers = |prefix: &str| {
        model
            .variables
            .iter()
            .filter_map(|v| {
                let rest = v.name.strip_prefix(prefix)?.strip_prefix("/layer_")?;
                let (n, _) = rest.split_once('/')?;
                n.parse::<usize>().ok()
            })
            .max()
            .map_or(0, |n| n + 1)
    };
    let embedding = get("decoder/embeddings/weight")?;
    let enc_pos = get("encoder/position_encodings/encodings")?;
    let dec_pos = get("decoder/position_encodings/encodings")?;
    let conv1 = get("encoder/conv1/weight")?;
    let (n_audio_layer, n_text_layer) = (layers("encoder"), layers("decoder"));
    let heads = |name: &str, state: usize| {
        model
            .get(name)
            .and_then(ct2::Variable::scalar_int)
            .map_or(state / 64, |h| h as usize)
    };
    if embedding.shape.len() != 2 || enc_pos.shape.len() != 2 || conv1.shape.len() != 3 {
        return Err(ModelError::Unsupported("unexpected tensor ranks".into()));
    }
    let n_audio_state = enc_pos.shape[1];
    let n_text_state = dec_pos.shape[1];
    let wtype = match quantize {
        Quantize::F16 => GgmlType::F16,
        Quantize::Q8_0 => GgmlType::Q8_0,
    };
    let hparams = Hparams {
        n_vocab: embedding.shape[0] as i32,
        n_audio_ctx: enc_pos.shape[0] as i32,
        n_audio_state: n_audio_state as i32,
        n_audio_head: heads("encoder/num_heads", n_audio_state) as i32,
        n_audio_layer: n_audio_layer as i32,
        n_text_ctx: dec_pos.shape[0] as i32,
        n_text_state: n_text_state as i32,
        n_text_head: heads("decoder/num_heads", n_text_state) as i32,
        n_text_layer: n_text_layer as i32,
        n_mels: conv1.shape[1] as i32,
        ftype: match quantize {
            Quantize::F16 => 1,
            Quantize::Q8_0 => 7,
        },
    };
    if tokens.len() < vocab::TEXT_TOKENS {
        return Err(ModelError::Unsupported(format!(
            "the vocabulary has {} tokens, fewer than {}",
            tokens.len(),
            vocab::TEXT_TOKENS
        )));
    }
    let vocab = vocab::decode(&tokens[..vocab::TEXT_TOKENS]).map_err(ModelError::Unsupported)?;

    let mut out = Out {
        tensors: Vec::new(),
        wtype,
    };
    // Encoder stem: PyTorch's layout is kept; conv kernels stay f16, conv biases become [n, 1].
    for conv in ["conv1", "conv2"] {
        let w = get(&format!("encoder/{conv}/weight"))?;
        let b = get(&format!("encoder/{conv}/bias"))?;
        out.push(
            format!("encoder.{conv}.weight"),
            w.shape.clone(),
            &w.to_f32(),
            GgmlType::F16,
        );
        out.push(
            format!("encoder.{conv}.bias"),
            vec![b.shape[0], 1],
            &b.to_f32(),
            GgmlType::F32,
        );
    }
    out.push(
        "encoder.positional_embedding".into(),
        enc_pos.shape.clone(),
        &enc_pos.to_f32(),
        GgmlType::F32,
    );
    for i in 0..n_audio_layer {
        let src = format!("encoder/layer_{i}");
        let dst = format!("encoder.blocks.{i}");
        out.norm(
            get(&format!("{src}/self_attention/layer_norm/gamma"))?,
            get(&format!("{src}/self_attention/layer_norm/beta"))?,
            &format!("{dst}.attn_ln"),
        );
        out.fused(
            get(&format!("{src}/self_attention/linear_0/weight"))?,
            get(&format!("{src}/self_attention/linear_0/bias"))?,
            &format!("{dst}.attn"),
            &["query", "key", "value"],
        )?;
        out.linear(
            get(&format!("{src}/self_attention/linear_1/weight"))?,
            get(&format!("{src}/self_attention/linear_1/bias"))?,
            &format!("{dst}.attn.out"),
        );
        out.ffn(&get, &src, &dst)?;
    }
    out.norm(
        get("encoder/layer_norm/gamma")?,
        get("encoder/layer_norm/beta")?,
        "encoder.ln_post",
    );

    out.push(
        "decoder.positional_embedding".into(),
        dec_pos.shape.clone(),
        &dec_pos.to_f32(),
        GgmlType::F32,
    );
    out.matrix("decoder.token_embedding.weight".into(), embedding);
    for i in 0..n_text_layer {
        let src = format!("decoder/layer_{i}");
        let dst = format!("decoder.blocks.{i}");
        out.norm(
            get(&format!("{src}/self_attention/layer_norm/gamma"))?,
            get(&format!("{src}/self_attention/layer_norm/beta"))?,
            &format!("{dst}.attn_ln"),
        );
        out.fused(
            get(&format!("{src}/self_attention/linear_0/weight"))?,
            get(&format!("{src}/self_attention/linear_0/bias"))?,
            &format!("{dst}.attn"),
            &["query", "key", "value"],
        )?;
        out.linear(
            get(&format!("{src}/self_attention/linear_1/weight"))?,
            get(&format!("{src}/self_attention/linear_1/bias"))?,
            &format!("{dst}.attn.out"),
        );
        out.norm(
            get(&format!("{src}/attention/layer_norm/gamma"))?,
            get(&format!("{src}/attention/layer_norm/beta"))?,
            &format!("{dst}.cross_attn_ln"),
        );
        out.linear(
            get(&format!("{src}/attention/linear_0/weight"))?,
            get(&format!("{src}/attention/linear_0/bias"))?,
            &format!("{dst}.cross_attn.query"),
        );
        out.fused(
            get(&format!("{src}/attention/linear_1/weight"))?,
            get(&format!("{src}/attention/linear_1/bias"))?,
            &format!("{dst}.cross_attn"),
            &["key", "value"],
        )?;
        out.linear(
            get(&format!("{src}/attention/linear_2/weight"))?,
            get(&format!("{src}/attention/linear_2/bias"))?,
            &format!("{dst}.cross_attn.out"),
        );
        out.ffn(&get, &src, &dst)?;
    }
    out.norm(
        get("decoder/layer_norm/gamma")?,
        get("decoder/layer_norm/beta")?,
        "decoder.ln",
    );
    Ok((hparams, vocab, out.tensors))
}

/// The tensors being converted, and the type matrices take.
struct Out {
    tensors: Vec<Tensor>,
    wtype: GgmlType,
}

impl Out {
    fn push(&mut self, name: String, shape: Vec<usize>, values: &[f32], ty: GgmlType) {
        self.tensors.push(Tensor {
            name,
            shape,
            ty,
            data: ggml::encode(values, ty),
        });
    }

    fn matrix(&mut self, name: String, v: &ct2::Variable) {
        let ty = self.wtype;
        self.push(name, v.shape.clone(), &v.to_f32(), ty);
    }

    fn vector(&mut self, name: String, v: &ct2::Variable) {
        self.push(name, v.shape.clone(), &v.to_f32(), GgmlType::F32);
    }

    fn norm(&mut self, gamma: &ct2::Variable, beta: &ct2::Variable, dst: &str) {
        self.vector(format!("{dst}.weight"), gamma);
        self.vector(format!("{dst}.bias"), beta);
    }

    fn linear(&mut self, w: &ct2::Variable, b: &ct2::Variable, dst: &str) {
        self.matrix(format!("{dst}.weight"), w);
        self.vector(format!("{dst}.bias"), b);
    }

    /// A fused projection split by rows into `parts`; the key part has no bias in whisper.cpp
    /// (CTranslate2 stores zeros: anything else would change the model, so it is refused).
    fn fused(
        &mut self,
        w: &ct2::Variable,
        b: &ct2::Variable,
        dst: &str,
        parts: &[&str],
    ) -> Result<(), ModelError> {
        let n = parts.len();
        if w.shape.len() != 2 || !w.shape[0].is_multiple_of(n) || b.shape != [w.shape[0]] {
            return Err(ModelError::Unsupported(format!(
                "{} cannot be split in {n}",
                w.name
            )));
        }
        let rows = w.shape[0] / n;
        let wv = w.to_f32();
        let bv = b.to_f32();
        let ty = self.wtype;
        for (i, part) in parts.iter().enumerate() {
            let cols = w.shape[1];
            let weights = &wv[i * rows * cols..(i + 1) * rows * cols];
            self.push(
                format!("{dst}.{part}.weight"),
                vec![rows, cols],
                weights,
                ty,
            );
            let bias = &bv[i * rows..(i + 1) * rows];
            if *part == "key" {
                if bias.iter().any(|x| *x != 0.0) {
                    return Err(ModelError::Unsupported(format!(
                        "{}: the key bias is not zero",
                        b.name
                    )));
                }
            } else {
                self.push(
                    format!("{dst}.{part}.bias"),
                    vec![rows],
                    bias,
                    GgmlType::F32,
                );
            }
        }
        Ok(())
    }

    fn ffn<'a>(
        &mut self,
        get: &impl Fn(&str) -> Result<&'a ct2::Variable, ModelError>,
        src: &str,
        dst: &str,
    ) -> Result<(), ModelError> {
        self.norm(
            get(&format!("{src}/ffn/layer_norm/gamma"))?,
            get(&format!("{src}/ffn/layer_norm/beta"))?,
            &format!("{dst}.mlp_ln"),
        );
        self.linear(
            get(&format!("{src}/ffn/linear_0/weight"))?,
            get(&format!("{src}/ffn/linear_0/bias"))?,
            &format!("{dst}.mlp.0"),
        );
        self.linear(
            get(&format!("{src}/ffn/linear_1/weight"))?,
            get(&format!("{src}/ffn/linear_1/bias"))?,
            &format!("{dst}.mlp.2"),
        );
        Ok(())
    }
}

/// Where one needed file is: on disk or inside a wheel.
#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    Wheel { wheel: PathBuf, entry: String },
}

impl Location {
    fn read(&self) -> Result<Vec<u8>, ModelError> {
        match self {
            Location::File(p) => fs::read(p).map_err(io_err(p)),
            Location::Wheel { wheel, entry } => {
                let mut zip = open_wheel(wheel)?;
                let mut f = zip.by_name(entry).map_err(|e| ModelError::Io {
                    path: wheel.clone(),
                    source: io::Error::other(e),
                })?;
                let mut buf = Vec::with_capacity(f.size().min(1 << 31) as usize);
                f.read_to_end(&mut buf).map_err(io_err(wheel))?;
                Ok(buf)
            }
        }
    }

    fn label(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Wheel { wheel, .. } => wheel.file_name().map_or_else(
                || wheel.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }
}

/// Files found in the sources, by base name (`model.bin.part2`, `vocabulary.txt`...).
fn gather(sources: &[PathBuf]) -> Result<Vec<(String, Location)>, ModelError> {
    let mut found = Vec::new();
    let visit_wheel =
        |wheel: &Path, found: &mut Vec<(String, Location)>| -> Result<(), ModelError> {
            let zip = open_wheel(wheel)?;
            for entry in zip.file_names().flatten() {
                let base = entry.rsplit('/').next().unwrap_or(&entry).to_string();
                found.push((
                    base,
                    Location::Wheel {
                        wheel: wheel.to_path_buf(),
                        entry: entry.to_string(),
                    },
                ));
            }
            Ok(())
        };
    for source in sources {
        if source.is_dir() {
            let mut stack = vec![(source.clone(), 0)];
            while let Some((dir, depth)) = stack.pop() {
                for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
                    let path = entry.map_err(io_err(&dir))?.path();
                    if path.is_dir() && depth < 3 {
                        stack.push((path, depth + 1));
                    } else if path.extension().is_some_and(|e| e == "whl") {
                        visit_wheel(&path, &mut found)?;
                    } else if let Some(name) = path.file_name() {
                        found.push((
                            name.to_string_lossy().into_owned(),
                            Location::File(path.clone()),
                        ));
                    }
                }
            }
        } else if source.extension().is_some_and(|e| e == "whl") {
            visit_wheel(source, &mut found)?;
        } else if source.is_file() {
            let name = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push((name, Location::File(source.clone())));
        } else {
            return Err(ModelError::Io {
                path: source.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
    }
    Ok(found)
}

/// Imports a CTranslate2 whisper model from wheels or folders into `models_dir`.
pub fn import(
    sources: &[PathBuf],
    models_dir: &Path,
    options: &ImportOptions,
) -> Result<ModelInfo, ModelError> {
    let found = gather(sources)?;
    let described = sources
        .iter()
        .map(|s| s.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut parts: Vec<(u32, &Location)> = found
        .iter()
        .filter_map(|(name, loc)| match name.as_str() {
            "model.bin" => Some((0, loc)),
            n => n
                .strip_prefix("model.bin.part")?
                .parse()
                .ok()
                .map(|i| (i, loc)),
        })
        .collect();
    parts.sort_by_key(|(i, _)| *i);
    if parts.is_empty() {
        return Err(ModelError::NotFound(described));
    }
    let numbers: Vec<u32> = parts.iter().map(|(i, _)| *i).collect();
    if numbers != [0] && numbers != (1..=parts.len() as u32).collect::<Vec<_>>() {
        return Err(ModelError::Unsupported(format!(
            "model.bin parts {numbers:?} are not model.bin or part1..partN (a part is missing?)"
        )));
    }
    let vocab_loc = found
        .iter()
        .find(|(n, _)| n == "vocabulary.txt")
        .or_else(|| found.iter().find(|(n, _)| n == "vocabulary.json"))
        .ok_or_else(|| ModelError::NotFound(described.clone()))?;
    let vocab_text = String::from_utf8(vocab_loc.1.read()?)
        .map_err(|_| ModelError::Unsupported("the vocabulary is not UTF-8".into()))?;
    let tokens = vocab::parse(&vocab_text, vocab_loc.0.ends_with(".json"))
        .map_err(ModelError::Unsupported)?;
    let mut bytes = Vec::new();
    for (_, loc) in &parts {
        bytes.extend_from_slice(&loc.read()?);
    }
    let model = ct2::read(&bytes[..])?;
    drop(bytes);
    let (hparams, vocab, tensors) = convert(&model, &tokens, options.quantize)?;
    drop(model);
    let ftype = match options.quantize {
        Quantize::F16 => "f16",
        Quantize::Q8_0 => "q8_0",
    };
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| match options.quantize {
            Quantize::F16 => format!("whisper-{}", hparams.size_name()),
            Quantize::Q8_0 => format!("whisper-{}-q8_0", hparams.size_name()),
        });
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || name.starts_with('.')
    {
        return Err(ModelError::Unsupported(format!(
            "model name {name:?}: use letters, digits, - _ ."
        )));
    }
    fs::create_dir_all(models_dir).map_err(io_err(models_dir))?;
    let path = models_dir.join(format!("{name}.bin"));
    let tmp = models_dir.join(format!(".{name}.bin.part"));
    let mut hasher = HashingWriter {
        inner: BufWriter::new(File::create(&tmp).map_err(io_err(&tmp))?),
        hash: Sha256::new(),
        len: 0,
    };
    let filters = mel::filters(16_000, 400, hparams.n_mels as usize);
    ggml::write(
        &mut hasher,
        &hparams,
        (hparams.n_mels as usize, 201, &filters),
        &vocab,
        tensors,
    )
    .map_err(io_err(&tmp))?;
    let HashingWriter { inner, hash, len } = hasher;
    let file = inner.into_inner().map_err(|e| ModelError::Io {
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    let info = ModelInfo {
        name: name.clone(),
        path: path.clone(),
        ftype: ftype.into(),
        size: len,
        sha256: hex::encode(hash.finalize()),
        hparams,
        sources: parts.iter().map(|(_, l)| l.label()).collect(),
        imported_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        is_default: false,
    };
    let manifest = models_dir.join(format!("{name}.json"));
    let json = serde_json::to_string_pretty(&info).map_err(|e| ModelError::Io {
        path: manifest.clone(),
        source: e.into(),
    })?;
    fs::write(&manifest, json).map_err(io_err(&manifest))?;
    let default_file = models_dir.join(DEFAULT_FILE);
    let is_default = options.make_default || default_model(models_dir).is_none_or(|p| p == path);
    if is_default {
        fs::write(&default_file, format!("{name}\n")).map_err(io_err(&default_file))?;
    }
    Ok(ModelInfo { is_default, ..info })
}

/// A wheel opened as the zip archive it is.
fn open_wheel(wheel: &Path) -> Result<zip::ZipArchive<File>, ModelError> {
    let file = File::open(wheel).map_err(io_err(wheel))?;
    zip::ZipArchive::new(file).map_err(|e| ModelError::Io {
        path: wheel.to_path_buf(),
        source: io::Error::other(e),
    })
}

/// The file in the models folder that names the default model.
pub const DEFAULT_FILE: &str = "default";

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The models in `models_dir` (by their manifests), default first.
pub fn list(models_dir: &Path) -> Result<Vec<ModelInfo>, ModelError> {
    let mut models = Vec::new();
    let entries = match fs::read_dir(models_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(models),
        Err(e) => {
            return Err(ModelError::Io {
                path: models_dir.to_path_buf(),
                source: e,
            });
        }
    };
    let default = default_model(models_dir);
    for entry in entries {
        let path = entry.map_err(io_err(models_dir))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let Ok(mut info) = serde_json::from_str::<ModelInfo>(&text) else {
            tracing::warn!(path = %path.display(), "not a model manifest; skipped");
            continue;
        };
        info.path = models_dir.join(format!("{}.bin", info.name));
        if !info.path.is_file() {
            continue;
        }
        info.is_default = default.as_deref() == Some(info.path.as_path());
        models.push(info);
    }
    models.sort_by(|a, b| b.is_default.cmp(&a.is_default).then(a.name.cmp(&b.name)));
    Ok(models)
}

/// The default model's file: the one named in `default`, else the only one there.
pub fn default_model(models_dir: &Path) -> Option<PathBuf> {
    if let Ok(name) = fs::read_to_string(models_dir.join(DEFAULT_FILE)) {
        let path = models_dir.join(format!("{}.bin", name.trim()));
        if path.is_file() {
            return Some(path);
        }
    }
    let bins: Vec<PathBuf> = fs::read_dir(models_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin") && p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    match bins.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Whether the file still has the checksum its manifest recorded.
pub fn verify(info: &ModelInfo) -> Result<bool, ModelError> {
    let mut f = File::open(&info.path).map_err(io_err(&info.path))?;
    let mut hash = Sha256::new();
    io::copy(&mut f, &mut hash).map_err(io_err(&info.path))?;
    Ok(hex::encode(hash.finalize()) == info.sha256)
}
