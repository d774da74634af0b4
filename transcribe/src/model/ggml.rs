//! whisper.cpp's model file ("ggml" format), as its loader (`whisper_model_load`) reads it:
//! magic, eleven `i32` hyper-parameters, the mel filter bank, the vocabulary, then tensors each
//! with dims (fastest first), name, type and data. [`write`] makes one; [`read_index`] lists one
//! without loading the weights, for `hotline model list` and the tests.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// `ggml` read as a little-endian `u32`.
pub const MAGIC: u32 = 0x6767_6d6c;

/// Weights of 32 values in a q8_0 block.
pub const Q8_BLOCK: usize = 32;

/// Tensor element types whisper.cpp takes from us (ggml's type ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GgmlType {
    /// 32-bit float (id 0).
    F32,
    /// Half (id 1).
    F16,
    /// 8-bit blocks of 32 with a half scale (id 8).
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

    fn from_id(id: i32) -> Option<GgmlType> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            8 => GgmlType::Q8_0,
            _ => return None,
        })
    }

    /// Bytes of `n` elements.
    pub fn bytes(self, n: usize) -> usize {
        match self {
            GgmlType::F32 => 4 * n,
            GgmlType::F16 => 2 * n,
            GgmlType::Q8_0 => n / Q8_BLOCK * 34,
        }
    }
}

/// The hyper-parameters in the header, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hparams {
    /// Vocabulary with special tokens (51865 multilingual).
    pub n_vocab: i32,
    /// Encoder positions (1500).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions (448).
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands (80).
    pub n_mels: i32,
    /// 1 = f16 weights, 7 = q8_0 weights.
    pub ftype: i32,
}

impl Hparams {
    fn values(&self) -> [i32; 11] {
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

    /// Whisper's size name by encoder width.
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
}

/// One tensor to write: the row-major shape (as PyTorch has it) and the data in `ty`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// whisper.cpp's name (`encoder.blocks.0.attn.query.weight`).
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Element type of `data`.
    pub ty: GgmlType,
    /// The bytes.
    pub data: Vec<u8>,
}

/// The f32 values as `ty` bytes (q8_0 needs a multiple of 32 values).
pub fn encode(values: &[f32], ty: GgmlType) -> Vec<u8> {
    match ty {
        GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        GgmlType::Q8_0 => {
            let mut out = Vec::with_capacity(values.len() / Q8_BLOCK * 34);
            for block in values.chunks(Q8_BLOCK) {
                let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let inv = if d == 0.0 { 0.0 } else { 1.0 / d };
                out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
                out.extend(block.iter().map(|v| (v * inv).round() as i8 as u8));
            }
            out
        }
    }
}

/// q8_0 bytes back to values (tests and checks).
pub fn decode_q8_0(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(34)
        .flat_map(|b| {
            let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            b[2..].iter().map(move |&q| f32::from(q as i8) * d)
        })
        .collect()
}

/// Writes a whole model file.
pub fn write(
    out: &mut impl Write,
    hparams: &Hparams,
    mel: (usize, usize, &[f32]),
    vocab: &[Vec<u8>],
    tensors: impl IntoIterator<Item = Tensor>,
) -> io::Result<()> {
    let i32s = |out: &mut dyn Write, v: &[i32]| -> io::Result<()> {
        for x in v {
            out.write_all(&x.to_le_bytes())?;
        }
        Ok(())
    };
    out.write_all(&MAGIC.to_le_bytes())?;
    i32s(out, &hparams.values())?;
    let (n_mel, n_fft, filters) = mel;
    i32s(out, &[n_mel as i32, n_fft as i32])?;
    for f in filters {
        out.write_all(&f.to_le_bytes())?;
    }
    i32s(out, &[vocab.len() as i32])?;
    for token in vocab {
        i32s(out, &[token.len() as i32])?;
        out.write_all(token)?;
    }
    for t in tensors {
        let dims: Vec<i32> = t.shape.iter().rev().map(|&d| d as i32).collect();
        i32s(out, &[dims.len() as i32, t.name.len() as i32, t.ty.id()])?;
        i32s(out, &dims)?;
        out.write_all(t.name.as_bytes())?;
        out.write_all(&t.data)?;
    }
    Ok(())
}

/// One tensor of a file, without its data.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Name.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub ty: GgmlType,
    /// Where its data starts in the file.
    pub offset: u64,
}

/// What [`read_index`] finds.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// The header.
    pub hparams: Hparams,
    /// Vocabulary entries stored.
    pub n_tokens: usize,
    /// Mel bank size `(n_mel, n_fft)`.
    pub mel: (usize, usize),
    /// The tensors in file order.
    pub tensors: Vec<TensorInfo>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads the header and tensor list of a model file, skipping the weights.
pub fn read_index(mut f: impl Read + Seek) -> io::Result<Index> {
    let len = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    let i32_ = |f: &mut dyn Read| -> io::Result<i32> {
        let mut b = [0; 4];
        f.read_exact(&mut b)?;
        Ok(i32::from_le_bytes(b))
    };
    if i32_(&mut f)? as u32 != MAGIC {
        return Err(bad("not a whisper.cpp model (bad magic)"));
    }
    let mut v = [0i32; 11];
    for x in &mut v {
        *x = i32_(&mut f)?;
    }
    let hparams = Hparams {
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
    };
    let n_mel = i32_(&mut f)?.max(0) as usize;
    let n_fft = i32_(&mut f)?.max(0) as usize;
    f.seek(SeekFrom::Current((n_mel * n_fft * 4) as i64))?;
    let n_tokens = i32_(&mut f)?.max(0) as usize;
    for _ in 0..n_tokens {
        let n = i32_(&mut f)?.max(0);
        f.seek(SeekFrom::Current(i64::from(n)))?;
    }
    let mut tensors = Vec::new();
    loop {
        let pos = f.stream_position()?;
        if pos >= len {
            break;
        }
        let n_dims = i32_(&mut f)?;
        let name_len = i32_(&mut f)?;
        let ty_id = i32_(&mut f)?;
        if !(1..=4).contains(&n_dims) || !(1..=256).contains(&name_len) {
            return Err(bad(format!("bad tensor header at byte {pos}")));
        }
        let ty = GgmlType::from_id(ty_id).ok_or_else(|| bad(format!("tensor type {ty_id}")))?;
        let mut dims = Vec::new();
        for _ in 0..n_dims {
            dims.push(i32_(&mut f)?.max(0) as usize);
        }
        dims.reverse();
        let mut name = vec![0; name_len as usize];
        f.read_exact(&mut name)?;
        let offset = f.stream_position()?;
        let bytes = ty.bytes(dims.iter().product()) as u64;
        if offset + bytes > len {
            return Err(bad("the model file is truncated"));
        }
        f.seek(SeekFrom::Current(bytes as i64))?;
        tensors.push(TensorInfo {
            name: String::from_utf8_lossy(&name).into_owned(),
            shape: dims,
            ty,
            offset,
        });
    }
    Ok(Index {
        hparams,
        n_tokens,
        mel: (n_mel, n_fft),
        tensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_keeps_values_within_half_a_step() {
        let values: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * 0.2).collect();
        let bytes = encode(&values, GgmlType::Q8_0);
        assert_eq!(bytes.len(), 2 * 34);
        let back = decode_q8_0(&bytes);
        for (block, got) in values.chunks(32).zip(back.chunks(32)) {
            let step = block.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            for (a, b) in block.iter().zip(got) {
                assert!((a - b).abs() <= step * 0.51 + 1e-4, "{a} vs {b}");
            }
        }
        assert_eq!(
            decode_q8_0(&encode(&[0.0; 32], GgmlType::Q8_0)),
            vec![0.0; 32]
        );
    }

    #[test]
    fn a_written_file_reads_back() {
        let hp = Hparams {
            n_vocab: 3,
            n_audio_ctx: 2,
            n_audio_state: 4,
            n_audio_head: 1,
            n_audio_layer: 1,
            n_text_ctx: 2,
            n_text_state: 4,
            n_text_head: 1,
            n_text_layer: 1,
            n_mels: 2,
            ftype: 1,
        };
        let mut buf = Vec::new();
        let t = Tensor {
            name: "a.weight".into(),
            shape: vec![2, 3],
            ty: GgmlType::F16,
            data: encode(&[1.0; 6], GgmlType::F16),
        };
        write(
            &mut buf,
            &hp,
            (2, 3, &[0.5; 6]),
            &[b"a".to_vec(), b" b".to_vec()],
            [t],
        )
        .unwrap();
        let idx = read_index(std::io::Cursor::new(&buf)).unwrap();
        assert_eq!(idx.hparams, hp);
        assert_eq!(idx.n_tokens, 2);
        assert_eq!(idx.mel, (2, 3));
        assert_eq!(idx.tensors.len(), 1);
        assert_eq!(idx.tensors[0].shape, vec![2, 3]);
        assert_eq!(idx.tensors[0].offset as usize + 12, buf.len());
        assert!(read_index(std::io::Cursor::new(&buf[..buf.len() - 1])).is_err());
    }
}
