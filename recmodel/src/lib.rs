//! Data loading, UniSRec-style sequential recommenders, training and
//! full-ranking evaluation.

pub mod shared;
