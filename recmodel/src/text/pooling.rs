//! One vector per text from the encoder's token states.

use super::bert::HiddenStates;
use super::config::Pooling;

/// Writes the pooled vector of sequence `b` into `out` (`hidden_size`
/// long), then scales it to unit L2 norm when `normalize` is set.
///
/// Normalisation divides by `max(norm, 1e-12)`, as PyTorch's
/// `F.normalize` does, so a zero vector stays zero.
///
/// # Panics
/// Panics if `b` is out of range or `out` has the wrong length.
#[track_caller]
pub fn pool_into(states: &HiddenStates<'_>, b: usize, pooling: Pooling, normalize: bool, out: &mut [f32]) {
    let h = states.hidden_size();
    assert_eq!(out.len(), h, "pool_into: output length differs from hidden_size");
    let tokens = states.sequence(b);

    match pooling {
        Pooling::Cls => out.copy_from_slice(&tokens[..h]),
        Pooling::Mean => {
            out.fill(0.0);
            for row in tokens.chunks_exact(h) {
                out.iter_mut().zip(row).for_each(|(o, x)| *o += x);
            }
            let inv = 1.0 / states.len(b) as f32;
            out.iter_mut().for_each(|o| *o *= inv);
        }
        Pooling::Max => {
            out.fill(f32::NEG_INFINITY);
            for row in tokens.chunks_exact(h) {
                out.iter_mut().zip(row).for_each(|(o, &x)| *o = o.max(x));
            }
        }
    }

    if normalize {
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        let inv = 1.0 / norm.max(1e-12);
        out.iter_mut().for_each(|o| *o *= inv);
    }
}
