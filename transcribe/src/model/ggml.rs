//! whisper.cpp's model file (the legacy "ggml" format), exactly as its loader
//! (`whisper_model_load`) reads it, all little-endian:
//!
//! 1. `u32` magic `0x67676d6c` ("ggml");
//! 2. eleven `i32` hyper-parameters ([`Hparams`], in that order);
//! 3. the mel filter bank: `i32` n_mel, `i32` n_fft (bins), then n_mel × n_fft `f32`;
//! 4. the vocabulary: `i32` count, then per token `u32` length and the bytes;
//! 5. tensors until the end of the file: `i32` n_dims, `i32` name length, `i32` ggml type, n_dims
//!    `i32` extents fastest-varying first (the row-major shape reversed), the name, the data.
//!
//! The loader looks each tensor up by name among those it created for the hyper-parameters
//! ([`expected_tensors`]) and refuses an unknown name, a wrong shape, a byte size that differs
//! from the type it expects, or a missing tensor. [`Writer`] writes such a file; [`read_index`]
//! lists one without loading the weights (for `hotline model list` and the tests).

use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

/// `ggml` read as a little-endian `u32`.
pub const MAGIC: u32 = 0x6767_6d6c;
/// Values in one q8_0 block.
pub const Q8_BLOCK: usize = 32;
/// Bytes of one q8_0 block: an f16 scale and 32 `i8`.
pub const Q8_BLOCK_BYTES: usize = 2 + Q8_BLOCK;
/// `ftype` of a file whose matrices are f16 (`GGML_FTYPE_MOSTLY_F16`).
pub const FTYPE_F16: i32 = 1;
/// `ftype` of a file whose matrices are q8_0 (`GGML_FTYPE_MOSTLY_Q8_0`).
pub const FTYPE_Q8_0: i32 = 7;
/// ggml's quantization format version (`GGML_QNT_VERSION`), which quantized files carry in
/// `ftype` as `version * 1000 + ftype`; version 2 is the q8_0 layout with an f16 scale.
pub const QNT_VERSION: i32 = 2;
/// The factor between quantization version and `ftype` (`GGML_QNT_VERSION_FACTOR`).
pub const QNT_VERSION_FACTOR: i32 = 1000;

/// Tensor element types this module writes and reads (ggml's `ggml_type` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GgmlType {
    /// 32-bit float (id 0): norms, biases, positional embeddings, the filter bank.
    F32,
    /// Half (id 1): convolution kernels, and the matrices of an f16 file.
    F16,
    /// Blocks of 32 `i8` with an f16 scale (id 8): the matrices of a q8_0 file.
    Q8_0,
}

impl GgmlType {
    /// ggml's id.
    pub fn id(self) -> i32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q8_0 => 8,
        }
    }

    /// The type of a ggml id, if it is one of ours.
    pub fn from_id(id: i32) -> Option<GgmlType> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            8 => GgmlType::Q8_0,
            _ => return None,
        })
    }

    /// Bytes of `n` elements; `None` when `n` is not a whole number of blocks.
    pub fn bytes(self, n: usize) -> Option<usize> {
        match self {
            GgmlType::F32 => n.checked_mul(4),
            GgmlType::F16 => n.checked_mul(2),
            GgmlType::Q8_0 if n % Q8_BLOCK == 0 => Some(n / Q8_BLOCK * Q8_BLOCK_BYTES),
            GgmlType::Q8_0 => None,
        }
    }
}

/// The hyper-parameters of the header, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hparams {
    /// Vocabulary size with the special tokens (51865 multilingual, 51864 English-only).
    pub n_vocab: i32,
    /// Encoder positions (1500: 30 s of audio).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions (448 tokens).
    pub n_text_ctx: i32,
    /// Decoder width (whisper.cpp requires it equal to the encoder's).
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands of the input (80; 128 for large-v3).
    pub n_mels: i32,
    /// Weight format, [`FTYPE_F16`] or [`FTYPE_Q8_0`], plus 1000 × the quantization version.
    pub ftype: i32,
}

impl Hparams {
    /// The eleven values in file order.
    pub fn values(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    fn from_values(v: [i32; 11]) -> Hparams {
        Hparams {
            n_vocab: v[0],
            n_audio_ctx: v[1],
            n_audio_state: v[2],
            n_audio_head: v[3],
            n_audio_layer: v[4],
            n_text_ctx: v[5],
            n_text_state: v[6],
            n_text_head: v[7],
            n_text_layer: v[8],
            n_mels: v[9],
            ftype: v[10],
        }
    }

    /// The type whisper.cpp expects for the big matrices (its `wtype`), by `ftype`.
    pub fn weight_type(&self) -> Option<GgmlType> {
        match self.ftype % QNT_VERSION_FACTOR {
            0 => Some(GgmlType::F32),
            FTYPE_F16 => Some(GgmlType::F16),
            FTYPE_Q8_0 => Some(GgmlType::Q8_0),
            _ => None,
        }
    }

    /// Whisper's size name by encoder width (`tiny` … `large`).
    pub fn size_name(&self) -> &'static str {
        match self.n_audio_state {
            384 => "tiny",
            512 => "base",
            768 => "small",
            1024 => "medium",
            1280 => "large",
            _ => "custom",
        }
    }

    /// Whether whisper.cpp treats the model as multilingual (and so counts 50257 ordinary
    /// tokens rather than 50256).
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

/// A tensor as the loader creates it: name, row-major shape, type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// whisper.cpp's name (`encoder.blocks.0.attn.query.weight`).
    pub name: String,
    /// Row-major shape (PyTorch's order; the file stores it reversed).
    pub shape: Vec<usize>,
    /// Element type.
    pub ty: GgmlType,
}

/// The tensors `whisper_model_load` creates for `hp`, in the order it creates them: what a
/// file must hold, each exactly once. `None` when `ftype` is not one whisper.cpp knows here
/// or a size is negative.
pub fn expected_tensors(hp: &Hparams) -> Option<Vec<TensorSpec>> {
    let wtype = hp.weight_type()?;
    // Convolution kernels are f16 unless the whole file is f32 (whisper.cpp's `vtype`).
    let vtype = if wtype == GgmlType::F32 { GgmlType::F32 } else { GgmlType::F16 };
    let n = |v: i32| usize::try_from(v).ok();
    let (vocab, audio_ctx, text_ctx, mels) = (n(hp.n_vocab)?, n(hp.n_audio_ctx)?, n(hp.n_text_ctx)?, n(hp.n_mels)?);
    let (a, t) = (n(hp.n_audio_state)?, n(hp.n_text_state)?);
    let mut out = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, ty: GgmlType| out.push(TensorSpec { name, shape, ty });
    use GgmlType::F32;
    add("encoder.positional_embedding".into(), vec![audio_ctx, a], F32);
    add("encoder.conv1.weight".into(), vec![a, mels, 3], vtype);
    add("encoder.conv1.bias".into(), vec![a, 1], F32);
    add("encoder.conv2.weight".into(), vec![a, a, 3], vtype);
    add("encoder.conv2.bias".into(), vec![a, 1], F32);
    add("encoder.ln_post.weight".into(), vec![a], F32);
    add("encoder.ln_post.bias".into(), vec![a], F32);
    let block = |add: &mut dyn FnMut(String, Vec<usize>, GgmlType), p: &str, s: usize, cross: bool| {
        add(format!("{p}.mlp_ln.weight"), vec![s], F32);
        add(format!("{p}.mlp_ln.bias"), vec![s], F32);
        add(format!("{p}.mlp.0.weight"), vec![4 * s, s], wtype);
        add(format!("{p}.mlp.0.bias"), vec![4 * s], F32);
        add(format!("{p}.mlp.2.weight"), vec![s, 4 * s], wtype);
        add(format!("{p}.mlp.2.bias"), vec![s], F32);
        let attns: &[&str] = if cross { &["attn", "cross_attn"] } else { &["attn"] };
        for attn in attns {
            add(format!("{p}.{attn}_ln.weight"), vec![s], F32);
            add(format!("{p}.{attn}_ln.bias"), vec![s], F32);
            add(format!("{p}.{attn}.query.weight"), vec![s, s], wtype);
            add(format!("{p}.{attn}.query.bias"), vec![s], F32);
            add(format!("{p}.{attn}.key.weight"), vec![s, s], wtype);
            add(format!("{p}.{attn}.value.weight"), vec![s, s], wtype);
            add(format!("{p}.{attn}.value.bias"), vec![s], F32);
            add(format!("{p}.{attn}.out.weight"), vec![s, s], wtype);
            add(format!("{p}.{attn}.out.bias"), vec![s], F32);
        }
    };
    for i in 0..n(hp.n_audio_layer)? {
        block(&mut add, &format!("encoder.blocks.{i}"), a, false);
    }
    add("decoder.positional_embedding".into(), vec![text_ctx, t], F32);
    add("decoder.token_embedding.weight".into(), vec![vocab, t], wtype);
    add("decoder.ln.weight".into(), vec![t], F32);
    add("decoder.ln.bias".into(), vec![t], F32);
    for i in 0..n(hp.n_text_layer)? {
        block(&mut add, &format!("decoder.blocks.{i}"), t, true);
    }
    Some(out)
}

/// Quantizes `values` to q8_0 blocks appended to `out`, as ggml's `quantize_row_q8_0_ref`
/// does: per 32 values the scale `d = max|x| / 127` (stored as f16) and `round(x / d)`. A
/// trailing partial block is padded with zeros (ggml itself only takes whole blocks).
pub fn quantize_q8_0(values: &[f32], out: &mut Vec<u8>) {
    out.reserve(values.len().div_ceil(Q8_BLOCK) * Q8_BLOCK_BYTES);
    for block in values.chunks(Q8_BLOCK) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
        out.extend(std::iter::repeat_n(0u8, Q8_BLOCK - block.len()));
    }
}

/// q8_0 blocks back to values (trailing bytes short of a block are ignored).
pub fn dequantize_q8_0(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(Q8_BLOCK_BYTES)
        .flat_map(|b| {
            let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            b[2..].iter().map(move |&q| f32::from(q as i8) * d)
        })
        .collect()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Writes a model file: the header at [`Writer::new`], then one [`Writer::tensor`] a tensor,
/// so a converter never holds more than one converted tensor.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    /// Writes magic, hyper-parameters, the `n_mel × n_fft` filter bank and the vocabulary.
    pub fn new(
        mut out: W,
        hparams: &Hparams,
        (n_mel, n_fft, filters): (usize, usize, &[f32]),
        vocab: &[Vec<u8>],
    ) -> io::Result<Writer<W>> {
        if n_mel.checked_mul(n_fft) != Some(filters.len()) {
            return Err(invalid(format!("{} filter weights for {n_mel} × {n_fft}", filters.len())));
        }
        let i32_of = |n: usize, what: &str| i32::try_from(n).map_err(|_| invalid(format!("{what} {n} does not fit the format")));
        out.write_all(&MAGIC.to_le_bytes())?;
        for v in hparams.values() {
            out.write_all(&v.to_le_bytes())?;
        }
        out.write_all(&i32_of(n_mel, "n_mel")?.to_le_bytes())?;
        out.write_all(&i32_of(n_fft, "n_fft")?.to_le_bytes())?;
        let mut bank = Vec::with_capacity(filters.len() * 4);
        for f in filters {
            bank.extend_from_slice(&f.to_le_bytes());
        }
        out.write_all(&bank)?;
        out.write_all(&i32_of(vocab.len(), "the vocabulary size")?.to_le_bytes())?;
        for token in vocab {
            let len = u32::try_from(token.len()).map_err(|_| invalid("a token over 4 GiB".into()))?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(token)?;
        }
        Ok(Writer { out })
    }

    /// Writes one tensor: `shape` row-major (1 to 4 dims, as whisper.cpp reads at most 4),
    /// `data` exactly the bytes of that many `ty` elements.
    pub fn tensor(&mut self, name: &str, shape: &[usize], ty: GgmlType, data: &[u8]) -> io::Result<()> {
        if shape.is_empty() || shape.len() > 4 {
            return Err(invalid(format!("{name}: {} dims (1 to 4 allowed)", shape.len())));
        }
        let dims: Vec<i32> = shape
            .iter()
            .rev()
            .map(|&d| i32::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| invalid(format!("{name}: shape {shape:?} does not fit the format")))?;
        // whisper.cpp counts elements in an i32.
        let elements = shape.iter().try_fold(1i32, |n, &d| n.checked_mul(i32::try_from(d).ok()?));
        let expected = elements.and_then(|n| ty.bytes(n as usize));
        if expected != Some(data.len()) {
            return Err(invalid(format!(
                "{name}: {} bytes for shape {shape:?} of {ty:?} (expected {expected:?})",
                data.len()
            )));
        }
        if name.is_empty() || name.len() > 255 {
            return Err(invalid(format!("tensor name {name:?}: 1 to 255 bytes")));
        }
        let mut head = Vec::with_capacity(12 + 4 * dims.len() + name.len());
        for v in [dims.len() as i32, name.len() as i32, ty.id()].into_iter().chain(dims) {
            head.extend_from_slice(&v.to_le_bytes());
        }
        head.extend_from_slice(name.as_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(data)
    }

    /// The underlying writer, for the caller to flush and sync.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Why a file is not a model file this module reads.
#[derive(Debug, thiserror::Error)]
pub enum GgmlError {
    /// The file could not be read.
    #[error("reading the whisper.cpp model: {0}")]
    Io(#[from] io::Error),
    /// It is not a whisper.cpp model, or is damaged.
    #[error("not a whisper.cpp model file: {0}")]
    Format(String),
}

/// One tensor of a file, without its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub ty: GgmlType,
    /// Where its data starts in the file.
    pub offset: u64,
    /// Bytes of data.
    pub nbytes: u64,
}

/// What [`read_index`] finds.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// The header.
    pub hparams: Hparams,
    /// Mel bank size `(n_mel, n_fft)`.
    pub mel: (usize, usize),
    /// Vocabulary entries stored.
    pub n_tokens: usize,
    /// The tensors in file order.
    pub tensors: Vec<TensorInfo>,
}

impl Index {
    /// A tensor by name.
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// A reader that knows where it is and how long the file is, so every length read from the
/// file is checked against what is left before it is followed.
struct Cursor<R> {
    inner: BufReader<R>,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Cursor<R> {
    fn i32(&mut self, what: &str) -> Result<i32, GgmlError> {
        self.need(4, what)?;
        let mut b = [0; 4];
        self.inner.read_exact(&mut b)?;
        self.pos += 4;
        Ok(i32::from_le_bytes(b))
    }

    fn count(&mut self, what: &str) -> Result<usize, GgmlError> {
        let v = self.i32(what)?;
        usize::try_from(v).map_err(|_| GgmlError::Format(format!("{what} is {v}")))
    }

    fn need(&self, n: u64, what: &str) -> Result<(), GgmlError> {
        if self.len.saturating_sub(self.pos) < n {
            return Err(GgmlError::Format(format!("truncated in {what} at byte {}", self.pos)));
        }
        Ok(())
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), GgmlError> {
        self.need(n, what)?;
        let n = i64::try_from(n).map_err(|_| GgmlError::Format(format!("{what}: too long")))?;
        self.inner.seek_relative(n)?;
        self.pos += n as u64;
        Ok(())
    }
}

/// Reads the header and the tensor list of a model file, skipping filter bank, vocabulary
/// and weights.
pub fn read_index<R: Read + Seek>(mut file: R) -> Result<Index, GgmlError> {
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    let mut c = Cursor {
        inner: BufReader::new(file),
        pos: 0,
        len,
    };
    if c.i32("the magic")? as u32 != MAGIC {
        return Err(GgmlError::Format("bad magic (not a ggml file)".into()));
    }
    let mut v = [0i32; 11];
    for x in &mut v {
        *x = c.i32("the hyper-parameters")?;
    }
    let hparams = Hparams::from_values(v);
    let n_mel = c.count("n_mel")?;
    let n_fft = c.count("n_fft")?;
    c.skip(n_mel as u64 * n_fft as u64 * 4, "the filter bank")?;
    let n_tokens = c.count("the vocabulary size")?;
    for _ in 0..n_tokens {
        let n = c.i32("the vocabulary")? as u32;
        c.skip(u64::from(n), "the vocabulary")?;
    }
    let mut tensors = Vec::new();
    while c.pos < c.len {
        let at = c.pos;
        let n_dims = c.i32("a tensor header")?;
        let name_len = c.i32("a tensor header")?;
        let ty_id = c.i32("a tensor header")?;
        if !(1..=4).contains(&n_dims) || !(1..=255).contains(&name_len) {
            return Err(GgmlError::Format(format!(
                "bad tensor header at byte {at} ({n_dims} dims, name of {name_len} bytes)"
            )));
        }
        let ty = GgmlType::from_id(ty_id)
            .ok_or_else(|| GgmlError::Format(format!("tensor type {ty_id} at byte {at}")))?;
        let mut shape = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            shape.push(c.count("a tensor shape")?);
        }
        shape.reverse();
        c.need(name_len as u64, "a tensor name")?;
        let mut name = vec![0; name_len as usize];
        c.inner.read_exact(&mut name)?;
        c.pos += name_len as u64;
        let name = String::from_utf8(name)
            .map_err(|_| GgmlError::Format(format!("tensor name at byte {at} is not UTF-8")))?;
        let nbytes = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| ty.bytes(n))
            .ok_or_else(|| GgmlError::Format(format!("{name}: shape {shape:?} of {ty:?}")))?
            as u64;
        let offset = c.pos;
        c.skip(nbytes, &name)?;
        tensors.push(TensorInfo {
            name,
            shape,
            ty,
            offset,
            nbytes,
        });
    }
    Ok(Index {
        hparams,
        mel: (n_mel, n_fft),
        n_tokens,
        tensors,
    })
}

/// The values of one tensor of `file` as f32 (q8_0 dequantized), for checks and tests.
pub fn read_tensor<R: Read + Seek>(mut file: R, tensor: &TensorInfo) -> Result<Vec<f32>, GgmlError> {
    file.seek(SeekFrom::Start(tensor.offset))?;
    let n = usize::try_from(tensor.nbytes).map_err(|_| GgmlError::Format(format!("{}: too big", tensor.name)))?;
    let mut data = vec![0u8; n];
    file.read_exact(&mut data)?;
    Ok(match tensor.ty {
        GgmlType::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        GgmlType::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        GgmlType::Q8_0 => dequantize_q8_0(&data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_hparams() -> Hparams {
        Hparams {
            n_vocab: 3,
            n_audio_ctx: 2,
            n_audio_state: 32,
            n_audio_head: 1,
            n_audio_layer: 1,
            n_text_ctx: 2,
            n_text_state: 32,
            n_text_head: 1,
            n_text_layer: 1,
            n_mels: 2,
            ftype: FTYPE_F16,
        }
    }

    #[test]
    fn q8_0_blocks_hold_the_scale_and_values_within_half_a_step() {
        let values: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * 0.2).collect();
        let mut bytes = Vec::new();
        quantize_q8_0(&values, &mut bytes);
        assert_eq!(bytes.len(), 2 * Q8_BLOCK_BYTES);
        for (block, raw) in values.chunks(32).zip(bytes.chunks(Q8_BLOCK_BYTES)) {
            let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert_eq!(half::f16::from_le_bytes([raw[0], raw[1]]), half::f16::from_f32(amax / 127.0));
            // The largest value maps to ±127.
            assert!(raw[2..].iter().any(|&q| (q as i8).unsigned_abs() == 127));
        }
        let back = dequantize_q8_0(&bytes);
        assert_eq!(back.len(), 64);
        for (block, got) in values.chunks(32).zip(back.chunks(32)) {
            let step = block.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            for (a, b) in block.iter().zip(got) {
                // Half a step, plus what the f16 scale loses (2⁻¹¹ relative, times 127).
                assert!((a - b).abs() <= step * 0.5 + step * 127.0 / 2048.0, "{a} vs {b}");
            }
        }
        let mut zeros = Vec::new();
        quantize_q8_0(&[0.0; 32], &mut zeros);
        assert_eq!(zeros, vec![0u8; 34]);
        // Exact values: 127 steps of 1/127 round-trip to the f16 scale's precision.
        let exact: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 16.0).collect();
        let mut b = Vec::new();
        quantize_q8_0(&exact, &mut b);
        assert_eq!(b[2], (-127i8) as u8);
        assert_eq!(b[2 + 16], 0);
    }

    #[test]
    fn the_loader_expects_what_whisper_cpp_creates() {
        let mut hp = tiny_hparams();
        hp.n_audio_layer = 2;
        let t = expected_tensors(&hp).unwrap();
        // whisper.cpp's own count: 15 stem/decoder tensors, 15 per encoder and 24 per decoder block.
        assert_eq!(t.len(), 15 + 15 * 2 + 24);
        let get = |n: &str| t.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!((get("encoder.conv1.weight").shape.clone(), get("encoder.conv1.weight").ty), (vec![32, 2, 3], GgmlType::F16));
        assert_eq!(get("encoder.conv2.bias").shape, [32, 1]);
        assert_eq!(get("decoder.blocks.0.cross_attn.key.weight").ty, GgmlType::F16);
        assert!(t.iter().all(|s| !s.name.ends_with("key.bias")));
        hp.ftype = QNT_VERSION * QNT_VERSION_FACTOR + FTYPE_Q8_0;
        let q = expected_tensors(&hp).unwrap();
        let ty = |n: &str| q.iter().find(|s| s.name == n).unwrap().ty;
        assert_eq!(ty("decoder.token_embedding.weight"), GgmlType::Q8_0);
        assert_eq!(ty("encoder.blocks.1.mlp.2.weight"), GgmlType::Q8_0);
        assert_eq!(ty("encoder.conv2.weight"), GgmlType::F16);
        assert_eq!(ty("decoder.positional_embedding"), GgmlType::F32);
        hp.ftype = 3;
        assert!(expected_tensors(&hp).is_none());
    }

    #[test]
    fn a_written_file_reads_back_and_damage_is_an_error() {
        let hp = tiny_hparams();
        let mut w = Writer::new(Vec::new(), &hp, (2, 3, &[0.5; 6]), &[b"a".to_vec(), b" b".to_vec(), Vec::new()]).unwrap();
        let f16: Vec<u8> = (0..6).flat_map(|i| half::f16::from_f32(i as f32).to_le_bytes()).collect();
        w.tensor("a.weight", &[2, 3], GgmlType::F16, &f16).unwrap();
        let mut q = Vec::new();
        quantize_q8_0(&[0.25; 64], &mut q);
        w.tensor("b.weight", &[2, 32], GgmlType::Q8_0, &q).unwrap();
        w.tensor("c.bias", &[4, 1], GgmlType::F32, &[0; 16]).unwrap();
        // Wrong sizes and shapes are refused before anything is written.
        assert!(w.tensor("d", &[2, 3], GgmlType::F16, &f16[..10]).is_err());
        assert!(w.tensor("d", &[3], GgmlType::Q8_0, &q[..34]).is_err());
        assert!(w.tensor("d", &[1, 1, 1, 1, 1], GgmlType::F32, &[0; 4]).is_err());
        let buf = w.into_inner();

        // The header as whisper.cpp reads it.
        assert_eq!(&buf[..4], b"lmgg");
        assert_eq!(i32::from_le_bytes(buf[4 + 4 * 10..4 + 4 * 11].try_into().unwrap()), FTYPE_F16);
        let idx = read_index(io::Cursor::new(&buf)).unwrap();
        assert_eq!(idx.hparams, hp);
        assert_eq!((idx.mel, idx.n_tokens), ((2, 3), 3));
        let names: Vec<&str> = idx.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a.weight", "b.weight", "c.bias"]);
        let a = idx.get("a.weight").unwrap();
        assert_eq!((a.shape.as_slice(), a.ty, a.nbytes), (&[2, 3][..], GgmlType::F16, 12));
        // Extents are stored fastest first: [3, 2].
        let dims_at = a.offset as usize - 8 - 8;
        assert_eq!(&buf[dims_at..dims_at + 8], &[3, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(read_tensor(io::Cursor::new(&buf), a).unwrap(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(read_tensor(io::Cursor::new(&buf), idx.get("b.weight").unwrap()).unwrap(), vec![0.25; 64]);
        assert_eq!(idx.get("c.bias").unwrap().shape, [4, 1]);
        assert_eq!(idx.tensors[2].offset as usize + 16, buf.len());

        for cut in [0, 3, 30, buf.len() - 1] {
            assert!(read_index(io::Cursor::new(&buf[..cut])).is_err(), "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[0] = b'x';
        assert!(read_index(io::Cursor::new(&bad)).unwrap_err().to_string().contains("magic"));
        // A vocabulary length pointing past the end.
        let mut bad = buf.clone();
        let vocab_at = 4 + 44 + 8 + 24 + 4;
        bad[vocab_at..vocab_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_index(io::Cursor::new(&bad)).is_err());
    }
}
