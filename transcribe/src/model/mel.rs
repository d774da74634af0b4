//! The mel filter bank whisper was trained with, which whisper.cpp reads from the model file:
//! librosa's `filters.mel(sr=16000, n_fft=400, n_mels=80)` (Slaney mel scale, `htk=False`;
//! Slaney area normalisation, `norm='slaney'`), the array OpenAI ships as `mel_filters.npz`.
//!
//! The arithmetic follows librosa step by step (f64 throughout, the triangle rounded to f32
//! before it is normalised, as librosa's float32 array is), so the bank is the same to the bit.

/// Sample rate whisper hears.
pub const SAMPLE_RATE: u32 = 16_000;
/// Window of whisper's short-time Fourier transform (25 ms).
pub const N_FFT: usize = 400;

/// The Slaney scale: linear at 200/3 Hz per mel below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to mel (librosa `hz_to_mel`, `htk=False`).
pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / logstep()
    } else {
        hz / F_SP
    }
}

/// Mel to Hz (librosa `mel_to_hz`, `htk=False`).
pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// The bank for `n_mels` bands over `n_fft / 2 + 1` frequency bins from 0 Hz to Nyquist:
/// `n_mels × (n_fft / 2 + 1)` weights, row-major (one row a band).
pub fn filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    if n_fft == 0 || n_mels == 0 {
        return Vec::new();
    }
    // numpy.fft.rfftfreq(n_fft, 1 / sr): k * (1 / (n_fft * (1 / sr))).
    let step_hz = 1.0 / (n_fft as f64 * (1.0 / f64::from(sample_rate)));
    let fft: Vec<f64> = (0..bins).map(|k| k as f64 * step_hz).collect();
    // numpy.linspace(mel(0), mel(sr / 2), n_mels + 2), then back to Hz.
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(f64::from(sample_rate) / 2.0));
    let points = n_mels + 2;
    let step = (hi - lo) / (points - 1) as f64;
    let edges: Vec<f64> = (0..points)
        .map(|i| mel_to_hz(if i == points - 1 { hi } else { i as f64 * step + lo }))
        .collect();
    let mut out = Vec::with_capacity(n_mels * bins);
    for m in 0..n_mels {
        let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
        let enorm = 2.0 / (right - left);
        for &f in &fft {
            let lower = -(left - f) / (centre - left);
            let upper = (right - f) / (right - centre);
            let triangle = lower.min(upper).max(0.0) as f32;
            out.push((f64::from(triangle) * enorm) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librosa's bank (`filters.mel(sr=16000, n_fft=400, n_mels=80)`): (band, bin) → value, as
    /// the f32 bits.
    const KNOWN: [(usize, usize, u32); 9] = [
        (0, 0, 0x0000_0000),
        (0, 1, 0x3ccb_aca4),  // 0.024862595
        (0, 2, 0x0000_0000),
        (1, 2, 0x3cbb_5d95),  // 0.022871772
        (1, 3, 0x0000_0000),
        (10, 10, 0x3ca3_168f), // 0.019908218
        (40, 43, 0x3c71_6d72), // 0.014735566
        (79, 190, 0x3b12_47ab), // 0.002232055
        (79, 200, 0x0000_0000),
    ];

    #[test]
    fn the_bank_is_librosas_to_the_bit() {
        let f = filters(SAMPLE_RATE, N_FFT, 80);
        assert_eq!(f.len(), 80 * 201);
        for (band, bin, bits) in KNOWN {
            let got = f[band * 201 + bin];
            assert_eq!(got.to_bits(), bits, "band {band} bin {bin}: {got} vs {}", f32::from_bits(bits));
        }
    }

    #[test]
    fn each_band_is_a_triangle_of_the_slaney_area() {
        let f = filters(SAMPLE_RATE, N_FFT, 80);
        let peak = |band: usize| {
            let row = &f[band * 201..(band + 1) * 201];
            row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k)
        };
        // Band centres: 1 bin (40 Hz) apart in the linear part, then ever wider.
        assert_eq!([peak(0), peak(1), peak(40), peak(79)], [Some(1), Some(2), Some(43), Some(192)]);
        let sum = |band: usize| f[band * 201..(band + 1) * 201].iter().map(|&x| f64::from(x)).sum::<f64>();
        // A triangle of height 2 / width integrates to 1 per Hz: sampled every 40 Hz, its bins
        // add up to about 1/40 (less at the top, where the last band meets Nyquist).
        assert!((sum(0) - 0.024_862_595).abs() < 1e-8, "{}", sum(0));
        assert!((sum(40) - 0.026_664_861).abs() < 1e-8, "{}", sum(40));
        assert!((sum(79) - 0.024_925_34).abs() < 1e-8, "{}", sum(79));
        assert!(f.iter().all(|&x| (0.0..0.05).contains(&x)));
    }

    #[test]
    fn the_scale_is_linear_below_1khz_and_continuous_at_it() {
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(8000.0) - 45.245_640_471_924_965).abs() < 1e-9);
        for f in [10.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9);
        }
    }
}
