//! Speech models: a CTranslate2 (faster-whisper) conversion of Whisper, as PyPI wheels carry it,
//! converted to whisper.cpp's format ([`import`]) and kept in `<data dir>/models/` as
//! `<name>.bin` with a manifest `<name>.json` each ([`list`], [`default_model`], [`verify`]).
//!
//! The conversion follows whisper.cpp's loader ([`ggml::expected_tensors`]): CTranslate2 fuses
//! the attention projections (q, k, v in self-attention; k, v in cross-attention) and
//! whisper.cpp keeps them apart with no key bias (CTranslate2 stores zeros there, which is
//! checked: anything else means the split is wrong); matrices are f16 or q8_0, convolution
//! kernels f16, everything else (biases, norms, positional embeddings) f32, conv biases
//! `[n, 1]`. The mel filter bank is computed ([`mel`]) and the vocabulary decoded from GPT-2's
//! byte alphabet ([`vocab`]).
//!
//! *Invariant*: a file in the models folder is complete: it is written under a temporary
//! name, synced and renamed, and its manifest is written (the same way) only after it.

pub mod ct2;
pub mod ggml;
pub mod mel;
pub mod vocab;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};

use ct2::{Ct2Model, DType, Variable};
use ggml::{GgmlType, Hparams};

/// Why a model could not be imported, found or checked.
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
    /// A wheel is not a readable zip archive.
    #[error("{path}: not a readable wheel (zip): {source}")]
    Wheel {
        /// The wheel.
        path: PathBuf,
        /// What the zip reader said.
        source: zip::result::ZipError,
    },
    /// The sources hold no model.
    #[error(
        "no CTranslate2 whisper model in {0}: looked for model.bin (or model.bin.part1, \
         model.bin.part2 …) and vocabulary.txt, in wheels (.whl) or folders"
    )]
    NotFound(String),
    /// The sources hold parts of more than one model, or not all parts of one.
    #[error("{0}")]
    Sources(String),
    /// The model file is broken.
    #[error(transparent)]
    Ct2(#[from] ct2::Ct2Error),
    /// The vocabulary is broken.
    #[error(transparent)]
    Vocab(#[from] vocab::VocabError),
    /// The model is not a whisper model as whisper.cpp knows it.
    #[error("not a whisper model whisper.cpp can run: {0}")]
    Unsupported(String),
    /// A model name that cannot be a file name.
    #[error("model name {0:?}: use letters, digits, '-', '_' and '.', not starting with '.'")]
    BadName(String),
    /// No model of that name in the models folder.
    #[error("no model {name:?} in {dir} (see `hotline model list`)")]
    NoSuchModel {
        /// The name asked for.
        name: String,
        /// The models folder.
        dir: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn unsupported(msg: impl Into<String>) -> ModelError {
    ModelError::Unsupported(msg.into())
}

/// How the weight matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantize {
    /// As shipped (half precision).
    #[default]
    F16,
    /// 8-bit blocks (ggml q8_0): a little over half the size, nearly the same accuracy.
    Q8_0,
}

impl Quantize {
    /// The manifest's name for it: `f16` or `q8_0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantize::F16 => "f16",
            Quantize::Q8_0 => "q8_0",
        }
    }

    /// The header's `ftype`: q8_0 carries ggml's quantization version, as whisper.cpp's own
    /// `quantize` tool writes it (2007); the loader reads `ftype % 1000`.
    pub fn ftype(self) -> i32 {
        match self {
            Quantize::F16 => ggml::FTYPE_F16,
            Quantize::Q8_0 => ggml::QNT_VERSION * ggml::QNT_VERSION_FACTOR + ggml::FTYPE_Q8_0,
        }
    }

    fn weight_type(self) -> GgmlType {
        match self {
            Quantize::F16 => GgmlType::F16,
            Quantize::Q8_0 => GgmlType::Q8_0,
        }
    }
}

/// What `hotline model import` asks for.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Name of the model; default `whisper-<size>` (`.en` for English-only, `-q8_0` when
    /// quantized).
    pub name: Option<String>,
    /// Weight format.
    pub quantize: Quantize,
    /// Make it the default even when there is one (the first model imported always is).
    pub make_default: bool,
}

/// An imported model, as its manifest (`<name>.json`) describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// Its name (the file is `<name>.bin`).
    pub name: String,
    /// The ggml file (not stored: it is next to the manifest).
    #[serde(skip)]
    pub path: PathBuf,
    /// `f16` or `q8_0`.
    pub ftype: String,
    /// Bytes of the file.
    pub size: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The header.
    pub hparams: Hparams,
    /// What it was made from (wheel or file names).
    pub sources: Vec<String>,
    /// When it was imported, RFC 3339 in UTC (`2026-12-02T13:48:49Z`).
    pub created: String,
    /// Whether it is the default model (not stored: the `default` file says).
    #[serde(skip)]
    pub is_default: bool,
}

/// The file in the models folder that names the default model.
pub const DEFAULT_FILE: &str = "default";

// ---------------------------------------------------------------------------------------------
// Conversion

/// Converts a CTranslate2 whisper model and its vocabulary (all tokens, in id order) into a
/// whisper.cpp model file written to `out`; returns the header and `out`.
///
/// Everything is checked before the first byte is written: the spec, the tensors whisper.cpp
/// will look for and their shapes, the zero key biases, the vocabulary's size.
pub fn convert<W: Write>(
    model: &Ct2Model,
    tokens: &[String],
    quantize: Quantize,
    config: Option<&serde_json::Value>,
    out: W,
) -> Result<(Hparams, W), ModelError> {
    let hparams = hparams(model, config, quantize)?;
    let text = vocab::text_tokens(tokens);
    let expected_tokens = if hparams.is_multilingual() { 50_257 } else { 50_256 };
    if text.len() != expected_tokens {
        return Err(unsupported(format!(
            "the vocabulary has {} ordinary tokens before {}; whisper.cpp numbers the special \
             tokens from {expected_tokens} for n_vocab {}",
            text.len(),
            vocab::END_OF_TEXT,
            hparams.n_vocab
        )));
    }
    let vocab = vocab::decode(text)?;
    let plan = plan(model, &hparams, quantize.weight_type())?;

    let n_mels = hparams.n_mels as usize;
    let filters = mel::filters(mel::SAMPLE_RATE, mel::N_FFT, n_mels);
    let bins = mel::N_FFT / 2 + 1;
    let mut w = ggml::Writer::new(out, &hparams, (n_mels, bins, &filters), &vocab)
        .map_err(|e| io_err(Path::new("the model file"))(e))?;
    let mut bytes = Vec::new();
    let mut values = Vec::new();
    for t in &plan {
        let data = t.encode(&mut bytes, &mut values);
        w.tensor(&t.name, &t.shape, t.ty, data)
            .map_err(|e| io_err(Path::new("the model file"))(e))?;
    }
    Ok((hparams, w.into_inner()))
}

/// The header, from the variables' shapes, the head counts the spec stores (else
/// `config.json`, else Whisper's sizes) and the weight format.
fn hparams(model: &Ct2Model, config: Option<&serde_json::Value>, quantize: Quantize) -> Result<Hparams, ModelError> {
    if model.spec != "WhisperSpec" {
        return Err(unsupported(format!("the model's spec is {:?}, not WhisperSpec", model.spec)));
    }
    let shape = |name: &str, rank: usize| -> Result<&[usize], ModelError> {
        let v = model.get(name).ok_or_else(|| unsupported(format!("{name} is missing")))?;
        if v.shape.len() != rank || v.shape.contains(&0) {
            return Err(unsupported(format!("{name} has shape {:?}", v.shape)));
        }
        Ok(&v.shape)
    };
    let embedding = shape("decoder/embeddings/weight", 2)?;
    let enc_pos = shape("encoder/position_encodings/encodings", 2)?;
    let dec_pos = shape("decoder/position_encodings/encodings", 2)?;
    let conv1 = shape("encoder/conv1/weight", 3)?;
    let (n_audio_state, n_text_state) = (enc_pos[1], dec_pos[1]);
    if n_audio_state != n_text_state {
        // whisper.cpp asserts this.
        return Err(unsupported(format!(
            "encoder width {n_audio_state} and decoder width {n_text_state} differ"
        )));
    }
    let heads = |part: &str, state: usize| -> Result<usize, ModelError> {
        let from_spec = model.get(&format!("{part}/num_heads")).and_then(Variable::scalar_int);
        let hf_key = if part == "encoder" { "encoder_attention_heads" } else { "decoder_attention_heads" };
        let from_config = config.and_then(|c| c.get(hf_key).or_else(|| c.get("num_heads"))).and_then(serde_json::Value::as_i64);
        let from_size = match state {
            384 => Some(6),
            512 => Some(8),
            768 => Some(12),
            1024 => Some(16),
            1280 => Some(20),
            _ => None,
        };
        let h = from_spec
            .or(from_config)
            .or(from_size)
            .ok_or_else(|| unsupported(format!("{part}: no head count, and width {state} is no Whisper size")))?;
        match usize::try_from(h) {
            Ok(h) if h > 0 && state % h == 0 => Ok(h),
            _ => Err(unsupported(format!("{part}: {h} heads for width {state}"))),
        }
    };
    let n_audio_head = heads("encoder", n_audio_state)?;
    let n_text_head = heads("decoder", n_text_state)?;
    let to_i32 = |n: usize, what: &str| i32::try_from(n).map_err(|_| unsupported(format!("{what} {n}")));
    Ok(Hparams {
        n_vocab: to_i32(embedding[0], "n_vocab")?,
        n_audio_ctx: to_i32(enc_pos[0], "n_audio_ctx")?,
        n_audio_state: to_i32(n_audio_state, "n_audio_state")?,
        n_audio_head: to_i32(n_audio_head, "n_audio_head")?,
        n_audio_layer: to_i32(layers(model, "encoder")?, "n_audio_layer")?,
        n_text_ctx: to_i32(dec_pos[0], "n_text_ctx")?,
        n_text_state: to_i32(n_text_state, "n_text_state")?,
        n_text_head: to_i32(n_text_head, "n_text_head")?,
        n_text_layer: to_i32(layers(model, "decoder")?, "n_text_layer")?,
        n_mels: to_i32(conv1[1], "n_mels")?,
        ftype: quantize.ftype(),
    })
}

/// Layers of `encoder` or `decoder`: the `<part>/layer_<N>/` indices, which must run from 0
/// without a gap (`encoder/layer_norm` is not a layer).
fn layers(model: &Ct2Model, part: &str) -> Result<usize, ModelError> {
    let prefix = format!("{part}/layer_");
    let mut seen = std::collections::BTreeSet::new();
    for v in &model.variables {
        let Some(rest) = v.name.strip_prefix(&prefix) else { continue };
        let Some((n, _)) = rest.split_once('/') else { continue };
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            seen.insert(n.parse::<usize>().map_err(|_| unsupported(format!("layer {n}")))?);
        }
    }
    if seen.is_empty() || seen.iter().copied().ne(0..seen.len()) {
        return Err(unsupported(format!("{part} layers {seen:?} are not 0 to N")));
    }
    Ok(seen.len())
}

/// One tensor to write: rows `start..` of a source variable, in the type whisper.cpp wants.
struct Planned<'a> {
    name: String,
    shape: Vec<usize>,
    ty: GgmlType,
    src: &'a Variable,
    /// First element taken from `src`.
    start: usize,
}

/// Elements converted at a time, a multiple of the q8_0 block.
const CHUNK: usize = ggml::Q8_BLOCK * 8192;

impl Planned<'_> {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The tensor's bytes: borrowed from the source when the type already matches (f16 as
    /// shipped, copied bit for bit), else converted into `bytes` in chunks.
    fn encode<'b>(&'b self, bytes: &'b mut Vec<u8>, values: &mut Vec<f32>) -> &'b [u8] {
        let (start, end) = (self.start, self.start + self.len());
        let same = matches!((self.ty, self.src.dtype), (GgmlType::F16, DType::F16) | (GgmlType::F32, DType::F32));
        if same {
            let size = self.src.dtype.size();
            return &self.src.data[start * size..end * size];
        }
        bytes.clear();
        for from in (start..end).step_by(CHUNK) {
            values.clear();
            self.src.f32_into(from..(from + CHUNK).min(end), values);
            match self.ty {
                GgmlType::F32 => bytes.extend(values.iter().flat_map(|v| v.to_le_bytes())),
                GgmlType::F16 => bytes.extend(values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes())),
                GgmlType::Q8_0 => ggml::quantize_q8_0(values, bytes),
            }
        }
        bytes
    }
}

/// Maps every tensor whisper.cpp creates to its source, and checks the result against the
/// loader's list (names, shapes, types) so a file that whisper.cpp would refuse is never made.
fn plan<'a>(model: &'a Ct2Model, hp: &Hparams, wtype: GgmlType) -> Result<Vec<Planned<'a>>, ModelError> {
    let mut p = Planner { model, wtype, out: Vec::new() };
    p.whole("encoder/conv1/weight", "encoder.conv1.weight", GgmlType::F16)?;
    p.conv_bias("encoder/conv1/bias", "encoder.conv1.bias")?;
    p.whole("encoder/conv2/weight", "encoder.conv2.weight", GgmlType::F16)?;
    p.conv_bias("encoder/conv2/bias", "encoder.conv2.bias")?;
    p.whole("encoder/position_encodings/encodings", "encoder.positional_embedding", GgmlType::F32)?;
    for i in 0..hp.n_audio_layer {
        let (src, dst) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        p.norm(&format!("{src}/self_attention/layer_norm"), &format!("{dst}.attn_ln"))?;
        p.fused(&format!("{src}/self_attention/linear_0"), &format!("{dst}.attn"), &["query", "key", "value"])?;
        p.linear(&format!("{src}/self_attention/linear_1"), &format!("{dst}.attn.out"))?;
        p.ffn(&src, &dst)?;
    }
    p.norm("encoder/layer_norm", "encoder.ln_post")?;
    p.whole("decoder/position_encodings/encodings", "decoder.positional_embedding", GgmlType::F32)?;
    p.whole("decoder/embeddings/weight", "decoder.token_embedding.weight", wtype)?;
    for i in 0..hp.n_text_layer {
        let (src, dst) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        p.norm(&format!("{src}/self_attention/layer_norm"), &format!("{dst}.attn_ln"))?;
        p.fused(&format!("{src}/self_attention/linear_0"), &format!("{dst}.attn"), &["query", "key", "value"])?;
        p.linear(&format!("{src}/self_attention/linear_1"), &format!("{dst}.attn.out"))?;
        p.norm(&format!("{src}/attention/layer_norm"), &format!("{dst}.cross_attn_ln"))?;
        p.linear(&format!("{src}/attention/linear_0"), &format!("{dst}.cross_attn.query"))?;
        p.fused(&format!("{src}/attention/linear_1"), &format!("{dst}.cross_attn"), &["key", "value"])?;
        p.linear(&format!("{src}/attention/linear_2"), &format!("{dst}.cross_attn.out"))?;
        p.ffn(&src, &dst)?;
    }
    p.norm("decoder/layer_norm", "decoder.ln")?;

    let expected = ggml::expected_tensors(hp).ok_or_else(|| unsupported(format!("header {hp:?}")))?;
    let mut planned: BTreeMap<&str, &Planned> = BTreeMap::new();
    for t in &p.out {
        if planned.insert(&t.name, t).is_some() {
            return Err(unsupported(format!("{} twice", t.name)));
        }
    }
    for e in &expected {
        let t = planned
            .remove(e.name.as_str())
            .ok_or_else(|| unsupported(format!("nothing for whisper.cpp's {}", e.name)))?;
        if t.shape != e.shape || t.ty != e.ty {
            return Err(unsupported(format!(
                "{} (from {}) would be {:?} {:?}; whisper.cpp expects {:?} {:?}",
                e.name, t.src.name, t.ty, t.shape, e.ty, e.shape
            )));
        }
    }
    if let Some(extra) = planned.keys().next() {
        return Err(unsupported(format!("whisper.cpp has no tensor {extra}")));
    }
    Ok(p.out)
}

struct Planner<'a> {
    model: &'a Ct2Model,
    wtype: GgmlType,
    out: Vec<Planned<'a>>,
}

impl<'a> Planner<'a> {
    fn get(&self, name: &str) -> Result<&'a Variable, ModelError> {
        let v = self.model.get(name).ok_or_else(|| unsupported(format!("{name} is missing")))?;
        if !v.dtype.is_float() {
            return Err(unsupported(format!("{name} is {:?}, not floating point", v.dtype)));
        }
        Ok(v)
    }

    fn push(&mut self, name: String, shape: Vec<usize>, ty: GgmlType, src: &'a Variable, start: usize) {
        self.out.push(Planned { name, shape, ty, src, start });
    }

    fn whole(&mut self, src: &str, dst: &str, ty: GgmlType) -> Result<(), ModelError> {
        let v = self.get(src)?;
        self.push(dst.into(), v.shape.clone(), ty, v, 0);
        Ok(())
    }

    /// A convolution bias `[n]` becomes `[n, 1]`, so it broadcasts over time in ggml.
    fn conv_bias(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        let v = self.get(src)?;
        self.push(dst.into(), vec![v.len(), 1], GgmlType::F32, v, 0);
        Ok(())
    }

    fn norm(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.whole(&format!("{src}/gamma"), &format!("{dst}.weight"), GgmlType::F32)?;
        self.whole(&format!("{src}/beta"), &format!("{dst}.bias"), GgmlType::F32)
    }

    fn linear(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        let wtype = self.wtype;
        self.whole(&format!("{src}/weight"), &format!("{dst}.weight"), wtype)?;
        self.whole(&format!("{src}/bias"), &format!("{dst}.bias"), GgmlType::F32)
    }

    fn ffn(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.norm(&format!("{src}/ffn/layer_norm"), &format!("{dst}.mlp_ln"))?;
        self.linear(&format!("{src}/ffn/linear_0"), &format!("{dst}.mlp.0"))?;
        self.linear(&format!("{src}/ffn/linear_1"), &format!("{dst}.mlp.2"))
    }

    /// A fused projection split by output rows into `parts`, in order. The key part gets no
    /// bias (whisper has none): CTranslate2 fills it with zeros, and anything else means the
    /// parts are not what they are taken for, so it is refused.
    fn fused(&mut self, src: &str, dst: &str, parts: &[&str]) -> Result<(), ModelError> {
        let (w, b) = (self.get(&format!("{src}/weight"))?, self.get(&format!("{src}/bias"))?);
        let n = parts.len();
        if w.shape.len() != 2 || w.shape[0] % n != 0 || b.shape != [w.shape[0]] {
            return Err(unsupported(format!(
                "{} {:?} with bias {:?} cannot be split in {n}",
                w.name, w.shape, b.shape
            )));
        }
        let (rows, cols) = (w.shape[0] / n, w.shape[1]);
        let wtype = self.wtype;
        for (i, part) in parts.iter().enumerate() {
            self.push(format!("{dst}.{part}.weight"), vec![rows, cols], wtype, w, i * rows * cols);
            if *part == "key" {
                let mut bias = Vec::new();
                b.f32_into(i * rows..(i + 1) * rows, &mut bias);
                if let Some(x) = bias.iter().find(|x| **x != 0.0) {
                    return Err(unsupported(format!(
                        "{}: the key part of the bias is not zero ({x}); whisper has no key bias",
                        b.name
                    )));
                }
            } else {
                self.push(format!("{dst}.{part}.bias"), vec![rows], GgmlType::F32, b, i * rows);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Sources: wheels and folders

/// Where one needed file is: on disk or inside a wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    Wheel { wheel: PathBuf, entry: String },
}

impl Location {
    /// The file the user named or we found: the wheel, or the file itself.
    fn source(&self) -> &Path {
        match self {
            Location::File(p) => p,
            Location::Wheel { wheel, .. } => wheel,
        }
    }

    fn describe(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Wheel { wheel, entry } => format!("{}!{entry}", wheel.display()),
        }
    }

    fn open(&self) -> Result<Opened, ModelError> {
        match self {
            Location::File(p) => Ok(Opened::File(p.clone(), File::open(p).map_err(io_err(p))?)),
            Location::Wheel { wheel, entry } => Ok(Opened::Wheel {
                wheel: wheel.clone(),
                archive: open_wheel(wheel)?,
                entry: entry.clone(),
            }),
        }
    }

    /// A small file (vocabulary, config) whole; at most `limit` bytes.
    fn read_small(&self, limit: u64) -> Result<Vec<u8>, ModelError> {
        let mut opened = self.open()?;
        let path = self.source().to_path_buf();
        let mut buf = Vec::new();
        opened.reader()?.take(limit + 1).read_to_end(&mut buf).map_err(io_err(&path))?;
        if buf.len() as u64 > limit {
            return Err(ModelError::Sources(format!("{} is over {limit} bytes", self.describe())));
        }
        Ok(buf)
    }
}

fn open_wheel(wheel: &Path) -> Result<zip::ZipArchive<File>, ModelError> {
    let file = File::open(wheel).map_err(io_err(wheel))?;
    zip::ZipArchive::new(file).map_err(|source| ModelError::Wheel {
        path: wheel.to_path_buf(),
        source,
    })
}

/// An opened source file: a file, or a wheel with the entry to read.
enum Opened {
    File(PathBuf, File),
    Wheel {
        wheel: PathBuf,
        archive: zip::ZipArchive<File>,
        entry: String,
    },
}

impl Opened {
    fn reader(&mut self) -> Result<Box<dyn Read + '_>, ModelError> {
        match self {
            Opened::File(path, f) => Ok(Box::new(Labelled { inner: f, label: path.display().to_string() })),
            Opened::Wheel { wheel, archive, entry } => {
                let label = format!("{}!{entry}", wheel.display());
                let f = archive.by_name(entry).map_err(|source| ModelError::Wheel {
                    path: wheel.clone(),
                    source,
                })?;
                Ok(Box::new(Labelled { inner: f, label }))
            }
        }
    }
}

/// Names the file in a read error (a wheel whose checksum fails, a disk error).
struct Labelled<R> {
    inner: R,
    label: String,
}

impl<R: Read> Read for Labelled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.label)))
    }
}

/// The model's parts read one after the other as one stream, each opened when the one before
/// it ends, so the model is never held twice.
struct Chain<'a> {
    rest: std::slice::IterMut<'a, Opened>,
    current: Option<Box<dyn Read + 'a>>,
}

impl Read for Chain<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(r) = self.current.as_mut() {
                let n = r.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            let Some(next) = self.rest.next() else { return Ok(0) };
            self.current = Some(next.reader().map_err(|e| io::Error::other(e.to_string()))?);
        }
    }
}

/// A file found in the sources.
#[derive(Debug, Clone)]
struct Found {
    /// Base name (`model.bin.part2`).
    name: String,
    location: Location,
    /// Bytes (uncompressed).
    size: u64,
}

/// Whether the importer needs a file of this base name.
fn wanted(name: &str) -> bool {
    matches!(name, "model.bin" | "vocabulary.txt" | "vocabulary.json" | "config.json")
        || name.strip_prefix("model.bin.part").is_some_and(|n| n.parse::<u32>().is_ok())
}

/// The files the model needs, from wheels, folders (searched a few levels down, wheels in
/// them opened) and single files.
fn gather(sources: &[PathBuf]) -> Result<Vec<Found>, ModelError> {
    let mut found = Vec::new();
    for source in sources {
        let meta = fs::metadata(source).map_err(io_err(source))?;
        if meta.is_dir() {
            let mut stack = vec![(source.clone(), 0)];
            while let Some((dir, depth)) = stack.pop() {
                let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
                    .map_err(io_err(&dir))?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()
                    .map_err(io_err(&dir))?;
                entries.sort();
                for path in entries {
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    if name.starts_with('.') {
                        continue;
                    }
                    if path.is_dir() {
                        if depth < 4 {
                            stack.push((path, depth + 1));
                        }
                    } else if name.ends_with(".whl") {
                        wheel_files(&path, &mut found)?;
                    } else if wanted(&name) {
                        let size = fs::metadata(&path).map_err(io_err(&path))?.len();
                        found.push(Found { name, location: Location::File(path), size });
                    }
                }
            }
        } else if source.extension().is_some_and(|e| e == "whl") {
            wheel_files(source, &mut found)?;
        } else {
            let name = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if wanted(&name) {
                found.push(Found { name, location: Location::File(source.clone()), size: meta.len() });
            }
        }
    }
    // The same file named twice (a wheel and its folder) counts once.
    let mut unique: Vec<Found> = Vec::new();
    for f in found {
        if !unique.iter().any(|u| u.location == f.location) {
            unique.push(f);
        }
    }
    Ok(unique)
}

fn wheel_files(wheel: &Path, found: &mut Vec<Found>) -> Result<(), ModelError> {
    let wheel = fs::canonicalize(wheel).map_err(io_err(wheel))?;
    let mut archive = open_wheel(&wheel)?;
    let entries: Vec<String> = archive.file_names().filter_map(Result::ok).map(|n| n.into_owned()).collect();
    for entry in entries {
        let name = entry.rsplit('/').next().unwrap_or(&entry).to_string();
        if !wanted(&name) {
            continue;
        }
        let size = archive
            .by_name(&entry)
            .map_err(|source| ModelError::Wheel { path: wheel.clone(), source })?
            .size();
        found.push(Found { name, location: Location::Wheel { wheel: wheel.clone(), entry }, size });
    }
    Ok(())
}

/// The one file of each needed name; two different ones are an error (two models mixed).
fn pick<'a>(found: &'a [Found], name: &str) -> Result<Option<&'a Found>, ModelError> {
    let mut matching = found.iter().filter(|f| f.name == name);
    let first = matching.next();
    if let (Some(a), Some(b)) = (first, matching.next()) {
        return Err(ModelError::Sources(format!(
            "{name} is both {} and {}: pass the sources of one model only",
            a.location.describe(),
            b.location.describe()
        )));
    }
    Ok(first)
}

/// The model.bin, or its parts 1..N in order.
fn model_parts(found: &[Found], described: &str) -> Result<Vec<Found>, ModelError> {
    if let Some(whole) = pick(found, "model.bin")? {
        if found.iter().any(|f| f.name.starts_with("model.bin.part")) {
            return Err(ModelError::Sources(format!(
                "both model.bin and model.bin parts in {described}: pass the sources of one model only"
            )));
        }
        return Ok(vec![whole.clone()]);
    }
    let mut parts: Vec<(u32, Found)> = Vec::new();
    for f in found {
        if let Some(n) = f.name.strip_prefix("model.bin.part").and_then(|n| n.parse::<u32>().ok()) {
            pick(found, &f.name)?;
            parts.push((n, f.clone()));
        }
    }
    if parts.is_empty() {
        return Err(ModelError::NotFound(described.into()));
    }
    parts.sort_by_key(|(n, _)| *n);
    let numbers: Vec<u32> = parts.iter().map(|(n, _)| *n).collect();
    if numbers.iter().copied().ne(1..=parts.len() as u32) {
        return Err(ModelError::Sources(format!(
            "model.bin parts {numbers:?} found in {described}, not 1 to N: is a part (a wheel) missing?"
        )));
    }
    Ok(parts.into_iter().map(|(_, f)| f).collect())
}

// ---------------------------------------------------------------------------------------------
// Import and the models folder

/// Imports a CTranslate2 whisper model from wheels or folders into `models_dir`, now.
pub fn import(sources: &[PathBuf], models_dir: &Path, options: &ImportOptions) -> Result<ModelInfo, ModelError> {
    import_at(sources, models_dir, options, SystemTime::now())
}

/// [`import`] with the time to record in the manifest given.
pub fn import_at(
    sources: &[PathBuf],
    models_dir: &Path,
    options: &ImportOptions,
    now: SystemTime,
) -> Result<ModelInfo, ModelError> {
    let started = Instant::now();
    let found = gather(sources)?;
    let described = sources.iter().map(|s| s.display().to_string()).collect::<Vec<_>>().join(", ");
    let parts = model_parts(&found, &described)?;
    let vocab_file = match pick(&found, "vocabulary.txt")? {
        Some(f) => f,
        None => pick(&found, "vocabulary.json")?.ok_or_else(|| ModelError::NotFound(described.clone()))?,
    };
    let vocab_text = String::from_utf8(vocab_file.location.read_small(64 << 20)?)
        .map_err(|_| unsupported(format!("{} is not UTF-8", vocab_file.location.describe())))?;
    let tokens = vocab::parse(&vocab_text, vocab_file.name.ends_with(".json"))?;
    let config = match pick(&found, "config.json")? {
        Some(f) => Some(
            serde_json::from_slice::<serde_json::Value>(&f.location.read_small(16 << 20)?)
                .map_err(|e| unsupported(format!("{}: {e}", f.location.describe())))?,
        ),
        None => None,
    };

    let total: u64 = parts.iter().map(|p| p.size).sum();
    let model = {
        let mut opened: Vec<Opened> = parts.iter().map(|p| p.location.open()).collect::<Result<_, _>>()?;
        let chain = Chain { rest: opened.iter_mut(), current: None };
        ct2::read_sized(BufReader::with_capacity(1 << 20, chain), total)?
    };
    let read_done = started.elapsed();

    // The name needs the header; the header is cheap to compute before converting.
    let hp = hparams(&model, config.as_ref(), options.quantize)?;
    let name = match &options.name {
        Some(n) => n.clone(),
        None => default_name(&hp, options.quantize),
    };
    check_name(&name)?;

    fs::create_dir_all(models_dir).map_err(io_err(models_dir))?;
    let path = models_dir.join(format!("{name}.bin"));
    let tmp = models_dir.join(format!(".{name}.bin.{}.tmp", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let writer = HashingWriter { inner: BufWriter::with_capacity(1 << 20, file), hash: Sha256::new(), len: 0 };
        let (hparams, writer) = convert(&model, &tokens, options.quantize, config.as_ref(), writer)
            .map_err(|e| match e {
                ModelError::Io { source, .. } => ModelError::Io { path: tmp.clone(), source },
                e => e,
            })?;
        let HashingWriter { inner, hash, len } = writer;
        let file = inner.into_inner().map_err(|e| ModelError::Io { path: tmp.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok::<_, ModelError>((hparams, hex::encode(hash.finalize()), len))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    let (hparams, sha256, size) = result?;
    drop(model);

    let mut sources: Vec<String> = Vec::new();
    for f in parts.iter().chain([vocab_file]) {
        let label = f
            .location
            .source()
            .file_name()
            .map_or_else(|| f.location.describe(), |n| n.to_string_lossy().into_owned());
        if !sources.contains(&label) {
            sources.push(label);
        }
    }
    let mut info = ModelInfo {
        name: name.clone(),
        path: path.clone(),
        ftype: options.quantize.as_str().into(),
        size,
        sha256,
        hparams,
        sources,
        created: rfc3339(now),
        is_default: false,
    };
    let manifest = models_dir.join(format!("{name}.json"));
    let json = serde_json::to_vec_pretty(&info).map_err(|e| ModelError::Io { path: manifest.clone(), source: e.into() })?;
    write_atomic(&manifest, &json)?;
    if options.make_default || default_model(models_dir).is_none_or(|p| p == path) {
        set_default(models_dir, &name)?;
    }
    info.is_default = default_model(models_dir).as_deref() == Some(path.as_path());
    tracing::info!(
        model = %name,
        ftype = info.ftype,
        bytes = size,
        read_ms = read_done.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "speech model imported"
    );
    Ok(info)
}

/// `whisper-base`, `whisper-base.en`, `whisper-large-v3-q8_0` …
fn default_name(hp: &Hparams, quantize: Quantize) -> String {
    let mut name = format!("whisper-{}", hp.size_name());
    if hp.size_name() == "large" && hp.n_vocab == 51866 {
        name.push_str("-v3");
    }
    if !hp.is_multilingual() {
        name.push_str(".en");
    }
    if quantize == Quantize::Q8_0 {
        name.push_str("-q8_0");
    }
    name
}

fn check_name(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok { Ok(()) } else { Err(ModelError::BadName(name.into())) }
}

/// Writes `path` whole or not at all: a temporary file in the same folder, synced, renamed.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

/// An RFC 3339 UTC timestamp to the second (times before 1970 count as 1970).
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Hashes and counts what is written through it.
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

/// Makes `name` the default model of `models_dir`.
pub fn set_default(models_dir: &Path, name: &str) -> Result<(), ModelError> {
    check_name(name)?;
    if !models_dir.join(format!("{name}.bin")).is_file() {
        return Err(ModelError::NoSuchModel { name: name.into(), dir: models_dir.to_path_buf() });
    }
    write_atomic(&models_dir.join(DEFAULT_FILE), format!("{name}\n").as_bytes())
}

/// The models in `models_dir` by their manifests, the default first, then by name. A
/// manifest whose file is gone, or that cannot be read, is skipped with a warning.
pub fn list(models_dir: &Path) -> Result<Vec<ModelInfo>, ModelError> {
    let entries = match fs::read_dir(models_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ModelError::Io { path: models_dir.to_path_buf(), source: e }),
    };
    let default = default_model(models_dir);
    let mut models = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(models_dir))?.path();
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
        if path.extension().is_none_or(|e| e != "json") || stem.starts_with('.') {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let mut info = match serde_json::from_str::<ModelInfo>(&text) {
            Ok(info) if info.name == stem => info,
            Ok(info) => {
                tracing::warn!(path = %path.display(), name = info.name, "manifest names another model; skipped");
                continue;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "not a model manifest; skipped");
                continue;
            }
        };
        info.path = models_dir.join(format!("{stem}.bin"));
        if !info.path.is_file() {
            tracing::warn!(path = %info.path.display(), "model file missing; skipped");
            continue;
        }
        info.is_default = default.as_deref() == Some(info.path.as_path());
        models.push(info);
    }
    models.sort_by(|a, b| b.is_default.cmp(&a.is_default).then_with(|| a.name.cmp(&b.name)));
    Ok(models)
}

/// The default model's file, if it exists: the one the `default` file names, else the only
/// model there is.
pub fn default_model(models_dir: &Path) -> Option<PathBuf> {
    if let Ok(name) = fs::read_to_string(models_dir.join(DEFAULT_FILE)) {
        let name = name.trim();
        if check_name(name).is_ok() {
            let path = models_dir.join(format!("{name}.bin"));
            if path.is_file() {
                return Some(path);
            }
        }
    }
    let bins: Vec<PathBuf> = fs::read_dir(models_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin") && p.is_file())
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    match bins.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Whether the model's file still has the size and checksum its manifest recorded.
pub fn verify(info: &ModelInfo) -> Result<bool, ModelError> {
    let f = File::open(&info.path).map_err(io_err(&info.path))?;
    if f.metadata().map_err(io_err(&info.path))?.len() != info.size {
        return Ok(false);
    }
    let mut hash = Sha256::new();
    io::copy(&mut BufReader::with_capacity(1 << 20, f), &mut hash).map_err(io_err(&info.path))?;
    Ok(hex::encode(hash.finalize()) == info.sha256)
}

#[cfg(test)]
mod tests;
