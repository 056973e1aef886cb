//! MPO library.
