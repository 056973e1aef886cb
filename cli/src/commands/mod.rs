//! One module per subcommand.

pub mod decompose;
pub mod evaluate;
pub mod popularity;
pub mod train;
