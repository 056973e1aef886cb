//! One module per subcommand.

pub mod convert;
pub mod decompose;
pub mod embed;
pub mod evaluate;
pub mod popularity;
pub mod train;
