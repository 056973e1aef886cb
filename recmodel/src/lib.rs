//! Data loading, UniSRec-style sequential recommenders, training and
//! full-ranking evaluation.

pub mod data;
pub mod metrics;
pub mod shared;
