"""NumPy/LAPACK reference for the tensornet benchmarks (benches/mpo.rs).

Runs the same algorithms on the same shapes and factor lists as the Rust
benchmark, and prints the median wall time of each:

- decompose-gesdd: the left-to-right sweep of thin SVDs in float64
  (np.linalg.svd with full_matrices=False, which calls LAPACK gesdd), keeping
  U as the core and carrying S V^T on, without truncation;
- decompose-gram: the same sweep with the SVD method of tensornet's default:
  the Gram matrix of the short side, np.linalg.eigh (LAPACK syevd), then
  S V^T = U^T A for a wide unfolding or U = A V / S for a tall one;
- svd: np.linalg.svd of one 6144x384 matrix, the tall unfolding at bond 3
  of 3072x768;
- contract: the contraction of the float32 cores into the dense matrix as
  tensornet does it. Cores are contracted left to right up to the largest
  bond and right to left after it, one GEMM joins the halves, and every GEMM
  is followed by one axis reorder. On AVX-512 processors tensornet stores
  each GEMM's output in the reordered layout directly. NumPy has no such
  GEMM, so the script copies the reordered array.

Usage: python bench/mpo_reference.py [--threads N] [--min-seconds S]

The thread count is applied through OPENBLAS_NUM_THREADS, OMP_NUM_THREADS
and MKL_NUM_THREADS before NumPy is imported; run the Rust side with the
same RAYON_NUM_THREADS.
"""

import argparse
import os
import time

SHAPES = [
    (300, 384, [2, 3, 5, 5, 2], [2, 4, 4, 4, 3]),
    (300, 768, [2, 3, 5, 5, 2], [3, 4, 4, 4, 4]),
    (768, 768, [3, 4, 4, 4, 4], [4, 4, 4, 4, 3]),
    (3072, 768, [4, 4, 8, 6, 4], [3, 4, 4, 4, 4]),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="minimum time spent per case (default 2)")
    return parser.parse_args()


ARGS = parse_args()
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(ARGS.threads)

import numpy as np  # noqa: E402  (imported after the thread variables are set)


def svd_gesdd(a):
    """Thin SVD through LAPACK gesdd: returns U and S V^T."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return u, s[:, None] * vt


def svd_gram(a):
    """Thin SVD through the Gram matrix of the short side: returns U and S V^T."""
    m, n = a.shape
    if m <= n:
        values, u = np.linalg.eigh(a @ a.T)
        u = u[:, ::-1]
        return u, u.T @ a
    values, v = np.linalg.eigh(a.T @ a)
    values, v = values[::-1], v[:, ::-1]
    s = np.sqrt(np.maximum(values, 0.0))
    floor = s[0] * np.finfo(np.float64).eps * max(m, n)
    inverse = np.where(s > floor, 1.0 / np.where(s > floor, s, 1.0), 0.0)
    return (a @ v) * inverse, s[:, None] * v.T


def decompose(w, rows, cols, svd=svd_gesdd):
    """Left-to-right SVD sweep; returns the float32 cores [d, i, j, d']."""
    out_dim, in_dim = w.shape
    rest = w.astype(np.float64).reshape(1, out_dim, in_dim)
    d, rows_left, cols_left = 1, out_dim, in_dim
    cores = []
    for i, j in zip(rows[:-1], cols[:-1]):
        rows_left //= i
        cols_left //= j
        unfolding = rest.reshape(d, i, rows_left, j, cols_left).transpose(0, 1, 3, 2, 4)
        unfolding = unfolding.reshape(d * i * j, rows_left * cols_left)
        u, rest = svd(unfolding)
        keep = u.shape[1]
        cores.append(u.astype(np.float32).reshape(d, i, j, keep))
        d = keep
    cores.append(rest.astype(np.float32).reshape(d, rows[-1], cols[-1], 1))
    return cores


def contract(cores):
    """Contracts the cores into the dense matrix, meeting at the largest bond."""
    n = len(cores)
    bonds = [core.shape[0] for core in cores] + [1]
    split = max(range(1, n), key=lambda b: (bonds[b], -b)) if n > 1 else n

    # Left partial product [I, J, d].
    left = np.ones((1, 1, 1), dtype=np.float32)
    for core in cores[:split]:
        big_i, big_j, d = left.shape
        _, i, j, d2 = core.shape
        product = left.reshape(big_i * big_j, d) @ core.reshape(d, i * j * d2)
        product = product.reshape(big_i, big_j, i, j * d2).transpose(0, 2, 1, 3)
        left = np.ascontiguousarray(product).reshape(big_i * i, big_j * j, d2)
    if split == n:
        return left[:, :, 0]

    # Right partial product [d, I, J].
    right = np.ones((1, 1, 1), dtype=np.float32)
    for core in reversed(cores[split:]):
        d2, big_i, big_j = right.shape
        d, i, j, _ = core.shape
        product = core.reshape(d * i * j, d2) @ right.reshape(d2, big_i * big_j)
        product = product.reshape(d, i, j, big_i, big_j).transpose(0, 1, 3, 2, 4)
        right = np.ascontiguousarray(product).reshape(d, i * big_i, j * big_j)

    left_i, left_j, d = left.shape
    _, right_i, right_j = right.shape
    product = left.reshape(left_i * left_j, d) @ right.reshape(d, right_i * right_j)
    product = product.reshape(left_i, left_j, right_i, right_j).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(product).reshape(left_i * right_i, left_j * right_j)


def median_seconds(function, min_seconds):
    function()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), len(times)


def main():
    rng = np.random.default_rng(1)
    print(f"numpy {np.__version__}, {ARGS.threads} BLAS threads, load average {os.getloadavg()}", flush=True)
    for out_dim, in_dim, rows, cols in SHAPES:
        w = rng.standard_normal((out_dim, in_dim)).astype(np.float32)
        for name, svd in (("gesdd", svd_gesdd), ("gram", svd_gram)):
            cores = decompose(w, rows, cols, svd)
            error = np.linalg.norm(contract(cores) - w) / np.linalg.norm(w)
            assert error < 1e-5, f"{out_dim}x{in_dim} {name}: relative error {error}"
            seconds, runs = median_seconds(lambda: decompose(w, rows, cols, svd), ARGS.min_seconds)
            print(f"decompose-{name}/{out_dim}x{in_dim}  {seconds * 1e3:9.3f} ms  ({runs} runs)", flush=True)
        seconds, runs = median_seconds(lambda: contract(cores), ARGS.min_seconds)
        print(f"contract/{out_dim}x{in_dim}  {seconds * 1e3:9.3f} ms  ({runs} runs)", flush=True)
    tall = rng.standard_normal((6144, 384))
    seconds, runs = median_seconds(lambda: np.linalg.svd(tall, full_matrices=False), ARGS.min_seconds)
    print(f"svd-gesdd/6144x384  {seconds * 1e3:9.3f} ms  ({runs} runs)")
    seconds, runs = median_seconds(lambda: svd_gram(tall), ARGS.min_seconds)
    print(f"svd-gram/6144x384  {seconds * 1e3:9.3f} ms  ({runs} runs)")


if __name__ == "__main__":
    main()
