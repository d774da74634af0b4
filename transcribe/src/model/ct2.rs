//! Reader of CTranslate2's `model.bin`, the file faster-whisper conversions ship: a header, the
//! variables (name, shape, element type, bytes) and the aliases between them.
//!
//! Layout, little-endian, as `ctranslate2::models::Model::load` reads it (binary versions 1–6):
//! `u32` binary version; from version 2 the spec name (a string) and `u32` spec revision; `u32`
//! variable count, then per variable its name, `u8` rank, `u32` dims (row-major), from version 4
//! a `u8` type id and `u32` byte count (before: a `u8` item size and `u32` element count), and the
//! data; from version 3 a `u32` alias count and (alias, target) name pairs. A string is a `u16`
//! length that counts a closing NUL, then the bytes.
//!
//! Input is read once, front to back, so a split model can be streamed from its parts. Every
//! length is checked before anything is allocated for it: against the bytes that remain when the
//! total is known ([`read_sized`]), and otherwise buffers grow only as data actually arrives, so
//! a forged count fails with a message instead of asking for gigabytes.

use std::io::{self, Read};

/// Element type of a variable: CTranslate2's `DataType`, whose discriminant is the type id of
/// binary version 4 and later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float (id 0).
    F32,
    /// 8-bit integer (id 1): flags and quantized weights.
    I8,
    /// 16-bit integer (id 2): head counts and quantized weights.
    I16,
    /// 32-bit integer (id 3).
    I32,
    /// IEEE half (id 4): how faster-whisper ships the weights.
    F16,
    /// bfloat16 (id 5).
    Bf16,
}

impl DType {
    /// The type of a binary version ≥ 4 type id.
    pub fn from_id(id: u8) -> Option<DType> {
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

    /// Whether the elements are floating point (weights, not flags).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::Bf16)
    }
}

/// One stored array, as the file has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// Its path in the spec, e.g. `encoder/layer_0/self_attention/linear_0/weight`.
    pub name: String,
    /// Row-major shape; empty for a scalar.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// The elements, little-endian; exactly `len() * dtype.size()` bytes.
    pub data: Vec<u8>,
}

impl Variable {
    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements `range` as f32 into `out` (floats converted exactly, integers cast), so a
    /// converter can walk a large matrix in pieces. An out-of-range request yields only what
    /// exists.
    pub fn f32_into(&self, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        let size = self.dtype.size();
        let start = range.start.saturating_mul(size).min(self.data.len());
        let end = range.end.saturating_mul(size).clamp(start, self.data.len());
        let d = &self.data[start..end];
        match self.dtype {
            DType::F32 => out.extend(
                d.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            DType::F16 => out.extend(
                d.chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
            DType::Bf16 => out.extend(
                d.chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
            DType::I8 => out.extend(d.iter().map(|&b| f32::from(b as i8))),
            DType::I16 => out.extend(
                d.chunks_exact(2)
                    .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]]))),
            ),
            DType::I32 => out.extend(
                d.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32),
            ),
        }
    }

    /// All elements as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len());
        self.f32_into(0..self.len(), &mut out);
        out
    }

    /// The value of an integer scalar (`encoder/num_heads`); `None` for anything else.
    pub fn scalar_int(&self) -> Option<i64> {
        if !self.shape.is_empty() {
            return None;
        }
        let d = &self.data;
        match self.dtype {
            DType::I8 => Some(i64::from(*d.first()? as i8)),
            DType::I16 => Some(i64::from(i16::from_le_bytes(d.get(..2)?.try_into().ok()?))),
            DType::I32 => Some(i64::from(i32::from_le_bytes(d.get(..4)?.try_into().ok()?))),
            _ => None,
        }
    }
}

/// A whole CTranslate2 model file.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Model {
    /// Binary format version (6 for current converters).
    pub version: u32,
    /// Spec name (`WhisperSpec`); empty for binary version 1, which has none.
    pub spec: String,
    /// Spec revision.
    pub revision: u32,
    /// The variables in file order (CTranslate2 writes them sorted by name).
    pub variables: Vec<Variable>,
    /// `(alias, target)` pairs: the alias is another name for the target's data (whisper's
    /// output projection is the token embedding).
    pub aliases: Vec<(String, String)>,
}

impl Ct2Model {
    /// A variable by name, aliases followed (one level, as CTranslate2 resolves them).
    pub fn get(&self, name: &str) -> Option<&Variable> {
        let target = self
            .aliases
            .iter()
            .find(|(alias, _)| alias == name)
            .map_or(name, |(_, target)| target.as_str());
        self.variables.iter().find(|v| v.name == target)
    }
}

/// Why a file is not a CTranslate2 model this reader takes.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    /// The input could not be read (a wheel that does not inflate, a disk error).
    #[error("reading the CTranslate2 model: {0}")]
    Io(#[from] io::Error),
    /// The input ends before the model does.
    #[error(
        "the CTranslate2 model is truncated: {what} needs {needed} bytes at byte {at}; \
         are all model.bin parts there, in order?"
    )]
    Truncated {
        /// What was being read.
        what: String,
        /// Its offset in the model.
        at: u64,
        /// Bytes it needed.
        needed: u64,
    },
    /// Something no CTranslate2 model holds (a wrong file, or parts out of order).
    #[error("not a CTranslate2 model this reader takes: {0}")]
    Format(String),
}

/// Most variables a file may declare: whisper large has about 1,000.
const MAX_VARIABLES: u32 = 100_000;
/// Most aliases a file may declare.
const MAX_ALIASES: u32 = 100_000;
/// Highest rank accepted: whisper's variables have at most 3 dims.
const MAX_RANK: u8 = 8;
/// Latest binary version CTranslate2 writes (and reads).
pub const LATEST_BINARY_VERSION: u32 = 6;
/// Largest buffer reserved ahead of data when the total length is unknown; past it a buffer
/// grows only as bytes arrive.
const RESERVE_LIMIT: usize = 16 << 20;

/// Reads a whole model from `input` (for a split model, its parts chained in order) whose
/// length is not known in advance.
pub fn read(input: impl Read) -> Result<Ct2Model, Ct2Error> {
    Reader::new(input, None).model()
}

/// Reads a whole model from `input` of exactly `len` bytes: every length in the file is checked
/// against what remains before it is read.
pub fn read_sized(input: impl Read, len: u64) -> Result<Ct2Model, Ct2Error> {
    Reader::new(input, Some(len)).model()
}

struct Reader<R> {
    inner: R,
    pos: u64,
    len: Option<u64>,
}

impl<R: Read> Reader<R> {
    fn new(inner: R, len: Option<u64>) -> Self {
        Reader { inner, pos: 0, len }
    }

    fn truncated(&self, what: &str, needed: u64) -> Ct2Error {
        Ct2Error::Truncated {
            what: what.to_string(),
            at: self.pos,
            needed,
        }
    }

    /// Fails early when the known length leaves fewer than `n` bytes.
    fn check_remaining(&self, n: u64, what: &str) -> Result<(), Ct2Error> {
        match self.len {
            Some(len) if len.saturating_sub(self.pos) < n => Err(self.truncated(what, n)),
            _ => Ok(()),
        }
    }

    fn exact<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Ct2Error> {
        self.check_remaining(N as u64, what)?;
        let mut buf = [0u8; N];
        let mut filled = 0;
        while filled < N {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => return Err(self.truncated(what, N as u64)),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += N as u64;
        Ok(buf)
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, Ct2Error> {
        self.check_remaining(n, what)?;
        let reserve = match self.len {
            Some(_) => n,
            None => n.min(RESERVE_LIMIT as u64),
        };
        let mut buf = Vec::new();
        buf.try_reserve_exact(usize::try_from(reserve).unwrap_or(usize::MAX))
            .map_err(|_| Ct2Error::Format(format!("{what}: {n} bytes do not fit in memory")))?;
        let got = (&mut self.inner).take(n).read_to_end(&mut buf)? as u64;
        if got < n {
            return Err(self.truncated(what, n));
        }
        self.pos += n;
        Ok(buf)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Ct2Error> {
        Ok(self.exact::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, Ct2Error> {
        Ok(u16::from_le_bytes(self.exact(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Ct2Error> {
        Ok(u32::from_le_bytes(self.exact(what)?))
    }

    /// A `u16`-length string; the length counts the closing NUL, which is dropped.
    fn string(&mut self, what: &str) -> Result<String, Ct2Error> {
        let n = self.u16(what)?;
        let mut b = self.bytes(u64::from(n), what)?;
        if b.last() == Some(&0) {
            b.pop();
        }
        if b.is_empty() || b.contains(&0) {
            return Err(Ct2Error::Format(format!("{what}: an empty or NUL-broken name")));
        }
        String::from_utf8(b).map_err(|_| Ct2Error::Format(format!("{what} is not UTF-8")))
    }

    fn model(mut self) -> Result<Ct2Model, Ct2Error> {
        let version = self.u32("the binary version")?;
        if !(1..=LATEST_BINARY_VERSION).contains(&version) {
            return Err(Ct2Error::Format(format!(
                "binary version {version} (known: 1 to {LATEST_BINARY_VERSION})"
            )));
        }
        let (spec, revision) = if version >= 2 {
            (self.string("the spec name")?, self.u32("the spec revision")?)
        } else {
            (String::new(), 1)
        };
        let count = self.u32("the variable count")?;
        if count > MAX_VARIABLES {
            return Err(Ct2Error::Format(format!("{count} variables")));
        }
        let mut variables = Vec::new();
        for i in 0..count {
            variables.push(self.variable(version, i, count)?);
        }
        let mut aliases = Vec::new();
        if version >= 3 {
            let n = self.u32("the alias count")?;
            if n > MAX_ALIASES {
                return Err(Ct2Error::Format(format!("{n} aliases")));
            }
            for _ in 0..n {
                aliases.push((self.string("an alias")?, self.string("an alias target")?));
            }
        }
        self.end()?;
        Ok(Ct2Model {
            version,
            spec,
            revision,
            variables,
            aliases,
        })
    }

    fn variable(&mut self, version: u32, i: u32, count: u32) -> Result<Variable, Ct2Error> {
        let what = format!("variable {} of {count}", i + 1);
        let name = self.string(&what)?;
        let what = format!("variable {name:?}");
        let rank = self.u8(&what)?;
        if rank > MAX_RANK {
            return Err(Ct2Error::Format(format!("{name}: rank {rank}")));
        }
        let mut shape = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            shape.push(self.u32(&what)? as usize);
        }
        let (dtype, nbytes) = if version >= 4 {
            let id = self.u8(&what)?;
            let dtype = DType::from_id(id)
                .ok_or_else(|| Ct2Error::Format(format!("{name}: type id {id}")))?;
            (dtype, u64::from(self.u32(&what)?))
        } else {
            // Older files give the item size; CTranslate2 reads 2 as int16, never as half.
            let size = self.u8(&what)?;
            let dtype = match size {
                4 => DType::F32,
                2 => DType::I16,
                1 => DType::I8,
                _ => return Err(Ct2Error::Format(format!("{name}: item size {size}"))),
            };
            (dtype, u64::from(self.u32(&what)?) * u64::from(size))
        };
        let elements = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        if elements.and_then(|n| n.checked_mul(dtype.size() as u64)) != Some(nbytes) {
            return Err(Ct2Error::Format(format!(
                "{name}: {nbytes} bytes for shape {shape:?} of {dtype:?}"
            )));
        }
        let data = self.bytes(nbytes, &format!("the data of {name}"))?;
        Ok(Variable {
            name,
            shape,
            dtype,
            data,
        })
    }

    /// Nothing may follow the aliases: extra bytes mean parts of different models, or in the
    /// wrong order, were joined.
    fn end(&mut self) -> Result<(), Ct2Error> {
        let extra = match self.len {
            Some(len) => len.saturating_sub(self.pos),
            None => (&mut self.inner).take(1).read(&mut [0u8; 1])? as u64,
        };
        if extra > 0 {
            return Err(Ct2Error::Format(format!(
                "bytes after the end of the model at byte {} (parts joined in the wrong order?)",
                self.pos
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds model files byte by byte, as CTranslate2's `model_spec.py` writes them.
    #[derive(Default)]
    struct File(Vec<u8>);

    impl File {
        fn u8(&mut self, v: u8) -> &mut Self {
            self.0.push(v);
            self
        }
        fn u16(&mut self, v: u16) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn u32(&mut self, v: u32) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn string(&mut self, s: &str) -> &mut Self {
            self.u16(s.len() as u16 + 1);
            self.0.extend_from_slice(s.as_bytes());
            self.u8(0)
        }
        fn bytes(&mut self, b: &[u8]) -> &mut Self {
            self.0.extend_from_slice(b);
            self
        }
    }

    /// Version 6: a 2×3 f16 matrix, an int16 scalar (`num_heads` = 8), an int8 flag and an
    /// alias to the matrix.
    fn tiny() -> Vec<u8> {
        let mut f = File::default();
        f.u32(6).string("WhisperSpec").u32(3).u32(3);
        f.string("m/weight").u8(2).u32(2).u32(3).u8(4).u32(12);
        for x in [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.25] {
            f.bytes(&half::f16::from_f32(x).to_le_bytes());
        }
        f.string("m/num_heads").u8(0).u8(2).u32(2).bytes(&8i16.to_le_bytes());
        f.string("m/pre_norm").u8(0).u8(1).u32(1).u8(1);
        f.u32(1).string("m/projection").string("m/weight");
        f.0
    }

    /// Where the first variable's byte count sits in [`tiny`].
    const FIRST_BYTE_COUNT: usize = 4 + (2 + 12) + 4 + 4 + (2 + 9) + 1 + 8 + 1;

    #[test]
    fn a_model_is_read_with_shapes_values_flags_and_aliases() {
        let m = read(&tiny()[..]).unwrap();
        assert_eq!((m.version, m.spec.as_str(), m.revision), (6, "WhisperSpec", 3));
        let names: Vec<&str> = m.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["m/weight", "m/num_heads", "m/pre_norm"]);
        let w = m.get("m/projection").expect("the alias leads to the matrix");
        assert_eq!((w.name.as_str(), w.shape.as_slice(), w.dtype), ("m/weight", &[2, 3][..], DType::F16));
        assert_eq!(w.to_f32(), [1.0, 2.0, 3.0, -1.0, 0.5, 0.25]);
        let mut row = Vec::new();
        w.f32_into(3..6, &mut row);
        assert_eq!(row, [-1.0, 0.5, 0.25]);
        assert_eq!(m.get("m/num_heads").unwrap().scalar_int(), Some(8));
        assert_eq!(m.get("m/pre_norm").unwrap().scalar_int(), Some(1));
        assert_eq!(w.scalar_int(), None);
        assert!(m.get("m/missing").is_none());
        let sized = read_sized(&tiny()[..], tiny().len() as u64).unwrap();
        assert_eq!(sized, m);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = tiny();
        for cut in 0..full.len() {
            let e = read(&full[..cut]).expect_err(&format!("cut at {cut} accepted"));
            assert!(matches!(e, Ct2Error::Truncated { .. }), "cut at {cut}: {e}");
            let e = read_sized(&full[..cut], cut as u64).unwrap_err();
            assert!(matches!(e, Ct2Error::Truncated { .. }), "cut at {cut}: {e}");
        }
        let e = read(&full[..FIRST_BYTE_COUNT + 4 + 5]).unwrap_err();
        assert!(e.to_string().contains("the data of m/weight"), "{e}");
    }

    #[test]
    fn a_forged_length_fails_before_anything_is_allocated_for_it() {
        // A byte count that disagrees with the shape.
        let mut b = tiny();
        b[FIRST_BYTE_COUNT..FIRST_BYTE_COUNT + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read(&b[..]).unwrap_err();
        assert!(matches!(e, Ct2Error::Format(_)), "{e}");

        // A shape whose bytes cannot be counted in a u32 (2³⁰ f32), then a consistent but huge
        // variable (1 GiB of f16 claimed, 8 bytes present).
        let mut f = File::default();
        f.u32(6).string("WhisperSpec").u32(3).u32(1);
        f.string("big").u8(1).u32(1 << 30).u8(0).u32(u32::MAX / 4 * 4);
        let e = read(&f.0[..]).unwrap_err();
        assert!(matches!(e, Ct2Error::Format(_)), "{e}");
        let mut f = File::default();
        f.u32(6).string("WhisperSpec").u32(3).u32(1);
        f.string("big").u8(2).u32(32768).u32(16384).u8(4).u32(1 << 30).bytes(&[0; 8]);
        let len = f.0.len() as u64;
        let e = read_sized(&f.0[..], len).unwrap_err();
        assert!(
            matches!(e, Ct2Error::Truncated { needed, .. } if needed == 1 << 30),
            "{e}"
        );
        // Without a known length it fails when the data runs out.
        assert!(matches!(read(&f.0[..]).unwrap_err(), Ct2Error::Truncated { .. }));

        // Forged counts.
        let mut f = File::default();
        f.u32(6).string("WhisperSpec").u32(3).u32(u32::MAX);
        assert!(matches!(read(&f.0[..]).unwrap_err(), Ct2Error::Format(_)));
    }

    #[test]
    fn garbage_and_joined_parts_in_the_wrong_order_are_refused() {
        let e = read(&b"PK\x03\x04 this is a zip, not a model"[..]).unwrap_err();
        assert!(e.to_string().contains("binary version"), "{e}");
        let mut b = tiny();
        b.push(0);
        let e = read(&b[..]).unwrap_err();
        assert!(e.to_string().contains("after the end"), "{e}");
        assert!(read_sized(&b[..], b.len() as u64).is_err());
        let mut b = tiny();
        b[FIRST_BYTE_COUNT - 1] = 9; // type id
        assert!(read(&b[..]).unwrap_err().to_string().contains("type id 9"));
    }

    #[test]
    fn version_3_item_sizes_are_read_as_ctranslate2_reads_them() {
        let mut f = File::default();
        f.u32(3).string("TransformerSpec").u32(1).u32(2);
        f.string("w").u8(1).u32(2).u8(4).u32(2);
        f.bytes(&1.5f32.to_le_bytes()).bytes(&(-2.0f32).to_le_bytes());
        f.string("q").u8(1).u32(1).u8(2).u32(1).bytes(&(-3i16).to_le_bytes());
        f.u32(0);
        let m = read(&f.0[..]).unwrap();
        assert_eq!(m.variables[0].to_f32(), [1.5, -2.0]);
        assert_eq!((m.variables[1].dtype, m.variables[1].to_f32()), (DType::I16, vec![-3.0]));
    }
}
