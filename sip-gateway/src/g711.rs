//! G.711 audio: 16-bit linear PCM to 8-bit μ-law (PCMU) or A-law (PCMA) codes and back.
//!
//! Every call leg of hotline carries G.711 at 8 kHz, so this is where samples change form: RTP
//! payloads are decoded here before recording, transcription and DTMF detection, and prompts are
//! encoded here before they are sent. [`Codec`] is the SDP/RTP-facing handle; the four `*_encode`
//! and `*_decode` functions are the per-sample primitives underneath it.
//!
//! *Invariant:* sans-IO and allocation-free per sample. Nothing here touches a socket, a file or a
//! clock; the slice methods on [`Codec`] append to a buffer the caller owns.
//!
//! Numeric conventions are those of the ITU-T G.191 reference software (`g711.c`):
//!
//! - Samples are 16-bit and left-justified. A-law quantizes the top 13 bits, μ-law the top 14 bits;
//!   decoders return the G.711 reconstruction level scaled back to 16 bits (A-law spans ±32256,
//!   μ-law ±32124).
//! - A negative sample's magnitude is its one's complement (`!x`), so `-1` lands in the smallest
//!   negative step just as `0` lands in the smallest positive one. Sun's widely copied
//!   `linear2ulaw` uses the two's complement instead, which puts some negative inputs one step
//!   further from zero (for example `-4` becomes `0x7E` there and `0x7F` here). Sun's
//!   `linear2alaw` and G.191 agree.
//! - μ-law has two codes for zero: `0xFF` (+0, what the encoder emits) and `0x7F` (-0, which it
//!   never emits but which decodes to 0 as well).
//!
//! Not here: resampling, packet-loss concealment, RTP framing.

/// G.191 adds this bias (in 14-bit units) to a μ-law magnitude so that every segment starts at a
/// power of two: segment `s` covers biased magnitudes `32 << s .. 64 << s`.
const ULAW_BIAS: u16 = 33;

/// Largest biased μ-law magnitude; inputs at or past the last decision level (8159) saturate here.
const ULAW_BIASED_MAX: u16 = 0x1FFF;

/// G.711 sends A-law codes with their even bits inverted.
const ALAW_EVEN_BITS: u8 = 0x55;

/// Encodes one 16-bit linear sample as a μ-law (PCMU) code, bit-exact with G.191 `ulaw_compress`.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    // μ-law sends codes inverted, with a clear sign bit meaning positive: `mask` inverts the
    // segment and interval bits and, for non-negative samples, sets the sign bit.
    let (magnitude, mask) = if sample >= 0 {
        (sample as u16, 0xFF)
    } else {
        (!sample as u16, 0x7F)
    };
    let biased = ((magnitude >> 2) + ULAW_BIAS).min(ULAW_BIASED_MAX);
    // `biased` is 6 to 13 bits long; its length picks the segment.
    let segment = (u16::BITS - 6 - biased.leading_zeros()) as u16;
    let interval = (biased >> (segment + 1)) & 0x0F;
    ((segment << 4) | interval) as u8 ^ mask
}

/// Decodes one μ-law (PCMU) code to a 16-bit linear sample, as G.191 `ulaw_expand` does.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Encodes one 16-bit linear sample as an A-law (PCMA) code, bit-exact with G.191 `alaw_compress`.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    let (magnitude, sign) = if sample >= 0 {
        (sample as u16, 0x80)
    } else {
        (!sample as u16, 0x00)
    };
    // Magnitude in units of the smallest A-law step (0..2048). Segment 0 covers 0..16 with the
    // same step as segment 1 (16..32); from there each segment doubles its span and its step.
    let level = magnitude >> 4;
    let (segment, interval) = if level < 16 {
        (0, level)
    } else {
        let segment = (u16::BITS - 4 - level.leading_zeros()) as u16;
        (segment, (level >> (segment - 1)) & 0x0F)
    };
    (sign | (segment << 4) | interval) as u8 ^ ALAW_EVEN_BITS
}

/// Decodes one A-law (PCMA) code to a 16-bit linear sample, as G.191 `alaw_expand` does.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Reconstruction level of every μ-law code, indexed by the code as sent.
static ULAW_DECODE: [i16; 256] = ulaw_decode_table();

/// Reconstruction level of every A-law code, indexed by the code as sent.
static ALAW_DECODE: [i16; 256] = alaw_decode_table();

const fn ulaw_decode_table() -> [i16; 256] {
    let mut table = [0; 256];
    let mut code = 0;
    while code < 256 {
        let bits = !(code as u8);
        let segment = (bits >> 4) & 0x07;
        let interval = (bits & 0x0F) as i32;
        // Middle of the interval in biased 14-bit units, unbiased, then scaled to 16 bits.
        let magnitude = ((((2 * interval + 1 + 32) << segment) - ULAW_BIAS as i32) * 4) as i16;
        table[code] = if bits & 0x80 == 0 {
            magnitude
        } else {
            -magnitude
        };
        code += 1;
    }
    table
}

const fn alaw_decode_table() -> [i16; 256] {
    let mut table = [0; 256];
    let mut code = 0;
    while code < 256 {
        let bits = code as u8 ^ ALAW_EVEN_BITS;
        let segment = (bits >> 4) & 0x07;
        let interval = (bits & 0x0F) as i32;
        // Middle of the interval in 13-bit units (segment 0 starts at 0, segment s at 16 << s),
        // then scaled to 16 bits.
        let magnitude = if segment == 0 {
            2 * interval + 1
        } else {
            (2 * interval + 1 + 32) << (segment - 1)
        } * 8;
        let magnitude = magnitude as i16;
        table[code] = if bits & 0x80 != 0 {
            magnitude
        } else {
            -magnitude
        };
        code += 1;
    }
    table
}

/// A G.711 variant as negotiated in SDP, so call setup and the media path name it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// μ-law: RTP static payload type 0, the North American and Japanese default.
    Pcmu,
    /// A-law: RTP static payload type 8, the default on European and Chinese networks.
    Pcma,
}

impl Codec {
    /// Both variants sample at 8 kHz (RFC 3551 §4.5.14); RTP timestamps advance by one per sample.
    pub const SAMPLE_RATE: u32 = 8000;

    /// Static RTP payload type (RFC 3551 Table 4), used in `m=` lines and RTP headers.
    pub const fn payload_type(&self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encoding name as written in an SDP `a=rtpmap` line.
    pub const fn name(&self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Recognizes a static payload type from an offer's `m=` line; `None` for anything but 0 and 8.
    pub const fn from_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// Recognizes an `a=rtpmap` encoding name; SDP encoding names are case-insensitive.
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Pcmu, Codec::Pcma]
            .into_iter()
            .find(|codec| codec.name().eq_ignore_ascii_case(name))
    }

    /// Encodes linear samples into an RTP payload, appending one byte per sample to `out`.
    pub fn encode(&self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            Codec::Pcmu => out.extend(pcm.iter().map(|&sample| ulaw_encode(sample))),
            Codec::Pcma => out.extend(pcm.iter().map(|&sample| alaw_encode(sample))),
        }
    }

    /// Decodes an RTP payload into linear samples, appending one sample per byte to `out`.
    pub fn decode(&self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Codec::Pcmu => out.extend(payload.iter().map(|&code| ulaw_decode(code))),
            Codec::Pcma => out.extend(payload.iter().map(|&code| alaw_decode(code))),
        }
    }

    /// The code for digital silence (the encoding of 0), to fill gaps and comfort-noise holes.
    pub const fn silence(&self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The expectations below are written from G.711's Tables 1 and 2 (decision values, steps,
    //! reconstruction values and character signals), not from the bit manipulation above.

    use super::*;

    /// A-law decode value of every code (index = code as sent on the wire), 16-bit scale.
    #[rustfmt::skip]
    const ALAW_TABLE: [i16; 256] = [
         -5504,  -5248,  -6016,  -5760,  -4480,  -4224,  -4992,  -4736, // 0x00
         -7552,  -7296,  -8064,  -7808,  -6528,  -6272,  -7040,  -6784, // 0x08
         -2752,  -2624,  -3008,  -2880,  -2240,  -2112,  -2496,  -2368, // 0x10
         -3776,  -3648,  -4032,  -3904,  -3264,  -3136,  -3520,  -3392, // 0x18
        -22016, -20992, -24064, -23040, -17920, -16896, -19968, -18944, // 0x20
        -30208, -29184, -32256, -31232, -26112, -25088, -28160, -27136, // 0x28
        -11008, -10496, -12032, -11520,  -8960,  -8448,  -9984,  -9472, // 0x30
        -15104, -14592, -16128, -15616, -13056, -12544, -14080, -13568, // 0x38
          -344,   -328,   -376,   -360,   -280,   -264,   -312,   -296, // 0x40
          -472,   -456,   -504,   -488,   -408,   -392,   -440,   -424, // 0x48
           -88,    -72,   -120,   -104,    -24,     -8,    -56,    -40, // 0x50
          -216,   -200,   -248,   -232,   -152,   -136,   -184,   -168, // 0x58
         -1376,  -1312,  -1504,  -1440,  -1120,  -1056,  -1248,  -1184, // 0x60
         -1888,  -1824,  -2016,  -1952,  -1632,  -1568,  -1760,  -1696, // 0x68
          -688,   -656,   -752,   -720,   -560,   -528,   -624,   -592, // 0x70
          -944,   -912,  -1008,   -976,   -816,   -784,   -880,   -848, // 0x78
          5504,   5248,   6016,   5760,   4480,   4224,   4992,   4736, // 0x80
          7552,   7296,   8064,   7808,   6528,   6272,   7040,   6784, // 0x88
          2752,   2624,   3008,   2880,   2240,   2112,   2496,   2368, // 0x90
          3776,   3648,   4032,   3904,   3264,   3136,   3520,   3392, // 0x98
         22016,  20992,  24064,  23040,  17920,  16896,  19968,  18944, // 0xA0
         30208,  29184,  32256,  31232,  26112,  25088,  28160,  27136, // 0xA8
         11008,  10496,  12032,  11520,   8960,   8448,   9984,   9472, // 0xB0
         15104,  14592,  16128,  15616,  13056,  12544,  14080,  13568, // 0xB8
           344,    328,    376,    360,    280,    264,    312,    296, // 0xC0
           472,    456,    504,    488,    408,    392,    440,    424, // 0xC8
            88,     72,    120,    104,     24,      8,     56,     40, // 0xD0
           216,    200,    248,    232,    152,    136,    184,    168, // 0xD8
          1376,   1312,   1504,   1440,   1120,   1056,   1248,   1184, // 0xE0
          1888,   1824,   2016,   1952,   1632,   1568,   1760,   1696, // 0xE8
           688,    656,    752,    720,    560,    528,    624,    592, // 0xF0
           944,    912,   1008,    976,    816,    784,    880,    848, // 0xF8
    ];

    /// μ-law decode value of every code (index = code as sent on the wire), 16-bit scale.
    #[rustfmt::skip]
    const ULAW_TABLE: [i16; 256] = [
        -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, // 0x00
        -23932, -22908, -21884, -20860, -19836, -18812, -17788, -16764, // 0x08
        -15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412, // 0x10
        -11900, -11388, -10876, -10364,  -9852,  -9340,  -8828,  -8316, // 0x18
         -7932,  -7676,  -7420,  -7164,  -6908,  -6652,  -6396,  -6140, // 0x20
         -5884,  -5628,  -5372,  -5116,  -4860,  -4604,  -4348,  -4092, // 0x28
         -3900,  -3772,  -3644,  -3516,  -3388,  -3260,  -3132,  -3004, // 0x30
         -2876,  -2748,  -2620,  -2492,  -2364,  -2236,  -2108,  -1980, // 0x38
         -1884,  -1820,  -1756,  -1692,  -1628,  -1564,  -1500,  -1436, // 0x40
         -1372,  -1308,  -1244,  -1180,  -1116,  -1052,   -988,   -924, // 0x48
          -876,   -844,   -812,   -780,   -748,   -716,   -684,   -652, // 0x50
          -620,   -588,   -556,   -524,   -492,   -460,   -428,   -396, // 0x58
          -372,   -356,   -340,   -324,   -308,   -292,   -276,   -260, // 0x60
          -244,   -228,   -212,   -196,   -180,   -164,   -148,   -132, // 0x68
          -120,   -112,   -104,    -96,    -88,    -80,    -72,    -64, // 0x70
           -56,    -48,    -40,    -32,    -24,    -16,     -8,      0, // 0x78
         32124,  31100,  30076,  29052,  28028,  27004,  25980,  24956, // 0x80
         23932,  22908,  21884,  20860,  19836,  18812,  17788,  16764, // 0x88
         15996,  15484,  14972,  14460,  13948,  13436,  12924,  12412, // 0x90
         11900,  11388,  10876,  10364,   9852,   9340,   8828,   8316, // 0x98
          7932,   7676,   7420,   7164,   6908,   6652,   6396,   6140, // 0xA0
          5884,   5628,   5372,   5116,   4860,   4604,   4348,   4092, // 0xA8
          3900,   3772,   3644,   3516,   3388,   3260,   3132,   3004, // 0xB0
          2876,   2748,   2620,   2492,   2364,   2236,   2108,   1980, // 0xB8
          1884,   1820,   1756,   1692,   1628,   1564,   1500,   1436, // 0xC0
          1372,   1308,   1244,   1180,   1116,   1052,    988,    924, // 0xC8
           876,    844,    812,    780,    748,    716,    684,    652, // 0xD0
           620,    588,    556,    524,    492,    460,    428,    396, // 0xD8
           372,    356,    340,    324,    308,    292,    276,    260, // 0xE0
           244,    228,    212,    196,    180,    164,    148,    132, // 0xE8
           120,    112,    104,     96,     88,     80,     72,     64, // 0xF0
            56,     48,     40,     32,     24,     16,      8,      0, // 0xF8
    ];

    type Encode = fn(i16) -> u8;
    type Decode = fn(u8) -> i16;

    /// One quantization interval of a G.711 table, in the table's own units (A-law: 4096 at
    /// overload; μ-law: 8159 at overload). `lower..upper` is bounded by two decision values.
    #[derive(Debug, Clone, Copy)]
    struct Cell {
        lower: i32,
        upper: i32,
        reconstruction: i32,
        /// Segment number minus one (G.711 numbers segments 1 to 8).
        segment: u8,
        /// Interval within the segment, 0 to 15.
        interval: u8,
    }

    /// A companding law as G.711 describes it.
    struct Law {
        /// The 128 magnitude cells, ascending.
        cells: Vec<Cell>,
        /// How many bits of a 16-bit sample the law ignores (A-law keeps 13, μ-law 14).
        dropped_bits: u32,
        /// 16-bit units per table unit.
        scale: i32,
        /// Character signal (the byte on the wire) for a sign and a cell.
        code: fn(positive: bool, cell: &Cell) -> u8,
    }

    impl Law {
        /// Table 1: segments 1 and 2 have step 2, then each segment doubles; overload at 4096.
        fn a() -> Law {
            let mut cells = Vec::new();
            let mut decision = 0;
            for segment in 0..8u8 {
                let step = if segment < 2 { 2 } else { 1 << segment };
                for interval in 0..16 {
                    cells.push(Cell {
                        lower: decision,
                        upper: decision + step,
                        reconstruction: decision + step / 2,
                        segment,
                        interval,
                    });
                    decision += step;
                }
            }
            assert_eq!(decision, 4096);
            Law {
                cells,
                dropped_bits: 3,
                scale: 8,
                // Sign bit 1 for positive values, then the even bits are inverted.
                code: |positive, cell| {
                    (u8::from(positive) << 7 | cell.segment << 4 | cell.interval) ^ 0x55
                },
            }
        }

        /// Table 2: the first cell is 0..1 with value 0, then steps of 2, 4, ... 256 from
        /// decision value 1; overload at 8159.
        fn mu() -> Law {
            let mut cells = vec![Cell {
                lower: 0,
                upper: 1,
                reconstruction: 0,
                segment: 0,
                interval: 0,
            }];
            let mut decision = 1;
            for segment in 0..8u8 {
                let step = 2 << segment;
                for interval in 0..16 {
                    if segment == 0 && interval == 0 {
                        continue;
                    }
                    cells.push(Cell {
                        lower: decision,
                        upper: decision + step,
                        reconstruction: decision + step / 2,
                        segment,
                        interval,
                    });
                    decision += step;
                }
            }
            assert_eq!(decision, 8159);
            Law {
                cells,
                dropped_bits: 2,
                scale: 4,
                // Sign bit 1 for positive values, then bits 2 to 8 are inverted.
                code: |positive, cell| {
                    u8::from(positive) << 7 | (0x7F ^ (cell.segment << 4 | cell.interval))
                },
            }
        }

        /// Largest decision value: inputs beyond it overload the coder.
        fn overload(&self) -> i32 {
            self.cells.last().unwrap().upper
        }

        /// Twice the value, in table units, that a 16-bit sample stands for. The law keeps the
        /// top 13 or 14 bits; the kept integer `n` covers the input cell `n..n+1`, so it stands
        /// for `n + 1/2`. Doubling keeps this integral, and as decision values are integers the
        /// result never sits on one.
        fn twice_value(&self, sample: i16) -> i32 {
            2 * (i32::from(sample) >> self.dropped_bits) + 1
        }

        /// Slow reference coder: the cell whose decision values enclose the input, saturating
        /// past overload. This is what G.191 implements; note it is not always the nearest
        /// reconstruction value (see `encoder_follows_decision_values_not_nearest_level`).
        fn encode(&self, sample: i16) -> u8 {
            let twice = self.twice_value(sample);
            let magnitude = twice.abs();
            let cell = self
                .cells
                .iter()
                .find(|cell| magnitude < 2 * cell.upper)
                .unwrap_or_else(|| self.cells.last().unwrap());
            assert!(
                2 * cell.lower <= magnitude || magnitude > 2 * self.overload(),
                "cells must tile 0..overload"
            );
            (self.code)(twice > 0, cell)
        }

        /// Reconstruction value of every code, on the 16-bit scale, from the cells.
        fn decode_table(&self) -> [Option<i16>; 256] {
            let mut table = [None; 256];
            for cell in &self.cells {
                for positive in [false, true] {
                    let code = (self.code)(positive, cell);
                    assert!(
                        table[usize::from(code)].is_none(),
                        "code {code:#04X} used twice"
                    );
                    let value = cell.reconstruction * self.scale;
                    let value = if positive { value } else { -value };
                    table[usize::from(code)] = Some(i16::try_from(value).unwrap());
                }
            }
            table
        }

        /// Every code ordered by the signed value it stands for: largest negative magnitude
        /// first, largest positive last.
        fn codes_in_signed_order(&self) -> Vec<u8> {
            let negative = self.cells.iter().rev().map(|cell| (self.code)(false, cell));
            let positive = self.cells.iter().map(|cell| (self.code)(true, cell));
            negative.chain(positive).collect()
        }

        /// The cell a code stands for, whatever its sign.
        fn cell_of(&self, code: u8) -> &Cell {
            self.cells
                .iter()
                .find(|cell| (self.code)(true, cell) == code || (self.code)(false, cell) == code)
                .unwrap()
        }

        /// Half the step of the segment a code belongs to, on the 16-bit scale.
        fn half_step(&self, code: u8) -> i32 {
            let cell = self.cell_of(code);
            let segment_step = self
                .cells
                .iter()
                .filter(|other| other.segment == cell.segment)
                .map(|other| other.upper - other.lower)
                .max()
                .unwrap();
            segment_step * self.scale / 2
        }
    }

    fn every_sample() -> impl Iterator<Item = i16> {
        i16::MIN..=i16::MAX
    }

    fn every_code() -> impl Iterator<Item = u8> {
        0..=u8::MAX
    }

    #[test]
    fn alaw_decodes_every_code_as_table_1_says() {
        for code in every_code() {
            assert_eq!(
                alaw_decode(code),
                ALAW_TABLE[usize::from(code)],
                "code {code:#04X}"
            );
        }
    }

    #[test]
    fn ulaw_decodes_every_code_as_table_2_says() {
        for code in every_code() {
            assert_eq!(
                ulaw_decode(code),
                ULAW_TABLE[usize::from(code)],
                "code {code:#04X}"
            );
        }
    }

    #[test]
    fn literal_tables_agree_with_the_standards_cells() {
        for (law, literal) in [(Law::a(), ALAW_TABLE), (Law::mu(), ULAW_TABLE)] {
            let derived = law.decode_table();
            for code in every_code() {
                assert_eq!(derived[usize::from(code)], Some(literal[usize::from(code)]));
            }
        }
    }

    #[test]
    fn decode_gives_published_values() {
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0x7E), -8);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
    }

    #[test]
    fn alaw_encodes_every_sample_as_the_decision_values_say() {
        let law = Law::a();
        for sample in every_sample() {
            assert_eq!(alaw_encode(sample), law.encode(sample), "sample {sample}");
        }
    }

    #[test]
    fn ulaw_encodes_every_sample_as_the_decision_values_say() {
        let law = Law::mu();
        for sample in every_sample() {
            assert_eq!(ulaw_encode(sample), law.encode(sample), "sample {sample}");
        }
    }

    #[test]
    fn encode_gives_g191_values_at_the_edges() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(3), 0xFF);
        assert_eq!(ulaw_encode(4), 0xFE);
        // One's complement magnitude: -1 to -4 share the cell of +0 to +3. Sun's linear2ulaw
        // would send -1 as 0x7F but -4 as 0x7E.
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(-4), 0x7F);
        assert_eq!(ulaw_encode(-5), 0x7E);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(15), 0xD5);
        assert_eq!(alaw_encode(16), 0xD4);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn encoder_follows_decision_values_not_nearest_level() {
        // A-law 1024 is the decision value 128 between segments 4 (step 4) and 5 (step 8).
        // The nearest reconstruction value is 1008, but Table 1 puts 1024 in the cell 1024..1088,
        // reconstructed as 1056.
        assert_eq!(alaw_decode(alaw_encode(1024)), 1056);
        assert_eq!(alaw_decode(alaw_encode(1023)), 1008);
    }

    #[test]
    fn alaw_round_trips_every_code() {
        for code in every_code() {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "code {code:#04X}");
        }
    }

    #[test]
    fn ulaw_round_trips_every_code_but_negative_zero() {
        for code in every_code().filter(|&code| code != 0x7F) {
            assert_eq!(ulaw_encode(ulaw_decode(code)), code, "code {code:#04X}");
        }
        // -0 decodes to 0, which the encoder sends as +0.
        assert_eq!(ulaw_encode(ulaw_decode(0x7F)), 0xFF);
    }

    #[test]
    fn quantization_error_is_at_most_half_a_step_of_the_segment() {
        let laws: [(Law, Encode, Decode); 2] = [
            (Law::a(), alaw_encode, alaw_decode),
            (Law::mu(), ulaw_encode, ulaw_decode),
        ];
        for (law, encode, decode) in laws {
            let mut worst = [0; 8];
            let mut bound = [0; 8];
            for sample in every_sample() {
                if law.twice_value(sample).abs() > 2 * law.overload() {
                    continue;
                }
                let code = encode(sample);
                let error = (i32::from(decode(code)) - i32::from(sample)).abs();
                let half_step = law.half_step(code);
                assert!(
                    error <= half_step,
                    "sample {sample}: error {error} > {half_step}"
                );
                let segment = usize::from(law.cell_of(code).segment);
                worst[segment] = worst[segment].max(error);
                bound[segment] = half_step;
            }
            // The bound is reached in every segment, so it is the right one.
            assert_eq!(worst, bound);
        }
        // Spelled out: A-law half steps 8, 8, 16, ..., 512; μ-law 4, 8, ..., 512.
        assert_eq!(Law::a().half_step(0xD5), 8);
        assert_eq!(Law::a().half_step(0xAA), 512);
        assert_eq!(Law::mu().half_step(0xFF), 4);
        assert_eq!(Law::mu().half_step(0x80), 512);
    }

    #[test]
    fn ulaw_saturates_past_overload() {
        // 8159 * 4 = 32636 is the last decision value on the 16-bit scale.
        for sample in 32636..=i16::MAX {
            assert_eq!(ulaw_encode(sample), 0x80, "sample {sample}");
            assert_eq!(ulaw_encode(!sample), 0x00, "sample {}", !sample);
        }
        // The top cell itself starts at 7903 * 4 = 31612; past overload the error keeps growing.
        assert_eq!(ulaw_encode(31611), 0x81);
        assert_eq!(ulaw_encode(31612), 0x80);
        assert_eq!(i32::from(i16::MAX) - i32::from(ulaw_decode(0x80)), 643);
    }

    #[test]
    fn decode_increases_with_the_signed_value_of_the_code() {
        let codes = Law::a().codes_in_signed_order();
        for pair in codes.windows(2) {
            assert!(
                alaw_decode(pair[0]) < alaw_decode(pair[1]),
                "codes {pair:02X?}"
            );
        }
        let codes = Law::mu().codes_in_signed_order();
        for pair in codes.windows(2) {
            if pair == [0x7F, 0xFF] {
                assert_eq!(ulaw_decode(0x7F), ulaw_decode(0xFF));
            } else {
                assert!(
                    ulaw_decode(pair[0]) < ulaw_decode(pair[1]),
                    "codes {pair:02X?}"
                );
            }
        }
    }

    #[test]
    fn coding_never_reverses_the_order_of_samples() {
        let mut previous = (i16::MIN, i16::MIN);
        for sample in every_sample() {
            let coded = (
                alaw_decode(alaw_encode(sample)),
                ulaw_decode(ulaw_encode(sample)),
            );
            assert!(
                coded.0 >= previous.0 && coded.1 >= previous.1,
                "sample {sample}"
            );
            previous = coded;
        }
    }

    #[test]
    fn codecs_carry_their_rtp_payload_types_and_sdp_names() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::Pcmu.name(), "PCMU");
        assert_eq!(Codec::Pcma.name(), "PCMA");
        assert_eq!(Codec::SAMPLE_RATE, 8000);
        for codec in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(Codec::from_payload_type(codec.payload_type()), Some(codec));
            assert_eq!(Codec::from_name(codec.name()), Some(codec));
        }
    }

    #[test]
    fn sdp_names_are_matched_ignoring_case() {
        assert_eq!(Codec::from_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name("PcmA"), Some(Codec::Pcma));
    }

    #[test]
    fn other_codecs_are_not_recognized() {
        for payload_type in (0..=u8::MAX).filter(|&pt| pt != 0 && pt != 8) {
            assert_eq!(
                Codec::from_payload_type(payload_type),
                None,
                "type {payload_type}"
            );
        }
        for name in ["G722", "telephone-event", "PCM", "PCMU ", "", "opus"] {
            assert_eq!(Codec::from_name(name), None, "name {name:?}");
        }
    }

    #[test]
    fn codec_slices_match_the_sample_functions_and_append() {
        let pcm: Vec<i16> = every_sample().step_by(97).collect();
        let payload: Vec<u8> = every_code().collect();
        let laws: [(Codec, Encode, Decode); 2] = [
            (Codec::Pcmu, ulaw_encode, ulaw_decode),
            (Codec::Pcma, alaw_encode, alaw_decode),
        ];
        for (codec, encode, decode) in laws {
            // An RTP header already in the buffer must survive.
            let mut encoded = vec![0x80, 0x00];
            codec.encode(&pcm, &mut encoded);
            assert_eq!(encoded[..2], [0x80, 0x00]);
            assert!(
                encoded[2..]
                    .iter()
                    .copied()
                    .eq(pcm.iter().map(|&s| encode(s)))
            );

            let mut decoded = vec![i16::MIN];
            codec.decode(&payload, &mut decoded);
            assert_eq!(decoded[0], i16::MIN);
            assert!(
                decoded[1..]
                    .iter()
                    .copied()
                    .eq(payload.iter().map(|&c| decode(c)))
            );
        }
    }

    #[test]
    fn silence_is_the_code_for_zero() {
        assert_eq!(Codec::Pcmu.silence(), 0xFF);
        assert_eq!(Codec::Pcma.silence(), 0xD5);
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut payload = Vec::new();
            codec.encode(&[0; 160], &mut payload);
            assert_eq!(payload, [codec.silence(); 160]);
        }
    }

    /// Signal-to-noise ratio in dB of a full-scale tone after one encode/decode pass.
    fn tone_snr(codec: Codec) -> f64 {
        // 1004 Hz rather than 1000 Hz, as in telephony test tones: at 8 kHz a 1000 Hz tone
        // repeats every 8 samples and would only exercise 5 levels.
        let pcm: Vec<i16> = (0..Codec::SAMPLE_RATE)
            .map(|n| {
                let phase = std::f64::consts::TAU * 1004.0 * f64::from(n);
                (f64::from(i16::MAX) * (phase / f64::from(Codec::SAMPLE_RATE)).sin()).round() as i16
            })
            .collect();
        let mut payload = Vec::new();
        codec.encode(&pcm, &mut payload);
        let mut decoded = Vec::new();
        codec.decode(&payload, &mut decoded);
        let (signal, noise) = pcm
            .iter()
            .zip(&decoded)
            .fold((0.0, 0.0), |(s, n), (&x, &y)| {
                let error = f64::from(x) - f64::from(y);
                (s + f64::from(x).powi(2), n + error.powi(2))
            });
        10.0 * (signal / noise).log10()
    }

    #[test]
    fn full_scale_tone_survives_coding_above_37_db_snr() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let snr = tone_snr(codec);
            assert!(snr > 37.0, "{codec:?}: {snr:.2} dB");
        }
    }
}
