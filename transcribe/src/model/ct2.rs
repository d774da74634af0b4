//! Reader of CTranslate2's `model.bin` (binary version 6, as faster-whisper conversions ship it):
//! a header, the variables (name, shape, type, bytes) and aliases.
//!
//! Layout, little-endian: `u32` version, the spec name and `u32` revision, `u32` variable count,
//! then per variable a name (`u16` length incl. NUL, bytes), `u8` rank, `u32` dims, `u8` type and
//! `u32` byte count, the data; then `u32` alias count and (alias, target) name pairs. Every length
//! read is checked against what remains before anything is allocated, so a forged file fails
//! with a message instead of asking for gigabytes.

use std::io::Read;

/// Element type of a variable (CTranslate2's `DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One stored array.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// `encoder/layer_0/self_attention/linear_0/weight`.
    pub name: String,
    /// Row-major shape; empty for a scalar.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// The elements, little-endian.
    pub data: Vec<u8>,
}

impl Variable {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f32 (floats converted; integers cast).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::Bf16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I8 => d.iter().map(|&b| f32::from(b as i8)).collect(),
            DType::I16 => d
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        }
    }

    /// A scalar integer (`encoder/num_heads`).
    pub fn scalar_int(&self) -> Option<i64> {
        if self.len() != 1 {
            return None;
        }
        Some(match self.dtype {
            DType::I8 => i64::from(self.data[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([self.data[0], self.data[1]])),
            DType::I32 => i64::from(i32::from_le_bytes(self.data[..4].try_into().ok()?)),
            _ => return None,
        })
    }
}

/// A whole CTranslate2 model.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Model {
    /// Binary format version.
    pub version: u32,
    /// Spec name (`WhisperSpec`).
    pub spec: String,
    /// The variables in file order.
    pub variables: Vec<Variable>,
    /// `(alias, target)` pairs.
    pub aliases: Vec<(String, String)>,
}

impl Ct2Model {
    /// A variable by name (aliases followed).
    pub fn get(&self, name: &str) -> Option<&Variable> {
        let target = self
            .aliases
            .iter()
            .find(|(a, _)| a == name)
            .map_or(name, |(_, t)| t.as_str());
        self.variables.iter().find(|v| v.name == target)
    }
}

/// Why a file is not a model we read.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    /// Reading failed.
    #[error("reading the CTranslate2 model: {0}")]
    Io(#[from] std::io::Error),
    /// The file ends early.
    #[error("the CTranslate2 model is truncated ({what}); are all model.bin parts there?")]
    Truncated {
        /// What was being read.
        what: String,
    },
    /// Something no CTranslate2 model holds.
    #[error("not a CTranslate2 model we can read: {0}")]
    Format(String),
}

/// Most bytes one variable may claim: the largest whisper matrix (large-v3's embedding in f32)
/// is about 530 MB.
const MAX_VARIABLE_BYTES: u64 = 1 << 30;

struct Reader<R> {
    inner: R,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>, Ct2Error> {
        let mut buf = Vec::new();
        let got = (&mut self.inner).take(n as u64).read_to_end(&mut buf)?;
        if got < n {
            return Err(Ct2Error::Truncated { what: what.into() });
        }
        Ok(buf)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Ct2Error> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, Ct2Error> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Ct2Error> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, Ct2Error> {
        let n = self.u16(what)? as usize;
        let mut b = self.bytes(n, what)?;
        if b.last() == Some(&0) {
            b.pop();
        }
        String::from_utf8(b).map_err(|_| Ct2Error::Format(format!("{what} is not UTF-8")))
    }
}

/// Reads a whole model from `input` (for a split model, the parts chained in order).
pub fn read(input: impl Read) -> Result<Ct2Model, Ct2Error> {
    let mut r = Reader { inner: input };
    let version = r.u32("version")?;
    if !(2..=6).contains(&version) {
        return Err(Ct2Error::Format(format!("binary version {version}")));
    }
    let spec = r.string("spec name")?;
    let _revision = r.u32("spec revision")?;
    let count = r.u32("variable count")?;
    if count > 100_000 {
        return Err(Ct2Error::Format(format!("{count} variables")));
    }
    let mut variables = Vec::with_capacity(count as usize);
    for i in 0..count {
        let what = format!("variable {i} of {count}");
        let name = r.string(&what)?;
        let rank = r.u8(&what)?;
        if rank > 8 {
            return Err(Ct2Error::Format(format!("{name}: rank {rank}")));
        }
        let mut shape = Vec::with_capacity(rank as usize);
        for _ in 0..rank {
            shape.push(r.u32(&what)? as usize);
        }
        let (dtype, nbytes) = if version >= 4 {
            let id = r.u8(&what)?;
            let dtype =
                DType::from_id(id).ok_or_else(|| Ct2Error::Format(format!("{name}: type {id}")))?;
            (dtype, u64::from(r.u32(&what)?))
        } else {
            let size = r.u8(&what)?;
            let dtype = match size {
                4 => DType::F32,
                2 => DType::F16,
                1 => DType::I8,
                _ => return Err(Ct2Error::Format(format!("{name}: item size {size}"))),
            };
            let n = r.u32(&what)?;
            (dtype, u64::from(n) * size as u64)
        };
        let elements: u64 = shape.iter().map(|&d| d as u64).product();
        if nbytes > MAX_VARIABLE_BYTES || elements * dtype.size() as u64 != nbytes {
            return Err(Ct2Error::Format(format!(
                "{name}: {nbytes} bytes for shape {shape:?} of {dtype:?}"
            )));
        }
        let data = r.bytes(nbytes as usize, &format!("{what} ({name})"))?;
        variables.push(Variable {
            name,
            shape,
            dtype,
            data,
        });
    }
    let mut aliases = Vec::new();
    if version >= 3 {
        let n = r.u32("alias count")?;
        if n > 10_000 {
            return Err(Ct2Error::Format(format!("{n} aliases")));
        }
        for _ in 0..n {
            aliases.push((r.string("alias")?, r.string("alias target")?));
        }
    }
    Ok(Ct2Model {
        version,
        spec,
        variables,
        aliases,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// A tiny model file: one f16 matrix, one int16 scalar and an alias.
    pub(crate) fn tiny() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        string(&mut b, "m/weight");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&12u32.to_le_bytes());
        for x in [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.25] {
            b.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
        }
        string(&mut b, "m/num_heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&8i16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "m/alias");
        string(&mut b, "m/weight");
        b
    }

    #[test]
    fn a_model_is_read_with_shapes_values_and_aliases() {
        let m = read(&tiny()[..]).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.variables.len(), 2);
        let w = m.get("m/alias").unwrap();
        assert_eq!(w.shape, vec![2, 3]);
        assert_eq!(w.to_f32(), vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.25]);
        assert_eq!(m.get("m/num_heads").unwrap().scalar_int(), Some(8));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = tiny();
        for cut in 0..full.len() {
            assert!(read(&full[..cut]).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn a_forged_size_is_refused_before_allocating() {
        let mut b = tiny();
        // The byte count of the first variable: claim 4 GiB.
        let pos = 4 + 2 + 12 + 4 + 4 + 2 + 9 + 1 + 8 + 1;
        b[pos..pos + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read(&b[..]).unwrap_err();
        assert!(matches!(e, Ct2Error::Format(_)), "{e}");
    }
}
