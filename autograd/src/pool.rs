//! Reuse of `f32` buffers across training steps.

use std::collections::BTreeMap;

/// Free `f32` buffers keyed by capacity.
///
/// A training step allocates the same sizes as the previous one, so taking
/// buffers from here avoids the page faults of fresh allocations. A request is
/// served by the smallest free buffer whose capacity is at least the request
/// and at most twice it.
#[derive(Debug)]
pub struct BufferPool {
    free: BTreeMap<usize, Vec<Vec<f32>>>,
    held: usize,
    limit: usize,
}

/// Default bound on the floats kept for reuse (8 GiB); beyond it returned
/// buffers are freed. A training step of UniSRec on 2048 rows of 50 items
/// keeps about 5 GiB of activations, all of which should be reused.
const DEFAULT_LIMIT: usize = 1 << 31;

impl Default for BufferPool {
    fn default() -> Self {
        Self::with_limit(DEFAULT_LIMIT)
    }
}

impl BufferPool {
    /// Creates an empty pool that keeps up to 8 GiB of buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty pool that keeps at most `max_floats` floats for reuse.
    pub fn with_limit(max_floats: usize) -> Self {
        BufferPool { free: BTreeMap::new(), held: 0, limit: max_floats }
    }

    /// Takes a buffer of `len` zeros.
    pub fn zeros(&mut self, len: usize) -> Vec<f32> {
        let mut v = self.take(len);
        v.clear();
        v.resize(len, 0.0);
        v
    }

    /// Takes a buffer of length `len` whose contents are unspecified, so the
    /// caller must overwrite every element.
    pub fn uninit(&mut self, len: usize) -> Vec<f32> {
        let mut v = self.take(len);
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, 0.0);
        }
        v
    }

    fn take(&mut self, len: usize) -> Vec<f32> {
        if len == 0 {
            return Vec::new();
        }
        let key = self.free.range(len..=len.saturating_mul(2)).next().map(|(k, _)| *k);
        if let Some(key) = key {
            let list = self.free.get_mut(&key).expect("key from range");
            let v = list.pop().expect("lists are never left empty");
            if list.is_empty() {
                self.free.remove(&key);
            }
            self.held -= v.capacity();
            return v;
        }
        Vec::with_capacity(len)
    }

    /// Returns a buffer for reuse.
    pub fn give(&mut self, v: Vec<f32>) {
        let cap = v.capacity();
        if cap == 0 || self.held + cap > self.limit {
            return;
        }
        self.held += cap;
        self.free.entry(cap).or_default().push(v);
    }

    /// Number of floats held for reuse.
    pub fn held(&self) -> usize {
        self.held
    }
}
