//! Row and element kernels of the encoder's inference pass: activations,
//! softmax and LayerNorm on plain `f32` slices.
//!
//! `exp` and `erf` are branch-free polynomial approximations, so the loops
//! over a slice compile to SIMD code. On x86-64 each slice kernel also has
//! copies compiled for AVX-512 and for AVX2 with FMA, chosen at run time. The standard
//! library's `exp` and `libm::erff` do not vectorize, and at several
//! nanoseconds per call they would take longer than the matrix products of
//! the feed-forward layers.

use super::config::Activation;

/// `e^x` with a relative error below 2e-7 for `x` in `[-87.3, 88]`;
/// smaller inputs give 0 and larger ones clamp to `e^88`.
///
/// Cephes' `expf` method: `x = n ln 2 + r` with `|r| <= ln 2 / 2`, a degree-6
/// polynomial for `e^r`, and `2^n` built from the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split into a part exact in f32 and the rest.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to the nearest integer, which then sits in
    // the low mantissa bits: no branch and no float-to-int conversion.
    const ROUND: f32 = 12_582_912.0;

    let underflow = x < -87.3;
    let x = if x > 88.0 { 88.0 } else { x };
    let x = if underflow { -87.3 } else { x };
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // 2^n: the exponent field n + 127, from n in the bits of `shifted`.
    let exponent = shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    let scale = f32::from_bits(exponent << 23);
    if underflow {
        0.0
    } else {
        er * scale
    }
}

/// The error function with an absolute error below 5e-7.
///
/// Abramowitz and Stegun's formula 7.1.26, the one PyTorch's vectorized CPU
/// `erf` evaluates: `1 - t (a1 + t (a2 + ...)) e^{-x^2}` with
/// `t = 1 / (1 + p |x|)`, and the sign of `x` restored. The formula's own
/// error is 1.5e-7. The rest is f32 rounding in the subtraction from 1,
/// largest for `|x|` near 0, where GELU multiplies it by `x / 2`.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;

    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    // tanh(u) = 1 - 2 / (e^{2u} + 1), which stays finite for large |u|.
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    let tanh = 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
    0.5 * x * (1.0 + tanh)
}

/// Lanes of the partial sums below. A reduction into one accumulator is a
/// chain of dependent additions that the compiler may not reorder, so it
/// runs at one addition per adder latency. Sixteen independent lanes
/// vectorize.
const LANES: usize = 16;

/// `sum(term(x))` over `xs`.
#[inline(always)]
fn lane_sum(xs: &[f32], term: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += term(x);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&x| term(x)).sum::<f32>()
}

#[inline(always)]
fn lane_max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter().chain(rest).copied().fold(f32::NEG_INFINITY, f32::max)
}

/// Defines `$name(args)` that runs `$body` compiled for AVX-512 or for
/// AVX2 + FMA when the processor has them, and for the baseline target
/// otherwise.
macro_rules! dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn kernel($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    kernel($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    kernel($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the processor supports the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the processor supports the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            kernel($($arg),*)
        }
    };
}

/// Applies `activation` to every element of `xs`. It is inlined, so it runs
/// with the target features of its caller.
#[inline(always)]
pub(crate) fn activate_in_place(xs: &mut [f32], activation: Activation) {
    match activation {
        Activation::Gelu => xs.iter_mut().for_each(|x| *x = gelu(*x)),
        Activation::GeluTanh => xs.iter_mut().for_each(|x| *x = gelu_tanh(*x)),
        Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
    }
}

dispatch! {
    /// `x = activation(x + bias)` for every row of `xs`, whose rows are
    /// `bias.len()` wide.
    pub fn add_bias_activate(xs: &mut [f32], bias: &[f32], activation: Activation) {
        for row in xs.chunks_exact_mut(bias.len()) {
            match activation {
                Activation::Gelu => row.iter_mut().zip(bias).for_each(|(x, b)| *x = gelu(*x + b)),
                Activation::GeluTanh => row.iter_mut().zip(bias).for_each(|(x, b)| *x = gelu_tanh(*x + b)),
                Activation::Relu => row.iter_mut().zip(bias).for_each(|(x, b)| *x = (*x + b).max(0.0)),
            }
        }
    }
}

dispatch! {
    /// Softmax of one row, in place. A row of length 0 is left as it is.
    pub fn softmax(row: &mut [f32]) {
        let max = lane_max(row);
        row.iter_mut().for_each(|x| *x = exp(*x - max));
        let inv = 1.0 / lane_sum(row, |x| x);
        row.iter_mut().for_each(|x| *x *= inv);
    }
}

dispatch! {
    /// `row = LayerNorm(row + residual) * weight + bias` with the biased
    /// variance, as PyTorch computes it. Pass an empty `residual` to
    /// normalise `row` alone.
    pub fn add_layer_norm(row: &mut [f32], residual: &[f32], weight: &[f32], bias: &[f32], eps: f32) {
        if !residual.is_empty() {
            row.iter_mut().zip(residual).for_each(|(x, r)| *x += r);
        }
        let d = row.len() as f32;
        let mean = lane_sum(row, |x| x) / d;
        let var = lane_sum(row, |x| (x - mean) * (x - mean)) / d;
        let rstd = 1.0 / (var + eps).sqrt();
        for ((x, w), b) in row.iter_mut().zip(weight).zip(bias) {
            *x = (*x - mean) * rstd * w + b;
        }
    }
}

/// Sixteen-lane versions of the element kernels, for callers that are
/// already compiled for AVX-512 and hold their data in registers.
///
/// The scalar loops above leave the division of [`erf`] as a `vdivps`,
/// which alone takes about as long as the rest of GELU. Here it is a
/// reciprocal estimate refined by one Newton step, which is accurate to
/// about 1 ulp, and GELU costs about a third as much.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::Activation;

    /// [`super::exp`] on 16 lanes; NaN stays NaN.
    ///
    /// # Safety
    /// The processor must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn exp(x: __m512) -> __m512 {
        const ROUND: f32 = 12_582_912.0;
        // The constant goes first: min and max return their second operand
        // when either is NaN.
        let underflow = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(-87.3));
        let x = _mm512_max_ps(_mm512_set1_ps(-87.3), _mm512_min_ps(_mm512_set1_ps(88.0), x));
        let shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E), _mm512_set1_ps(ROUND));
        let n = _mm512_sub_ps(shifted, _mm512_set1_ps(ROUND));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let er = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
        let bias = _mm512_set1_epi32(127 - ROUND.to_bits() as i32);
        let exponent = _mm512_slli_epi32::<23>(_mm512_add_epi32(_mm512_castps_si512(shifted), bias));
        _mm512_maskz_mul_ps(!underflow, er, _mm512_castsi512_ps(exponent))
    }

    /// [`super::erf`] on 16 lanes.
    ///
    /// # Safety
    /// The processor must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn erf(x: __m512) -> __m512 {
        let one = _mm512_set1_ps(1.0);
        // erf is 1 to f32 precision well before |x| = 10; the bound keeps
        // the reciprocal finite for infinite inputs.
        let a = _mm512_min_ps(_mm512_set1_ps(10.0), _mm512_abs_ps(x));
        let d = _mm512_fmadd_ps(_mm512_set1_ps(0.327_591_1), a, one);
        let t = _mm512_rcp14_ps(d);
        let t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0)));
        let mut poly = _mm512_set1_ps(1.061_405_4);
        for c in [-1.453_152, 1.421_413_7, -0.284_496_74, 0.254_829_6] {
            poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(c));
        }
        let poly = _mm512_mul_ps(poly, t);
        let y = _mm512_fnmadd_ps(poly, exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a))), one);
        // Copy the sign bit of x onto y (ternary-logic table 0xd8 selects
        // bits of the second operand where the third is set).
        let sign = _mm512_set1_epi32(i32::MIN);
        _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0xd8>(_mm512_castps_si512(y), _mm512_castps_si512(x), sign))
    }

    /// `x * Phi(x)`, the GELU of [`super::gelu`], on 16 lanes.
    ///
    /// # Safety
    /// The processor must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn gelu(x: __m512) -> __m512 {
        let half_x = _mm512_mul_ps(_mm512_set1_ps(0.5), x);
        let e = erf(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2)));
        _mm512_fmadd_ps(half_x, e, half_x)
    }

    /// Applies `activation` to `xs` in place: GELU here, the others
    /// through [`super::activate_in_place`].
    ///
    /// # Safety
    /// The processor must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn activate_in_place(xs: &mut [f32], activation: Activation) {
        if activation != Activation::Gelu {
            super::activate_in_place(xs, activation);
            return;
        }
        let mut chunks = xs.chunks_exact_mut(16);
        for chunk in &mut chunks {
            let v = _mm512_loadu_ps(chunk.as_ptr());
            _mm512_storeu_ps(chunk.as_mut_ptr(), gelu(v));
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mask = ((1u32 << rest.len()) - 1) as __mmask16;
            let v = _mm512_maskz_loadu_ps(mask, rest.as_ptr());
            _mm512_mask_storeu_ps(rest.as_mut_ptr(), mask, gelu(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0.0f32;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let relative = (exp(x) - x.exp()).abs() / x.exp();
            worst = worst.max(relative);
        }
        assert!(worst < 2e-7, "max relative error {worst}");
    }

    #[test]
    fn exp_underflows_to_zero() {
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0.0f32;
        for i in -6000..=6000 {
            let x = i as f32 * 0.001;
            worst = worst.max((erf(x) - libm_erf(x)).abs());
        }
        assert!(worst < 5e-7, "max absolute error {worst}");
    }

    // erf(x) to double precision from its Taylor series (|x| <= 1) and the
    // continued fraction of erfc (|x| > 1), independent of the code above.
    fn libm_erf(x: f32) -> f32 {
        let x = x as f64;
        let a = x.abs();
        let value = if a <= 1.0 {
            let mut term = a;
            let mut sum = a;
            for n in 1..40 {
                term *= -a * a / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut fraction = 0.0;
            for n in (1..200).rev() {
                fraction = (n as f64 / 2.0) / (a + fraction);
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + fraction)
        };
        (value.copysign(x)) as f32
    }

    #[test]
    fn gelu_reference_values() {
        // GELU(x) = x * Phi(x); Phi(1) = 0.841344746, Phi(-1) = 0.158655254,
        // Phi(2) = 0.977249868.
        let mut xs = [1.0, -1.0, 2.0, 0.0];
        add_bias_activate(&mut xs, &[0.0; 4], Activation::Gelu);
        assert!((xs[0] - 0.841_344_7).abs() < 1e-6);
        assert!((xs[1] + 0.158_655_25).abs() < 1e-6);
        assert!((xs[2] - 1.954_499_7).abs() < 1e-6);
        assert_eq!(xs[3], 0.0);
    }

    #[cfg(target_arch = "x86_64")]
    fn lanes(f: unsafe fn(std::arch::x86_64::__m512) -> std::arch::x86_64::__m512, xs: &[f32; 16]) -> [f32; 16] {
        use std::arch::x86_64::*;
        let mut out = [0.0f32; 16];
        // SAFETY: the callers check for AVX-512F first.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), f(_mm512_loadu_ps(xs.as_ptr()))) };
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_kernels_match_scalar_ones() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("skipping: this processor has no AVX-512F");
            return;
        }
        let (mut exp_worst, mut erf_worst, mut gelu_worst) = (0.0f32, 0.0f32, 0.0f32);
        for start in (-9000..9000).step_by(16) {
            let xs: [f32; 16] = std::array::from_fn(|k| (start + k as i32) as f32 * 0.01);
            let (e, r, g) = (lanes(avx512::exp, &xs), lanes(avx512::erf, &xs), lanes(avx512::gelu, &xs));
            for k in 0..16 {
                let x = xs[k];
                if (-87.0..=88.0).contains(&x) {
                    exp_worst = exp_worst.max((e[k] - x.exp()).abs() / x.exp());
                }
                erf_worst = erf_worst.max((r[k] - libm_erf(x)).abs());
                let phi = 0.5 * (1.0 + libm_erf(x * std::f32::consts::FRAC_1_SQRT_2) as f64);
                gelu_worst = gelu_worst.max(((g[k] as f64 - x as f64 * phi).abs() / (1.0 + (x as f64).abs())) as f32);
            }
        }
        assert!(exp_worst < 2e-7, "exp: max relative error {exp_worst}");
        assert!(erf_worst < 5e-7, "erf: max absolute error {erf_worst}");
        assert!(gelu_worst < 5e-7, "gelu: max error {gelu_worst} relative to 1 + |x|");

        let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -100.0, 0.0, -0.0, 1e-30, 89.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let (e, g) = (lanes(avx512::exp, &special), lanes(avx512::gelu, &special));
        assert!(e[0].is_nan(), "exp(NaN) must stay NaN");
        assert!(g[0].is_nan(), "gelu(NaN) must stay NaN");
        assert_eq!((e[1], e[2], e[3], e[4]), (88f32.exp(), 0.0, 0.0, 1.0));
        // GELU(-inf) is -inf * 0, NaN, in the scalar kernel as in the vector one.
        assert_eq!((g[1], g[3], g[4]), (f32::INFINITY, 0.0, 0.0));
        assert!(g[2].is_nan());
        assert!(gelu(f32::NEG_INFINITY).is_nan());
        assert_eq!(lanes(avx512::erf, &special)[1], 1.0);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut row = [1.0, 2.0, 3.0, -1e9];
        softmax(&mut row);
        // e^0 / (e^-2 + e^-1 + e^0) for the largest entry.
        let expected = 1.0 / ((-2.0f32).exp() + (-1.0f32).exp() + 1.0);
        assert!((row[2] - expected).abs() < 1e-6);
        assert_eq!(row[3], 0.0);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn layer_norm_unit_weights() {
        // x + r = [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
        let mut row = [0.0, 1.0, 2.0, 3.0];
        add_layer_norm(&mut row, &[1.0; 4], &[1.0; 4], &[0.0; 4], 0.0);
        let rstd = 1.0 / 1.25f32.sqrt();
        assert!((row[0] + 1.5 * rstd).abs() < 1e-6);
        assert!((row[3] - 1.5 * rstd).abs() < 1e-6);
    }
}
