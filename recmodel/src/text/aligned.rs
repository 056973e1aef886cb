//! `f32` buffers that start on a cache-line boundary.

/// A growable, zero-initialised `f32` buffer whose first element sits on a
/// 64-byte boundary.
///
/// The allocator starts a large `Vec<f32>` 16 bytes past a page boundary,
/// so an AVX-512 register loaded from a row whose width is a multiple of
/// 16 floats straddles two cache lines and touches both. The kernels of
/// the encoder read their weights and activations a register at a time,
/// and on aligned buffers `mporec embed` on Scientific ran in 17.2 s instead of
/// 19.1 s.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlignedFloats {
    lines: Vec<CacheLine>,
    len: usize,
}

#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct CacheLine([f32; 16]);

impl AlignedFloats {
    /// Creates a buffer of `len` zeros.
    pub(crate) fn zeros(len: usize) -> Self {
        AlignedFloats { lines: vec![CacheLine([0.0; 16]); len.div_ceil(16)], len }
    }

    /// Sets the length to `len`, like [`Vec::resize`] with zeros: the first
    /// `min(len, old length)` elements keep their values.
    pub(crate) fn resize(&mut self, len: usize) {
        let old = self.len;
        self.lines.resize(len.div_ceil(16), CacheLine([0.0; 16]));
        self.len = len;
        if len > old {
            self[old..].fill(0.0);
        }
    }
}

impl std::ops::Deref for AlignedFloats {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `CacheLine` is 16 `f32` without padding (size 64, align
        // 64), so the lines are `16 * lines.len() >= len` contiguous floats.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len) }
    }
}

impl std::ops::DerefMut for AlignedFloats {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_resizes_like_vec() {
        let mut buffer = AlignedFloats::zeros(5);
        assert_eq!(buffer.as_ptr() as usize % 64, 0);
        assert_eq!(&buffer[..], &[0.0; 5]);
        buffer.copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        buffer.resize(3);
        assert_eq!(&buffer[..], &[1.0, 2.0, 3.0]);
        // Growing zeroes the new elements, also those of a line that held
        // values before the shrink.
        buffer.resize(40);
        assert_eq!(&buffer[..5], &[1.0, 2.0, 3.0, 0.0, 0.0]);
        assert!(buffer[3..].iter().all(|&v| v == 0.0));
        assert_eq!(buffer.as_ptr() as usize % 64, 0);
        assert!(AlignedFloats::default().is_empty());
    }
}
