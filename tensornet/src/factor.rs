//! Splitting a matrix dimension into the factor lists of an MPO.
//!
//! A factor list `[f_1, ..., f_n]` splits a dimension `D = f_1 * ... * f_n`
//! into the `n` physical indices of an MPO, one per core, in row-major order:
//! the first factor varies slowest.

use crate::error::{Axis, Error, Result};

/// Returns the prime factors of `dim` in ascending order (empty for 1).
///
/// ```
/// assert_eq!(tensornet::prime_factors(300), vec![2, 2, 3, 5, 5]);
/// assert_eq!(tensornet::prime_factors(1), Vec::<usize>::new());
/// ```
pub fn prime_factors(dim: usize) -> Vec<usize> {
    let mut factors = Vec::new();
    let mut rest = dim;
    let mut p = 2;
    while p * p <= rest {
        while rest % p == 0 {
            factors.push(p);
            rest /= p;
        }
        p += 1;
    }
    if rest > 1 {
        factors.push(rest);
    }
    factors
}

/// Splits `dim` into `n` factors, small at the ends and large in the middle.
///
/// The rule:
///
/// 1. Take the prime factors of `dim`.
/// 2. With more than `n` primes, merge them into `n` groups: the primes, from
///    the largest down, each join the group whose product is smallest at
///    that moment, which keeps the groups close to `dim^(1/n)`.
/// 3. With fewer than `n` primes, add factors of 1 until there are `n`.
/// 4. Sort the factors and lay them out from both ends inwards, alternating
///    left and right end: the smallest factor goes first, the second smallest
///    last, and the largest lands in the middle. Factors of 1, being the
///    smallest, therefore sit at the ends.
///
/// A prime `dim` gives `[1, ..., 1, dim, 1, ..., 1]`: a valid factorization
/// whose central core contains the whole matrix. To avoid that, pad the
/// dimension with zeros up to [`padded_dim`] and factorize the padded one.
///
/// ```
/// use tensornet::auto_factors;
/// assert_eq!(auto_factors(300, 5).unwrap(), vec![2, 3, 5, 5, 2]);
/// assert_eq!(auto_factors(768, 5).unwrap(), vec![3, 4, 4, 4, 4]);
/// assert_eq!(auto_factors(3072, 5).unwrap(), vec![4, 4, 8, 6, 4]);
/// assert_eq!(auto_factors(8, 5).unwrap(), vec![1, 2, 2, 2, 1]);
/// ```
///
/// # Errors
/// [`Error::InvalidDimension`] when `dim` or `n` is 0. The error names the
/// row side; [`auto_factor_pair`] names the side it was factorizing.
pub fn auto_factors(dim: usize, n: usize) -> Result<Vec<usize>> {
    auto_factors_for(Axis::Rows, dim, n)
}

fn auto_factors_for(axis: Axis, dim: usize, n: usize) -> Result<Vec<usize>> {
    if n == 0 {
        return Err(Error::InvalidDimension { axis, dim, cores: n, reason: "the number of cores must be at least 1" });
    }
    if dim == 0 {
        return Err(Error::InvalidDimension { axis, dim, cores: n, reason: "the dimension must be at least 1" });
    }

    let primes = prime_factors(dim);
    let mut groups = vec![1usize; n];
    for &p in primes.iter().rev() {
        let smallest = (0..n).min_by_key(|&g| groups[g]).expect("n >= 1");
        groups[smallest] *= p;
    }
    groups.sort_unstable();

    let mut laid_out = vec![1usize; n];
    let (mut left, mut right) = (0, n - 1);
    for (rank, &factor) in groups.iter().enumerate() {
        if rank % 2 == 0 {
            laid_out[left] = factor;
            left += 1;
        } else {
            laid_out[right] = factor;
            right = right.saturating_sub(1);
        }
    }
    Ok(laid_out)
}

/// Splits both dimensions of an `out_dim x in_dim` weight into `n` factors
/// each with [`auto_factors`], then reverses the column list when that makes
/// the two end cores closer in size.
///
/// The end cores have `i_0 * j_0` and `i_{n-1} * j_{n-1}` physical entries.
/// Reversing the columns when it reduces `|i_0 j_0 - i_{n-1} j_{n-1}|` (and keeping them on a
/// tie) gives the symmetric lists used in the literature: 768x768 becomes
/// rows `[3,4,4,4,4]` and columns `[4,4,4,4,3]`.
///
/// ```
/// use tensornet::auto_factor_pair;
/// let (rows, cols) = auto_factor_pair(768, 768, 5).unwrap();
/// assert_eq!((rows, cols), (vec![3, 4, 4, 4, 4], vec![4, 4, 4, 4, 3]));
/// let (rows, cols) = auto_factor_pair(300, 768, 5).unwrap();
/// assert_eq!((rows, cols), (vec![2, 3, 5, 5, 2], vec![3, 4, 4, 4, 4]));
/// ```
///
/// # Errors
/// [`Error::InvalidDimension`] when a dimension or `n` is 0.
pub fn auto_factor_pair(out_dim: usize, in_dim: usize, n: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let rows = auto_factors_for(Axis::Rows, out_dim, n)?;
    let mut cols = auto_factors_for(Axis::Cols, in_dim, n)?;
    let end_gap = |cols: &[usize]| (rows[0] * cols[0]).abs_diff(rows[n - 1] * cols[n - 1]);
    let reversed: Vec<usize> = cols.iter().rev().copied().collect();
    if end_gap(&reversed) < end_gap(&cols) {
        cols = reversed;
    }
    Ok((rows, cols))
}

/// Checks that `factors` is a non-empty list of positive integers whose
/// product is `dim`.
///
/// ```
/// use tensornet::{check_factors, Axis};
/// assert!(check_factors(Axis::Rows, &[2, 3, 5, 5, 2], 300).is_ok());
/// let err = check_factors(Axis::Cols, &[4, 4, 4], 768).unwrap_err();
/// assert_eq!(err.to_string(), "column factors [4, 4, 4] multiply to 64, but the dimension is 768");
/// ```
///
/// # Errors
/// [`Error::InvalidFactors`] for an empty list or a zero factor,
/// [`Error::FactorProduct`] when the product differs from `dim`,
/// [`Error::FactorOverflow`] when the product exceeds `usize::MAX`.
pub fn check_factors(axis: Axis, factors: &[usize], dim: usize) -> Result<()> {
    if factors.is_empty() || factors.contains(&0) {
        return Err(Error::InvalidFactors { axis, factors: factors.to_vec() });
    }
    let product = factors.iter().try_fold(1usize, |acc, &f| acc.checked_mul(f));
    match product {
        Some(product) if product == dim => Ok(()),
        Some(product) => Err(Error::FactorProduct { axis, factors: factors.to_vec(), product, dim }),
        None => Err(Error::FactorOverflow { axis, factors: factors.to_vec(), dim }),
    }
}

/// Pads the shorter of two factor lists with 1s at its ends, alternating
/// between the right and the left end, so that both have the same length.
///
/// ```
/// let (rows, cols) = tensornet::pad_factor_lists(&[4, 8, 4], &[2, 3, 4, 4, 2]);
/// assert_eq!(rows, vec![1, 4, 8, 4, 1]);
/// assert_eq!(cols, vec![2, 3, 4, 4, 2]);
/// ```
pub fn pad_factor_lists(rows: &[usize], cols: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let n = rows.len().max(cols.len());
    (pad_with_ones(rows, n), pad_with_ones(cols, n))
}

fn pad_with_ones(factors: &[usize], n: usize) -> Vec<usize> {
    let missing = n.saturating_sub(factors.len());
    let right = missing.div_ceil(2);
    let left = missing - right;
    let mut padded = vec![1; left];
    padded.extend_from_slice(factors);
    padded.resize(n, 1);
    padded
}

/// Returns the smallest `padded >= dim` whose [`auto_factors`] split into `n`
/// factors has no factor of 1 and none above `2 * ceil(dim^(1/n))`.
///
/// Zero rows added to a weight up to this size change none of its products,
/// and the padded dimension factorizes into balanced cores. A prime or
/// near-prime vocabulary size is the usual case, such as BERT's 30,522-row
/// embedding.
///
/// ```
/// use tensornet::{auto_factors, padded_dim};
/// let padded = padded_dim(30522, 5);
/// assert!(padded >= 30522);
/// assert!(auto_factors(padded, 5).unwrap().iter().all(|&f| (2..=16).contains(&f)));
/// assert_eq!(padded_dim(768, 5), 768);
/// ```
///
/// # Panics
/// Panics if `n` is 0.
#[track_caller]
pub fn padded_dim(dim: usize, n: usize) -> usize {
    assert!(n > 0, "padded_dim: the number of factors must be at least 1");
    let root = (dim.max(1) as f64).powf(1.0 / n as f64).ceil() as usize;
    let max_factor = 2 * root.max(2);
    let mut candidate = dim.max(1);
    loop {
        let factors = auto_factors(candidate, n).expect("candidate and n are positive");
        if factors.iter().all(|&f| f >= 2 && f <= max_factor) {
            return candidate;
        }
        candidate += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_factors_literature_shapes() {
        // Lists from the MPO literature (n = 5): 768 -> [3,4,4,4,4], 3072 -> [4,4,8,6,4].
        assert_eq!(auto_factors(768, 5).unwrap(), vec![3, 4, 4, 4, 4]);
        assert_eq!(auto_factors(3072, 5).unwrap(), vec![4, 4, 8, 6, 4]);
        assert_eq!(auto_factors(300, 5).unwrap(), vec![2, 3, 5, 5, 2]);
    }

    #[test]
    fn auto_factors_model_dims() {
        for dim in [300, 256, 384, 768, 8, 1, 2, 3072, 4385] {
            for n in [1, 3, 5, 7, 9] {
                let f = auto_factors(dim, n).unwrap();
                assert_eq!(f.len(), n, "dim {dim}, n {n}");
                assert_eq!(f.iter().product::<usize>(), dim, "dim {dim}, n {n}");
            }
        }
    }

    #[test]
    fn auto_factors_ones_at_ends() {
        // 8 = 2^3 has three prime factors, so n = 5 needs two 1s, one per end.
        assert_eq!(auto_factors(8, 5).unwrap(), vec![1, 2, 2, 2, 1]);
        assert_eq!(auto_factors(300, 9).unwrap(), vec![1, 1, 2, 3, 5, 5, 2, 1, 1]);
    }

    #[test]
    fn auto_factors_no_ones_when_enough_primes() {
        // 256 = 2^8: with n <= 8 every factor is at least 2.
        for n in 1..=8 {
            assert!(!auto_factors(256, n).unwrap().contains(&1), "n {n}");
        }
    }

    #[test]
    fn auto_factors_prime_fallback() {
        assert_eq!(auto_factors(101, 5).unwrap(), vec![1, 1, 101, 1, 1]);
    }

    #[test]
    fn auto_factors_rejects_zero() {
        assert!(matches!(auto_factors(0, 5), Err(Error::InvalidDimension { dim: 0, .. })));
        assert!(matches!(auto_factors(8, 0), Err(Error::InvalidDimension { cores: 0, .. })));
    }

    #[test]
    fn check_factors_messages() {
        let err = check_factors(Axis::Rows, &[3, 4, 4], 300).unwrap_err();
        assert_eq!(err.to_string(), "row factors [3, 4, 4] multiply to 48, but the dimension is 300");
        let err = check_factors(Axis::Cols, &[3, 0, 4], 0).unwrap_err();
        assert!(matches!(err, Error::InvalidFactors { axis: Axis::Cols, .. }));
        assert!(check_factors(Axis::Rows, &[], 1).is_err());
    }

    #[test]
    fn check_factors_overflow() {
        let err = check_factors(Axis::Rows, &[usize::MAX, 2], 300).unwrap_err();
        assert!(matches!(err, Error::FactorOverflow { axis: Axis::Rows, dim: 300, .. }));
        let message = err.to_string();
        assert!(message.contains("product that overflows usize"), "{message}");
        assert!(message.contains("cannot split the dimension 300"), "{message}");
        assert!(!message.contains("multiply to"), "{message}");
    }

    #[test]
    fn pad_factor_lists_alternates_ends() {
        let (rows, cols) = pad_factor_lists(&[2, 3, 4, 4, 2], &[8]);
        assert_eq!(rows, vec![2, 3, 4, 4, 2]);
        assert_eq!(cols, vec![1, 1, 8, 1, 1]);
    }

    #[test]
    fn padded_dim_bert_vocabulary() {
        let padded = padded_dim(30522, 5);
        assert!(padded >= 30522);
        assert!(padded - 30522 < 1000, "padded to {padded}");
        assert!(auto_factors(padded, 5).unwrap().iter().all(|&f| (2..=16).contains(&f)));
    }
}
