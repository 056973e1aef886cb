//! Single-precision GEMM through `matrixmultiply`, split over rayon threads.

/// A matrix operand: a slice with row and column strides, so that a
/// transpose is a swap of strides rather than a copy.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    /// Elements; the view must stay inside the slice.
    pub data: &'a [f32],
    /// Rows of the view.
    pub rows: usize,
    /// Columns of the view.
    pub cols: usize,
    /// Distance between consecutive rows.
    pub row_stride: isize,
    /// Distance between consecutive columns.
    pub col_stride: isize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` view.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        debug_assert!(data.len() >= rows * cols);
        MatRef { data, rows, cols, row_stride: cols as isize, col_stride: 1 }
    }

    /// The transposed view.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// True when every element of the view lies inside `data`. The fields are
    /// public, so [`sgemm`] checks this before it hands raw pointers to the kernel.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let (mut low, mut high) = (0i128, 0i128);
        for (count, stride) in [(self.rows, self.row_stride), (self.cols, self.col_stride)] {
            let span = (count as i128 - 1) * stride as i128;
            if span < 0 {
                low += span;
            } else {
                high += span;
            }
        }
        low >= 0 && high < self.data.len() as i128
    }
}

/// Work below this many multiply-adds runs on the calling thread.
const PARALLEL_MIN_FLOPS: usize = 1 << 21;

struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// `c = alpha * a * b + beta * c` where `c` is row-major `a.rows x b.cols`
/// with row stride `ldc`.
///
/// Large products are split along the longer side of `c` into one block per
/// rayon thread. Blocks do not overlap and each element is computed by one
/// call, so the result does not depend on the thread count.
///
/// # Panics
/// Panics if the inner dimensions differ, a view reaches outside its slice,
/// or `c` is too short.
#[track_caller]
pub fn sgemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    assert_eq!(a.cols, b.rows, "sgemm: inner dimensions differ");
    for (name, view) in [("a", &a), ("b", &b)] {
        assert!(
            view.in_bounds(),
            "sgemm: operand {name} ({} x {} with strides {}, {}) reaches outside its slice of {} elements",
            view.rows,
            view.cols,
            view.row_stride,
            view.col_stride,
            view.data.len()
        );
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n, "sgemm: output row stride {ldc} is below the {n} columns");
    assert!(c.len() >= (m - 1) * ldc + n, "sgemm: output buffer of {} elements is too short", c.len());
    let threads = rayon::current_num_threads();
    let work = m.saturating_mul(n).saturating_mul(k.max(1));
    let c_ptr = SendPtr(c.as_mut_ptr());
    if threads <= 1 || work < PARALLEL_MIN_FLOPS || (m < 2 && n < 2) {
        // SAFETY: the views and `c` were checked to cover the requested ranges.
        unsafe { raw_gemm(alpha, a, 0, m, b, 0, n, beta, c_ptr.0, ldc) };
        return;
    }
    let split_rows = m >= n;
    let len = if split_rows { m } else { n };
    // Blocks of a multiple of 16 keep the kernel's 16-wide tiles whole.
    let blocks = threads.min(len.div_ceil(16)).max(1);
    let step = (len.div_ceil(blocks)).div_ceil(16) * 16;
    let c_ref = &c_ptr;
    rayon::scope(|s| {
        let mut start = 0;
        while start < len {
            let end = (start + step).min(len);
            s.spawn(move |_| {
                // SAFETY: blocks cover disjoint rows (or columns) of `c`.
                unsafe {
                    if split_rows {
                        raw_gemm(alpha, a, start, end, b, 0, n, beta, c_ref.0, ldc);
                    } else {
                        raw_gemm(alpha, a, 0, m, b, start, end, beta, c_ref.0, ldc);
                    }
                }
            });
            start = end;
        }
    });
}

#[allow(clippy::too_many_arguments)]
unsafe fn raw_gemm(
    alpha: f32,
    a: MatRef<'_>,
    r0: usize,
    r1: usize,
    b: MatRef<'_>,
    c0: usize,
    c1: usize,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    let k = a.cols;
    let c_ptr = c.add(r0 * ldc + c0);
    if k == 0 {
        for i in 0..(r1 - r0) {
            for j in 0..(c1 - c0) {
                let p = c_ptr.add(i * ldc + j);
                *p = if beta == 0.0 { 0.0 } else { beta * *p };
            }
        }
        return;
    }
    // With k > 0 these offsets stay inside views that `sgemm` checked.
    let a_ptr = a.data.as_ptr().offset(r0 as isize * a.row_stride);
    let b_ptr = b.data.as_ptr().offset(c0 as isize * b.col_stride);
    matrixmultiply::sgemm(
        r1 - r0,
        k,
        c1 - c0,
        alpha,
        a_ptr,
        a.row_stride,
        a.col_stride,
        b_ptr,
        b.row_stride,
        b.col_stride,
        beta,
        c_ptr,
        ldc as isize,
        1,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn sgemm_matches_naive_product_when_split() {
        let (m, k, n) = (300, 170, 90);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
        let mut c = vec![1.0; m * n];
        sgemm(1.0, MatRef::new(&a, m, k), MatRef::new(&b, k, n), 0.0, &mut c, n);
        assert_eq!(c, naive(&a, &b, m, k, n));

        // Wide output splits columns instead of rows.
        let mut ct = vec![0.0; n * m];
        sgemm(1.0, MatRef::new(&b, k, n).t(), MatRef::new(&a, m, k).t(), 0.0, &mut ct, m);
        for i in 0..m {
            for j in 0..n {
                assert_eq!(ct[j * m + i], c[i * n + j]);
            }
        }
    }
}
