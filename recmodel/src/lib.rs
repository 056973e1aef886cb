//! Data loading, UniSRec-style sequential recommenders, training and
//! full-ranking evaluation.

pub mod checkpoint;
pub mod error;
pub mod evaluate;
pub mod model;
pub mod data;
pub mod metrics;
pub mod popularity;
pub mod shared;
pub mod text;
pub mod train;
